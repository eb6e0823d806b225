import type { ApiCodec } from './api.js';
import { ApiKey } from './api.js';

/*
 * ApiVersions (key 18), versions 0-2.
 *
 * Request v0-v2: no fields.
 * (v3+ is flexible: client_software_name, client_software_version, tagged fields. It is not
 *  decoded: the listener answers any v3+ request with error 35 in the v0 layout below, which is
 *  what makes clients such as librdkafka fall back to v0.)
 *
 * Response v0:
 *   error_code            INT16
 *   api_keys              ARRAY of
 *     api_key             INT16
 *     min_version         INT16
 *     max_version         INT16
 * Response v1-v2: as v0, then
 *   throttle_time_ms      INT32
 */
export interface ApiVersionsRequest {
  readonly _?: never;
}

export interface ApiVersionRange {
  api_key: number;
  min_version: number;
  max_version: number;
}

export interface ApiVersionsResponse {
  error_code: number;
  api_keys: ApiVersionRange[];
  throttle_time_ms: number;
}

export const apiVersions: ApiCodec<ApiVersionsRequest, ApiVersionsResponse> = {
  key: ApiKey.ApiVersions,
  name: 'ApiVersions',
  min_version: 0,
  max_version: 2,
  decodeRequest: () => ({}),
  encodeRequest: () => undefined,
  decodeResponse(d, v) {
    const error_code = d.int16();
    const api_keys = d.array((d) => ({ api_key: d.int16(), min_version: d.int16(), max_version: d.int16() }));
    return { error_code, api_keys, throttle_time_ms: v >= 1 ? d.int32() : 0 };
  },
  encodeResponse(e, v, r) {
    e.int16(r.error_code).array(r.api_keys, (e, k) => e.int16(k.api_key).int16(k.min_version).int16(k.max_version));
    if (v >= 1) e.int32(r.throttle_time_ms);
  },
};
