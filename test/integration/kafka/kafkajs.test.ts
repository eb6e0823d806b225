import { CompressionTypes, type Consumer, type ConsumerConfig, type IHeaders, type KafkaMessage } from 'kafkajs';
import { afterEach, beforeEach, describe, expect, test } from 'vitest';
import { encodeBatch, readBatchHeader, forEachBatch, Compression, COMPRESSION_MASK } from '../../../engine/index.js';
import { readAll } from '../../support/batches.js';
import { confChangeBatch } from '../../../replication/raft/node/conf-batch.js';
import { KafkaHarness, waitUntil } from './harness.js';

/*
 * kafkajs 2.2.4, unchanged, against a KafkaListener on 127.0.0.1:0 over a LogStore in a temp dir.
 * kafkajs picks the highest version of each API we advertise: Produce v7, Fetch v11, Metadata v6,
 * ListOffsets v3, JoinGroup v5, SyncGroup/Heartbeat/LeaveGroup v3, OffsetCommit v5, OffsetFetch v4,
 * CreateTopics v3, FindCoordinator v2, ApiVersions v2. Other versions: protocol-versions.test.ts.
 */

const T0 = 1_700_000_000_000;
const CONSUME_TIMEOUT_MS = 10_000;

interface Got {
  partition: number;
  offset: number;
  key: string | null;
  value: string | null;
  timestamp: number;
  headers: Record<string, string>;
}

function headersOf(h: IHeaders | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(h ?? {})) out[k] = String(v);
  return out;
}

function gotOf(partition: number, m: KafkaMessage): Got {
  return { partition, offset: Number(m.offset), key: m.key?.toString() ?? null, value: m.value?.toString() ?? null, timestamp: Number(m.timestamp), headers: headersOf(m.headers) };
}

/** Runs `consumer` on `topic` until `n` messages arrived; `seek` is applied once it runs. */
async function consume(consumer: Consumer, topic: string, n: number, opts: { fromBeginning?: boolean; seek?: { partition: number; offset: number } } = {}): Promise<Got[]> {
  const got: Got[] = [];
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: opts.fromBeginning ?? true });
  await consumer.run({ eachMessage: async ({ partition, message }) => void got.push(gotOf(partition, message)) });
  if (opts.seek) consumer.seek({ topic, partition: opts.seek.partition, offset: String(opts.seek.offset) });
  await waitUntil(() => got.length >= n, CONSUME_TIMEOUT_MS, `${n} messages from ${topic} (got ${got.length})`);
  return got;
}

const consumerConfig = (groupId: string, extra: Partial<ConsumerConfig> = {}): ConsumerConfig => ({ groupId, maxWaitTimeInMs: 100, heartbeatInterval: 300, sessionTimeout: 10_000, rebalanceTimeout: 10_000, retry: { retries: 3, initialRetryTime: 50 }, ...extra });

/** The kafkajs error types of a createTopics call that must fail. */
async function creationErrors(p: Promise<boolean>): Promise<string[]> {
  const err = (await p.then(() => ({ errors: [{ type: 'no error' }] }), (e: unknown) => e)) as { errors?: Array<{ type: string }> };
  return (err.errors ?? []).map((e) => e.type);
}

const messages = (n: number, prefix: string, from = 0) =>
  Array.from({ length: n }, (_, i) => ({ key: `k${from + i}`, value: `${prefix}-${from + i}`, timestamp: String(T0 + from + i), headers: { h: `hv${from + i}` } }));

describe('kafkajs producer and consumer against the Kafka listener', () => {
  let h: KafkaHarness;
  beforeEach(async () => {
    h = await new KafkaHarness().start();
  });
  afterEach(async () => {
    await h.stop();
  });

  test('every record set a Kafka produce appends is reported to on_append (the gRPC server paces catch-up replay on it)', async () => {
    let appends = 0;
    const own = await new KafkaHarness({ listener: { on_append: () => void appends++ } }).start();
    try {
      await own.store.createTopic('paced', { partitions: 2 });
      const producer = own.track(own.kafka().producer());
      await producer.connect();
      await producer.send({ topic: 'paced', acks: 1, messages: [{ partition: 0, value: 'a' }, { partition: 1, value: 'b' }] });
      await producer.send({ topic: 'paced', acks: -1, messages: [{ partition: 0, value: 'c' }] });
      expect(appends).toBe(3);
    } finally {
      await own.stop();
    }
  });

  test('produces N records with acks=1, acks=-1 and acks=0; PartitionLog.read returns them as sent', async () => {
    await h.store.createTopic('orders');
    const producer = h.track(h.kafka().producer());
    await producer.connect();
    const a = await producer.send({ topic: 'orders', acks: 1, messages: messages(50, 'one') });
    const b = await producer.send({ topic: 'orders', acks: -1, messages: messages(50, 'all', 50) });
    expect(a[0]).toMatchObject({ errorCode: 0, baseOffset: '0' });
    expect(b[0]).toMatchObject({ errorCode: 0, baseOffset: '50' });
    await producer.send({ topic: 'orders', acks: 0, messages: messages(10, 'none', 100) });
    const log = h.store.partition('orders', 0);
    await waitUntil(() => log.highWatermark === 110, 5_000, 'the acks=0 records');
    const recs = await readAll(log);
    expect(recs.map((r) => r.offset)).toEqual(Array.from({ length: 110 }, (_, i) => i));
    recs.forEach((r, i) => {
      const prefix = i < 50 ? 'one' : i < 100 ? 'all' : 'none';
      expect({ key: r.key?.toString(), value: r.value?.toString(), ts: r.timestamp_ms, headers: r.headers.map((x) => [x.key, x.value?.toString()]) }).toEqual({ key: `k${i}`, value: `${prefix}-${i}`, ts: T0 + i, headers: [['h', `hv${i}`]] });
    });
  });

  test('an idempotent kafkajs producer gets a producer id (InitProducerId); a batch it resends is stored once', async () => {
    await h.store.createTopic('idem');
    const producer = h.track(h.kafka().producer({ idempotent: true, maxInFlightRequests: 1 }));
    await producer.connect();
    await producer.send({ topic: 'idem', acks: -1, messages: messages(5, 'i') });
    await producer.send({ topic: 'idem', acks: -1, messages: messages(3, 'j', 5) });
    const log = h.store.partition('idem', 0);
    const r = await log.read(0, 1 << 20);
    const batches: Buffer[] = [];
    forEachBatch(r.records, (pos, size) => batches.push(Buffer.from(r.records.subarray(pos, pos + size))));
    const headers = batches.map((b) => readBatchHeader(b));
    expect(headers.map((x) => [x.base_offset, x.base_sequence])).toEqual([[0, 0], [5, 5]]);
    expect(headers[0]!.producer_id).toBeGreaterThanOrEqual(0);
    expect(headers[1]!.producer_id).toBe(headers[0]!.producer_id);
    // The first batch again, as a retry after a lost answer would bring it: its offsets, nothing written.
    expect(await log.append(Buffer.from(batches[0]!))).toEqual({ base_offset: 0, last_offset: 4 });
    expect(log.logEndOffset).toBe(8);
  });

  test('records appended through PartitionLog.append are read by kafkajs identically', async () => {
    await h.store.createTopic('native', { partitions: 2 });
    const records = Array.from({ length: 30 }, (_, i) => ({ key: i % 3 === 0 ? null : `nk${i}`, value: `native-${i}`, timestamp_ms: T0 + 10 * i, headers: [{ key: 'src', value: Buffer.from('grpc') }] }));
    await h.store.partition('native', 1).append(encodeBatch(records.slice(0, 10), { timestamp_ms: T0 }));
    await h.store.partition('native', 1).append(encodeBatch(records.slice(10), { timestamp_ms: T0 }));
    const consumer = h.track(h.kafka().consumer(consumerConfig('native-readers')));
    const got = await consume(consumer, 'native', 30);
    expect(got.sort((x, y) => x.offset - y.offset)).toEqual(records.map((r, i) => ({ partition: 1, offset: i, key: r.key, value: r.value, timestamp: r.timestamp_ms, headers: { src: 'grpc' } })));
  });

  test('a Raft membership change (a control batch, docs/format.md) in the log is skipped by a kafkajs consumer', async () => {
    await h.store.createTopic('members');
    const log = h.store.partition('members', 0);
    await log.append(encodeBatch([{ key: 'k0', value: 'before-0', timestamp_ms: T0 }, { key: 'k1', value: 'before-1', timestamp_ms: T0 + 1 }]));
    // The control batch a cluster node writes for `add_learner 4` (offset 2), copied in as a follower would.
    await log.appendReplicated(confChangeBatch(2, 0, Buffer.from('{"type":"add_learner","node_id":4,"voters":[1,2,3],"learners":[4]}')));
    await log.append(encodeBatch([{ key: 'k3', value: 'after-3', timestamp_ms: T0 + 3 }]));
    const consumer = h.track(h.kafka().consumer(consumerConfig('member-readers')));
    const got = await consume(consumer, 'members', 3);
    // Delivered in offset order: a control record handed over as a message would be the third.
    expect(got.map((g) => `${g.offset}:${g.value}`)).toEqual(['0:before-0', '1:before-1', '3:after-3']);
  });

  test('consumes from an explicit offset (consumer.seek)', async () => {
    await h.store.createTopic('seekable');
    const producer = h.track(h.kafka().producer());
    await producer.connect();
    for (let i = 0; i < 4; i++) await producer.send({ topic: 'seekable', acks: 1, messages: messages(25, 's', 25 * i) });
    const consumer = h.track(h.kafka().consumer(consumerConfig('seekers')));
    // Offset 37 is in the middle of the second batch: the whole batch is served, kafkajs drops what precedes 37.
    const got = await consume(consumer, 'seekable', 63, { fromBeginning: false, seek: { partition: 0, offset: 37 } });
    expect(got.map((g) => g.offset)).toEqual(Array.from({ length: 63 }, (_, i) => 37 + i));
    expect(got[0]).toMatchObject({ value: 's-37', key: 'k37' });
  });

  test('consumes from a timestamp (admin.fetchTopicOffsetsByTimestamp)', async () => {
    await h.store.createTopic('timed', { partitions: 2 });
    const producer = h.track(h.kafka().producer());
    await producer.connect();
    for (let i = 0; i < 3; i++) {
      const ts = T0 + 60_000 * i;
      await producer.send({ topic: 'timed', acks: 1, messages: Array.from({ length: 10 }, (_, j) => ({ partition: 0, value: `t${i}-${j}`, timestamp: String(ts + j) })) });
    }
    const admin = h.track(h.kafka().admin());
    await admin.connect();
    const at = await admin.fetchTopicOffsetsByTimestamp('timed', T0 + 60_000 + 5);
    // Partition 0: the first record at or after the time; partition 1 holds nothing that new (kafkajs substitutes the high watermark).
    expect(at.sort((x, y) => x.partition - y.partition)).toEqual([{ partition: 0, offset: '15' }, { partition: 1, offset: '0' }]);
    expect(await h.store.partition('timed', 0).offsetForTimestamp(T0 + 60_000 + 5)).toBe(15);
    const consumer = h.track(h.kafka().consumer(consumerConfig('time-travellers')));
    const got = await consume(consumer, 'timed', 15, { fromBeginning: false, seek: { partition: 0, offset: 15 } });
    expect(got[0]).toMatchObject({ offset: 15, value: 't1-5', timestamp: T0 + 60_005 });
    expect(got.at(-1)).toMatchObject({ offset: 29, value: 't2-9' });
  });

  test('a consumer group commits, and after a listener and store restart resumes from the committed offset', async () => {
    await h.store.createTopic('jobs');
    const producer = h.track(h.kafka().producer());
    await producer.connect();
    await producer.send({ topic: 'jobs', acks: -1, messages: messages(20, 'before') });
    const first = h.kafka().consumer(consumerConfig('workers'));
    const got = await consume(first, 'jobs', 20);
    expect(got.map((g) => g.offset)).toEqual(Array.from({ length: 20 }, (_, i) => i));
    await waitUntil(() => h.store.fetchGroupOffset('workers', 'jobs', 0)?.offset === 20, 5_000, 'the commit of offset 20');
    await first.disconnect();
    await producer.disconnect();
    // The same offsets the gRPC API reads: stored durably in the LogStore, kept across a restart.
    await h.restart();
    expect(h.store.fetchGroupOffset('workers', 'jobs', 0)).toMatchObject({ offset: 20 });
    const admin = h.track(h.kafka().admin());
    await admin.connect();
    expect(await admin.fetchOffsets({ groupId: 'workers', topics: ['jobs'] })).toEqual([{ topic: 'jobs', partitions: [{ partition: 0, offset: '20', metadata: null }] }]);
    const producer2 = h.track(h.kafka().producer());
    await producer2.connect();
    await producer2.send({ topic: 'jobs', acks: 1, messages: messages(5, 'after', 20) });
    const second = h.track(h.kafka().consumer(consumerConfig('workers')));
    const resumed = await consume(second, 'jobs', 5);
    await new Promise((r) => setTimeout(r, 300)); // nothing older than the commit arrives late
    expect(resumed.map((g) => [g.offset, g.value])).toEqual(Array.from({ length: 5 }, (_, i) => [20 + i, `after-${20 + i}`]));
    await waitUntil(() => h.store.fetchGroupOffset('workers', 'jobs', 0)?.offset === 25, 5_000, 'the commit of offset 25');
  });

  test('a gzip batch is stored as it arrived and read back by the engine and by kafkajs', async () => {
    await h.store.createTopic('zipped');
    const producer = h.track(h.kafka().producer());
    await producer.connect();
    const big = 'x'.repeat(2000);
    await producer.send({ topic: 'zipped', acks: 1, compression: CompressionTypes.GZIP, messages: Array.from({ length: 40 }, (_, i) => ({ key: `z${i}`, value: `${i}:${big}`, timestamp: String(T0 + i) })) });
    const log = h.store.partition('zipped', 0);
    const r = await log.read(0, 1 << 20);
    const attrs: number[] = [];
    forEachBatch(r.records, (pos) => attrs.push(readBatchHeader(r.records, pos).attributes & COMPRESSION_MASK));
    expect(attrs).toEqual([Compression.gzip]);
    expect(r.records.length).toBeLessThan(40 * 2000); // stored compressed
    r.release();
    const recs = await readAll(log);
    expect(recs.map((x) => x.value?.toString())).toEqual(Array.from({ length: 40 }, (_, i) => `${i}:${big}`));
    const consumer = h.track(h.kafka().consumer(consumerConfig('unzippers')));
    const got = await consume(consumer, 'zipped', 40);
    expect(got.map((g) => [g.offset, g.key, g.value])).toEqual(Array.from({ length: 40 }, (_, i) => [i, `z${i}`, `${i}:${big}`]));
  });

  test('admin.createTopics creates relaylog topics with Kafka config keys', async () => {
    const admin = h.track(h.kafka().admin());
    await admin.connect();
    expect(await admin.createTopics({ topics: [{ topic: 'made-by-kafka', numPartitions: 3, configEntries: [{ name: 'retention.ms', value: '3600000' }, { name: 'cleanup.policy', value: 'compact' }] }] })).toBe(true);
    expect(h.store.topic('made-by-kafka').config).toMatchObject({ partitions: 3, retention_ms: 3_600_000, cleanup_policy: 'compact' });
    expect(await admin.createTopics({ topics: [{ topic: 'made-by-kafka' }] })).toBe(false); // TOPIC_ALREADY_EXISTS
    // kafkajs waits for leaders of what it asked to create unless told not to, validate-only or not.
    expect(await admin.createTopics({ validateOnly: true, waitForLeaders: false, topics: [{ topic: 'only-checked', numPartitions: 2 }] })).toBe(true);
    expect(h.store.listTopics().map((t) => t.name)).not.toContain('only-checked');
    // kafkajs reports the error code's name (it does not read error_message; protocol-versions.test.ts does).
    expect(await creationErrors(admin.createTopics({ topics: [{ topic: 'bad-config', configEntries: [{ name: 'retention.ms', value: 'soon' }] }] }))).toEqual(['INVALID_CONFIG']);
    expect(await creationErrors(admin.createTopics({ topics: [{ topic: 'replicated', replicationFactor: 3 }] }))).toEqual(['INVALID_REPLICATION_FACTOR']);
    const default_partitions = await admin.createTopics({ topics: [{ topic: 'defaults' }] });
    expect(default_partitions).toBe(true);
    expect(h.store.topic('defaults').config.partitions).toBe(1);
    expect((await admin.listTopics()).sort()).toEqual(['defaults', 'made-by-kafka']);
  });

  test('two consumers in one group share the partitions; when one leaves the other takes them over', async () => {
    await h.store.createTopic('shared', { partitions: 4 });
    const producer = h.track(h.kafka().producer());
    await producer.connect();
    const c1: Got[] = [];
    const c2: Got[] = [];
    const one = h.track(h.kafka({ clientId: 'one' }).consumer(consumerConfig('sharers')));
    const two = h.track(h.kafka({ clientId: 'two' }).consumer(consumerConfig('sharers')));
    for (const [c, into] of [[one, c1], [two, c2]] as const) {
      await c.connect();
      await c.subscribe({ topic: 'shared', fromBeginning: true });
      await c.run({ eachMessage: async ({ partition, message }) => void into.push(gotOf(partition, message)) });
    }
    await waitUntil(() => {
      const g = h.listener.describeGroup('sharers');
      return g !== null && g.phase === 'stable' && g.members.length === 2;
    }, CONSUME_TIMEOUT_MS, 'a stable group of two');
    for (let p = 0; p < 4; p++) await producer.send({ topic: 'shared', acks: 1, messages: Array.from({ length: 5 }, (_, i) => ({ partition: p, value: `p${p}-${i}` })) });
    await waitUntil(() => c1.length + c2.length >= 20, CONSUME_TIMEOUT_MS, '20 messages across both consumers');
    const parts = (g: Got[]) => new Set(g.map((x) => x.partition));
    expect(c1.length).toBeGreaterThan(0);
    expect(c2.length).toBeGreaterThan(0);
    expect([...parts(c1)].filter((p) => parts(c2).has(p))).toEqual([]);
    await two.disconnect();
    for (let p = 0; p < 4; p++) await producer.send({ topic: 'shared', acks: 1, messages: [{ partition: p, value: `late-${p}` }] });
    await waitUntil(() => c1.filter((g) => g.value?.startsWith('late-')).length === 4, CONSUME_TIMEOUT_MS, 'the remaining consumer to take every partition');
    expect(new Set(c1.map((g) => `${g.partition}:${g.offset}`)).size + new Set(c2.map((g) => `${g.partition}:${g.offset}`)).size).toBeGreaterThanOrEqual(24);
  });
});

describe('a relay serves consumers and refuses producers', () => {
  let h: KafkaHarness;
  beforeEach(async () => {
    h = await new KafkaHarness({ listener: { relay: { upstreams: ['origin.example:7000'] } } }).start();
  });
  afterEach(async () => {
    await h.stop();
  });

  test('Produce and CreateTopics answer NOT_LEADER_OR_FOLLOWER; Fetch serves the copy', async () => {
    await h.store.createTopic('copied');
    await h.store.partition('copied', 0).append(encodeBatch([{ value: 'from-upstream', timestamp_ms: T0 }], { timestamp_ms: T0 }));
    const producer = h.track(h.kafka({ retry: { retries: 0 } }).producer({ retry: { retries: 0 } }));
    await producer.connect();
    await expect(producer.send({ topic: 'copied', acks: 1, messages: [{ value: 'nope' }] })).rejects.toThrow(/leader/i);
    expect(h.store.partition('copied', 0).highWatermark).toBe(1);
    const admin = h.track(h.kafka({ retry: { retries: 0 } }).admin());
    await admin.connect();
    expect(await creationErrors(admin.createTopics({ topics: [{ topic: 'new-on-relay' }] }))).toEqual(['NOT_LEADER_FOR_PARTITION']);
    expect(h.store.listTopics().map((t) => t.name)).toEqual(['copied']);
    const consumer = h.track(h.kafka().consumer(consumerConfig('relay-readers')));
    const got = await consume(consumer, 'copied', 1);
    expect(got[0]).toMatchObject({ offset: 0, value: 'from-upstream' });
  });
});
