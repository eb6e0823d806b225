import type { ApiCodec } from './api.js';
import { ApiKey } from './api.js';

/*
 * SyncGroup (key 14), versions 0-3.
 *
 * Request v0:
 *   group_id                  STRING
 *   generation_id             INT32
 *   member_id                 STRING
 *   assignments               ARRAY of  (the leader's request only)
 *     member_id               STRING
 *     assignment              BYTES     opaque to the broker
 * Request v1-v2: as v0
 * Request v3: group_instance_id NULLABLE_STRING after member_id
 *
 * Response v0:
 *   error_code                INT16
 *   assignment                BYTES     this member's part of the leader's assignment
 * Response v1-v3: throttle_time_ms INT32 first
 */
export interface SyncGroupRequest {
  group_id: string;
  generation_id: number;
  member_id: string;
  group_instance_id: string | null;
  assignments: Array<{ member_id: string; assignment: Buffer }>;
}

export interface SyncGroupResponse {
  throttle_time_ms: number;
  error_code: number;
  assignment: Buffer;
}

export const syncGroup: ApiCodec<SyncGroupRequest, SyncGroupResponse> = {
  key: ApiKey.SyncGroup,
  name: 'SyncGroup',
  min_version: 0,
  max_version: 3,
  decodeRequest(d, v) {
    const group_id = d.string();
    const generation_id = d.int32();
    const member_id = d.string();
    const group_instance_id = v >= 3 ? d.nullableString() : null;
    const assignments = d.array((d) => ({ member_id: d.string(), assignment: d.bytes() }));
    return { group_id, generation_id, member_id, group_instance_id, assignments };
  },
  encodeRequest(e, v, r) {
    e.string(r.group_id).int32(r.generation_id).string(r.member_id);
    if (v >= 3) e.nullableString(r.group_instance_id);
    e.array(r.assignments, (e, a) => e.string(a.member_id).bytes(a.assignment));
  },
  decodeResponse(d, v) {
    const throttle_time_ms = v >= 1 ? d.int32() : 0;
    return { throttle_time_ms, error_code: d.int16(), assignment: d.bytes() };
  },
  encodeResponse(e, v, r) {
    if (v >= 1) e.int32(r.throttle_time_ms);
    e.int16(r.error_code).bytes(r.assignment);
  },
};
