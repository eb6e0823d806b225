import type { ApiCodec } from './api.js';
import { ApiKey } from './api.js';

/*
 * Fetch (key 1), versions 4-11.
 *
 * Request v4:
 *   replica_id                INT32     -1 for consumers
 *   max_wait_ms               INT32
 *   min_bytes                 INT32
 *   max_bytes                 INT32
 *   isolation_level           INT8      0 read_uncommitted, 1 read_committed
 *   topics                    ARRAY of
 *     topic                   STRING
 *     partitions              ARRAY of
 *       partition             INT32
 *       fetch_offset          INT64
 *       partition_max_bytes   INT32
 * Request v5-v6: partitions gain log_start_offset INT64 (after fetch_offset)
 * Request v7-v8: session_id INT32, session_epoch INT32 after isolation_level;
 *                after topics:   forgotten_topics_data ARRAY of { topic STRING, partitions ARRAY of INT32 }
 * Request v9-v10: partitions gain current_leader_epoch INT32 (before fetch_offset)
 * Request v11: rack_id STRING at the end
 *
 * Response v4:
 *   throttle_time_ms          INT32
 *   responses                 ARRAY of
 *     topic                   STRING
 *     partitions              ARRAY of
 *       partition_index       INT32
 *       error_code            INT16
 *       high_watermark        INT64
 *       last_stable_offset    INT64
 *       aborted_transactions  NULLABLE ARRAY of { producer_id INT64, first_offset INT64 }
 *       records               RECORDS   (NULLABLE_BYTES)
 * Response v5-v6: partitions gain log_start_offset INT64 (after last_stable_offset)
 * Response v7-v10: error_code INT16, session_id INT32 after throttle_time_ms
 * Response v11: partitions gain preferred_read_replica INT32 (after aborted_transactions)
 */
export interface FetchPartition {
  partition: number;
  current_leader_epoch: number;
  fetch_offset: number;
  log_start_offset: number;
  partition_max_bytes: number;
}

export interface FetchRequest {
  replica_id: number;
  max_wait_ms: number;
  min_bytes: number;
  max_bytes: number;
  isolation_level: number;
  session_id: number;
  session_epoch: number;
  topics: Array<{ topic: string; partitions: FetchPartition[] }>;
  forgotten_topics_data: Array<{ topic: string; partitions: number[] }>;
  rack_id: string;
}

export interface AbortedTransaction {
  producer_id: number;
  first_offset: number;
}

export interface FetchPartitionResponse {
  partition_index: number;
  error_code: number;
  high_watermark: number;
  last_stable_offset: number;
  log_start_offset: number;
  aborted_transactions: AbortedTransaction[] | null;
  preferred_read_replica: number;
  records: Buffer | null;
}

export interface FetchResponse {
  throttle_time_ms: number;
  error_code: number;
  session_id: number;
  responses: Array<{ topic: string; partitions: FetchPartitionResponse[] }>;
}

export const fetch: ApiCodec<FetchRequest, FetchResponse> = {
  key: ApiKey.Fetch,
  name: 'Fetch',
  min_version: 4,
  max_version: 11,
  decodeRequest(d, v) {
    const replica_id = d.int32();
    const max_wait_ms = d.int32();
    const min_bytes = d.int32();
    const max_bytes = d.int32();
    const isolation_level = d.int8();
    const session_id = v >= 7 ? d.int32() : 0;
    const session_epoch = v >= 7 ? d.int32() : -1;
    const topics = d.array((d) => ({
      topic: d.string(),
      partitions: d.array((d) => ({
        partition: d.int32(),
        current_leader_epoch: v >= 9 ? d.int32() : -1,
        fetch_offset: d.int64(),
        log_start_offset: v >= 5 ? d.int64() : -1,
        partition_max_bytes: d.int32(),
      })),
    }));
    const forgotten_topics_data = v >= 7 ? d.array((d) => ({ topic: d.string(), partitions: d.int32Array() })) : [];
    const rack_id = v >= 11 ? d.string() : '';
    return { replica_id, max_wait_ms, min_bytes, max_bytes, isolation_level, session_id, session_epoch, topics, forgotten_topics_data, rack_id };
  },
  encodeRequest(e, v, r) {
    e.int32(r.replica_id).int32(r.max_wait_ms).int32(r.min_bytes).int32(r.max_bytes).int8(r.isolation_level);
    if (v >= 7) e.int32(r.session_id).int32(r.session_epoch);
    e.array(r.topics, (e, t) =>
      e.string(t.topic).array(t.partitions, (e, p) => {
        e.int32(p.partition);
        if (v >= 9) e.int32(p.current_leader_epoch);
        e.int64(p.fetch_offset);
        if (v >= 5) e.int64(p.log_start_offset);
        e.int32(p.partition_max_bytes);
      }),
    );
    if (v >= 7) e.array(r.forgotten_topics_data, (e, f) => e.string(f.topic).int32Array(f.partitions));
    if (v >= 11) e.string(r.rack_id);
  },
  decodeResponse(d, v) {
    const throttle_time_ms = d.int32();
    const error_code = v >= 7 ? d.int16() : 0;
    const session_id = v >= 7 ? d.int32() : 0;
    const responses = d.array((d) => ({
      topic: d.string(),
      partitions: d.array((d) => ({
        partition_index: d.int32(),
        error_code: d.int16(),
        high_watermark: d.int64(),
        last_stable_offset: d.int64(),
        log_start_offset: v >= 5 ? d.int64() : -1,
        aborted_transactions: d.nullableArray((d) => ({ producer_id: d.int64(), first_offset: d.int64() })),
        preferred_read_replica: v >= 11 ? d.int32() : -1,
        records: d.nullableBytes(),
      })),
    }));
    return { throttle_time_ms, error_code, session_id, responses };
  },
  encodeResponse(e, v, r) {
    e.int32(r.throttle_time_ms);
    if (v >= 7) e.int16(r.error_code).int32(r.session_id);
    e.array(r.responses, (e, t) =>
      e.string(t.topic).array(t.partitions, (e, p) => {
        e.int32(p.partition_index).int16(p.error_code).int64(p.high_watermark).int64(p.last_stable_offset);
        if (v >= 5) e.int64(p.log_start_offset);
        e.nullableArray(p.aborted_transactions, (e, a) => e.int64(a.producer_id).int64(a.first_offset));
        if (v >= 11) e.int32(p.preferred_read_replica);
        e.nullableBytes(p.records);
      }),
    );
  },
};
