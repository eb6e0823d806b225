/**
 * Errors that callers and users can meet. Each has a stable `code` (branch on it, never on the
 * message), a `retriable` flag, and exactly one gRPC status and one Kafka error code, kept in the
 * table below so that every edge (gRPC server, Kafka listener, CLI) maps errors the same way.
 *
 * Programmer errors (broken invariants) are not EngineErrors: they are `assert` failures and crash.
 */

export interface ErrorSpec {
  /** Class-like name shown to users, e.g. `DiskFullError`. */
  readonly name: string;
  readonly retriable: boolean;
  /** gRPC status code number (see @grpc/grpc-js `status`). */
  readonly grpc_status: number;
  /** Kafka protocol error code. */
  readonly kafka_code: number;
}

// gRPC: 3 INVALID_ARGUMENT, 5 NOT_FOUND, 6 ALREADY_EXISTS, 8 RESOURCE_EXHAUSTED,
// 9 FAILED_PRECONDITION, 11 OUT_OF_RANGE, 13 INTERNAL, 14 UNAVAILABLE, 15 DATA_LOSS.
export const ERROR_SPECS = {
  INVALID_ARGUMENT: { name: 'InvalidArgumentError', retriable: false, grpc_status: 3, kafka_code: 42 },
  INVALID_CONFIG: { name: 'InvalidConfigError', retriable: false, grpc_status: 3, kafka_code: 40 },
  INVALID_TOPIC: { name: 'InvalidTopicError', retriable: false, grpc_status: 3, kafka_code: 17 },
  INVALID_BATCH: { name: 'InvalidBatchError', retriable: false, grpc_status: 3, kafka_code: 87 },
  CORRUPT_BATCH: { name: 'CorruptBatchError', retriable: false, grpc_status: 3, kafka_code: 2 },
  BATCH_TOO_LARGE: { name: 'BatchTooLargeError', retriable: false, grpc_status: 8, kafka_code: 10 },
  UNKNOWN_TOPIC: { name: 'UnknownTopicError', retriable: false, grpc_status: 5, kafka_code: 3 },
  UNKNOWN_PARTITION: { name: 'UnknownPartitionError', retriable: false, grpc_status: 5, kafka_code: 3 },
  TOPIC_EXISTS: { name: 'TopicExistsError', retriable: false, grpc_status: 6, kafka_code: 36 },
  OFFSET_OUT_OF_RANGE: { name: 'OffsetOutOfRangeError', retriable: false, grpc_status: 11, kafka_code: 1 },
  CORRUPT_SEGMENT: { name: 'CorruptSegmentError', retriable: false, grpc_status: 15, kafka_code: 56 },
  DISK_FULL: { name: 'DiskFullError', retriable: true, grpc_status: 8, kafka_code: 56 },
  STORAGE_ERROR: { name: 'StorageError', retriable: true, grpc_status: 13, kafka_code: 56 },
  DATA_DIR_LOCKED: { name: 'DataDirLockedError', retriable: false, grpc_status: 9, kafka_code: 56 },
  CLOSED: { name: 'ClosedError', retriable: true, grpc_status: 14, kafka_code: 6 },
  NOT_LEADER: { name: 'NotLeaderError', retriable: true, grpc_status: 9, kafka_code: 6 },
  LIMIT_EXCEEDED: { name: 'LimitExceededError', retriable: true, grpc_status: 8, kafka_code: 7 },
  // A replicated append that does not continue the log exactly (kafka: OFFSET_OUT_OF_RANGE).
  OFFSET_MISMATCH: { name: 'OffsetMismatchError', retriable: false, grpc_status: 9, kafka_code: 1 },
  // Produce to a read-only relay replica (kafka: NOT_LEADER_OR_FOLLOWER).
  READ_ONLY_REPLICA: { name: 'ReadOnlyReplicaError', retriable: false, grpc_status: 9, kafka_code: 6 },
  // Idempotent producer (docs/raft.md, "Idempotent producer"). Kafka: OUT_OF_ORDER_SEQUENCE_NUMBER, INVALID_PRODUCER_EPOCH.
  OUT_OF_ORDER_SEQUENCE: { name: 'OutOfOrderSequenceError', retriable: false, grpc_status: 9, kafka_code: 45 },
  PRODUCER_FENCED: { name: 'ProducerFencedError', retriable: false, grpc_status: 9, kafka_code: 47 },
  // Raft membership and leadership (relaylog partition transfer-leader / add-replica / remove-replica).
  UNKNOWN_NODE: { name: 'UnknownNodeError', retriable: false, grpc_status: 5, kafka_code: 42 },
  NOT_A_REPLICA: { name: 'NotAReplicaError', retriable: false, grpc_status: 9, kafka_code: 9 },
  REPLICA_EXISTS: { name: 'ReplicaExistsError', retriable: false, grpc_status: 6, kafka_code: 42 },
  CONF_CHANGE_IN_PROGRESS: { name: 'ConfChangeInProgressError', retriable: true, grpc_status: 10, kafka_code: 60 },
  REPLICA_NOT_CAUGHT_UP: { name: 'ReplicaNotCaughtUpError', retriable: true, grpc_status: 4, kafka_code: 7 },
  TRANSFER_TIMEOUT: { name: 'TransferTimeoutError', retriable: true, grpc_status: 4, kafka_code: 7 },
  // Archive tier (WebHDFS or a mounted directory). 7 = gRPC PERMISSION_DENIED.
  ARCHIVE_EXISTS: { name: 'ArchiveExistsError', retriable: false, grpc_status: 6, kafka_code: 56 },
  ARCHIVE_NOT_FOUND: { name: 'ArchiveNotFoundError', retriable: false, grpc_status: 5, kafka_code: 56 },
  ARCHIVE_PERMISSION_DENIED: { name: 'ArchivePermissionDeniedError', retriable: false, grpc_status: 7, kafka_code: 56 },
  ARCHIVE_UNAVAILABLE: { name: 'ArchiveUnavailableError', retriable: true, grpc_status: 14, kafka_code: 56 },
  ARCHIVE_NOT_CONFIGURED: { name: 'ArchiveNotConfiguredError', retriable: false, grpc_status: 9, kafka_code: 56 },
  ARCHIVE_PROTOCOL_ERROR: { name: 'ArchiveProtocolError', retriable: false, grpc_status: 13, kafka_code: 56 },
} as const satisfies Record<string, ErrorSpec>;

export type ErrorCode = keyof typeof ERROR_SPECS;

export class EngineError extends Error {
  readonly code: ErrorCode;
  readonly retriable: boolean;
  readonly details: Readonly<Record<string, unknown>>;

  constructor(code: ErrorCode, message: string, details: Record<string, unknown> = {}, options?: { cause?: unknown }) {
    super(message, options);
    const spec = ERROR_SPECS[code];
    this.name = spec.name;
    this.code = code;
    this.retriable = spec.retriable;
    this.details = details;
  }

  get grpc_status(): number {
    return ERROR_SPECS[this.code].grpc_status;
  }

  get kafka_code(): number {
    return ERROR_SPECS[this.code].kafka_code;
  }
}

export function isEngineError(err: unknown, code?: ErrorCode): err is EngineError {
  return err instanceof EngineError && (code === undefined || err.code === code);
}

// Factories: one per situation, so the message a user reads is written once.

export const invalidArgument = (msg: string, details: Record<string, unknown> = {}) =>
  new EngineError('INVALID_ARGUMENT', msg, details);

export const invalidConfig = (key: string, msg: string) =>
  new EngineError('INVALID_CONFIG', `invalid config ${key}: ${msg}`, { key });

export const invalidTopic = (topic: string, why: string) =>
  new EngineError('INVALID_TOPIC', `invalid topic name ${JSON.stringify(topic)}: ${why}`, { topic });

export const invalidBatch = (why: string, details: Record<string, unknown> = {}) =>
  new EngineError('INVALID_BATCH', `invalid record batch: ${why}`, details);

export const corruptBatch = (why: string, details: Record<string, unknown> = {}) =>
  new EngineError('CORRUPT_BATCH', `corrupt record batch: ${why}`, details);

export const batchTooLarge = (size_bytes: number, max_bytes: number) =>
  new EngineError(
    'BATCH_TOO_LARGE',
    `record batch of ${size_bytes} bytes exceeds max.message.bytes=${max_bytes}`,
    { size_bytes, max_bytes },
  );

export const unknownTopic = (topic: string) =>
  new EngineError('UNKNOWN_TOPIC', `unknown topic ${JSON.stringify(topic)}`, { topic });

export const unknownPartition = (topic: string, partition: number, partitions: number) =>
  new EngineError(
    'UNKNOWN_PARTITION',
    `unknown partition ${partition} of topic ${JSON.stringify(topic)} (it has ${partitions} partition(s): 0..${partitions - 1})`,
    { topic, partition, partitions },
  );

export const topicExists = (topic: string) =>
  new EngineError('TOPIC_EXISTS', `topic ${JSON.stringify(topic)} already exists`, { topic });

export const offsetOutOfRange = (offset: number, log_start_offset: number, high_watermark: number, where = '') =>
  new EngineError(
    'OFFSET_OUT_OF_RANGE',
    `offset ${offset} is out of range${where ? ` for ${where}` : ''}: valid offsets are ${log_start_offset}..${high_watermark} ` +
      `(log start offset ${log_start_offset}, high watermark ${high_watermark})`,
    { offset, log_start_offset, high_watermark },
  );

export const corruptSegment = (file: string, position: number, why: string) =>
  new EngineError(
    'CORRUPT_SEGMENT',
    `corrupt segment ${file} at byte ${position}: ${why}. ` +
      `This is not a torn tail, so relaylog will not truncate it; run \`relaylog verify --data <dir>\` to list every fault`,
    { file, position },
  );

export const diskFull = (dir: string, free_bytes: number, floor_bytes: number) =>
  new EngineError(
    'DISK_FULL',
    `disk full: ${free_bytes} bytes free under ${dir}, below the floor of ${floor_bytes} bytes; ` +
      `appends are refused until space is freed (nothing written so far is affected)`,
    { dir, free_bytes, floor_bytes },
  );

export const storageError = (what: string, cause: unknown) =>
  new EngineError('STORAGE_ERROR', `storage error while ${what}: ${(cause as Error)?.message ?? String(cause)}`, {}, { cause });

export const dataDirLocked = (dir: string, holder_pid: number | null) =>
  new EngineError(
    'DATA_DIR_LOCKED',
    `data dir ${dir} is in use by another relaylog process${holder_pid !== null ? ` (pid ${holder_pid})` : ''}; ` +
      `stop it first or choose another --data dir`,
    { dir, holder_pid },
  );

export const closed = (what: string) => new EngineError('CLOSED', `${what} is closed`);

export const limitExceeded = (limit: string, value: number, max: number) =>
  new EngineError('LIMIT_EXCEEDED', `limit ${limit} exceeded: ${value} > ${max}`, { limit, value, max });

export const offsetMismatch = (topic: string, partition: number, expected: number, got: number) =>
  new EngineError('OFFSET_MISMATCH', `replicated batch for ${topic}/${partition} starts at offset ${got}, but the log ends at ${expected}`, { topic, partition, expected, got });

export const outOfOrderSequence = (producer_id: number, producer_epoch: number, first_seq: number, expected_seq: number) =>
  new EngineError(
    'OUT_OF_ORDER_SEQUENCE',
    `out of order sequence from producer ${producer_id} (epoch ${producer_epoch}): batch starts at sequence ${first_seq}, ` +
      `the partition expects ${expected_seq}. An earlier batch of this producer is missing: resend it first ` +
      `(a Producer does so by itself), or start a new producer id`,
    { producer_id, producer_epoch, first_seq, expected_seq },
  );

export const producerFenced = (producer_id: number, producer_epoch: number, current_epoch: number) =>
  new EngineError(
    'PRODUCER_FENCED',
    `producer ${producer_id} epoch ${producer_epoch} is fenced: the partition has seen epoch ${current_epoch} of that producer id; ` +
      `a newer instance took it over. Stop this producer (or get a new producer id)`,
    { producer_id, producer_epoch, current_epoch },
  );
