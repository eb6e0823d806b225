/**
 * Compaction's batch rewriting (engine/log/compaction.ts) against a model, over random keyed logs
 * with tombstones, repeated compactions and appends in between:
 *  - offsets never change: the output covers exactly the input's offset range, batches contiguous;
 *  - every output batch is a sound RecordBatch v2 (framing, CRC);
 *  - the records kept are exactly the model's: the latest record of every key, records without a
 *    key, minus tombstones older than the horizon — each with its offset, timestamp, key, value
 *    and headers unchanged;
 *  - compacting a compacted log changes nothing (a fixpoint).
 *
 * Replay: SEED=<n> npx vitest run property-tests/compaction.prop.test.ts
 */
import fc from 'fast-check';
import { expect, test } from 'vitest';
import { batchBaseOffset, batchLastOffsetDelta, checkBatch, decodeRecords, encodeBatch, stampBatch, type DecodedRecord } from '../engine/index.js';
import { compactBatches, latestOffsets } from '../engine/log/compaction.js';

const seed = Number(process.env.SEED ?? Date.now() % 2 ** 31);
const T0 = 1_700_000_000_000;

interface Rec {
  key: number | null;
  tombstone: boolean;
  ts_delta: number;
  headers: number;
}
const rec: fc.Arbitrary<Rec> = fc.record({
  key: fc.option(fc.integer({ min: 0, max: 7 }), { freq: 8 }),
  tombstone: fc.boolean(),
  ts_delta: fc.integer({ min: 0, max: 100 }),
  headers: fc.integer({ min: 0, max: 2 }),
});

function build(batches: Rec[][], first_offset: number): Buffer[] {
  const out: Buffer[] = [];
  let next = first_offset;
  for (const recs of batches) {
    const b = encodeBatch(
      recs.map((r, i) => ({
        key: r.key === null ? null : `key-${r.key}`,
        value: r.tombstone && r.key !== null ? null : `v${next + i}`,
        timestamp_ms: T0 + (next + i) * 10 + r.ts_delta,
        headers: Array.from({ length: r.headers }, (_, h) => ({ key: `h${h}`, value: Buffer.from(`${next + i}`) })),
      })),
    );
    stampBatch(b, 0, next, 3);
    next += recs.length;
    out.push(b);
  }
  return out;
}

const flat = (batches: readonly Buffer[]): DecodedRecord[] => batches.flatMap((b) => decodeRecords(b));
const view = (r: DecodedRecord) => ({ offset: r.offset, ts: r.timestamp_ms, key: r.key?.toString() ?? null, value: r.value?.toString() ?? null, headers: r.headers.map((h) => `${h.key}=${h.value}`) });

test('compaction keeps exactly the latest record per key, offsets and bytes of kept records unchanged', () => {
  console.log(`[compaction.prop] seed ${seed} (replay: SEED=${seed} npx vitest run property-tests/compaction.prop.test.ts)`);
  fc.assert(
    fc.property(
      fc.array(fc.array(fc.array(rec, { minLength: 1, maxLength: 6 }), { minLength: 1, maxLength: 8 }), { minLength: 1, maxLength: 4 }),
      fc.integer({ min: 0, max: 2000 }),
      (rounds, horizon_delta) => {
        let log: Buffer[] = [];
        const all: DecodedRecord[] = [];
        for (const round of rounds) {
          const start = log.length === 0 ? 0 : batchBaseOffset(log[log.length - 1]!) + batchLastOffsetDelta(log[log.length - 1]!) + 1;
          const added = build(round, start);
          all.push(...flat(added));
          log = [...log, ...added];
          const horizon = T0 + horizon_delta;
          const rule = { latest: latestOffsets(log), tombstone_horizon_ms: horizon };
          const first = batchBaseOffset(log[0]!);
          const end = start + round.reduce((n, b) => n + b.length, 0);
          const r = compactBatches(log, rule);
          // Contiguous, same coverage, sound.
          let next = first;
          for (const b of r.batches) {
            expect(checkBatch(b, 0, b.length)).toBeNull();
            expect(batchBaseOffset(b)).toBe(next);
            next = batchBaseOffset(b) + batchLastOffsetDelta(b) + 1;
          }
          expect(next).toBe(end);
          // Exactly the model's records.
          const latest = new Map<string, number>();
          for (const x of all) if (x.key !== null) latest.set(x.key.toString(), x.offset);
          const want = all.filter((x) => x.key === null || (latest.get(x.key.toString()) === x.offset && !(x.value === null && x.timestamp_ms < horizon)));
          expect(flat(r.batches).map(view)).toEqual(want.map(view));
          // A fixpoint.
          const again = compactBatches(r.batches, { latest: latestOffsets(r.batches), tombstone_horizon_ms: horizon });
          expect(again.changed).toBe(false);
          expect(again.batches.map((b) => b.toString('hex'))).toEqual(r.batches.map((b) => b.toString('hex')));
          log = r.batches;
          all.splice(0, all.length, ...want);
        }
      },
    ),
    { seed, numRuns: 300 },
  );
});
