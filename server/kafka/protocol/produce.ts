import type { ApiCodec } from './api.js';
import { ApiKey } from './api.js';

/*
 * Produce (key 0), versions 0-7 advertised; 3-7 carry RecordBatch v2 (magic 2) and are served,
 * v0-v2 (message sets, magic 0/1) are decoded only to answer each partition with error 35.
 *
 * Request v0-v2:
 *   acks                      INT16     0 none, 1 leader, -1 all in-sync replicas
 *   timeout_ms                INT32
 *   topic_data                ARRAY of
 *     name                    STRING
 *     partition_data          ARRAY of
 *       index                 INT32
 *       records               RECORDS   (NULLABLE_BYTES: concatenated batches)
 * Request v3-v7: transactional_id NULLABLE_STRING first, then as v0.
 *
 * Response v0:
 *   responses                 ARRAY of
 *     name                    STRING
 *     partition_responses     ARRAY of
 *       index                 INT32
 *       error_code            INT16
 *       base_offset           INT64
 * Response v1: as v0, then throttle_time_ms INT32 (at the end)
 * Response v2-v4: partition_responses gain log_append_time_ms INT64 (after base_offset)
 * Response v5-v7: partition_responses gain log_start_offset INT64 (after log_append_time_ms)
 *
 * acks = 0: the broker sends no response at all.
 */
export interface ProducePartitionData {
  index: number;
  records: Buffer | null;
}

export interface ProduceTopicData {
  name: string;
  partition_data: ProducePartitionData[];
}

export interface ProduceRequest {
  transactional_id: string | null;
  acks: number;
  timeout_ms: number;
  topic_data: ProduceTopicData[];
}

export interface ProducePartitionResponse {
  index: number;
  error_code: number;
  base_offset: number;
  log_append_time_ms: number;
  log_start_offset: number;
}

export interface ProduceResponse {
  responses: Array<{ name: string; partition_responses: ProducePartitionResponse[] }>;
  throttle_time_ms: number;
}

export const produce: ApiCodec<ProduceRequest, ProduceResponse> = {
  key: ApiKey.Produce,
  name: 'Produce',
  min_version: 0,
  max_version: 7,
  decodeRequest(d, v) {
    const transactional_id = v >= 3 ? d.nullableString() : null;
    const acks = d.int16();
    const timeout_ms = d.int32();
    const topic_data = d.array((d) => ({ name: d.string(), partition_data: d.array((d) => ({ index: d.int32(), records: d.nullableBytes() })) }));
    return { transactional_id, acks, timeout_ms, topic_data };
  },
  encodeRequest(e, v, r) {
    if (v >= 3) e.nullableString(r.transactional_id);
    e.int16(r.acks).int32(r.timeout_ms);
    e.array(r.topic_data, (e, t) => e.string(t.name).array(t.partition_data, (e, p) => e.int32(p.index).nullableBytes(p.records)));
  },
  decodeResponse(d, v) {
    const responses = d.array((d) => ({
      name: d.string(),
      partition_responses: d.array((d) => ({
        index: d.int32(),
        error_code: d.int16(),
        base_offset: d.int64(),
        log_append_time_ms: v >= 2 ? d.int64() : -1,
        log_start_offset: v >= 5 ? d.int64() : -1,
      })),
    }));
    return { responses, throttle_time_ms: v >= 1 ? d.int32() : 0 };
  },
  encodeResponse(e, v, r) {
    e.array(r.responses, (e, t) =>
      e.string(t.name).array(t.partition_responses, (e, p) => {
        e.int32(p.index).int16(p.error_code).int64(p.base_offset);
        if (v >= 2) e.int64(p.log_append_time_ms);
        if (v >= 5) e.int64(p.log_start_offset);
      }),
    );
    if (v >= 1) e.int32(r.throttle_time_ms);
  },
};
