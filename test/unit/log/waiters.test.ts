/** Long-poll waiters (engine/log/waiters.ts): one timer per partition, one abort listener per signal. */
import { describe, expect, test } from 'vitest';
import { Waiters } from '../../../engine/log/waiters.js';

const settled = async <T>(p: Promise<T>): Promise<T | 'pending'> => Promise.race([p, new Promise<'pending'>((r) => setTimeout(() => r('pending'), 30))]);

describe('Waiters', () => {
  test('a wake ends exactly the waits below the new high watermark', async () => {
    const w = new Waiters();
    const a = w.wait(3, 5_000);
    const b = w.wait(7, 5_000);
    w.wake(5);
    expect(await a).toBe(true);
    expect(await settled(b)).toBe('pending');
    expect(w.size).toBe(1);
    w.wake(8);
    expect(await b).toBe(true);
    expect(w.size).toBe(0);
  });

  test('each wait keeps its own deadline: a short one times out while a longer one goes on waiting', async () => {
    const w = new Waiters();
    const long = w.wait(0, 5_000);
    const short = w.wait(0, 20);
    const shorter = w.wait(0, 10);
    const t0 = performance.now();
    expect(await shorter).toBe(false);
    expect(await short).toBe(false);
    expect(performance.now() - t0).toBeGreaterThanOrEqual(20 - 2);
    expect(await settled(long)).toBe('pending');
    w.wake(1);
    expect(await long).toBe(true);
  });

  test('one signal aborts all of its waits (a Kafka fetch waits on several partitions with one), and no others', async () => {
    const w = new Waiters();
    const ac = new AbortController();
    const other = new AbortController();
    const mine = [w.wait(0, 5_000, ac.signal), w.wait(4, 5_000, ac.signal)];
    const theirs = w.wait(0, 5_000, other.signal);
    ac.abort();
    expect(await Promise.all(mine)).toEqual([false, false]);
    expect(await settled(theirs)).toBe('pending');
    // A signal already aborted ends a new wait at once; the other signal still works.
    expect(await w.wait(0, 5_000, ac.signal)).toBe(false);
    w.wake(1);
    expect(await theirs).toBe(true);
    other.abort(); // after its wait ended: nothing to do, nothing thrown
    expect(w.size).toBe(0);
  });

  test('a signal used for wait after wait gets one listener, and every later wait still ends on abort', async () => {
    const w = new Waiters();
    const ac = new AbortController();
    let added = 0;
    const add = ac.signal.addEventListener.bind(ac.signal);
    ac.signal.addEventListener = ((...args: Parameters<typeof add>) => {
      added++;
      return add(...args);
    }) as typeof ac.signal.addEventListener;
    for (let i = 0; i < 50; i++) {
      const p = w.wait(i, 5_000, ac.signal);
      w.wake(i + 1);
      expect(await p).toBe(true);
    }
    const last = w.wait(50, 5_000, ac.signal);
    ac.abort();
    expect(await last).toBe(false);
    expect(added).toBe(1);
  });

  test('closeAll ends every wait with false', async () => {
    const w = new Waiters();
    const ps = [w.wait(0, 5_000), w.wait(9, 60_000, new AbortController().signal)];
    w.closeAll();
    expect(await Promise.all(ps)).toEqual([false, false]);
    expect(w.size).toBe(0);
  });
});
