import { EngineError, invalidArgument } from '../../engine/base/errors.js';
import type { Catalog } from '../../engine/catalog/catalog.js';
import { PRODUCER_ID_COUNTER_SPAN } from '../../engine/log/producer-state.js';

/**
 * Producer ids for idempotent producers (Kafka's InitProducerId): `node_id × 2^40 + n`, where n
 * is a counter in the node's own LMDB catalog (`meta.producer_id_next`, bumped by a synchronous
 * commit before the id leaves). Unique across a cluster without any coordination: no two nodes
 * share a node id, and a node never hands out the same n twice, even after a crash. A single node
 * is node 0. Ids stay below 2^52, exact as JS numbers, positive as Kafka's int64. A catalog
 * rebuilt from the segments restarts the counter above every id they remember (LogStore).
 */
export const PRODUCER_ID_NODE_MAX = 4095;
const COUNTER_SPAN = PRODUCER_ID_COUNTER_SPAN;

export function allocateProducerId(catalog: Catalog, node_id: number): { producer_id: number; producer_epoch: number } {
  if (!Number.isSafeInteger(node_id) || node_id < 0 || node_id > PRODUCER_ID_NODE_MAX) {
    throw invalidArgument(`idempotent producers need node ids from 1 to ${PRODUCER_ID_NODE_MAX} (this node is ${node_id}); restart the cluster with smaller --node-id / --peers ids`);
  }
  const n = catalog.allocateProducerId();
  if (n >= COUNTER_SPAN) throw new EngineError('LIMIT_EXCEEDED', `node ${node_id} has handed out all of its ${COUNTER_SPAN} producer ids`, { node_id });
  return { producer_id: node_id * COUNTER_SPAN + n, producer_epoch: 0 };
}
