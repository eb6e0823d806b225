import { afterEach, beforeEach, describe, expect, test } from 'vitest';
import { encodeBatch } from '../../../engine/index.js';
import { KafkaCode } from '../../../server/kafka/errors.js';
import { apiVersions } from '../../../server/kafka/protocol/api-versions.js';
import { createTopics } from '../../../server/kafka/protocol/create-topics.js';
import { fetch, type FetchRequest } from '../../../server/kafka/protocol/fetch.js';
import { findCoordinator } from '../../../server/kafka/protocol/find-coordinator.js';
import { heartbeat } from '../../../server/kafka/protocol/heartbeat.js';
import { initProducerId } from '../../../server/kafka/protocol/init-producer-id.js';
import { joinGroup } from '../../../server/kafka/protocol/join-group.js';
import { leaveGroup } from '../../../server/kafka/protocol/leave-group.js';
import { listOffsets } from '../../../server/kafka/protocol/list-offsets.js';
import { metadata } from '../../../server/kafka/protocol/metadata.js';
import { offsetCommit } from '../../../server/kafka/protocol/offset-commit.js';
import { offsetFetch } from '../../../server/kafka/protocol/offset-fetch.js';
import { produce, type ProduceRequest } from '../../../server/kafka/protocol/produce.js';
import { advertisedVersions } from '../../../server/kafka/protocol/registry.js';
import { syncGroup } from '../../../server/kafka/protocol/sync-group.js';
import { KafkaHarness } from './harness.js';
import { RawKafkaClient } from './raw-client.js';

/*
 * Every version of every advertised API, through a raw client built on the listener's own codecs
 * in the client direction (kafkajs only ever uses the highest version it knows; see kafkajs.test.ts).
 */

const T0 = 1_700_000_000_000;
const range = (lo: number, hi: number) => Array.from({ length: hi - lo + 1 }, (_, i) => lo + i);

const produceReq = (topic: string, partition: number, records: Buffer | null, acks = 1): ProduceRequest => ({ transactional_id: null, acks, timeout_ms: 5000, topic_data: [{ name: topic, partition_data: [{ index: partition, records }] }] });

const fetchReq = (topic: string, partition: number, offset: number, o: Partial<FetchRequest> = {}): FetchRequest => ({
  replica_id: -1,
  max_wait_ms: 0,
  min_bytes: 1,
  max_bytes: 1 << 20,
  isolation_level: 0,
  session_id: 0,
  session_epoch: -1,
  topics: [{ topic, partitions: [{ partition, current_leader_epoch: -1, fetch_offset: offset, log_start_offset: -1, partition_max_bytes: 1 << 20 }] }],
  forgotten_topics_data: [],
  rack_id: '',
  ...o,
});

describe('every advertised API version through a raw client', () => {
  let h: KafkaHarness;
  let c: RawKafkaClient;
  beforeEach(async () => {
    h = await new KafkaHarness().start();
    await h.store.createTopic('v', { partitions: 2 });
    c = await RawKafkaClient.connect(h.broker);
  });
  afterEach(async () => {
    await c.close();
    await h.stop();
  });

  test('ApiVersions v0-v2 list the served table; a v3+ request gets error 35 in the v0 layout', async () => {
    for (const v of range(0, 2)) {
      const r = await c.send(apiVersions, v, {});
      expect(r.error_code).toBe(0);
      expect(r.api_keys).toEqual(advertisedVersions());
    }
    expect(advertisedVersions()).toEqual([
      { api_key: 0, min_version: 0, max_version: 7 },
      { api_key: 1, min_version: 4, max_version: 11 },
      { api_key: 2, min_version: 1, max_version: 3 },
      { api_key: 3, min_version: 0, max_version: 7 },
      { api_key: 8, min_version: 2, max_version: 7 },
      { api_key: 9, min_version: 1, max_version: 5 },
      { api_key: 10, min_version: 0, max_version: 2 },
      { api_key: 11, min_version: 0, max_version: 5 },
      { api_key: 12, min_version: 0, max_version: 3 },
      { api_key: 13, min_version: 0, max_version: 3 },
      { api_key: 14, min_version: 0, max_version: 3 },
      { api_key: 18, min_version: 0, max_version: 2 },
      { api_key: 19, min_version: 0, max_version: 4 },
      { api_key: 22, min_version: 0, max_version: 1 },
    ]);
    // A v3 body (flexible: compact strings and tagged fields) is not parsed at all.
    const v3_body = Buffer.from([0x05, ...Buffer.from('abcd'), 0x02, 0x31, 0x00]);
    const r = (await c.sendRaw(18, 3, v3_body, (d) => apiVersions.decodeResponse(d, 0))) as Awaited<ReturnType<typeof c.send<object, { error_code: number; api_keys: unknown[] }>>>;
    expect(r.error_code).toBe(KafkaCode.UNSUPPORTED_VERSION);
    expect(r.api_keys).toEqual(advertisedVersions());
  });

  test('Metadata v0-v7 describe topics and advertise the listen address', async () => {
    await h.store.createTopic('w');
    const port = Number(h.broker.split(':')[1]);
    for (const v of range(0, 7)) {
      const all = await c.send(metadata, v, { topics: null, allow_auto_topic_creation: false });
      expect(all.brokers).toEqual([{ node_id: 0, host: '127.0.0.1', port, rack: null }]);
      expect(all.topics.map((t) => [t.name, t.error_code, t.partitions.length])).toEqual([['v', 0, 2], ['w', 0, 1]]);
      expect(all.topics[0]!.partitions[1]).toMatchObject({ partition_index: 1, leader_id: 0, replica_nodes: [0], isr_nodes: [0] });
      if (v >= 1) expect(all.controller_id).toBe(0);
      if (v >= 2) expect(all.cluster_id).toBe('relaylog');
      const some = await c.send(metadata, v, { topics: ['w', 'missing'], allow_auto_topic_creation: true });
      expect(some.topics.map((t) => [t.name, t.error_code])).toEqual([['w', 0], ['missing', KafkaCode.UNKNOWN_TOPIC_OR_PARTITION]]);
      if (v >= 1) expect((await c.send(metadata, v, { topics: [], allow_auto_topic_creation: false })).topics).toEqual([]);
    }
    expect(h.store.listTopics().map((t) => t.name)).toEqual(['v', 'w']); // auto-creation is off by default
  });

  test('Produce v3-v7 append; v0-v2 answer 35; bad acks, corrupt batches and unknown partitions are refused per partition', async () => {
    for (const v of range(3, 7)) {
      const r = await c.send(produce, v, produceReq('v', 1, encodeBatch([{ value: `p${v}` }, { value: `q${v}` }], { timestamp_ms: T0 })));
      expect(r.responses[0]!.partition_responses[0]).toMatchObject({ index: 1, error_code: 0, base_offset: 2 * (v - 3) });
      if (v >= 5) expect(r.responses[0]!.partition_responses[0]!.log_start_offset).toBe(0);
    }
    expect(h.store.partition('v', 1).highWatermark).toBe(10);
    for (const v of range(0, 2)) {
      const r = await c.send(produce, v, produceReq('v', 0, Buffer.from('a magic 0/1 message set')));
      expect(r.responses[0]!.partition_responses[0]!.error_code).toBe(KafkaCode.UNSUPPORTED_VERSION);
    }
    const batch = () => encodeBatch([{ value: 'x' }], { timestamp_ms: T0 });
    expect((await c.send(produce, 7, produceReq('v', 0, batch(), 2))).responses[0]!.partition_responses[0]!.error_code).toBe(KafkaCode.INVALID_REQUIRED_ACKS);
    const corrupt = batch();
    corrupt.writeUInt8(corrupt.readUInt8(corrupt.length - 1) ^ 0xff, corrupt.length - 1);
    expect((await c.send(produce, 7, produceReq('v', 0, corrupt))).responses[0]!.partition_responses[0]!.error_code).toBe(KafkaCode.CORRUPT_MESSAGE);
    expect((await c.send(produce, 7, produceReq('v', 9, batch()))).responses[0]!.partition_responses[0]!.error_code).toBe(KafkaCode.UNKNOWN_TOPIC_OR_PARTITION);
    expect((await c.send(produce, 7, produceReq('nope', 0, batch()))).responses[0]!.partition_responses[0]!.error_code).toBe(KafkaCode.UNKNOWN_TOPIC_OR_PARTITION);
    expect(h.store.partition('v', 0).highWatermark).toBe(0);
    // acks=0: no response; the next request's answer proves it was read and appended first.
    c.sendNoResponse(produce, 7, produceReq('v', 0, batch(), 0));
    const after = await c.send(listOffsets, 3, { replica_id: -1, isolation_level: 0, topics: [{ name: 'v', partitions: [{ partition_index: 0, timestamp: -1 }] }] });
    expect(after.topics[0]!.partitions[0]!.offset).toBe(1);
  });

  test('Fetch v4-v11 return the stored batches byte for byte, with watermarks', async () => {
    const log = h.store.partition('v', 0);
    await log.append(encodeBatch([{ value: 'a' }, { value: 'b' }], { timestamp_ms: T0 }));
    await log.append(encodeBatch([{ value: 'c' }], { timestamp_ms: T0 + 1 }));
    const stored = await log.read(0, 1 << 20);
    for (const v of range(4, 11)) {
      const r = await c.send(fetch, v, fetchReq('v', 0, 0));
      expect(r.error_code).toBe(0);
      const p = r.responses[0]!.partitions[0]!;
      expect(p).toMatchObject({ partition_index: 0, error_code: 0, high_watermark: 3, last_stable_offset: 3, aborted_transactions: null });
      if (v >= 5) expect(p.log_start_offset).toBe(0);
      if (v >= 11) expect(p.preferred_read_replica).toBe(-1);
      expect(p.records!.equals(stored.records)).toBe(true);
      // From the middle of the first batch: the whole batch is served (the client skips what it did not ask for).
      expect((await c.send(fetch, v, fetchReq('v', 0, 1))).responses[0]!.partitions[0]!.records!.equals(stored.records)).toBe(true);
      const second = await log.read(2, 1 << 20);
      expect((await c.send(fetch, v, fetchReq('v', 0, 2))).responses[0]!.partitions[0]!.records!.equals(second.records)).toBe(true);
      second.release();
      const out_of_range = await c.send(fetch, v, fetchReq('v', 0, 99));
      expect(out_of_range.responses[0]!.partitions[0]).toMatchObject({ error_code: KafkaCode.OFFSET_OUT_OF_RANGE, high_watermark: 3 });
      const unknown = await c.send(fetch, v, fetchReq('nope', 0, 0));
      expect(unknown.responses[0]!.partitions[0]!.error_code).toBe(KafkaCode.UNKNOWN_TOPIC_OR_PARTITION);
      if (v >= 7) expect((await c.send(fetch, v, fetchReq('v', 0, 0, { session_id: 12345, session_epoch: 1 }))).error_code).toBe(KafkaCode.FETCH_SESSION_ID_NOT_FOUND);
    }
    expect((await c.send(fetch, 11, fetchReq('v', 0, 0, { isolation_level: 1 }))).responses[0]!.partitions[0]!.aborted_transactions).toEqual([]);
    stored.release();
  });

  test('Fetch long-polls until data arrives or max_wait_ms passes', async () => {
    const t0 = Date.now();
    const empty = await c.send(fetch, 11, fetchReq('v', 0, 0, { max_wait_ms: 300 }));
    expect(Date.now() - t0).toBeGreaterThanOrEqual(250);
    expect(empty.responses[0]!.partitions[0]!.records!.length).toBe(0);
    const t1 = Date.now();
    const waiting = c.send(fetch, 11, fetchReq('v', 0, 0, { max_wait_ms: 10_000 }));
    setTimeout(() => void h.store.partition('v', 0).append(encodeBatch([{ value: 'wake' }], { timestamp_ms: T0 })), 100);
    const woke = await waiting;
    expect(Date.now() - t1).toBeLessThan(5_000);
    expect(woke.responses[0]!.partitions[0]).toMatchObject({ high_watermark: 1 });
    expect(woke.responses[0]!.partitions[0]!.records!.length).toBeGreaterThan(0);
    // max_bytes is honoured across partitions, but the first batch is always served whole (KIP-74).
    await h.store.partition('v', 1).append(encodeBatch([{ value: 'y'.repeat(500) }], { timestamp_ms: T0 }));
    const tiny = await c.send(fetch, 11, { ...fetchReq('v', 0, 0), max_bytes: 10, topics: [{ topic: 'v', partitions: [0, 1].map((partition) => ({ partition, current_leader_epoch: -1, fetch_offset: 0, log_start_offset: -1, partition_max_bytes: 10 })) }] });
    expect(tiny.responses[0]!.partitions.map((p) => [p.error_code, p.high_watermark, p.records!.length > 0])).toEqual([[0, 1, true], [0, 1, false]]);
  });

  test('ListOffsets v1-v3: latest, earliest, and the first offset at or after a timestamp', async () => {
    const log = h.store.partition('v', 0);
    await log.append(encodeBatch([0, 1, 2].map((i) => ({ value: `a${i}`, timestamp_ms: T0 + i * 1000 })), { timestamp_ms: T0 }));
    await log.append(encodeBatch([3, 4].map((i) => ({ value: `a${i}`, timestamp_ms: T0 + i * 1000 })), { timestamp_ms: T0 + 3000 }));
    for (const v of range(1, 3)) {
      const r = await c.send(listOffsets, v, { replica_id: -1, isolation_level: 0, topics: [{ name: 'v', partitions: [-1, -2, T0 + 1500, T0 + 3000, T0 + 99_000].map((timestamp) => ({ partition_index: 0, timestamp })) }, { name: 'nope', partitions: [{ partition_index: 0, timestamp: -1 }] }] });
      expect(r.topics[0]!.partitions.map((p) => [p.error_code, p.offset, p.timestamp])).toEqual([[0, 5, -1], [0, 0, -1], [0, 2, T0 + 2000], [0, 3, T0 + 3000], [0, -1, -1]]);
      expect(r.topics[1]!.partitions[0]!.error_code).toBe(KafkaCode.UNKNOWN_TOPIC_OR_PARTITION);
    }
  });

  test('FindCoordinator v0-v2 name this node for groups; transaction coordinators are not available', async () => {
    const port = Number(h.broker.split(':')[1]);
    for (const v of range(0, 2)) {
      expect(await c.send(findCoordinator, v, { key: 'g', key_type: 0 })).toMatchObject({ error_code: 0, node_id: 0, host: '127.0.0.1', port });
      if (v >= 1) expect((await c.send(findCoordinator, v, { key: 'tx', key_type: 1 })).error_code).toBe(KafkaCode.COORDINATOR_NOT_AVAILABLE);
    }
  });

  test('a group at every version: JoinGroup 0-5, SyncGroup/Heartbeat/LeaveGroup 0-3, OffsetCommit 2-7, OffsetFetch 1-5', async () => {
    for (const k of range(0, 5)) {
      const group_id = `g${k}`;
      const [jv, sv, cv, fv] = [k, k % 4, 2 + k, 1 + (k % 5)];
      const join = await c.send(joinGroup, jv, { group_id, session_timeout_ms: 10_000, rebalance_timeout_ms: 10_000, member_id: '', group_instance_id: jv >= 5 ? 'static-1' : null, protocol_type: 'consumer', protocols: [{ name: 'range', metadata: Buffer.from('meta') }] });
      expect(join).toMatchObject({ error_code: 0, generation_id: 1, protocol_name: 'range' });
      const member_id = join.member_id;
      expect(member_id).toMatch(/^raw-/);
      expect(join.leader).toBe(member_id);
      expect(join.members).toEqual([{ member_id, group_instance_id: jv >= 5 ? 'static-1' : null, metadata: Buffer.from('meta') }]);
      const sync = await c.send(syncGroup, sv, { group_id, generation_id: 1, member_id, group_instance_id: null, assignments: [{ member_id, assignment: Buffer.from(`assigned-${k}`) }] });
      expect(sync).toMatchObject({ error_code: 0, assignment: Buffer.from(`assigned-${k}`) });
      expect((await c.send(heartbeat, sv, { group_id, generation_id: 1, member_id, group_instance_id: null })).error_code).toBe(0);
      expect((await c.send(heartbeat, sv, { group_id, generation_id: 7, member_id, group_instance_id: null })).error_code).toBe(KafkaCode.ILLEGAL_GENERATION);
      expect((await c.send(heartbeat, sv, { group_id, generation_id: 1, member_id: 'stranger', group_instance_id: null })).error_code).toBe(KafkaCode.UNKNOWN_MEMBER_ID);
      const commit = await c.send(offsetCommit, cv, { group_id, generation_id: 1, member_id, group_instance_id: null, retention_time_ms: -1, topics: [{ name: 'v', partitions: [{ partition_index: 1, committed_offset: 40 + k, committed_leader_epoch: -1, committed_metadata: `m${k}` }, { partition_index: 5, committed_offset: 1, committed_leader_epoch: -1, committed_metadata: null }] }] });
      expect(commit.topics[0]!.partitions).toEqual([{ partition_index: 1, error_code: 0 }, { partition_index: 5, error_code: KafkaCode.UNKNOWN_TOPIC_OR_PARTITION }]);
      expect(h.store.fetchGroupOffset(group_id, 'v', 1)).toEqual({ offset: 40 + k, metadata: `m${k}` });
      const stale = await c.send(offsetCommit, cv, { group_id, generation_id: 0, member_id, group_instance_id: null, retention_time_ms: -1, topics: [{ name: 'v', partitions: [{ partition_index: 1, committed_offset: 1, committed_leader_epoch: -1, committed_metadata: null }] }] });
      expect(stale.topics[0]!.partitions[0]!.error_code).toBe(KafkaCode.ILLEGAL_GENERATION);
      const fetched = await c.send(offsetFetch, fv, { group_id, topics: [{ name: 'v', partition_indexes: [0, 1] }] });
      expect(fetched.topics[0]!.partitions.map((p) => [p.partition_index, p.committed_offset, p.metadata, p.error_code])).toEqual([[0, -1, '', 0], [1, 40 + k, `m${k}`, 0]]);
      if (fv >= 2) expect((await c.send(offsetFetch, fv, { group_id, topics: null })).topics).toEqual([{ name: 'v', partitions: [expect.objectContaining({ partition_index: 1, committed_offset: 40 + k })] }]);
      const leave = await c.send(leaveGroup, sv, { group_id, members: [{ member_id, group_instance_id: null }] });
      expect(leave.error_code).toBe(0);
      if (sv >= 3) expect(leave.members).toEqual([{ member_id, group_instance_id: null, error_code: 0 }]);
      expect((await c.send(heartbeat, sv, { group_id, generation_id: 1, member_id, group_instance_id: null })).error_code).toBe(KafkaCode.UNKNOWN_MEMBER_ID);
      // With no members left, a commit from outside the group (generation -1) is accepted, as Kafka does.
      const outside = await c.send(offsetCommit, cv, { group_id, generation_id: -1, member_id: '', group_instance_id: null, retention_time_ms: -1, topics: [{ name: 'v', partitions: [{ partition_index: 0, committed_offset: 3, committed_leader_epoch: -1, committed_metadata: null }] }] });
      expect(outside.topics[0]!.partitions[0]!.error_code).toBe(0);
    }
  });

  test('CreateTopics v0-v4 create topics, and refuse duplicates, bad configs and replication', async () => {
    for (const v of range(0, 4)) {
      const name = `ct${v}`;
      const make = (o: Partial<Parameters<typeof createTopics.encodeRequest>[2]['topics'][number]> = {}) => c.send(createTopics, v, { timeout_ms: 1000, validate_only: false, topics: [{ name, num_partitions: 2, replication_factor: 1, assignments: [], configs: [{ name: 'retention.ms', value: '1000' }], ...o }] });
      expect((await make()).topics).toEqual([{ name, error_code: 0, error_message: null }]);
      expect(h.store.topic(name).config).toMatchObject({ partitions: 2, retention_ms: 1000 });
      const again = (await make()).topics[0]!;
      expect(again.error_code).toBe(KafkaCode.TOPIC_ALREADY_EXISTS);
      if (v >= 1) expect(again.error_message).toMatch(/already exists/);
      const bad = (await make({ name: `${name}-bad`, configs: [{ name: 'segment.bytes', value: 'big' }] })).topics[0]!;
      expect(bad.error_code).toBe(KafkaCode.INVALID_CONFIG);
      if (v >= 1) expect(bad.error_message).toMatch(/segment\.bytes/);
      expect((await make({ name: `${name}-r3`, replication_factor: 3 })).topics[0]!.error_code).toBe(KafkaCode.INVALID_REPLICATION_FACTOR);
      expect((await make({ name: `${name}-bad/name` })).topics[0]!.error_code).toBe(KafkaCode.INVALID_TOPIC_EXCEPTION);
      expect((await make({ name: `${name}-assigned`, num_partitions: -1, replication_factor: -1, assignments: [0, 1, 2].map((p) => ({ partition_index: p, broker_ids: [0] })) })).topics[0]!.error_code).toBe(0);
      expect(h.store.topic(`${name}-assigned`).config.partitions).toBe(3);
    }
  });

  test('InitProducerId v0-v1 hand out distinct ids; Produce then deduplicates and checks sequences; transactional ids are refused', async () => {
    const ids: number[] = [];
    for (const v of range(0, 1)) {
      const r = await c.send(initProducerId, v, { transactional_id: null, transaction_timeout_ms: 60_000 });
      expect(r).toMatchObject({ error_code: 0, producer_epoch: 0 });
      ids.push(r.producer_id);
    }
    expect(new Set(ids).size).toBe(2);
    expect((await c.send(initProducerId, 1, { transactional_id: 'tx-1', transaction_timeout_ms: 60_000 })).error_code).toBe(KafkaCode.TRANSACTIONAL_ID_AUTHORIZATION_FAILED);
    const batch = (seq: number) => encodeBatch([{ value: `idem-${seq}` }], { timestamp_ms: T0, producer_id: ids[0]!, producer_epoch: 0, base_sequence: seq });
    const part = async (seq: number) => (await c.send(produce, 7, produceReq('v', 0, batch(seq), -1))).responses[0]!.partition_responses[0]!;
    const first = await part(0);
    expect(first.error_code).toBe(0);
    expect(await part(0)).toMatchObject({ error_code: 0, base_offset: first.base_offset }); // a resend: the original offset
    expect((await part(5)).error_code).toBe(KafkaCode.OUT_OF_ORDER_SEQUENCE_NUMBER);
    expect(h.store.partition('v', 0).logEndOffset).toBe(first.base_offset + 1);
  });

  test('pipelined requests are answered in the order they were sent', async () => {
    const answers: Array<Promise<unknown>> = [];
    // A long poll first: every later (fast) answer must wait for it.
    answers.push(c.send(fetch, 11, fetchReq('v', 0, 0, { max_wait_ms: 200 })));
    const bases: Array<Promise<number>> = [];
    for (let i = 0; i < 40; i++) {
      if (i % 4 === 0) answers.push(c.send(metadata, i % 8, { topics: null, allow_auto_topic_creation: false }));
      if (i % 4 === 1) answers.push(c.send(apiVersions, 2, {}));
      if (i % 4 === 2) {
        const p = c.send(produce, 3 + (i % 5), produceReq('v', 1, encodeBatch([{ value: `pipelined-${i}` }], { timestamp_ms: T0 })));
        bases.push(p.then((r) => r.responses[0]!.partition_responses[0]!.base_offset));
        answers.push(p);
      }
      if (i % 4 === 3) c.sendNoResponse(produce, 7, produceReq('v', 0, encodeBatch([{ value: `fire-and-forget-${i}` }], { timestamp_ms: T0 }), 0));
    }
    answers.push(c.send(listOffsets, 3, { replica_id: -1, isolation_level: 0, topics: [{ name: 'v', partitions: [{ partition_index: 0, timestamp: -1 }] }] }));
    const all = await Promise.all(answers);
    expect(c.arrival).toEqual([...c.arrival].sort((a, b) => a - b));
    expect(await Promise.all(bases)).toEqual(range(0, 9));
    // The last request was read after all ten acks=0 produces, so it sees them.
    expect((all.at(-1) as { topics: Array<{ partitions: Array<{ offset: number }> }> }).topics[0]!.partitions[0]!.offset).toBe(10);
  });
});

describe('the advertised address', () => {
  let h: KafkaHarness;
  afterEach(async () => {
    await h.stop();
  });

  test('Metadata and FindCoordinator advertise the configured address (for NAT), not the bound one', async () => {
    h = await new KafkaHarness({ listener: { advertised: 'kafka.example.com:19092', node_id: 7, cluster_id: 'prod-eu' } }).start();
    const c = await RawKafkaClient.connect(h.broker);
    const m = await c.send(metadata, 7, { topics: null, allow_auto_topic_creation: true });
    expect(m).toMatchObject({ brokers: [{ node_id: 7, host: 'kafka.example.com', port: 19092, rack: null }], cluster_id: 'prod-eu', controller_id: 7 });
    expect(await c.send(findCoordinator, 2, { key: 'g', key_type: 0 })).toMatchObject({ node_id: 7, host: 'kafka.example.com', port: 19092 });
    await c.close();
  });

  test('a wildcard listen address advertises the address each client connected to; auto-creation when enabled', async () => {
    h = await new KafkaHarness({ listener: { listen: '0.0.0.0:0', auto_create_topics: true } }).start();
    const c = await RawKafkaClient.connect(`127.0.0.1:${h.broker.split(':')[1]}`);
    const m = await c.send(metadata, 4, { topics: ['auto'], allow_auto_topic_creation: true });
    expect(m.brokers[0]!.host).toBe('127.0.0.1');
    expect(m.topics).toEqual([expect.objectContaining({ name: 'auto', error_code: 0, partitions: [expect.objectContaining({ partition_index: 0 })] })]);
    expect(h.store.topic('auto').config.partitions).toBe(1);
    const refused = await c.send(metadata, 4, { topics: ['not-auto'], allow_auto_topic_creation: false });
    expect(refused.topics[0]!.error_code).toBe(KafkaCode.UNKNOWN_TOPIC_OR_PARTITION);
    await c.close();
  });
});
