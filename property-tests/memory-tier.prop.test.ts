import fc from 'fast-check';
import { expect, test } from 'vitest';
import { encodeBatch, forEachBatch, stampBatch } from '../engine/index.js';
import { MemoryTier } from '../engine/tier/memory-tier.js';

const seed = Number(process.env.SEED ?? Date.now() % 2 ** 31);

type Op =
  | { kind: 'add'; p: number; sizes: number[]; layout: Layout }
  | { kind: 'read'; p: number; at: number; max_bytes: number }
  | { kind: 'truncate'; p: number; at: number };

/**
 * How an add's batches lie in memory: each in its own buffer; back to back in one buffer with a
 * little framing around them (a request's record set: kept without a copy when over 16 KiB,
 * otherwise copied into the partition's slab); or inside a buffer much larger than they are (a
 * slice of a network read: copied, and the network buffer is reused at once).
 */
type Layout = 'separate' | 'record-set' | 'in-larger';

const op: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 5,
    arbitrary: fc.record({
      kind: fc.constant('add' as const),
      p: fc.nat(3),
      // Mostly small batches (slabs); sometimes large ones, so that record sets pass 16 KiB and are kept as they are.
      sizes: fc.array(
        fc.oneof({ weight: 3, arbitrary: fc.integer({ min: 0, max: 3000 }) }, { weight: 1, arbitrary: fc.integer({ min: 3000, max: 12_000 }) }, { weight: 1, arbitrary: fc.integer({ min: 12_000, max: 70_000 }) }),
        { minLength: 1, maxLength: 6 },
      ),
      layout: fc.constantFrom<Layout>('separate', 'record-set', 'in-larger'),
    }),
  },
  { weight: 4, arbitrary: fc.record({ kind: fc.constant('read' as const), p: fc.nat(3), at: fc.double({ min: 0, max: 1, noNaN: true }), max_bytes: fc.oneof(fc.integer({ min: 1, max: 20_000 }), fc.integer({ min: 20_000, max: 200_000 })) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('truncate' as const), p: fc.nat(3), at: fc.double({ min: 0, max: 1, noNaN: true }) }) },
);

test('memory tier: the budget is a hard bound, and every hit returns exactly the model batches', () => {
  fc.assert(
    // Small budgets (eviction all the time, slabs of a few KiB), middle ones (large record sets
    // kept or copied depending on the budget, evicted all the time) and large ones (64 KiB slabs
    // growing); 1 to 4 partitions (each partition's slabs are at most an eighth of its share).
    fc.property(fc.oneof(fc.integer({ min: 2_000, max: 60_000 }), fc.integer({ min: 60_000, max: 1 << 20 }), fc.integer({ min: 1 << 20, max: 4 << 20 })), fc.integer({ min: 1, max: 4 }), fc.array(op, { maxLength: 80 }), (budget, partitions, all_ops) => {
      const tier = new MemoryTier(budget);
      const tails = Array.from({ length: partitions }, (_, i) => tier.register(`t/${i}`));
      const ops = all_ops.map((o) => ({ ...o, p: o.p % partitions }));
      // Model per partition: batches in order (each a stamped RecordBatch with one record), as copies.
      const model: Buffer[][] = [[], [], [], []];
      // Recent read results with the bytes they held: a slice handed out must never change later.
      const handed: Array<{ records: Buffer; bytes: Buffer }> = [];
      const endOf = (p: number) => model[p]!.length; // one record per batch: offset == index
      for (const o of ops) {
        const tail = tails[o.p]!;
        const m = model[o.p]!;
        if (o.kind === 'add') {
          let batches = o.sizes.map((n, i) => {
            const b = encodeBatch([{ value: Buffer.alloc(n, i) }], { timestamp_ms: 1 });
            stampBatch(b, 0, m.length + i, 0);
            return b;
          });
          let parent: Buffer | null = null;
          if (o.layout !== 'separate') {
            const total = batches.reduce((a, b) => a + b.length, 0);
            const buf = Buffer.alloc(o.layout === 'record-set' ? total + 16 : total * 4 + 64);
            parent = buf;
            let at = 8;
            batches = batches.map((b) => {
              b.copy(buf, at);
              at += b.length;
              return buf.subarray(at - b.length, at);
            });
          }
          m.push(...batches.map((b) => Buffer.from(b)));
          tail.add(batches, batches.reduce((a, b) => a + b.length, 0));
          // A network buffer is reused as soon as the add returns: the tier must have copied out of it.
          if (o.layout === 'in-larger') parent!.fill(0xee);
        } else if (o.kind === 'truncate') {
          const at = Math.floor(o.at * m.length);
          m.length = at;
          tail.truncateTo(at);
        } else if (m.length > 0) {
          const offset = Math.min(m.length - 1, Math.floor(o.at * m.length));
          const r = tail.read(offset, o.max_bytes, endOf(o.p));
          if (r !== null) {
            const got: Buffer[] = [];
            forEachBatch(r.records, (pos, size) => got.push(r.records.subarray(pos, pos + size)));
            expect(got.length).toBeGreaterThan(0);
            expect(got.length === 1 || r.records.length <= o.max_bytes).toBe(true);
            got.forEach((b, i) => expect(b.equals(m[offset + i]!)).toBe(true));
            expect(r.next_offset).toBe(offset + got.length);
            if (r.backing === null) {
              handed.push({ records: r.records, bytes: Buffer.from(r.records) });
              if (handed.length > 8) handed.shift();
            }
          } else {
            expect(offset < tail.first_offset || tail.first_offset === -1 || offset >= tail.end_offset).toBe(true);
          }
        }
        // Invariants after every step.
        for (const h of handed) expect(h.records.equals(h.bytes)).toBe(true);
        expect(tier.used_bytes).toBeLessThanOrEqual(budget);
        expect(tier.used_bytes).toBe(tails.reduce((a, t) => a + t.bytes, 0));
        tails.forEach((t, i) => {
          if (t.first_offset !== -1) expect(t.end_offset).toBeLessThanOrEqual(endOf(i));
        });
      }
    }),
    { seed, numRuns: 500, verbose: 1 },
  );
}, 60_000);
