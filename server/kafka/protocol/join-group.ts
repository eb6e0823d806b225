import type { ApiCodec } from './api.js';
import { ApiKey } from './api.js';

/*
 * JoinGroup (key 11), versions 0-5.
 *
 * Request v0:
 *   group_id                  STRING
 *   session_timeout_ms        INT32
 *   member_id                 STRING    "" on a first join
 *   protocol_type             STRING    "consumer" for consumer groups; opaque to the broker
 *   protocols                 ARRAY of
 *     name                    STRING    an assignor, e.g. "RoundRobinAssigner"
 *     metadata                BYTES     opaque to the broker
 * Request v1-v4: rebalance_timeout_ms INT32 after session_timeout_ms
 * Request v5: group_instance_id NULLABLE_STRING after member_id
 *
 * Response v0:
 *   error_code                INT16
 *   generation_id             INT32
 *   protocol_name             STRING
 *   leader                    STRING    the leader's member id
 *   member_id                 STRING    the member id assigned to the caller
 *   members                   ARRAY of  (the leader's response only; empty for followers)
 *     member_id               STRING
 *     metadata                BYTES
 * Response v1: as v0
 * Response v2-v4: throttle_time_ms INT32 first
 * Response v5: members gain group_instance_id NULLABLE_STRING (after member_id)
 */
export interface JoinGroupRequest {
  group_id: string;
  session_timeout_ms: number;
  rebalance_timeout_ms: number;
  member_id: string;
  group_instance_id: string | null;
  protocol_type: string;
  protocols: Array<{ name: string; metadata: Buffer }>;
}

export interface JoinGroupMember {
  member_id: string;
  group_instance_id: string | null;
  metadata: Buffer;
}

export interface JoinGroupResponse {
  throttle_time_ms: number;
  error_code: number;
  generation_id: number;
  protocol_name: string;
  leader: string;
  member_id: string;
  members: JoinGroupMember[];
}

export const joinGroup: ApiCodec<JoinGroupRequest, JoinGroupResponse> = {
  key: ApiKey.JoinGroup,
  name: 'JoinGroup',
  min_version: 0,
  max_version: 5,
  decodeRequest(d, v) {
    const group_id = d.string();
    const session_timeout_ms = d.int32();
    const rebalance_timeout_ms = v >= 1 ? d.int32() : session_timeout_ms;
    const member_id = d.string();
    const group_instance_id = v >= 5 ? d.nullableString() : null;
    const protocol_type = d.string();
    const protocols = d.array((d) => ({ name: d.string(), metadata: d.bytes() }));
    return { group_id, session_timeout_ms, rebalance_timeout_ms, member_id, group_instance_id, protocol_type, protocols };
  },
  encodeRequest(e, v, r) {
    e.string(r.group_id).int32(r.session_timeout_ms);
    if (v >= 1) e.int32(r.rebalance_timeout_ms);
    e.string(r.member_id);
    if (v >= 5) e.nullableString(r.group_instance_id);
    e.string(r.protocol_type).array(r.protocols, (e, p) => e.string(p.name).bytes(p.metadata));
  },
  decodeResponse(d, v) {
    const throttle_time_ms = v >= 2 ? d.int32() : 0;
    const error_code = d.int16();
    const generation_id = d.int32();
    const protocol_name = d.string();
    const leader = d.string();
    const member_id = d.string();
    const members = d.array((d) => ({ member_id: d.string(), group_instance_id: v >= 5 ? d.nullableString() : null, metadata: d.bytes() }));
    return { throttle_time_ms, error_code, generation_id, protocol_name, leader, member_id, members };
  },
  encodeResponse(e, v, r) {
    if (v >= 2) e.int32(r.throttle_time_ms);
    e.int16(r.error_code).int32(r.generation_id).string(r.protocol_name).string(r.leader).string(r.member_id);
    e.array(r.members, (e, m) => {
      e.string(m.member_id);
      if (v >= 5) e.nullableString(m.group_instance_id);
      e.bytes(m.metadata);
    });
  },
};
