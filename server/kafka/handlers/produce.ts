import { EngineError, invalidBatch } from '../../../engine/base/errors.js';
import { KafkaCode } from '../errors.js';
import { produce, type ProducePartitionResponse, type ProduceRequest, type ProduceResponse } from '../protocol/produce.js';
import type { KafkaContext, RequestContext } from '../context.js';
import { codeFor, route } from './handler.js';

/** Produce v0-v2 carry message sets (magic 0/1), which relaylog does not store. */
const FIRST_SERVED_VERSION = 3;
const ACKS = new Set([0, 1, -1]);

/**
 * Appends each partition's record set as it arrived (batches are stored byte for byte; the log
 * stamps offsets). acks=1 and acks=-1 both answer once the append is durable under the topic's
 * fsync policy — a single node is every in-sync replica. acks=0 appends and answers nothing.
 * The appends of one request are enqueued before its first await, so pipelined produces on a
 * connection reach each partition in the order they were sent.
 */
async function handleProduce(ctx: KafkaContext, rc: RequestContext, version: number, req: ProduceRequest): Promise<ProduceResponse | null> {
  const refusal = version < FIRST_SERVED_VERSION ? KafkaCode.UNSUPPORTED_VERSION : !ACKS.has(req.acks) ? KafkaCode.INVALID_REQUIRED_ACKS : null;
  const relay_refusal = ctx.relay ? new EngineError('READ_ONLY_REPLICA', `produce refused: this server is a read-only relay; send it to the origin cluster (this relay pulls from ${ctx.relay.upstreams.join(',')})`) : null;
  const responses = req.topic_data.map((t) => ({
    name: t.name,
    partition_responses: t.partition_data.map(async (p): Promise<ProducePartitionResponse> => {
      const answer = (error_code: number, base_offset = -1, log_start_offset = -1) => ({ index: p.index, error_code, base_offset, log_append_time_ms: -1, log_start_offset });
      if (refusal !== null) return answer(refusal);
      try {
        if (relay_refusal) throw relay_refusal;
        const log = ctx.store.partition(t.name, p.index);
        if (p.records === null || p.records.length === 0) throw invalidBatch('produce request carries no records');
        ctx.noteAppend();
        const r = await ctx.track(log.append(p.records));
        return answer(KafkaCode.NONE, r.base_offset, log.logStartOffset);
      } catch (err) {
        return answer(codeFor(ctx, rc, err, { api: 'Produce', topic: t.name, partition: p.index }));
      }
    }),
  }));
  const out: ProduceResponse = { responses: [], throttle_time_ms: 0 };
  for (const t of responses) out.responses.push({ name: t.name, partition_responses: await Promise.all(t.partition_responses) });
  return req.acks === 0 ? null : out;
}

export const produceRoute = route(produce, handleProduce);
