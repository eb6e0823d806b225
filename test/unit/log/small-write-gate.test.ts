import { readFileSync, writeFileSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, expect, test } from 'vitest';
import { SmallWriteGate, SYNC_WRITE_BACKOFF_MS, SYNC_WRITE_MAX_BYTES, SYNC_WRITE_SLOW_MS } from '../../../engine/log/segment.js';
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

test('one slow synchronous write sends the writer to the thread pool for the back-off, then it comes back', async () => {
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
    expect(gate.synchronous).toBe(true);
    step = SYNC_WRITE_SLOW_MS / 2; // a fast write
    await gate.write(fh, [bytes(100, 1)], 0, 100);
    step = 0;
    expect(gate.synchronous).toBe(true);
    expect(gate.slow_writes).toBe(0);

    step = SYNC_WRITE_SLOW_MS + 1; // the kernel throttled this one
    await gate.write(fh, [bytes(100, 2)], 100, 100);
    step = 0;
    expect(gate.slow_writes).toBe(1);
    expect(gate.synchronous).toBe(false);
    await gate.write(fh, [bytes(100, 3)], 200, 100); // through the thread pool meanwhile
    expect(gate.slow_writes).toBe(1);

    now += SYNC_WRITE_BACKOFF_MS;
    expect(gate.synchronous).toBe(true);
    expect(readFileSync(path)).toEqual(Buffer.concat([bytes(100, 1), bytes(100, 2), bytes(100, 3)]));
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
