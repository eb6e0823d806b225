import { expect, test } from 'vitest';
import { DECREASE, QUIET_PERIODS, ReplayPacer, UNBOUND_FACTOR } from '../../../server/rpc/replay-pacer.js';

const MiB = 1024 * 1024;
const opts = { lag_target_ms: 5, floor_bytes_per_s: 32 * MiB, period_ms: 100 };
/** A period in which `mib` MiB of catch-up frames went out (×10 per second at 100 ms). */
const busy = (lag_max_ms: number, mib: number, appends = 200) => ({ lag_max_ms, appends, replayed_bytes: mib * MiB, waiting: true });

test('no limit while the loop is on time, or with no producer, or with no catch-up replay', () => {
  expect(new ReplayPacer(opts).step(busy(1, 70))).toBe(Infinity);
  expect(new ReplayPacer(opts).step(busy(50, 70, 0))).toBe(Infinity); // late, but nobody is producing (nor was before)
  expect(new ReplayPacer(opts).step({ lag_max_ms: 50, appends: 200, replayed_bytes: 0, waiting: false })).toBe(Infinity); // late, but nothing to slow
});

test('a late loop while producers write halves the catch-up rate, from what flowed, down to the floor', () => {
  const p = new ReplayPacer(opts);
  expect(p.step(busy(12, 70))).toBe(700 * MiB * DECREASE); // 70 MiB in 100 ms: 700 MiB/s flowed
  expect(p.step(busy(12, 20))).toBe(200 * MiB * DECREASE); // the readers took less than the limit: from that
  expect(p.step(busy(12, 10))).toBe(50 * MiB);
  expect(p.step(busy(12, 5))).toBe(32 * MiB); // floor
  expect(p.step(busy(12, 0))).toBe(32 * MiB); // frames still waiting: stays paced, at the floor
});

test('an on-time loop raises the rate by the floor per period, and lifts it once it no longer binds', () => {
  const p = new ReplayPacer(opts);
  p.step(busy(12, 6.4)); // 64 MiB/s flowed: 32 MiB/s
  expect(p.rate).toBe(32 * MiB);
  expect(p.step(busy(1, 3.2))).toBe(64 * MiB);
  expect(p.step(busy(1, 6.4))).toBe(96 * MiB);
  // The readers now take 20 MiB/s: 128 MiB/s > 4 x 20 MiB/s, so the limit goes once none of their frames waits.
  expect(128 * MiB).toBeGreaterThan(UNBOUND_FACTOR * 20 * MiB);
  expect(p.step(busy(1, 2))).toBe(128 * MiB); // frames still wait for the rate: it binds
  expect(p.step({ ...busy(1, 2), waiting: false })).toBe(Infinity);
});

test('producers stopping lifts the limit after QUIET_PERIODS periods without an append; a sparse producer still counts', () => {
  const p = new ReplayPacer(opts);
  p.step(busy(12, 70));
  expect(p.rate).toBeLessThan(Infinity);
  for (let i = 1; i < QUIET_PERIODS; i++) expect(p.step(busy(12, 10, 0))).toBeLessThan(Infinity);
  expect(p.step(busy(12, 10, 1))).toBeLessThan(Infinity); // one append: the count starts again
  for (let i = 1; i < QUIET_PERIODS; i++) expect(p.step(busy(1, 1, 0))).toBeLessThan(Infinity);
  expect(p.step(busy(1, 1, 0))).toBe(Infinity);
});

test('a late loop in a period without an append is no cut: it delayed no append (often it is the replay itself)', () => {
  const p = new ReplayPacer(opts);
  p.step(busy(12, 6.4)); // producers write: cut to the floor
  expect(p.rate).toBe(32 * MiB);
  expect(p.step(busy(30, 3.2, 0))).toBe(64 * MiB); // late, but no append arrived: raised
  expect(p.step(busy(30, 3.2, 1))).toBe(32 * MiB); // late with an append: cut again
});

test('a lag target of 0 turns pacing off', () => {
  const p = new ReplayPacer({ ...opts, lag_target_ms: 0 });
  expect(p.step(busy(500, 70))).toBe(Infinity);
});
