/**
 * Learners and single-server membership changes (thesis §4.1, §4.2.1): one voter at a time, a
 * change takes effect when appended, at most one uncommitted, none before the leader's first entry
 * of its term commits.
 */
import { describe, expect, test } from 'vitest';
import { TestCluster } from '../../../property-tests/support/raft-sim.js';
import { isEngineError } from '../../../engine/base/errors.js';
import type { ConfChange } from '../../../replication/raft/core/index.js';

const EMPTY = { voters: [], learners: [] };

function errorCode(f: () => unknown): string | undefined {
  try {
    f();
    return undefined;
  } catch (err) {
    if (isEngineError(err)) return err.code;
    throw err;
  }
}

/** Proposes a change on the leader and lets it commit everywhere reachable. */
function change(c: TestCluster, leader: number, cc: ConfChange): void {
  c.core(leader).proposeConfChange(cc);
  c.deliver();
  c.tickAll(3);
}

describe('learners', () => {
  test('a learner never campaigns, and a candidate does not count its vote', () => {
    const c = new TestCluster([1, 2, 3], {}, new Map(), [4]);
    c.tick(4, 100);
    expect(c.core(4).role).toBe('follower');
    expect(c.core(4).term).toBe(0);
    // Candidates ask only voters; a learner's grant, should one arrive, is not counted.
    c.isolate(2);
    c.isolate(3);
    for (let i = 0; i < 40 && c.core(1).role !== 'pre_candidate'; i++) c.tick(1);
    expect(c.core(1).role).toBe('pre_candidate');
    expect(c.queue.concat(c.delivered).some((m) => m.to === 4 && (m.type === 'pre_vote' || m.type === 'vote'))).toBe(false);
    const r = c.core(1);
    r.step({ type: 'pre_vote_response', from: 4, to: 1, term: r.term + 1, granted: true });
    expect(r.role).toBe('pre_candidate');
  });

  test('a learner added to a running cluster learns the log and the membership from the leader', () => {
    const c = new TestCluster([1, 2, 3]);
    c.elect(1);
    c.core(1).propose(Buffer.from('before'));
    c.add(4, EMPTY); // joins with an empty log and no membership
    change(c, 1, { type: 'add_learner', node_id: 4 });
    expect(c.core(1).confState()).toEqual({ voters: [1, 2, 3], learners: [4] });
    expect(c.core(4).confState()).toEqual({ voters: [1, 2, 3], learners: [4] });
    expect(c.terms(4)).toEqual(c.terms(1));
    expect(c.node(4).applied.map((e) => e.data.toString())).toContain('before');
    expect(c.core(1).progressOf(4)?.is_learner).toBe(true);
  });
});

describe('single-server membership change', () => {
  test('a promoted learner counts in the quorum as soon as the change is appended', () => {
    const c = new TestCluster([1, 2, 3]);
    c.elect(1);
    c.add(4, EMPTY);
    change(c, 1, { type: 'add_learner', node_id: 4 });
    c.core(1).proposeConfChange({ type: 'add_voter', node_id: 4 });
    // In effect on the leader before it commits: four voters, quorum of three.
    expect(c.core(1).confState().voters).toEqual([1, 2, 3, 4]);
    c.deliver();
    c.tickAll(2);
    expect(c.core(4).confState().voters).toEqual([1, 2, 3, 4]);
    // With only 1 and 4 reachable, nothing commits (2 of 4 is no majority) ...
    c.isolate(2);
    c.isolate(3);
    c.cutLink(2, 1);
    const leader = c.core(1);
    const before = leader.commitIndex;
    const { index } = leader.propose(Buffer.from('needs three'));
    c.deliver();
    expect(leader.commitIndex).toBe(before);
    // ... and with node 2 back it does (1, 2, 4).
    c.heal();
    c.isolate(3);
    c.tick(1, 2);
    expect(leader.commitIndex).toBeGreaterThanOrEqual(index);
  });

  test('removing a voter shrinks the quorum', () => {
    const c = new TestCluster([1, 2, 3]);
    c.elect(1);
    change(c, 1, { type: 'remove_node', node_id: 3 });
    expect(c.core(2).confState()).toEqual({ voters: [1, 2], learners: [] });
    expect(c.core(1).progressOf(3)).toBeUndefined();
    c.crash(3);
    const { index } = c.core(1).propose(Buffer.from('two of two'));
    c.deliver();
    expect(c.core(1).commitIndex).toBeGreaterThanOrEqual(index);
    c.crash(2);
    c.core(1).propose(Buffer.from('one of two'));
    c.deliver();
    expect(c.core(1).commitIndex).toBe(index);
  });

  test('one change at a time, none before the leader has committed an entry of its term', () => {
    const c = new TestCluster([1, 2, 3]);
    c.keep = (m) => m.type !== 'append_response'; // the leader's empty entry cannot commit
    const leader = c.elect(1);
    expect(errorCode(() => leader.proposeConfChange({ type: 'add_learner', node_id: 4 }))).toBe('LIMIT_EXCEEDED');
    c.keep = () => true;
    c.tickAll(2);
    leader.proposeConfChange({ type: 'add_learner', node_id: 4 });
    expect(errorCode(() => leader.proposeConfChange({ type: 'add_learner', node_id: 5 }))).toBe('LIMIT_EXCEEDED');
    c.deliver();
    expect(errorCode(() => leader.proposeConfChange({ type: 'add_learner', node_id: 5 }))).toBeUndefined();
    c.deliver();
    expect(errorCode(() => leader.proposeConfChange({ type: 'add_voter', node_id: 2 }))).toBe('INVALID_ARGUMENT');
    expect(errorCode(() => leader.proposeConfChange({ type: 'remove_node', node_id: 9 }))).toBe('INVALID_ARGUMENT');
    expect(errorCode(() => c.core(2).proposeConfChange({ type: 'add_learner', node_id: 6 }))).toBe('NOT_LEADER');
  });

  test('§4.2.2: a leader removes itself, leads without counting itself until the change commits, then steps down', () => {
    const c = new TestCluster([1, 2, 3]);
    const leader = c.elect(1);
    c.tickAll(2);
    const { index } = leader.proposeConfChange({ type: 'remove_node', node_id: 1 });
    expect(leader.confState()).toEqual({ voters: [2, 3], learners: [] });
    expect(leader.role).toBe('leader');
    // Its own copy no longer counts: with node 3 cut off, {1, 2} is not a majority of {2, 3}.
    c.isolate(3);
    c.deliver();
    expect(leader.commitIndex).toBeLessThan(index);
    expect(leader.role).toBe('leader');
    // With node 3 back the change commits on 2 and 3; the old leader steps down and never campaigns.
    c.heal();
    c.tickAll(2);
    c.deliver();
    expect(leader.commitIndex).toBeGreaterThanOrEqual(index);
    expect(leader.role).toBe('follower');
    for (let i = 0; i < 60 && c.core(2).role !== 'leader' && c.core(3).role !== 'leader'; i++) c.tickAll(1);
    expect([c.core(2).role, c.core(3).role]).toContain('leader');
    c.tick(1, 100);
    expect(c.core(1).role).toBe('follower');
    expect(c.core(1).term).toBeLessThanOrEqual(Math.max(c.core(2).term, c.core(3).term));
  });

  test('the leader of a two-voter group may not remove itself (the other could never be elected without it)', () => {
    const c = new TestCluster([1, 2]);
    const leader = c.elect(1);
    c.tickAll(2);
    expect(errorCode(() => leader.proposeConfChange({ type: 'remove_node', node_id: 1 }))).toBe('INVALID_ARGUMENT');
    expect(errorCode(() => leader.proposeConfChange({ type: 'remove_node', node_id: 2 }))).toBeUndefined();
  });

  test('a change takes effect when appended and is undone when that entry is truncated', () => {
    const c = new TestCluster([1, 2, 3]);
    c.elect(1);
    c.tickAll(1);
    c.isolate(1);
    c.core(1).proposeConfChange({ type: 'add_learner', node_id: 4 });
    c.deliver();
    expect(c.core(1).confState().learners).toEqual([4]);
    for (let i = 0; i < 40 && c.core(2).role !== 'leader' && c.core(3).role !== 'leader'; i++) c.tickAll(1, [2, 3]);
    c.heal();
    c.tickAll(5);
    expect(c.core(1).role).toBe('follower');
    expect(c.core(1).confState()).toEqual({ voters: [1, 2, 3], learners: [] });
    expect(c.terms(1)).toEqual(c.terms(2));
  });
});
