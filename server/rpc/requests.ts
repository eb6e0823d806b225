import { invalidArgument } from '../../engine/base/errors.js';
import { isMalformed } from '../proto/load.js';
import type { ServerLimits } from './limits.js';

/*
 * Parse, after decode: protobufjs turns bytes into plain objects (load.ts); these pure functions
 * turn those objects into typed requests, or throw INVALID_ARGUMENT naming the field. Domain checks
 * (does the topic exist, is the offset in range) stay with the engine, which names both bounds.
 */

export type StartPosition =
  | { kind: 'offset'; offset: number }
  | { kind: 'timestamp'; timestamp_ms: number }
  | { kind: 'earliest' }
  | { kind: 'latest' }
  | { kind: 'group'; group: string };

export interface PartitionRef {
  topic: string;
  partition: number;
}
export interface ProduceRequest extends PartitionRef {
  records: Buffer;
  acks: 'all' | 'leader';
}
export interface FetchRequest extends PartitionRef {
  offset: number;
  max_bytes: number;
  max_wait_ms: number;
}
export interface SubscribeRequest extends PartitionRef {
  start: StartPosition;
  max_frame_bytes: number;
}
export interface ListOffsetsRequest extends PartitionRef {
  query: { kind: 'earliest' } | { kind: 'latest' } | { kind: 'timestamp'; timestamp_ms: number };
}
export interface CommitOffsetRequest extends PartitionRef {
  group: string;
  offset: number;
  metadata: string;
}
export interface FetchCommittedRequest extends PartitionRef {
  group: string;
}
export interface CreateTopicRequest {
  name: string;
  /** 0 = the server's default. */
  partitions: number;
  config: Record<string, string>;
}

/** Kafka's `offset.metadata.max.bytes`. */
export const COMMIT_METADATA_MAX_BYTES = 4096;

type Raw = Record<string, unknown>;

function object(raw: unknown, what: string): Raw {
  if (isMalformed(raw)) throw invalidArgument(raw.malformed);
  if (typeof raw !== 'object' || raw === null) throw invalidArgument(`${what}: not a message`);
  return raw as Raw;
}
const str = (r: Raw, f: string): string => {
  const v = r[f] ?? '';
  if (typeof v !== 'string') throw invalidArgument(`${f} must be a string`);
  return v;
};
const int = (r: Raw, f: string): number => {
  const v = r[f] ?? 0;
  if (typeof v !== 'number' || !Number.isSafeInteger(v)) throw invalidArgument(`${f} must be an integer below 2^53, got ${String(v)}`);
  return v;
};
const nonNegative = (r: Raw, f: string): number => {
  const v = int(r, f);
  if (v < 0) throw invalidArgument(`${f} must be >= 0, got ${v}`);
  return v;
};
const ref = (r: Raw): PartitionRef => ({ topic: str(r, 'topic'), partition: int(r, 'partition') });

export function parseProduce(raw: unknown): ProduceRequest {
  const r = object(raw, 'ProduceRequest');
  const records = r.records;
  if (!Buffer.isBuffer(records) || records.length === 0) throw invalidArgument('Produce needs records: one or more RecordBatch v2 batches');
  const acks = r.acks ?? 'ACKS_ALL';
  if (acks !== 'ACKS_ALL' && acks !== 'ACKS_LEADER') throw invalidArgument(`acks must be ACKS_ALL or ACKS_LEADER, got ${String(acks)}`);
  return { ...ref(r), records, acks: acks === 'ACKS_ALL' ? 'all' : 'leader' };
}

export function parseFetch(raw: unknown, limits: ServerLimits): FetchRequest {
  const r = object(raw, 'FetchRequest');
  const max_bytes = nonNegative(r, 'max_bytes');
  return {
    ...ref(r),
    offset: int(r, 'offset'),
    max_bytes: max_bytes === 0 ? limits.fetch_default_bytes : Math.min(max_bytes, limits.message_max_bytes),
    max_wait_ms: Math.min(nonNegative(r, 'max_wait_ms'), limits.fetch_wait_max_ms),
  };
}

function position(v: unknown): { kind: 'earliest' } | { kind: 'latest' } {
  if (v === 'EARLIEST' || v === undefined) return { kind: 'earliest' };
  if (v === 'LATEST') return { kind: 'latest' };
  throw invalidArgument(`position must be EARLIEST or LATEST, got ${String(v)}`);
}

export function parseSubscribe(raw: unknown, limits: ServerLimits): SubscribeRequest {
  const r = object(raw, 'SubscribeRequest');
  let start: StartPosition;
  switch (r.start) {
    case 'offset':
      start = { kind: 'offset', offset: int(r, 'offset') };
      break;
    case 'timestamp_ms':
      start = { kind: 'timestamp', timestamp_ms: int(r, 'timestamp_ms') };
      break;
    case 'position':
      start = position(r.position);
      break;
    case 'group':
      start = { kind: 'group', group: parseGroup(r) };
      break;
    default:
      throw invalidArgument('Subscribe needs a start: offset, timestamp_ms, position or group');
  }
  const frame = nonNegative(r, 'max_frame_bytes');
  return { ...ref(r), start, max_frame_bytes: frame === 0 ? limits.subscribe_frame_default_bytes : Math.min(frame, limits.subscribe_frame_max_bytes) };
}

export function parseListOffsets(raw: unknown): ListOffsetsRequest {
  const r = object(raw, 'ListOffsetsRequest');
  const query = r.query === 'timestamp_ms' ? { kind: 'timestamp' as const, timestamp_ms: int(r, 'timestamp_ms') } : position(r.position);
  return { ...ref(r), query };
}

export interface EpochEndRequest {
  topic: string;
  partition: number;
  epoch: number;
}

export function parseEpochEnd(raw: unknown): EpochEndRequest {
  const r = object(raw, 'EpochEndRequest');
  const epoch = int(r, 'epoch');
  if (epoch < -1) throw invalidArgument(`epoch must be -1 or more, got ${epoch}`);
  return { ...ref(r), epoch };
}

function parseGroup(r: Raw): string {
  const group = str(r, 'group');
  if (group.length === 0 || group.length > 255) throw invalidArgument(`group id must be 1..255 characters, got ${group.length}`);
  return group;
}

export function parseCommitOffset(raw: unknown): CommitOffsetRequest {
  const r = object(raw, 'CommitOffsetRequest');
  const metadata = str(r, 'metadata');
  if (Buffer.byteLength(metadata) > COMMIT_METADATA_MAX_BYTES) throw invalidArgument(`commit metadata is over ${COMMIT_METADATA_MAX_BYTES} bytes`);
  return { ...ref(r), group: parseGroup(r), offset: nonNegative(r, 'offset'), metadata };
}

export function parseFetchCommitted(raw: unknown): FetchCommittedRequest {
  const r = object(raw, 'FetchCommittedRequest');
  return { ...ref(r), group: parseGroup(r) };
}

export function parseCreateTopic(raw: unknown): CreateTopicRequest {
  const r = object(raw, 'CreateTopicRequest');
  const config = r.config ?? {};
  if (typeof config !== 'object' || config === null) throw invalidArgument('config must be a map of strings');
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(config)) {
    if (typeof v !== 'string') throw invalidArgument(`config ${k} must be a string`);
    out[k] = v;
  }
  return { name: str(r, 'name'), partitions: int(r, 'partitions'), config: out };
}

export function parseTopicName(raw: unknown): string {
  return str(object(raw, 'TopicName'), 'name');
}

export function parseEmpty(raw: unknown): void {
  object(raw, 'Empty');
}

export function parseArchive(raw: unknown): string {
  return str(object(raw, 'ArchiveRequest'), 'topic');
}

export function parseCompact(raw: unknown): string {
  return str(object(raw, 'CompactRequest'), 'topic');
}

/** TransferLeader, AddReplica, RemoveReplica: one partition and one node. */
export interface PartitionNodeRequest extends PartitionRef {
  node_id: number;
  /** 0 = the server's default. */
  timeout_ms: number;
}

/** A transfer or membership change never waits longer than this (a request asking more gets this). */
export const PARTITION_ADMIN_TIMEOUT_MAX_MS = 300_000;

export function parsePartitionNode(raw: unknown): PartitionNodeRequest {
  const r = object(raw, 'PartitionNodeRequest');
  const node_id = int(r, 'node_id');
  if (node_id <= 0) throw invalidArgument(`node_id must be a positive node id (as in --peers), got ${node_id}`);
  const topic = str(r, 'topic');
  if (topic === '') throw invalidArgument('topic is required');
  return { topic, partition: int(r, 'partition'), node_id, timeout_ms: Math.min(nonNegative(r, 'timeout_ms'), PARTITION_ADMIN_TIMEOUT_MAX_MS) };
}
