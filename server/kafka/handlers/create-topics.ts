import { EngineError, isEngineError, topicExists } from '../../../engine/base/errors.js';
import { parseTopicConfig, validateTopicName } from '../../../engine/log/topic-config.js';
import { KafkaCode, kafkaMessageOf } from '../errors.js';
import { createTopics, type CreatableTopic, type CreateTopicsRequest, type CreateTopicsResponse } from '../protocol/create-topics.js';
import type { KafkaContext, RequestContext } from '../context.js';
import { codeFor, route } from './handler.js';

type TopicResult = CreateTopicsResponse['topics'][number];

/**
 * Creates topics with Kafka's config keys (parseTopicConfig: the same keys `relaylog topic create
 * --config` takes). A single node holds one replica: replication factor -1 or 1, and explicit
 * assignments may only name this node. validate_only checks everything and creates nothing.
 */
async function handleCreateTopics(ctx: KafkaContext, rc: RequestContext, _version: number, req: CreateTopicsRequest): Promise<CreateTopicsResponse> {
  const counts = new Map<string, number>();
  for (const t of req.topics) counts.set(t.name, (counts.get(t.name) ?? 0) + 1);
  const topics: TopicResult[] = [];
  for (const t of req.topics) {
    const ok = (): TopicResult => ({ name: t.name, error_code: KafkaCode.NONE, error_message: null });
    const fail = (error_code: number, error_message: string): TopicResult => ({ name: t.name, error_code, error_message });
    if ((counts.get(t.name) ?? 0) > 1) {
      topics.push(fail(KafkaCode.INVALID_REQUEST, `topic ${JSON.stringify(t.name)} appears more than once in the request`));
      continue;
    }
    try {
      if (ctx.relay) throw new EngineError('READ_ONLY_REPLICA', `CreateTopics refused: this server is a read-only relay; create topics on the origin cluster (this relay pulls from ${ctx.relay.upstreams.join(',')})`);
      const shape = checkShape(t, rc.node.node_id);
      if (shape) {
        topics.push(fail(shape.code, shape.message));
        continue;
      }
      validateTopicName(t.name);
      const config = parseTopicConfig(Object.fromEntries(t.configs.filter((c) => c.value !== null).map((c) => [c.name, c.value!])));
      const partitions = t.assignments.length > 0 ? t.assignments.length : t.num_partitions > 0 ? t.num_partitions : undefined;
      if (req.validate_only) {
        if (ctx.store.listTopics().some((x) => x.name === t.name)) throw topicExists(t.name);
        topics.push(ok());
        continue;
      }
      await ctx.createTopic(t.name, { ...config, ...(partitions !== undefined ? { partitions } : {}) });
      ctx.logger.info({ topic: t.name, partitions: ctx.store.topic(t.name).config.partitions, client: rc.header.client_id }, 'kafka: topic created');
      topics.push(ok());
    } catch (err) {
      topics.push(fail(codeFor(ctx, rc, err, { api: 'CreateTopics', topic: t.name }), isEngineError(err) ? kafkaMessageOf(err) : 'internal error'));
    }
  }
  return { throttle_time_ms: 0, topics };
}

/** Refusals that belong to the Kafka request's shape rather than to the engine. */
function checkShape(t: CreatableTopic, node_id: number): { code: number; message: string } | null {
  if (t.replication_factor !== -1 && t.replication_factor !== 1 && t.assignments.length === 0) {
    return { code: KafkaCode.INVALID_REPLICATION_FACTOR, message: `replication factor ${t.replication_factor} is not possible on a single relaylog node: use 1 or -1` };
  }
  if (t.assignments.length > 0) {
    if (t.num_partitions !== -1 || t.replication_factor !== -1) return { code: KafkaCode.INVALID_REQUEST, message: 'with explicit assignments, num_partitions and replication_factor must be -1' };
    const sorted = t.assignments.map((a) => a.partition_index).sort((a, b) => a - b);
    if (sorted.some((p, i) => p !== i)) return { code: KafkaCode.INVALID_REPLICA_ASSIGNMENT, message: 'assignments must cover partitions 0..n-1 exactly once' };
    if (t.assignments.some((a) => a.broker_ids.length !== 1 || a.broker_ids[0] !== node_id)) return { code: KafkaCode.INVALID_REPLICA_ASSIGNMENT, message: `every partition must be assigned to this node (${node_id}) alone` };
    return null;
  }
  if (t.num_partitions === 0 || t.num_partitions < -1) return { code: KafkaCode.INVALID_PARTITIONS, message: `number of partitions ${t.num_partitions} must be positive (or -1 for the default)` };
  return null;
}

export const createTopicsRoute = route(createTopics, handleCreateTopics);
