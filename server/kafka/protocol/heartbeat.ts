import type { ApiCodec } from './api.js';
import { ApiKey } from './api.js';

/*
 * Heartbeat (key 12), versions 0-3.
 *
 * Request v0:
 *   group_id                  STRING
 *   generation_id             INT32
 *   member_id                 STRING
 * Request v1-v2: as v0
 * Request v3: group_instance_id NULLABLE_STRING at the end
 *
 * Response v0:
 *   error_code                INT16     27 REBALANCE_IN_PROGRESS tells the member to rejoin
 * Response v1-v3: throttle_time_ms INT32 first
 */
export interface HeartbeatRequest {
  group_id: string;
  generation_id: number;
  member_id: string;
  group_instance_id: string | null;
}

export interface HeartbeatResponse {
  throttle_time_ms: number;
  error_code: number;
}

export const heartbeat: ApiCodec<HeartbeatRequest, HeartbeatResponse> = {
  key: ApiKey.Heartbeat,
  name: 'Heartbeat',
  min_version: 0,
  max_version: 3,
  decodeRequest: (d, v) => ({ group_id: d.string(), generation_id: d.int32(), member_id: d.string(), group_instance_id: v >= 3 ? d.nullableString() : null }),
  encodeRequest(e, v, r) {
    e.string(r.group_id).int32(r.generation_id).string(r.member_id);
    if (v >= 3) e.nullableString(r.group_instance_id);
  },
  decodeResponse: (d, v) => ({ throttle_time_ms: v >= 1 ? d.int32() : 0, error_code: d.int16() }),
  encodeResponse(e, v, r) {
    if (v >= 1) e.int32(r.throttle_time_ms);
    e.int16(r.error_code);
  },
};
