import { allocateProducerId } from '../../rpc/producer-ids.js';
import { KafkaCode } from '../errors.js';
import { initProducerId, type InitProducerIdRequest, type InitProducerIdResponse } from '../protocol/init-producer-id.js';
import type { KafkaContext, RequestContext } from '../context.js';
import { codeFor, route } from './handler.js';

/**
 * An idempotent producer's id: the same allocation as the gRPC InitProducerId (node id × 2^40 +
 * a durable counter), so ids from both listeners never collide. Produce then checks sequences per
 * partition (docs/raft.md, "Idempotent producer"). Transactional producers (a transactional id)
 * are refused: relaylog has no transaction coordinator.
 */
async function handleInitProducerId(ctx: KafkaContext, rc: RequestContext, _version: number, req: InitProducerIdRequest): Promise<InitProducerIdResponse> {
  const answer = (error_code: number, producer_id = -1, producer_epoch = -1) => ({ throttle_time_ms: 0, error_code, producer_id, producer_epoch });
  if (req.transactional_id !== null) {
    ctx.logger.warn({ client: rc.header.client_id, remote: rc.remote, transactional_id: req.transactional_id }, 'kafka: transactions are not served (InitProducerId with a transactional.id); use an idempotent producer without transactional.id');
    return answer(KafkaCode.TRANSACTIONAL_ID_AUTHORIZATION_FAILED);
  }
  if (ctx.relay) return answer(KafkaCode.NOT_LEADER_OR_FOLLOWER);
  try {
    const id = allocateProducerId(ctx.store.catalog, rc.node.node_id);
    return answer(KafkaCode.NONE, id.producer_id, id.producer_epoch);
  } catch (err) {
    return answer(codeFor(ctx, rc, err, { api: 'InitProducerId' }));
  }
}

export const initProducerIdRoute = route(initProducerId, handleInitProducerId);
