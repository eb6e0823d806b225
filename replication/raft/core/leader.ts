/**
 * What only a leader has, for exactly one term: a Progress per member, the commit rule, check
 * quorum, the pending membership change and a leadership transfer in progress. Created when a
 * node wins an election and dropped when it steps down, so no follower can use stale progress.
 */
import { assert } from '../../../engine/base/assert.js';
import type { ResolvedRaftConfig } from './config.js';
import type { Membership } from './membership.js';
import { Progress, type ProgressState } from './progress.js';
import { quorumActive, quorumMatchIndex } from './quorum.js';
import type { RaftLog } from './raft-log.js';
import { NONE, type AppendResponse, type HeartbeatResponse, type Message, type NodeId } from './types.js';

export interface ProgressView {
  readonly match: number;
  readonly next: number;
  readonly state: ProgressState;
  readonly is_learner: boolean;
}

export interface LeaderContext {
  readonly id: NodeId;
  readonly term: number;
  readonly cfg: ResolvedRaftConfig;
  readonly log: RaftLog;
  readonly membership: Membership;
  readonly send: (m: Message) => void;
}

export class Leader {
  private readonly progress = new Map<NodeId, Progress>();
  /** The voter leadership is being handed to, or NONE. */
  transferee: NodeId = NONE;
  /** Index of the newest conf change it may have to wait for; a new one waits until it commits. */
  pending_conf_index = 0;

  constructor(private readonly ctx: LeaderContext) {
    assert(ctx.membership.isVoter(ctx.id), 'only a voter leads');
    this.syncProgress();
    const self = this.progress.get(ctx.id)!;
    self.maybeUpdate(ctx.log.stableLastIndex());
    self.recent_active = true;
  }

  progressOf(id: NodeId): ProgressView | undefined {
    const pr = this.progress.get(id);
    return pr && { match: pr.match, next: pr.next, state: pr.state, is_learner: pr.is_learner };
  }

  /**
   * One Progress per member, no more (after the membership changed), and always one for the
   * leader itself: a leader that removed itself keeps leading, without counting itself in any
   * quorum, until that change commits (thesis §4.2.2).
   */
  syncProgress(): void {
    const conf = this.ctx.membership.current();
    for (const id of [...conf.voters, ...conf.learners]) {
      const pr = this.progress.get(id);
      const is_learner = conf.learners.includes(id);
      if (pr === undefined) this.progress.set(id, new Progress(Math.max(this.ctx.log.firstIndex(), this.ctx.log.lastIndex()), is_learner, this.ctx.cfg.inflight_appends_max));
      else pr.is_learner = is_learner;
    }
    for (const id of [...this.progress.keys()]) {
      if (this.ctx.membership.isMember(id) || id === this.ctx.id) continue;
      this.progress.delete(id);
      if (id === this.transferee) this.transferee = NONE;
    }
  }

  /** Our own entries count toward a quorum only once durable: called after each persist. */
  onSelfPersisted(): void {
    this.progress.get(this.ctx.id)!.maybeUpdate(this.ctx.log.stableLastIndex());
    if (this.maybeCommit()) this.bcastAppend();
  }

  /** Check quorum (thesis §6.2): did a majority of voters answer since the last round? */
  checkQuorum(): boolean {
    const ok = quorumActive(this.ctx.membership.current().voters, (id) => id === this.ctx.id || this.progress.get(id)?.recent_active === true);
    for (const [id, pr] of this.progress) if (id !== this.ctx.id) pr.recent_active = false;
    return ok;
  }

  handleAppendResponse(m: AppendResponse): void {
    const pr = this.progress.get(m.from);
    if (pr === undefined) return; // no longer a member
    pr.recent_active = true;
    const log = this.ctx.log;
    if (!m.success) {
      // The leader's own view of the hint: skip every entry whose term is above the follower's.
      const hint_next = m.hint_term > 0 ? log.findConflictByTerm(m.hint_index, m.hint_term).index + 1 : m.hint_index + 1;
      if (pr.maybeDecrTo(m.reject_index, hint_next)) this.maybeSendAppend(m.from, true);
      return;
    }
    assert(m.match_index <= log.lastIndex(), `${m.from} matched ${m.match_index} beyond our last ${log.lastIndex()}`);
    if (!pr.maybeUpdate(m.match_index)) return;
    if (pr.state === 'probe') pr.becomeReplicate();
    if (this.maybeCommit()) this.bcastAppend();
    for (let sent = 0; this.maybeSendAppend(m.from, false); sent++) {
      assert(sent <= this.ctx.cfg.inflight_appends_max, 'append loop exceeds inflight_appends_max');
    }
    if (m.from === this.transferee && pr.match === log.lastIndex()) this.sendTimeoutNow(m.from);
  }

  handleHeartbeatResponse(m: HeartbeatResponse): void {
    const pr = this.progress.get(m.from);
    if (pr === undefined) return;
    pr.recent_active = true;
    pr.onHeartbeatResponse();
    if (pr.match < this.ctx.log.lastIndex()) this.maybeSendAppend(m.from, true);
  }

  /** Sends the next append to `to` unless its progress is paused. True if something was sent. */
  maybeSendAppend(to: NodeId, send_if_empty: boolean): boolean {
    const { log, cfg } = this.ctx;
    const pr = this.progress.get(to)!;
    if (pr.isPaused()) return false;
    const prev_log_index = pr.next - 1;
    const prev_log_term = log.term(prev_log_index);
    if (pr.next < log.firstIndex() || prev_log_term === undefined) return this.sendSnapshot(to, pr);
    const last = log.lastIndex();
    const entries = pr.next <= last ? log.slice(pr.next, Math.min(last + 1, pr.next + cfg.append_entries_max_count), cfg.append_entries_max_bytes) : [];
    if (entries.length === 0 && !send_if_empty) return false;
    this.ctx.send({ type: 'append', from: this.ctx.id, to, term: this.ctx.term, prev_log_index, prev_log_term, entries, commit: log.committed });
    pr.sent(prev_log_index + entries.length, entries.length);
    return true;
  }

  /**
   * The follower needs entries this log has discarded: send the snapshot that stands in for them
   * (§7). The progress waits in probe for the answer (an append_response at the snapshot's index);
   * if the snapshot is lost, the next heartbeat response lets it go out again.
   */
  private sendSnapshot(to: NodeId, pr: Progress): boolean {
    const snapshot = this.ctx.log.snapshot();
    assert(snapshot.meta.index >= pr.next, `the snapshot at ${snapshot.meta.index} does not cover index ${pr.next}`);
    if (pr.state === 'replicate') pr.becomeProbe();
    this.ctx.send({ type: 'snapshot', from: this.ctx.id, to, term: this.ctx.term, snapshot });
    pr.sent(pr.next - 1, 0);
    this.snapshots_sent++;
    return true;
  }

  /** Snapshots sent in this term (tests, metrics). */
  snapshots_sent = 0;

  bcastAppend(): void {
    for (const id of this.progress.keys()) if (id !== this.ctx.id) this.maybeSendAppend(id, true);
  }

  bcastHeartbeat(): void {
    for (const [id, pr] of this.progress) {
      if (id === this.ctx.id) continue;
      const commit = Math.min(pr.match, this.ctx.log.committed);
      this.ctx.send({ type: 'heartbeat', from: this.ctx.id, to: id, term: this.ctx.term, commit });
    }
  }

  /** §5.3, §5.4.2: commit the highest index a majority has, but only by counting an entry of our term. */
  maybeCommit(): boolean {
    const log = this.ctx.log;
    const index = quorumMatchIndex(this.ctx.membership.current().voters, (id) => this.progress.get(id)?.match ?? 0);
    if (index <= log.committed || log.term(index) !== this.ctx.term) return false;
    log.commitTo(index);
    return true;
  }

  /** Leader transfer (thesis §3.10): bring `to` up to date, then tell it to campaign at once. */
  startTransfer(to: NodeId): void {
    this.transferee = to;
    const pr = this.progress.get(to)!;
    if (pr.match === this.ctx.log.lastIndex()) this.sendTimeoutNow(to);
    else this.maybeSendAppend(to, true);
  }

  private sendTimeoutNow(to: NodeId): void {
    this.ctx.send({ type: 'timeout_now', from: this.ctx.id, to, term: this.ctx.term });
  }
}
