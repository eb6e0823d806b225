import type { ApiCodec } from './api.js';
import { ApiKey } from './api.js';

/*
 * ListOffsets (key 2), versions 1-3.
 *
 * Request v1:
 *   replica_id                INT32     -1 for consumers
 *   topics                    ARRAY of
 *     name                    STRING
 *     partitions              ARRAY of
 *       partition_index       INT32
 *       timestamp             INT64     -1 latest, -2 earliest, else epoch ms
 * Request v2-v3: isolation_level INT8 after replica_id
 *
 * Response v1:
 *   topics                    ARRAY of
 *     name                    STRING
 *     partitions              ARRAY of
 *       partition_index       INT32
 *       error_code            INT16
 *       timestamp             INT64     the found record's timestamp, -1 for latest/earliest/none
 *       offset                INT64     -1 when no record is that new
 * Response v2-v3: throttle_time_ms INT32 first
 */
export const LATEST_TIMESTAMP = -1;
export const EARLIEST_TIMESTAMP = -2;

export interface ListOffsetsRequest {
  replica_id: number;
  isolation_level: number;
  topics: Array<{ name: string; partitions: Array<{ partition_index: number; timestamp: number }> }>;
}

export interface ListOffsetsPartitionResponse {
  partition_index: number;
  error_code: number;
  timestamp: number;
  offset: number;
}

export interface ListOffsetsResponse {
  throttle_time_ms: number;
  topics: Array<{ name: string; partitions: ListOffsetsPartitionResponse[] }>;
}

export const listOffsets: ApiCodec<ListOffsetsRequest, ListOffsetsResponse> = {
  key: ApiKey.ListOffsets,
  name: 'ListOffsets',
  min_version: 1,
  max_version: 3,
  decodeRequest(d, v) {
    const replica_id = d.int32();
    const isolation_level = v >= 2 ? d.int8() : 0;
    const topics = d.array((d) => ({ name: d.string(), partitions: d.array((d) => ({ partition_index: d.int32(), timestamp: d.int64() })) }));
    return { replica_id, isolation_level, topics };
  },
  encodeRequest(e, v, r) {
    e.int32(r.replica_id);
    if (v >= 2) e.int8(r.isolation_level);
    e.array(r.topics, (e, t) => e.string(t.name).array(t.partitions, (e, p) => e.int32(p.partition_index).int64(p.timestamp)));
  },
  decodeResponse(d, v) {
    const throttle_time_ms = v >= 2 ? d.int32() : 0;
    const topics = d.array((d) => ({
      name: d.string(),
      partitions: d.array((d) => ({ partition_index: d.int32(), error_code: d.int16(), timestamp: d.int64(), offset: d.int64() })),
    }));
    return { throttle_time_ms, topics };
  },
  encodeResponse(e, v, r) {
    if (v >= 2) e.int32(r.throttle_time_ms);
    e.array(r.topics, (e, t) => e.string(t.name).array(t.partitions, (e, p) => e.int32(p.partition_index).int16(p.error_code).int64(p.timestamp).int64(p.offset)));
  },
};
