/**
 * A deterministic simulator for the Raft core: a set of nodes, each a `Raft` over a
 * `MemoryLogStorage` that plays the disk, driven through a simulated network that can drop,
 * duplicate, delay (hence reorder) and partition messages, with crashes (sometimes in the middle
 * of persisting a Ready: a torn tail) and restarts from what was persisted.
 *
 * Every source of chance is the seeded Prng given to the constructor or an action's fields, so a
 * run is a pure function of (options, actions): replaying them replays the run exactly.
 *
 * Invariants are checked as the run goes (see `checkInvariants` and the Ready handling) and a
 * violation throws a SimViolation whose message ends with the recent trace.
 */
import { isEngineError } from '../../engine/base/errors.js';
import { Prng } from '../../engine/base/prng.js';
import {
  MemoryLogStorage,
  NONE,
  decodeConfChangeEntry,
  Raft,
  type ConfChangeType,
  type ConfState,
  type Entry,
  type HardState,
  type Message,
  type NodeId,
  type RaftConfig,
  type Ready,
} from '../../replication/raft/core/index.js';

export interface SimOptions {
  readonly voters: number;
  /** Ids voters+1 .. voters+extra_nodes may join through membership changes. */
  readonly extra_nodes: number;
  readonly seed: number;
  readonly pre_vote: boolean;
  readonly check_quorum: boolean;
  readonly election_timeout_ticks: number;
  readonly heartbeat_interval_ticks: number;
  /** Small limits so batching, backoff and flow control are exercised. */
  readonly append_entries_max_count: number;
  readonly inflight_appends_max: number;
}

export interface NetFaults {
  readonly drop_pct: number;
  readonly dup_pct: number;
  readonly delay_max_ticks: number;
  /** Each tick, a random live node crashes with this chance (half of them mid-write) ... */
  readonly churn_pct: number;
  /** ... and each crashed node restarts with this one. */
  readonly restart_pct: number;
}

export const NO_FAULTS: NetFaults = { drop_pct: 0, dup_pct: 0, delay_max_ticks: 1, churn_pct: 0, restart_pct: 0 };

export type SimAction =
  | { readonly t: 'run'; readonly ticks: number }
  | { readonly t: 'propose'; readonly count: number; readonly size_bytes: number; readonly to_leader: boolean; readonly node: number }
  | { readonly t: 'partition'; readonly mask: number; readonly one_way: boolean }
  /** Cut the current leader off both ways and give it `count` proposals that can never commit there. */
  | { readonly t: 'diverge'; readonly count: number }
  /** Cut the current leader off (from the others only, or both ways). */
  | { readonly t: 'isolate_leader'; readonly one_way: boolean }
  | { readonly t: 'heal' }
  | { readonly t: 'net'; readonly faults: NetFaults }
  /** mid_write: crash during the node's next write of entries, keeping `torn` of them (0..1). */
  | { readonly t: 'crash'; readonly node: number; readonly mid_write: boolean; readonly torn: number }
  | { readonly t: 'crash_leader'; readonly mid_write: boolean; readonly torn: number }
  | { readonly t: 'restart'; readonly node: number }
  | { readonly t: 'transfer'; readonly node: number }
  | { readonly t: 'conf'; readonly type: ConfChangeType; readonly node: number }
  /**
   * Log compaction on every live node: entries up to `keep` before its applied index are replaced by
   * a snapshot. A follower that then needs them from a leader that compacted gets the snapshot.
   */
  | { readonly t: 'compact'; readonly keep: number };

export class SimViolation extends Error {
  override name = 'SimViolation';
}

interface SimNode {
  readonly id: NodeId;
  readonly bootstrap: ConfState;
  readonly storage: MemoryLogStorage;
  core: Raft | null;
  incarnation: number;
  /** Index of the last entry applied in this incarnation (applying restarts at 1 after a restart). */
  applied_index: number;
  /** Entries up to here have been checked against the global committed record. */
  commit_checked: number;
  /** Highest commit index seen in this incarnation: it must never go down. */
  commit_seen: number;
  /** Armed by a mid-write crash: crash while persisting the next Ready that has entries. */
  crash_on_write: number | null;
}

interface CommittedEntry {
  readonly term: number;
  readonly kind: Entry['kind'];
  readonly data: Buffer;
  /** Term of the node that first reported it committed: every leader of this term or later has it. */
  readonly commit_term: number;
}

const TRACE_MAX_LINES = 400;
const IN_FLIGHT_MAX = 20_000;
const READY_LOOP_MAX = 1_000;

export class RaftSim {
  readonly nodes = new Map<NodeId, SimNode>();
  private readonly prng: Prng;
  now_ticks = 0;
  /** Ticks the liveness check took (after `settle`). */
  settle_ticks = 0;
  private readonly in_flight = new Map<number, Message[]>();
  private in_flight_count = 0;
  private readonly blocked = new Set<string>();
  private net: NetFaults = NO_FAULTS;
  /** Every entry ever known committed, by index - 1. */
  readonly committed: CommittedEntry[] = [];
  /** term -> the one node that led it (Election Safety). */
  private readonly leaders = new Map<number, NodeId>();
  /** `${index}:${term}` -> (data, kind, prev_term) seen in any persisted log (Log Matching, by induction). */
  private readonly seen_entries = new Map<string, { data: Buffer; kind: Entry['kind']; prev_term: number }>();
  private proposal_seq = 0;
  private readonly trace_lines: string[] = [];
  stats = { ticks: 0, messages: 0, elections: 0, crashes: 0, proposals_accepted: 0, truncations: 0, conf_changes: 0, transfers: 0, leader_removals: 0, compactions: 0, snapshots_installed: 0 };

  constructor(readonly opts: SimOptions) {
    this.prng = new Prng(opts.seed);
    const voters = Array.from({ length: opts.voters }, (_, i) => i + 1);
    for (const id of voters) this.createNode(id, { voters, learners: [] });
  }

  // ---- nodes -----------------------------------------------------------------------------------

  private createNode(id: NodeId, bootstrap: ConfState): SimNode {
    const node: SimNode = { id, bootstrap, storage: new MemoryLogStorage(), core: null, incarnation: 0, applied_index: 0, commit_checked: 0, commit_seen: 0, crash_on_write: null };
    this.nodes.set(id, node);
    this.start(node);
    return node;
  }

  private start(node: SimNode): void {
    node.incarnation++;
    // What a snapshot covers was committed (and checked) and is restored, not re-applied.
    const snapshot_index = node.storage.firstIndex() - 1;
    node.applied_index = snapshot_index;
    node.commit_checked = snapshot_index;
    node.commit_seen = 0;
    node.core = new Raft({
      id: node.id,
      storage: node.storage,
      prng: new Prng((this.opts.seed ^ Math.imul(node.id, 0x9e3779b1) ^ Math.imul(node.incarnation, 0x85ebca6b)) >>> 0),
      conf_state: node.bootstrap,
      hard_state: node.storage.hard_state,
      pre_vote: this.opts.pre_vote,
      check_quorum: this.opts.check_quorum,
      election_timeout_ticks: this.opts.election_timeout_ticks,
      heartbeat_interval_ticks: this.opts.heartbeat_interval_ticks,
      append_entries_max_count: this.opts.append_entries_max_count,
      append_entries_max_bytes: 256,
      inflight_appends_max: this.opts.inflight_appends_max,
      apply_batch_max_bytes: 512,
      uncommitted_entries_max: 64,
    });
    this.checkCommitRecord(node, node.storage.hard_state.commit, node.storage.hard_state.term);
    this.trace(`start n${node.id}#${node.incarnation} term=${node.core.term} last=${node.core.lastIndex()} commit=${node.core.commitIndex}`);
  }

  /** Crash now, between two Readies: everything handed out so far was persisted. */
  private crash(node: SimNode): void {
    node.core = null;
    node.crash_on_write = null;
    this.stats.crashes++;
    this.trace(`crash n${node.id}`);
  }

  /**
   * Crash while persisting `rd`: a prefix of its entries reached the disk, its hard state only if
   * all of them did (entries are written first), and none of its messages left.
   */
  private crashMidWrite(node: SimNode, rd: Ready, torn: number): void {
    if (rd.snapshot) this.installSnapshot(node, rd);
    const n = rd.entries_to_persist.length;
    const k = Math.floor(torn * (n + 1));
    const kept = rd.entries_to_persist.slice(0, Math.min(k, n));
    node.storage.append(kept);
    this.recordPersisted(node, kept);
    const hs_kept = k > n && rd.hard_state !== undefined;
    if (hs_kept) node.storage.setHardState(rd.hard_state!);
    this.crash(node);
    this.trace(`  (mid-write: ${kept.length}/${n} entries from ${rd.entries_to_persist[0]?.index}, hard state ${hs_kept ? 'kept' : 'lost'}, ${rd.messages_to_send.length} msgs lost)`);
  }

  live(): SimNode[] {
    return [...this.nodes.values()].filter((n) => n.core !== null);
  }

  /** The live leader with the highest term, if any. */
  leader(): SimNode | undefined {
    let best: SimNode | undefined;
    for (const n of this.live()) if (n.core!.role === 'leader' && (best === undefined || n.core!.term > best.core!.term)) best = n;
    return best;
  }

  // ---- actions ---------------------------------------------------------------------------------

  apply(a: SimAction): void {
    this.trace(`@${this.now_ticks} ${JSON.stringify(a)}`);
    switch (a.t) {
      case 'run':
        for (let i = 0; i < a.ticks; i++) this.tick();
        break;
      case 'propose':
        this.actPropose(a.count, a.size_bytes, a.to_leader, a.node);
        break;
      case 'partition':
        this.actPartition(a.mask, a.one_way);
        break;
      case 'isolate_leader': {
        const leader = this.leader();
        if (leader !== undefined) this.actPartition(2 ** (leader.id - 1), a.one_way);
        break;
      }
      case 'diverge': {
        const leader = this.leader();
        if (leader === undefined) break;
        this.actPartition(2 ** (leader.id - 1), false);
        this.actPropose(a.count, 8, true, 0);
        break;
      }
      case 'heal':
        this.blocked.clear();
        break;
      case 'net':
        this.net = a.faults;
        break;
      case 'crash': {
        const live = this.live();
        const node = live[a.node % Math.max(1, live.length)];
        if (node === undefined) break;
        if (a.mid_write) node.crash_on_write = a.torn;
        else this.crash(node);
        break;
      }
      case 'crash_leader': {
        const leader = this.leader();
        if (leader === undefined) break;
        if (a.mid_write) leader.crash_on_write = a.torn;
        else this.crash(leader);
        break;
      }
      case 'restart': {
        const down = [...this.nodes.values()].filter((n) => n.core === null);
        const node = down[a.node % Math.max(1, down.length)];
        if (node) this.start(node);
        break;
      }
      case 'transfer':
        this.actTransfer(a.node);
        break;
      case 'conf':
        this.actConf(a.type, a.node);
        break;
      case 'compact':
        for (const node of this.live()) this.compact(node, a.keep);
        break;
    }
    this.checkInvariants();
    this.checkCommittedPrefixes();
  }

  private actPropose(count: number, size_bytes: number, to_leader: boolean, pick: number): void {
    const live = this.live();
    const target = to_leader ? this.leader() : live[pick % Math.max(1, live.length)];
    if (target === undefined) return;
    for (let i = 0; i < count; i++) {
      const tag = `p${++this.proposal_seq}@n${target.id};`;
      const data = Buffer.alloc(Math.max(size_bytes, tag.length), '.');
      data.write(tag);
      if (!this.tryLeaderCall(target, () => target.core!.propose(data))) break;
      this.stats.proposals_accepted++;
    }
    this.drain(target);
  }

  /** Runs a leader-only request; an EngineError is an expected answer, anything else a bug. */
  private tryLeaderCall(node: SimNode, call: () => unknown): boolean {
    try {
      call();
      return true;
    } catch (err) {
      if (!isEngineError(err)) throw err;
      if (!['NOT_LEADER', 'LIMIT_EXCEEDED', 'INVALID_ARGUMENT'].includes(err.code)) throw err;
      if (err.code === 'NOT_LEADER' && node.core!.role === 'leader' && node.core!.leadTransferee === NONE) {
        throw new SimViolation(`n${node.id} leads term ${node.core!.term} but answered NOT_LEADER`);
      }
      this.trace(`  n${node.id}: ${err.code} ${err.message}`);
      return false;
    }
  }

  private actPartition(mask: number, one_way: boolean): void {
    const ids = [...this.nodes.keys()];
    const side = (id: NodeId): boolean => ((mask >> (id - 1)) & 1) === 1;
    for (const a of ids) {
      for (const b of ids) {
        if (side(a) && !side(b)) {
          this.blocked.add(`${a}>${b}`);
          if (!one_way) this.blocked.add(`${b}>${a}`);
        }
      }
    }
  }

  private actTransfer(pick: number): void {
    const leader = this.leader();
    if (leader === undefined) return;
    const voters = leader.core!.confState().voters;
    const to = voters[pick % voters.length]!;
    this.tryLeaderCall(leader, () => leader.core!.transferLeadership(to));
    this.drain(leader);
  }

  private actConf(type: ConfChangeType, pick: number): void {
    const leader = this.leader();
    if (leader === undefined) return;
    const conf = leader.core!.confState();
    const universe = Array.from({ length: this.opts.voters + this.opts.extra_nodes }, (_, i) => i + 1);
    const candidates =
      type === 'add_learner'
        ? universe.filter((id) => !conf.voters.includes(id) && !conf.learners.includes(id))
        : type === 'add_voter'
          ? universe.filter((id) => !conf.voters.includes(id))
          : [...conf.voters, ...conf.learners]; // the leader too: it steps down once the change commits
    const id = candidates[pick % Math.max(1, candidates.length)];
    if (id === undefined) return;
    // A node joins with an empty log and no membership; it learns both from the leader.
    if (!this.nodes.has(id)) this.createNode(id, { voters: [], learners: [] });
    if (this.tryLeaderCall(leader, () => leader.core!.proposeConfChange({ type, node_id: id }))) {
      this.stats.conf_changes++;
      if (id === leader.id) this.stats.leader_removals++;
    }
    this.drain(leader);
  }

  /** Discards `node`'s entries up to `keep` before what it has applied, as a driver with retention would. */
  private compact(node: SimNode, keep: number): void {
    const storage = node.storage;
    const to = Math.min(node.applied_index, storage.lastIndex()) - keep;
    if (to < storage.firstIndex()) return;
    storage.compact(to, this.membershipAt(storage, to));
    this.stats.compactions++;
    this.trace(`  compact n${node.id} to ${to}@${storage.term(to)}`);
  }

  /** The membership in effect at `index` of a stored log: the newest change at or below it, else the snapshot's. */
  private membershipAt(storage: MemoryLogStorage, index: number): ConfState {
    const entries = storage.entries(storage.firstIndex(), index + 1, Number.MAX_SAFE_INTEGER);
    for (let i = entries.length - 1; i >= 0; i--) {
      const e = entries[i]!;
      if (e.kind === 'conf_change') return decodeConfChangeEntry(e.data).conf_state;
    }
    const snap = storage.snapshot().meta;
    return snap.index > 0 ? snap.conf_state : this.nodes.get([...this.nodes.keys()][0]!)!.bootstrap;
  }

  // ---- time and network ------------------------------------------------------------------------

  tick(): void {
    this.now_ticks++;
    this.stats.ticks++;
    if (this.net.churn_pct > 0) this.churn();
    for (const node of this.live()) {
      if (node.core === null) continue; // crashed while another node's work ran
      node.core.tick();
      this.drain(node);
    }
    const due = this.in_flight.get(this.now_ticks) ?? [];
    this.in_flight.delete(this.now_ticks);
    this.in_flight_count -= due.length;
    for (const m of due) {
      const dest = this.nodes.get(m.to);
      if (dest?.core == null || this.blocked.has(`${m.from}>${m.to}`)) continue;
      this.stats.messages++;
      dest.core.step(m);
      this.drain(dest);
    }
    this.checkInvariants();
  }

  /** Random crashes and restarts, one tick's worth. */
  private churn(): void {
    for (const node of this.nodes.values()) {
      if (node.core === null && this.prng.next() * 100 < this.net.restart_pct) this.start(node);
    }
    if (this.prng.next() * 100 >= this.net.churn_pct) return;
    const live = this.live();
    const node = live[this.prng.int(0, live.length)];
    if (node === undefined) return;
    this.trace(`@${this.now_ticks} churn`);
    if (this.prng.next() < 0.5) node.crash_on_write = this.prng.next();
    else this.crash(node);
  }

  private send(m: Message): void {
    if (this.blocked.has(`${m.from}>${m.to}`)) return;
    if (this.prng.next() * 100 < this.net.drop_pct) return;
    const copies = this.prng.next() * 100 < this.net.dup_pct ? 2 : 1;
    for (let i = 0; i < copies; i++) {
      if (this.in_flight_count >= IN_FLIGHT_MAX) return;
      const at = this.now_ticks + this.prng.int(1, this.net.delay_max_ticks + 1);
      const bucket = this.in_flight.get(at);
      if (bucket) bucket.push(m);
      else this.in_flight.set(at, [m]);
      this.in_flight_count++;
    }
  }

  /** Handles every Ready the node has, exactly as a real driver would: persist, send, apply, advance. */
  drain(node: SimNode): void {
    for (let n = 0; node.core !== null && node.core.hasReady(); n++) {
      if (n >= READY_LOOP_MAX) this.violation(`n${node.id} produced Readies without end`);
      const core = node.core;
      const rd = core.ready();
      if (node.crash_on_write !== null && rd.entries_to_persist.length > 0) {
        this.crashMidWrite(node, rd, node.crash_on_write);
        return;
      }
      this.persist(node, rd);
      if (rd.soft_state?.role === 'leader') this.onElected(node);
      for (const m of rd.messages_to_send) this.send(m);
      this.applyEntries(node, rd.committed_entries_to_apply);
      core.advance(rd);
    }
  }

  private persist(node: SimNode, rd: Ready): void {
    if (rd.snapshot) this.installSnapshot(node, rd);
    const first = rd.entries_to_persist[0];
    if (first !== undefined && first.index <= node.storage.lastIndex()) this.stats.truncations++;
    node.storage.append(rd.entries_to_persist);
    this.recordPersisted(node, rd.entries_to_persist);
    if (rd.hard_state) {
      node.storage.setHardState(rd.hard_state);
      if (rd.hard_state.commit < node.commit_seen) {
        this.violation(`commit went back on n${node.id}: ${node.commit_seen} -> ${rd.hard_state.commit}`);
      }
      node.commit_seen = rd.hard_state.commit;
      this.checkCommitRecord(node, rd.hard_state.commit, rd.hard_state.term);
    }
  }

  /** A snapshot from a leader: it must stand for committed entries, ending in the committed one at its index. */
  private installSnapshot(node: SimNode, rd: Ready): void {
    const s = rd.snapshot!.meta;
    const g = this.committed[s.index - 1];
    if (g === undefined || g.term !== s.term) this.violation(`n${node.id} got a snapshot at ${s.index}@${s.term}, which is not the committed entry`);
    node.storage.applySnapshot(rd.snapshot!);
    node.applied_index = s.index;
    node.commit_checked = Math.max(node.commit_checked, s.index);
    this.stats.snapshots_installed++;
    this.trace(`  n${node.id} installs snapshot ${s.index}@${s.term} voters=${s.conf_state.voters.join(',')} learners=${s.conf_state.learners.join(',')}`);
  }

  // ---- invariants ------------------------------------------------------------------------------

  /** Log Matching by induction: an (index, term) pair names one entry and one predecessor term everywhere. */
  private recordPersisted(node: SimNode, entries: readonly Entry[]): void {
    for (const e of entries) {
      const key = `${e.index}:${e.term}`;
      const prev_term = node.storage.term(e.index - 1) ?? -1;
      const seen = this.seen_entries.get(key);
      if (seen === undefined) {
        this.seen_entries.set(key, { data: e.data, kind: e.kind, prev_term });
      } else if (seen.prev_term !== prev_term || seen.kind !== e.kind || !seen.data.equals(e.data)) {
        this.violation(`log matching: n${node.id} holds a different entry ${key} (prev term ${prev_term} vs ${seen.prev_term})`);
      }
    }
  }

  /** Entries up to `commit` on `node` join (or must equal) the global committed record. */
  private checkCommitRecord(node: SimNode, commit: number, term: number): void {
    if (commit <= node.commit_checked) return;
    const entries = node.storage.entries(node.commit_checked + 1, commit + 1, Number.MAX_SAFE_INTEGER);
    for (const e of entries) {
      const g = this.committed[e.index - 1];
      if (g === undefined) {
        if (e.index !== this.committed.length + 1) this.violation(`commit record gap at ${e.index}`);
        this.committed.push({ term: e.term, kind: e.kind, data: e.data, commit_term: term });
        this.trace(`  commit ${e.index}@${e.term} (n${node.id} term ${term}) ${e.kind === 'conf_change' ? e.data.toString() : e.data.toString().split(';')[0]}`);
      } else if (g.term !== e.term || g.kind !== e.kind || !g.data.equals(e.data)) {
        this.violation(`committed entry ${e.index} changed: was ${g.term}, n${node.id} committed ${e.term}`);
      }
    }
    node.commit_checked = commit;
  }

  private applyEntries(node: SimNode, entries: readonly Entry[]): void {
    for (const e of entries) {
      if (e.index !== node.applied_index + 1) this.violation(`n${node.id} applied ${e.index} after ${node.applied_index}`);
      const g = this.committed[e.index - 1];
      if (g === undefined || g.term !== e.term || !g.data.equals(e.data)) {
        this.violation(`n${node.id} applied ${e.index}@${e.term}, which is not the committed entry`);
      }
      node.applied_index = e.index;
    }
  }

  private onElected(node: SimNode): void {
    const term = node.core!.term;
    this.stats.elections++;
    this.trace(`  n${node.id} leads term ${term}`);
    const other = this.leaders.get(term);
    if (other !== undefined && other !== node.id) this.violation(`election safety: n${other} and n${node.id} both led term ${term}`);
    this.leaders.set(term, node.id);
  }

  /** After every tick: one leader per term, commit monotonic, leaders complete. */
  checkInvariants(): void {
    for (const node of this.live()) {
      const core = node.core!;
      if (core.commitIndex < node.commit_seen) this.violation(`commit went back on n${node.id}`);
      if (core.role !== 'leader') continue;
      const other = this.leaders.get(core.term);
      if (other !== undefined && other !== node.id) this.violation(`election safety: n${other} and n${node.id} lead term ${core.term}`);
      this.leaders.set(core.term, node.id);
      this.checkLeaderCompleteness(node);
    }
  }

  /** §5.4: a leader of term T holds every entry committed in a term <= T. */
  private checkLeaderCompleteness(node: SimNode): void {
    const term = node.core!.term;
    // Entries before the snapshot are gone; the snapshot's own index still has its term.
    for (let i = node.storage.firstIndex() - 2; i < this.committed.length; i++) {
      if (i < 0) continue;
      const g = this.committed[i]!;
      if (g.commit_term > term) continue;
      if (node.storage.term(i + 1) !== g.term) {
        this.violation(`leader completeness: n${node.id} leads term ${term} without committed entry ${i + 1}@${g.term}`);
      }
    }
  }

  /** Every live node's log up to its commit index is a prefix of the committed record. */
  checkCommittedPrefixes(): void {
    for (const node of this.live()) {
      const commit = node.core!.commitIndex;
      if (commit > this.committed.length) this.violation(`n${node.id} commit ${commit} beyond the record ${this.committed.length}`);
      for (let i = Math.max(1, node.storage.firstIndex() - 1); i <= commit; i++) {
        if (node.storage.term(i) !== this.committed[i - 1]!.term) this.violation(`n${node.id} entry ${i} differs from the committed one`);
      }
    }
  }

  // ---- liveness --------------------------------------------------------------------------------

  /**
   * Stops every fault (heals the network, restarts everyone), then requires that within
   * `max_ticks` a leader is elected and a fresh proposal is applied by every voter it knows.
   * Returns the ticks it took.
   */
  settle(max_ticks: number): number {
    this.trace(`@${this.now_ticks} settle`);
    // Allow for catching up the longest log at the configured flow-control window as well.
    const longest = Math.max(...[...this.nodes.values()].map((n) => n.storage.lastIndex()));
    max_ticks += 4 * Math.ceil(longest / (this.opts.append_entries_max_count * this.opts.inflight_appends_max));
    this.blocked.clear();
    this.net = NO_FAULTS;
    const retired = this.retiredNodes();
    for (const node of this.nodes.values()) {
      node.crash_on_write = null;
      if (node.core === null && !retired.has(node.id)) this.start(node);
    }
    const proposed = new Map<number, { index: number; data: Buffer }>();
    for (let t = 1; t <= max_ticks; t++) {
      const now_retired = this.retiredNodes();
      for (const node of this.live()) {
        if (!now_retired.has(node.id)) continue;
        this.trace(`  n${node.id} was removed: shut down`);
        this.crash(node);
      }
      this.tick();
      const leader = this.leader();
      if (leader === undefined) continue;
      const core = leader.core!;
      if (!proposed.has(core.term) && core.leadTransferee === NONE) {
        const data = Buffer.from(`liveness@${core.term}`);
        try {
          const r = core.propose(data);
          proposed.set(core.term, { index: r.index, data });
        } catch (err) {
          // A full uncommitted window drains once the followers catch up: try again next tick.
          if (!isEngineError(err, 'LIMIT_EXCEEDED')) throw err;
        }
        this.drain(leader);
      }
      const p = proposed.get(core.term);
      if (p === undefined) continue;
      const done = core.confState().voters.every((id) => {
        const n = this.nodes.get(id);
        return n?.core != null && n.applied_index >= p.index;
      });
      if (done && this.committed[p.index - 1]?.data.equals(p.data)) {
        this.checkCommittedPrefixes();
        this.settle_ticks = t;
        return t;
      }
    }
    this.violation(`liveness: no proposal committed on all voters within ${max_ticks} ticks after faults stopped`);
  }

  /**
   * Plain Raft (neither pre-vote nor check-quorum) has no defence against a server that was removed
   * but keeps running: it never learns of its removal, times out again and again, and each
   * RequestVote it sends with a higher term deposes the leader (Raft thesis §4.2.3; etcd's raft is
   * the same without CheckQuorum). Its liveness assumes that removed servers are shut down once the
   * removal is committed, as the thesis's operator does, so settle() does that in plain Raft only.
   * With pre-vote or check-quorum (the production setting) removed servers stay up and must not
   * stop progress. Removed: in neither the last committed membership nor the newest membership in
   * any other node's log (so a node whose addition is still pending is not).
   */
  private retiredNodes(): Set<NodeId> {
    const retired = new Set<NodeId>();
    if (this.opts.pre_vote || this.opts.check_quorum) return retired;
    let committed: ConfState = { voters: Array.from({ length: this.opts.voters }, (_, i) => i + 1), learners: [] };
    for (let i = this.committed.length - 1; i >= 0; i--) {
      const e = this.committed[i]!;
      if (e.kind !== 'conf_change') continue;
      committed = decodeConfChangeEntry(e.data).conf_state;
      break;
    }
    const newest = new Map([...this.nodes.values()].map((n) => [n.id, this.membershipAt(n.storage, n.storage.lastIndex())] as const));
    const member = (id: NodeId, c: ConfState) => c.voters.includes(id) || c.learners.includes(id);
    for (const id of this.nodes.keys()) {
      if (member(id, committed)) continue;
      if ([...newest].some(([other, c]) => other !== id && member(id, c))) continue;
      retired.add(id);
    }
    return retired;
  }


  // ---- reporting -------------------------------------------------------------------------------

  trace(line: string): void {
    this.trace_lines.push(line);
    if (this.trace_lines.length > TRACE_MAX_LINES) this.trace_lines.splice(0, this.trace_lines.length - TRACE_MAX_LINES);
  }

  describe(): string {
    const nodes = [...this.nodes.values()].map((n) => {
      const c = n.core;
      if (c === null) return `  n${n.id}: down (stored last=${n.storage.lastIndex()} term=${n.storage.hard_state.term})`;
      return `  n${n.id}: ${c.role} term=${c.term} lead=${c.lead} last=${c.lastIndex()} commit=${c.commitIndex} applied=${n.applied_index} conf=${JSON.stringify(c.confState())}`;
    });
    return [`at tick ${this.now_ticks}, committed ${this.committed.length}`, ...nodes].join('\n');
  }

  violation(what: string): never {
    throw new SimViolation(`${what}\n${this.describe()}\n--- last ${this.trace_lines.length} trace lines ---\n${this.trace_lines.join('\n')}`);
  }
}

/** Runs one whole simulation: the actions, then the liveness check. Throws SimViolation on a broken invariant. */
export function runSimulation(opts: SimOptions, actions: readonly SimAction[], liveness_max_ticks: number): RaftSim {
  const sim = new RaftSim(opts);
  try {
    for (const a of actions) sim.apply(a);
    sim.settle(liveness_max_ticks);
  } catch (err) {
    if (err instanceof SimViolation) throw err;
    // An assertion inside the core (or any other crash): keep the trace with it.
    const e = err as Error;
    sim.violation(`${e.name}: ${e.message}\n${e.stack ?? ''}`);
  }
  return sim;
}

// ---- a hand-driven cluster for unit tests ------------------------------------------------------

/** Options every TestCluster node shares (ids, storage, prng and membership are per node). */
export type ClusterOptions = Partial<Omit<RaftConfig, 'id' | 'storage' | 'prng' | 'conf_state' | 'hard_state'>>;

export interface ClusterNode {
  readonly id: NodeId;
  readonly bootstrap: ConfState;
  readonly storage: MemoryLogStorage;
  core: Raft | null;
  /** Entries applied in this incarnation, in order. */
  applied: Entry[];
}

/** Entries with the given terms at indexes 1, 2, ...; data is `index@term`. */
export function entriesWithTerms(terms: readonly number[], first_index = 1): Entry[] {
  return terms.map((term, i) => ({ index: first_index + i, term, kind: 'normal' as const, data: Buffer.from(`${first_index + i}@${term}`) }));
}

/**
 * A small cluster driven step by step: nothing moves unless the test ticks a node or delivers
 * messages, so a test can build the exact situation a paper figure describes.
 */
export class TestCluster {
  readonly nodes = new Map<NodeId, ClusterNode>();
  /** Sent and not yet delivered, in order. */
  queue: Message[] = [];
  /** Every message delivered so far (for assertions on the conversation). */
  readonly delivered: Message[] = [];
  private readonly cut = new Set<string>();
  /** Messages for which this is false are dropped at delivery (tests use it to hold a scene still). */
  keep: (m: Message) => boolean = () => true;

  /** `voters` (and `learners`) start with a shared bootstrap membership and the given stored logs. */
  constructor(
    voters: readonly NodeId[],
    private readonly options: ClusterOptions = {},
    logs: ReadonlyMap<NodeId, { entries?: readonly Entry[]; hard_state?: HardState }> = new Map(),
    learners: readonly NodeId[] = [],
  ) {
    for (const id of [...voters, ...learners]) this.add(id, { voters, learners }, logs.get(id)?.entries ?? [], logs.get(id)?.hard_state);
  }

  add(id: NodeId, bootstrap: ConfState, entries: readonly Entry[] = [], hard_state?: HardState): ClusterNode {
    const storage = new MemoryLogStorage(entries);
    if (hard_state) storage.setHardState(hard_state);
    const node: ClusterNode = { id, bootstrap, storage, core: null, applied: [] };
    this.nodes.set(id, node);
    this.restart(id);
    return node;
  }

  node(id: NodeId): ClusterNode {
    const n = this.nodes.get(id);
    if (n === undefined) throw new Error(`no node ${id}`);
    return n;
  }

  core(id: NodeId): Raft {
    const c = this.node(id).core;
    if (c === null) throw new Error(`node ${id} is down`);
    return c;
  }

  /** Starts (or restarts) a node from what its storage holds. */
  restart(id: NodeId, extra: ClusterOptions = {}): Raft {
    const node = this.node(id);
    node.applied = [];
    node.core = new Raft({
      ...this.options,
      ...extra,
      id,
      storage: node.storage,
      prng: new Prng(id * 7919),
      conf_state: node.bootstrap,
      hard_state: node.storage.hard_state,
    });
    return node.core;
  }

  crash(id: NodeId): void {
    this.node(id).core = null;
    this.queue = this.queue.filter((m) => m.to !== id);
  }

  /** Persist, send and apply every pending Ready of every live node, as a real driver would. */
  flush(): void {
    for (const node of this.nodes.values()) {
      const core = node.core;
      while (core !== null && core.hasReady()) {
        const rd = core.ready();
        if (rd.snapshot) node.storage.applySnapshot(rd.snapshot);
        node.storage.append(rd.entries_to_persist);
        if (rd.hard_state) node.storage.setHardState(rd.hard_state);
        for (const m of rd.messages_to_send) if (!this.cut.has(`${m.from}>${m.to}`)) this.queue.push(m);
        node.applied.push(...rd.committed_entries_to_apply);
        core.advance(rd);
      }
    }
  }

  /** Delivers queued messages, and whatever they cause, until none is left (or `keep` refuses one). */
  deliver(max_messages = 10_000): void {
    this.flush();
    for (let n = 0; this.queue.length > 0; n++) {
      if (n >= max_messages) throw new Error('messages never stop');
      const m = this.queue.shift()!;
      const dest = this.nodes.get(m.to)?.core;
      if (dest == null || this.cut.has(`${m.from}>${m.to}`) || !this.keep(m)) continue;
      this.delivered.push(m);
      dest.step(m);
      this.flush();
    }
  }

  /** Ticks one node `n` times, delivering after each tick. */
  tick(id: NodeId, n = 1): void {
    for (let i = 0; i < n; i++) {
      this.core(id).tick();
      this.deliver();
    }
  }

  /** Ticks every live node (or those in `ids`) `n` times, delivering after each round. */
  tickAll(n = 1, ids: readonly NodeId[] = [...this.nodes.keys()]): void {
    for (let i = 0; i < n; i++) {
      for (const id of ids) this.nodes.get(id)?.core?.tick();
      this.deliver();
    }
  }

  /** Ticks `id` alone until it leads (an election timeout is < 2x the configured one). */
  elect(id: NodeId): Raft {
    const core = this.core(id);
    const limit_ticks = 4 * (this.options.election_timeout_ticks ?? 10);
    for (let i = 0; i < limit_ticks && core.role !== 'leader'; i++) this.tick(id);
    if (core.role !== 'leader') throw new Error(`node ${id} did not win an election (${core.role}, term ${core.term})`);
    return core;
  }

  /** Cuts both directions between `id` and everyone else. */
  isolate(id: NodeId): void {
    for (const other of this.nodes.keys()) {
      if (other === id) continue;
      this.cut.add(`${id}>${other}`);
      this.cut.add(`${other}>${id}`);
    }
  }

  cutLink(from: NodeId, to: NodeId): void {
    this.cut.add(`${from}>${to}`);
  }

  heal(): void {
    this.cut.clear();
  }

  /** The terms of a node's stored log, index 1 first. */
  terms(id: NodeId): number[] {
    return this.node(id).storage.all().map((e) => e.term);
  }
}
