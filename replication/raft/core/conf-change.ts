/**
 * Membership changes, one server at a time (thesis §4.1): each change adds or removes at most one
 * voter, so any majority of the old voters overlaps any majority of the new ones and no joint
 * consensus is needed. A change takes effect on a node as soon as the entry is in its log
 * (appended, not committed), and is undone if that entry is truncated.
 *
 * A conf_change entry's data is the change *and the full membership after it*, so a node that
 * joins with an empty log learns the whole configuration from the first change it receives.
 *
 * Wire layout (UTF-8 JSON, one object):
 *   {"type":"add_learner"|"add_voter"|"remove_node","node_id":4,"voters":[1,2,3],"learners":[4]}
 */
import { assert } from '../../../engine/base/assert.js';
import type { ConfState, NodeId } from './types.js';

export type ConfChangeType = 'add_learner' | 'add_voter' | 'remove_node';

/** add_voter adds a new voter or promotes a learner; remove_node removes a voter or a learner. */
export interface ConfChange {
  readonly type: ConfChangeType;
  readonly node_id: NodeId;
}

export interface ConfChangeEntry {
  readonly change: ConfChange;
  readonly conf_state: ConfState;
}

const TYPES: readonly ConfChangeType[] = ['add_learner', 'add_voter', 'remove_node'];

/** The membership after `cc`, or the reason it is not a valid single-server change. */
export function applyConfChange(conf: ConfState, cc: ConfChange): ConfState | string {
  if (!Number.isSafeInteger(cc.node_id) || cc.node_id <= 0) return `node id must be a positive integer, got ${cc.node_id}`;
  const id = cc.node_id;
  const is_voter = conf.voters.includes(id);
  const is_learner = conf.learners.includes(id);
  switch (cc.type) {
    case 'add_learner':
      if (is_voter) return `node ${id} is a voter; demoting a voter to learner is not supported`;
      if (is_learner) return `node ${id} is already a learner`;
      return { voters: conf.voters, learners: [...conf.learners, id] };
    case 'add_voter':
      if (is_voter) return `node ${id} is already a voter`;
      return { voters: [...conf.voters, id], learners: conf.learners.filter((x) => x !== id) };
    case 'remove_node': {
      if (!is_voter && !is_learner) return `node ${id} is not a member`;
      const voters = conf.voters.filter((x) => x !== id);
      if (voters.length === 0) return 'cannot remove the last voter';
      return { voters, learners: conf.learners.filter((x) => x !== id) };
    }
  }
}

export function encodeConfChangeEntry(e: ConfChangeEntry): Buffer {
  const obj = { type: e.change.type, node_id: e.change.node_id, voters: e.conf_state.voters, learners: e.conf_state.learners };
  return Buffer.from(JSON.stringify(obj), 'utf8');
}

/** Decodes and checks a conf_change entry. It was validated by the leader, so a bad one is a bug. */
export function decodeConfChangeEntry(data: Buffer): ConfChangeEntry {
  const obj = JSON.parse(data.toString('utf8')) as Record<string, unknown>;
  const type = obj['type'] as ConfChangeType;
  assert(TYPES.includes(type), `bad conf change type ${String(type)}`);
  const node_id = obj['node_id'];
  const voters = obj['voters'];
  const learners = obj['learners'];
  assert(typeof node_id === 'number', 'conf change without node_id');
  assert(Array.isArray(voters) && Array.isArray(learners), 'conf change without membership');
  const conf_state = { voters: voters as NodeId[], learners: learners as NodeId[] };
  assertValidConfState(conf_state);
  return { change: { type, node_id }, conf_state };
}

export function assertValidConfState(conf: ConfState): void {
  const all = [...conf.voters, ...conf.learners];
  for (const id of all) assert(Number.isSafeInteger(id) && id > 0, `bad node id ${id} in membership`);
  assert(new Set(all).size === all.length, `voters and learners overlap or repeat: ${JSON.stringify(conf)}`);
}

/** Whether `next` differs from `prev` by at most one voter (the one-at-a-time rule). */
export function isSingleServerChange(prev: ConfState, next: ConfState): boolean {
  const added = next.voters.filter((id) => !prev.voters.includes(id)).length;
  const removed = prev.voters.filter((id) => !next.voters.includes(id)).length;
  return added + removed <= 1;
}
