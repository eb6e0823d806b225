/**
 * How a Raft core is built: identity, storage, the seeded PRNG, persisted state for a restart,
 * timing in ticks, and every limit (units last).
 */
import { assert } from '../../../engine/base/assert.js';
import type { Prng } from '../../../engine/base/prng.js';
import type { LogStorage } from './log-storage.js';
import type { ConfState, HardState, NodeId } from './types.js';

export interface RaftConfig {
  readonly id: NodeId;
  /** The stable log. On a restart it holds what was persisted (possibly a torn tail of the last Ready). */
  readonly storage: LogStorage;
  /** Election timeout jitter comes from here; nothing else in the core is random. */
  readonly prng: Prng;
  /**
   * Membership in effect at `conf_state_index` (0 for a fresh cluster: the bootstrap voters). The
   * core replays conf_change entries after that index from storage on start. A node joining an
   * existing cluster starts with { voters: [], learners: [] } and learns the rest from the log.
   */
  readonly conf_state: ConfState;
  readonly conf_state_index?: number;
  /** The persisted hard state on a restart; absent for a fresh node. */
  readonly hard_state?: HardState;
  /** The last index the state machine has applied (survives restarts only if the caller persists it). */
  readonly applied_index?: number;

  readonly election_timeout_ticks?: number;
  readonly heartbeat_interval_ticks?: number;
  /** Rehearse an election before bumping the term, so a rejoining node cannot disrupt a leader. */
  readonly pre_vote?: boolean;
  /** A leader steps down if it has not heard from a quorum for an election timeout; followers honour a lease. */
  readonly check_quorum?: boolean;

  readonly append_entries_max_bytes?: number;
  readonly append_entries_max_count?: number;
  readonly inflight_appends_max?: number;
  readonly apply_batch_max_bytes?: number;
  readonly proposal_max_bytes?: number;
  readonly uncommitted_entries_max?: number;
}

export const raftDefaults = {
  election_timeout_ticks: 10,
  heartbeat_interval_ticks: 1,
  pre_vote: true,
  check_quorum: true,
  /** One append carries at most this much payload (a single larger entry still goes alone). */
  append_entries_max_bytes: 1024 * 1024,
  append_entries_max_count: 256,
  /** Unacknowledged appends per follower while streaming. */
  inflight_appends_max: 64,
  /** Committed entries handed out by one Ready. */
  apply_batch_max_bytes: 4 * 1024 * 1024,
  /** A proposal larger than this is refused (BATCH_TOO_LARGE). */
  proposal_max_bytes: 8 * 1024 * 1024,
  /** Proposals are refused (LIMIT_EXCEEDED) while this many entries are uncommitted. */
  uncommitted_entries_max: 4096,
} as const;

export type ResolvedRaftConfig = Required<Omit<RaftConfig, 'hard_state'>> & Pick<RaftConfig, 'hard_state'>;

export function resolveRaftConfig(cfg: RaftConfig): ResolvedRaftConfig {
  const r: ResolvedRaftConfig = {
    ...raftDefaults,
    conf_state_index: 0,
    applied_index: 0,
    ...cfg,
  };
  assert(Number.isSafeInteger(r.id) && r.id > 0, `node id must be a positive integer, got ${r.id}`);
  assert(r.heartbeat_interval_ticks >= 1, 'heartbeat_interval_ticks must be >= 1');
  assert(r.election_timeout_ticks > r.heartbeat_interval_ticks, 'election timeout must exceed the heartbeat interval');
  assert(r.append_entries_max_bytes >= 1 && r.append_entries_max_count >= 1, 'append limits must be positive');
  assert(r.inflight_appends_max >= 1 && r.apply_batch_max_bytes >= 1, 'limits must be positive');
  assert(r.uncommitted_entries_max >= 1 && r.proposal_max_bytes >= 1, 'limits must be positive');
  return r;
}
