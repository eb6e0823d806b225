import { Metadata, status, type ServiceError } from '@grpc/grpc-js';
import { EngineError, isEngineError } from '../../engine/base/errors.js';

/** The trailer that carries an EngineError's stable code, so clients branch on the code and not the message. */
export const CODE_TRAILER = 'relaylog-code';
/** NOT_LEADER on a cluster node: HOST:PORT of the partition's leader, when known (the client follows it). */
export const LEADER_TRAILER = 'relaylog-leader';

/**
 * Every error leaves the server as a gRPC status with a message a person can act on. EngineErrors
 * carry their own status (engine/base/errors.ts holds the one mapping table); anything else is a
 * bug, sent as INTERNAL (and logged by the caller).
 */
export function toServiceError(err: unknown): Partial<ServiceError> & { code: number; details: string } {
  const metadata = new Metadata();
  if (isEngineError(err)) {
    metadata.set(CODE_TRAILER, err.code);
    if (err.code === 'NOT_LEADER' && typeof err.details.leader === 'string' && err.details.leader !== '') metadata.set(LEADER_TRAILER, err.details.leader);
    return { code: err.grpc_status, details: err.message, metadata, message: err.message };
  }
  const details = `internal error: ${(err as Error)?.message ?? String(err)}`;
  return { code: status.INTERNAL, details, metadata, message: details };
}

/** The error every call gets once the server has begun to stop (UNAVAILABLE, retriable). */
export const shuttingDown = (address: string): EngineError =>
  new EngineError('CLOSED', `relaylog server ${address} is shutting down; retry once it is back (or on another node)`);
