/**
 * The operator's commands on one partition's Raft group (docs/raft.md, "Leader transfer and
 * membership"), built on PartitionNode's two leader requests (transferLeadership,
 * changeMembership). Each runs on the partition's leader; elsewhere it fails NOT_LEADER with the
 * leader's address, which the client follows.
 *
 *  - transfer: the core catches the target up and sends it TimeoutNow (thesis §3.10);
 *  - add: `add_learner` (the node starts receiving the log, from empty if need be), wait until its
 *    log is within `promote_lag_max_entries` of the commit point, then `add_voter` (thesis §4.2.1:
 *    a new server votes only once caught up, so it cannot stall commits). Each step commits before
 *    the next; repeating the command after a failure resumes where it stopped;
 *  - remove: `remove_node`. The leader may remove itself (thesis §4.2.2): the change takes effect
 *    when appended, the leader goes on replicating without counting itself, and steps down once it
 *    commits; the remaining voters elect a new leader. In a two-voter group that is refused by the
 *    core (the other voter could not be elected without it), so there the leader hands leadership
 *    to the other voter and answers NOT_LEADER naming it: the client's retry lands on the new
 *    leader, which removes the old one.
 */
import { EngineError } from '../../../engine/base/errors.js';
import type { ConfState, NodeId } from '../core/types.js';
import type { PartitionNode } from './partition-node.js';

/** A learner within this many entries of the commit point is promoted. */
export const promote_lag_max_entries = 32;

export interface MembershipResult {
  leader_id: NodeId;
  voters: NodeId[];
  learners: NodeId[];
  term: number;
}

export function membershipOf(node: PartitionNode): MembershipResult {
  const st = node.status();
  return { leader_id: st.leader_id, voters: st.voters, learners: st.learners, term: st.term };
}

const where = (node: PartitionNode) => `${node.topic}/${node.partition}`;
const list = (c: ConfState) => `voters ${c.voters.join(', ') || '-'}; learners ${c.learners.join(', ') || '-'}`;

export async function transferLeader(node: PartitionNode, to: NodeId, timeout_ms: number): Promise<MembershipResult> {
  if (node.role !== 'leader') throw node.notLeader();
  await node.transferLeadership(to, timeout_ms);
  return membershipOf(node);
}

export async function addReplica(node: PartitionNode, id: NodeId, timeout_ms: number): Promise<MembershipResult> {
  if (node.role !== 'leader') throw node.notLeader();
  const deadline = Date.now() + timeout_ms;
  const conf = node.confState();
  if (conf.voters.includes(id)) throw new EngineError('REPLICA_EXISTS', `node ${id} is already a replica of ${where(node)} (${list(conf)})`, { node_id: id });
  if (!conf.learners.includes(id)) await node.changeMembership({ type: 'add_learner', node_id: id }, timeout_ms);
  const caughtUp = () => {
    const match = node.matchIndexOf(id);
    if (node.role !== 'leader') throw node.notLeader();
    return match !== undefined && match + promote_lag_max_entries >= node.commitIndex;
  };
  await node.until(caughtUp, deadline - Date.now(), () => {
    const match = node.matchIndexOf(id) ?? 0;
    return new EngineError(
      'REPLICA_NOT_CAUGHT_UP',
      `node ${id} was added to ${where(node)} as a learner but has not caught up within ${timeout_ms} ms (it holds ${match} of ${node.commitIndex} committed entries; is it running with this node in its --peers?); it keeps catching up: repeat the command to promote it`,
      { node_id: id, match_index: match, commit_index: node.commitIndex },
    );
  });
  await node.changeMembership({ type: 'add_voter', node_id: id }, Math.max(1, deadline - Date.now()));
  return membershipOf(node);
}

export async function removeReplica(node: PartitionNode, id: NodeId, self: NodeId, timeout_ms: number, address_of: (id: NodeId) => string): Promise<MembershipResult> {
  if (node.role !== 'leader') throw node.notLeader();
  const conf = node.confState();
  if (!conf.voters.includes(id) && !conf.learners.includes(id)) throw new EngineError('NOT_A_REPLICA', `node ${id} is not a replica of ${where(node)} (${list(conf)})`, { node_id: id });
  if (conf.voters.length === 1 && conf.voters[0] === id) throw new EngineError('INVALID_ARGUMENT', `node ${id} is the last voter of ${where(node)}; add another replica first`, { node_id: id });
  if (id === self && conf.voters.length <= 2) {
    // Hand leadership to the most up-to-date other voter, then send the client there.
    const others = conf.voters.filter((v) => v !== self);
    const to = others.reduce((best, v) => ((node.matchIndexOf(v) ?? 0) > (node.matchIndexOf(best) ?? 0) ? v : best), others[0]!);
    await node.transferLeadership(to, timeout_ms);
    throw new EngineError('NOT_LEADER', `node ${self} handed leadership of ${where(node)} to node ${to} so that it can be removed; retry there`, {
      leader_id: to,
      ...(address_of(to) ? { leader: address_of(to) } : {}),
    });
  }
  await node.changeMembership({ type: 'remove_node', node_id: id }, timeout_ms);
  return membershipOf(node);
}
