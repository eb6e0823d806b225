/**
 * The Raft state machine for one partition: pure and deterministic. It owns no socket, timer or
 * file. Inputs are `step(message)`, `tick()` and the leader-only requests (`propose`,
 * `proposeConfChange`, `transferLeadership`); outputs come out of `ready()` as one batch of state
 * to persist, messages to send and entries to apply, acknowledged with `advance(ready)`.
 * See docs/raft.md for the contract; section numbers refer to the Raft paper (Ongaro & Ousterhout
 * 2014) and "thesis" to Ongaro's dissertation.
 */
import { AssertionError, assert } from '../../../engine/base/assert.js';
import { EngineError } from '../../../engine/base/errors.js';
import type { Prng } from '../../../engine/base/prng.js';
import { applyConfChange, encodeConfChangeEntry, type ConfChange } from './conf-change.js';
import { resolveRaftConfig, type RaftConfig, type ResolvedRaftConfig } from './config.js';
import { Leader, type ProgressView } from './leader.js';
import { Membership } from './membership.js';
import { voteResult } from './quorum.js';
import { RaftLog } from './raft-log.js';
import {
  NONE,
  type AppendRequest,
  type AppendResponse,
  type ConfState,
  type Entry,
  type EntryKind,
  type HardState,
  type Heartbeat,
  type Message,
  type NodeId,
  type ProposeResult,
  type Ready,
  type Role,
  type SnapshotRequest,
  type SoftState,
  type VoteRequest,
  type VoteResponse,
} from './types.js';

const EMPTY = Buffer.alloc(0);

export type { ProgressView } from './leader.js';

export class Raft {
  readonly id: NodeId;
  private readonly cfg: ResolvedRaftConfig;
  private readonly prng: Prng;
  private readonly log: RaftLog;
  private readonly membership: Membership;

  private term_ = 0;
  private vote_: NodeId = NONE;
  private lead_: NodeId = NONE;
  private role_: Role = 'follower';
  private election_elapsed_ticks = 0;
  private heartbeat_elapsed_ticks = 0;
  private randomized_election_timeout_ticks = 0;
  /** Candidate and pre-candidate: answers received in this election. */
  private votes = new Map<NodeId, boolean>();
  /** Present exactly while this node leads (role === 'leader'). */
  private leader: Leader | null = null;
  private msgs: Message[] = [];
  private prev_hard_state: HardState;
  private prev_soft_state: SoftState = { lead: NONE, role: 'follower' };
  private outstanding: Ready | null = null;

  constructor(config: RaftConfig) {
    this.cfg = resolveRaftConfig(config);
    this.id = this.cfg.id;
    this.prng = this.cfg.prng;
    const hs = this.cfg.hard_state ?? { term: 0, vote: NONE, commit: 0 };
    this.log = new RaftLog(this.cfg.storage, hs.commit, this.cfg.applied_index);
    // A stored snapshot newer than the given membership point carries the membership in effect there.
    const snap = this.cfg.storage.snapshot().meta;
    if (snap.index > this.cfg.conf_state_index) this.membership = new Membership(snap.conf_state, snap.index);
    else this.membership = new Membership(this.cfg.conf_state, this.cfg.conf_state_index);
    this.replayMembership();
    this.prev_hard_state = hs;
    this.term_ = hs.term;
    this.vote_ = hs.vote;
    // Entries of a Ready can be durable without its hard state (a crash between the two writes):
    // we never voted in that newer term (a vote is persisted before it is sent), so adopt it with no vote.
    const last_term = this.log.lastTerm();
    if (last_term > this.term_) {
      this.term_ = last_term;
      this.vote_ = NONE;
    }
    this.becomeFollower(this.term_, NONE);
  }

  private replayMembership(): void {
    const lo = Math.max(this.cfg.conf_state_index, this.cfg.storage.snapshot().meta.index) + 1;
    const hi = this.log.lastIndex() + 1;
    assert(lo >= this.log.firstIndex(), `conf_state_index ${this.cfg.conf_state_index} is below the first stored entry`);
    for (let i = lo; i < hi; ) {
      const batch = this.log.slice(i, hi, this.cfg.apply_batch_max_bytes);
      this.membership.onAppend(batch.filter((e) => e.kind === 'conf_change'));
      i += batch.length;
    }
  }

  // ---- observers -------------------------------------------------------------------------------

  get term(): number {
    return this.term_;
  }
  get vote(): NodeId {
    return this.vote_;
  }
  get lead(): NodeId {
    return this.lead_;
  }
  get role(): Role {
    return this.role_;
  }
  get commitIndex(): number {
    return this.log.committed;
  }
  get appliedIndex(): number {
    return this.log.applied;
  }
  get leadTransferee(): NodeId {
    return this.leader?.transferee ?? NONE;
  }
  lastIndex(): number {
    return this.log.lastIndex();
  }
  termAt(index: number): number | undefined {
    return this.log.term(index);
  }
  /** Entries [lo, hi) of this node's log, unstable tail included. */
  entries(lo: number, hi: number): Entry[] {
    return this.log.slice(lo, hi, Number.MAX_SAFE_INTEGER);
  }
  confState(): ConfState {
    return this.membership.current();
  }
  /** Leader only: what it knows of `id`'s log. */
  progressOf(id: NodeId): ProgressView | undefined {
    return this.leader?.progressOf(id);
  }

  // ---- inputs ----------------------------------------------------------------------------------

  tick(): void {
    this.assertNoReady();
    if (this.role_ === 'leader') this.tickLeader();
    else this.tickElection();
  }

  private tickElection(): void {
    this.election_elapsed_ticks++;
    if (this.promotable() && this.election_elapsed_ticks >= this.randomized_election_timeout_ticks) {
      this.election_elapsed_ticks = 0;
      this.hup(false);
    }
  }

  private tickLeader(): void {
    const leader = this.leader!;
    this.heartbeat_elapsed_ticks++;
    this.election_elapsed_ticks++;
    if (this.election_elapsed_ticks >= this.cfg.election_timeout_ticks) {
      this.election_elapsed_ticks = 0;
      if (this.cfg.check_quorum && !leader.checkQuorum()) {
        this.becomeFollower(this.term_, NONE);
        return;
      }
      // A transfer that has not finished within an election timeout is abandoned.
      leader.transferee = NONE;
    }
    if (this.heartbeat_elapsed_ticks >= this.cfg.heartbeat_interval_ticks) {
      this.heartbeat_elapsed_ticks = 0;
      leader.bcastHeartbeat();
    }
  }

  step(m: Message): void {
    this.assertNoReady();
    assert(m.to === this.id, `message for ${m.to} stepped into ${this.id}`);
    if (m.term > this.term_) {
      if (!this.stepHigherTerm(m)) return;
    } else if (m.term < this.term_) {
      this.stepLowerTerm(m);
      return;
    }
    if (m.type === 'vote' || m.type === 'pre_vote') {
      this.handleVoteRequest(m);
      return;
    }
    switch (this.role_) {
      case 'leader':
        return this.stepLeader(m);
      case 'candidate':
      case 'pre_candidate':
        return this.stepCandidate(m);
      case 'follower':
        return this.stepFollower(m);
    }
  }

  /** §5.1: a newer term makes us a follower, except for what pre-vote and the lease say. False: drop m. */
  private stepHigherTerm(m: Message): boolean {
    if (m.type === 'vote' || m.type === 'pre_vote') {
      // The lease (thesis §4.2.3): while we hear from a leader, nobody else gets our vote, so a
      // node that was cut off cannot depose a healthy leader. A transfer overrides it.
      const in_lease = this.cfg.check_quorum && this.lead_ !== NONE && this.election_elapsed_ticks < this.cfg.election_timeout_ticks;
      if (in_lease && !m.transfer) return false;
    }
    if (m.type === 'pre_vote') return true;
    // A granted pre-vote carries the term the pre-candidate would campaign with, not a real term.
    if (m.type === 'pre_vote_response' && m.granted) return true;
    this.becomeFollower(m.term, m.type === 'append' || m.type === 'heartbeat' || m.type === 'snapshot' ? m.from : NONE);
    return true;
  }

  private stepLowerTerm(m: Message): void {
    if ((this.cfg.check_quorum || this.cfg.pre_vote) && (m.type === 'append' || m.type === 'heartbeat' || m.type === 'snapshot')) {
      // A stale leader cut off from the rest may never hear the new term otherwise (with pre-vote
      // nobody campaigns at it): tell it, so it steps down.
      this.send(this.appendResponse(m.from, false, 0, 0, { index: 0, term: 0 }));
    } else if (m.type === 'pre_vote' || m.type === 'vote') {
      // Figure 2: the rejection carries our term, and the candidate adopts it. Ignoring it (as
      // etcd's raft does for a real vote) can leave a candidate climbing terms below ours for
      // ever when we never send it anything else: in the simulation, a voter whose newest
      // (uncommitted) membership left the candidate out, and the one node that could grant it a
      // vote at a higher term (property-tests/raft-sim.prop.test.ts, SEED=1378532158).
      this.send({ type: m.type === 'vote' ? 'vote_response' : 'pre_vote_response', from: this.id, to: m.from, term: this.term_, granted: false });
    }
    // Anything else from an older term is stale.
  }

  /** §5.2, §5.4.1: one vote per term, only for a log at least as up to date as ours. */
  private handleVoteRequest(m: VoteRequest): void {
    const pre = m.type === 'pre_vote';
    const can_vote = this.vote_ === m.from || (this.vote_ === NONE && this.lead_ === NONE) || (pre && m.term > this.term_);
    const granted = can_vote && this.log.isUpToDate(m.last_log_index, m.last_log_term);
    const type = pre ? 'pre_vote_response' : 'vote_response';
    this.send({ type, from: this.id, to: m.from, term: granted ? m.term : this.term_, granted });
    if (granted && !pre) {
      this.election_elapsed_ticks = 0;
      this.vote_ = m.from;
    }
  }

  private stepLeader(m: Message): void {
    switch (m.type) {
      case 'append_response':
        this.leader!.handleAppendResponse(m);
        return this.maybeStepDownRemoved();
      case 'heartbeat_response':
        return this.leader!.handleHeartbeatResponse(m);
      case 'append':
      case 'heartbeat':
      case 'snapshot':
        throw new AssertionError(`election safety: ${m.from} and ${this.id} both lead term ${this.term_}`);
      default:
        return; // late votes, timeout_now
    }
  }

  private stepCandidate(m: Message): void {
    switch (m.type) {
      case 'append':
        this.becomeFollower(this.term_, m.from);
        return this.handleAppend(m);
      case 'heartbeat':
        this.becomeFollower(this.term_, m.from);
        return this.handleHeartbeat(m);
      case 'snapshot':
        this.becomeFollower(this.term_, m.from);
        return this.handleSnapshot(m);
      case 'vote_response':
        if (this.role_ === 'candidate') this.tally(m);
        return;
      case 'pre_vote_response':
        if (this.role_ === 'pre_candidate') this.tally(m);
        return;
      default:
        return;
    }
  }

  private stepFollower(m: Message): void {
    switch (m.type) {
      case 'append':
      case 'heartbeat':
      case 'snapshot':
        assert(this.lead_ === NONE || this.lead_ === m.from, `election safety: ${m.from} and ${this.lead_} both lead term ${this.term_}`);
        this.election_elapsed_ticks = 0;
        this.lead_ = m.from;
        if (m.type === 'append') return this.handleAppend(m);
        if (m.type === 'snapshot') return this.handleSnapshot(m);
        return this.handleHeartbeat(m);
      case 'timeout_now':
        return this.hup(true);
      default:
        return;
    }
  }

  private tally(m: VoteResponse): void {
    if (!this.votes.has(m.from)) this.votes.set(m.from, m.granted);
    const result = voteResult(this.membership.current().voters, this.votes);
    if (result === 'won') {
      if (this.role_ === 'pre_candidate') this.campaign('real', false);
      else this.becomeLeader();
    } else if (result === 'lost') {
      this.becomeFollower(this.term_, NONE);
    }
  }

  // ---- elections -------------------------------------------------------------------------------

  private promotable(): boolean {
    return this.membership.isVoter(this.id);
  }

  private hup(transfer: boolean): void {
    if (this.role_ === 'leader' || !this.promotable()) return;
    if (this.cfg.pre_vote && !transfer) this.campaign('pre', false);
    else this.campaign('real', transfer);
  }

  private campaign(kind: 'pre' | 'real', transfer: boolean): void {
    if (kind === 'pre') this.becomePreCandidate();
    else this.becomeCandidate();
    this.votes.set(this.id, true);
    const voters = this.membership.current().voters;
    if (voteResult(voters, this.votes) === 'won') {
      if (kind === 'pre') this.campaign('real', transfer);
      else this.becomeLeader();
      return;
    }
    const term = kind === 'pre' ? this.term_ + 1 : this.term_;
    const last_log_index = this.log.lastIndex();
    const last_log_term = this.log.lastTerm();
    for (const to of voters) {
      if (to === this.id) continue;
      this.send({ type: kind === 'pre' ? 'pre_vote' : 'vote', from: this.id, to, term, last_log_index, last_log_term, transfer });
    }
  }

  private reset(term: number): void {
    if (term !== this.term_) {
      assert(term > this.term_, `term goes backwards: ${this.term_} -> ${term}`);
      this.term_ = term;
      this.vote_ = NONE;
    }
    this.lead_ = NONE;
    this.election_elapsed_ticks = 0;
    this.heartbeat_elapsed_ticks = 0;
    this.randomizeElectionTimeout();
    this.votes = new Map();
    this.leader = null;
  }

  private randomizeElectionTimeout(): void {
    const base = this.cfg.election_timeout_ticks;
    this.randomized_election_timeout_ticks = this.prng.int(base, 2 * base);
  }

  private becomeFollower(term: number, lead: NodeId): void {
    this.reset(term);
    this.role_ = 'follower';
    this.lead_ = lead;
  }

  private becomePreCandidate(): void {
    assert(this.role_ !== 'leader', 'a leader does not pre-campaign');
    // Term and vote stay: a pre-vote changes nothing durable.
    this.role_ = 'pre_candidate';
    this.lead_ = NONE;
    this.votes = new Map();
    this.randomizeElectionTimeout();
  }

  private becomeCandidate(): void {
    assert(this.role_ !== 'leader', 'a leader does not campaign');
    this.reset(this.term_ + 1);
    this.vote_ = this.id;
    this.role_ = 'candidate';
  }

  private becomeLeader(): void {
    assert(this.role_ === 'candidate', `${this.role_} cannot become leader`);
    this.reset(this.term_);
    this.role_ = 'leader';
    this.lead_ = this.id;
    const send = (m: Message): void => this.send(m);
    const leader = new Leader({ id: this.id, term: this.term_, cfg: this.cfg, log: this.log, membership: this.membership, send });
    this.leader = leader;
    // §5.4.2: entries of earlier terms commit only under one of ours, so append one now. It also
    // bounds the conf change rule: none until everything up to here has committed.
    this.appendEntry('normal', EMPTY);
    leader.pending_conf_index = this.log.lastIndex();
    leader.bcastAppend();
  }

  // ---- replication: follower side --------------------------------------------------------------

  private handleAppend(m: AppendRequest): void {
    if (m.prev_log_index < this.log.committed) {
      // Everything up to our commit index matches any leader's log (§5.4); start from there.
      this.send(this.appendResponse(m.from, true, this.log.committed, 0, { index: 0, term: 0 }));
      return;
    }
    const result = this.log.maybeAppend(m.prev_log_index, m.prev_log_term, m.commit, m.entries);
    if (result !== null) {
      if (result.appended.length > 0) this.onLogAppended(result.appended);
      this.send(this.appendResponse(m.from, true, result.last_new_index, 0, { index: 0, term: 0 }));
      return;
    }
    const hint = this.log.findConflictByTerm(m.prev_log_index, m.prev_log_term);
    this.send(this.appendResponse(m.from, false, 0, m.prev_log_index, hint));
  }

  /**
   * InstallSnapshot (§7). A snapshot at or below our commit index tells us nothing; one whose last
   * entry we hold (same index and term) only moves the commit index; anything else replaces our
   * whole log (whatever we hold beyond it is not known to match the leader). Either way the answer
   * is a successful append_response at the snapshot's index (or our commit index, if higher).
   */
  private handleSnapshot(m: SnapshotRequest): void {
    const s = m.snapshot.meta;
    if (s.index <= this.log.committed) {
      this.send(this.appendResponse(m.from, true, this.log.committed, 0, { index: 0, term: 0 }));
      return;
    }
    if (this.log.matchTerm(s.index, s.term)) {
      this.log.commitTo(s.index);
    } else {
      this.log.restore(m.snapshot);
      this.membership.restore(s.conf_state, s.index);
    }
    this.send(this.appendResponse(m.from, true, s.index, 0, { index: 0, term: 0 }));
  }

  private handleHeartbeat(m: Heartbeat): void {
    // m.commit <= what the leader knows we persisted, so it is in our log (commitTo asserts so).
    this.log.commitTo(m.commit);
    this.send({ type: 'heartbeat_response', from: this.id, to: m.from, term: this.term_ });
  }

  private appendResponse(to: NodeId, success: boolean, match_index: number, reject_index: number, hint: { index: number; term: number }): AppendResponse {
    return { type: 'append_response', from: this.id, to, term: this.term_, success, match_index, reject_index, hint_index: hint.index, hint_term: hint.term };
  }

  private appendEntry(kind: EntryKind, data: Buffer): Entry {
    const entry: Entry = { index: this.log.lastIndex() + 1, term: this.term_, kind, data };
    this.log.append([entry]);
    if (kind === 'conf_change') this.onLogAppended([entry]);
    return entry;
  }

  // ---- membership ------------------------------------------------------------------------------

  private onLogAppended(entries: readonly Entry[]): void {
    if (this.membership.onAppend(entries)) this.leader?.syncProgress();
  }

  // ---- leader-only requests --------------------------------------------------------------------

  /** The Leader, if this node leads and is not handing leadership over; NOT_LEADER otherwise. */
  private requireLeader(): Leader {
    const leader = this.leader;
    if (leader === null) throw new EngineError('NOT_LEADER', `node ${this.id} is not the leader`, { leader_id: this.lead_ });
    if (leader.transferee !== NONE) {
      throw new EngineError('NOT_LEADER', `node ${this.id} is handing leadership to ${leader.transferee}`, { leader_id: leader.transferee });
    }
    return leader;
  }

  /** Appends `data` as a new entry (leader only). Committed once a majority has persisted it. */
  propose(data: Buffer): ProposeResult {
    this.assertNoReady();
    const leader = this.requireLeader();
    if (data.length > this.cfg.proposal_max_bytes) {
      throw new EngineError('BATCH_TOO_LARGE', `proposal of ${data.length} bytes exceeds ${this.cfg.proposal_max_bytes}`, { size_bytes: data.length });
    }
    this.requireUncommittedRoom();
    const e = this.appendEntry('normal', data);
    leader.bcastAppend();
    return { index: e.index, term: e.term };
  }

  private requireUncommittedRoom(): void {
    if (this.log.lastIndex() - this.log.committed >= this.cfg.uncommitted_entries_max) {
      throw new EngineError('LIMIT_EXCEEDED', `${this.cfg.uncommitted_entries_max} entries are waiting to commit`, { uncommitted_entries_max: this.cfg.uncommitted_entries_max });
    }
  }

  /**
   * Proposes a single-server membership change (leader only). It takes effect on each node when
   * appended; only one may be uncommitted at a time, and none before an entry of this term has
   * committed (the fix for the single-server change bug found after the thesis, raft-dev 2015).
   * The leader may remove itself: it goes on leading without counting itself in any quorum and
   * steps down once the change commits (thesis §4.2.2).
   */
  proposeConfChange(change: ConfChange): ProposeResult {
    this.assertNoReady();
    const leader = this.requireLeader();
    if (leader.pending_conf_index > this.log.committed) {
      throw new EngineError('LIMIT_EXCEEDED', 'a membership change is already in progress', { pending_index: leader.pending_conf_index });
    }
    if (change.type === 'remove_node' && change.node_id === this.id && this.membership.current().voters.length <= 2) {
      // With two voters the other one cannot win an election of the old configuration without us,
      // and a restarted us, out of its own newest configuration, would never campaign: a deadlock
      // if we crash before the change commits. Hand leadership over instead; the new leader removes us.
      throw new EngineError('INVALID_ARGUMENT', 'the leader of a two-voter group cannot remove itself; transfer leadership first', { node_id: this.id });
    }
    const next = applyConfChange(this.membership.current(), change);
    if (typeof next === 'string') throw new EngineError('INVALID_ARGUMENT', next, { node_id: change.node_id });
    this.requireUncommittedRoom();
    const e = this.appendEntry('conf_change', encodeConfChangeEntry({ change, conf_state: next }));
    leader.pending_conf_index = e.index;
    leader.bcastAppend();
    return { index: e.index, term: e.term };
  }

  /** Leader transfer (thesis §3.10): bring `to` up to date, then tell it to campaign at once. */
  transferLeadership(to: NodeId): void {
    this.assertNoReady();
    const leader = this.leader;
    if (leader === null) throw new EngineError('NOT_LEADER', `node ${this.id} is not the leader`, { leader_id: this.lead_ });
    if (to === this.id || to === leader.transferee) return;
    if (!this.membership.isVoter(to)) throw new EngineError('INVALID_ARGUMENT', `node ${to} is not a voter`, { node_id: to });
    // The transfer gets one election timeout to finish (tickLeader abandons it after that).
    this.election_elapsed_ticks = 0;
    leader.startTransfer(to);
  }

  // ---- output ----------------------------------------------------------------------------------

  private send(m: Message): void {
    assert(m.to !== this.id && m.to !== NONE, `bad destination ${m.to}`);
    this.msgs.push(m);
  }

  private hardState(): HardState {
    return { term: this.term_, vote: this.vote_, commit: this.log.committed };
  }

  private softState(): SoftState {
    return { lead: this.lead_, role: this.role_ };
  }

  hasReady(): boolean {
    if (this.outstanding !== null) return false;
    return (
      this.msgs.length > 0 ||
      this.log.hasSnapshotToInstall() ||
      this.log.hasUnstable() ||
      this.log.hasNextCommitted() ||
      !sameHardState(this.hardState(), this.prev_hard_state) ||
      !sameSoftState(this.softState(), this.prev_soft_state)
    );
  }

  /** The next batch of work. Persist, then send, then apply, then `advance(ready)`. */
  ready(): Ready {
    this.assertNoReady();
    this.membership.compact(this.log.committed);
    const hs = this.hardState();
    const ss = this.softState();
    const snapshot = this.log.snapshotToInstall();
    const rd: Ready = {
      ...(snapshot === undefined ? {} : { snapshot }),
      ...(sameHardState(hs, this.prev_hard_state) ? {} : { hard_state: hs }),
      ...(sameSoftState(ss, this.prev_soft_state) ? {} : { soft_state: ss }),
      entries_to_persist: this.log.unstableEntries(),
      messages_to_send: this.msgs,
      committed_entries_to_apply: this.log.nextCommitted(this.cfg.apply_batch_max_bytes),
    };
    this.msgs = [];
    this.outstanding = rd;
    return rd;
  }

  /** The caller has persisted, sent and applied everything in `rd`. */
  advance(rd: Ready): void {
    assert(rd === this.outstanding, 'advance() with a Ready that is not the outstanding one');
    this.outstanding = null;
    if (rd.hard_state) this.prev_hard_state = rd.hard_state;
    if (rd.soft_state) this.prev_soft_state = rd.soft_state;
    if (rd.snapshot) this.log.stableSnapTo(rd.snapshot);
    const last = rd.entries_to_persist[rd.entries_to_persist.length - 1];
    if (last !== undefined) this.log.stableTo(last.index, last.term);
    const applied = rd.committed_entries_to_apply[rd.committed_entries_to_apply.length - 1];
    if (applied !== undefined) this.log.appliedTo(applied.index);
    if (last !== undefined) this.leader?.onSelfPersisted();
    this.maybeStepDownRemoved();
  }

  /**
   * Thesis §4.2.2: a leader that removed itself from the voters steps down once that change has
   * committed (its last messages, which carry the commit, are already queued). It never campaigns
   * again while the change is in its log.
   */
  private maybeStepDownRemoved(): void {
    if (this.role_ !== 'leader' || this.membership.isVoter(this.id)) return;
    if (this.log.committed < this.membership.lastChangeIndex()) return;
    this.becomeFollower(this.term_, NONE);
  }

  private assertNoReady(): void {
    assert(this.outstanding === null, 'call advance() before anything else after ready()');
  }
}

function sameHardState(a: HardState, b: HardState): boolean {
  return a.term === b.term && a.vote === b.vote && a.commit === b.commit;
}

function sameSoftState(a: SoftState, b: SoftState): boolean {
  return a.lead === b.lead && a.role === b.role;
}
