import fc from 'fast-check';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { batchesOf, Consumer, RelaylogClient } from '../client/index.js';
import { decodeMessage, encodeMessage, messageType } from '../server/proto/load.js';
import { decodeRecords, encodeBatch } from '../engine/index.js';
import { RawGrpc } from '../test/support/grpc-raw.js';
import { assertFreshBuild, startServer, type ServerProcess } from '../test/support/server-process.js';
import { tempDir } from '../test/support/tmp.js';

/*
 * Hostile requests against the real server process: garbage bytes to every method, well-formed
 * messages with absurd fields (negative and 2^63 offsets, bad names, huge partitions, corrupt and
 * truncated batches, random config). Properties: the server never crashes, never answers INTERNAL
 * or UNKNOWN (every refusal is a status a person can act on), and every record it acknowledged —
 * before or during the barrage — is still there, also after a SIGTERM and a restart.
 * SEED=<n> replays a run exactly.
 */

const seed = Number(process.env.SEED ?? Date.now() % 2 ** 31);
const RUNS = Number(process.env.HOSTILE_RUNS ?? 400);

const METHODS = {
  unary: ['Log/Produce', 'Log/Fetch', 'Log/ListOffsets', 'Log/CommitOffset', 'Log/FetchCommitted', 'Admin/CreateTopic', 'Admin/DeleteTopic', 'Admin/ListTopics', 'Admin/DescribeTopic'],
  server_stream: ['Log/Subscribe'],
  client_stream: ['Log/ProduceStream', 'Log/ProducePipeline'],
} as const;
const REQUEST_TYPE: Record<string, string> = {
  'Log/Produce': 'ProduceRequest',
  'Log/ProduceStream': 'ProduceRequest',
  'Log/ProducePipeline': 'ProduceRequest',
  'Log/Fetch': 'FetchRequest',
  'Log/Subscribe': 'SubscribeRequest',
  'Log/ListOffsets': 'ListOffsetsRequest',
  'Log/CommitOffset': 'CommitOffsetRequest',
  'Log/FetchCommitted': 'FetchCommittedRequest',
  'Admin/CreateTopic': 'CreateTopicRequest',
  'Admin/DeleteTopic': 'TopicName',
  'Admin/ListTopics': 'Empty',
  'Admin/DescribeTopic': 'TopicName',
};
// OK, INVALID_ARGUMENT, DEADLINE_EXCEEDED (our own deadline on long polls), NOT_FOUND,
// ALREADY_EXISTS, RESOURCE_EXHAUSTED, FAILED_PRECONDITION, OUT_OF_RANGE, UNIMPLEMENTED (unknown path).
const ACCEPTABLE = new Set([0, 3, 4, 5, 6, 8, 9, 11, 12, -1, -2]);

const SENTINEL = 'sentinel';
const HOSTILE = 'hostile';

// ---------------------------------------------------------------- generators

const int64 = fc.oneof(
  fc.constantFrom('0', '-1', '1', '9223372036854775807', '-9223372036854775808', '9007199254740993', '4294967296'),
  fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n }).map(String),
  fc.integer({ min: -5, max: 300 }).map(String),
);
const uint32 = fc.oneof(fc.constantFrom(0, 1, 2, 4294967295), fc.nat(), fc.integer({ min: 0, max: 3 }));
// Never SENTINEL or HOSTILE for deletes: deleting a topic is not losing data.
const randomName = fc.oneof(fc.constantFrom('', '.', '..', 'a/b', '../etc', 'x'.repeat(300), 'ok-topic', 'ünïcode'), fc.string({ maxLength: 20 }));
const topicName = fc.oneof(fc.constantFrom(SENTINEL, HOSTILE), randomName);
const group = fc.oneof(fc.constantFrom('', 'g', 'x'.repeat(300)), fc.string({ maxLength: 10 }));

const goodBatch = fc.array(fc.string({ maxLength: 30 }), { minLength: 1, maxLength: 5 }).map((vs) => encodeBatch(vs.map((value) => ({ value }))));
const records = fc.oneof(
  goodBatch,
  fc.uint8Array({ maxLength: 300 }).map((u) => Buffer.from(u)),
  fc.tuple(goodBatch, fc.nat(), fc.integer({ min: 1, max: 255 })).map(([b, at, x]) => {
    const c = Buffer.from(b);
    const i = at % c.length;
    c[i] = c[i]! ^ x; // one flipped byte: CRC, length, magic or count
    return c;
  }),
  fc.tuple(goodBatch, fc.nat()).map(([b, n]) => b.subarray(0, n % b.length)),
  fc.tuple(goodBatch, fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 })).map(([b, len]) => {
    const c = Buffer.from(b);
    c.writeInt32BE(len, 8); // batchLength
    return c;
  }),
  fc.tuple(goodBatch, fc.uint8Array({ minLength: 1, maxLength: 40 })).map(([b, g]) => Buffer.concat([b, Buffer.from(g)])),
);

type Hostile = { method: string; body: Buffer; sent: Buffer | null; topic: string; partition: number };

function structured(method: string): fc.Arbitrary<Hostile> {
  const type = REQUEST_TYPE[method]!;
  const fields: Record<string, fc.Arbitrary<unknown>> = {
    ProduceRequest: fc.record({ topic: topicName, partition: uint32, records, acks: fc.constantFrom(0, 1, 7) }),
    FetchRequest: fc.record({ topic: topicName, partition: uint32, offset: int64, max_bytes: uint32, max_wait_ms: fc.constantFrom(0, 0, 10, 5000) }),
    SubscribeRequest: fc.record(
      {
        topic: topicName,
        partition: uint32,
        offset: int64,
        timestamp_ms: int64,
        position: fc.constantFrom(0, 1, 9),
        group,
        max_frame_bytes: uint32,
      },
      { requiredKeys: ['topic'] },
    ),
    ListOffsetsRequest: fc.record({ topic: topicName, partition: uint32, position: fc.constantFrom(0, 1, 5), timestamp_ms: int64 }, { requiredKeys: ['topic'] }),
    CommitOffsetRequest: fc.record({ group, topic: topicName, partition: uint32, offset: int64, metadata: fc.string({ maxLength: 50 }) }),
    FetchCommittedRequest: fc.record({ group, topic: topicName, partition: uint32 }),
    CreateTopicRequest: fc.record({
      name: randomName,
      partitions: fc.oneof(fc.constantFrom(0, 1, 2, 1025, 4294967295)),
      config: fc.dictionary(fc.oneof(fc.constantFrom('retention.ms', 'segment.bytes', 'flush.ms', 'max.message.bytes', 'cleanup.policy'), fc.string({ maxLength: 8 })), fc.oneof(int64, fc.string({ maxLength: 8 })), {
        maxKeys: 3,
      }),
    }),
    TopicName: fc.record({ name: method === 'Admin/DeleteTopic' ? randomName.filter((n) => n !== SENTINEL && n !== HOSTILE) : topicName }),
    Empty: fc.constant({}),
  };
  return fields[type]!.map((v) => {
    const o = v as Record<string, unknown>;
    let body: Buffer;
    try {
      body = encodeMessage(messageType(type), o);
    } catch {
      body = Buffer.from('unencodable');
    }
    const partition = typeof o.partition === 'number' ? o.partition : 0;
    return { method, body, sent: Buffer.isBuffer(o.records) ? Buffer.from(o.records) : null, topic: String(o.topic ?? o.name ?? ''), partition };
  });
}

const allMethods = [...METHODS.unary, ...METHODS.server_stream, ...METHODS.client_stream];
// Produces that should succeed, so the barrage interleaves acknowledged appends with the abuse.
const plausibleProduce: fc.Arbitrary<Hostile> = fc
  .record({ topic: fc.constantFrom(SENTINEL, HOSTILE), partition: fc.constantFrom(0, 0, 1), records: goodBatch })
  .map((o) => ({ method: 'Log/Produce', body: encodeMessage(messageType('ProduceRequest'), o), sent: Buffer.from(o.records), topic: o.topic, partition: o.partition }));

const hostile: fc.Arbitrary<Hostile> = fc.oneof(
  { weight: 6, arbitrary: fc.constantFrom(...allMethods).chain(structured) },
  { weight: 1, arbitrary: plausibleProduce },
  {
    weight: 1,
    arbitrary: fc.record({
      method: fc.constantFrom(...allMethods, 'Log/Nope', 'Other/Thing'),
      body: fc.oneof(fc.uint8Array({ maxLength: 500 }), fc.constant(new Uint8Array(0))).map((u) => Buffer.from(u)),
      sent: fc.constant(null),
      topic: fc.constant(''),
      partition: fc.constant(0),
    }),
  },
);

// ---------------------------------------------------------------- the run

const tmp = tempDir('relaylog-hostile-');
let server: ServerProcess;
/** Every record the server acknowledged, per tracked partition: offset -> value. */
const acked = new Map<string, Map<number, string>>([SENTINEL, HOSTILE].flatMap((t) => [0, 1].map((p) => [`${t}/${p}`, new Map<number, string>()] as const)));

function remember(topic: string, partition: number, base_offset: number, set: Buffer): void {
  const values = acked.get(`${topic}/${partition}`);
  if (!values) return; // a topic the barrage created (and may delete): not tracked
  let i = 0;
  for (const batch of batchesOf(set)) for (const r of decodeRecords(batch)) values.set(base_offset + i++, r.value?.toString('latin1') ?? '');
}

async function verify(address: string): Promise<void> {
  const client = new RelaylogClient(address);
  try {
    for (const [key, values] of acked) {
      if (values.size === 0) continue;
      const [topic, partition] = key.split('/') as [string, string];
      const end = Math.max(...values.keys()) + 1;
      const got = new Map<number, string>();
      const c = new Consumer(client, { topic, partition: Number(partition), from: { offset: Math.min(...values.keys()) }, end_offset: end });
      for await (const r of c) got.set(r.offset, r.value?.toString('latin1') ?? '');
      for (const [offset, v] of values) expect({ topic, offset, v: got.get(offset) }).toEqual({ topic, offset, v });
    }
  } finally {
    client.close();
  }
}

beforeAll(async () => {
  assertFreshBuild();
  server = await startServer(tmp.dir);
  const client = new RelaylogClient(server.address);
  await client.createTopic(SENTINEL, { partitions: 2 });
  await client.createTopic(HOSTILE);
  for (let b = 0; b < 5; b++) {
    const batch = encodeBatch(Array.from({ length: 20 }, (_, i) => ({ value: `sentinel-${b}-${i}` })));
    remember(SENTINEL, 0, (await client.produce(SENTINEL, 0, batch)).base_offset, batch);
  }
  client.close();
});

afterAll(async () => {
  await server?.stop('SIGKILL');
  tmp.cleanup();
});

test('hostile requests never crash the server, never get INTERNAL, and never lose acknowledged records', async () => {
  const raw = new RawGrpc(server.address);
  let accepted_produces = 0;
  try {
    await fc.assert(
      fc.asyncProperty(hostile, async (h) => {
        const path = `/relaylog.v1.${h.method}`;
        let code: number;
        let details: string;
        if ((METHODS.server_stream as readonly string[]).includes(h.method)) {
          ({ code, details } = await raw.serverStream(path, h.body, { max_messages: 3, timeout_ms: 150 }));
        } else if ((METHODS.client_stream as readonly string[]).includes(h.method)) {
          ({ code, details } = await raw.clientStream(path, [h.body, h.body]));
        } else {
          const r = await raw.unary(path, h.body, 1_000);
          ({ code, details } = r);
          if (code === 0 && h.method === 'Log/Produce' && h.sent && r.response) {
            const res = decodeMessage(messageType('ProduceResponse'), r.response) as { base_offset: number };
            remember(h.topic, h.partition, res.base_offset, h.sent);
            accepted_produces++;
          }
        }
        expect(server.child.exitCode).toBeNull();
        if (!ACCEPTABLE.has(code)) throw new Error(`${h.method} answered status ${code}: ${details}`);
        if (code !== 0 && code > 0) expect(details.length).toBeGreaterThan(0);
      }),
      { seed, numRuns: RUNS, interruptAfterTimeLimit: 40_000 },
    );
  } catch (err) {
    throw new Error(`${(err as Error).message}\nreplay with SEED=${seed}`);
  } finally {
    raw.close();
  }
  expect(accepted_produces).toBeGreaterThan(0);
  expect(server.stderr()).not.toMatch(/"level":50/); // no unexpected error was logged
  await verify(server.address);
  // A clean stop after the barrage, then everything acknowledged is still there.
  expect(await server.stop('SIGTERM')).toBe(0);
  server = await startServer(tmp.dir);
  await verify(server.address);
}, 90_000);
