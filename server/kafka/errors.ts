import { isEngineError } from '../../engine/base/errors.js';

/**
 * Kafka protocol error codes used by the listener (from the Kafka protocol guide's error table).
 * Engine errors are never mapped here ad hoc: `kafkaCodeOf` reads each EngineError's `kafka_code`
 * from engine/base/errors.ts, the one table shared with the gRPC server. The codes below are for
 * refusals that belong to the Kafka protocol itself (bad acks, group membership, versions).
 */
export const KafkaCode = {
  UNKNOWN_SERVER_ERROR: -1,
  NONE: 0,
  OFFSET_OUT_OF_RANGE: 1,
  CORRUPT_MESSAGE: 2,
  UNKNOWN_TOPIC_OR_PARTITION: 3,
  LEADER_NOT_AVAILABLE: 5,
  NOT_LEADER_OR_FOLLOWER: 6,
  OFFSET_METADATA_TOO_LARGE: 12,
  COORDINATOR_NOT_AVAILABLE: 15,
  NOT_COORDINATOR: 16,
  INVALID_TOPIC_EXCEPTION: 17,
  INVALID_REQUIRED_ACKS: 21,
  ILLEGAL_GENERATION: 22,
  INCONSISTENT_GROUP_PROTOCOL: 23,
  INVALID_GROUP_ID: 24,
  UNKNOWN_MEMBER_ID: 25,
  INVALID_SESSION_TIMEOUT: 26,
  REBALANCE_IN_PROGRESS: 27,
  UNSUPPORTED_VERSION: 35,
  TOPIC_ALREADY_EXISTS: 36,
  INVALID_PARTITIONS: 37,
  INVALID_REPLICATION_FACTOR: 38,
  INVALID_REPLICA_ASSIGNMENT: 39,
  INVALID_CONFIG: 40,
  INVALID_REQUEST: 42,
  POLICY_VIOLATION: 44,
  OUT_OF_ORDER_SEQUENCE_NUMBER: 45,
  INVALID_PRODUCER_EPOCH: 47,
  TRANSACTIONAL_ID_AUTHORIZATION_FAILED: 53,
  FETCH_SESSION_ID_NOT_FOUND: 70,
  GROUP_MAX_SIZE_REACHED: 81,
} as const;

export type KafkaErrorCode = (typeof KafkaCode)[keyof typeof KafkaCode];

/** The Kafka error code for an error met while serving a request: EngineErrors by the shared table, anything else UNKNOWN_SERVER_ERROR. */
export function kafkaCodeOf(err: unknown): number {
  return isEngineError(err) ? err.kafka_code : KafkaCode.UNKNOWN_SERVER_ERROR;
}

/** Human-readable message for an error sent in a response's error_message field (where the version has one). */
export function kafkaMessageOf(err: unknown): string {
  return (err as Error)?.message ?? String(err);
}

/**
 * A request that cannot be understood: a bad frame length, an unknown API key or version, a field
 * that runs past the frame, an absurd array length. The connection that sent it is closed with a
 * log line naming `code`; the server carries on.
 */
export type MalformedCode = 'FRAME_TOO_LARGE' | 'BAD_FRAME_SIZE' | 'TRUNCATED' | 'BAD_LENGTH' | 'ARRAY_TOO_LONG' | 'TRAILING_BYTES' | 'UNKNOWN_API_KEY' | 'UNSUPPORTED_API_VERSION' | 'BAD_VALUE';

export class MalformedRequestError extends Error {
  override name = 'MalformedRequestError';
  constructor(readonly code: MalformedCode, message: string, readonly details: Readonly<Record<string, unknown>> = {}) {
    super(message);
  }
}

export const malformed = (code: MalformedCode, message: string, details: Record<string, unknown> = {}) => new MalformedRequestError(code, message, details);

export function isMalformed(err: unknown): err is MalformedRequestError {
  return err instanceof MalformedRequestError;
}
