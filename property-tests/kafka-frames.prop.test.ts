/*
 * Fuzzing the Kafka listener's frame decoder. Replay a failure with the seed it prints:
 *   SEED=123456 npx vitest run property-tests/kafka-frames.prop.test.ts
 *
 * Streams are valid request frames of every API and version served, mutated (bit flips,
 * truncation, overwritten lengths, spliced garbage), surrounded by valid frames, or plain random
 * bytes, cut into random chunks. Properties:
 *  - the pure decoder (FrameReader + decodeRequestFrame) either decodes or throws a
 *    MalformedRequestError, nothing else, and does work linear in the input;
 *  - a real listener given the same stream never crashes or hangs: the connection is closed with
 *    a warn line naming exactly the code the pure decoder predicts (or not at all when the stream
 *    is well-formed), no error line is ever logged, and the listener still serves a new client.
 */
import { connect } from 'node:net';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { encodeBatch } from '../engine/index.js';
import { isMalformed } from '../server/kafka/errors.js';
import { kafkaLimits } from '../server/kafka/limits.js';
import type { ApiCodec } from '../server/kafka/protocol/api.js';
import { apiVersions } from '../server/kafka/protocol/api-versions.js';
import { createTopics } from '../server/kafka/protocol/create-topics.js';
import { Encoder } from '../server/kafka/protocol/encoder.js';
import { fetch } from '../server/kafka/protocol/fetch.js';
import { findCoordinator } from '../server/kafka/protocol/find-coordinator.js';
import { FrameReader, requestFrame } from '../server/kafka/protocol/frame.js';
import { heartbeat } from '../server/kafka/protocol/heartbeat.js';
import { joinGroup } from '../server/kafka/protocol/join-group.js';
import { leaveGroup } from '../server/kafka/protocol/leave-group.js';
import { listOffsets } from '../server/kafka/protocol/list-offsets.js';
import { metadata } from '../server/kafka/protocol/metadata.js';
import { offsetCommit } from '../server/kafka/protocol/offset-commit.js';
import { offsetFetch } from '../server/kafka/protocol/offset-fetch.js';
import { produce } from '../server/kafka/protocol/produce.js';
import { syncGroup } from '../server/kafka/protocol/sync-group.js';
import { decodeRequestFrame } from '../server/kafka/request.js';
import { KafkaHarness } from '../test/integration/kafka/harness.js';
import { RawKafkaClient } from '../test/integration/kafka/raw-client.js';

const seed = Number(process.env.SEED ?? Date.now() % 2 ** 31);
const PURE_RUNS = Number(process.env.KAFKA_FUZZ_RUNS ?? 1500);
const SOCKET_RUNS = Number(process.env.KAFKA_FUZZ_SOCKET_RUNS ?? 80);
/** Frames are kept small in the fuzz listener so that "too large" is reachable. */
const FRAME_MAX_BYTES = 64 * 1024;
const CLOSE_WAIT_MAX_MS = 3_000;

function check<Ts extends [unknown, ...unknown[]]>(prop: fc.IAsyncProperty<Ts> | fc.IProperty<Ts>, numRuns: number): Promise<void> | void {
  const fail = (err: unknown) => {
    const cause = (err as { cause?: unknown }).cause;
    throw new Error(`${(err as Error).message}${cause ? `\ncause: ${(cause as Error).message ?? String(cause)}` : ''}\nreplay with SEED=${seed}`);
  };
  try {
    const r = fc.assert(prop as fc.IProperty<Ts>, { seed, numRuns });
    return (r as unknown as Promise<void> | undefined)?.catch(fail);
  } catch (err) {
    fail(err);
  }
}

// ---------------------------------------------------------------- valid frames of every API and version

const T = 'fuzz';
const batch = encodeBatch([{ key: 'k', value: 'v' }], { timestamp_ms: 1_700_000_000_000 });
// Waits are kept short: a fuzzed Fetch still long-polls for max_wait_ms before it is answered.
const SAMPLES: Array<[ApiCodec<never, unknown>, unknown]> = [
  [apiVersions as never, {}],
  [metadata as never, { topics: [T, 'other'], allow_auto_topic_creation: false }],
  [produce as never, { transactional_id: null, acks: 1, timeout_ms: 1000, topic_data: [{ name: T, partition_data: [{ index: 0, records: batch }] }] }],
  [fetch as never, { replica_id: -1, max_wait_ms: 5, min_bytes: 1, max_bytes: 4096, isolation_level: 0, session_id: 0, session_epoch: -1, topics: [{ topic: T, partitions: [{ partition: 0, current_leader_epoch: -1, fetch_offset: 0, log_start_offset: -1, partition_max_bytes: 4096 }] }], forgotten_topics_data: [], rack_id: 'r' }],
  [listOffsets as never, { replica_id: -1, isolation_level: 0, topics: [{ name: T, partitions: [{ partition_index: 0, timestamp: -1 }] }] }],
  [findCoordinator as never, { key: 'g', key_type: 0 }],
  [joinGroup as never, { group_id: 'g', session_timeout_ms: 10_000, rebalance_timeout_ms: 10_000, member_id: '', group_instance_id: null, protocol_type: 'consumer', protocols: [{ name: 'range', metadata: Buffer.from([1, 2]) }] }],
  [syncGroup as never, { group_id: 'g', generation_id: 1, member_id: 'm', group_instance_id: null, assignments: [{ member_id: 'm', assignment: Buffer.from([3]) }] }],
  [heartbeat as never, { group_id: 'g', generation_id: 1, member_id: 'm', group_instance_id: null }],
  [leaveGroup as never, { group_id: 'g', members: [{ member_id: 'm', group_instance_id: null }] }],
  [offsetCommit as never, { group_id: 'g', generation_id: -1, member_id: '', group_instance_id: null, retention_time_ms: -1, topics: [{ name: T, partitions: [{ partition_index: 0, committed_offset: 0, committed_leader_epoch: -1, committed_metadata: 'm' }] }] }],
  [offsetFetch as never, { group_id: 'g', topics: [{ name: T, partition_indexes: [0] }] }],
  [createTopics as never, { topics: [{ name: 'made', num_partitions: 1, replication_factor: 1, assignments: [], configs: [{ name: 'retention.ms', value: '1000' }] }], timeout_ms: 1000, validate_only: true }],
];

const VALID_FRAMES: Buffer[] = SAMPLES.flatMap(([codec, req]) => {
  const out: Buffer[] = [];
  for (let v = codec.min_version; v <= codec.max_version; v++) {
    const body = new Encoder();
    codec.encodeRequest(body, v, req as never);
    out.push(Buffer.concat(requestFrame({ api_key: codec.key, api_version: v, correlation_id: 1000 + v, client_id: 'fuzz' }, body)));
  }
  return out;
});

// ---------------------------------------------------------------- mutations

type Mutation = (b: Buffer) => Buffer;
const INTERESTING_INT32 = [-1, -2, 0, 1, 0x7fffffff, -0x80000000, 0xffff, 0x10000, FRAME_MAX_BYTES, FRAME_MAX_BYTES + 1, 100 * 1024 * 1024];

const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  fc.tuple(fc.nat(), fc.integer({ min: 1, max: 255 })).map(([i, x]): Mutation => (b) => {
    const c = Buffer.from(b);
    if (c.length > 0) c.writeUInt8(c.readUInt8(i % c.length) ^ x, i % c.length);
    return c;
  }),
  fc.nat().map((i): Mutation => (b) => b.subarray(0, i % (b.length + 1))),
  fc.uint8Array({ minLength: 1, maxLength: 16 }).map((extra): Mutation => (b) => Buffer.concat([b, Buffer.from(extra)])),
  fc.tuple(fc.nat(), fc.uint8Array({ minLength: 1, maxLength: 8 })).map(([i, junk]): Mutation => (b) => {
    const at = i % (b.length + 1);
    return Buffer.concat([b.subarray(0, at), Buffer.from(junk), b.subarray(at)]);
  }),
  fc.tuple(fc.nat(), fc.constantFrom(...INTERESTING_INT32)).map(([i, v]): Mutation => (b) => {
    const c = Buffer.from(b);
    if (c.length >= 4) c.writeInt32BE(v, i % (c.length - 3));
    return c;
  }),
  fc.constantFrom(...INTERESTING_INT32).map((v): Mutation => (b) => {
    const c = Buffer.from(b);
    if (c.length >= 4) c.writeInt32BE(v, 0); // the size prefix
    return c;
  }),
);

const validFrame = fc.constantFrom(...VALID_FRAMES);
const mutatedFrame = fc.tuple(validFrame, fc.array(mutation, { minLength: 1, maxLength: 3 })).map(([f, ms]) => ms.reduce((b, m) => m(b), f));
const garbage = fc.uint8Array({ maxLength: 64 }).map((a) => Buffer.from(a));

/** A byte stream: some valid frames, then a mutated frame or garbage (or nothing), then maybe more valid frames. */
const stream = fc
  .tuple(fc.array(validFrame, { maxLength: 2 }), fc.oneof({ weight: 4, arbitrary: mutatedFrame }, { weight: 1, arbitrary: garbage }, { weight: 1, arbitrary: fc.constant(Buffer.alloc(0)) }), fc.array(validFrame, { maxLength: 2 }))
  .map(([before, middle, after]) => Buffer.concat([...before, middle, ...after]));

/** Cut points for delivering a stream in chunks. */
const cuts = fc.array(fc.nat(), { maxLength: 6 });

function chunked(b: Buffer, at: number[]): Buffer[] {
  const points = [...new Set(at.map((p) => (b.length === 0 ? 0 : p % b.length)))].sort((x, y) => x - y);
  const out: Buffer[] = [];
  let prev = 0;
  for (const p of points) {
    if (p > prev) out.push(b.subarray(prev, p));
    prev = Math.max(prev, p);
  }
  out.push(b.subarray(prev));
  return out.filter((c) => c.length > 0);
}

/** What the listener must do with a stream, per the pure decoder: the malformed code it closes on, or null. */
function predict(chunks: Buffer[]): { code: string | null; frames: number } {
  const r = new FrameReader(FRAME_MAX_BYTES);
  let frames = 0;
  try {
    for (const c of chunks) {
      r.push(c);
      for (let f = r.next(); f !== null; f = r.next()) {
        decodeRequestFrame(f, kafkaLimits.array_length_max);
        frames++;
      }
    }
    return { code: null, frames };
  } catch (err) {
    if (!isMalformed(err)) throw err;
    return { code: err.code, frames };
  }
}

// ---------------------------------------------------------------- properties

describe(`Kafka frame decoder fuzz (seed ${seed})`, () => {
  test('the pure decoder decodes or throws MalformedRequestError, for mutated frames and random bytes in any chunking', () => {
    check(
      fc.property(stream, cuts, (s, at) => {
        const t0 = performance.now();
        const { frames } = predict(chunked(s, at)); // throws on anything but MalformedRequestError
        expect(frames).toBeLessThanOrEqual(s.length / 10);
        expect(performance.now() - t0).toBeLessThan(500);
      }),
      PURE_RUNS,
    );
  });

  test('every valid frame decodes; every strict prefix of one is incomplete, never an error', () => {
    for (const f of VALID_FRAMES) {
      expect(predict([f])).toEqual({ code: null, frames: 1 });
      for (let n = 0; n < f.length; n++) expect(predict([f.subarray(0, n)]).code).toBeNull();
    }
  });

  describe('against a real listener', () => {
    let h: KafkaHarness;
    beforeAll(async () => {
      h = await new KafkaHarness({ listener: { limits: { frame_size_max_bytes: FRAME_MAX_BYTES, fetch_wait_max_ms: 50, shutdown_drain_max_ms: 500 } } }).start();
      await h.store.createTopic(T);
      await h.store.partition(T, 0).append(encodeBatch([{ value: 'sentinel' }], { timestamp_ms: 1_700_000_000_000 }));
    });
    afterAll(async () => {
      await h?.stop();
    });

    test('a hostile stream closes only its own connection, with the predicted log line, and never crashes or hangs the listener', async () => {
      const outcomes = new Map<string, number>();
      await check(
        fc.asyncProperty(stream, cuts, async (s, at) => {
          const chunks = chunked(s, at);
          const expected = predict(chunks);
          outcomes.set(expected.code ?? 'well-formed', (outcomes.get(expected.code ?? 'well-formed') ?? 0) + 1);
          const socket = connect({ host: '127.0.0.1', port: Number(h.broker.split(':')[1]) });
          socket.on('error', () => undefined);
          socket.on('data', () => undefined);
          await new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject));
          const local = `${socket.localAddress}:${socket.localPort}`;
          // Ephemeral ports are reused across runs: only this run's log lines count.
          const first_line = h.logger.lines.length;
          const closed = new Promise<boolean>((resolve) => {
            const timer = setTimeout(() => resolve(false), CLOSE_WAIT_MAX_MS);
            socket.once('close', () => (clearTimeout(timer), resolve(true)));
          });
          for (const c of chunks) socket.write(c);
          // Ending our side: a server waiting for the rest of a frame must let go too.
          socket.end();
          expect(await closed).toBe(true);
          const mine = () => h.logger.lines.slice(first_line).filter((l) => (l.obj as { remote?: string }).remote === local);
          if (expected.code !== null) {
            const deadline = Date.now() + 1000;
            while (!mine().some((l) => l.level === 'warn') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
          }
          const warned = mine().filter((l) => l.level === 'warn').map((l) => (l.obj as { code?: string }).code ?? l.msg);
          expect(warned).toEqual(expected.code === null ? [] : [expected.code]);
          const errors = h.logger.lines.filter((l) => l.level === 'error').map((l) => `${l.msg} ${JSON.stringify(l.obj)}`);
          if (errors.length > 0) throw new Error(`the listener logged errors:\n${errors.join('\n')}`);
        }),
        SOCKET_RUNS,
      );
      // The generator reaches both outcomes and several kinds of malformation.
      if (SOCKET_RUNS >= 50) {
        expect(outcomes.get('well-formed') ?? 0).toBeGreaterThan(0);
        expect(outcomes.size).toBeGreaterThanOrEqual(4);
      }
      if (process.env.KAFKA_FUZZ_STATS) console.log(Object.fromEntries(outcomes));
      // Still serving, and nothing acknowledged before the barrage was lost.
      const c = await RawKafkaClient.connect(h.broker);
      expect((await c.send(apiVersions, 2, {})).error_code).toBe(0);
      const r = await c.send(fetch, 11, { replica_id: -1, max_wait_ms: 0, min_bytes: 1, max_bytes: 1 << 20, isolation_level: 0, session_id: 0, session_epoch: -1, topics: [{ topic: T, partitions: [{ partition: 0, current_leader_epoch: -1, fetch_offset: 0, log_start_offset: -1, partition_max_bytes: 1 << 20 }] }], forgotten_topics_data: [], rack_id: '' });
      expect(r.responses[0]!.partitions[0]!.records!.toString()).toContain('sentinel');
      await c.close();
      await new Promise((r) => setTimeout(r, 50));
      expect(h.listener.connectionCount).toBe(0);
    }, 60_000);
  });
});
