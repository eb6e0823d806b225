import { readdirSync } from 'node:fs';
import { afterEach, beforeEach, describe, expect, test } from 'vitest';
import { LogStore, ManualClock, checkBatch, forEachBatch, readBatchHeader } from '../../../engine/index.js';
import { batchOf, readAll, recordsOf } from '../../support/batches.js';
import { fileHandlePrototype } from '../../support/file-handle.js';
import { tempDir } from '../../support/tmp.js';

// The whole suite runs once per read-path configuration: SSD only, a memory tier so small that
// reads mix memory and SSD, and the default memory tier.
describe.each([
  { tier: 'ssd only', memory_tier_bytes: 0 },
  { tier: 'tiny memory tier', memory_tier_bytes: 8 * 1024 },
  { tier: 'default memory tier', memory_tier_bytes: 256 * 1024 * 1024 },
])('partition log ($tier)', ({ memory_tier_bytes }) => {
let dir: string;
let cleanup: () => void;
let store: LogStore;
const clock = new ManualClock(1_700_000_000_000);

beforeEach(async () => {
  ({ dir, cleanup } = tempDir());
  store = await LogStore.open({ dir, clock, disk_free_floor_bytes: 0, retention_check_interval_ms: 0, memory_tier_bytes });
});
afterEach(async () => {
  await store.close();
  cleanup();
});

describe('append', () => {
  test('assigns dense offsets and stamps offset and leader epoch without breaking the CRC', async () => {
    await store.createTopic('t');
    const p = store.partition('t', 0);
    const a = await p.append(batchOf(3), { leader_epoch: 7 });
    const b = await p.append(batchOf(2));
    expect(a).toEqual({ base_offset: 0, last_offset: 2 });
    expect(b).toEqual({ base_offset: 3, last_offset: 4 });
    const r = await p.read(0, 1 << 20);
    const headers: Array<[number, number]> = [];
    forEachBatch(r.records, (pos, size) => {
      expect(checkBatch(r.records, pos, size)).toBeNull();
      const h = readBatchHeader(r.records, pos);
      headers.push([h.base_offset, h.partition_leader_epoch]);
    });
    expect(headers).toEqual([[0, 7], [3, 0]]);
    expect(p.highWatermark).toBe(5);
  });

  test('concurrent appends are group-committed into contiguous, non-overlapping ranges', async () => {
    await store.createTopic('t');
    const p = store.partition('t', 0);
    const results = await Promise.all(Array.from({ length: 64 }, (_, i) => p.append(batchOf(1 + (i % 3), `p${i}`))));
    const ranges = results.map((r) => [r.base_offset, r.last_offset] as const).sort((x, y) => x[0] - y[0]);
    let next = 0;
    for (const [lo, hi] of ranges) {
      expect(lo).toBe(next);
      next = hi + 1;
    }
    expect(p.highWatermark).toBe(next);
    expect((await readAll(p)).map((r) => r.offset)).toEqual(Array.from({ length: next }, (_, i) => i));
  });

  test('a record set of several concatenated batches is appended as one unit', async () => {
    await store.createTopic('t');
    const p = store.partition('t', 0);
    const r = await p.append(Buffer.concat([batchOf(2, 'a'), batchOf(3, 'b')]));
    expect(r).toEqual({ base_offset: 0, last_offset: 4 });
    expect((await readAll(p)).map((x) => x.value!.toString())).toEqual(['a-0', 'a-1', 'b-0', 'b-1', 'b-2']);
  });
});

describe('read', () => {
  test('returns whole batches covering the offset; batch-granular start; at least one batch', async () => {
    await store.createTopic('t');
    const p = store.partition('t', 0);
    for (let i = 0; i < 10; i++) await p.append(batchOf(10, `b${i}`));
    const r = await p.read(25, 1); // max_bytes smaller than a batch: still one whole batch
    const recs = recordsOf(r.records);
    expect(recs[0]!.offset).toBe(20);
    expect(recs).toHaveLength(10);
    expect(r.next_offset).toBe(30);
    expect(r.high_watermark).toBe(100);
  });

  test('respects max_bytes across batches', async () => {
    await store.createTopic('t');
    const p = store.partition('t', 0);
    const one = batchOf(1, 'x', 1, 1000);
    for (let i = 0; i < 20; i++) await p.append(batchOf(1, 'x', 1, 1000));
    const r = await p.read(0, one.length * 5 + 10);
    expect(r.records.length).toBe(one.length * 5);
    expect(r.next_offset).toBe(5);
  });

  test('at the high watermark returns nothing; outside [log start, hw] is OFFSET_OUT_OF_RANGE naming both bounds', async () => {
    await store.createTopic('t');
    const p = store.partition('t', 0);
    await p.append(batchOf(4));
    const r = await p.read(4, 1000);
    expect(r.records.length).toBe(0);
    expect(r.next_offset).toBe(4);
    await expect(p.read(5, 1000)).rejects.toMatchObject({ code: 'OFFSET_OUT_OF_RANGE', message: expect.stringMatching(/0\.\.4/) });
    await expect(p.read(-1, 1000)).rejects.toMatchObject({ code: 'OFFSET_OUT_OF_RANGE' });
    await expect(p.read(1.5, 1000)).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    await expect(p.read(0, 0)).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
  });

  test('reads across many rolled segments using the sparse index', async () => {
    await store.createTopic('t', { segment_bytes: 16 * 1024 });
    const p = store.partition('t', 0);
    for (let i = 0; i < 400; i++) await p.append(batchOf(5, `s${i}`, 1, 100));
    expect(p.stats().segment_count).toBeGreaterThan(10);
    for (const off of [0, 1, 499, 500, 777, 1999]) {
      const r = await p.read(off, 1);
      const recs = recordsOf(r.records);
      expect(recs[0]!.offset).toBeLessThanOrEqual(off);
      expect(recs[recs.length - 1]!.offset).toBeGreaterThanOrEqual(off);
    }
    expect((await readAll(p)).length).toBe(2000);
  });

  test('an index entry that does not point at its batch is ignored (pair assertion), never trusted', async () => {
    await store.createTopic('t');
    const p = store.partition('t', 0);
    for (let i = 0; i < 30; i++) await p.append(batchOf(2, `b${i}`, 1, 300));
    // Point offset 40 at a position in the middle of some batch, as a stale entry would.
    store.catalog.putOffsetEntry(['t', 0], 40, 0, 1234);
    await store.catalog.flush();
    const recs = recordsOf((await p.read(41, 1)).records);
    expect(recs.map((r) => r.offset)).toEqual([40, 41]);
    expect(recs[0]!.value!.toString()).toMatch(/^b20-0/);
  });
});

describe('offsetForTimestamp', () => {
  test('first offset with timestamp >= T, including non-monotonic timestamps and exact boundaries', async () => {
    await store.createTopic('t', { segment_bytes: 16 * 1024 });
    const p = store.partition('t', 0);
    // batch i holds 4 records at t0 + 10*i (batch 5 goes back in time)
    const t0 = 1_000_000;
    const stamps: number[] = [];
    for (let i = 0; i < 40; i++) {
      const ts = i === 5 ? t0 : t0 + 10 * i;
      stamps.push(ts, ts, ts, ts);
      await p.append(batchOf(4, `b${i}`, ts, 200));
    }
    const model = (T: number) => {
      const i = stamps.findIndex((s) => s >= T);
      return i === -1 ? null : i;
    };
    for (const T of [0, t0, t0 + 1, t0 + 10, t0 + 45, t0 + 50, t0 + 51, t0 + 390, t0 + 391]) {
      expect(await p.offsetForTimestamp(T)).toBe(model(T));
    }
  });
});

describe('segments', () => {
  test('roll by size: segment files named by base offset, 20 digits', async () => {
    await store.createTopic('t', { segment_bytes: 16 * 1024 });
    const p = store.partition('t', 0);
    for (let i = 0; i < 50; i++) await p.append(batchOf(1, 'x', 1, 1000));
    const files = readdirSync(`${dir}/topics/t/0`).filter((f) => f.endsWith('.log')).sort();
    expect(files[0]).toBe('00000000000000000000.log');
    expect(files.length).toBe(p.stats().segment_count);
    for (const s of p.segmentInfo()) expect(s.size_bytes).toBeLessThanOrEqual(16 * 1024);
  });

  test('roll by age (segment.ms) on the next append', async () => {
    await store.createTopic('t', { segment_ms: 60_000 });
    const p = store.partition('t', 0);
    await p.append(batchOf(1));
    clock.advance(59_000);
    await p.append(batchOf(1));
    expect(p.stats().segment_count).toBe(1);
    clock.advance(2_000);
    await p.append(batchOf(1));
    expect(p.segmentInfo().map((s) => s.base_offset)).toEqual([0, 2]);
  });

  test('under fsync=never a roll does not wait for the old segment\'s fdatasync; flush() and roll() wait for its seal', async () => {
    await store.createTopic('t', { segment_bytes: 16 * 1024, fsync: { policy: 'never' } });
    const p = store.partition('t', 0);
    for (let i = 0; i < 15; i++) await p.append(batchOf(1, 'x', 1, 1000));
    expect(p.segmentInfo().length).toBe(1);
    // Every fdatasync waits until the gate opens (a slow disk flushing a second of writes).
    const proto = await fileHandlePrototype(dir);
    const real = proto.datasync;
    let opened!: () => void;
    const gate = new Promise<void>((resolve) => (opened = resolve));
    let calls = 0;
    proto.datasync = function (this: unknown, ...a: unknown[]) {
      calls++;
      return gate.then(() => real.apply(this, a));
    };
    try {
      // These cross the roll: each resolves while the old segment's fdatasync is held (the timer
      // only bounds the test if a roll waits for it: the old code hung here).
      const appended = (async () => {
        for (let i = 0; i < 10; i++) await p.append(batchOf(1, 'y', 1, 1000));
        return 'appended';
      })();
      expect(await Promise.race([appended, new Promise((r) => setTimeout(() => r('held by the fdatasync'), 5_000))])).toBe('appended');
      const segs = p.segmentInfo();
      expect(segs.length).toBe(2);
      expect(calls).toBe(1);
      expect(segs[0]).toMatchObject({ sealed: false, durable_bytes: 0 });
      expect(store.catalog.listSegments(['t', 0])[0]!.record).toMatchObject({ sealed: false, durable_bytes: 0 });
      expect((await readAll(p)).length).toBe(25); // readable meanwhile
      // flush() makes nothing durable ahead of the rolled segment: it waits for its seal.
      let flushed = false;
      const flush = p.flush().then(() => (flushed = true));
      for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
      expect(flushed).toBe(false);
      opened();
      await flush;
      const after = p.segmentInfo();
      expect(after[0]).toMatchObject({ sealed: true, durable_bytes: segs[0]!.size_bytes });
      expect(after[1]!.durable_bytes).toBe(after[1]!.size_bytes);
      await store.catalog.flush();
      expect(store.catalog.listSegments(['t', 0])[0]!.record).toMatchObject({ sealed: true, durable_bytes: segs[0]!.size_bytes });
      // An explicit roll returns with the segment it sealed durable.
      await p.append(batchOf(1, 'z', 1, 1000));
      await p.roll();
      expect(p.segmentInfo().at(-2)).toMatchObject({ sealed: true });
    } finally {
      proto.datasync = real;
      opened();
    }
  });

  test('retention by bytes deletes whole sealed segments only', async () => {
    await store.createTopic('t', { segment_bytes: 16 * 1024, retention_bytes: 40 * 1024 });
    const p = store.partition('t', 0);
    // Timestamps are "now", so only retention.bytes applies (retention.ms defaults to 7 days).
    for (let i = 0; i < 100; i++) await p.append(batchOf(1, 'x', clock.now_ms(), 1000));
    const before = p.stats();
    const deleted = await store.applyRetention();
    const after = p.stats();
    expect(deleted).toBeGreaterThan(0);
    expect(after.size_bytes).toBeLessThan(40 * 1024 + 16 * 1024);
    expect(after.size_bytes).toBeGreaterThanOrEqual(40 * 1024 - 16 * 1024);
    expect(after.log_start_offset).toBe(p.segmentInfo()[0]!.base_offset);
    expect(after.high_watermark).toBe(before.high_watermark);
    await expect(p.read(0, 100)).rejects.toMatchObject({ code: 'OFFSET_OUT_OF_RANGE' });
    expect((await readAll(p)).length).toBe(100 - after.log_start_offset);
  });

  test('retention by age judges a segment by its newest record; the active segment stays', async () => {
    await store.createTopic('t', { segment_bytes: 16 * 1024, retention_ms: 3_600_000 });
    const p = store.partition('t', 0);
    const now = clock.now_ms();
    for (let i = 0; i < 30; i++) await p.append(batchOf(1, 'old', now - 7_200_000, 1000));
    for (let i = 0; i < 30; i++) await p.append(batchOf(1, 'new', now, 1000));
    await store.applyRetention();
    const left = await readAll(p);
    expect(left.some((r) => r.value!.toString().startsWith('new'))).toBe(true);
    expect(left.filter((r) => r.value!.toString().startsWith('old')).length).toBeLessThan(30);
    // With everything old, all sealed segments go but the active one remains.
    clock.advance(10 * 3_600_000);
    await store.applyRetention();
    expect(p.stats().segment_count).toBe(1);
  });

  test('truncateTo cuts at a batch boundary across segments and appends continue densely', async () => {
    await store.createTopic('t', { segment_bytes: 16 * 1024 });
    const p = store.partition('t', 0);
    for (let i = 0; i < 60; i++) await p.append(batchOf(2, `a${i}`, 1000 + i, 500));
    await expect(p.truncateTo(41)).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    await p.truncateTo(40);
    expect(p.logEndOffset).toBe(40);
    expect(p.highWatermark).toBe(40);
    await p.append(batchOf(2, 'z', 5000));
    const all = await readAll(p);
    expect(all.map((r) => r.offset)).toEqual(Array.from({ length: 42 }, (_, i) => i));
    expect(all[40]!.value!.toString()).toBe('z-0');
    expect(await p.offsetForTimestamp(1030)).toBe(40);
  });

  test('waitForData resolves on append and times out otherwise', async () => {
    await store.createTopic('t');
    const p = store.partition('t', 0);
    expect(await p.waitForData(0, 20)).toBe(false);
    const waiting = p.waitForData(0, 5_000);
    await p.append(batchOf(1));
    expect(await waiting).toBe(true);
    const ac = new AbortController();
    const aborted = p.waitForData(5, 5_000, ac.signal);
    ac.abort();
    expect(await aborted).toBe(false);
  });
});
});
