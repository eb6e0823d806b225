import type { ApiCodec } from './api.js';
import { ApiKey } from './api.js';

/*
 * LeaveGroup (key 13), versions 0-3.
 *
 * Request v0-v2:
 *   group_id                  STRING
 *   member_id                 STRING
 * Request v3 (batch leave):
 *   group_id                  STRING
 *   members                   ARRAY of
 *     member_id               STRING
 *     group_instance_id       NULLABLE_STRING
 *
 * Response v0:
 *   error_code                INT16
 * Response v1-v2:
 *   throttle_time_ms          INT32
 *   error_code                INT16
 * Response v3: as v1, then
 *   members                   ARRAY of
 *     member_id               STRING
 *     group_instance_id       NULLABLE_STRING
 *     error_code              INT16
 *
 * Decoded, v0-v2 become a one-member `members` list, so handlers see one shape.
 */
export interface LeaveGroupRequest {
  group_id: string;
  members: Array<{ member_id: string; group_instance_id: string | null }>;
}

export interface LeaveGroupResponse {
  throttle_time_ms: number;
  error_code: number;
  members: Array<{ member_id: string; group_instance_id: string | null; error_code: number }>;
}

export const leaveGroup: ApiCodec<LeaveGroupRequest, LeaveGroupResponse> = {
  key: ApiKey.LeaveGroup,
  name: 'LeaveGroup',
  min_version: 0,
  max_version: 3,
  decodeRequest(d, v) {
    const group_id = d.string();
    if (v <= 2) return { group_id, members: [{ member_id: d.string(), group_instance_id: null }] };
    return { group_id, members: d.array((d) => ({ member_id: d.string(), group_instance_id: d.nullableString() })) };
  },
  encodeRequest(e, v, r) {
    e.string(r.group_id);
    if (v <= 2) e.string(r.members[0]?.member_id ?? '');
    else e.array(r.members, (e, m) => e.string(m.member_id).nullableString(m.group_instance_id));
  },
  decodeResponse(d, v) {
    const throttle_time_ms = v >= 1 ? d.int32() : 0;
    const error_code = d.int16();
    const members = v >= 3 ? d.array((d) => ({ member_id: d.string(), group_instance_id: d.nullableString(), error_code: d.int16() })) : [];
    return { throttle_time_ms, error_code, members };
  },
  encodeResponse(e, v, r) {
    if (v >= 1) e.int32(r.throttle_time_ms);
    e.int16(r.error_code);
    if (v >= 3) e.array(r.members, (e, m) => e.string(m.member_id).nullableString(m.group_instance_id).int16(m.error_code));
  },
};
