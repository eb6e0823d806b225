import type { ApiCodec } from './api.js';
import { ApiKey } from './api.js';

/*
 * FindCoordinator (key 10), versions 0-2.
 *
 * Request v0:
 *   key                       STRING    the group id
 * Request v1-v2: as v0, then
 *   key_type                  INT8      0 group, 1 transaction
 *
 * Response v0:
 *   error_code                INT16
 *   node_id                   INT32
 *   host                      STRING
 *   port                      INT32
 * Response v1-v2:
 *   throttle_time_ms          INT32
 *   error_code                INT16
 *   error_message             NULLABLE_STRING
 *   node_id                   INT32
 *   host                      STRING
 *   port                      INT32
 */
export const KEY_TYPE_GROUP = 0;

export interface FindCoordinatorRequest {
  key: string;
  key_type: number;
}

export interface FindCoordinatorResponse {
  throttle_time_ms: number;
  error_code: number;
  error_message: string | null;
  node_id: number;
  host: string;
  port: number;
}

export const findCoordinator: ApiCodec<FindCoordinatorRequest, FindCoordinatorResponse> = {
  key: ApiKey.FindCoordinator,
  name: 'FindCoordinator',
  min_version: 0,
  max_version: 2,
  decodeRequest: (d, v) => ({ key: d.string(), key_type: v >= 1 ? d.int8() : KEY_TYPE_GROUP }),
  encodeRequest(e, v, r) {
    e.string(r.key);
    if (v >= 1) e.int8(r.key_type);
  },
  decodeResponse(d, v) {
    const throttle_time_ms = v >= 1 ? d.int32() : 0;
    const error_code = d.int16();
    const error_message = v >= 1 ? d.nullableString() : null;
    return { throttle_time_ms, error_code, error_message, node_id: d.int32(), host: d.string(), port: d.int32() };
  },
  encodeResponse(e, v, r) {
    if (v >= 1) e.int32(r.throttle_time_ms);
    e.int16(r.error_code);
    if (v >= 1) e.nullableString(r.error_message);
    e.int32(r.node_id).string(r.host).int32(r.port);
  },
};
