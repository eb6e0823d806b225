/**
 * The replay pacer (server/rpc/replay-pacer.ts) against any sequence of periods, and in a closed
 * loop with a model of a machine whose event loop runs late exactly when catch-up replay goes
 * faster than the spare capacity C: the controller must get below C within a bounded number of
 * periods whatever the readers want, and, once there, keep the readers at a useful share of C
 * (it must not sit at the floor).
 */
import fc from 'fast-check';
import { expect, test } from 'vitest';
import { DECREASE, QUIET_PERIODS, ReplayPacer, UNBOUND_FACTOR } from '../server/rpc/replay-pacer.js';

const seed = Number(process.env.SEED ?? Date.now() % 2 ** 31);
const MiB = 1024 * 1024;
const PERIOD_MS = 100;

const sample = fc.record({
  lag_max_ms: fc.double({ min: 0, max: 200, noNaN: true }),
  appends: fc.oneof(fc.constant(0), fc.constant(0), fc.integer({ min: 1, max: 10_000 })),
  replayed_bytes: fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 200 * MiB })),
  waiting: fc.boolean(),
});
const options = fc.record({
  lag_target_ms: fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 50 })),
  floor_bytes_per_s: fc.integer({ min: 1 * MiB, max: 64 * MiB }),
  period_ms: fc.constant(PERIOD_MS),
});

test('every step follows the rule, and the rate is unlimited or at least the floor', () => {
  fc.assert(
    fc.property(options, fc.array(sample, { minLength: 1, maxLength: 200 }), (o, samples) => {
      const p = new ReplayPacer(o);
      let quiet = QUIET_PERIODS;
      for (const s of samples) {
        quiet = s.appends > 0 ? 0 : quiet + 1;
        const before = p.rate;
        const after = p.step(s);
        expect(after === Infinity || after >= o.floor_bytes_per_s).toBe(true);
        const flowed = (s.replayed_bytes * 1000) / PERIOD_MS;
        if (o.lag_target_ms === 0 || quiet >= QUIET_PERIODS || (s.replayed_bytes === 0 && !s.waiting)) expect(after).toBe(Infinity);
        else if (s.lag_max_ms > o.lag_target_ms && s.appends > 0) expect(after).toBe(Math.max(o.floor_bytes_per_s, Math.min(before, flowed) * DECREASE));
        else if (before === Infinity) expect(after).toBe(Infinity);
        else expect(after).toBe(!s.waiting && before + o.floor_bytes_per_s > UNBOUND_FACTOR * flowed ? Infinity : before + o.floor_bytes_per_s);
      }
    }),
    { seed, numRuns: 500 },
  );
});

test('closed loop: below the spare capacity within log2(demand / capacity) + 2 periods, and then at a useful share of it', () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 64, max: 1024 }), // spare capacity C, MiB/s
      fc.integer({ min: 1, max: 8 }), // the readers want this many times C
      fc.integer({ min: 8, max: 32 }), // floor, MiB/s
      (cap_mib, over, floor_mib) => {
        const cap = cap_mib * MiB;
        const demand = cap * over;
        const p = new ReplayPacer({ lag_target_ms: 5, floor_bytes_per_s: floor_mib * MiB, period_ms: PERIOD_MS });
        const flows: number[] = [];
        let late_run = 0;
        let longest_late_run = 0;
        for (let i = 0; i < 400; i++) {
          // What the readers took this period: what they want, held to the rate (the bucket's one-frame burst aside).
          const flowed = Math.min(demand, p.rate);
          const late = flowed > cap;
          late_run = late ? late_run + 1 : 0;
          if (i > 0) longest_late_run = Math.max(longest_late_run, late_run);
          flows.push(flowed);
          p.step({ lag_max_ms: late ? 20 : 1, appends: 200, replayed_bytes: (flowed * PERIOD_MS) / 1000, waiting: true });
        }
        expect(longest_late_run).toBeLessThanOrEqual(Math.ceil(Math.log2(over)) + 2);
        // After the first 50 periods: the readers get at least a quarter of the spare capacity on average (or all they want).
        const tail = flows.slice(50);
        const mean = tail.reduce((a, b) => a + b, 0) / tail.length;
        expect(mean).toBeGreaterThanOrEqual(Math.min(demand, cap / 4));
      },
    ),
    { seed, numRuns: 500 },
  );
});
