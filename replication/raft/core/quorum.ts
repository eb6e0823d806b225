/** Majority arithmetic over a voter set. Pure functions. */
import { assert } from '../../../engine/base/assert.js';
import type { NodeId } from './types.js';

export function quorumSize(voter_count: number): number {
  assert(voter_count > 0, 'a configuration needs at least one voter');
  return Math.floor(voter_count / 2) + 1;
}

/** The largest index that a majority of voters has matched (§5.3, §5.4). */
export function quorumMatchIndex(voters: readonly NodeId[], matchOf: (id: NodeId) => number): number {
  const matches = voters.map(matchOf).sort((a, b) => b - a);
  const q = matches[quorumSize(voters.length) - 1];
  assert(q !== undefined, 'quorum index out of range');
  return q;
}

export type VoteResult = 'won' | 'lost' | 'pending';

/** Tally of an election: only voters count, whatever else answered. */
export function voteResult(voters: readonly NodeId[], votes: ReadonlyMap<NodeId, boolean>): VoteResult {
  const q = quorumSize(voters.length);
  let granted = 0;
  let rejected = 0;
  for (const id of voters) {
    const v = votes.get(id);
    if (v === true) granted++;
    else if (v === false) rejected++;
  }
  if (granted >= q) return 'won';
  if (rejected > voters.length - q) return 'lost';
  return 'pending';
}

/** Whether the voters for which `active` holds form a majority. */
export function quorumActive(voters: readonly NodeId[], active: (id: NodeId) => boolean): boolean {
  return voters.filter(active).length >= quorumSize(voters.length);
}
