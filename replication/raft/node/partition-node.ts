/**
 * The driver around one partition's Raft core (docs/raft.md, "Wiring"): it owns the timer-driven
 * inputs (ticks, peer messages, proposals) and carries out each Ready against the partition's
 * segment store, which is the Raft log itself:
 *
 *   1. persist `entries_to_persist`: cut a conflicting suffix off the segment store
 *      (PartitionLog.truncateTo), then append the entries as record batches with the entry's term in
 *      partitionLeaderEpoch (PartitionLog.appendReplicated, fsynced per the topic's policy). A
 *      leader stamps its own proposals (offset, term) in place; a follower stores the leader's
 *      bytes as they are, at the same offsets;
 *   2. persist `hard_state` in the LMDB catalog, durably;
 *   3. send `messages_to_send`, after loading the bytes of lazy entries from the segment store;
 *   4. apply `committed_entries_to_apply`: the high watermark moves to the end of the last one;
 *   5. `advance()`, then answer the producers whose batches are now durable (acks=leader) or
 *      committed (acks=all), or lost (overwritten by another leader's log: NOT_LEADER).
 *
 * Inputs that arrive while a Ready is being carried out are queued and fed in afterwards: the core
 * is never called between ready() and advance(). One Ready at a time per partition.
 */
import { AssertionError, assert } from '../../../engine/base/assert.js';
import { EngineError, closed, isEngineError } from '../../../engine/base/errors.js';
import { Prng } from '../../../engine/base/prng.js';
import type { Catalog, PartitionKey } from '../../../engine/catalog/catalog.js';
import { batchBaseOffset, batchLastOffsetDelta, batchLeaderEpoch, forEachBatch, stampBatch } from '../../../engine/format/record-batch.js';
import type { PartitionLog, PartitionReplicator } from '../../../engine/log/partition-log.js';
import { ProducerStateTable, producerBatchOf } from '../../../engine/log/producer-state.js';
import type { AppendOptions, AppendResult } from '../../../engine/log/types.js';
import { decodeConfChangeEntry, type ConfChange } from '../core/conf-change.js';
import { raftDefaults } from '../core/config.js';
import { Raft } from '../core/raft.js';
import { NONE, type AppendRequest, type ConfState, type Entry, type HardState, type Message, type NodeId, type ProposeResult, type Ready, type Role, type Snapshot } from '../core/types.js';
import { BatchIndex, BatchLogStorage, decodeSnapshotData, isLazyEntry, type IndexedBatch } from './batch-index.js';
import { confChangeBatch, confChangeOfBatch } from './conf-batch.js';
import { noopBatch } from './noop-batch.js';

export interface NodeLogger {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

export interface PartitionNodeOptions {
  node_id: NodeId;
  /**
   * The partition's initial replica set (the bootstrap configuration): in effect until the log
   * holds a membership change, which then says who the voters and learners are.
   */
  voters: readonly NodeId[];
  log: PartitionLog;
  catalog: Catalog;
  /** Hands messages (entries' bytes loaded) to the transport. */
  send: (messages: Message[]) => void;
  /** HOST:PORT of a node, for NOT_LEADER answers ('' if unknown). */
  address_of: (id: NodeId) => string;
  logger: NodeLogger;
  election_timeout_ticks?: number;
  heartbeat_interval_ticks?: number;
  /** Seed of the election jitter (default: random). */
  seed?: number;
  /** Queued peer messages beyond this are dropped (Raft retransmits). */
  inbox_max?: number;
}

interface Proposal {
  batches: Buffer[];
  acks: 'all' | 'leader';
  resolve: (r: AppendResult) => void;
  reject: (e: unknown) => void;
}

/** A proposal in the log, waiting to be durable (acks=leader) or committed (acks=all). */
interface Pending {
  first: number;
  last: number;
  term: number;
  acks: 'all' | 'leader';
  persisted: boolean;
  /** Its offsets, once stored (retention may later discard its first entries from the index). */
  offsets?: AppendResult;
  resolve: (r: AppendResult) => void;
  reject: (e: unknown) => void;
}

/** Where an idempotent producer's batch is in the Raft log: a duplicate waits on that entry. */
export interface EntryRef {
  index: number;
  term: number;
}

export interface ReplicaStatus {
  node_id: NodeId;
  match_index: number;
  next_index: number;
  state: string;
  is_learner: boolean;
}

export interface PartitionRaftStatus {
  leader_id: NodeId;
  term: number;
  role: Role;
  commit_index: number;
  last_index: number;
  /** On the leader only: each member's progress. */
  replicas: ReplicaStatus[];
  /** The membership in effect on this node (the newest change in its log, committed or not). */
  voters: NodeId[];
  learners: NodeId[];
  failed: string | null;
}

const APPEND_CHUNK_BYTES = 64 * 1024 * 1024;
const LOAD_READ_BYTES = 4 * 1024 * 1024;
const PERSIST_RETRY_MAX_MS = 5_000;
/** A commit index that is the only change of the hard state is stored at most this often (see carryOut). */
const COMMIT_STORE_INTERVAL_MS = 200;

/** Something waiting for the core to reach a state (a transfer done, a change committed): see `until`. */
interface Watcher {
  /** True: done. May throw: failed. Checked after each round of Readies and each tick. */
  check: () => boolean;
  resolve: () => void;
  reject: (e: unknown) => void;
  timer: NodeJS.Timeout;
}

export class PartitionNode implements PartitionReplicator {
  readonly topic: string;
  readonly partition: number;
  private readonly key: PartitionKey;
  private readonly raft: Raft;
  private ticks = 0;
  private inbox: Message[] = [];
  private proposals: Proposal[] = [];
  /** Leader requests (transfer, membership change) to run on the core between Readies. */
  private ops: Array<{ run: () => void; reject: (e: unknown) => void }> = [];
  private readonly watchers = new Set<Watcher>();
  private pending: Pending[] = [];
  /** Buffers this node proposed: stamped (offset, term) when persisted. Anything else must arrive stamped. */
  private readonly own = new WeakSet<Buffer>();
  /**
   * Idempotent producers' state of this node's Raft log: every entry it holds (persisted, from
   * whichever leader) and, on a leader, its proposals not yet persisted. Checked on propose.
   */
  private readonly producers: ProducerStateTable<EntryRef>;
  /** Leader: producer ids of proposals recorded in `producers` and not persisted yet, by Raft index. */
  private readonly unpersisted = new Map<number, number>();
  private running: Promise<void> | null = null;
  private stopped = false;
  private failure: string | null = null;
  private readonly inbox_max: number;
  /** Ready rounds carried out (tests and metrics). */
  readies = 0;
  /** The hard state last written to the catalog. */
  private persisted: HardState;
  /** A hard state whose only change is the commit index, waiting to be stored (see carryOut). */
  private commit_to_store: HardState | null = null;
  private commit_store_timer: NodeJS.Timeout | null = null;

  private readonly storage: BatchLogStorage;

  private constructor(
    private readonly o: PartitionNodeOptions,
    private readonly index: BatchIndex,
    hs: HardState,
    producers: ProducerStateTable<EntryRef>,
    snapshot_conf: ConfState | null,
  ) {
    this.producers = producers;
    this.topic = o.log.topic;
    this.partition = o.log.partition;
    this.key = [this.topic, this.partition];
    this.inbox_max = o.inbox_max ?? 8192;
    this.persisted = hs;
    const storage = new BatchLogStorage(index);
    this.storage = storage;
    storage.snapshot_conf = snapshot_conf ?? { voters: [...o.voters], learners: [] };
    // The membership at the commit index: the newest change at or below it, else the snapshot's,
    // else the bootstrap configuration. The point must not be above the commit index: an
    // uncommitted tail can still be cut, and the core would take that for undoing a committed
    // change. The core replays the changes in [commit + 1, last] itself (BatchLogStorage hands them
    // out with their data).
    const committed_conf = index.lastConfChangeAtOrBelow(hs.commit);
    const conf_state = committed_conf ? decodeConfChangeEntry(committed_conf[1]).conf_state : storage.snapshot_conf;
    this.raft = new Raft({
      id: o.node_id,
      storage,
      prng: new Prng(o.seed ?? (Math.random() * 2 ** 32) >>> 0),
      conf_state,
      conf_state_index: hs.commit,
      hard_state: hs,
      // Everything up to the commit index is applied: applying is moving the high watermark.
      applied_index: hs.commit,
      election_timeout_ticks: o.election_timeout_ticks ?? raftDefaults.election_timeout_ticks,
      heartbeat_interval_ticks: o.heartbeat_interval_ticks ?? raftDefaults.heartbeat_interval_ticks,
      // One entry is one batch: the core must accept any batch the topic accepts.
      proposal_max_bytes: Math.max(raftDefaults.proposal_max_bytes, o.log.config.max_message_bytes),
    });
  }

  /**
   * Rebuilds the batch index from the partition's segments, reads the hard state, builds the core,
   * sets the high watermark to the persisted commit point and takes over the partition's produce.
   */
  static async open(o: PartitionNodeOptions): Promise<PartitionNode> {
    const log = o.log;
    const key: PartitionKey = [log.topic, log.partition];
    const snap = o.catalog.getRaftSnapshot(key);
    if (snap !== null && log.logStartOffset < snap.next_offset) {
      // A crash came between storing the snapshot and deleting what it stands for: finish that. An
      // empty log was cut for a snapshot from the leader (installSnapshot) and restarts at its end.
      if (log.logEndOffset <= snap.next_offset) {
        // Nothing at or past the snapshot's end: an install that a crash interrupted (or whose cut
        // a power loss undid). What is below the snapshot is not needed: start at its end.
        if (log.logEndOffset > log.logStartOffset) await log.truncateTo(log.logStartOffset);
        await log.startAt(snap.next_offset, { forget_archived: true });
      } else {
        await log.discardBelow(snap.next_offset);
      }
    }
    if (snap !== null && log.logStartOffset !== snap.next_offset) {
      throw new EngineError(
        'CORRUPT_SEGMENT',
        `${log.topic}/${log.partition}: the Raft snapshot says the local log starts at offset ${snap.next_offset} (entry ${snap.index + 1}), but it starts at ${log.logStartOffset}; the Raft indexes of its batches are unknown. Move this partition's data away and let the node catch up from the leader`,
        { snapshot_next_offset: snap.next_offset, log_start_offset: log.logStartOffset },
      );
    }
    const index = new BatchIndex(log.logStartOffset, snap === null ? undefined : { index: snap.index, term: snap.term });
    // The same scan rebuilds the idempotent producers' state of the whole local log.
    const producers = new ProducerStateTable<EntryRef>();
    await log.scanLocalBatches((b) => {
      index.push({ base_offset: b.base_offset, next_offset: b.last_offset + 1, term: b.leader_epoch, size_bytes: b.size_bytes });
      if (b.producer !== null) producers.replay(b.producer, { index: index.lastIndex, term: b.leader_epoch });
      // Membership changes are control batches: the configuration is recovered from the log itself.
      const conf = b.control_bytes ? confChangeOfBatch(b.control_bytes) : null;
      if (conf !== null) index.setConfChange(index.lastIndex, conf);
    });
    const stored = o.catalog.getRaftState(key) ?? { term: 0, vote: NONE, commit: 0 };
    // Everything a snapshot stands for was committed (a crash may have come before the hard state
    // that followed an installed snapshot was stored).
    let commit = Math.max(stored.commit, index.firstIndex - 1);
    if (commit > index.lastIndex) {
      // Only possible when segments were not fsynced (flush.ms / flush.messages > 1) and the machine
      // lost its page cache: the commit point refers to batches that are gone. Raft cannot repair
      // that from here; start from what is stored and let the leader bring the rest back.
      o.logger.warn({ topic: log.topic, partition: log.partition, commit, last_index: index.lastIndex }, 'raft: persisted commit index is beyond the stored log (unsynced segments lost); clamping');
      commit = index.lastIndex;
    }
    const snapshot_conf = snap === null ? null : { voters: snap.voters, learners: snap.learners };
    const node = new PartitionNode(o, index, { term: stored.term, vote: stored.vote, commit }, producers, snapshot_conf);
    log.advanceHighWatermark(index.nextOffset(commit));
    log.setReplicator(node);
    return node;
  }

  // ---- inputs ----------------------------------------------------------------------------------

  tick(): void {
    if (this.stopped) return;
    // A partition whose Ready is slow (a slow disk) must not get a burst of ticks afterwards.
    if (this.ticks < 3) this.ticks++;
    this.kick();
  }

  step(m: Message): void {
    if (this.stopped || m.to !== this.o.node_id) return;
    if (this.inbox.length >= this.inbox_max) this.inbox.shift();
    this.inbox.push(m);
    this.kick();
  }

  /** PartitionReplicator: produce on this partition (leader only; NOT_LEADER with the leader's address otherwise). */
  append(batches: Buffer[], opts: AppendOptions): Promise<AppendResult> {
    if (this.stopped) return Promise.reject(closed(`raft node of ${this.topic}/${this.partition}`));
    if (this.failure !== null) return Promise.reject(new EngineError('STORAGE_ERROR', `${this.topic}/${this.partition} stopped replicating on this node: ${this.failure}`));
    // A leader that removed itself leads only until that change commits: send producers on now.
    if (this.raft.role !== 'leader' || !this.raft.confState().voters.includes(this.o.node_id)) return Promise.reject(this.notLeader());
    return new Promise((resolve, reject) => {
      this.proposals.push({ batches, acks: opts.acks ?? 'all', resolve, reject });
      this.kick();
    });
  }

  // ---- observers -------------------------------------------------------------------------------

  get role(): Role {
    return this.raft.role;
  }
  get leaderId(): NodeId {
    return this.raft.lead;
  }
  get term(): number {
    return this.raft.term;
  }
  get commitIndex(): number {
    return this.raft.commitIndex;
  }
  get lastIndex(): number {
    return this.index.lastIndex;
  }

  /** The idempotent producers' state of this node's log (tests compare nodes). */
  producerState(): ProducerStateTable<EntryRef> {
    return this.producers;
  }

  /** The membership in effect on this node (takes effect when appended, as Raft's single-server changes do). */
  confState(): ConfState {
    return this.raft.confState();
  }

  /** Leader only: what it knows of member `id`'s log (undefined elsewhere or for a non-member). */
  matchIndexOf(id: NodeId): number | undefined {
    return this.raft.progressOf(id)?.match;
  }

  status(): PartitionRaftStatus {
    const replicas: ReplicaStatus[] = [];
    const conf = this.raft.confState();
    if (this.raft.role === 'leader') {
      for (const id of [...conf.voters, ...conf.learners]) {
        const pr = this.raft.progressOf(id);
        if (pr === undefined) continue;
        replicas.push({ node_id: id, match_index: pr.match, next_index: pr.next, state: id === this.o.node_id ? 'self' : pr.state, is_learner: pr.is_learner });
      }
    }
    return {
      leader_id: this.raft.lead,
      term: this.raft.term,
      role: this.raft.role,
      commit_index: this.raft.commitIndex,
      last_index: this.index.lastIndex,
      replicas,
      voters: [...conf.voters].sort((a, b) => a - b),
      learners: [...conf.learners].sort((a, b) => a - b),
      failed: this.failure,
    };
  }

  // ---- leader requests: transfer and membership (replica-admin.ts builds the operator's commands on these)

  /**
   * Hands leadership to voter `to` (thesis §3.10: the core catches it up, then sends TimeoutNow).
   * Resolves once this node has heard from `to` as leader; an attempt the core abandons (one
   * election timeout) is retried until `timeout_ms`, then TRANSFER_TIMEOUT.
   */
  async transferLeadership(to: NodeId, timeout_ms: number): Promise<void> {
    const deadline = Date.now() + timeout_ms;
    if (to === this.o.node_id && this.raft.role === 'leader') return;
    for (;;) {
      await this.onCore(() => {
        if (this.raft.role !== 'leader') throw this.notLeader();
        if (!this.raft.confState().voters.includes(to)) throw new EngineError('NOT_A_REPLICA', `node ${to} is not a voter of ${this.topic}/${this.partition} (voters: ${this.raft.confState().voters.join(', ')}); only a voter can lead`, { node_id: to });
        this.raft.transferLeadership(to);
      });
      const outcome = () => this.raft.lead === to || (this.raft.role !== 'leader' && this.raft.lead !== NONE) || (this.raft.role === 'leader' && this.raft.leadTransferee === NONE);
      await this.until(outcome, deadline - Date.now(), () => this.transferTimeout(to, timeout_ms));
      if (this.raft.lead === to) return;
      if (this.raft.role !== 'leader') throw this.notLeader(); // an election elsewhere got there first
      if (Date.now() >= deadline) throw this.transferTimeout(to, timeout_ms);
      // The core abandoned the attempt (the target did not catch up or win in time): try again.
    }
  }

  private transferTimeout(to: NodeId, timeout_ms: number): EngineError {
    const match = this.raft.progressOf(to)?.match ?? 0;
    return new EngineError(
      'TRANSFER_TIMEOUT',
      `leadership of ${this.topic}/${this.partition} did not move to node ${to} within ${timeout_ms} ms (node ${to} holds ${match} of ${this.raft.lastIndex()} entries; is it up?); node ${this.o.node_id} still leads: retry, or pick another node`,
      { node_id: to, match_index: match, last_index: this.raft.lastIndex() },
    );
  }

  /**
   * Proposes a single-server membership change and resolves once it is committed. Refused with
   * CONF_CHANGE_IN_PROGRESS while an earlier change (or this leader's first entry) is uncommitted.
   */
  async changeMembership(change: ConfChange, timeout_ms: number): Promise<ProposeResult> {
    const deadline = Date.now() + timeout_ms;
    for (;;) {
      try {
        return await this.proposeConfChange(change, deadline - Date.now());
      } catch (err) {
        // A new leader's first entry holds changes back until it commits (the 2015 fix, docs/raft.md):
        // that is a moment, not someone else's change in progress, so wait for it and propose again.
        const pending = isEngineError(err, 'CONF_CHANGE_IN_PROGRESS') ? Number(err.details['pending_index']) : 0;
        if (!(pending > 0) || this.raft.entries(pending, pending + 1)[0]?.kind !== 'normal' || Date.now() >= deadline) throw err;
        await this.until(() => this.raft.commitIndex >= pending || this.raft.role !== 'leader', deadline - Date.now(), () => err as Error);
      }
    }
  }

  private async proposeConfChange(change: ConfChange, timeout_ms: number): Promise<ProposeResult> {
    const r = await this.onCore(() => {
      if (this.raft.role !== 'leader' || this.raft.leadTransferee !== NONE) throw this.notLeader();
      try {
        return this.raft.proposeConfChange(change);
      } catch (err) {
        if (isEngineError(err, 'LIMIT_EXCEEDED') && err.details['pending_index'] !== undefined) {
          throw new EngineError('CONF_CHANGE_IN_PROGRESS', `${this.topic}/${this.partition}: a membership change (or the new leader's first entry) at index ${String(err.details['pending_index'])} is not committed yet; retry when it is`, { pending_index: err.details['pending_index'] });
        }
        throw err;
      }
    });
    const committed = () => {
      // A leader that removed itself steps down once the change commits: its commit index says so.
      const term = this.raft.termAt(r.index);
      if (term !== undefined && term !== r.term) {
        throw new EngineError('NOT_LEADER', `${this.topic}/${this.partition}: the membership change at index ${r.index} was replaced by a new leader's log (it did not take effect); retry`, this.leaderDetails());
      }
      return this.raft.commitIndex >= r.index && term === r.term;
    };
    await this.until(committed, timeout_ms, () => new EngineError('CONF_CHANGE_IN_PROGRESS', `${this.topic}/${this.partition}: the membership change ${change.type} ${change.node_id} (index ${r.index}) did not commit within ${timeout_ms} ms (is a majority of the new voters up?); it may still commit: check \`relaylog topic describe\``, { pending_index: r.index }));
    return r;
  }

  /** Resolves when `check()` holds (checked now, after each round of Readies and each tick); `timeout()` after timeout_ms. */
  until(check: () => boolean, timeout_ms: number, timeout: () => Error): Promise<void> {
    return new Promise((resolve, reject) => {
      if (this.stopped) return reject(closed(`raft node of ${this.topic}/${this.partition}`));
      try {
        if (check()) return resolve();
      } catch (err) {
        return reject(err);
      }
      const w: Watcher = {
        check,
        resolve,
        reject,
        timer: setTimeout(() => {
          this.watchers.delete(w);
          reject(timeout());
        }, Math.max(0, timeout_ms)),
      };
      this.watchers.add(w);
    });
  }

  private checkWatchers(): void {
    for (const w of this.watchers) {
      let done: boolean;
      try {
        done = w.check();
      } catch (err) {
        this.watchers.delete(w);
        clearTimeout(w.timer);
        w.reject(err);
        continue;
      }
      if (!done) continue;
      this.watchers.delete(w);
      clearTimeout(w.timer);
      w.resolve();
    }
  }

  /** Runs `fn` on the core between Readies (never between ready() and advance()). */
  private onCore<T>(fn: () => T): Promise<T> {
    if (this.stopped) return Promise.reject(closed(`raft node of ${this.topic}/${this.partition}`));
    if (this.failure !== null) return Promise.reject(new EngineError('STORAGE_ERROR', `${this.topic}/${this.partition} stopped replicating on this node: ${this.failure}`));
    return new Promise<T>((resolve, reject) => {
      const run = () => {
        try {
          resolve(fn());
        } catch (err) {
          reject(err);
        }
      };
      this.ops.push({ run, reject });
      this.kick();
    });
  }

  private leaderDetails(): Record<string, unknown> {
    const lead = this.raft.lead;
    const address = lead !== NONE && lead !== this.o.node_id ? this.o.address_of(lead) : '';
    return { leader_id: lead === this.o.node_id ? NONE : lead, ...(address ? { leader: address } : {}) };
  }

  /** NOT_LEADER naming the leader this node knows (and its address), for a request only the leader answers. */
  notLeader(): EngineError {
    const lead = this.raft.lead;
    const address = lead !== NONE && lead !== this.o.node_id ? this.o.address_of(lead) : '';
    const where = address ? `; its leader is node ${lead} at ${address}` : '; no leader is known yet (an election is under way): retry shortly';
    return new EngineError('NOT_LEADER', `node ${this.o.node_id} is not the leader of ${this.topic}/${this.partition}${where}`, {
      leader_id: lead === this.o.node_id ? NONE : lead,
      ...(address ? { leader: address } : {}),
    });
  }

  // ---- the loop --------------------------------------------------------------------------------

  private kick(): void {
    if (this.running !== null || this.stopped || this.failure !== null) return;
    this.running = new Promise<void>((resolve) => setImmediate(resolve)).then(() => this.run());
  }

  private hasInput(): boolean {
    return this.ticks > 0 || this.inbox.length > 0 || this.proposals.length > 0 || this.ops.length > 0;
  }

  private async run(): Promise<void> {
    try {
      while (!this.stopped) {
        this.feed();
        if (!this.raft.hasReady()) {
          this.settle(); // a duplicate of a committed entry is answered without a Ready
          break;
        }
        const rd = this.raft.ready();
        await this.carryOut(rd);
        this.raft.advance(rd);
        this.readies++;
        this.settle();
      }
    } catch (err) {
      if (!this.stopped) this.fail(err);
    } finally {
      this.running = null;
    }
    if (this.watchers.size > 0) this.checkWatchers();
    if (this.pending.length > 0) this.dropPendingIfRemoved();
    if (!this.stopped && this.failure === null && this.hasInput()) this.kick();
  }

  private feed(): void {
    for (; this.ticks > 0; this.ticks--) this.raft.tick();
    const inbox = this.inbox;
    this.inbox = [];
    for (const m of inbox) this.raft.step(m);
    const ops = this.ops;
    this.ops = [];
    for (const op of ops) op.run();
    const proposals = this.proposals;
    this.proposals = [];
    for (const p of proposals) this.propose(p);
  }

  private propose(p: Proposal): void {
    if (this.raft.role !== 'leader') return p.reject(this.notLeader());
    const room = raftDefaults.uncommitted_entries_max - (this.raft.lastIndex() - this.raft.commitIndex);
    if (p.batches.length > room) {
      return p.reject(new EngineError('LIMIT_EXCEEDED', `${this.topic}/${this.partition}: ${raftDefaults.uncommitted_entries_max} batches are waiting to commit; retry`, { uncommitted_entries_max: raftDefaults.uncommitted_entries_max }));
    }
    // An idempotent producer's batch (alone in its request: PartitionLog.append) is checked against
    // every entry of this log, proposals not yet persisted included. A duplicate is answered like
    // the entry it repeats: with its offsets once that entry is committed (or stored, acks=leader),
    // NOT_LEADER if another leader's log replaces it.
    const producer = p.batches.length === 1 ? producerBatchOf(p.batches[0]!) : null;
    if (producer !== null) {
      try {
        const c = this.producers.check(producer);
        if (c.kind === 'duplicate') {
          this.pending.push({ first: c.ref.index, last: c.ref.index, term: c.ref.term, acks: p.acks, persisted: false, resolve: p.resolve, reject: p.reject });
          return;
        }
      } catch (err) {
        return p.reject(err);
      }
    }
    let first = 0;
    let last = 0;
    let term = 0;
    try {
      for (const b of p.batches) {
        this.own.add(b);
        const r = this.raft.propose(b);
        if (first === 0) first = r.index;
        assert(last === 0 || r.index === last + 1, 'one request\'s batches take consecutive indexes');
        last = r.index;
        term = r.term;
      }
    } catch (err) {
      if (!isEngineError(err) || first !== 0) throw err; // the checks above make a later refusal impossible
      return p.reject(err);
    }
    if (producer !== null) {
      this.producers.replay(producer, { index: first, term });
      this.unpersisted.set(first, producer.producer_id);
    }
    this.pending.push({ first, last, term, acks: p.acks, persisted: false, resolve: p.resolve, reject: p.reject });
  }

  private async carryOut(rd: Ready): Promise<void> {
    if (rd.snapshot) await this.retrying('installing a snapshot', () => this.installSnapshot(rd.snapshot!));
    // A leader's appends go out before its own write (thesis §10.2.1): they promise nothing about
    // its disk (it counts its own entries only once persisted, in advance()), so its write and the
    // followers' transfers overlap. Not when this Ready changes term or vote: those must be durable
    // before anything is sent in the new term.
    let later = rd.messages_to_send;
    const fresh = rd.messages_to_send.length > 0 && this.canSendEarly(rd) ? this.freshBytes(rd.entries_to_persist) : null;
    if (fresh !== null) {
      const early = this.earlyMessages(rd);
      if (early.length > 0) {
        const set = new Set(early);
        later = rd.messages_to_send.filter((m) => !set.has(m));
        const out = await this.loadEntries(early, fresh);
        if (out.length > 0 && !this.stopped) this.o.send(out);
      }
    }
    if (rd.entries_to_persist.length > 0) await this.retrying('persisting entries', () => this.persistEntries(rd.entries_to_persist));
    if (rd.hard_state) {
      const hs = rd.hard_state;
      assert(hs.commit <= this.index.lastIndex, `hard state commit ${hs.commit} beyond the stored log ${this.index.lastIndex}`);
      if (hs.term !== this.persisted.term || hs.vote !== this.persisted.vote) {
        // Term and vote are what the messages of this Ready promise: durable before they leave.
        this.commit_to_store = null; // this write carries the commit index too
        await this.retrying('persisting the hard state', () => this.o.catalog.putRaftState(this.key, hs));
      } else {
        // Only the commit index moved. It is volatile state in Raft (Figure 2): losing it in a crash
        // only means relearning it from the leader. It is stored without waiting, at most every
        // COMMIT_STORE_INTERVAL_MS (one LMDB commit, with its fsync, per Ready was most of a
        // cluster node's cost at small batches), so that a restarted node serves at once what it
        // knew committed a moment before; LMDB keeps the writes in order.
        this.commit_to_store = hs;
        this.commit_store_timer ??= setTimeout(() => this.storeCommit(), COMMIT_STORE_INTERVAL_MS);
      }
      this.persisted = hs;
    }
    if (later.length > 0) {
      const out = await this.loadEntries(later);
      if (out.length > 0 && !this.stopped) this.o.send(out);
    }
    const applied = rd.committed_entries_to_apply[rd.committed_entries_to_apply.length - 1];
    if (applied !== undefined) {
      assert(applied.index <= this.index.lastIndex, `applying ${applied.index} beyond the stored log ${this.index.lastIndex}`);
      this.o.log.advanceHighWatermark(this.index.nextOffset(applied.index));
    }
  }

  /** A leader's Ready that does not change term or vote, and appends (if anything) at the end of the log. */
  private canSendEarly(rd: Ready): boolean {
    if (this.raft.role !== 'leader') return false;
    const hs = rd.hard_state;
    if (hs !== undefined && (hs.term !== this.persisted.term || hs.vote !== this.persisted.vote)) return false;
    const first = rd.entries_to_persist[0];
    return first === undefined || first.index === this.index.lastIndex + 1;
  }

  /** The leader's messages of `rd` that may leave before its write: whose entries are all stored, or all in this Ready. */
  private earlyMessages(rd: Ready): Message[] {
    const last = this.index.lastIndex;
    return rd.messages_to_send.filter((m) => {
      if (m.type === 'heartbeat' || m.type === 'timeout_now' || m.type === 'snapshot') return true;
      if (m.type !== 'append') return false;
      return m.entries.every((e) => e.index <= last) || m.entries.every((e) => e.index > last);
    });
  }

  /**
   * The bytes the entries of this Ready will have in the log (persistEntries writes exactly these):
   * a leader's proposals stamped with (offset, term) in place, its empty entry as an empty batch.
   * Membership changes leave with the core's data, as always.
   */
  private freshBytes(entries: readonly Entry[]): Map<number, Buffer> | null {
    const out = new Map<number, Buffer>();
    let next = this.index.endOffset;
    for (const e of entries) {
      let b: Buffer;
      if (e.kind === 'conf_change') b = confChangeBatch(next, e.term, e.data);
      else if (e.data.length === 0) b = noopBatch(next, e.term);
      else if (this.own.has(e.data)) {
        b = e.data;
        stampBatch(b, 0, next, e.term);
      } else return null; // not this leader's own entries: nothing is sent early
      if (e.kind !== 'conf_change') out.set(e.index, b);
      next += batchLastOffsetDelta(b) + 1;
    }
    return out;
  }

  /**
   * A failed write (a full disk, an I/O error) is retried with backoff: the Ready cannot be skipped,
   * and nothing it promises may leave before it is durable. Closing the node ends the retries.
   */
  private async retrying(what: string, fn: () => Promise<void>): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      try {
        return await fn();
      } catch (err) {
        if (err instanceof AssertionError || this.stopped || !isEngineError(err) || !err.retriable) throw err;
        const wait_ms = Math.min(PERSIST_RETRY_MAX_MS, 50 * 2 ** Math.min(attempt, 7));
        if (attempt % 10 === 0) this.o.logger.warn({ topic: this.topic, partition: this.partition, code: err.code, err: err.message, attempt }, `raft: ${what} failed; retrying`);
        await new Promise((r) => setTimeout(r, wait_ms));
      }
    }
  }

  /**
   * Step 0: a snapshot from the leader replaces the whole local log (the leader has discarded the
   * entries this node lacks). Crash-safe in this order: the local log is cut to nothing, the
   * snapshot record is stored (durably), the empty log moves to the snapshot's end offset; open()
   * finishes the last step if a crash came before it.
   */
  private async installSnapshot(snap: Snapshot): Promise<void> {
    const { index, term, conf_state } = snap.meta;
    const next_offset = decodeSnapshotData(snap.data);
    const log = this.o.log;
    this.o.logger.info({ topic: this.topic, partition: this.partition, snapshot_index: index, snapshot_term: term, next_offset, local_start: log.logStartOffset, local_end: log.logEndOffset }, 'raft: installing a snapshot from the leader (its log no longer holds what this node lacks)');
    // A deposed leader's producers still waiting: their batches may have committed in the new
    // leader's log (this node had stored them), but their fate is no longer visible here.
    const ambiguous = new EngineError('CLOSED', `${this.topic}/${this.partition}: node ${this.o.node_id} lost leadership and its log was replaced by a snapshot before it learnt whether these batches committed (they may have): check before producing them again`);
    for (const p of this.pending.splice(0)) p.reject(ambiguous);
    if (log.logEndOffset > log.logStartOffset) await log.truncateTo(log.logStartOffset);
    await this.storeSnapshot(index, term, next_offset, conf_state);
    const forgotten = log.logStartOffset !== next_offset ? await log.startAt(next_offset, { forget_archived: true }) : 0;
    if (forgotten > 0) {
      this.o.logger.warn({ topic: this.topic, partition: this.partition, archived_segments: forgotten, next_offset }, 'raft: this node\'s archived segments of the partition are below the installed snapshot and no longer joined to its log: forgotten by the catalog, left in the archive store');
    }
    this.index.reset(index, term, next_offset);
    this.storage.snapshot_conf = conf_state;
    // The producers' batches were all in the discarded log (Kafka's rule applies: a producer whose
    // state is gone may go on at any sequence).
    this.producers.forget(() => true);
    this.unpersisted.clear();
    this.snapshots_installed++;
  }

  /** The snapshot record in the catalog, durably: entries up to `index` are no longer in the local log. */
  private storeSnapshot(index: number, term: number, next_offset: number, conf: ConfState): Promise<void> {
    return this.o.catalog.putRaftSnapshot(this.key, { index, term, next_offset, voters: [...conf.voters], learners: [...conf.learners] });
  }

  /** Snapshots installed from a leader (tests, metrics). */
  snapshots_installed = 0;

  /**
   * Retention (PartitionLog.applyRetention) wants the local log below `offset` gone: between two
   * Readies, the entries it holds are handed to a snapshot (stored durably first), the index
   * forgets them, and the answer says the log may delete below `offset`. Only applied entries go;
   * the answer is lower (down to the log start) if `offset` is beyond them.
   */
  async discardBelow(offset: number): Promise<number> {
    const plan = await this.onCore(() => {
      const idx = this.index;
      let through = offset >= idx.endOffset ? idx.lastIndex : idx.indexOfBase(offset) - 1;
      if (through < idx.firstIndex - 1) through = idx.firstIndex - 1; // not a batch boundary: keep all
      through = Math.min(through, this.raft.appliedIndex);
      if (through < idx.firstIndex) return null;
      const conf = idx.lastConfChangeAtOrBelow(through);
      return { through, term: idx.term(through)!, next_offset: idx.nextOffset(through), conf_state: conf ? decodeConfChangeEntry(conf[1]).conf_state : this.storage.snapshot_conf };
    });
    if (plan === null) return this.o.log.logStartOffset;
    const { through, term, next_offset, conf_state } = plan;
    await this.storeSnapshot(through, term, next_offset, conf_state);
    const newer = await this.onCore(() => {
      // A snapshot from the leader installed meanwhile went past this one: its record, written
      // before this one landed, must be the one that stays.
      if (this.index.firstIndex > through + 1) return this.storage.snapshot();
      // Otherwise nothing but this method discards, and the log below the commit index never changes.
      assert(this.index.term(through) === term && this.index.nextOffset(through) === next_offset, `entry ${through} changed while its snapshot was stored`);
      this.index.discardThrough(through);
      this.storage.snapshot_conf = conf_state;
      this.producers.forget((ref) => ref.index <= through);
      return null;
    });
    if (newer !== null) {
      await this.storeSnapshot(newer.meta.index, newer.meta.term, decodeSnapshotData(newer.data), newer.meta.conf_state);
      return this.o.log.logStartOffset;
    }
    this.o.logger.info({ topic: this.topic, partition: this.partition, snapshot_index: through, snapshot_term: term, next_offset }, 'raft: retention discards the log below a snapshot');
    return next_offset;
  }

  /** Step 1: the segment store becomes the log the core handed out (suffix cut, entries appended). */
  private async persistEntries(entries: readonly Entry[]): Promise<void> {
    const first = entries[0]!.index;
    assert(first >= this.index.firstIndex && first <= this.index.lastIndex + 1, `entries start at ${first}, the log holds ${this.index.firstIndex}..${this.index.lastIndex}`);
    // What this node believed about entries from `first` on (a cut suffix, or proposals the core
    // dropped) gives way to the entries persisted now, read from their headers below. Without a
    // cut, only proposals can be stale: just their producers are looked at (a hot path).
    const cut = (ref: EntryRef) => ref.index >= first;
    if (first <= this.index.lastIndex) this.producers.forget(cut);
    else if (this.unpersisted.size > 0) this.producers.forget(cut, [...this.unpersisted].filter(([i]) => i >= first).map(([, id]) => id));
    for (const i of [...this.unpersisted.keys()]) if (i >= first) this.unpersisted.delete(i);
    if (first <= this.index.lastIndex) {
      // A conflicting suffix (never committed: the core asserts so) goes before the new entries land.
      await this.o.log.truncateTo(this.index.nextOffset(first - 1));
      this.index.truncateAfter(first - 1);
    }
    let next = this.index.endOffset;
    let chunk: Buffer[] = [];
    let chunk_bytes = 0;
    const indexed: Array<IndexedBatch & { conf?: Buffer }> = [];
    const flush = async () => {
      if (chunk.length === 0) return;
      await this.o.log.appendReplicated(chunk);
      for (const b of indexed) {
        this.index.push(b);
        if (b.conf) this.index.setConfChange(this.index.lastIndex, b.conf);
      }
      chunk = [];
      chunk_bytes = 0;
      indexed.length = 0;
    };
    for (const e of entries) {
      assert(!isLazyEntry(e), `entry ${e.index} to persist has no bytes`);
      let b: Buffer;
      if (e.kind === 'conf_change') {
        // A membership change travels as the core's data and is stored as a control batch that every
        // replica builds alike from (offset, term, data): the same bytes everywhere (conf-batch.ts).
        b = confChangeBatch(next, e.term, e.data);
      } else if (e.data.length === 0) {
        b = noopBatch(next, e.term);
      } else if (this.own.has(e.data)) {
        // Our own proposal: the log assigns its offset and stamps the term, in place (outside the CRC).
        b = e.data;
        stampBatch(b, 0, next, e.term);
      } else {
        // The leader's bytes: they must land at the offset they carry (Log Matching gives the same prefix).
        b = e.data;
        assert(batchBaseOffset(b) === next, `entry ${e.index} carries offset ${batchBaseOffset(b)}, the log ends at ${next}`);
        assert(batchLeaderEpoch(b) === e.term, `entry ${e.index} of term ${e.term} carries leader epoch ${batchLeaderEpoch(b)}`);
      }
      const producer = producerBatchOf(b);
      if (producer !== null) this.producers.replay(producer, { index: e.index, term: e.term });
      const next_offset = next + batchLastOffsetDelta(b) + 1;
      indexed.push({ base_offset: next, next_offset, term: e.term, size_bytes: b.length, ...(e.kind === 'conf_change' ? { conf: e.data } : {}) });
      chunk.push(b);
      chunk_bytes += b.length;
      next = next_offset;
      if (chunk_bytes >= APPEND_CHUNK_BYTES) await flush();
    }
    await flush();
    const last = entries[entries.length - 1]!;
    assert(this.index.lastIndex === last.index && this.index.term(last.index) === last.term, 'the index ends with the last persisted entry');
  }

  /**
   * Step 3: appends leave with the stored bytes of every entry. Lazy entries (read through the
   * index) and the leader's empty entry are loaded from the segment store; an append whose entries
   * are no longer in this log (overwritten since it was built) is stale and dropped.
   */
  private async loadEntries(messages: readonly Message[], fresh?: ReadonlyMap<number, Buffer>): Promise<Message[]> {
    const out: Message[] = [];
    for (const m of messages) {
      if (m.type !== 'append' || m.entries.length === 0 || m.entries.every((e) => this.holdsBytes(e))) {
        out.push(m);
        continue;
      }
      if (fresh !== undefined && m.entries[0]!.index > this.index.lastIndex) {
        // Entries of the Ready being carried out, not yet written: their bytes as they will be stored.
        const entries = m.entries.map((e) => (e.kind === 'conf_change' ? e : { ...e, data: fresh.get(e.index)! }));
        assert(entries.every((e) => e.data !== undefined), `an early append carries entries ${m.entries[0]!.index}.. that are not in this Ready`);
        out.push({ ...m, entries });
        continue;
      }
      const entries = await this.readEntries(m);
      if (entries !== null) out.push({ ...m, entries });
    }
    return out;
  }

  /** True when `e.data` already is the stored batch of entry e (our own proposals, stamped in place). */
  private holdsBytes(e: Entry): boolean {
    // A membership change leaves with the core's data (the follower builds the same control batch).
    if (e.kind === 'conf_change') return !isLazyEntry(e);
    if (isLazyEntry(e) || e.data.length < 61 || e.index > this.index.lastIndex || e.index < this.index.firstIndex) return false;
    return this.index.term(e.index) === e.term && batchBaseOffset(e.data) === this.index.baseOffset(e.index) && batchLeaderEpoch(e.data) === e.term && e.data.length === this.index.sizeBytes(e.index);
  }

  private async readEntries(m: AppendRequest): Promise<Entry[] | null> {
    const lo = m.entries[0]!.index;
    const hi = m.entries[m.entries.length - 1]!.index;
    // Built before retention discarded its first entries (an op between the step and this Ready): stale.
    if (hi > this.index.lastIndex || lo < this.index.firstIndex) return null;
    for (const e of m.entries) if (this.index.term(e.index) !== e.term) return null;
    const from = this.index.baseOffset(lo);
    const to = this.index.nextOffset(hi);
    const batches: Buffer[] = [];
    for (let offset = from; offset < to; ) {
      const r = await this.o.log.readLocal(offset, LOAD_READ_BYTES);
      // The pooled buffer is left to the garbage collector (not released): the views below outlive this call.
      forEachBatch(r.records, (pos, size) => {
        if (batchBaseOffset(r.records, pos) < to) batches.push(r.records.subarray(pos, pos + size));
      });
      if (r.next_offset <= offset) return null; // the log moved under us (it cannot while this Ready runs)
      offset = r.next_offset;
    }
    // The first batch returned may start before `from` only if `from` is not a batch boundary: it is.
    if (batches.length !== m.entries.length) return null;
    return m.entries.map((e, i) => {
      const b = batches[i]!;
      assert(batchBaseOffset(b) === this.index.baseOffset(e.index) && batchLeaderEpoch(b) === e.term && b.length === this.index.sizeBytes(e.index), `stored batch of entry ${e.index} does not match the index`);
      if (e.kind === 'conf_change') {
        // Pair assertion with persistEntries: the stored control batch holds exactly this change.
        const stored = confChangeOfBatch(b);
        assert(stored !== null && stored.equals(e.data), `stored batch of entry ${e.index} is not its membership change`);
        return e;
      }
      return { index: e.index, term: e.term, kind: e.kind, data: b };
    });
  }

  /** Step 5: answer producers whose batches are durable or committed, or lost. */
  private settle(): void {
    if (this.pending.length === 0) return;
    const commit = this.raft.commitIndex;
    const keep: Pending[] = [];
    for (const p of this.pending) {
      if (p.first < this.index.firstIndex) {
        // Retention discarded the first entries of a request (only applied ones go, so those were
        // committed); the rest, if any, is still in the log or still to commit.
        const o = p.offsets;
        const rest_replaced = p.last >= this.index.firstIndex && p.last <= this.index.lastIndex && this.index.term(p.last) !== p.term;
        if (o === undefined || rest_replaced) {
          p.reject(new EngineError('CLOSED', `${this.topic}/${this.partition}: part of these batches committed and the rest was replaced by a new leader's log: check before producing them again`));
        } else if (p.acks === 'leader' || p.last <= commit) {
          p.resolve(o);
        } else {
          keep.push(p);
        }
        continue;
      }
      const stored = p.last <= this.index.lastIndex && this.index.term(p.first) === p.term && this.index.term(p.last) === p.term;
      if (stored) {
        p.persisted = true;
        p.offsets ??= { base_offset: this.index.baseOffset(p.first), last_offset: this.index.nextOffset(p.last) - 1 };
      }
      const lost =
        (p.first <= this.index.lastIndex && this.index.term(p.first) !== p.term) || (p.persisted && !stored) || (p.last <= commit && !stored);
      if (lost) {
        p.reject(
          new EngineError('NOT_LEADER', `${this.topic}/${this.partition}: the batches were not committed (a new leader's log replaced them); nothing was appended, retry`, {
            leader_id: this.raft.lead === this.o.node_id ? NONE : this.raft.lead,
            ...(this.raft.lead !== NONE && this.raft.lead !== this.o.node_id ? { leader: this.o.address_of(this.raft.lead) } : {}),
          }),
        );
        continue;
      }
      if (stored && (p.acks === 'leader' || p.last <= commit)) {
        p.resolve({ base_offset: this.index.baseOffset(p.first), last_offset: this.index.nextOffset(p.last) - 1 });
        continue;
      }
      keep.push(p);
    }
    this.pending = keep;
  }

  private fail(err: unknown): void {
    const why = (err as Error)?.message ?? String(err);
    this.failure = why;
    this.o.logger.error({ topic: this.topic, partition: this.partition, err: why, stack: (err as Error)?.stack }, 'raft: partition stopped replicating on this node');
    const e = new EngineError('STORAGE_ERROR', `${this.topic}/${this.partition} stopped replicating on this node: ${why}`);
    for (const p of this.proposals.splice(0)) p.reject(e);
    for (const p of this.pending.splice(0)) p.reject(e);
    this.dropRequests(e);
  }

  /**
   * A node removed from the partition's voters (a leader that removed itself and stepped down) is
   * sent nothing more, so it would never learn the fate of the proposals it still waits for: the
   * new leader may commit them or cut them. Their producers get an ambiguous error (CLOSED, like a
   * leader dying under them), never NOT_LEADER, which would promise that nothing was appended.
   */
  private dropPendingIfRemoved(): void {
    if (this.raft.role === 'leader' || this.raft.confState().voters.includes(this.o.node_id)) return;
    const e = new EngineError('CLOSED', `node ${this.o.node_id} was removed from the replicas of ${this.topic}/${this.partition} before it learnt whether these batches committed (they may have): check before producing them again`);
    for (const p of this.pending.splice(0)) p.reject(e);
  }

  /** Transfers and membership changes queued or waiting are answered with `e`. */
  private dropRequests(e: unknown): void {
    for (const op of this.ops.splice(0)) op.reject(e);
    for (const w of this.watchers) {
      clearTimeout(w.timer);
      w.reject(e);
    }
    this.watchers.clear();
  }

  /** Stops the loop (waiting for a Ready under way), refuses what is queued, detaches from the log. */
  private storeCommit(): void {
    this.commit_store_timer = null;
    const hs = this.commit_to_store;
    this.commit_to_store = null;
    if (hs === null) return;
    this.o.catalog.putRaftState(this.key, hs).catch((err: unknown) => {
      if (!this.stopped) this.o.logger.warn({ topic: this.topic, partition: this.partition, ...(isEngineError(err) ? { code: err.code } : {}), err: (err as Error).message }, 'raft: storing the commit index failed');
    });
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    const running = this.running;
    if (running) await running.catch(() => undefined);
    // The last known commit index goes to the catalog now (a clean stop loses nothing of it).
    if (this.commit_store_timer) clearTimeout(this.commit_store_timer);
    this.commit_store_timer = null;
    const hs = this.commit_to_store;
    this.commit_to_store = null;
    if (hs !== null) await this.o.catalog.putRaftState(this.key, hs).catch(() => undefined);
    const e = closed(`raft node of ${this.topic}/${this.partition}`);
    for (const p of this.proposals.splice(0)) p.reject(e);
    for (const p of this.pending.splice(0)) p.reject(e);
    this.dropRequests(e);
    try {
      this.o.log.setReplicator(null);
    } catch {
      // the log may be closed already
    }
  }
}
