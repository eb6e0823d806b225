/**
 * Compaction through the real engine against a model (issue 8): random keyed appends and
 * tombstones, rolls, compactions, clean reopens, crashes (abandon: no fsync, no clean close),
 * crashes cut into a segment's rewrite (the copy left aside unrenamed, or renamed with the catalog
 * as it was at the rename) and into a merge of small segments (at each of its steps), both through
 * the engine's test hooks. After every step:
 *  - the latest value of every live key is readable, at the offset the model says;
 *  - every record read is the one appended at that offset (offsets never change);
 *  - offsets read are strictly increasing and end at the high watermark;
 *  - no key that was deleted by a tombstone older than the horizon comes back once compacted.
 *
 * Replay: SEED=<n> npx vitest run property-tests/compaction-log.prop.test.ts (add FC_PATH=<path>
 * from a failure's report to go straight to its counterexample)
 */
import { readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { expect, test } from 'vitest';
import { LogStore, ManualClock, encodeBatch, type PartitionLog } from '../engine/index.js';
import { readAll } from '../test/support/batches.js';
import { tempDir } from '../test/support/tmp.js';

const seed = Number(process.env.SEED ?? Date.now() % 2 ** 31);
const runs = Number(process.env.COMPACTION_RUNS ?? 30);
/** Across all runs, so the test can show it exercised what it claims. */
const seen = { rewritten: 0, crash_states: 0, removed: 0, merged: 0, merge_crashes: 0 };
const MERGE_POINTS = ['merge:written', 'merge:renamed', 'merge:unlinked-one'] as const;
const T0 = 1_700_000_000_000;
const timeout_ms = Math.max(120_000, runs * 3000);

type Cmd =
  | { t: 'append'; keys: Array<{ k: number; tombstone: boolean }> }
  | { t: 'roll' }
  | { t: 'compact'; advance_ms: number }
  | { t: 'reopen' }
  | { t: 'crash' }
  | { t: 'crash_in_compaction'; at: 'before_rename' | 'after_rename' }
  | { t: 'crash_in_merge'; at: (typeof MERGE_POINTS)[number]; drop_catalog: boolean };

const cmd: fc.Arbitrary<Cmd> = fc.oneof(
  { weight: 8, arbitrary: fc.record({ t: fc.constant('append' as const), keys: fc.array(fc.record({ k: fc.integer({ min: 0, max: 11 }), tombstone: fc.boolean() }), { minLength: 1, maxLength: 8 }) }) },
  { weight: 1, arbitrary: fc.constant({ t: 'roll' as const }) },
  { weight: 2, arbitrary: fc.record({ t: fc.constant('compact' as const), advance_ms: fc.constantFrom(0, 1000, 100_000) }) },
  { weight: 1, arbitrary: fc.constant({ t: 'reopen' as const }) },
  { weight: 1, arbitrary: fc.constant({ t: 'crash' as const }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('crash_in_compaction' as const), at: fc.constantFrom('before_rename' as const, 'after_rename' as const) }) },
  { weight: 2, arbitrary: fc.record({ t: fc.constant('crash_in_merge' as const), at: fc.constantFrom(...MERGE_POINTS), drop_catalog: fc.boolean() }) },
);

class SimulatedCrash extends Error {}

test('compaction vs a model: latest values survive, offsets never change, through crashes', async () => {
  console.log(`[compaction-log.prop] seed ${seed} (replay: SEED=${seed} npx vitest run property-tests/compaction-log.prop.test.ts)`);
  await fc.assert(
    fc.asyncProperty(fc.array(cmd, { minLength: 1, maxLength: 40, size: 'medium' }), async (cmds) => {
      const tmp = tempDir('relaylog-cprop-');
      const clock = new ManualClock(T0);
      let crash_at: string | null = null;
      let on_crash: (() => void) | null = null;
      const hooks = {
        compaction: (point: string) => {
          if (point !== crash_at) return;
          on_crash?.();
          throw new SimulatedCrash(point);
        },
      };
      const open = () => LogStore.open({ dir: tmp.dir, clock, disk_free_floor_bytes: 0, retention_check_interval_ms: 0, compaction_interval_ms: 0, memory_tier_bytes: 0, hooks });
      let store = await open();
      try {
        // 100 ms tombstone retention, tiny segments: compaction has work after a few appends.
        await store.createTopic('t', { cleanup_policy: 'compact', segment_bytes: 14 * 1024, delete_retention_ms: 100 });
        const p = () => store.partition('t', 0);
        /** Every record ever appended (and acknowledged durable: fsync=always), by offset. */
        const appended = new Map<number, { key: string; value: string | null; ts: number }>();
        let n = 0;
        for (const c of cmds) {
          switch (c.t) {
            case 'append': {
              const ts = clock.now_ms();
              const recs = c.keys.map(({ k, tombstone }) => ({ key: `key${k}`, value: tombstone ? null : `v${n++}`.padEnd(1500, '.'), timestamp_ms: ts }));
              const r = await p().append(encodeBatch(recs));
              recs.forEach((x, i) => appended.set(r.base_offset + i, { key: x.key, value: x.value, ts }));
              break;
            }
            case 'roll':
              await p().roll();
              break;
            case 'compact':
              clock.advance(c.advance_ms);
              {
                const r = await p().compact();
                seen.rewritten += r.segments_rewritten;
                seen.removed += r.records_removed;
                seen.merged += r.segments_merged;
              }
              break;
            case 'reopen':
              await store.close();
              store = await open();
              break;
            case 'crash':
              await store.abandon();
              store = await open();
              break;
            case 'crash_in_compaction': {
              // The process dies while a segment's rewrite is in flight: after its copy is written
              // aside (before the rename), or right after the rename, before the catalog hears of
              // it. For the second, the catalog's segment records are put back as they were at the
              // rename: writes still in flight then would be lost by a real crash.
              const at_store = store;
              let snapshot: ReturnType<typeof store.catalog.listSegments> | null = null;
              crash_at = c.at === 'before_rename' ? 'rewrite:written' : 'rewrite:renamed';
              on_crash = () => {
                if (c.at === 'after_rename') snapshot = at_store.catalog.listSegments(['t', 0]);
              };
              const got = await p().compact({ merge: false }).then(
                () => null,
                (e: unknown) => e,
              );
              crash_at = null;
              on_crash = null;
              if (got !== null && !(got instanceof SimulatedCrash)) throw got;
              await store.abandon();
              if (got !== null) {
                seen.crash_states++;
                if (c.at === 'before_rename') expect(readdirSync(join(tmp.dir, 'topics', 't', '0')).some((f) => f.endsWith('.compact'))).toBe(true);
              }
              if (snapshot !== null) {
                const s2 = await open();
                for (const rec of snapshot as ReturnType<typeof store.catalog.listSegments>) await s2.catalog.putSegment(['t', 0], rec.base_offset, rec.record);
                await s2.catalog.flush();
                await s2.abandon();
              }
              store = await open();
              break;
            }
            case 'crash_in_merge': {
              // The process dies at one step of a merge; optionally the catalog is lost too, so
              // recovery has only the files to go on.
              crash_at = c.at;
              const got = await p().compact().then(
                () => null,
                (e: unknown) => e,
              );
              crash_at = null;
              if (got !== null && !(got instanceof SimulatedCrash)) throw got;
              if (got !== null) seen.merge_crashes++;
              await store.abandon();
              if (c.drop_catalog) rmSync(join(tmp.dir, 'catalog'), { recursive: true, force: true });
              store = await open();
              break;
            }
          }
          // Check against the model.
          const got = await readAll(p());
          let prev = -1;
          const latest = new Map<string, number>();
          for (const [off, r] of appended) latest.set(r.key, off);
          for (const r of got) {
            expect(r.offset).toBeGreaterThan(prev);
            prev = r.offset;
            const a = appended.get(r.offset)!;
            expect({ key: r.key?.toString(), value: r.value?.toString() ?? null }).toEqual({ key: a.key, value: a.value });
          }
          const offsets = new Set(got.map((r) => r.offset));
          for (const [key, off] of latest) {
            const a = appended.get(off)!;
            // The latest record of a key is always there, unless it is a tombstone past its retention.
            if (a.value !== null) expect(offsets.has(off), `latest value of ${key} at ${off}`).toBe(true);
          }
          expect(p().highWatermark).toBe(appended.size);
        }
        expect(readdirSync(join(tmp.dir, 'topics', 't', '0')).filter((f) => f.endsWith('.compact'))).toEqual([]);
      } finally {
        await store.close().catch(() => undefined);
        tmp.cleanup();
      }
    }),
    {
      seed,
      numRuns: runs,
      ...(process.env.FC_PATH ? { path: process.env.FC_PATH } : {}),
      // Shrinking a failure re-runs whole scenarios and can outlast the test's timeout; stopping
      // it in time reports the smallest counterexample so far instead of a bare timeout.
      interruptAfterTimeLimit: timeout_ms - 15_000,
      markInterruptAsFailure: true,
    },
  );
  console.log(`[compaction-log.prop] segments rewritten ${seen.rewritten}, merged ${seen.merged}, records removed ${seen.removed}, crash states built ${seen.crash_states}, crashes inside a merge ${seen.merge_crashes}`);
  expect(seen.rewritten).toBeGreaterThan(0);
  expect(seen.crash_states).toBeGreaterThan(0);
  expect(seen.merged).toBeGreaterThan(0);
  expect(seen.merge_crashes).toBeGreaterThan(0);
}, timeout_ms);
