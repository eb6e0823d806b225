/**
 * The vocabulary of the Raft core: entries, persistent and volatile state, messages and the Ready
 * batch. Everything here is plain data so that a transport can encode it and a test can build it.
 *
 * Node ids are positive integers; NONE (0) means "no node" (no vote cast, no known leader).
 */

export type NodeId = number;
export const NONE: NodeId = 0;

export type EntryKind = 'normal' | 'conf_change';

/** One log entry. Treat `data` as immutable: entries are shared between the log, messages and Readies. */
export interface Entry {
  readonly index: number;
  readonly term: number;
  readonly kind: EntryKind;
  readonly data: Buffer;
}

/** What must be durable before any message of the same Ready leaves the node (§5.1, Figure 2). */
export interface HardState {
  readonly term: number;
  readonly vote: NodeId;
  readonly commit: number;
}

export type Role = 'follower' | 'pre_candidate' | 'candidate' | 'leader';

/** Volatile state, reported in a Ready when it changes; never needs persisting. */
export interface SoftState {
  readonly lead: NodeId;
  readonly role: Role;
}

/** Membership: voters count in quorums; learners only receive the log. The two sets are disjoint. */
export interface ConfState {
  readonly voters: readonly NodeId[];
  readonly learners: readonly NodeId[];
}

interface MessageBase {
  readonly from: NodeId;
  readonly to: NodeId;
  readonly term: number;
}

/**
 * RequestVote (§5.2) or its pre-vote rehearsal (§9.6 of Ongaro's thesis). A pre-vote carries the
 * term the sender *would* campaign with; nobody changes its term or vote because of it.
 * `transfer` is set when a leader asked for the election (TimeoutNow): it overrides the lease.
 */
export interface VoteRequest extends MessageBase {
  readonly type: 'vote' | 'pre_vote';
  readonly last_log_index: number;
  readonly last_log_term: number;
  readonly transfer: boolean;
}

export interface VoteResponse extends MessageBase {
  readonly type: 'vote_response' | 'pre_vote_response';
  readonly granted: boolean;
}

/** AppendEntries (§5.3). `commit` is the leader's commit index; the follower trusts it only up to the last entry it matched. */
export interface AppendRequest extends MessageBase {
  readonly type: 'append';
  readonly prev_log_index: number;
  readonly prev_log_term: number;
  readonly entries: readonly Entry[];
  readonly commit: number;
}

/**
 * Reply to an append. On success `match_index` is the last index known to match the leader's log
 * (and is persisted: the reply leaves only after the Ready that persisted it).
 * On rejection `reject_index` is the rejected prev_log_index, and (`hint_index`, `hint_term`) is the
 * follower's last entry at or below it whose term is <= the leader's prev_log_term, so that the
 * leader can skip a whole term of mismatching entries per round trip (§5.3, "fast backoff").
 * A reply with a newer term and success=false also tells a stale leader to step down.
 */
export interface AppendResponse extends MessageBase {
  readonly type: 'append_response';
  readonly success: boolean;
  readonly match_index: number;
  readonly reject_index: number;
  readonly hint_index: number;
  readonly hint_term: number;
}

/** Keeps followers from campaigning. `commit` is min(follower's match, leader's commit), always safe to adopt. */
export interface Heartbeat extends MessageBase {
  readonly type: 'heartbeat';
  readonly commit: number;
}

export interface HeartbeatResponse extends MessageBase {
  readonly type: 'heartbeat_response';
}

/** Leader transfer: "start an election now, ignoring your lease" (thesis §3.10). */
export interface TimeoutNow extends MessageBase {
  readonly type: 'timeout_now';
}

/**
 * A snapshot (§7): the state of everything up to and including entry `index` (of `term`), with
 * the membership in effect there. The log before `index + 1` may be gone. `data` is opaque to the
 * core: whatever the caller needs to stand in for the discarded entries (for the partition log:
 * the offset where the next entry starts).
 */
export interface SnapshotMeta {
  readonly index: number;
  readonly term: number;
  readonly conf_state: ConfState;
}

export interface Snapshot {
  readonly meta: SnapshotMeta;
  readonly data: Buffer;
}

/**
 * InstallSnapshot (§7), sent when a follower needs entries the leader has discarded. The whole
 * snapshot goes in one message (ours are small: the log itself is the state). The follower answers
 * with an append_response whose match_index is the snapshot's index.
 */
export interface SnapshotRequest extends MessageBase {
  readonly type: 'snapshot';
  readonly snapshot: Snapshot;
}

export type Message = VoteRequest | VoteResponse | AppendRequest | AppendResponse | Heartbeat | HeartbeatResponse | TimeoutNow | SnapshotRequest;
export type MessageType = Message['type'];

/**
 * One batch of work for the caller, in this order:
 *  0. if `snapshot` is present, install it: discard the whole stored log, so that the store
 *     starts right after `snapshot.meta.index` (firstIndex() = index + 1, term(index) = its term),
 *     and restore the state machine from it (entries to apply start after it);
 *  1. persist `hard_state` (if present) and `entries_to_persist`: first delete every stored entry
 *     with index >= entries_to_persist[0].index (a conflicting suffix), then append them; entries
 *     before hard state, so a crash never leaves a commit index beyond the stored log;
 *  2. only then send `messages_to_send` (votes and acks in them promise that the state is durable);
 *  3. apply `committed_entries_to_apply` to the state machine, in order;
 *  4. call `advance(ready)`.
 * No other call may be made on the core between `ready()` and `advance()`.
 */
export interface Ready {
  readonly snapshot?: Snapshot;
  readonly hard_state?: HardState;
  readonly soft_state?: SoftState;
  readonly entries_to_persist: readonly Entry[];
  readonly messages_to_send: readonly Message[];
  readonly committed_entries_to_apply: readonly Entry[];
}

export interface ProposeResult {
  readonly index: number;
  readonly term: number;
}

/** Size used for byte limits: the payload only (the per-entry header is small and fixed). */
export function entrySizeBytes(entry: Entry): number {
  return entry.data.length;
}
