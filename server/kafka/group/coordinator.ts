import { randomUUID } from 'node:crypto';
import type { Clock } from '../../../engine/base/clock.js';
import type { ServerLogger } from '../../rpc/context.js';
import { KafkaCode } from '../errors.js';
import type { KafkaLimits } from '../limits.js';
import { GroupState, type GroupOutput, type JoinInput, type JoinResult, type SyncResult } from './group-state.js';

/**
 * The shell around GroupState: one state per group id, the promises of JoinGroup and SyncGroup
 * requests that wait for a rebalance, and one timer that ticks every group (session expiry,
 * rebalance timeout). Committed offsets are not kept here: they go to the LogStore, the same
 * durable group offsets the gRPC API reads and writes.
 */
export class GroupCoordinator {
  private readonly groups = new Map<string, GroupState>();
  private readonly waiting = new Map<number, (o: GroupOutput) => void>();
  private next_token = 1;
  private timer: NodeJS.Timeout | null = null;
  private stopped = false;

  constructor(
    private readonly deps: {
      clock: Clock;
      limits: KafkaLimits;
      logger: ServerLogger;
      /** Member ids are `<client id>-<this>`; injectable so tests are deterministic. */
      member_suffix?: () => string;
    },
  ) {}

  start(): void {
    if (this.timer || this.stopped) return;
    this.timer = setInterval(() => this.tick(), this.deps.limits.group_tick_ms);
    this.timer.unref();
  }

  /** Answers every waiting join and sync with NOT_COORDINATOR (clients look for the coordinator again) and stops the timer. */
  stop(): void {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    for (const g of this.groups.values()) this.deliver(g.shutdown(KafkaCode.NOT_COORDINATOR));
    this.groups.clear();
  }

  /** Runs every group's timers now; the interval timer calls this, tests may too. */
  tick(): void {
    const now_ms = this.deps.clock.now_ms();
    for (const [id, g] of this.groups) {
      const before = g.size;
      this.deliver(g.tick(now_ms));
      if (g.size < before) this.deps.logger.info({ group: id, members: g.size, generation: g.generation_id }, 'kafka group: members expired or left; rebalancing');
      if (g.idle) this.groups.delete(id);
    }
  }

  describe(group_id: string): { phase: string; generation_id: number; members: string[]; leader: string; protocol: string } | null {
    const g = this.groups.get(group_id);
    return g ? { phase: g.phase, generation_id: g.generation_id, members: g.memberIds(), leader: g.leader_id, protocol: g.protocol_name } : null;
  }

  join(group_id: string, req: JoinInput): Promise<JoinResult> {
    if (this.stopped) return Promise.resolve(joinRefused(KafkaCode.NOT_COORDINATOR, req.member_id));
    const g = this.groupFor(group_id);
    if (!g) return Promise.resolve(joinRefused(KafkaCode.COORDINATOR_NOT_AVAILABLE, req.member_id));
    const token = this.next_token++;
    const result = new Promise<JoinResult>((resolve) => this.waiting.set(token, (o) => o.kind === 'join' && resolve(o.result)));
    const member_id = `${req.client_id || 'member'}-${this.deps.member_suffix?.() ?? randomUUID()}`;
    this.deliver(g.join(this.deps.clock.now_ms(), req, token, member_id));
    this.forgetIfIdle(group_id, g);
    return result;
  }

  sync(group_id: string, member_id: string, generation_id: number, assignments: ReadonlyArray<{ member_id: string; assignment: Buffer }>): Promise<SyncResult> {
    const g = this.groups.get(group_id);
    if (this.stopped) return Promise.resolve({ error_code: KafkaCode.NOT_COORDINATOR, assignment: Buffer.alloc(0) });
    if (!g) return Promise.resolve({ error_code: KafkaCode.UNKNOWN_MEMBER_ID, assignment: Buffer.alloc(0) });
    const token = this.next_token++;
    const result = new Promise<SyncResult>((resolve) => this.waiting.set(token, (o) => o.kind === 'sync' && resolve(o.result)));
    this.deliver(g.sync(this.deps.clock.now_ms(), member_id, generation_id, assignments, token));
    return result;
  }

  heartbeat(group_id: string, member_id: string, generation_id: number): number {
    const g = this.groups.get(group_id);
    if (this.stopped) return KafkaCode.NOT_COORDINATOR;
    return g ? g.heartbeat(this.deps.clock.now_ms(), member_id, generation_id) : KafkaCode.UNKNOWN_MEMBER_ID;
  }

  leave(group_id: string, member_id: string): number {
    const g = this.groups.get(group_id);
    if (this.stopped) return KafkaCode.NOT_COORDINATOR;
    if (!g) return KafkaCode.UNKNOWN_MEMBER_ID;
    const { error_code, outputs } = g.leave(this.deps.clock.now_ms(), member_id);
    this.deliver(outputs);
    if (error_code === KafkaCode.NONE) this.deps.logger.info({ group: group_id, member: member_id, members: g.size }, 'kafka group: member left');
    this.forgetIfIdle(group_id, g);
    return error_code;
  }

  /** KafkaCode.NONE when an OffsetCommit with this member and generation may be stored. */
  commitAllowed(group_id: string, member_id: string, generation_id: number): number {
    if (this.stopped) return KafkaCode.NOT_COORDINATOR;
    const g = this.groups.get(group_id);
    if (!g) return generation_id < 0 ? KafkaCode.NONE : KafkaCode.UNKNOWN_MEMBER_ID;
    return g.commitAllowed(member_id, generation_id);
  }

  private groupFor(group_id: string): GroupState | null {
    let g = this.groups.get(group_id);
    if (g) return g;
    if (this.groups.size >= this.deps.limits.groups_max) {
      this.deps.logger.warn({ group: group_id, groups_max: this.deps.limits.groups_max }, 'kafka group refused: groups_max reached');
      return null;
    }
    const l = this.deps.limits;
    g = new GroupState(group_id, {
      session_timeout_min_ms: l.group_session_timeout_min_ms,
      session_timeout_max_ms: l.group_session_timeout_max_ms,
      rebalance_timeout_max_ms: l.group_rebalance_timeout_max_ms,
      members_max: l.group_members_max,
      initial_rebalance_delay_ms: l.group_initial_rebalance_delay_ms,
    });
    this.groups.set(group_id, g);
    return g;
  }

  private forgetIfIdle(group_id: string, g: GroupState): void {
    if (g.idle) this.groups.delete(group_id);
  }

  private deliver(outputs: GroupOutput[]): void {
    for (const o of outputs) {
      const resolve = this.waiting.get(o.token);
      this.waiting.delete(o.token);
      resolve?.(o);
    }
  }
}

function joinRefused(error_code: number, member_id: string): JoinResult {
  return { error_code, generation_id: -1, protocol_name: '', leader: '', member_id, members: [] };
}
