import { describe, expect, test } from 'vitest';
import { Slots } from '../../../engine/base/slots.js';

describe('Slots (the bound on concurrent segment reads)', () => {
  test('never more than max holders; waiters run in arrival order; a throwing holder frees its slot', async () => {
    const slots = new Slots(2);
    let holding = 0;
    let peak = 0;
    const order: number[] = [];
    const gates: Array<() => void> = [];
    const jobs = Array.from({ length: 6 }, (_, i) =>
      slots
        .run(async () => {
          holding++;
          peak = Math.max(peak, holding);
          order.push(i);
          await new Promise<void>((resolve) => gates.push(resolve));
          holding--;
          if (i === 1) throw new Error('holder 1 fails');
          return i;
        })
        .catch((e: Error) => e.message),
    );
    // Release holders one at a time, as they arrive.
    for (let released = 0; released < 6; released++) {
      for (let spins = 0; gates.length === 0 && spins < 100; spins++) await new Promise((r) => setImmediate(r));
      expect(holding).toBeLessThanOrEqual(2);
      gates.shift()!();
    }
    expect(await Promise.all(jobs)).toEqual([0, 'holder 1 fails', 2, 3, 4, 5]);
    expect(peak).toBe(2);
    expect(order).toEqual([0, 1, 2, 3, 4, 5]);
    // All slots are free again.
    expect(await Promise.all([slots.run(async () => 'a'), slots.run(async () => 'b')])).toEqual(['a', 'b']);
  });
});
