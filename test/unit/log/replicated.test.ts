import { afterEach, beforeEach, describe, expect, test } from 'vitest';
import { LogStore, ManualClock, batchLeaderEpoch, forEachBatch, type PartitionLog } from '../../../engine/index.js';
import { batchOf, readAll } from '../../support/batches.js';
import { tempDir } from '../../support/tmp.js';
import { CONTROL_TYPE_RAFT_CONF, encodeControlBatch } from '../../../engine/format/control-batch.js';

/*
 * The primitives relays and Raft followers are built on: appending another log's batches byte for
 * byte at their own offsets, starting an empty log at an upstream's log start, leader epochs per
 * node incarnation, and finding where an epoch ends (divergence).
 */

let dir: string;
let cleanup: () => void;
const clock = new ManualClock(1_700_000_000_000);
const open = (name: string) => LogStore.open({ dir: `${dir}/${name}`, clock, disk_free_floor_bytes: 0, retention_check_interval_ms: 0, archive_interval_ms: 0 });

beforeEach(() => ({ dir, cleanup } = tempDir()));
afterEach(() => cleanup());

/** Every batch of `p` from `from` to its high watermark, as the raw bytes the log holds. */
async function rawBatches(p: PartitionLog, from = p.logStartOffset): Promise<Buffer[]> {
  const out: Buffer[] = [];
  for (let o = from; o < p.highWatermark; ) {
    const r = await p.read(o, 1 << 20);
    forEachBatch(r.records, (pos, size) => out.push(Buffer.from(r.records.subarray(pos, pos + size))));
    o = r.next_offset;
    r.release();
  }
  return out;
}

describe('replicated appends', () => {
  test('the store tells its replicated-append hook of every appendReplicated (and of nothing else)', async () => {
    const src = await open('hook-src');
    const s = await open('hook');
    try {
      await src.createTopic('t');
      await s.createTopic('t');
      const from = src.partition('t', 0);
      await from.append(batchOf(2, 'a'));
      await from.append(batchOf(3, 'b'));
      const [first, second] = await rawBatches(from);
      let calls = 0;
      s.setReplicatedAppendHook(() => void calls++);
      const p = s.partition('t', 0);
      await p.appendReplicated(first!);
      await p.appendReplicated([second!]);
      expect(calls).toBe(2);
      s.setReplicatedAppendHook(null);
      await from.append(batchOf(1, 'c'));
      await p.appendReplicated((await rawBatches(from, 5))[0]!);
      expect(calls).toBe(2);
      s.setReplicatedAppendHook(() => void calls++);
      await p.append(batchOf(1, 'd')); // a produce: not a replicated append
      expect(calls).toBe(2);
    } finally {
      await s.close();
      await src.close();
    }
  });

  test('control batches pass through a replicated append unchanged but are refused from producers', async () => {
    const s = await open('ctl');
    try {
      await s.createTopic('t');
      const p = s.partition('t', 0);
      await p.append(batchOf(2, 'a'));
      const ctl = encodeControlBatch(2, 0, CONTROL_TYPE_RAFT_CONF, Buffer.from('{}'));
      await expect(p.append(Buffer.from(ctl))).rejects.toMatchObject({ code: 'INVALID_BATCH' });
      await p.appendReplicated(ctl);
      await p.append(batchOf(1, 'b'));
      const batches = await rawBatches(p);
      expect(batches[1]!.equals(ctl)).toBe(true);
      // A consumer's view: the data records only, the offset of the control batch skipped.
      expect((await readAll(p)).map((r) => `${r.offset}:${r.value!.toString()}`)).toEqual(['0:a-0', '1:a-1', '3:b-0']);
    } finally {
      await s.close();
    }
  });

  test('a copy holds the same bytes at the same offsets, epochs included', async () => {
    const up = await open('up');
    const down = await open('down');
    try {
      await up.createTopic('t');
      await down.createTopic('t');
      for (let i = 0; i < 20; i++) await up.partition('t', 0).append(batchOf(1 + (i % 4), `r${i}`));
      const src = await rawBatches(up.partition('t', 0));
      // Copied in uneven runs, as frames of a subscription arrive.
      for (let i = 0; i < src.length; i += 3) await down.partition('t', 0).appendReplicated(Buffer.concat(src.slice(i, i + 3)));
      expect(await rawBatches(down.partition('t', 0))).toEqual(src);
      expect(down.partition('t', 0).highWatermark).toBe(up.partition('t', 0).highWatermark);
      expect(await down.partition('t', 0).lastEpoch()).toBe(up.node_epoch);
    } finally {
      await up.close();
      await down.close();
    }
  });

  test('a batch that does not continue the log is refused with OFFSET_MISMATCH and nothing is written', async () => {
    const up = await open('up');
    const down = await open('down');
    try {
      await up.createTopic('t');
      await down.createTopic('t');
      for (let i = 0; i < 5; i++) await up.partition('t', 0).append(batchOf(2, `r${i}`));
      const src = await rawBatches(up.partition('t', 0));
      const p = down.partition('t', 0);
      await expect(p.appendReplicated(src[1]!)).rejects.toMatchObject({ code: 'OFFSET_MISMATCH', message: expect.stringMatching(/starts at offset 2, but the log ends at 0/) });
      await expect(p.appendReplicated(Buffer.concat([src[0]!, src[2]!]))).rejects.toMatchObject({ code: 'OFFSET_MISMATCH' });
      const flipped = Buffer.from(src[0]!);
      flipped[flipped.length - 1]! ^= 0xff;
      await expect(p.appendReplicated(flipped)).rejects.toMatchObject({ code: 'CORRUPT_BATCH' });
      expect(p.logEndOffset).toBe(0);
      // Concurrent: the second of two appends racing for the same offset loses, the log stays dense.
      const results = await Promise.allSettled([p.appendReplicated(src[0]!), p.appendReplicated(src[0]!)]);
      expect(results.map((r) => r.status).sort()).toEqual(['fulfilled', 'rejected']);
      expect(p.logEndOffset).toBe(2);
    } finally {
      await up.close();
      await down.close();
    }
  });

  test('an empty log starts at an upstream log start offset; a non-empty one refuses', async () => {
    const s = await open('n');
    try {
      await s.createTopic('t');
      const p = s.partition('t', 0);
      await p.startAt(1000);
      expect([p.logStartOffset, p.logEndOffset, p.highWatermark]).toEqual([1000, 1000, 1000]);
      await expect(p.read(999, 100)).rejects.toMatchObject({ code: 'OFFSET_OUT_OF_RANGE' });
      expect(await p.append(batchOf(3))).toEqual({ base_offset: 1000, last_offset: 1002 });
      await expect(p.startAt(5)).rejects.toMatchObject({ code: 'INVALID_ARGUMENT', message: expect.stringMatching(/not empty/) });
    } finally {
      await s.close();
    }
    const again = await open('n');
    try {
      const p = again.partition('t', 0);
      expect([p.logStartOffset, p.logEndOffset]).toEqual([1000, 1003]);
      expect((await readAll(p)).map((r) => r.offset)).toEqual([1000, 1001, 1002]);
    } finally {
      await again.close();
    }
  });
});

test('startAt past archived segments: refused by default; with forget_archived their records go (the files stay)', async () => {
  const s = await LogStore.open({ dir: `${dir}/a`, clock, disk_free_floor_bytes: 0, retention_check_interval_ms: 0, archive_interval_ms: 0, archive_url: `file://${dir}/archive` });
  try {
    await s.createTopic('t');
    const p = s.partition('t', 0);
    await p.append(batchOf(3));
    await p.roll();
    expect(await p.archiveSegments()).toBeGreaterThan(0);
    await p.truncateTo(p.logStartOffset).catch(() => undefined); // archived segments stay archived
    const start = p.logStartOffset;
    const end = p.logEndOffset;
    await expect(p.startAt(end + 100)).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    expect(p.logStartOffset).toBe(start);
    const forgotten = await p.startAt(end + 100, { forget_archived: true });
    expect(forgotten).toBeGreaterThan(0);
    expect([p.logStartOffset, p.logEndOffset]).toEqual([end + 100, end + 100]);
    expect(s.catalog.listArchived(['t', 0])).toEqual([]);
    expect(await p.append(batchOf(1))).toEqual({ base_offset: end + 100, last_offset: end + 100 });
  } finally {
    await s.close();
  }
});

describe('leader epochs', () => {
  test('each incarnation of a node stamps a larger epoch, and epochEnd says where each one ends', async () => {
    let s = await open('n');
    await s.createTopic('t');
    const e1 = s.node_epoch;
    for (let i = 0; i < 3; i++) await s.partition('t', 0).append(batchOf(2));
    await s.close();
    s = await open('n');
    const e2 = s.node_epoch;
    expect(e2).toBeGreaterThan(e1);
    try {
      const p = s.partition('t', 0);
      await p.append(batchOf(4));
      const epochs: number[] = [];
      for (const b of await rawBatches(p)) epochs.push(batchLeaderEpoch(b));
      expect(epochs).toEqual([e1, e1, e1, e2]);
      expect(p.epochEnd(e1)).toEqual({ epoch: e1, end_offset: 6, latest_epoch: e2 });
      expect(p.epochEnd(e2)).toEqual({ epoch: e2, end_offset: 10, latest_epoch: e2 });
      expect(p.epochEnd(e2 + 5)).toEqual({ epoch: e2, end_offset: 10, latest_epoch: e2 });
      expect(p.epochEnd(e1 - 1)).toEqual({ epoch: -1, end_offset: 0, latest_epoch: e2 });
      // Truncation forgets epochs that no longer have data.
      await p.truncateTo(6);
      expect(p.epochEnd(e2)).toEqual({ epoch: e1, end_offset: 6, latest_epoch: e1 });
      // An origin marks its new epoch at the log end before writing in it (relays learn of lost tails).
      p.markEpochStart(e2 + 1);
      expect(p.epochEnd(e1)).toEqual({ epoch: e1, end_offset: 6, latest_epoch: e2 + 1 });
      expect(await p.lastEpoch()).toBe(e1);
    } finally {
      await s.close();
    }
  });

  test('a lost catalog is rebuilt with its epochs from the segments, and the node epoch still grows', async () => {
    let s = await open('n');
    await s.createTopic('t');
    await s.partition('t', 0).append(batchOf(2));
    const e1 = s.node_epoch;
    await s.close();
    const { rmSync } = await import('node:fs');
    rmSync(`${dir}/n/catalog`, { recursive: true });
    s = await open('n');
    try {
      expect(s.node_epoch).toBeGreaterThan(e1);
      expect(s.partition('t', 0).epochEnd(e1)).toEqual({ epoch: e1, end_offset: 2, latest_epoch: e1 });
    } finally {
      await s.close();
    }
  });
});
