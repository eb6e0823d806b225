import type { ApiCodec } from '../protocol/api.js';
import type { KafkaContext, RequestContext } from '../context.js';
import { KafkaCode, kafkaCodeOf } from '../errors.js';
import { isEngineError } from '../../../engine/base/errors.js';

/**
 * Turns one decoded request into its response (null: send nothing, as for Produce with acks=0).
 * Handlers catch what a client can cause and answer it with a Kafka error code per topic or
 * partition; a rejection is a bug, logged, and closes the connection.
 */
export type Handler<Req, Res> = (ctx: KafkaContext, rc: RequestContext, version: number, req: Req) => Promise<Res | null>;

export interface Route<Req, Res> {
  codec: ApiCodec<Req, Res>;
  handle: Handler<Req, Res>;
}

export function route<Req, Res>(codec: ApiCodec<Req, Res>, handle: Handler<Req, Res>): Route<Req, Res> {
  return { codec, handle };
}

/** The Kafka code for an error met serving one partition; anything but an EngineError is a bug and is logged. */
export function codeFor(ctx: KafkaContext, rc: RequestContext, err: unknown, where: Record<string, unknown>): number {
  if (!isEngineError(err)) ctx.logger.error({ ...where, client: rc.header.client_id, remote: rc.remote, err: (err as Error)?.stack ?? String(err) }, 'kafka: unexpected error serving a request');
  return isEngineError(err) ? kafkaCodeOf(err) : KafkaCode.UNKNOWN_SERVER_ERROR;
}
