import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import type { ApiCodec } from '../../../server/kafka/protocol/api.js';
import { apiVersions } from '../../../server/kafka/protocol/api-versions.js';
import { createTopics } from '../../../server/kafka/protocol/create-topics.js';
import { initProducerId } from '../../../server/kafka/protocol/init-producer-id.js';
import { Decoder } from '../../../server/kafka/protocol/decoder.js';
import { Encoder } from '../../../server/kafka/protocol/encoder.js';
import { fetch } from '../../../server/kafka/protocol/fetch.js';
import { findCoordinator } from '../../../server/kafka/protocol/find-coordinator.js';
import { heartbeat } from '../../../server/kafka/protocol/heartbeat.js';
import { joinGroup } from '../../../server/kafka/protocol/join-group.js';
import { leaveGroup } from '../../../server/kafka/protocol/leave-group.js';
import { listOffsets } from '../../../server/kafka/protocol/list-offsets.js';
import { metadata } from '../../../server/kafka/protocol/metadata.js';
import { offsetCommit } from '../../../server/kafka/protocol/offset-commit.js';
import { offsetFetch } from '../../../server/kafka/protocol/offset-fetch.js';
import { produce } from '../../../server/kafka/protocol/produce.js';
import { CODECS } from '../../../server/kafka/protocol/registry.js';
import { syncGroup } from '../../../server/kafka/protocol/sync-group.js';

/*
 * For every API and every version served, requests and responses round-trip: encode(x) decodes,
 * consuming every byte, to a value that encodes to the same bytes. (Golden frames pin the layout;
 * this pins that both directions agree at every version, for any field values.)
 * SEED=<n> replays a run.
 */

const seed = Number(process.env.SEED ?? Date.now() % 2 ** 31);
const NUM_RUNS = 60;

const i8 = fc.integer({ min: -128, max: 127 });
const i16 = fc.integer({ min: -32768, max: 32767 });
const i32 = fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 });
const i64 = fc.oneof(fc.constantFrom(-1, -2, 0, Number.MAX_SAFE_INTEGER, Number.MIN_SAFE_INTEGER), fc.maxSafeInteger());
const str = fc.string({ maxLength: 12, unit: 'grapheme' });
const nstr = fc.option(str, { nil: null });
const bytes = fc.uint8Array({ maxLength: 24 }).map((a) => Buffer.from(a));
const nbytes = fc.option(bytes, { nil: null });
const arr = <T>(a: fc.Arbitrary<T>) => fc.array(a, { maxLength: 3 });
const narr = <T>(a: fc.Arbitrary<T>) => fc.option(arr(a), { nil: null });
const bool = fc.boolean();

const cases: Array<{ codec: ApiCodec<never, never>; req: fc.Arbitrary<unknown>; res: fc.Arbitrary<unknown> }> = [
  {
    codec: apiVersions as never,
    req: fc.constant({}),
    res: fc.record({ error_code: i16, api_keys: arr(fc.record({ api_key: i16, min_version: i16, max_version: i16 })), throttle_time_ms: i32 }),
  },
  {
    codec: metadata as never,
    req: fc.record({ topics: narr(str), allow_auto_topic_creation: bool }),
    res: fc.record({
      throttle_time_ms: i32,
      brokers: arr(fc.record({ node_id: i32, host: str, port: i32, rack: nstr })),
      cluster_id: nstr,
      controller_id: i32,
      topics: arr(fc.record({ error_code: i16, name: str, is_internal: bool, partitions: arr(fc.record({ error_code: i16, partition_index: i32, leader_id: i32, leader_epoch: i32, replica_nodes: arr(i32), isr_nodes: arr(i32), offline_replicas: arr(i32) })) })),
    }),
  },
  {
    codec: produce as never,
    req: fc.record({ transactional_id: nstr, acks: i16, timeout_ms: i32, topic_data: arr(fc.record({ name: str, partition_data: arr(fc.record({ index: i32, records: nbytes })) })) }),
    res: fc.record({ responses: arr(fc.record({ name: str, partition_responses: arr(fc.record({ index: i32, error_code: i16, base_offset: i64, log_append_time_ms: i64, log_start_offset: i64 })) })), throttle_time_ms: i32 }),
  },
  {
    codec: fetch as never,
    req: fc.record({
      replica_id: i32,
      max_wait_ms: i32,
      min_bytes: i32,
      max_bytes: i32,
      isolation_level: i8,
      session_id: i32,
      session_epoch: i32,
      topics: arr(fc.record({ topic: str, partitions: arr(fc.record({ partition: i32, current_leader_epoch: i32, fetch_offset: i64, log_start_offset: i64, partition_max_bytes: i32 })) })),
      forgotten_topics_data: arr(fc.record({ topic: str, partitions: arr(i32) })),
      rack_id: str,
    }),
    res: fc.record({
      throttle_time_ms: i32,
      error_code: i16,
      session_id: i32,
      responses: arr(fc.record({ topic: str, partitions: arr(fc.record({ partition_index: i32, error_code: i16, high_watermark: i64, last_stable_offset: i64, log_start_offset: i64, aborted_transactions: narr(fc.record({ producer_id: i64, first_offset: i64 })), preferred_read_replica: i32, records: nbytes })) })),
    }),
  },
  {
    codec: listOffsets as never,
    req: fc.record({ replica_id: i32, isolation_level: i8, topics: arr(fc.record({ name: str, partitions: arr(fc.record({ partition_index: i32, timestamp: i64 })) })) }),
    res: fc.record({ throttle_time_ms: i32, topics: arr(fc.record({ name: str, partitions: arr(fc.record({ partition_index: i32, error_code: i16, timestamp: i64, offset: i64 })) })) }),
  },
  {
    codec: findCoordinator as never,
    req: fc.record({ key: str, key_type: i8 }),
    res: fc.record({ throttle_time_ms: i32, error_code: i16, error_message: nstr, node_id: i32, host: str, port: i32 }),
  },
  {
    codec: joinGroup as never,
    req: fc.record({ group_id: str, session_timeout_ms: i32, rebalance_timeout_ms: i32, member_id: str, group_instance_id: nstr, protocol_type: str, protocols: arr(fc.record({ name: str, metadata: bytes })) }),
    res: fc.record({ throttle_time_ms: i32, error_code: i16, generation_id: i32, protocol_name: str, leader: str, member_id: str, members: arr(fc.record({ member_id: str, group_instance_id: nstr, metadata: bytes })) }),
  },
  {
    codec: syncGroup as never,
    req: fc.record({ group_id: str, generation_id: i32, member_id: str, group_instance_id: nstr, assignments: arr(fc.record({ member_id: str, assignment: bytes })) }),
    res: fc.record({ throttle_time_ms: i32, error_code: i16, assignment: bytes }),
  },
  {
    codec: heartbeat as never,
    req: fc.record({ group_id: str, generation_id: i32, member_id: str, group_instance_id: nstr }),
    res: fc.record({ throttle_time_ms: i32, error_code: i16 }),
  },
  {
    codec: leaveGroup as never,
    req: fc.record({ group_id: str, members: fc.array(fc.record({ member_id: str, group_instance_id: nstr }), { minLength: 1, maxLength: 3 }) }),
    res: fc.record({ throttle_time_ms: i32, error_code: i16, members: arr(fc.record({ member_id: str, group_instance_id: nstr, error_code: i16 })) }),
  },
  {
    codec: offsetCommit as never,
    req: fc.record({ group_id: str, generation_id: i32, member_id: str, group_instance_id: nstr, retention_time_ms: i64, topics: arr(fc.record({ name: str, partitions: arr(fc.record({ partition_index: i32, committed_offset: i64, committed_leader_epoch: i32, committed_metadata: nstr })) })) }),
    res: fc.record({ throttle_time_ms: i32, topics: arr(fc.record({ name: str, partitions: arr(fc.record({ partition_index: i32, error_code: i16 })) })) }),
  },
  {
    codec: offsetFetch as never,
    req: fc.record({ group_id: str, topics: narr(fc.record({ name: str, partition_indexes: arr(i32) })) }),
    res: fc.record({ throttle_time_ms: i32, topics: arr(fc.record({ name: str, partitions: arr(fc.record({ partition_index: i32, committed_offset: i64, committed_leader_epoch: i32, metadata: nstr, error_code: i16 })) })), error_code: i16 }),
  },
  {
    codec: createTopics as never,
    req: fc.record({ topics: arr(fc.record({ name: str, num_partitions: i32, replication_factor: i16, assignments: arr(fc.record({ partition_index: i32, broker_ids: arr(i32) })), configs: arr(fc.record({ name: str, value: nstr })) })), timeout_ms: i32, validate_only: bool }),
    res: fc.record({ throttle_time_ms: i32, topics: arr(fc.record({ name: str, error_code: i16, error_message: nstr })) }),
  },
  {
    codec: initProducerId as never,
    req: fc.record({ transactional_id: nstr, transaction_timeout_ms: i32 }),
    res: fc.record({ throttle_time_ms: i32, error_code: i16, producer_id: i64, producer_epoch: i16 }),
  },
];

function roundTrip(encode: (e: Encoder, x: unknown) => void, decode: (d: Decoder) => unknown, x: unknown): void {
  const e1 = new Encoder();
  encode(e1, x);
  const first = e1.toBuffer();
  const d = new Decoder(first);
  const decoded = decode(d);
  expect(d.remaining).toBe(0);
  const e2 = new Encoder();
  encode(e2, decoded);
  expect(e2.toBuffer().equals(first)).toBe(true);
}

describe(`every API version round-trips (seed ${seed})`, () => {
  test('the cases cover every served API', () => {
    expect(cases.map((c) => c.codec.key).sort((a, b) => a - b)).toEqual(CODECS.map((c) => c.key).sort((a, b) => a - b));
  });

  for (const { codec, req, res } of cases) {
    for (let v = codec.min_version; v <= codec.max_version; v++) {
      test(`${codec.name} v${v}`, () => {
        const c = codec as unknown as ApiCodec<unknown, unknown>;
        fc.assert(fc.property(req, (x) => roundTrip((e, y) => c.encodeRequest(e, v, y), (d) => c.decodeRequest(d, v), x)), { seed, numRuns: NUM_RUNS });
        fc.assert(fc.property(res, (x) => roundTrip((e, y) => c.encodeResponse(e, v, y), (d) => c.decodeResponse(d, v), x)), { seed, numRuns: NUM_RUNS });
      });
    }
  }
});
