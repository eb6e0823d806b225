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
