import type { ApiCodec } from './api.js';
import { ApiKey } from './api.js';

/*
 * OffsetCommit (key 8), versions 2-7.
 *
 * Request v2-v4:
 *   group_id                  STRING
 *   generation_id             INT32     -1 with member_id "" = a commit from outside the group
 *   member_id                 STRING
 *   retention_time_ms         INT64     ignored (group offsets are kept until overwritten)
 *   topics                    ARRAY of
 *     name                    STRING
 *     partitions              ARRAY of
 *       partition_index       INT32
 *       committed_offset      INT64
 *       committed_metadata    NULLABLE_STRING
 * Request v5: retention_time_ms removed
 * Request v6: partitions gain committed_leader_epoch INT32 (after committed_offset)
 * Request v7: group_instance_id NULLABLE_STRING after member_id
 *
 * Response v2:
 *   topics                    ARRAY of
 *     name                    STRING
 *     partitions              ARRAY of
 *       partition_index       INT32
 *       error_code            INT16
 * Response v3-v7: throttle_time_ms INT32 first
 */
export interface OffsetCommitPartition {
  partition_index: number;
  committed_offset: number;
  committed_leader_epoch: number;
  committed_metadata: string | null;
}

export interface OffsetCommitRequest {
  group_id: string;
  generation_id: number;
  member_id: string;
  group_instance_id: string | null;
  retention_time_ms: number;
  topics: Array<{ name: string; partitions: OffsetCommitPartition[] }>;
}

export interface OffsetCommitResponse {
  throttle_time_ms: number;
  topics: Array<{ name: string; partitions: Array<{ partition_index: number; error_code: number }> }>;
}

export const offsetCommit: ApiCodec<OffsetCommitRequest, OffsetCommitResponse> = {
  key: ApiKey.OffsetCommit,
  name: 'OffsetCommit',
  min_version: 2,
  max_version: 7,
  decodeRequest(d, v) {
    const group_id = d.string();
    const generation_id = d.int32();
    const member_id = d.string();
    const group_instance_id = v >= 7 ? d.nullableString() : null;
    const retention_time_ms = v <= 4 ? d.int64() : -1;
    const topics = d.array((d) => ({
      name: d.string(),
      partitions: d.array((d) => ({
        partition_index: d.int32(),
        committed_offset: d.int64(),
        committed_leader_epoch: v >= 6 ? d.int32() : -1,
        committed_metadata: d.nullableString(),
      })),
    }));
    return { group_id, generation_id, member_id, group_instance_id, retention_time_ms, topics };
  },
  encodeRequest(e, v, r) {
    e.string(r.group_id).int32(r.generation_id).string(r.member_id);
    if (v >= 7) e.nullableString(r.group_instance_id);
    if (v <= 4) e.int64(r.retention_time_ms);
    e.array(r.topics, (e, t) =>
      e.string(t.name).array(t.partitions, (e, p) => {
        e.int32(p.partition_index).int64(p.committed_offset);
        if (v >= 6) e.int32(p.committed_leader_epoch);
        e.nullableString(p.committed_metadata);
      }),
    );
  },
  decodeResponse(d, v) {
    const throttle_time_ms = v >= 3 ? d.int32() : 0;
    const topics = d.array((d) => ({ name: d.string(), partitions: d.array((d) => ({ partition_index: d.int32(), error_code: d.int16() })) }));
    return { throttle_time_ms, topics };
  },
  encodeResponse(e, v, r) {
    if (v >= 3) e.int32(r.throttle_time_ms);
    e.array(r.topics, (e, t) => e.string(t.name).array(t.partitions, (e, p) => e.int32(p.partition_index).int16(p.error_code)));
  },
};
