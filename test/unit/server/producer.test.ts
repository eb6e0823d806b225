import { describe, expect, test } from 'vitest';
import { Producer, RpcError, type SendBatch } from '../../../client/index.js';
import { decodeRecords, EngineError } from '../../../engine/index.js';

/** A fake server: records every batch, answers after `delay_ms`, fails as `fail` says. */
function fakeServer(opts: { delay_ms?: number; fail?: (attempt: number, batch: number) => Error | null } = {}) {
  const batches: Buffer[] = [];
  let next = 0;
  let inflight = 0;
  let max_inflight = 0;
  let attempts = 0;
  const send: SendBatch = async (_t, _p, records) => {
    const attempt = attempts++;
    inflight++;
    max_inflight = Math.max(max_inflight, inflight);
    await new Promise((r) => setTimeout(r, opts.delay_ms ?? 0));
    inflight--;
    const err = opts.fail?.(attempt, batches.length);
    if (err) throw err;
    batches.push(records);
    const base_offset = next;
    next += decodeRecords(records).length;
    return { base_offset };
  };
  return { send, batches, stats: () => ({ max_inflight, attempts }) };
}

describe('Producer', () => {
  test('linger: records sent within linger_ms go out as one batch; offsets follow send order', async () => {
    const s = fakeServer();
    const p = new Producer(s.send, { topic: 't', linger_ms: 20 });
    const offsets = await Promise.all(['a', 'b', 'c'].map((value) => p.send({ value })));
    expect(offsets).toEqual([0, 1, 2]);
    expect(s.batches).toHaveLength(1);
    expect(decodeRecords(s.batches[0]!).map((r) => r.value!.toString())).toEqual(['a', 'b', 'c']);
    await p.close();
  });

  test('batch_bytes seals a batch early; max_in_flight bounds unacknowledged batches', async () => {
    const s = fakeServer({ delay_ms: 5 });
    const p = new Producer(s.send, { topic: 't', linger_ms: 1000, batch_bytes: 1000, max_in_flight: 2 });
    const all = Array.from({ length: 100 }, (_, i) => p.send({ value: Buffer.alloc(100, i) }));
    await p.flush();
    expect(await Promise.all(all)).toEqual(Array.from({ length: 100 }, (_, i) => i));
    expect(s.batches.length).toBeGreaterThanOrEqual(12);
    for (const b of s.batches) expect(decodeRecords(b).length).toBeLessThanOrEqual(8);
    expect(s.stats().max_inflight).toBe(2);
    await p.close();
  });

  test('records without a timestamp get the time of send(); given ones are kept', async () => {
    const s = fakeServer();
    const p = new Producer(s.send, { topic: 't', linger_ms: 0 });
    const before = Date.now();
    await Promise.all([p.send({ value: 'now' }), p.send({ value: 'then', timestamp_ms: 42 })]);
    const [a, b] = decodeRecords(s.batches[0]!);
    expect(a!.timestamp_ms).toBeGreaterThanOrEqual(before);
    expect(b!.timestamp_ms).toBe(42);
    await p.close();
  });

  test('retriable failures are retried with backoff; others fail the batch and surface from flush()', async () => {
    const flaky = fakeServer({ fail: (attempt) => (attempt < 2 ? new RpcError('UNAVAILABLE', 14, 'down') : null) });
    const p = new Producer(flaky.send, { topic: 't', linger_ms: 0, retry_backoff_ms: 1 });
    expect(await p.send({ value: 'x' })).toBe(0);
    expect(flaky.stats().attempts).toBe(3);
    await p.close();

    const refusing = fakeServer({ fail: () => new EngineError('UNKNOWN_TOPIC', 'unknown topic "t"') });
    const q = new Producer(refusing.send, { topic: 't', linger_ms: 0 });
    const sent = q.send({ value: 'x' });
    q.push({ value: 'y' }); // no promise of its own: the failure still surfaces below
    await expect(sent).rejects.toMatchObject({ code: 'UNKNOWN_TOPIC' });
    await expect(q.flush()).rejects.toMatchObject({ code: 'UNKNOWN_TOPIC' });
    expect(refusing.stats().attempts).toBe(1);
    await q.close();
    await expect(q.send({ value: 'z' })).rejects.toMatchObject({ code: 'CLOSED' });
  });

  test('retries are bounded', async () => {
    const down = fakeServer({ fail: () => new RpcError('UNAVAILABLE', 14, 'down') });
    const p = new Producer(down.send, { topic: 't', linger_ms: 0, retries: 3, retry_backoff_ms: 1 });
    await expect(p.send({ value: 'x' })).rejects.toMatchObject({ code: 'UNAVAILABLE' });
    expect(down.stats().attempts).toBe(4);
  });

  test('ready() holds a fast loop back while buffer_max_bytes are waiting or in flight', async () => {
    const s = fakeServer({ delay_ms: 10 });
    const p = new Producer(s.send, { topic: 't', linger_ms: 0, batch_bytes: 1024, buffer_max_bytes: 4096, max_in_flight: 1 });
    let peak = 0;
    for (let i = 0; i < 200; i++) {
      await p.ready();
      p.push({ value: Buffer.alloc(100) });
      peak = Math.max(peak, p.buffered_bytes);
    }
    await p.close();
    expect(peak).toBeLessThanOrEqual(4096 + 124);
    expect(s.batches.reduce((n, b) => n + decodeRecords(b).length, 0)).toBe(200);
  });
});
