import type { sendUnaryData, ServerUnaryCall } from '@grpc/grpc-js';
import { EngineError, isEngineError } from '../../engine/base/errors.js';
import type { RelayPartitionStatus } from '../../replication/relay/relay-runner.js';
import type { ServerMetrics } from '../metrics.js';
import type { LogStore } from '../../engine/log/log-store.js';
import type { ServerLimits } from './limits.js';
import type { TurnBudget } from './turn-budget.js';
import { shuttingDown, toServiceError } from './status.js';

export interface ServerLogger {
  debug(obj: object, msg: string): void;
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

/**
 * What every handler needs from the server, and nothing more: the store (refused once stopping),
 * the stop signal, the limits, and a way to register work that stop() must wait for.
 */

export interface ServiceContext {
  readonly limits: ServerLimits;
  readonly logger: ServerLogger;
  /** Aborted when the server begins to stop. */
  readonly stopping: AbortSignal;
  /** This node's id in its Raft cluster (0 on a single node): part of the producer ids it hands out. */
  readonly node_id: number;
  /** This node's address as clients reach it (DescribeTopic's leader). */
  address(): string;
  /** The open store; throws CLOSED (UNAVAILABLE) once the server is stopping. */
  store(): LogStore;
  /** Prometheus counters bumped per frame/response. */
  readonly metrics: ServerMetrics;
  /** Set when this server is a read-only relay replica: its upstreams and per-partition sync status. */
  readonly relay: RelayView | null;
  /** Catch-up frames' share of each event-loop turn (turn-budget.ts), one per server. */
  readonly replay_turns: TurnBudget;
  /** Registers in-flight work (an append) that stop() drains before closing the store. */
  track<T>(work: Promise<T>): Promise<T>;
}

export interface RelayView {
  readonly upstreams: readonly string[];
  readonly upstream: string;
  status(topic: string, partition: number): RelayPartitionStatus | null;
}

/** Produce, CreateTopic and DeleteTopic on a relay: refused, naming where to go instead (the origin leader when known). */
export function refuseOnRelay(ctx: ServiceContext, what: string, partition?: { topic: string; partition: number }): void {
  if (!ctx.relay) return;
  const leader = partition ? ctx.relay.status(partition.topic, partition.partition)?.origin_leader : undefined;
  const where = leader ? `send it to the origin leader ${leader}` : `send it to the origin cluster (this relay pulls from ${ctx.relay.upstreams.join(',')})`;
  throw new EngineError('READ_ONLY_REPLICA', `${what} refused: this server is a read-only relay; ${where}`, { upstreams: ctx.relay.upstreams, ...(leader ? { leader } : {}) });
}

/** Logs what is not an EngineError: those are bugs, and the client only sees INTERNAL. */
export function reportUnexpected(ctx: ServiceContext, method: string, err: unknown): void {
  if (isEngineError(err)) {
    ctx.logger.debug({ method, code: err.code, err: err.message }, 'request refused');
    return;
  }
  ctx.logger.error({ method, err: (err as Error)?.message ?? String(err), stack: (err as Error)?.stack }, 'unexpected error in request');
}

/**
 * Wraps a unary handler: refuses calls once stopping, tracks the work for draining, maps every
 * error to a status. Never throws into grpc-js, so a bad request cannot crash the server. The
 * handler's signal aborts when the client cancels or the server stops (ends long polls early).
 */
export function unary<Res>(ctx: ServiceContext, method: string, fn: (request: unknown, signal: AbortSignal) => Promise<Res> | Res) {
  return (call: ServerUnaryCall<unknown, Res>, callback: sendUnaryData<Res>): void => {
    if (ctx.stopping.aborted) {
      callback(toServiceError(shuttingDown(ctx.address())), null);
      return;
    }
    const ac = new AbortController();
    const abort = () => ac.abort();
    call.once('cancelled', abort);
    ctx.stopping.addEventListener('abort', abort, { once: true });
    const run = ctx.track((async () => fn(call.request, ac.signal))());
    run
      .then(
        (res) => callback(null, res),
        (err: unknown) => {
          reportUnexpected(ctx, method, err);
          callback(toServiceError(ctx.stopping.aborted && !isEngineError(err) ? shuttingDown(ctx.address()) : err), null);
        },
      )
      .finally(() => {
        call.off('cancelled', abort);
        ctx.stopping.removeEventListener('abort', abort);
      });
  };
}
