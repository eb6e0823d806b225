/**
 * Restarting a node from what it persisted (§5.1 Figure 2 "persistent state"): hard state and log,
 * including a torn tail — the entries of a Ready that were being written when the node died.
 * Persistence completes before any message of the same Ready is sent, so a torn tail only ever
 * loses entries nobody was told about.
 */
import { describe, expect, test } from 'vitest';
import { TestCluster, entriesWithTerms } from '../../../property-tests/support/raft-sim.js';
import { MemoryLogStorage, Raft } from '../../../replication/raft/core/index.js';
import { Prng } from '../../../engine/base/prng.js';

describe('restart from storage', () => {
  test('a follower restarts with its term, vote, log and commit index, and applies again from the start', () => {
    const c = new TestCluster([1, 2, 3]);
    c.elect(1);
    for (const s of ['a', 'b', 'c']) c.core(1).propose(Buffer.from(s));
    c.deliver();
    c.tickAll(2);
    const before = { term: c.core(2).term, vote: c.core(2).vote, last: c.core(2).lastIndex(), commit: c.core(2).commitIndex };
    expect(before.commit).toBe(4);
    c.crash(2);
    const r = c.restart(2);
    expect({ term: r.term, vote: r.vote, last: r.lastIndex(), commit: r.commitIndex }).toEqual(before);
    expect(r.role).toBe('follower');
    c.flush();
    expect(c.node(2).applied.map((e) => e.index)).toEqual([1, 2, 3, 4]);
    c.tickAll(2);
    expect(c.core(2).lead).toBe(1);
  });

  test('a restarted leader comes back as a follower and the cluster carries on', () => {
    const c = new TestCluster([1, 2, 3]);
    c.elect(1);
    c.core(1).propose(Buffer.from('a'));
    c.deliver();
    c.crash(1);
    for (let i = 0; i < 40 && c.core(2).role !== 'leader' && c.core(3).role !== 'leader'; i++) c.tickAll(1, [2, 3]);
    const r = c.restart(1);
    expect(r.role).toBe('follower');
    c.tickAll(5);
    expect(r.lead).not.toBe(0);
    expect(c.terms(1)).toEqual(c.terms(2));
  });

  test('a torn Ready (entries persisted without their hard state) adopts the newest term in the log, with no vote', () => {
    const storage = new MemoryLogStorage(entriesWithTerms([1, 1, 2]));
    storage.setHardState({ term: 1, vote: 1, commit: 2 });
    const r = new Raft({ id: 2, storage, prng: new Prng(5), conf_state: { voters: [1, 2, 3], learners: [] }, hard_state: storage.hard_state });
    expect(r.term).toBe(2);
    expect(r.vote).toBe(0);
    expect(r.commitIndex).toBe(2);
    const rd = r.ready();
    expect(rd.hard_state).toEqual({ term: 2, vote: 0, commit: 2 });
    storage.setHardState(rd.hard_state!);
    r.advance(rd);
  });

  test('a follower whose last write was torn, before it answered, is caught up by the leader', () => {
    const c = new TestCluster([1, 2, 3]);
    const leader = c.elect(1);
    c.tickAll(1);
    c.keep = (m) => !(m.type === 'append' && m.to === 2);
    for (const s of ['a', 'b', 'c']) leader.propose(Buffer.from(s));
    c.deliver();
    expect(leader.commitIndex).toBe(4); // 1 and 3

    // Node 2 receives the three entries, starts writing them, and dies after the first.
    const f = c.core(2);
    f.step({ type: 'append', from: 1, to: 2, term: 1, prev_log_index: 1, prev_log_term: 1, entries: leader.entries(2, 5), commit: leader.commitIndex });
    const rd = f.ready();
    expect(rd.entries_to_persist.map((e) => e.index)).toEqual([2, 3, 4]);
    c.node(2).storage.append(rd.entries_to_persist.slice(0, 1));
    c.crash(2);

    const r = c.restart(2);
    expect(r.lastIndex()).toBe(2);
    expect(r.commitIndex).toBe(1);
    c.keep = () => true;
    c.tickAll(3);
    expect(c.terms(2)).toEqual(c.terms(1));
    expect(c.node(2).applied.map((e) => e.data.toString())).toEqual(['', 'a', 'b', 'c']);
  });

  test('membership is rebuilt from the conf changes in the stored log', () => {
    const c = new TestCluster([1, 2, 3]);
    c.elect(1);
    c.add(4, { voters: [], learners: [] });
    c.core(1).proposeConfChange({ type: 'add_learner', node_id: 4 });
    c.deliver();
    c.tickAll(2);
    c.crash(2);
    expect(c.restart(2).confState()).toEqual({ voters: [1, 2, 3], learners: [4] });
    c.crash(4);
    expect(c.restart(4).confState()).toEqual({ voters: [1, 2, 3], learners: [4] });
  });
});
