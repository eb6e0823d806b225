import type { ApiCodec } from './api.js';
import { ApiKey } from './api.js';

/*
 * CreateTopics (key 19), versions 0-4.
 *
 * Request v0:
 *   topics                    ARRAY of
 *     name                    STRING
 *     num_partitions          INT32     -1 = the broker's default
 *     replication_factor      INT16     -1 = the broker's default
 *     assignments             ARRAY of
 *       partition_index       INT32
 *       broker_ids            ARRAY of INT32
 *     configs                 ARRAY of
 *       name                  STRING
 *       value                 NULLABLE_STRING
 *   timeout_ms                INT32
 * Request v1-v4: as v0, then
 *   validate_only             BOOLEAN
 *
 * Response v0:
 *   topics                    ARRAY of
 *     name                    STRING
 *     error_code              INT16
 * Response v1: topics gain error_message NULLABLE_STRING (after error_code)
 * Response v2-v4: throttle_time_ms INT32 first
 */
export interface CreatableTopic {
  name: string;
  num_partitions: number;
  replication_factor: number;
  assignments: Array<{ partition_index: number; broker_ids: number[] }>;
  configs: Array<{ name: string; value: string | null }>;
}

export interface CreateTopicsRequest {
  topics: CreatableTopic[];
  timeout_ms: number;
  validate_only: boolean;
}

export interface CreateTopicsResponse {
  throttle_time_ms: number;
  topics: Array<{ name: string; error_code: number; error_message: string | null }>;
}

export const createTopics: ApiCodec<CreateTopicsRequest, CreateTopicsResponse> = {
  key: ApiKey.CreateTopics,
  name: 'CreateTopics',
  min_version: 0,
  max_version: 4,
  decodeRequest(d, v) {
    const topics = d.array((d) => ({
      name: d.string(),
      num_partitions: d.int32(),
      replication_factor: d.int16(),
      assignments: d.array((d) => ({ partition_index: d.int32(), broker_ids: d.int32Array() })),
      configs: d.array((d) => ({ name: d.string(), value: d.nullableString() })),
    }));
    const timeout_ms = d.int32();
    return { topics, timeout_ms, validate_only: v >= 1 ? d.bool() : false };
  },
  encodeRequest(e, v, r) {
    e.array(r.topics, (e, t) => {
      e.string(t.name).int32(t.num_partitions).int16(t.replication_factor);
      e.array(t.assignments, (e, a) => e.int32(a.partition_index).int32Array(a.broker_ids));
      e.array(t.configs, (e, c) => e.string(c.name).nullableString(c.value));
    });
    e.int32(r.timeout_ms);
    if (v >= 1) e.bool(r.validate_only);
  },
  decodeResponse(d, v) {
    const throttle_time_ms = v >= 2 ? d.int32() : 0;
    const topics = d.array((d) => ({ name: d.string(), error_code: d.int16(), error_message: v >= 1 ? d.nullableString() : null }));
    return { throttle_time_ms, topics };
  },
  encodeResponse(e, v, r) {
    if (v >= 2) e.int32(r.throttle_time_ms);
    e.array(r.topics, (e, t) => {
      e.string(t.name).int16(t.error_code);
      if (v >= 1) e.nullableString(t.error_message);
    });
  },
};
