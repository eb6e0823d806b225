import type { UntypedServiceImplementation } from '@grpc/grpc-js';
import type { TopicInfo } from '../../engine/log/types.js';
import { parseTopicConfig, topicConfigToKafka } from '../../engine/log/topic-config.js';
import { EngineError, invalidArgument } from '../../engine/base/errors.js';
import { refuseOnRelay, unary, type ServiceContext } from './context.js';
import type { RelayPartitionStatus } from '../../replication/relay/relay-runner.js';
import { parseArchive, parseCompact, parseCreateTopic, parseEmpty, parsePartitionNode, parseTopicName } from './requests.js';
import type { ClusterNode } from '../../replication/raft/node/cluster-node.js';
import type { MembershipResult } from '../../replication/raft/node/replica-admin.js';

/**
 * Topic config and, per partition, its offsets and bytes per tier, and its leader: this node on a
 * single node; on a cluster node, the Raft leader it knows, with the term and (on the leader) each
 * member's progress.
 */
function describe(ctx: ServiceContext, info: TopicInfo, cluster: ClusterNode | null = null) {
  return {
    name: info.name,
    created_ms: info.created_ms,
    config: topicConfigToKafka(info.config),
    partitions: ctx.store().partitions(info.name).map((p) => {
      const s = p.stats();
      return {
        partition: s.partition,
        log_start_offset: s.log_start_offset,
        high_watermark: s.high_watermark,
        log_end_offset: s.log_end_offset,
        memory_bytes: s.memory_bytes,
        ssd_bytes: s.size_bytes,
        archive_bytes: s.archive_bytes,
        // On a relay: the origin's leader as its upstream reports it (where produce must go).
        leader: cluster ? clusterLeader(cluster, info.name, s.partition) : ctx.relay ? (ctx.relay.status(info.name, s.partition)?.origin_leader ?? '') : ctx.address(),
        segment_count: s.segment_count,
        archived_segment_count: s.archived_segment_count,
        ...relayFields(ctx.relay?.status(info.name, s.partition) ?? null),
        ...(cluster ? raftFields(cluster, info.name, s.partition) : {}),
      };
    }),
  };
}

export function adminService(ctx: ServiceContext, cluster: ClusterNode | null = null): UntypedServiceImplementation {
  return {
    CreateTopic: unary(ctx, 'CreateTopic', async (raw) => {
      const req = parseCreateTopic(raw);
      refuseOnRelay(ctx, 'CreateTopic');
      const config = parseTopicConfig(req.config);
      const want = req.partitions > 0 ? { ...config, partitions: req.partitions } : config;
      // A cluster node creates the topic on every node (forwarded with the same incarnation).
      const info = cluster ? await cluster.createTopic(req.name, want) : await ctx.store().createTopic(req.name, want);
      return describe(ctx, info, cluster);
    }),
    DeleteTopic: unary(ctx, 'DeleteTopic', async (raw) => {
      const name = parseTopicName(raw);
      refuseOnRelay(ctx, 'DeleteTopic');
      if (cluster) await cluster.deleteTopic(name);
      else await ctx.store().deleteTopic(name);
      return {};
    }),
    ListTopics: unary(ctx, 'ListTopics', (raw) => {
      parseEmpty(raw);
      return { topics: ctx.store().listTopics().map((t) => describe(ctx, t, cluster)) };
    }),
    DescribeTopic: unary(ctx, 'DescribeTopic', (raw) => describe(ctx, ctx.store().topic(parseTopicName(raw)), cluster)),
    Compact: unary(ctx, 'Compact', async (raw) => {
      const topic = parseCompact(raw);
      if (topic) {
        const info = ctx.store().topic(topic); // UNKNOWN_TOPIC if there is none
        if (info.config.cleanup_policy !== 'compact') throw invalidArgument(`topic ${JSON.stringify(topic)} has cleanup.policy=${info.config.cleanup_policy}; only compacted topics are compacted`);
      }
      return ctx.store().compact(topic || undefined);
    }),
    TransferLeader: unary(ctx, 'TransferLeader', async (raw) => {
      const req = parsePartitionNode(raw);
      const c = requireCluster(cluster, 'TransferLeader');
      return membership(c, await c.transferLeader(req.topic, req.partition, req.node_id, ...timeout(req.timeout_ms)));
    }),
    AddReplica: unary(ctx, 'AddReplica', async (raw) => {
      const req = parsePartitionNode(raw);
      const c = requireCluster(cluster, 'AddReplica');
      return membership(c, await c.addReplica(req.topic, req.partition, req.node_id, ...timeout(req.timeout_ms)));
    }),
    RemoveReplica: unary(ctx, 'RemoveReplica', async (raw) => {
      const req = parsePartitionNode(raw);
      const c = requireCluster(cluster, 'RemoveReplica');
      return membership(c, await c.removeReplica(req.topic, req.partition, req.node_id, ...timeout(req.timeout_ms)));
    }),
    Archive: unary(ctx, 'Archive', async (raw) => {
      const topic = parseArchive(raw);
      const store = ctx.store();
      const archive = store.archive;
      if (!archive) throw noArchive();
      if (topic) store.topic(topic); // UNKNOWN_TOPIC if there is none
      const r = await store.archiveAndRetain(undefined, topic || undefined);
      const m = archive.metrics;
      return {
        archive_url: archive.url,
        ...r,
        uploads_total: m.uploads,
        upload_failures_total: m.upload_failures,
        uploaded_bytes_total: m.uploaded_bytes,
        last_error: m.last_error,
      };
    }),
  };
}

const timeout = (ms: number): [] | [number] => (ms > 0 ? [ms] : []);

function requireCluster(cluster: ClusterNode | null, what: string): ClusterNode {
  if (cluster === null) throw new EngineError('INVALID_ARGUMENT', `${what} is for cluster nodes (relaylog serve --node-id N --peers ...); this server is a single node`);
  return cluster;
}

function membership(cluster: ClusterNode, m: MembershipResult) {
  return { leader_id: m.leader_id, leader: m.leader_id !== 0 ? cluster.addressOf(m.leader_id) : '', voters: m.voters, learners: m.learners, raft_term: m.term };
}

const noArchive = () =>
  new EngineError('ARCHIVE_NOT_CONFIGURED', 'this server has no archive tier: start it with --archive webhdfs://host:port/path or file:///path');

/** HOST:PORT of the partition's Raft leader as this node knows it ('' while unknown). */
function clusterLeader(cluster: ClusterNode, topic: string, partition: number): string {
  const st = cluster.status(topic, partition);
  return st && st.leader_id !== 0 ? cluster.addressOf(st.leader_id) : '';
}

/** A cluster node's partitions: Raft leader, term, role, indexes, and on the leader each member's progress. */
function raftFields(cluster: ClusterNode, topic: string, partition: number) {
  const st = cluster.status(topic, partition);
  if (!st) return {};
  return {
    leader_id: st.leader_id,
    raft_term: st.term,
    raft_role: st.role,
    commit_index: st.commit_index,
    last_index: st.last_index,
    voters: st.voters,
    learners: st.learners,
    replicas: st.replicas.map((r) => ({
      node_id: r.node_id,
      address: cluster.addressOf(r.node_id),
      match_index: r.match_index,
      lag_entries: Math.max(0, st.last_index - r.match_index),
      state: r.state,
      learner: r.is_learner,
    })),
  };
}

/** A relay's partitions say where they pull from and how far behind they are. */
function relayFields(s: RelayPartitionStatus | null) {
  if (!s) return {};
  return {
    upstream: s.upstream,
    relay_state: s.state,
    relay_detail: s.detail,
    upstream_high_watermark: s.upstream_high_watermark,
    lag_offsets: s.lag_offsets,
    lag_ms: s.lag_ms,
    relay_bytes_in: s.bytes_in,
  };
}
