import type { ApiCodec } from './api.js';
import { ApiKey } from './api.js';
import type { Decoder } from './decoder.js';
import type { Encoder } from './encoder.js';

/*
 * OffsetFetch (key 9), versions 1-5.
 *
 * Request v1:
 *   group_id                  STRING
 *   topics                    ARRAY of
 *     name                    STRING
 *     partition_indexes       ARRAY of INT32
 * Request v2-v5: topics is a NULLABLE ARRAY (null = every partition the group has committed)
 *
 * Response v1:
 *   topics                    ARRAY of
 *     name                    STRING
 *     partitions              ARRAY of
 *       partition_index       INT32
 *       committed_offset      INT64     -1 = nothing committed
 *       metadata              NULLABLE_STRING
 *       error_code            INT16
 * Response v2: as v1, then error_code INT16 (the group's, at the end)
 * Response v3-v4: throttle_time_ms INT32 first
 * Response v5: partitions gain committed_leader_epoch INT32 (after committed_offset)
 */
export interface OffsetFetchRequest {
  group_id: string;
  topics: Array<{ name: string; partition_indexes: number[] }> | null;
}

export interface OffsetFetchPartition {
  partition_index: number;
  committed_offset: number;
  committed_leader_epoch: number;
  metadata: string | null;
  error_code: number;
}

export interface OffsetFetchResponse {
  throttle_time_ms: number;
  topics: Array<{ name: string; partitions: OffsetFetchPartition[] }>;
  error_code: number;
}

export const offsetFetch: ApiCodec<OffsetFetchRequest, OffsetFetchResponse> = {
  key: ApiKey.OffsetFetch,
  name: 'OffsetFetch',
  min_version: 1,
  max_version: 5,
  decodeRequest(d, v) {
    const group_id = d.string();
    const topic = (d: Decoder) => ({ name: d.string(), partition_indexes: d.int32Array() });
    return { group_id, topics: v >= 2 ? d.nullableArray(topic) : d.array(topic) };
  },
  encodeRequest(e, v, r) {
    e.string(r.group_id);
    const topic = (e: Encoder, t: { name: string; partition_indexes: number[] }) => e.string(t.name).int32Array(t.partition_indexes);
    if (v >= 2) e.nullableArray(r.topics, topic);
    else e.array(r.topics ?? [], topic);
  },
  decodeResponse(d, v) {
    const throttle_time_ms = v >= 3 ? d.int32() : 0;
    const topics = d.array((d) => ({
      name: d.string(),
      partitions: d.array((d) => ({
        partition_index: d.int32(),
        committed_offset: d.int64(),
        committed_leader_epoch: v >= 5 ? d.int32() : -1,
        metadata: d.nullableString(),
        error_code: d.int16(),
      })),
    }));
    return { throttle_time_ms, topics, error_code: v >= 2 ? d.int16() : 0 };
  },
  encodeResponse(e, v, r) {
    if (v >= 3) e.int32(r.throttle_time_ms);
    e.array(r.topics, (e, t) =>
      e.string(t.name).array(t.partitions, (e, p) => {
        e.int32(p.partition_index).int64(p.committed_offset);
        if (v >= 5) e.int32(p.committed_leader_epoch);
        e.nullableString(p.metadata).int16(p.error_code);
      }),
    );
    if (v >= 2) e.int16(r.error_code);
  },
};
