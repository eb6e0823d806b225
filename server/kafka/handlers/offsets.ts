import { KafkaCode } from '../errors.js';
import { offsetCommit, type OffsetCommitRequest, type OffsetCommitResponse } from '../protocol/offset-commit.js';
import { offsetFetch, type OffsetFetchPartition, type OffsetFetchRequest, type OffsetFetchResponse } from '../protocol/offset-fetch.js';
import type { KafkaContext, RequestContext } from '../context.js';
import { codeFor, route } from './handler.js';

/**
 * Commits go to LogStore.commitGroupOffset — the durable group offsets the gRPC API shares — once
 * the coordinator accepts the member and generation (a commit with generation -1 from outside the
 * group is accepted while the group has no members, as Kafka does). Answered once LMDB has
 * flushed the commit.
 */
async function handleOffsetCommit(ctx: KafkaContext, rc: RequestContext, _version: number, req: OffsetCommitRequest): Promise<OffsetCommitResponse> {
  const allowed = req.group_id === '' ? KafkaCode.INVALID_GROUP_ID : ctx.coordinator.commitAllowed(req.group_id, req.member_id, req.generation_id);
  const topics = req.topics.map((t) => ({
    name: t.name,
    partitions: t.partitions.map(async (p) => {
      const answer = (error_code: number) => ({ partition_index: p.partition_index, error_code });
      if (allowed !== KafkaCode.NONE) return answer(allowed);
      const metadata = p.committed_metadata ?? '';
      if (Buffer.byteLength(metadata) > ctx.limits.offset_metadata_max_bytes) return answer(KafkaCode.OFFSET_METADATA_TOO_LARGE);
      try {
        await ctx.track(ctx.store.commitGroupOffset(req.group_id, t.name, p.partition_index, p.committed_offset, metadata));
        return answer(KafkaCode.NONE);
      } catch (err) {
        return answer(codeFor(ctx, rc, err, { api: 'OffsetCommit', group: req.group_id, topic: t.name, partition: p.partition_index }));
      }
    }),
  }));
  const out: OffsetCommitResponse = { throttle_time_ms: 0, topics: [] };
  for (const t of topics) out.topics.push({ name: t.name, partitions: await Promise.all(t.partitions) });
  return out;
}

/** Offsets never committed are -1 with empty metadata. A null topic list (v2+) asks for every partition the group has committed. */
async function handleOffsetFetch(ctx: KafkaContext, rc: RequestContext, _version: number, req: OffsetFetchRequest): Promise<OffsetFetchResponse> {
  const wanted = req.topics ?? committedTopics(ctx, req.group_id);
  const topics: OffsetFetchResponse['topics'] = wanted.map((t) => ({
    name: t.name,
    partitions: t.partition_indexes.map((partition_index): OffsetFetchPartition => {
      const answer = (error_code: number, committed_offset = -1, metadata = '') => ({ partition_index, committed_offset, committed_leader_epoch: -1, metadata, error_code });
      try {
        const c = ctx.store.fetchGroupOffset(req.group_id, t.name, partition_index);
        return c ? answer(KafkaCode.NONE, c.offset, c.metadata) : answer(KafkaCode.NONE);
      } catch (err) {
        return answer(codeFor(ctx, rc, err, { api: 'OffsetFetch', group: req.group_id, topic: t.name, partition: partition_index }));
      }
    }),
  }));
  return { throttle_time_ms: 0, topics, error_code: KafkaCode.NONE };
}

function committedTopics(ctx: KafkaContext, group_id: string): Array<{ name: string; partition_indexes: number[] }> {
  const out: Array<{ name: string; partition_indexes: number[] }> = [];
  for (const info of ctx.store.listTopics()) {
    const partition_indexes: number[] = [];
    for (let p = 0; p < info.config.partitions; p++) if (ctx.store.fetchGroupOffset(group_id, info.name, p) !== null) partition_indexes.push(p);
    if (partition_indexes.length > 0) out.push({ name: info.name, partition_indexes });
  }
  return out;
}

export const offsetCommitRoute = route(offsetCommit, handleOffsetCommit);
export const offsetFetchRoute = route(offsetFetch, handleOffsetFetch);
