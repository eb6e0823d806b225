import { readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, test } from 'vitest';
import { LogStore, ManualClock, encodeBatch, type PartitionLog } from '../../../engine/index.js';
import { readAll } from '../../support/batches.js';
import { tempDir } from '../../support/tmp.js';

/*
 * Compaction through the engine: latest record per key kept at its offset, tombstones removed
 * after delete.retention, the active segment untouched, crash safety at both ends of the swap, and
 * readers that race it.
 */

let dir: string;
let cleanup: () => void;
const T0 = 1_700_000_000_000;
const clock = new ManualClock(T0);
const open = () => LogStore.open({ dir, clock, disk_free_floor_bytes: 0, retention_check_interval_ms: 0, memory_tier_bytes: 0 });
beforeEach(() => ({ dir, cleanup } = tempDir()));
afterEach(() => cleanup());

/** 40 keys written 10 times each (value `k<key>@<round>`), one record per batch, ~400 B each. */
async function fill(p: PartitionLog, rounds = 10): Promise<void> {
  for (let r = 0; r < rounds; r++) {
    for (let k = 0; k < 40; k++) await p.append(encodeBatch([{ key: `k${k}`, value: `k${k}@${r}`.padEnd(400, '.'), timestamp_ms: T0 + r * 40 + k }]));
  }
}

const view = async (p: PartitionLog) => (await readAll(p)).map((r) => [r.offset, r.key?.toString() ?? null, r.value?.toString().replace(/\.+$/, '') ?? null] as const);

describe('compaction', () => {
  test('keeps the latest record per key at its offset; reads skip removed offsets; the active segment is untouched', async () => {
    const s = await open();
    try {
      await s.createTopic('reg', { cleanup_policy: 'compact', segment_bytes: 16 * 1024 });
      const p = s.partition('reg', 0);
      await fill(p);
      const before = await view(p);
      const active_before = p.segmentInfo().at(-1)!;
      const r = await s.compact('reg');
      expect(r.segments_rewritten).toBeGreaterThan(3);
      expect(r.bytes_after).toBeLessThan(r.bytes_before / 2);
      const after = await view(p);
      // Every record kept is the original at its offset, and it is the latest of its key.
      const orig = new Map(before.map((x) => [x[0], x]));
      const last = new Map(before.map((x) => [x[1], x[0]]));
      for (const x of after) expect(orig.get(x[0])).toEqual(x);
      const active = p.segmentInfo().at(-1)!;
      expect(active).toEqual(active_before);
      for (const x of after) if (x[0] < active.base_offset) expect(last.get(x[1])).toBe(x[0]);
      // Each key's latest value is still there.
      for (const [key, off] of last) expect(after.some((x) => x[1] === key && x[0] === off)).toBe(true);
      // A read at a removed offset returns the next record kept.
      const removed = before.find((x) => !after.some((y) => y[0] === x[0]))!;
      const rr = await p.read(removed[0], 1 << 20);
      expect(rr.next_offset).toBeGreaterThan(removed[0]);
      expect(p.highWatermark).toBe(before.length);
      expect(await p.offsetForTimestamp(T0 + 9 * 40)).toBe(9 * 40); // the last round's first record
      // A second pass has nothing to do.
      expect((await s.compact('reg')).segments_rewritten).toBe(0);
    } finally {
      await s.close();
    }
    // ... and the compacted log reopens as it was.
    const again = await open();
    try {
      expect((await view(again.partition('reg', 0))).length).toBeLessThan(400);
    } finally {
      await again.close();
    }
  });

  test('tombstones remove their key once delete.retention has passed', async () => {
    const s = await open();
    try {
      await s.createTopic('reg', { cleanup_policy: 'compact', segment_bytes: 16 * 1024 });
      const p = s.partition('reg', 0);
      await fill(p, 3);
      for (let k = 0; k < 10; k++) await p.append(encodeBatch([{ key: `k${k}`, value: null, timestamp_ms: T0 + 1000 }]));
      await p.roll();
      await p.append(encodeBatch([{ key: 'other', value: 'x', timestamp_ms: T0 + 2000 }]));
      clock.set(T0 + 1000 + 3_600_000);
      await p.compact({ delete_retention_ms: 86_400_000 });
      expect((await view(p)).filter((x) => x[2] === null)).toHaveLength(10); // not yet
      await p.compact({ delete_retention_ms: 60_000 });
      const left = await view(p);
      expect(left.filter((x) => x[2] === null)).toHaveLength(0);
      expect(new Set(left.map((x) => x[1]))).toEqual(new Set([...Array.from({ length: 30 }, (_, k) => `k${k + 10}`), 'other']));
    } finally {
      clock.set(T0);
      await s.close();
    }
  });

  test('a crash after the rename but before the catalog update: recovery accepts the compacted copy', async () => {
    let s = await open();
    await s.createTopic('reg', { cleanup_policy: 'compact', segment_bytes: 16 * 1024 });
    await fill(s.partition('reg', 0));
    const old_records = s.catalog.listSegments(['reg', 0]);
    await s.compact('reg');
    const want = await view(s.partition('reg', 0));
    // Put the pre-compaction records back: the catalog as a crash between rename and update leaves it.
    for (const r of old_records) await s.catalog.putSegment(['reg', 0], r.base_offset, r.record);
    await s.close();
    s = await open();
    try {
      expect(await view(s.partition('reg', 0))).toEqual(want);
    } finally {
      await s.close();
    }
  });

  test('a crash before the rename leaves the original segment and a copy aside, which recovery removes', async () => {
    let s = await open();
    await s.createTopic('reg', { cleanup_policy: 'compact', segment_bytes: 16 * 1024 });
    await fill(s.partition('reg', 0));
    const want = await view(s.partition('reg', 0));
    const seg = s.partition('reg', 0).segmentInfo()[0]!;
    await s.close();
    writeFileSync(`${seg.path}.compact`, Buffer.alloc(100, 1)); // half-written, never renamed
    s = await open();
    try {
      expect(await view(s.partition('reg', 0))).toEqual(want);
      expect(readdirSync(join(dir, 'topics', 'reg', '0')).filter((f) => f.endsWith('.compact'))).toEqual([]);
    } finally {
      await s.close();
    }
  });

  test('a sealed segment that shrank and does not end at its recorded offset is still refused as damage', async () => {
    let s = await open();
    await s.createTopic('reg', { cleanup_policy: 'compact', segment_bytes: 16 * 1024 });
    await fill(s.partition('reg', 0));
    const seg = s.partition('reg', 0).segmentInfo()[1]!;
    await s.close();
    const { truncateSync } = await import('node:fs');
    truncateSync(seg.path, seg.size_bytes - 1000);
    await expect(open()).rejects.toMatchObject({ code: 'CORRUPT_SEGMENT', message: expect.stringMatching(/not a compacted copy/) });
  });

  test('readers racing compaction see every offset once, each record either version', async () => {
    const s = await open();
    try {
      await s.createTopic('reg', { cleanup_policy: 'compact', segment_bytes: 16 * 1024 });
      const p = s.partition('reg', 0);
      await fill(p);
      const orig = new Map((await view(p)).map((x) => [x[0], x]));
      let stop = false;
      let reads = 0;
      const reader = (async () => {
        while (!stop && reads < 200) {
          const got = await view(p);
          let prev = -1;
          for (const x of got) {
            expect(x[0]).toBeGreaterThan(prev);
            expect(orig.get(x[0])).toEqual(x);
            prev = x[0];
          }
          reads++;
        }
      })();
      await s.compact('reg');
      stop = true;
      await reader;
      expect(reads).toBeGreaterThan(0);
    } finally {
      await s.close();
    }
  });
});
