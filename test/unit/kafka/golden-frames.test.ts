import { describe, expect, test } from 'vitest';
import type { ApiCodec } from '../../../server/kafka/protocol/api.js';
import { apiVersions } from '../../../server/kafka/protocol/api-versions.js';
import { createTopics } from '../../../server/kafka/protocol/create-topics.js';
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
import { syncGroup } from '../../../server/kafka/protocol/sync-group.js';
import { decodeRequestFrame } from '../../../server/kafka/request.js';
import { kafkaLimits } from '../../../server/kafka/limits.js';
import { hex } from './hex.js';

/*
 * Golden request and response bodies, written by hand field by field from the Kafka protocol guide
 * (https://kafka.apache.org/protocol) and the message definitions in Kafka's
 * clients/src/main/resources/common/message/*.json. Each is checked in both directions: decoding
 * the bytes gives the fields, encoding the fields gives the bytes.
 */

function both<Req, Res>(codec: ApiCodec<Req, Res>, version: number, kind: 'request' | 'response', bytes: Buffer, fields: Req | Res): void {
  const d = new Decoder(bytes);
  const decoded = kind === 'request' ? codec.decodeRequest(d, version) : codec.decodeResponse(d, version);
  d.end('golden');
  expect(decoded).toEqual(fields);
  const e = new Encoder();
  if (kind === 'request') codec.encodeRequest(e, version, fields as Req);
  else codec.encodeResponse(e, version, fields as Res);
  expect(e.toBuffer().toString('hex')).toBe(bytes.toString('hex'));
}

describe('golden frames, both directions', () => {
  test('a whole ApiVersions v0 request frame, as librdkafka and kafkajs send it first', () => {
    const frame = hex(`
      0012 0000        # api key 18 (ApiVersions), version 0
      00000007         # correlation id
      0001 63          # client id "c"
                       # (no body)
    `);
    const r = decodeRequestFrame(frame, kafkaLimits.array_length_max);
    expect(r).toMatchObject({ kind: 'request', header: { api_key: 18, api_version: 0, correlation_id: 7, client_id: 'c' }, req: {} });
  });

  test('ApiVersions v1 response', () => {
    both(apiVersions, 1, 'response', hex(`
      0000                      # error code
      00000002                  # api_keys: 2 entries
        0000 0000 0007          #   Produce 0..7
        0012 0000 0002          #   ApiVersions 0..2
      00000000                  # throttle time
    `), { error_code: 0, api_keys: [{ api_key: 0, min_version: 0, max_version: 7 }, { api_key: 18, min_version: 0, max_version: 2 }], throttle_time_ms: 0 });
  });

  test('Metadata v0 request (an empty list means every topic in v0) and v4 request', () => {
    both(metadata, 0, 'request', hex('00000001 0002 6162'), { topics: ['ab'], allow_auto_topic_creation: true });
    const d = new Decoder(hex('00000000'));
    expect(metadata.decodeRequest(d, 0)).toEqual({ topics: null, allow_auto_topic_creation: true });
    both(metadata, 4, 'request', hex(`
      ffffffff         # topics: null (every topic)
      00               # allow_auto_topic_creation false
    `), { topics: null, allow_auto_topic_creation: false });
  });

  test('Metadata v1 and v7 responses', () => {
    const v1 = hex(`
      00000001                        # brokers: 1
        00000000 0001 68 00002384     #   node 0, host "h", port 9092
        ffff                          #   rack: null
      00000000                        # controller id
      00000001                        # topics: 1
        0000 0001 74 00               #   error 0, name "t", is_internal false
        00000001                      #   partitions: 1
          0000 00000000 00000000      #     error 0, partition 0, leader 0
          00000001 00000000           #     replicas [0]
          00000001 00000000           #     isr [0]
    `);
    const partition = { error_code: 0, partition_index: 0, leader_id: 0, leader_epoch: -1, replica_nodes: [0], isr_nodes: [0], offline_replicas: [] };
    both(metadata, 1, 'response', v1, { throttle_time_ms: 0, brokers: [{ node_id: 0, host: 'h', port: 9092, rack: null }], cluster_id: null, controller_id: 0, topics: [{ error_code: 0, name: 't', is_internal: false, partitions: [partition] }] });
    const v7 = hex(`
      00000000                        # throttle time
      00000001 00000000 0001 68 00002384 ffff
      0001 78                         # cluster id "x"
      00000000                        # controller id
      00000001 0000 0001 74 00
        00000001
          0000 00000000 00000000      #     error, partition, leader
          ffffffff                    #     leader epoch -1
          00000001 00000000 00000001 00000000
          00000000                    #     offline replicas: none
    `);
    both(metadata, 7, 'response', v7, { throttle_time_ms: 0, brokers: [{ node_id: 0, host: 'h', port: 9092, rack: null }], cluster_id: 'x', controller_id: 0, topics: [{ error_code: 0, name: 't', is_internal: false, partitions: [partition] }] });
  });

  test('Produce v3 request and v7 response', () => {
    both(produce, 3, 'request', hex(`
      ffff                 # transactional id: null
      ffff                 # acks -1
      00007530             # timeout 30000 ms
      00000001 0001 74     # topics: "t"
        00000001           #   partitions: 1
          00000000         #     index 0
          00000003 010203  #     records (opaque here: 3 bytes)
    `), { transactional_id: null, acks: -1, timeout_ms: 30000, topic_data: [{ name: 't', partition_data: [{ index: 0, records: Buffer.from([1, 2, 3]) }] }] });
    both(produce, 7, 'response', hex(`
      00000001 0001 74
        00000001
          00000000 0000                 # index 0, error 0
          000000000000002a              # base offset 42
          ffffffffffffffff              # log append time -1
          0000000000000000              # log start offset 0
      00000000                          # throttle time (last, for Produce)
    `), { responses: [{ name: 't', partition_responses: [{ index: 0, error_code: 0, base_offset: 42, log_append_time_ms: -1, log_start_offset: 0 }] }], throttle_time_ms: 0 });
  });

  test('Fetch v4 request and v11 response', () => {
    both(fetch, 4, 'request', hex(`
      ffffffff 000001f4 00000001 00100000   # replica -1, max wait 500, min bytes 1, max bytes 1 MiB
      00                                    # isolation: read uncommitted
      00000001 0001 74
        00000001
          00000000                          # partition 0
          000000000000002a                  # fetch offset 42
          00010000                          # partition max bytes 64 KiB
    `), { replica_id: -1, max_wait_ms: 500, min_bytes: 1, max_bytes: 1 << 20, isolation_level: 0, session_id: 0, session_epoch: -1, topics: [{ topic: 't', partitions: [{ partition: 0, current_leader_epoch: -1, fetch_offset: 42, log_start_offset: -1, partition_max_bytes: 65536 }] }], forgotten_topics_data: [], rack_id: '' });
    both(fetch, 11, 'response', hex(`
      00000000 0000 00000000                # throttle, error, session id 0 (no session)
      00000001 0001 74
        00000001
          00000000 0000                     # partition 0, error 0
          0000000000000005                  # high watermark
          0000000000000005                  # last stable offset
          0000000000000000                  # log start offset
          ffffffff                          # aborted transactions: null
          ffffffff                          # preferred read replica -1
          00000002 abcd                     # records
    `), { throttle_time_ms: 0, error_code: 0, session_id: 0, responses: [{ topic: 't', partitions: [{ partition_index: 0, error_code: 0, high_watermark: 5, last_stable_offset: 5, log_start_offset: 0, aborted_transactions: null, preferred_read_replica: -1, records: Buffer.from([0xab, 0xcd]) }] }] });
  });

  test('Fetch v11 request: session, current leader epoch, forgotten topics, rack', () => {
    both(fetch, 11, 'request', hex(`
      ffffffff 00000064 00000001 00000400 01
      00000000 ffffffff                     # session id 0, epoch -1: a full fetch
      00000001 0001 74 00000001
        00000002 ffffffff                   # partition 2, current leader epoch -1
        0000000000000007 0000000000000000   # fetch offset 7, log start offset 0
        00000400
      00000000                              # forgotten topics: none
      0002 7231                             # rack "r1"
    `), { replica_id: -1, max_wait_ms: 100, min_bytes: 1, max_bytes: 1024, isolation_level: 1, session_id: 0, session_epoch: -1, topics: [{ topic: 't', partitions: [{ partition: 2, current_leader_epoch: -1, fetch_offset: 7, log_start_offset: 0, partition_max_bytes: 1024 }] }], forgotten_topics_data: [], rack_id: 'r1' });
  });

  test('ListOffsets v1 request and v2 response', () => {
    both(listOffsets, 1, 'request', hex('ffffffff 00000001 0001 74 00000001 00000000 fffffffffffffffe'), { replica_id: -1, isolation_level: 0, topics: [{ name: 't', partitions: [{ partition_index: 0, timestamp: -2 }] }] });
    both(listOffsets, 2, 'response', hex('00000000 00000001 0001 74 00000001 00000000 0000 ffffffffffffffff 0000000000000003'), { throttle_time_ms: 0, topics: [{ name: 't', partitions: [{ partition_index: 0, error_code: 0, timestamp: -1, offset: 3 }] }] });
  });

  test('FindCoordinator v0 request and v1 response', () => {
    both(findCoordinator, 0, 'request', hex('0001 67'), { key: 'g', key_type: 0 });
    both(findCoordinator, 1, 'response', hex('00000000 0000 ffff 00000000 0001 68 00002384'), { throttle_time_ms: 0, error_code: 0, error_message: null, node_id: 0, host: 'h', port: 9092 });
  });

  test('JoinGroup v0 request and v5 response', () => {
    both(joinGroup, 0, 'request', hex(`
      0001 67                   # group "g"
      00007530                  # session timeout 30 s
      0000                      # member id ""
      0008 636f6e73756d6572     # protocol type "consumer"
      00000001
        0005 72616e6765         #   "range"
        00000001 00             #   metadata: 1 byte
    `), { group_id: 'g', session_timeout_ms: 30000, rebalance_timeout_ms: 30000, member_id: '', group_instance_id: null, protocol_type: 'consumer', protocols: [{ name: 'range', metadata: Buffer.from([0]) }] });
    both(joinGroup, 5, 'response', hex(`
      00000000 0000 00000001    # throttle, error, generation 1
      0005 72616e6765           # protocol "range"
      0001 6d 0001 6d           # leader "m", member id "m"
      00000001
        0001 6d ffff            #   member "m", no group instance id
        00000000                #   metadata: empty
    `), { throttle_time_ms: 0, error_code: 0, generation_id: 1, protocol_name: 'range', leader: 'm', member_id: 'm', members: [{ member_id: 'm', group_instance_id: null, metadata: Buffer.alloc(0) }] });
  });

  test('SyncGroup v3 request, Heartbeat v0 request, LeaveGroup v0 and v3 requests', () => {
    both(syncGroup, 3, 'request', hex('0001 67 00000001 0001 6d 0002 6931 00000001 0001 6d 00000002 0102'), { group_id: 'g', generation_id: 1, member_id: 'm', group_instance_id: 'i1', assignments: [{ member_id: 'm', assignment: Buffer.from([1, 2]) }] });
    both(heartbeat, 0, 'request', hex('0001 67 00000001 0001 6d'), { group_id: 'g', generation_id: 1, member_id: 'm', group_instance_id: null });
    both(leaveGroup, 0, 'request', hex('0001 67 0001 6d'), { group_id: 'g', members: [{ member_id: 'm', group_instance_id: null }] });
    both(leaveGroup, 3, 'request', hex('0001 67 00000001 0001 6d ffff'), { group_id: 'g', members: [{ member_id: 'm', group_instance_id: null }] });
    both(leaveGroup, 3, 'response', hex('00000000 0000 00000001 0001 6d ffff 0000'), { throttle_time_ms: 0, error_code: 0, members: [{ member_id: 'm', group_instance_id: null, error_code: 0 }] });
  });

  test('OffsetCommit v2 and v7 requests, OffsetFetch v1 request and v5 response', () => {
    both(offsetCommit, 2, 'request', hex(`
      0001 67 00000001 0001 6d  # group, generation 1, member "m"
      ffffffffffffffff          # retention time -1 (v2-v4 only)
      00000001 0001 74 00000001
        00000000 000000000000000a ffff   # partition 0, offset 10, metadata null
    `), { group_id: 'g', generation_id: 1, member_id: 'm', group_instance_id: null, retention_time_ms: -1, topics: [{ name: 't', partitions: [{ partition_index: 0, committed_offset: 10, committed_leader_epoch: -1, committed_metadata: null }] }] });
    both(offsetCommit, 7, 'request', hex(`
      0001 67 00000001 0001 6d
      ffff                      # group instance id null (v7)
      00000001 0001 74 00000001
        00000000 000000000000000a
        00000003                # committed leader epoch (v6+)
        0000                    # metadata ""
    `), { group_id: 'g', generation_id: 1, member_id: 'm', group_instance_id: null, retention_time_ms: -1, topics: [{ name: 't', partitions: [{ partition_index: 0, committed_offset: 10, committed_leader_epoch: 3, committed_metadata: '' }] }] });
    both(offsetFetch, 1, 'request', hex('0001 67 00000001 0001 74 00000002 00000000 00000001'), { group_id: 'g', topics: [{ name: 't', partition_indexes: [0, 1] }] });
    both(offsetFetch, 5, 'response', hex(`
      00000000                  # throttle
      00000001 0001 74 00000001
        00000000 000000000000000a ffffffff 0000 0000   # partition 0, offset 10, leader epoch -1, metadata "", error 0
      0000                      # group error (v2+)
    `), { throttle_time_ms: 0, topics: [{ name: 't', partitions: [{ partition_index: 0, committed_offset: 10, committed_leader_epoch: -1, metadata: '', error_code: 0 }] }], error_code: 0 });
  });

  test('CreateTopics v0 request and v1 response', () => {
    both(createTopics, 0, 'request', hex(`
      00000001
        0001 74 00000003 0001   # "t", 3 partitions, replication factor 1
        00000000                # assignments: none
        00000001
          000c 726574656e74696f6e2e6d73 0004 31303030   # retention.ms = 1000
      00001388                  # timeout 5000 ms
    `), { topics: [{ name: 't', num_partitions: 3, replication_factor: 1, assignments: [], configs: [{ name: 'retention.ms', value: '1000' }] }], timeout_ms: 5000, validate_only: false });
    both(createTopics, 1, 'response', hex('00000001 0001 74 0024 0003 626164'), { throttle_time_ms: 0, topics: [{ name: 't', error_code: 36, error_message: 'bad' }] });
  });
});
