import { KafkaCode } from '../errors.js';

/*
 * One consumer group's membership, as Kafka's classic group coordinator keeps it (KIP-62 timeouts,
 * the join/sync two-phase rebalance). Pure: time comes in as `now_ms`, member ids come in from the
 * caller, and answers to JoinGroup and SyncGroup requests that had to wait come out as `GroupOutput`s
 * naming the caller's token. The shell (coordinator.ts) owns the promises, the timer and the store.
 *
 *   empty ──join──▶ preparing_rebalance ──every member joined, or rebalance timeout──▶ completing_rebalance
 *     ▲                  ▲    (generation+1; the leader gets every member's metadata)         │
 *     │                  └────────── a member joins, leaves or expires ◀───────────────┐      │ the leader's
 *     └── last member leaves or expires                                               │      ▼ SyncGroup
 *                                                                                     └── stable
 *
 * The broker never looks inside protocol metadata or assignments: it relays the leader's assignment
 * to each member.
 */
export type GroupPhase = 'empty' | 'preparing_rebalance' | 'completing_rebalance' | 'stable';

export interface GroupConfig {
  session_timeout_min_ms: number;
  session_timeout_max_ms: number;
  rebalance_timeout_max_ms: number;
  members_max: number;
  initial_rebalance_delay_ms: number;
}

export interface JoinInput {
  member_id: string;
  group_instance_id: string | null;
  client_id: string;
  session_timeout_ms: number;
  rebalance_timeout_ms: number;
  protocol_type: string;
  protocols: ReadonlyArray<{ name: string; metadata: Buffer }>;
}

export interface JoinResult {
  error_code: number;
  generation_id: number;
  protocol_name: string;
  leader: string;
  member_id: string;
  members: Array<{ member_id: string; group_instance_id: string | null; metadata: Buffer }>;
}

export interface SyncResult {
  error_code: number;
  assignment: Buffer;
}

export type GroupOutput = { kind: 'join'; token: number; result: JoinResult } | { kind: 'sync'; token: number; result: SyncResult };

interface Member {
  readonly member_id: string;
  group_instance_id: string | null;
  client_id: string;
  session_timeout_ms: number;
  rebalance_timeout_ms: number;
  protocols: ReadonlyArray<{ name: string; metadata: Buffer }>;
  /** The member is dropped once now passes this (unless a join or sync of its is waiting). */
  session_deadline_ms: number;
  join_token: number | null;
  sync_token: number | null;
  assignment: Buffer;
}

const EMPTY: Buffer = Buffer.alloc(0);

export class GroupState {
  phase: GroupPhase = 'empty';
  generation_id = 0;
  protocol_type: string | null = null;
  protocol_name = '';
  leader_id = '';
  private readonly members = new Map<string, Member>();
  /** While preparing: the rebalance completes no later than this (members that have not rejoined are dropped). */
  private rebalance_deadline_ms = 0;
  /** While preparing: the rebalance completes no earlier than this (group.initial.rebalance.delay.ms). */
  private join_ready_ms = 0;

  constructor(readonly group_id: string, private readonly config: GroupConfig) {}

  get size(): number {
    return this.members.size;
  }

  memberIds(): string[] {
    return [...this.members.keys()];
  }

  /** Nothing is waiting on this group and it has no members: the shell may forget it. */
  get idle(): boolean {
    return this.phase === 'empty' && this.members.size === 0;
  }

  join(now_ms: number, req: JoinInput, token: number, new_member_id: string): GroupOutput[] {
    const refuse = (error_code: number, member_id = req.member_id): GroupOutput[] => [{ kind: 'join', token, result: joinError(error_code, member_id) }];
    if (req.session_timeout_ms < this.config.session_timeout_min_ms || req.session_timeout_ms > this.config.session_timeout_max_ms) return refuse(KafkaCode.INVALID_SESSION_TIMEOUT);
    if (req.protocols.length === 0 || req.protocol_type === '') return refuse(KafkaCode.INCONSISTENT_GROUP_PROTOCOL);
    if (this.members.size > 0 && (req.protocol_type !== this.protocol_type || !this.sharesProtocol(req.protocols))) return refuse(KafkaCode.INCONSISTENT_GROUP_PROTOCOL);
    const out: GroupOutput[] = [];
    let member: Member | undefined;
    if (req.member_id === '') {
      // A static member (KIP-345) coming back under a new member id replaces its old incarnation.
      const old = req.group_instance_id === null ? undefined : [...this.members.values()].find((m) => m.group_instance_id === req.group_instance_id);
      if (old) out.push(...this.remove(old, KafkaCode.UNKNOWN_MEMBER_ID));
      if (this.members.size >= this.config.members_max) return [...out, ...refuse(KafkaCode.GROUP_MAX_SIZE_REACHED, '')];
      member = { member_id: new_member_id, group_instance_id: req.group_instance_id, client_id: req.client_id, session_timeout_ms: 0, rebalance_timeout_ms: 0, protocols: [], session_deadline_ms: 0, join_token: null, sync_token: null, assignment: EMPTY };
      this.members.set(member.member_id, member);
    } else {
      member = this.members.get(req.member_id);
      if (!member) return refuse(KafkaCode.UNKNOWN_MEMBER_ID);
    }
    if (this.members.size === 1 && this.protocol_type === null) this.protocol_type = req.protocol_type;
    if (member.join_token !== null) out.push({ kind: 'join', token: member.join_token, result: joinError(KafkaCode.UNKNOWN_MEMBER_ID, member.member_id) });
    member.group_instance_id = req.group_instance_id;
    member.client_id = req.client_id;
    member.session_timeout_ms = req.session_timeout_ms;
    member.rebalance_timeout_ms = Math.min(Math.max(req.rebalance_timeout_ms, req.session_timeout_ms), this.config.rebalance_timeout_max_ms);
    member.protocols = req.protocols;
    member.join_token = token;
    member.session_deadline_ms = now_ms + member.session_timeout_ms;
    if (this.phase !== 'preparing_rebalance') out.push(...this.prepareRebalance(now_ms));
    else this.rebalance_deadline_ms = Math.max(this.rebalance_deadline_ms, now_ms + member.rebalance_timeout_ms);
    out.push(...this.maybeCompleteJoin(now_ms));
    return out;
  }

  sync(now_ms: number, member_id: string, generation_id: number, assignments: ReadonlyArray<{ member_id: string; assignment: Buffer }>, token: number): GroupOutput[] {
    const answer = (error_code: number, assignment = EMPTY): GroupOutput[] => [{ kind: 'sync', token, result: { error_code, assignment } }];
    const member = this.members.get(member_id);
    if (!member) return answer(KafkaCode.UNKNOWN_MEMBER_ID);
    if (generation_id !== this.generation_id) return answer(KafkaCode.ILLEGAL_GENERATION);
    member.session_deadline_ms = now_ms + member.session_timeout_ms;
    if (this.phase === 'preparing_rebalance') return answer(KafkaCode.REBALANCE_IN_PROGRESS);
    if (this.phase === 'stable') return answer(KafkaCode.NONE, member.assignment);
    // completing_rebalance: wait for the leader's assignment.
    const out: GroupOutput[] = [];
    if (member.sync_token !== null) out.push({ kind: 'sync', token: member.sync_token, result: { error_code: KafkaCode.REBALANCE_IN_PROGRESS, assignment: EMPTY } });
    member.sync_token = token;
    if (member_id === this.leader_id) {
      const by_member = new Map(assignments.map((a) => [a.member_id, a.assignment]));
      for (const m of this.members.values()) m.assignment = by_member.get(m.member_id) ?? EMPTY;
      this.phase = 'stable';
      for (const m of this.members.values()) {
        if (m.sync_token === null) continue;
        out.push({ kind: 'sync', token: m.sync_token, result: { error_code: KafkaCode.NONE, assignment: m.assignment } });
        m.sync_token = null;
      }
    }
    return out;
  }

  heartbeat(now_ms: number, member_id: string, generation_id: number): number {
    const member = this.members.get(member_id);
    if (!member) return KafkaCode.UNKNOWN_MEMBER_ID;
    if (generation_id !== this.generation_id) return KafkaCode.ILLEGAL_GENERATION;
    member.session_deadline_ms = now_ms + member.session_timeout_ms;
    return this.phase === 'preparing_rebalance' ? KafkaCode.REBALANCE_IN_PROGRESS : KafkaCode.NONE;
  }

  leave(now_ms: number, member_id: string): { error_code: number; outputs: GroupOutput[] } {
    const member = this.members.get(member_id);
    if (!member) return { error_code: KafkaCode.UNKNOWN_MEMBER_ID, outputs: [] };
    const outputs = this.remove(member, KafkaCode.UNKNOWN_MEMBER_ID);
    outputs.push(...this.afterDeparture(now_ms));
    return { error_code: KafkaCode.NONE, outputs };
  }

  /** Whether an OffsetCommit from this member and generation is accepted (Kafka's rules). */
  commitAllowed(member_id: string, generation_id: number): number {
    if (generation_id < 0 && this.members.size === 0) return KafkaCode.NONE; // a commit from outside any group generation
    if (this.phase === 'completing_rebalance') return KafkaCode.REBALANCE_IN_PROGRESS;
    if (!this.members.has(member_id)) return KafkaCode.UNKNOWN_MEMBER_ID;
    if (generation_id !== this.generation_id) return KafkaCode.ILLEGAL_GENERATION;
    return KafkaCode.NONE;
  }

  /** Expires members whose session lapsed and ends a rebalance whose timeout passed. */
  tick(now_ms: number): GroupOutput[] {
    const out: GroupOutput[] = [];
    let departed = false;
    for (const m of [...this.members.values()]) {
      if (m.join_token !== null || m.sync_token !== null || now_ms < m.session_deadline_ms) continue;
      out.push(...this.remove(m, KafkaCode.UNKNOWN_MEMBER_ID));
      departed = true;
    }
    if (departed) out.push(...this.afterDeparture(now_ms));
    if (this.phase === 'preparing_rebalance' && now_ms >= this.rebalance_deadline_ms) {
      // Members that did not rejoin in time are out of the group.
      for (const m of [...this.members.values()]) if (m.join_token === null) out.push(...this.remove(m, KafkaCode.UNKNOWN_MEMBER_ID));
      out.push(...this.completeJoin(now_ms));
    } else {
      out.push(...this.maybeCompleteJoin(now_ms));
    }
    return out;
  }

  /** Answers every waiting request with `error_code` and forgets all members (the listener is stopping). */
  shutdown(error_code: number): GroupOutput[] {
    const out: GroupOutput[] = [];
    for (const m of [...this.members.values()]) out.push(...this.remove(m, error_code));
    this.phase = 'empty';
    return out;
  }

  private sharesProtocol(protocols: ReadonlyArray<{ name: string }>): boolean {
    return this.candidateProtocols().some((name) => protocols.some((p) => p.name === name));
  }

  /** Protocol names every current member supports, in the order of the first member's preference. */
  private candidateProtocols(): string[] {
    const all = [...this.members.values()];
    const first = all[0];
    if (!first) return [];
    return first.protocols.map((p) => p.name).filter((name) => all.every((m) => m.protocols.some((p) => p.name === name)));
  }

  private remove(m: Member, error_code: number): GroupOutput[] {
    const out: GroupOutput[] = [];
    if (m.join_token !== null) out.push({ kind: 'join', token: m.join_token, result: joinError(error_code, m.member_id) });
    if (m.sync_token !== null) out.push({ kind: 'sync', token: m.sync_token, result: { error_code, assignment: EMPTY } });
    this.members.delete(m.member_id);
    if (this.leader_id === m.member_id) this.leader_id = '';
    return out;
  }

  private afterDeparture(now_ms: number): GroupOutput[] {
    if (this.members.size === 0) {
      if (this.phase !== 'empty') this.generation_id++;
      this.phase = 'empty';
      this.protocol_type = null;
      this.protocol_name = '';
      this.leader_id = '';
      return [];
    }
    if (this.phase === 'stable' || this.phase === 'completing_rebalance') return this.prepareRebalance(now_ms);
    return this.maybeCompleteJoin(now_ms);
  }

  private prepareRebalance(now_ms: number): GroupOutput[] {
    const out: GroupOutput[] = [];
    // Members waiting for an assignment of the generation being abandoned must rejoin.
    for (const m of this.members.values()) {
      if (m.sync_token === null) continue;
      out.push({ kind: 'sync', token: m.sync_token, result: { error_code: KafkaCode.REBALANCE_IN_PROGRESS, assignment: EMPTY } });
      m.sync_token = null;
    }
    const was_empty = this.phase === 'empty';
    this.phase = 'preparing_rebalance';
    let timeout_ms = 0;
    for (const m of this.members.values()) timeout_ms = Math.max(timeout_ms, m.rebalance_timeout_ms);
    this.rebalance_deadline_ms = now_ms + timeout_ms;
    this.join_ready_ms = was_empty ? now_ms + Math.min(this.config.initial_rebalance_delay_ms, timeout_ms) : now_ms;
    return out;
  }

  private maybeCompleteJoin(now_ms: number): GroupOutput[] {
    if (this.phase !== 'preparing_rebalance' || now_ms < this.join_ready_ms) return [];
    for (const m of this.members.values()) if (m.join_token === null) return [];
    return this.completeJoin(now_ms);
  }

  private completeJoin(now_ms: number): GroupOutput[] {
    this.generation_id++;
    if (this.members.size === 0) {
      this.phase = 'empty';
      return [];
    }
    const all = [...this.members.values()];
    if (!this.members.has(this.leader_id)) this.leader_id = all[0]!.member_id;
    // Every remaining member rejoined, so they share at least one protocol (checked on join).
    this.protocol_name = this.candidateProtocols()[0] ?? all[0]!.protocols[0]?.name ?? '';
    this.phase = 'completing_rebalance';
    const members = all.map((m) => ({ member_id: m.member_id, group_instance_id: m.group_instance_id, metadata: m.protocols.find((p) => p.name === this.protocol_name)?.metadata ?? EMPTY }));
    const out: GroupOutput[] = [];
    for (const m of all) {
      m.assignment = EMPTY;
      m.session_deadline_ms = now_ms + m.session_timeout_ms;
      if (m.join_token === null) continue;
      const result: JoinResult = { error_code: KafkaCode.NONE, generation_id: this.generation_id, protocol_name: this.protocol_name, leader: this.leader_id, member_id: m.member_id, members: m.member_id === this.leader_id ? members : [] };
      out.push({ kind: 'join', token: m.join_token, result });
      m.join_token = null;
    }
    return out;
  }
}

function joinError(error_code: number, member_id: string): JoinResult {
  return { error_code, generation_id: -1, protocol_name: '', leader: '', member_id, members: [] };
}
