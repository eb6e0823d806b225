import { KafkaCode } from '../errors.js';
import { findCoordinator, KEY_TYPE_GROUP, type FindCoordinatorRequest, type FindCoordinatorResponse } from '../protocol/find-coordinator.js';
import { heartbeat, type HeartbeatRequest, type HeartbeatResponse } from '../protocol/heartbeat.js';
import { joinGroup, type JoinGroupRequest, type JoinGroupResponse } from '../protocol/join-group.js';
import { leaveGroup, type LeaveGroupRequest, type LeaveGroupResponse } from '../protocol/leave-group.js';
import { syncGroup, type SyncGroupRequest, type SyncGroupResponse } from '../protocol/sync-group.js';
import type { KafkaContext, RequestContext } from '../context.js';
import { route } from './handler.js';

/** Kafka's limit on group ids is the topic-name alphabet's cousin: any string, but not empty (and we bound its length). */
const GROUP_ID_MAX_LENGTH = 255;
const validGroupId = (g: string) => g.length > 0 && g.length <= GROUP_ID_MAX_LENGTH;

/** This node coordinates every group. Transactions are not served, so transaction coordinators are not available. */
async function handleFindCoordinator(_ctx: KafkaContext, rc: RequestContext, _version: number, req: FindCoordinatorRequest): Promise<FindCoordinatorResponse> {
  const node = rc.node;
  const answer = (error_code: number, error_message: string | null) => ({ throttle_time_ms: 0, error_code, error_message, node_id: error_code === KafkaCode.NONE ? node.node_id : -1, host: error_code === KafkaCode.NONE ? node.host : '', port: error_code === KafkaCode.NONE ? node.port : -1 });
  if (req.key_type !== KEY_TYPE_GROUP) return answer(KafkaCode.COORDINATOR_NOT_AVAILABLE, 'relaylog does not serve transactions');
  if (!validGroupId(req.key)) return answer(KafkaCode.INVALID_GROUP_ID, `group id must be 1..${GROUP_ID_MAX_LENGTH} characters`);
  return answer(KafkaCode.NONE, null);
}

async function handleJoinGroup(ctx: KafkaContext, rc: RequestContext, _version: number, req: JoinGroupRequest): Promise<JoinGroupResponse> {
  if (!validGroupId(req.group_id)) return { throttle_time_ms: 0, error_code: KafkaCode.INVALID_GROUP_ID, generation_id: -1, protocol_name: '', leader: '', member_id: req.member_id, members: [] };
  const r = await ctx.coordinator.join(req.group_id, {
    member_id: req.member_id,
    group_instance_id: req.group_instance_id,
    client_id: rc.header.client_id ?? '',
    session_timeout_ms: req.session_timeout_ms,
    rebalance_timeout_ms: req.rebalance_timeout_ms,
    protocol_type: req.protocol_type,
    protocols: req.protocols.map((p) => ({ name: p.name, metadata: Buffer.from(p.metadata) })),
  });
  if (r.error_code === KafkaCode.NONE) ctx.logger.debug({ group: req.group_id, member: r.member_id, generation: r.generation_id, leader: r.leader === r.member_id }, 'kafka group: joined');
  return { throttle_time_ms: 0, ...r };
}

async function handleSyncGroup(ctx: KafkaContext, _rc: RequestContext, _version: number, req: SyncGroupRequest): Promise<SyncGroupResponse> {
  // Assignments are kept past this request: copy them out of the frame.
  const assignments = req.assignments.map((a) => ({ member_id: a.member_id, assignment: Buffer.from(a.assignment) }));
  const r = await ctx.coordinator.sync(req.group_id, req.member_id, req.generation_id, assignments);
  return { throttle_time_ms: 0, ...r };
}

async function handleHeartbeat(ctx: KafkaContext, _rc: RequestContext, _version: number, req: HeartbeatRequest): Promise<HeartbeatResponse> {
  return { throttle_time_ms: 0, error_code: ctx.coordinator.heartbeat(req.group_id, req.member_id, req.generation_id) };
}

async function handleLeaveGroup(ctx: KafkaContext, _rc: RequestContext, version: number, req: LeaveGroupRequest): Promise<LeaveGroupResponse> {
  const members = req.members.map((m) => ({ ...m, error_code: ctx.coordinator.leave(req.group_id, m.member_id) }));
  // v0-v2 leave one member and report its error at the top; v3 reports per member.
  const error_code = version <= 2 ? (members[0]?.error_code ?? KafkaCode.NONE) : KafkaCode.NONE;
  return { throttle_time_ms: 0, error_code, members };
}

export const findCoordinatorRoute = route(findCoordinator, handleFindCoordinator);
export const joinGroupRoute = route(joinGroup, handleJoinGroup);
export const syncGroupRoute = route(syncGroup, handleSyncGroup);
export const heartbeatRoute = route(heartbeat, handleHeartbeat);
export const leaveGroupRoute = route(leaveGroup, handleLeaveGroup);
