import { Metadata, status, type ServiceError } from '@grpc/grpc-js';
import { ERROR_SPECS, EngineError, type ErrorCode } from '../engine/base/errors.js';

/** The trailer in which the server sends an EngineError's stable code (server/rpc/status.ts). */
const CODE_TRAILER = 'relaylog-code';
/** NOT_LEADER from a cluster node: the partition leader's HOST:PORT, when the node knows it. */
const LEADER_TRAILER = 'relaylog-leader';

const STATUS_NAMES = Object.fromEntries(Object.entries(status).filter(([, v]) => typeof v === 'number').map(([k, v]) => [v, k])) as Record<number, string>;

/**
 * A failed call that the server did not explain with an EngineError code: the server could not be
 * reached, a deadline passed, or something internal. `code` is the gRPC status name
 * (`UNAVAILABLE`, `DEADLINE_EXCEEDED`, `INTERNAL` ...); only UNAVAILABLE is retriable.
 */
export class RpcError extends Error {
  readonly retriable: boolean;
  constructor(readonly code: string, readonly grpc_status: number, message: string, retriable = grpc_status === status.UNAVAILABLE) {
    super(message);
    this.name = 'RpcError';
    this.retriable = retriable;
  }
}

const isErrorCode = (c: unknown): c is ErrorCode => typeof c === 'string' && Object.hasOwn(ERROR_SPECS, c);

/**
 * A gRPC error as what callers branch on: an EngineError with the server's code when it sent one
 * (OFFSET_OUT_OF_RANGE, UNKNOWN_TOPIC ...), else an RpcError named after the status.
 */
export function fromServiceError(err: ServiceError, address: string): EngineError | RpcError {
  const code = err.metadata instanceof Metadata ? err.metadata.get(CODE_TRAILER)[0] : undefined;
  const details = err.details || err.message;
  if (isErrorCode(code)) {
    const leader = err.metadata instanceof Metadata ? err.metadata.get(LEADER_TRAILER)[0] : undefined;
    return new EngineError(code, details, typeof leader === 'string' && leader !== '' ? { leader } : {});
  }
  const name = STATUS_NAMES[err.code] ?? `STATUS_${err.code}`;
  // grpc-js appends a resolver note to connection failures that says nothing to a person.
  if (err.code === status.UNAVAILABLE) return new RpcError(name, err.code, `cannot reach relaylog server at ${address}: ${details.replace(/\.? ?Resolution note:.*$/s, '')}`);
  if (err.code === status.DEADLINE_EXCEEDED) return new RpcError(name, err.code, `relaylog server at ${address} did not answer in time: ${details}`);
  return new RpcError(name, err.code, `${name}: ${details}`);
}

/** True for errors worth retrying (a full disk, a stopping server, a lost connection). */
export const isRetriable = (err: unknown): boolean => (err as { retriable?: unknown } | null)?.retriable === true;
