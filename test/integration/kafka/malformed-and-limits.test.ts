import { afterEach, describe, expect, test } from 'vitest';
import { encodeBatch } from '../../../engine/index.js';
import { apiVersions } from '../../../server/kafka/protocol/api-versions.js';
import { Encoder } from '../../../server/kafka/protocol/encoder.js';
import { fetch } from '../../../server/kafka/protocol/fetch.js';
import { metadata } from '../../../server/kafka/protocol/metadata.js';
import { produce } from '../../../server/kafka/protocol/produce.js';
import { KafkaHarness, waitUntil } from './harness.js';
import { RawKafkaClient } from './raw-client.js';

/*
 * Hostile and excessive clients: each malformed request closes only its own connection, with one
 * warn line naming what was wrong; limits give backpressure or a refusal, and the listener goes on
 * serving everyone else.
 */

const int32 = (n: number) => {
  const b = Buffer.alloc(4);
  b.writeInt32BE(n);
  return b;
};
/** A request frame with a hand-written header and body. */
const frame = (api_key: number, api_version: number, body: Buffer, correlation_id = 1) => {
  const e = new Encoder().int16(api_key).int16(api_version).int32(correlation_id).nullableString('evil');
  e.raw(body);
  const bytes = e.toBuffer();
  return Buffer.concat([int32(bytes.length), bytes]);
};

describe('malformed requests close the connection with a log line', () => {
  let h: KafkaHarness;
  afterEach(async () => {
    await h.stop();
  });

  const cases: Array<[string, Buffer, string]> = [
    ['a frame larger than frame_size_max_bytes', int32(200 * 1024 * 1024), 'FRAME_TOO_LARGE'],
    ['a negative frame size', int32(-5), 'BAD_FRAME_SIZE'],
    ['a frame too short for a header', Buffer.concat([int32(3), Buffer.from([0, 3, 0])]), 'BAD_FRAME_SIZE'],
    ['an unknown API key', frame(99, 0, Buffer.alloc(0)), 'UNKNOWN_API_KEY'],
    ['an API key that is not served (AddPartitionsToTxn)', frame(24, 0, Buffer.alloc(8)), 'UNKNOWN_API_KEY'],
    ['a version below the served range (Fetch v3)', frame(1, 3, Buffer.alloc(40)), 'UNSUPPORTED_API_VERSION'],
    ['a version above the served range (Metadata v8)', frame(3, 8, Buffer.alloc(8)), 'UNSUPPORTED_API_VERSION'],
    ['a truncated field', frame(3, 1, Buffer.from([0, 0, 0, 1, 0, 9, 0x61])), 'TRUNCATED'],
    ['a huge array length', frame(3, 1, int32(0x7fffffff)), 'ARRAY_TOO_LONG'],
    ['a negative string length', frame(10, 0, Buffer.from([0xff, 0xf0])), 'BAD_LENGTH'],
    ['bytes left over after the body', frame(18, 2, Buffer.from([1, 2, 3])), 'TRAILING_BYTES'],
    ['a null client id, then an array length of -2', Buffer.concat([int32(14), Buffer.from([0, 3, 0, 1, 0, 0, 0, 1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe])]), 'BAD_LENGTH'],
  ];

  test.each(cases)('%s', async (_what, bytes, code) => {
    h = await new KafkaHarness().start();
    const bad = await RawKafkaClient.connect(h.broker);
    bad.write(bytes);
    await bad.closed;
    await waitUntil(() => h.logger.lines.some((l) => l.level === 'warn' && (l.obj as { code?: string }).code === code), 2_000, `a warn line with code ${code}`);
    const line = h.logger.lines.find((l) => (l.obj as { code?: string }).code === code)!;
    expect(line.msg).toMatch(/malformed request; closing the connection/);
    expect(line.obj).toHaveProperty('remote');
    // Everyone else is still served.
    const good = await RawKafkaClient.connect(h.broker);
    expect((await good.send(apiVersions, 2, {})).error_code).toBe(0);
    await good.close();
    expect(h.logger.lines.filter((l) => l.level === 'error')).toEqual([]);
  });

  test('a malformed frame after good ones: the good ones were served, the rest of the stream is ignored', async () => {
    h = await new KafkaHarness().start();
    await h.store.createTopic('t');
    const c = await RawKafkaClient.connect(h.broker);
    const body = new Encoder();
    produce.encodeRequest(body, 7, { transactional_id: null, acks: 1, timeout_ms: 1000, topic_data: [{ name: 't', partition_data: [{ index: 0, records: encodeBatch([{ value: 'ok' }]) }] }] });
    const good = frame(0, 7, body.toBuffer());
    c.write(Buffer.concat([good, frame(99, 0, Buffer.alloc(0)), good]));
    await c.closed;
    await waitUntil(() => h.store.partition('t', 0).highWatermark === 1, 2_000, 'the first produce');
    await new Promise((r) => setTimeout(r, 100));
    expect(h.store.partition('t', 0).highWatermark).toBe(1);
  });

  test('a frame that trickles in one byte at a time is served; a half-sent frame is dropped when the client goes', async () => {
    h = await new KafkaHarness().start();
    const c = await RawKafkaClient.connect(h.broker);
    const answer = c.expectResponse(1, (d) => apiVersions.decodeResponse(d, 1));
    for (const b of frame(18, 1, Buffer.alloc(0), 1)) {
      c.write(Buffer.from([b]));
      await new Promise((r) => setImmediate(r));
    }
    expect(await answer).toMatchObject({ error_code: 0 });
    c.write(frame(18, 2, Buffer.alloc(0), 2).subarray(0, 7));
    await c.close();
    expect(h.listener.connectionCount).toBeLessThanOrEqual(1);
    await waitUntil(() => h.listener.connectionCount === 0, 2_000, 'the connection to be forgotten');
  });
});

describe('limits', () => {
  let h: KafkaHarness;
  afterEach(async () => {
    await h.stop();
  });

  test('inflight_requests_max: a client pipelining more requests gets backpressure, and every answer in order', async () => {
    h = await new KafkaHarness({ listener: { limits: { inflight_requests_max: 2 } } }).start();
    await h.store.createTopic('t');
    const c = await RawKafkaClient.connect(h.broker);
    const fetchReq = { replica_id: -1, max_wait_ms: 100, min_bytes: 1, max_bytes: 1024, isolation_level: 0, session_id: 0, session_epoch: -1, topics: [{ topic: 't', partitions: [{ partition: 0, current_leader_epoch: -1, fetch_offset: 0, log_start_offset: -1, partition_max_bytes: 1024 }] }], forgotten_topics_data: [], rack_id: '' };
    const answers = [c.send(fetch, 11, fetchReq)];
    for (let i = 0; i < 30; i++) answers.push(c.send(metadata, 1, { topics: null, allow_auto_topic_creation: false }) as Promise<never>);
    await Promise.all(answers);
    expect(c.arrival).toEqual(Array.from({ length: 31 }, (_, i) => i + 1));
    await c.close();
  });

  test('connections_max: one connection too many is closed with a log line; others carry on', async () => {
    h = await new KafkaHarness({ listener: { limits: { connections_max: 2 } } }).start();
    const a = await RawKafkaClient.connect(h.broker);
    const b = await RawKafkaClient.connect(h.broker);
    await waitUntil(() => h.listener.connectionCount === 2, 2_000, 'two connections');
    const extra = await RawKafkaClient.connect(h.broker);
    await extra.closed;
    expect(h.logger.lines.some((l) => l.level === 'warn' && /connections_max/.test(l.msg))).toBe(true);
    expect((await a.send(apiVersions, 2, {})).error_code).toBe(0);
    await b.close();
    await waitUntil(() => h.listener.connectionCount === 1, 2_000, 'the closed connection to be forgotten');
    const again = await RawKafkaClient.connect(h.broker);
    expect((await again.send(apiVersions, 0, {})).error_code).toBe(0);
    await Promise.all([a.close(), again.close()]);
  });

  test('stop() ends long polls at once and closes connections, leaving the store open for its owner', async () => {
    h = await new KafkaHarness().start();
    await h.store.createTopic('t');
    const c = await RawKafkaClient.connect(h.broker);
    const fetchReq = { replica_id: -1, max_wait_ms: 20_000, min_bytes: 1, max_bytes: 1024, isolation_level: 0, session_id: 0, session_epoch: -1, topics: [{ topic: 't', partitions: [{ partition: 0, current_leader_epoch: -1, fetch_offset: 0, log_start_offset: -1, partition_max_bytes: 1024 }] }], forgotten_topics_data: [], rack_id: '' };
    const polling = c.send(fetch, 11, fetchReq);
    await new Promise((r) => setTimeout(r, 100));
    const t0 = Date.now();
    await h.listener.stop();
    expect(Date.now() - t0).toBeLessThan(2_000);
    // The long poll was answered (empty) before the connection closed.
    expect((await polling).responses[0]!.partitions[0]!.records!.length).toBe(0);
    await c.closed;
    expect(h.store.partition('t', 0).highWatermark).toBe(0); // the store is still open
    await h.listener.stop(); // idempotent
  });
});
