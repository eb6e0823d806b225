/** The Ready/advance contract and the small pure parts: quorum arithmetic, conf change codec, storage. */
import { describe, expect, test } from 'vitest';
import { AssertionError } from '../../../engine/base/assert.js';
import { isEngineError } from '../../../engine/base/errors.js';
import { Prng } from '../../../engine/base/prng.js';
import { TestCluster, entriesWithTerms } from '../../../property-tests/support/raft-sim.js';
import {
  MemoryLogStorage,
  Raft,
  applyConfChange,
  decodeConfChangeEntry,
  encodeConfChangeEntry,
  quorumSize,
} from '../../../replication/raft/core/index.js';
import { quorumMatchIndex, voteResult } from '../../../replication/raft/core/quorum.js';

function single(storage = new MemoryLogStorage()): Raft {
  return new Raft({ id: 1, storage, prng: new Prng(9), conf_state: { voters: [1], learners: [] } });
}

describe('Ready / advance', () => {
  test('propose on a follower throws NOT_LEADER naming the leader it knows', () => {
    const c = new TestCluster([1, 2, 3]);
    c.elect(1);
    let err: unknown;
    try {
      c.core(2).propose(Buffer.from('x'));
    } catch (e) {
      err = e;
    }
    expect(isEngineError(err, 'NOT_LEADER')).toBe(true);
    expect(isEngineError(err) && err.details['leader_id']).toBe(1);
    expect(isEngineError(err) && err.retriable).toBe(true);
  });

  test('nothing may be called between ready() and advance()', () => {
    const r = single();
    r.tick();
    expect(r.hasReady()).toBe(false);
    while (!r.hasReady()) r.tick();
    const rd = r.ready();
    expect(r.hasReady()).toBe(false);
    expect(() => r.tick()).toThrow(AssertionError);
    expect(() => r.ready()).toThrow(AssertionError);
    expect(() => r.advance({ ...rd })).toThrow(AssertionError);
  });

  test('advance() checks that storage holds what the Ready asked to persist (pair assertion)', () => {
    const r = single();
    while (r.role !== 'leader') r.tick();
    const rd = r.ready();
    expect(rd.entries_to_persist.length).toBe(1);
    expect(() => r.advance(rd)).toThrow(/storage does not hold/);
  });

  test('a leader hands committed entries out once, in order, under apply_batch_max_bytes', () => {
    const storage = new MemoryLogStorage();
    const r = new Raft({ id: 1, storage, prng: new Prng(9), conf_state: { voters: [1], learners: [] }, apply_batch_max_bytes: 25 });
    while (r.role !== 'leader') r.tick();
    for (let i = 0; i < 5; i++) r.propose(Buffer.alloc(10, i));
    const applied: number[] = [];
    for (let n = 0; r.hasReady(); n++) {
      expect(n).toBeLessThan(20);
      const rd = r.ready();
      storage.append(rd.entries_to_persist);
      if (rd.hard_state) storage.setHardState(rd.hard_state);
      const size_bytes = rd.committed_entries_to_apply.reduce((s, e) => s + e.data.length, 0);
      expect(rd.committed_entries_to_apply.length <= 1 || size_bytes <= 25).toBe(true);
      applied.push(...rd.committed_entries_to_apply.map((e) => e.index));
      r.advance(rd);
    }
    expect(applied).toEqual([1, 2, 3, 4, 5, 6]);
  });

  test('soft state is reported when the role or leader changes', () => {
    const r = single();
    while (r.role !== 'leader') r.tick();
    expect(r.ready().soft_state).toEqual({ lead: 1, role: 'leader' });
  });

  test('proposals beyond proposal_max_bytes or uncommitted_entries_max are refused with named errors', () => {
    const r = new Raft({ id: 1, storage: new MemoryLogStorage(), prng: new Prng(9), conf_state: { voters: [1, 2], learners: [] }, proposal_max_bytes: 10, uncommitted_entries_max: 3 });
    r.step({ type: 'vote_response', from: 2, to: 1, term: 0, granted: true }); // ignored: not a candidate
    while (r.role !== 'pre_candidate') r.tick();
    r.step({ type: 'pre_vote_response', from: 2, to: 1, term: 1, granted: true });
    r.step({ type: 'vote_response', from: 2, to: 1, term: 1, granted: true });
    expect(r.role).toBe('leader');
    expect(() => r.propose(Buffer.alloc(11))).toThrow(expect.objectContaining({ code: 'BATCH_TOO_LARGE' }));
    r.propose(Buffer.alloc(1));
    r.propose(Buffer.alloc(1));
    expect(() => r.propose(Buffer.alloc(1))).toThrow(expect.objectContaining({ code: 'LIMIT_EXCEEDED' }));
  });
});

describe('quorum arithmetic', () => {
  test('majorities', () => {
    expect([1, 2, 3, 4, 5].map(quorumSize)).toEqual([1, 2, 2, 3, 3]);
    expect(quorumMatchIndex([1, 2, 3], (id) => ({ 1: 9, 2: 5, 3: 2 })[id] ?? 0)).toBe(5);
    expect(quorumMatchIndex([1, 2, 3, 4], (id) => ({ 1: 9, 2: 5, 3: 2, 4: 7 })[id] ?? 0)).toBe(5);
    expect(voteResult([1, 2, 3], new Map([[1, true]]))).toBe('pending');
    expect(voteResult([1, 2, 3], new Map([[1, true], [2, true]]))).toBe('won');
    expect(voteResult([1, 2, 3], new Map([[1, true], [2, false], [3, false]]))).toBe('lost');
    // Answers from non-voters are ignored.
    expect(voteResult([1, 2, 3], new Map([[1, true], [4, true], [5, true]]))).toBe('pending');
  });
});

describe('conf change', () => {
  test('one voter at a time, learners disjoint from voters', () => {
    const conf = { voters: [1, 2, 3], learners: [4] };
    expect(applyConfChange(conf, { type: 'add_voter', node_id: 4 })).toEqual({ voters: [1, 2, 3, 4], learners: [] });
    expect(applyConfChange(conf, { type: 'add_learner', node_id: 5 })).toEqual({ voters: [1, 2, 3], learners: [4, 5] });
    expect(applyConfChange(conf, { type: 'remove_node', node_id: 2 })).toEqual({ voters: [1, 3], learners: [4] });
    expect(typeof applyConfChange(conf, { type: 'add_learner', node_id: 1 })).toBe('string');
    expect(typeof applyConfChange({ voters: [1], learners: [] }, { type: 'remove_node', node_id: 1 })).toBe('string');
    expect(typeof applyConfChange(conf, { type: 'add_voter', node_id: 0 })).toBe('string');
  });

  test('codec round trip, and a malformed entry is an assertion (the leader validated it)', () => {
    const e = { change: { type: 'add_learner' as const, node_id: 4 }, conf_state: { voters: [1, 2, 3], learners: [4] } };
    expect(decodeConfChangeEntry(encodeConfChangeEntry(e))).toEqual(e);
    expect(() => decodeConfChangeEntry(Buffer.from('{"type":"add_learner","node_id":4,"voters":[1,1],"learners":[]}'))).toThrow(AssertionError);
  });
});

describe('MemoryLogStorage', () => {
  test('append truncates a conflicting suffix; entries() honours max_bytes but returns at least one', () => {
    const s = new MemoryLogStorage(entriesWithTerms([1, 1, 1]));
    s.append(entriesWithTerms([2], 2));
    expect(s.all().map((e) => e.term)).toEqual([1, 2]);
    expect(s.term(0)).toBe(0);
    expect(s.term(3)).toBeUndefined();
    expect(s.entries(1, 3, 0).length).toBe(1);
    expect(() => s.append(entriesWithTerms([2], 4))).toThrow(AssertionError);
  });
});
