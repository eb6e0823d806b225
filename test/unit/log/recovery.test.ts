import { appendFileSync, existsSync, openSync, readFileSync, readSync, rmSync, statSync, truncateSync, writeFileSync, writeSync, closeSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, test } from 'vitest';
import { LogStore, forEachBatch, type FsyncPolicy } from '../../../engine/index.js';
import { batchOf, readAll } from '../../support/batches.js';
import { fileHandlePrototype } from '../../support/file-handle.js';
import { tempDir } from '../../support/tmp.js';

let dir: string;
let cleanup: () => void;
let open_stores: LogStore[] = [];

const openStore = async () => {
  const s = await LogStore.open({ dir, disk_free_floor_bytes: 0, retention_check_interval_ms: 0 });
  open_stores.push(s);
  return s;
};

beforeEach(() => {
  ({ dir, cleanup } = tempDir());
  open_stores = [];
});
afterEach(async () => {
  for (const s of open_stores) await s.close();
  cleanup();
});

function flipByte(path: string, position: number): void {
  const fd = openSync(path, 'r+');
  const b = Buffer.alloc(1);
  readSync(fd, b, 0, 1, position);
  b[0] = b[0]! ^ 0xff;
  writeSync(fd, b, 0, 1, position);
  closeSync(fd);
}

/** Writes `batches` batches of 3 records (~300 bytes each) and returns the partition's layout. */
async function fill(fsync: FsyncPolicy, batches: number, segment_bytes = 1 << 20) {
  const s = await openStore();
  await s.createTopic('t', { fsync, segment_bytes });
  const p = s.partition('t', 0);
  for (let i = 0; i < batches; i++) await p.append(batchOf(3, `b${i}`, 1_000_000 + i, 80));
  return { s, p, segs: p.segmentInfo() };
}

async function crash(s: LogStore): Promise<void> {
  await s.abandon();
  open_stores = open_stores.filter((x) => x !== s);
}

describe('recovery', () => {
  test('clean close and crash both reopen with every acknowledged record', async () => {
    const { s } = await fill({ policy: 'always' }, 20);
    await s.close();
    let s2 = await openStore();
    expect((await readAll(s2.partition('t', 0))).length).toBe(60);
    await s2.partition('t', 0).append(batchOf(1));
    await crash(s2);
    s2 = await openStore();
    const p = s2.partition('t', 0);
    expect(p.highWatermark).toBe(61);
    expect(p.recovered_truncated_bytes).toBe(0);
    expect((await readAll(p)).map((r) => r.offset)).toEqual(Array.from({ length: 61 }, (_, i) => i));
  });

  test('a torn tail (partial batch after the last acknowledged one) is truncated and appends continue', async () => {
    const { s, segs } = await fill({ policy: 'always' }, 10);
    const active = segs[segs.length - 1]!;
    await crash(s);
    // An unacknowledged write that only half reached the disk.
    appendFileSync(active.path, batchOf(5, 'torn').subarray(0, 100));
    const s2 = await openStore();
    const p = s2.partition('t', 0);
    expect(p.recovered_truncated_bytes).toBe(100);
    expect(statSync(active.path).size).toBe(active.size_bytes);
    expect(p.highWatermark).toBe(30);
    expect(await p.append(batchOf(1))).toEqual({ base_offset: 30, last_offset: 30 });
  });

  test('under fsync=never a damaged last batch past the durable point is a torn tail', async () => {
    const { s, segs } = await fill({ policy: 'never' }, 10);
    const active = segs[segs.length - 1]!;
    expect(active.durable_bytes).toBe(0);
    await crash(s);
    flipByte(active.path, active.size_bytes - 5); // inside the last batch's CRC range
    const s2 = await openStore();
    const p = s2.partition('t', 0);
    expect(p.highWatermark).toBe(27);
    expect(p.recovered_truncated_bytes).toBeGreaterThan(0);
  });

  test('zero-filled tail (file extended, data never written) is truncated', async () => {
    const { s, segs } = await fill({ policy: 'always' }, 5);
    await crash(s);
    appendFileSync(segs[0]!.path, Buffer.alloc(4096));
    const p = (await openStore()).partition('t', 0);
    expect(p.highWatermark).toBe(15);
    expect(p.recovered_truncated_bytes).toBe(4096);
  });

  test('damage before the durable point of the active segment is refused, naming file, byte and verify', async () => {
    const { s, segs } = await fill({ policy: 'always' }, 10);
    const active = segs[segs.length - 1]!;
    await crash(s);
    flipByte(active.path, 40); // inside the first batch, which was fsynced and acknowledged
    const err = await LogStore.open({ dir, disk_free_floor_bytes: 0 }).then(
      (st) => { open_stores.push(st); return null; },
      (e: unknown) => e,
    );
    expect(err).toMatchObject({ code: 'CORRUPT_SEGMENT', name: 'CorruptSegmentError', details: { file: active.path, position: 0 } });
    expect((err as Error).message).toContain(active.path);
    expect((err as Error).message).toContain('relaylog verify');
    // Nothing was truncated by the refused open.
    expect(statSync(active.path).size).toBe(active.size_bytes);
  });

  test('damage in a sealed segment is refused even though it is not the last file', async () => {
    const { s, segs } = await fill({ policy: 'always' }, 60, 16 * 1024);
    expect(segs.length).toBeGreaterThan(1);
    await s.close();
    open_stores = [];
    const sealed = segs[0]!;
    // Sealed segments are trusted by size on a clean open; damage is caught when the catalog is gone
    // (rebuild scans everything) and by every read (CRC on read).
    flipByte(sealed.path, 2000);
    const s2 = await openStore();
    await expect(readAll(s2.partition('t', 0))).rejects.toMatchObject({ code: 'CORRUPT_SEGMENT', details: { file: sealed.path } });
    await s2.close();
    open_stores = [];
    rmSync(join(dir, 'catalog'), { recursive: true });
    await expect(LogStore.open({ dir, disk_free_floor_bytes: 0 })).rejects.toMatchObject({ code: 'CORRUPT_SEGMENT', details: { file: sealed.path } });
  });

  test('a sealed segment whose size no longer matches the catalog is rescanned; truncation inside it is corruption', async () => {
    const { s, segs } = await fill({ policy: 'always' }, 60, 16 * 1024);
    await s.close();
    open_stores = [];
    truncateSync(segs[0]!.path, segs[0]!.size_bytes - 10);
    await expect(LogStore.open({ dir, disk_free_floor_bytes: 0 })).rejects.toMatchObject({ code: 'CORRUPT_SEGMENT', details: { file: segs[0]!.path } });
  });

  test.each([true, false])('a merge cut off after its rename (catalog kept: %s): the covered files go, every record stays', async (keep_catalog) => {
    const { s, p, segs } = await fill({ policy: 'always' }, 250, 16 * 1024);
    expect(segs.length).toBeGreaterThan(3);
    const want = await readAll(p);
    await s.close();
    open_stores = [];
    // What a merge of segments 0..2 leaves when it stops right after renaming its output over
    // segment 0: the concatenation in segment 0's file, segments 1 and 2 still there.
    const merged = Buffer.concat(segs.slice(0, 3).map((x) => readFileSync(x.path)));
    writeFileSync(segs[0]!.path, merged);
    if (!keep_catalog) rmSync(join(dir, 'catalog'), { recursive: true });
    const s2 = await openStore();
    const p2 = s2.partition('t', 0);
    expect(existsSync(segs[1]!.path)).toBe(false);
    expect(existsSync(segs[2]!.path)).toBe(false);
    expect(p2.segmentInfo().map((x) => x.base_offset)).toEqual([segs[0]!.base_offset, ...segs.slice(3).map((x) => x.base_offset)]);
    expect(await readAll(p2)).toEqual(want);
    expect(await p2.offsetForTimestamp(1_000_050)).toBe(150);
  });

  test('a segment that runs into the next one but does not end where a later one begins is refused, not guessed at', async () => {
    const { s, segs } = await fill({ policy: 'always' }, 80, 16 * 1024);
    await s.close();
    open_stores = [];
    // Segment 0 followed by the first half of segment 1's bytes, cut at a batch boundary.
    const one = readFileSync(segs[1]!.path);
    let cut = 0;
    forEachBatch(one, (pos, size) => void (pos + size <= one.length / 2 && (cut = pos + size)));
    expect(cut).toBeGreaterThan(0);
    writeFileSync(segs[0]!.path, Buffer.concat([readFileSync(segs[0]!.path), one.subarray(0, cut)]));
    const err = await LogStore.open({ dir, disk_free_floor_bytes: 0 }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'CORRUPT_SEGMENT', details: { file: segs[0]!.path } });
    expect((err as Error).message).toMatch(/past the start of the next segment .* does not end where a later segment begins/);
    expect(existsSync(segs[1]!.path)).toBe(true);
  });

  /**
   * The state a power loss can leave under fsync=interval|never, where a roll's fdatasync runs in
   * the background: segment `i` rolled but its seal never reached the catalog (record not sealed,
   * nothing durable), the segments after it were written but never made durable either, and the
   * disk kept only part of segment i's last batch.
   */
  /** Records segments `from`.. as rolled but never sealed or made durable (a background seal cut off). */
  async function unsealFrom(s: LogStore, from: number): Promise<void> {
    const key = ['t', 0] as const;
    for (const r of s.catalog.listSegments(key).slice(from)) await s.catalog.putSegment(key, r.base_offset, { ...r.record, sealed: false, durable_bytes: 0 });
  }

  async function rolledButUnsynced(later_durable: boolean) {
    const { s, p, segs } = await fill({ policy: 'never' }, 150, 16 * 1024);
    expect(segs.length).toBeGreaterThanOrEqual(3);
    const want = await readAll(p);
    const i = 1;
    const key = ['t', 0] as const;
    await unsealFrom(s, i);
    const last = s.catalog.listSegments(key).at(-1)!;
    if (later_durable) await s.catalog.putSegment(key, last.base_offset, { ...last.record, durable_bytes: 100 });
    await crash(s);
    truncateSync(segs[i]!.path, segs[i]!.size_bytes - 100);
    return { segs, i, want };
  }

  test('a rolled segment torn before its background fdatasync ends the log there; the later, never durable segments go', async () => {
    const { segs, i, want } = await rolledButUnsynced(false);
    const p = (await openStore()).partition('t', 0);
    // Segment i keeps every whole batch; its torn last batch and everything after it are gone.
    const kept = want.filter((r) => r.offset < segs[i]!.next_offset - 3);
    expect(p.highWatermark).toBe(segs[i]!.next_offset - 3);
    expect(await readAll(p)).toEqual(kept);
    for (const seg of segs.slice(i + 1)) expect(existsSync(seg.path)).toBe(false);
    expect(p.segmentInfo().map((x) => x.base_offset)).toEqual(segs.slice(0, i + 1).map((x) => x.base_offset));
    expect(p.recovered_truncated_bytes).toBeGreaterThan(segs.slice(i + 1).reduce((n, x) => n + x.size_bytes, 0));
    expect(await p.offsetForTimestamp(1_000_000 + 149)).toBeNull(); // the time index forgot the cut batches
    expect(await p.append(batchOf(1, 'after'))).toEqual({ base_offset: p.highWatermark - 1, last_offset: p.highWatermark - 1 });
  });

  test('a torn rolled segment is still corruption when a later segment was recorded durable', async () => {
    const { segs, i } = await rolledButUnsynced(true);
    await expect(LogStore.open({ dir, disk_free_floor_bytes: 0 })).rejects.toMatchObject({ code: 'CORRUPT_SEGMENT', details: { file: segs[i]!.path } });
    for (const seg of segs.slice(i + 1)) expect(existsSync(seg.path)).toBe(true);
  });

  test('a rolled segment whose background seal a process crash cut off is fdatasynced before open records it sealed', async () => {
    const { s, segs } = await fill({ policy: 'never' }, 150, 16 * 1024);
    const key = ['t', 0] as const;
    await unsealFrom(s, 1);
    await crash(s);
    const proto = await fileHandlePrototype(dir);
    const real = proto.datasync;
    let calls = 0;
    proto.datasync = function (this: unknown, ...a: unknown[]) {
      calls++;
      return real.apply(this, a);
    };
    try {
      const s2 = await openStore();
      await s2.catalog.flush();
      expect(s2.catalog.listSegments(key)[1]!.record).toMatchObject({ sealed: true, durable_bytes: segs[1]!.size_bytes });
      // One for each rescanned file that the catalog did not know durable (not the first: it was sealed).
      expect(calls).toBeGreaterThanOrEqual(segs.length - 1);
    } finally {
      proto.datasync = real;
    }
  });

  test('a merge renamed over a rolled segment whose seal record was not in the catalog yet keeps every record', async () => {
    const { s, p, segs } = await fill({ policy: 'interval', interval_ms: 60_000 }, 200, 16 * 1024);
    expect(segs.length).toBeGreaterThanOrEqual(4);
    const want = await readAll(p);
    await unsealFrom(s, 1);
    await crash(s);
    writeFileSync(segs[1]!.path, Buffer.concat([readFileSync(segs[1]!.path), readFileSync(segs[2]!.path)]));
    const p2 = (await openStore()).partition('t', 0);
    expect(await readAll(p2)).toEqual(want);
    expect(existsSync(segs[2]!.path)).toBe(false); // the merge's leftover
    for (const seg of segs.slice(3)) expect(existsSync(seg.path)).toBe(true);
  });

  test('the background seal does not close a handle that a scan under the lock is using', async () => {
    const s = await LogStore.open({ dir, disk_free_floor_bytes: 0, retention_check_interval_ms: 0, memory_tier_bytes: 0 });
    open_stores.push(s);
    await s.createTopic('t', { segment_bytes: 20 * 1024 * 1024, fsync: { policy: 'never' }, max_message_bytes: 2 * 1024 * 1024 });
    const p = s.partition('t', 0);
    const proto = await fileHandlePrototype(dir);
    const real_sync = proto.datasync;
    const real_read = proto.read;
    let opened!: () => void;
    const gate = new Promise<void>((r) => (opened = r));
    proto.datasync = function (this: unknown, ...a: unknown[]) {
      return gate.then(() => real_sync.apply(this, a));
    };
    try {
      for (let i = 0; i < 21; i++) await p.append(batchOf(1, `k${i}`, 1_000_000 + i, 1024 * 1024)); // the last one rolls
      expect(p.segmentInfo().length).toBe(2);
      let reads = 0;
      // The seal completes during rebuildIndexes' first chunk read of the rolled segment.
      proto.read = function (this: unknown, ...a: unknown[]) {
        if (++reads === 1) opened();
        return real_read.apply(this, a);
      };
      await p.rebuildIndexes();
    } finally {
      proto.read = real_read;
      proto.datasync = real_sync;
      opened();
    }
  });

  test('a deleted LMDB catalog is rebuilt from the segments on open', async () => {
    const { s } = await fill({ policy: 'always' }, 80, 16 * 1024);
    const p0 = s.partition('t', 0);
    const want = await readAll(p0);
    const ts_answer = await p0.offsetForTimestamp(1_000_050);
    await s.close();
    open_stores = [];
    rmSync(join(dir, 'catalog'), { recursive: true });
    const s2 = await openStore();
    const p = s2.partition('t', 0);
    expect(s2.catalog.fresh).toBe(true);
    await s2.catalog.flush(); // index writes are asynchronous LMDB puts
    expect(s2.catalog.offsetFloor(['t', 0], p.segmentInfo()[1]!.base_offset, 200)).not.toBeNull();
    expect(await readAll(p)).toEqual(want);
    expect(await p.offsetForTimestamp(1_000_050)).toBe(ts_answer);
    expect(ts_answer).toBe(150);
  });

  test('without a catalog, torn garbage that no sound batch follows is a tail and is cut', async () => {
    const { s, segs } = await fill({ policy: 'always' }, 10);
    await crash(s);
    rmSync(join(dir, 'catalog'), { recursive: true });
    appendFileSync(segs[0]!.path, Buffer.from('half-written batch header and garbage '.repeat(20)));
    const p = (await openStore()).partition('t', 0);
    expect(p.highWatermark).toBe(30);
    expect(statSync(segs[0]!.path).size).toBe(segs[0]!.size_bytes);
  });

  test('without a catalog, damage followed by sound data is not guessed at', async () => {
    const { s, segs } = await fill({ policy: 'always' }, 10);
    await crash(s);
    rmSync(join(dir, 'catalog'), { recursive: true });
    flipByte(segs[0]!.path, 500);
    await expect(LogStore.open({ dir, disk_free_floor_bytes: 0 })).rejects.toMatchObject({ code: 'CORRUPT_SEGMENT' });
  });

  test('rebuildIndexes() reproduces exactly the index the append path wrote', async () => {
    const { s } = await fill({ policy: 'always' }, 120, 16 * 1024);
    const dump = () => ({
      o: [...s.catalog.oindex.getRange({ start: ['t', 0, -1], end: ['t', 0, 2 ** 53] })].map((e) => [e.key, e.value]),
      t: [...s.catalog.tindex.getRange({ start: ['t', 0, -(2 ** 53)], end: ['t', 0, 2 ** 53] })].map((e) => [e.key, e.value]),
    });
    await s.catalog.flush();
    const live = dump();
    expect(live.o.length).toBeGreaterThanOrEqual(9); // ~36 KiB of log at one entry per 4 KiB
    await s.rebuildIndexes();
    expect(dump()).toEqual(live);
  });
});
