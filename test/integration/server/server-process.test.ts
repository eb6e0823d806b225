import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { Consumer, Producer, RelaylogClient } from '../../../client/index.js';
import { encodeBatch, type DecodedRecord } from '../../../engine/index.js';
import { assertFreshBuild, startServer, type ServerProcess } from '../../support/server-process.js';
import { tempDir } from '../../support/tmp.js';

/*
 * The real `relaylog serve` process on an ephemeral loopback port, driven by the client library.
 * Every test stops the processes it started and removes its data dir.
 */

const T0 = 1_700_000_000_000;
const N = 100_000;
/** Record i: value `v-i`, timestamp T0 + floor(i / 100) — a hundred records share each millisecond. */
const tsOf = (i: number) => T0 + Math.floor(i / 100);

async function drain(c: Consumer, limit = Infinity): Promise<DecodedRecord[]> {
  const out: DecodedRecord[] = [];
  for await (const r of c) {
    out.push(r);
    if (out.length >= limit) break;
  }
  c.close();
  return out;
}

beforeAll(() => assertFreshBuild());

describe('a server holding 100k records', () => {
  const tmp = tempDir('relaylog-srv-');
  let server: ServerProcess;
  let client: RelaylogClient;

  beforeAll(async () => {
    server = await startServer(tmp.dir);
    client = new RelaylogClient(server.address);
    const created = await client.createTopic('samples', { partitions: 2, config: { 'segment.bytes': String(1024 * 1024) } });
    expect(created.partitions.map((p) => p.partition)).toEqual([0, 1]);
    const producer = new Producer(client, { topic: 'samples', partition: 0, batch_bytes: 64 * 1024 });
    for (let i = 0; i < N; i++) {
      producer.push({ key: `k${i % 7}`, value: `v-${i}`, timestamp_ms: tsOf(i) });
      if (i % 5000 === 0) await producer.ready();
    }
    await producer.close();
  });

  afterAll(async () => {
    client?.close();
    expect(await server?.stop()).toBe(0);
    tmp.cleanup();
  });

  test('describe shows the high watermark, bytes on SSD and this node as leader', async () => {
    const t = await client.describeTopic('samples');
    expect(t.partitions[0]).toMatchObject({ log_start_offset: 0, high_watermark: N, log_end_offset: N, leader: server.address });
    expect(t.partitions[0]!.ssd_bytes).toBeGreaterThan(N * 8);
    expect(t.partitions[1]).toMatchObject({ high_watermark: 0 });
    expect(t.config['segment.bytes']).toBe(String(1024 * 1024));
    expect((await client.listTopics()).map((x) => x.name)).toEqual(['samples']);
  });

  test('replay by offset returns every record once, in order, from any offset', async () => {
    const all = await drain(new Consumer(client, { topic: 'samples', from: { offset: 0 }, end_offset: N }));
    expect(all.length).toBe(N);
    all.forEach((r, i) => {
      expect(r.offset).toBe(i);
      expect(r.value!.toString()).toBe(`v-${i}`);
    });
    // Mid-batch start: the server sends whole batches, the consumer skips what lies before.
    const mid = await drain(new Consumer(client, { topic: 'samples', from: { offset: 54_321 } }), 3);
    expect(mid.map((r) => r.offset)).toEqual([54_321, 54_322, 54_323]);
    const raw = await client.fetch('samples', 0, 54_321, 1);
    expect(raw.next_offset).toBeGreaterThan(54_321);
    const last = await drain(new Consumer(client, { topic: 'samples', from: { offset: N - 1 }, end_offset: N }));
    expect(last.map((r) => r.value!.toString())).toEqual([`v-${N - 1}`]);
  });

  test('replay by timestamp starts at the first record with timestamp >= T, exactly', async () => {
    for (const [ts, want] of [
      [T0 - 60_000, 0],
      [T0, 0],
      [T0 + 1, 100],
      [T0 + 500, 50_000],
      [tsOf(N - 1), N - 100],
    ] as const) {
      expect((await client.listOffsets('samples', 0, { timestamp_ms: ts })).offset).toBe(want);
      const first = await drain(new Consumer(client, { topic: 'samples', from: { timestamp_ms: ts } }), 1);
      expect(first[0]!.offset).toBe(want);
      expect(first[0]!.timestamp_ms).toBeGreaterThanOrEqual(ts);
      if (want > 0) {
        // ... and the record before it is older.
        const before = await drain(new Consumer(client, { topic: 'samples', from: { offset: want - 1 } }), 1);
        expect(before[0]!.timestamp_ms).toBeLessThan(ts);
      }
    }
    // Later than every record: no offset, and a consumer starts at the high watermark.
    const none = await client.listOffsets('samples', 0, { timestamp_ms: tsOf(N - 1) + 1 });
    expect(none).toEqual({ offset: null, log_start_offset: 0, high_watermark: N });
  });

  test('offsets out of range name both bounds', async () => {
    await expect(client.fetch('samples', 0, N + 1)).rejects.toMatchObject({ code: 'OFFSET_OUT_OF_RANGE', message: expect.stringMatching(/0\.\.100000/) });
    await expect(client.fetch('samples', 0, -5)).rejects.toMatchObject({ code: 'OFFSET_OUT_OF_RANGE' });
    await expect(drain(new Consumer(client, { topic: 'samples', from: { offset: N + 10 } }))).rejects.toMatchObject({ code: 'OFFSET_OUT_OF_RANGE' });
    await expect(client.fetch('nope', 0, 0)).rejects.toMatchObject({ code: 'UNKNOWN_TOPIC' });
    await expect(client.fetch('samples', 9, 0)).rejects.toMatchObject({ code: 'UNKNOWN_PARTITION' });
  });

  test('a subscriber follows the tail: records appended later arrive, in order, without polling', async () => {
    const c = new Consumer(client, { topic: 'samples', partition: 1, from: { position: 'latest' } });
    const got = drain(c, 30);
    await new Promise((r) => setTimeout(r, 200)); // the subscription is waiting at the tail
    for (let b = 0; b < 3; b++) {
      await client.produce('samples', 1, encodeBatch(Array.from({ length: 10 }, (_, i) => ({ value: `tail-${b * 10 + i}` }))));
      await new Promise((r) => setTimeout(r, 50));
    }
    const records = await got;
    expect(records.map((r) => r.value!.toString())).toEqual(Array.from({ length: 30 }, (_, i) => `tail-${i}`));
    expect(records.map((r) => r.offset)).toEqual(Array.from({ length: 30 }, (_, i) => i));
  });
});

test('a group commit survives a restart, and a consumer resumes from it', async () => {
  const tmp = tempDir('relaylog-grp-');
  let server = await startServer(tmp.dir);
  try {
    let client = new RelaylogClient(server.address);
    await client.createTopic('events');
    for (let b = 0; b < 10; b++) await client.produce('events', 0, encodeBatch(Array.from({ length: 100 }, (_, i) => ({ value: `e-${b * 100 + i}` }))));
    const c1 = new Consumer(client, { topic: 'events', from: { group: 'trainer' } });
    const first = await drain(c1, 250);
    expect(first[0]!.offset).toBe(0); // no commit yet: earliest
    await c1.commit('trainer');
    expect(await client.fetchCommitted('trainer', 'events', 0)).toEqual({ offset: 250, metadata: '' });
    client.close();

    expect(await server.stop('SIGTERM')).toBe(0);
    server = await startServer(tmp.dir);
    client = new RelaylogClient(server.address);
    expect(await client.fetchCommitted('trainer', 'events', 0)).toEqual({ offset: 250, metadata: '' });
    const resumed = await drain(new Consumer(client, { topic: 'events', from: { group: 'trainer' } }), 5);
    expect(resumed.map((r) => r.value!.toString())).toEqual(['e-250', 'e-251', 'e-252', 'e-253', 'e-254']);
    client.close();
  } finally {
    await server.stop('SIGKILL');
    tmp.cleanup();
  }
});

test('SIGTERM with produces in flight: exit 0, and every acknowledged record is there after restart', async () => {
  const tmp = tempDir('relaylog-term-');
  let server = await startServer(tmp.dir);
  try {
    const client = new RelaylogClient(server.address);
    await client.createTopic('load', { partitions: 2 });
    const acked: Array<{ partition: number; base_offset: number; values: string[] }> = [];
    const errors: string[] = [];
    let stop = false;
    let signalled = false;
    let acked_after_signal = 0;
    const writer = async (w: number) => {
      for (let n = 0; !stop && n < 10_000; n++) {
        const values = Array.from({ length: 50 }, (_, i) => `w${w}-${n}-${i}`);
        try {
          const r = await client.produce('load', w % 2, encodeBatch(values.map((value) => ({ value }))));
          acked.push({ partition: w % 2, base_offset: r.base_offset, values });
          if (signalled) acked_after_signal++;
        } catch (err) {
          errors.push((err as { code?: string }).code ?? String(err));
          return; // the server is going away
        }
      }
    };
    const writers = Array.from({ length: 8 }, (_, w) => writer(w));
    while (acked.length < 100) await new Promise((r) => setTimeout(r, 5));
    signalled = true;
    const code = await server.stop('SIGTERM');
    stop = true;
    await Promise.all(writers);
    client.close();
    expect(code).toBe(0);
    expect(server.stderr()).toMatch(/stopped cleanly/);
    // Eight writers never pause, so produces were in flight at the signal: drained (acknowledged) or refused.
    expect(acked_after_signal + errors.length).toBeGreaterThan(0);
    // Refusals while stopping are UNAVAILABLE (CLOSED) or a lost connection: retriable either way.
    for (const e of errors) expect(['CLOSED', 'UNAVAILABLE', 'CANCELLED']).toContain(e);

    server = await startServer(tmp.dir);
    const again = new RelaylogClient(server.address);
    for (const p of [0, 1]) {
      const mine = acked.filter((a) => a.partition === p);
      const hw = (await again.listOffsets('load', p, { position: 'latest' })).high_watermark;
      const records = await drain(new Consumer(again, { topic: 'load', partition: p, from: { offset: 0 }, end_offset: hw }));
      const byOffset = new Map(records.map((r) => [r.offset, r.value!.toString()]));
      for (const a of mine) a.values.forEach((v, i) => expect(byOffset.get(a.base_offset + i)).toBe(v));
    }
    again.close();
  } finally {
    await server.stop('SIGKILL');
    tmp.cleanup();
  }
});

test('a second server on the same data dir is refused with a clear message; the first keeps serving', async () => {
  const tmp = tempDir('relaylog-lock-');
  const first = await startServer(tmp.dir);
  try {
    const err = await startServer(tmp.dir).then(
      async (s) => {
        await s.stop('SIGKILL');
        throw new Error('second server started');
      },
      (e: { code?: number; stderr?: string }) => e,
    );
    expect(err.code).toBe(1);
    expect(err.stderr?.trim().split('\n')).toHaveLength(1);
    expect(err.stderr).toMatch(/relaylog: data dir .* is in use by another relaylog process \(pid \d+\)/);
    const client = new RelaylogClient(first.address);
    expect(await client.listTopics()).toEqual([]);
    client.close();
  } finally {
    expect(await first.stop()).toBe(0);
    tmp.cleanup();
  }
});
