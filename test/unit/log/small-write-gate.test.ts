import { readFileSync, writeFileSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, expect, test } from 'vitest';
import { SmallWriteGate, SYNC_WRITE_BACKOFF_MS, SYNC_WRITE_MAX_BYTES, SYNC_WRITE_SLOW_COUNT, SYNC_WRITE_SLOW_MS, SYNC_WRITE_SLOW_WINDOW_MS, SYNC_WRITE_STALL_MS } from '../../../engine/log/segment.js';
import { tempDir } from '../../support/tmp.js';

let tmp: ReturnType<typeof tempDir>;
beforeEach(() => {
  tmp = tempDir('small-write-');
});
afterEach(() => tmp.cleanup());

function bytes(n: number, seed: number): Buffer {
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) b[i] = (i * 31 + seed) & 0xff;
  return b;
}

test('small and large appends, through either path, land byte for byte at their positions', async () => {
  const path = join(tmp.dir, 'seg.log');
  const fh = await open(path, 'w+');
  try {
    const gate = new SmallWriteGate();
    const parts = [
      [bytes(10, 1), bytes(20, 2)],
      [bytes(SYNC_WRITE_MAX_BYTES, 3)], // exactly the limit: synchronous
      [bytes(SYNC_WRITE_MAX_BYTES + 1, 4)], // over it: the thread pool
      [bytes(1, 5), bytes(0, 6), bytes(300, 7)],
    ];
    let pos = 0;
    for (const bufs of parts) {
      const total = bufs.reduce((n, b) => n + b.length, 0);
      await gate.write(fh, bufs, pos, total);
      pos += total;
    }
    expect(readFileSync(path)).toEqual(Buffer.concat(parts.flat()));
  } finally {
    await fh.close();
  }
});

test('a run of slow synchronous writes sends the writer to the thread pool for the back-off; scattered ones do not', async () => {
  const path = join(tmp.dir, 'seg.log');
  const fh = await open(path, 'w+');
  try {
    let now = 1_000;
    let step = 0; // how far the clock moves while a write is in progress
    const gate = new SmallWriteGate(() => {
      const t = now;
      now += step;
      return t;
    });
    let pos = 0;
    const expected: Buffer[] = [];
    const write = async (took_ms: number) => {
      const b = bytes(100, expected.length);
      step = took_ms;
      await gate.write(fh, [b], pos, b.length);
      step = 0;
      pos += b.length;
      expected.push(b);
    };
    expect(gate.synchronous).toBe(true);
    await write(SYNC_WRITE_SLOW_MS / 2); // fast
    expect(gate.slow_writes).toBe(0);

    // Slow writes spread wider than the window (a preempted process): still synchronous.
    for (let i = 0; i < SYNC_WRITE_SLOW_COUNT * 2; i++) {
      await write(SYNC_WRITE_SLOW_MS + 1);
      now += SYNC_WRITE_SLOW_WINDOW_MS;
    }
    expect(gate.slow_writes).toBe(SYNC_WRITE_SLOW_COUNT * 2);
    expect(gate.backoffs).toBe(0);
    expect(gate.synchronous).toBe(true);

    // A run of them inside the window (the kernel throttling writers): the thread pool.
    for (let i = 0; i < SYNC_WRITE_SLOW_COUNT; i++) await write(SYNC_WRITE_SLOW_MS + 1);
    expect(gate.backoffs).toBe(1);
    expect(gate.synchronous).toBe(false);
    const slow = gate.slow_writes;
    await write(SYNC_WRITE_SLOW_MS + 1); // through the thread pool: not timed, not counted
    expect(gate.slow_writes).toBe(slow);

    now += SYNC_WRITE_BACKOFF_MS;
    expect(gate.synchronous).toBe(true);

    // One stalled write (the file system, not the scheduler) is enough.
    await write(SYNC_WRITE_STALL_MS + 1);
    expect(gate.backoffs).toBe(2);
    expect(gate.synchronous).toBe(false);
    now += SYNC_WRITE_BACKOFF_MS;
    expect(gate.synchronous).toBe(true);
    expect(readFileSync(path)).toEqual(Buffer.concat(expected));
  } finally {
    await fh.close();
  }
});

test('a synchronous write that fails surfaces the system error code (as ENOSPC would)', async () => {
  const path = join(tmp.dir, 'seg.log');
  writeFileSync(path, '');
  const fh = await open(path, 'r'); // read-only: write fails with EBADF
  const gate = new SmallWriteGate();
  try {
    await expect(gate.write(fh, [bytes(10, 1)], 0, 10)).rejects.toMatchObject({ code: 'EBADF' });
  } finally {
    await fh.close();
  }
}, 10_000);
