import { expect, test } from 'vitest';
import { TurnBudget } from '../../../server/rpc/turn-budget.js';

const nextTurn = () => new Promise<void>((r) => setImmediate(r));

test('within a turn: frames up to the budget go at once, the next one waits for a later turn', async () => {
  const b = new TurnBudget(100, 10);
  expect(b.take(60)).toBeNull();
  expect(b.take(40)).toBeNull(); // exactly the budget
  const waiting = b.take(30);
  expect(waiting).not.toBeNull();
  let went = false;
  void waiting!.then(() => (went = true));
  await Promise.resolve();
  expect(went).toBe(false); // not in this turn, not in a microtask
  await nextTurn();
  await nextTurn();
  expect(went).toBe(true);
  expect(b.deferred).toBe(1);
});

test('a frame larger than the budget still goes, alone, when it is the first of its turn', async () => {
  const b = new TurnBudget(100, 10);
  expect(b.take(500)).toBeNull();
  const second = b.take(500);
  expect(second).not.toBeNull();
  await second; // resolves in a later turn
  expect(b.queued).toBe(0);
});

test('waiting frames go in order, as many per turn as the budget holds', async () => {
  const b = new TurnBudget(100, 10);
  expect(b.take(100)).toBeNull();
  const order: number[] = [];
  const turns: number[] = [];
  let turn = 0;
  const ticking = (async () => {
    while (turn < 50 && order.length < 5) {
      await nextTurn();
      turn++;
    }
  })();
  await Promise.all([50, 50, 50, 50, 50].map((n, i) => b.take(n)!.then(() => (order.push(i), turns.push(turn)))));
  await ticking;
  expect(order).toEqual([0, 1, 2, 3, 4]);
  // Two 50-byte frames per turn: no turn granted more than that.
  const per = new Map<number, number>();
  for (const t of turns) per.set(t, (per.get(t) ?? 0) + 1);
  expect(Math.max(...per.values())).toBeLessThanOrEqual(2);
});

test('small frames never wait, even when others are queued', () => {
  const b = new TurnBudget(100, 10);
  expect(b.take(100)).toBeNull();
  expect(b.take(100)).not.toBeNull();
  expect(b.take(10)).toBeNull();
  expect(b.take(1)).toBeNull();
});

// ---------------------------------------------------------------- pacing while producers write (replay-pacer.ts)

const KiB = 1024;
/** Holds the event loop for `ms`: what a machine whose cores are all busy does to the server. */
const hold = (ms: number) => {
  const until = performance.now() + ms;
  while (performance.now() < until);
};

/**
 * Sends 64 KiB catch-up frames back to back for `ms`, noting an append per frame when `producing`,
 * and holding the loop 8 ms in every 20 ms when `late`. Returns the bytes sent in the last
 * `window_ms` and the highest rate the budget allowed in that window.
 */
async function replayFor(b: TurnBudget, o: { ms: number; window_ms: number; producing: boolean; late: boolean }): Promise<{ sent: number; max_rate: number }> {
  const start = performance.now();
  let windowed = 0;
  let max_rate = 0;
  let held = start;
  for (let i = 0; i < 1_000_000 && performance.now() - start < o.ms; i++) {
    if (o.producing) b.noteAppend();
    if (o.late && performance.now() - held >= 20) {
      hold(8);
      held = performance.now();
    }
    const in_window = performance.now() - start >= o.ms - o.window_ms;
    if (in_window) max_rate = Math.max(max_rate, b.rate);
    const wait = b.take(64 * KiB);
    if (wait) await wait;
    else await nextTurn();
    if (in_window) {
      windowed += 64 * KiB;
      max_rate = Math.max(max_rate, b.rate);
    }
  }
  return { sent: windowed, max_rate };
}

const pacing = { lag_target_ms: 2, floor_bytes_per_s: 1024 * KiB, period_ms: 20 };

test('while producers write and the loop runs late, catch-up frames are held to the paced rate', async () => {
  const b = new TurnBudget(64 * KiB, 1 * KiB, pacing);
  try {
    // The same loop with nobody producing: a frame every turn.
    const unpaced = await replayFor(b, { ms: 500, window_ms: 500, producing: false, late: true });
    expect(b.paced).toBe(0);
    // 1.5 s of a late loop while producing: the rate is cut towards the floor (1 MiB/s); the loop
    // is on time while it waits for paced frames, so the rate climbs back a little between cuts.
    const paced = await replayFor(b, { ms: 1500, window_ms: 500, producing: true, late: true });
    expect(b.rate).toBeLessThan(Infinity);
    expect(b.paced).toBeGreaterThan(0);
    expect(paced.max_rate).toBeLessThan(Infinity);
    // The last 500 ms: no more than the highest rate allowed, plus the bucket (one 64 KiB frame of
    // debt, one of burst) and one frame in flight.
    expect(paced.sent).toBeLessThanOrEqual(paced.max_rate * 0.5 + 3 * 64 * KiB);
    expect(paced.sent).toBeLessThan(unpaced.sent / 4);
    // Producers stop: the limit is lifted after QUIET_PERIODS periods without an append (a paced
    // frame may hold this loop a while, so keep replaying until it is, for at most 5 s).
    const stop_by = performance.now() + 5_000;
    while (b.rate !== Infinity && performance.now() < stop_by) await replayFor(b, { ms: 50, window_ms: 0, producing: false, late: false });
    expect(b.rate).toBe(Infinity);
  } finally {
    b.close();
  }
});

/** 600 ms of catch-up replay under `o`, after which nothing was paced; returns whether the sampler ran. */
async function neverPaced(p: typeof pacing, o: { producing: boolean; late: boolean }): Promise<boolean> {
  const b = new TurnBudget(64 * KiB, 1 * KiB, p);
  try {
    await replayFor(b, { ms: 600, window_ms: 0, ...o });
    expect(b.rate).toBe(Infinity);
    expect(b.paced).toBe(0);
    return b.sampling;
  } finally {
    b.close();
  }
}

test('a late loop with no producer writing never paces replay', async () => {
  await neverPaced(pacing, { producing: false, late: true });
});

test('a replay that starts after producers stopped is not paced for the lateness it causes itself', async () => {
  const b = new TurnBudget(64 * KiB, 1 * KiB, pacing);
  try {
    // Producers write while an earlier replay runs (the pacer sees their appends), then that replay
    // ends and the control loop stops; the producers stop too.
    await replayFor(b, { ms: 100, window_ms: 0, producing: true, late: false });
    const until = performance.now() + 5_000;
    while (b.sampling && performance.now() < until) {
      b.noteAppend();
      await new Promise((r) => setTimeout(r, 5));
    }
    expect(b.sampling).toBe(false);
    // A new catch-up replay on a loop that runs late (its own work): no append arrives, no cut.
    expect(b.rate).toBe(Infinity);
    const paced_before = b.paced;
    await replayFor(b, { ms: 600, window_ms: 0, producing: false, late: true });
    expect(b.paced).toBe(paced_before);
    expect(b.rate).toBe(Infinity);
  } finally {
    b.close();
  }
});

test('an on-time loop is never paced, producers or not', async () => {
  // A target well above what a busy test machine's scheduling adds (the loop here is never held).
  expect(await neverPaced({ ...pacing, lag_target_ms: 100 }, { producing: true, late: false })).toBe(true);
});

test('the sampler measures how late the loop ran: a single 40 ms hold, right after replay starts, is a cut', async () => {
  const b = new TurnBudget(64 * KiB, 1 * KiB, { ...pacing, lag_target_ms: 20, period_ms: 100 });
  try {
    b.noteAppend();
    expect(b.take(64 * KiB)).toBeNull(); // starts the control loop
    hold(40);
    for (let i = 0; i < 100 && b.rate === Infinity; i++) {
      b.noteAppend();
      const wait = b.take(64 * KiB);
      if (wait) await wait;
      await new Promise((r) => setTimeout(r, 5));
    }
    expect(b.rate).toBeLessThan(Infinity);
  } finally {
    b.close();
  }
});

test('the sampler stops once no catch-up frame has flowed for 10 periods', async () => {
  const b = new TurnBudget(64 * KiB, 1 * KiB, pacing);
  try {
    await replayFor(b, { ms: 100, window_ms: 0, producing: true, late: false });
    expect(b.sampling).toBe(true);
    // Appends go on, small frames (a live tail's) too, but no catch-up frame: 10 periods of 20 ms.
    const until = performance.now() + 5_000;
    while (b.sampling && performance.now() < until) {
      b.noteAppend();
      expect(b.take(512)).toBeNull();
      await new Promise((r) => setTimeout(r, 5));
    }
    expect(b.sampling).toBe(false);
  } finally {
    b.close();
  }
});

test('bad pacing settings are refused', () => {
  expect(() => new TurnBudget(64 * KiB, 1 * KiB, { ...pacing, floor_bytes_per_s: 0 })).toThrow(/floor/);
  expect(() => new TurnBudget(64 * KiB, 1 * KiB, { ...pacing, period_ms: 0 })).toThrow(/period/);
  expect(() => new TurnBudget(64 * KiB, 1 * KiB, { ...pacing, lag_target_ms: -1 })).toThrow(/lag/);
});

test('a lag target of 0 turns pacing off, producers or not', async () => {
  expect(await neverPaced({ ...pacing, lag_target_ms: 0 }, { producing: true, late: true })).toBe(false); // no sampler either
});

test('close() lets every waiting frame go (server stop), paced or not', async () => {
  const b = new TurnBudget(64 * KiB, 1 * KiB, pacing);
  await replayFor(b, { ms: 600, window_ms: 0, producing: true, late: true });
  expect(b.rate).toBeLessThan(Infinity);
  const waiting = Array.from({ length: 5 }, () => b.take(64 * KiB)).filter((w) => w !== null);
  expect(waiting.length).toBeGreaterThan(0);
  b.close();
  await Promise.all(waiting); // would hang (test timeout) if close() left them waiting
  expect(b.queued).toBe(0);
  expect(b.sampling).toBe(false);
  // A subscription whose read finished after the stop: its frame goes at once, and nothing restarts.
  b.noteAppend();
  expect(b.take(64 * KiB)).toBeNull();
  expect(b.sampling).toBe(false);
});
