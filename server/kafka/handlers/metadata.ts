import { isEngineError } from '../../../engine/base/errors.js';
import { KafkaCode } from '../errors.js';
import { metadata, type MetadataRequest, type MetadataResponse, type MetadataTopic } from '../protocol/metadata.js';
import type { KafkaContext, RequestContext } from '../context.js';
import { codeFor, route } from './handler.js';

/**
 * On a single node (or a relay), one broker — this node, at the address clients should reconnect
 * to — leads every partition of every topic; it is the only replica and always in sync. On a Raft
 * cluster node, every node is a broker and each partition's leader is its Raft leader. Leader epochs are reported as -1
 * (unknown), so clients never try epoch validation (OffsetsForLeaderEpoch is not served).
 */
async function handleMetadata(ctx: KafkaContext, rc: RequestContext, _version: number, req: MetadataRequest): Promise<MetadataResponse> {
  const node = rc.node;
  const names = req.topics ?? ctx.store.listTopics().map((t) => t.name);
  const topics: MetadataTopic[] = [];
  for (const name of names) topics.push(await describeTopic(ctx, rc, name, req.allow_auto_topic_creation));
  const brokers = [{ node_id: node.node_id, host: node.host, port: node.port, rack: null }];
  // A cluster node lists every node; each partition's leader is its Raft leader (describeTopic).
  for (const id of ctx.cluster?.voters() ?? []) {
    const a = id === node.node_id ? null : ctx.cluster!.kafkaAddressOf(id);
    if (a) brokers.push({ node_id: id, host: a.host, port: a.port, rack: null });
  }
  return {
    throttle_time_ms: 0,
    brokers,
    cluster_id: ctx.cluster_id,
    controller_id: node.node_id,
    topics,
  };
}

async function describeTopic(ctx: KafkaContext, rc: RequestContext, name: string, allow_create: boolean): Promise<MetadataTopic> {
  const id = rc.node.node_id;
  try {
    let partitions: number;
    try {
      partitions = ctx.store.topic(name).config.partitions;
    } catch (err) {
      if (!isEngineError(err, 'UNKNOWN_TOPIC') || !allow_create || !ctx.auto_create_topics || ctx.relay) throw err;
      partitions = (await ctx.createTopic(name, {}).catch((e: unknown) => (isEngineError(e, 'TOPIC_EXISTS') ? ctx.store.topic(name) : Promise.reject(e)))).config.partitions;
      ctx.logger.info({ topic: name, client: rc.header.client_id }, 'kafka: topic auto-created by Metadata');
    }
    const cluster = ctx.cluster;
    const list = Array.from({ length: partitions }, (_, p) => {
      if (cluster === null) return { error_code: KafkaCode.NONE, partition_index: p, leader_id: id, leader_epoch: -1, replica_nodes: [id], isr_nodes: [id], offline_replicas: [] };
      const voters = [...(cluster.replicasOf?.(name, p) ?? cluster.voters())];
      const leader = cluster.leaderOf(name, p);
      // While a partition has no leader (an election), clients are told to ask again.
      return { error_code: leader > 0 ? KafkaCode.NONE : KafkaCode.LEADER_NOT_AVAILABLE, partition_index: p, leader_id: leader > 0 ? leader : -1, leader_epoch: -1, replica_nodes: voters, isr_nodes: voters, offline_replicas: [] };
    });
    return { error_code: KafkaCode.NONE, name, is_internal: false, partitions: list };
  } catch (err) {
    return { error_code: codeFor(ctx, rc, err, { api: 'Metadata', topic: name }), name, is_internal: false, partitions: [] };
  }
}

export const metadataRoute = route(metadata, handleMetadata);
