import { expect, test } from 'vitest';
import { AppendQueue, type PendingAppend } from '../../../engine/log/append-queue.js';

test('a group whose write throws fails its appends with that error, and later appends are still written', async () => {
  const unhandled: unknown[] = [];
  const on = (e: unknown) => unhandled.push(e);
  process.on('unhandledRejection', on);
  try {
    let calls = 0;
    const written: number[] = [];
    const q = new AppendQueue(async (group: PendingAppend[]) => {
      calls++;
      if (calls === 1) throw new Error('catalog write failed: ENOSPC');
      for (const p of group) {
        written.push(p.bytes);
        p.resolve({ base_offset: 0, last_offset: 0, log_append_time_ms: -1 } as never);
      }
    }, () => true);
    const a = q.enqueue({ batches: [], bytes: 1, leader_epoch: 0 });
    const b = q.enqueue({ batches: [], bytes: 2, leader_epoch: 0 });
    await expect(a).rejects.toThrow('ENOSPC'); // the writer took `a` alone, at once
    await expect(b).resolves.toBeDefined(); // queued behind it: the next group
    const c = q.enqueue({ batches: [], bytes: 3, leader_epoch: 0 });
    await expect(c).resolves.toBeDefined();
    expect(written).toEqual([2, 3]);
    await q.drained();
    await new Promise((r) => setImmediate(r));
    expect(unhandled).toEqual([]);
  } finally {
    process.off('unhandledRejection', on);
  }
}, 10_000);
