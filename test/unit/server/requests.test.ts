import { describe, expect, test } from 'vitest';
import { AdminService, decodeMessage, encodeMessage, isMalformed, LogService, messageType } from '../../../server/proto/load.js';
import { serverLimits } from '../../../server/rpc/limits.js';
import {
  parsePartitionNode,
  PARTITION_ADMIN_TIMEOUT_MAX_MS,
  parseCommitOffset,
  parseCreateTopic,
  parseFetch,
  parseListOffsets,
  parseProduce,
  parseSubscribe,
} from '../../../server/rpc/requests.js';
import { batchBaseOffsets } from '../../../server/rpc/produce-streams.js';
import { toServiceError } from '../../../server/rpc/status.js';
import { encodeBatch, EngineError, offsetOutOfRange } from '../../../engine/index.js';

/** Through the wire codec, as the server sees a request. */
const wire = (type: string, v: object) => (LogService[type] ?? AdminService[type])!.requestDeserialize(encodeMessage(messageType(`${type}Request`), v));

describe('proto codec', () => {
  test('every service method has a path, and messages round-trip with int64 as numbers and bytes as Buffers', () => {
    expect(Object.keys(LogService).sort()).toEqual(['CommitOffset', 'EpochEnd', 'Fetch', 'FetchCommitted', 'InitProducerId', 'ListOffsets', 'Produce', 'ProducePipeline', 'ProduceStream', 'Subscribe'].sort());
    expect(Object.keys(AdminService).sort()).toEqual(['AddReplica', 'Archive', 'Compact', 'CreateTopic', 'DeleteTopic', 'DescribeTopic', 'ListTopics', 'RemoveReplica', 'TransferLeader']);
    expect(LogService.Subscribe!.path).toBe('/relaylog.v1.Log/Subscribe');
    const T = messageType('FetchResponse');
    const back = decodeMessage(T, encodeMessage(T, { records: Buffer.from('abc'), next_offset: 2 ** 40, high_watermark: 7, log_start_offset: 0 }));
    expect(back).toEqual({ records: Buffer.from('abc'), next_offset: 2 ** 40, high_watermark: 7, log_start_offset: 0 });
  });

  test('bytes that are not a message decode to a MalformedRequest instead of throwing', () => {
    const r = LogService.Fetch!.requestDeserialize(Buffer.from([0x0a, 0xff, 0x01]));
    expect(isMalformed(r)).toBe(true);
    expect(() => parseFetch(r, serverLimits)).toThrow(/malformed FetchRequest/);
  });

  test('a oneof names its member; an unset oneof is absent', () => {
    expect(wire('Subscribe', { topic: 't', timestamp_ms: 5 })).toMatchObject({ start: 'timestamp_ms', timestamp_ms: 5 });
    expect(wire('Subscribe', { topic: 't' })).not.toHaveProperty('start');
  });
});

describe('request parsing', () => {
  test('Produce: records required, acks checked, unknown enum values refused', () => {
    const records = encodeBatch([{ value: 'x' }]);
    expect(parseProduce(wire('Produce', { topic: 't', partition: 1, records, acks: 'ACKS_LEADER' }))).toEqual({ topic: 't', partition: 1, records, acks: 'leader' });
    expect(() => parseProduce(wire('Produce', { topic: 't' }))).toThrow(/needs records/);
    expect(() => parseProduce({ topic: 't', partition: 0, records, acks: 99 })).toThrow(/acks/);
  });

  test('Fetch: defaults and clamps from the limits; offsets beyond 2^53 refused', () => {
    expect(parseFetch(wire('Fetch', { topic: 't', offset: 3 }), serverLimits)).toEqual({ topic: 't', partition: 0, offset: 3, max_bytes: serverLimits.fetch_default_bytes, max_wait_ms: 0 });
    expect(parseFetch(wire('Fetch', { topic: 't', max_wait_ms: 10 ** 9 }), serverLimits).max_wait_ms).toBe(serverLimits.fetch_wait_max_ms);
    expect(parseFetch(wire('Fetch', { topic: 't', offset: -4 }), serverLimits).offset).toBe(-4); // the engine answers OUT_OF_RANGE
    expect(() => parseFetch({ topic: 't', offset: 2 ** 60 }, serverLimits)).toThrow(/below 2\^53/);
  });

  test('Subscribe: exactly one start; frame size clamped', () => {
    expect(parseSubscribe(wire('Subscribe', { topic: 't', position: 'LATEST' }), serverLimits).start).toEqual({ kind: 'latest' });
    expect(parseSubscribe(wire('Subscribe', { topic: 't', group: 'g' }), serverLimits).start).toEqual({ kind: 'group', group: 'g' });
    expect(parseSubscribe(wire('Subscribe', { topic: 't', offset: 0 }), serverLimits).start).toEqual({ kind: 'offset', offset: 0 });
    expect(parseSubscribe(wire('Subscribe', { topic: 't', offset: 0, max_frame_bytes: 2 ** 31 }), serverLimits).max_frame_bytes).toBe(serverLimits.subscribe_frame_max_bytes);
    expect(() => parseSubscribe(wire('Subscribe', { topic: 't' }), serverLimits)).toThrow(/needs a start/);
    expect(() => parseSubscribe(wire('Subscribe', { topic: 't', group: '' }), serverLimits)).toThrow(/group id/);
  });

  test('ListOffsets, CommitOffset, CreateTopic', () => {
    expect(parseListOffsets(wire('ListOffsets', { topic: 't', timestamp_ms: 9 })).query).toEqual({ kind: 'timestamp', timestamp_ms: 9 });
    expect(parseListOffsets(wire('ListOffsets', { topic: 't' })).query).toEqual({ kind: 'earliest' });
    expect(() => parseCommitOffset(wire('CommitOffset', { group: 'g', topic: 't', offset: -1 }))).toThrow(/>= 0/);
    expect(() => parseCommitOffset(wire('CommitOffset', { group: 'g', topic: 't', metadata: 'x'.repeat(5000) }))).toThrow(/4096/);
    const ct = AdminService.CreateTopic!.requestDeserialize(encodeMessage(messageType('CreateTopicRequest'), { name: 'a', partitions: 3, config: { 'retention.ms': '5' } }));
    expect(parseCreateTopic(ct)).toEqual({ name: 'a', partitions: 3, config: { 'retention.ms': '5' } });
  });
  test('TransferLeader / AddReplica / RemoveReplica: a topic and a positive node id; the timeout clamped', () => {
    const req = (o: object) => AdminService.AddReplica!.requestDeserialize(encodeMessage(messageType('PartitionNodeRequest'), o));
    expect(parsePartitionNode(req({ topic: 't', partition: 2, node_id: 4 }))).toEqual({ topic: 't', partition: 2, node_id: 4, timeout_ms: 0 });
    expect(parsePartitionNode(req({ topic: 't', node_id: 4, timeout_ms: 10 ** 9 })).timeout_ms).toBe(PARTITION_ADMIN_TIMEOUT_MAX_MS);
    expect(() => parsePartitionNode(req({ topic: 't' }))).toThrow(/node_id must be a positive node id/);
    expect(() => parsePartitionNode(req({ node_id: 1 }))).toThrow(/topic is required/);
  });
});

test('per-batch base offsets follow the record counts', () => {
  const set = Buffer.concat([encodeBatch([{ value: 'a' }, { value: 'b' }]), encodeBatch([{ value: 'c' }]), encodeBatch([{ value: 'd' }, { value: 'e' }, { value: 'f' }])]);
  expect(batchBaseOffsets(set, 10)).toEqual([10, 12, 13]);
});

test('status mapping comes from the engine table; anything else is INTERNAL', () => {
  const e = toServiceError(offsetOutOfRange(9, 0, 5));
  expect(e.code).toBe(11);
  expect(e.details).toMatch(/0\.\.5/);
  expect(e.metadata!.get('relaylog-code')).toEqual(['OFFSET_OUT_OF_RANGE']);
  expect(toServiceError(new EngineError('DISK_FULL', 'full')).code).toBe(8);
  expect(toServiceError(new TypeError('boom'))).toMatchObject({ code: 13, details: 'internal error: boom' });
});
