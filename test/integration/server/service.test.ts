import { status } from '@grpc/grpc-js';
import { afterAll, afterEach, beforeAll, describe, expect, test } from 'vitest';
import { Consumer, Producer, RelaylogClient } from '../../../client/index.js';
import { encodeBatch, type DecodedRecord } from '../../../engine/index.js';
import { encodeMessage, messageType } from '../../../server/proto/load.js';
import type { ServerLogger } from '../../../server/rpc/context.js';
import { LogServer } from '../../../server/rpc/log-server.js';
import { RawGrpc } from '../../support/grpc-raw.js';
import { tempDir } from '../../support/tmp.js';

/*
 * The gRPC services in this process (LogServer over a real LogStore on a temp dir, loopback
 * port 0): status mapping, produce streams, long polls and shutdown. Process-level behaviour
 * (signals, the data-dir lock across processes, restarts) is in server-process.test.ts.
 */

const bugs: object[] = [];
const logger: ServerLogger = { debug: () => undefined, info: () => undefined, warn: () => undefined, error: (o) => void bugs.push(o) };
const batch = (values: string[], timestamp_ms?: number) => encodeBatch(values.map((value) => ({ value, ...(timestamp_ms !== undefined ? { timestamp_ms } : {}) })));
const values = (rs: DecodedRecord[]) => rs.map((r) => r.value!.toString());

async function drain(c: Consumer, limit: number): Promise<DecodedRecord[]> {
  const out: DecodedRecord[] = [];
  for await (const r of c) if (out.push(r) >= limit) break;
  c.close();
  return out;
}

describe('a LogServer', () => {
  const tmp = tempDir('relaylog-svc-');
  let server: LogServer;
  let client: RelaylogClient;
  let raw: RawGrpc;

  beforeAll(async () => {
    server = await LogServer.start({ store: { dir: tmp.dir, disk_free_floor_bytes: 0 }, listen: '127.0.0.1:0', logger, limits: { subscribers_max: 4 } });
    client = new RelaylogClient(server.address);
    raw = new RawGrpc(server.address);
    await client.createTopic('t', { partitions: 2, config: { 'max.message.bytes': '100000' } });
  });
  afterAll(async () => {
    client.close();
    raw.close();
    await server.stop();
    tmp.cleanup();
  });
  afterEach(() => expect(bugs).toEqual([]));

  test('engine errors travel as their gRPC status, with the stable code and a message naming the problem', async () => {
    const P = messageType('ProduceRequest');
    const produce = (o: object) => raw.unary('/relaylog.v1.Log/Produce', encodeMessage(P, o));
    const corrupt = batch(['x']);
    corrupt[corrupt.length - 1]! ^= 0xff;
    const cases: Array<[Promise<{ code: number; details: string; trailer_code?: string }>, number, string, RegExp]> = [
      [produce({ topic: 'nope', records: batch(['x']) }), status.NOT_FOUND, 'UNKNOWN_TOPIC', /unknown topic "nope"/],
      [produce({ topic: 't', partition: 5, records: batch(['x']) }), status.NOT_FOUND, 'UNKNOWN_PARTITION', /0\.\.1/],
      [produce({ topic: 't', records: corrupt }), status.INVALID_ARGUMENT, 'CORRUPT_BATCH', /crc|CRC/],
      [produce({ topic: 't', records: Buffer.from('garbage!') }), status.INVALID_ARGUMENT, 'INVALID_BATCH', /batch/],
      [produce({ topic: 't' }), status.INVALID_ARGUMENT, 'INVALID_ARGUMENT', /needs records/],
      [produce({ topic: 't', records: batch(['x'.repeat(200_000)]) }), status.RESOURCE_EXHAUSTED, 'BATCH_TOO_LARGE', /max\.message\.bytes=100000/],
      [raw.unary('/relaylog.v1.Admin/CreateTopic', encodeMessage(messageType('CreateTopicRequest'), { name: 'a/b' })), status.INVALID_ARGUMENT, 'INVALID_TOPIC', /"a\/b"/],
      [raw.unary('/relaylog.v1.Admin/CreateTopic', encodeMessage(messageType('CreateTopicRequest'), { name: 't' })), status.ALREADY_EXISTS, 'TOPIC_EXISTS', /already exists/],
      [raw.unary('/relaylog.v1.Admin/CreateTopic', encodeMessage(messageType('CreateTopicRequest'), { name: 'c', config: { 'retention.ms': 'soon' } })), status.INVALID_ARGUMENT, 'INVALID_CONFIG', /retention\.ms/],
      [raw.unary('/relaylog.v1.Log/Fetch', encodeMessage(messageType('FetchRequest'), { topic: 't', offset: 7 })), status.OUT_OF_RANGE, 'OFFSET_OUT_OF_RANGE', /valid offsets are 0\.\.\d+/],
      [raw.unary('/relaylog.v1.Log/Fetch', Buffer.from([0x0a, 0xff, 0x01])), status.INVALID_ARGUMENT, 'INVALID_ARGUMENT', /malformed FetchRequest/],
      [raw.unary('/relaylog.v1.Log/Subscribe', Buffer.alloc(0)), status.INVALID_ARGUMENT, 'INVALID_ARGUMENT', /needs a start/],
    ];
    for (const [call, code, trailer, message] of cases) {
      const r = await call;
      expect({ code: r.code, trailer: r.trailer_code ?? '' }).toEqual({ code, trailer });
      expect(r.details).toMatch(message);
    }
  });

  test('produce answers with the base offset of every batch of the record set', async () => {
    const set = Buffer.concat([batch(['a', 'b', 'c']), batch(['d']), batch(['e', 'f'])]);
    const hw = (await client.listOffsets('t', 1, { position: 'latest' })).high_watermark;
    const r = await client.produce('t', 1, set);
    expect(r).toEqual({ base_offset: hw, last_offset: hw + 5, batch_base_offsets: [hw, hw + 3, hw + 4] });
  });

  test('the Producer pipeline keeps send order with many batches in flight', async () => {
    const p = new Producer(client, { topic: 't', partition: 0, batch_bytes: 4096, max_in_flight: 8, linger_ms: 1 });
    const offsets = await Promise.all(Array.from({ length: 3000 }, (_, i) => p.send({ value: `p-${i}`.padEnd(100, '.') })));
    await p.close();
    for (let i = 1; i < offsets.length; i++) expect(offsets[i]).toBe(offsets[i - 1]! + 1);
    const got = await drain(new Consumer(client, { topic: 't', from: { offset: offsets[0]! } }), 3000);
    expect(values(got).map((v) => v.replace(/\.+$/, ''))).toEqual(Array.from({ length: 3000 }, (_, i) => `p-${i}`));
  });

  test('ProduceStream appends in stream order and answers once; a bad set fails the call after the sets before it', async () => {
    const s = client.produceStream();
    for (let i = 0; i < 20; i++) s.write('t', 1, batch([`s-${i}`]));
    const r = await s.end();
    expect(r.record_sets).toBe(20);
    expect(r.last_offset - r.first_offset).toBe(19);
    const got = await drain(new Consumer(client, { topic: 't', partition: 1, from: { offset: r.first_offset } }), 20);
    expect(values(got)).toEqual(Array.from({ length: 20 }, (_, i) => `s-${i}`));

    const bad = client.produceStream();
    bad.write('t', 1, batch(['before']));
    bad.write('nope', 0, batch(['x']));
    bad.write('t', 1, batch(['after']));
    await expect(bad.end()).rejects.toMatchObject({ code: 'UNKNOWN_TOPIC' });
  });

  test('a fetch at the high watermark long-polls: it answers as soon as data arrives, or empty after the wait', async () => {
    const hw = (await client.listOffsets('t', 1, { position: 'latest' })).high_watermark;
    let t = performance.now();
    const empty = await client.fetch('t', 1, hw, 1024, 300);
    expect(empty.records.length).toBe(0);
    expect(performance.now() - t).toBeGreaterThanOrEqual(250);
    t = performance.now();
    const waiting = client.fetch('t', 1, hw, 1024, 10_000);
    setTimeout(() => void client.produce('t', 1, batch(['late'])), 100);
    const got = await waiting;
    expect(performance.now() - t).toBeLessThan(3_000);
    expect(got.next_offset).toBe(hw + 1);
  });

  test('subscribers past subscribers_max are refused with RESOURCE_EXHAUSTED', async () => {
    const subs = Array.from({ length: 4 }, () => client.subscribe('t', 0, { position: 'latest' }));
    await new Promise((r) => setTimeout(r, 200));
    const S = messageType('SubscribeRequest');
    const refused = await raw.serverStream('/relaylog.v1.Log/Subscribe', encodeMessage(S, { topic: 't', position: 'LATEST' }), { timeout_ms: 2_000 });
    expect(refused.code).toBe(status.RESOURCE_EXHAUSTED);
    expect(refused.details).toMatch(/subscribers_max/);
    for (const s of subs) {
      s.on('error', () => undefined);
      s.cancel();
    }
    await new Promise((r) => setTimeout(r, 100));
    // Cancelled subscriptions free their slots.
    const again = await raw.serverStream('/relaylog.v1.Log/Subscribe', encodeMessage(S, { topic: 't', position: 'LATEST' }), { timeout_ms: 300 });
    expect(again.code).toBe(-1); // still open (following the tail) when we gave up waiting
  });
});

test('stop() does not wait for idle producers: their pipelines end with UNAVAILABLE', async () => {
  const tmp = tempDir('relaylog-idle-');
  const server = await LogServer.start({ store: { dir: tmp.dir, disk_free_floor_bytes: 0 }, listen: '127.0.0.1:0', logger });
  const client = new RelaylogClient(server.address);
  try {
    await client.createTopic('t');
    const producer = new Producer(client, { topic: 't', linger_ms: 0, retries: 0 });
    expect(await producer.send({ value: 'acked' })).toBe(0);
    const stream = client.produceStream();
    stream.write('t', 0, batch(['streamed']));
    const streamed = stream.end().catch((e: { code?: string }) => e.code);
    const t = performance.now();
    await server.stop();
    expect(performance.now() - t).toBeLessThan(3_000);
    const outcome = await streamed; // answered before the stop, refused by it, or never got through (GOAWAY)
    expect(typeof outcome === 'string' ? outcome : 'answered').toMatch(/^(answered|CLOSED|UNAVAILABLE)$/);
  } finally {
    client.close();
    await server.stop();
    tmp.cleanup();
  }
});

test('stop(): open subscriptions end with UNAVAILABLE, in-flight produces are acknowledged, new calls are refused', async () => {
  const tmp = tempDir('relaylog-stop-');
  const server = await LogServer.start({ store: { dir: tmp.dir, disk_free_floor_bytes: 0 }, listen: '127.0.0.1:0', logger });
  const client = new RelaylogClient(server.address);
  try {
    await client.createTopic('t');
    const sub = drain(new Consumer(client, { topic: 't', from: { position: 'earliest' }, retries: 0 }), 1_000_000).then(
      () => null,
      (e: unknown) => e,
    );
    await new Promise((r) => setTimeout(r, 100));
    const inflight = Array.from({ length: 20 }, (_, i) => client.produce('t', 0, batch([`x-${i}`])).then(() => 'ok', (e: { code?: string }) => e.code));
    const stopped = server.stop();
    const late = client.produce('t', 0, batch(['late'])).then(() => 'ok', (e: { code?: string }) => e.code);
    await stopped;
    expect(await sub).toMatchObject({ code: 'CLOSED', message: expect.stringMatching(/shutting down/) });
    for (const r of await Promise.all(inflight)) expect(['ok', 'CLOSED', 'UNAVAILABLE']).toContain(r);
    expect(['CLOSED', 'UNAVAILABLE']).toContain(await late);
  } finally {
    client.close();
    await server.stop();
    tmp.cleanup();
  }
  expect(bugs).toEqual([]);
});
