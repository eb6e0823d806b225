/**
 * Leader election (§5.2), the election restriction (§5.4.1), pre-vote (thesis §9.6), check quorum
 * and the leader lease (thesis §6.2, §4.2.3).
 */
import { describe, expect, test } from 'vitest';
import { TestCluster, entriesWithTerms } from '../../../property-tests/support/raft-sim.js';
import type { HardState, Message } from '../../../replication/raft/core/index.js';

const ELECTION_TIMEOUT_TICKS = 10;

describe('leader election', () => {
  test('§5.2 a node that times out is elected by a majority; the others follow it', () => {
    const c = new TestCluster([1, 2, 3]);
    const leader = c.elect(1);
    expect(leader.term).toBe(1);
    expect(c.core(2).lead).toBe(1);
    expect(c.core(3).lead).toBe(1);
    expect(c.core(2).vote).toBe(1);
    // §5.4.2: the new leader's empty entry of its own term commits at once.
    expect(leader.commitIndex).toBe(1);
  });

  test('§5.2 one vote per term: the vote is persisted in the Ready that answers, and survives a restart', () => {
    const c = new TestCluster([1, 2, 3]);
    const voter = c.core(2);
    voter.step({ type: 'vote', from: 1, to: 2, term: 1, last_log_index: 0, last_log_term: 0, transfer: false });
    const rd = voter.ready();
    expect(rd.hard_state).toEqual<HardState>({ term: 1, vote: 1, commit: 0 });
    expect(rd.messages_to_send).toEqual([{ type: 'vote_response', from: 2, to: 1, term: 1, granted: true }]);
    c.node(2).storage.setHardState(rd.hard_state!);
    voter.advance(rd);

    const restarted = c.restart(2);
    expect(restarted.term).toBe(1);
    expect(restarted.vote).toBe(1);
    restarted.step({ type: 'vote', from: 3, to: 2, term: 1, last_log_index: 5, last_log_term: 1, transfer: false });
    expect(restarted.ready().messages_to_send).toEqual([{ type: 'vote_response', from: 2, to: 3, term: 1, granted: false }]);
  });

  test('§5.4.1 election restriction: a candidate whose log is behind gets no vote', () => {
    const hard_state = { term: 2, vote: 0, commit: 0 };
    const logs = new Map([
      [1, { entries: entriesWithTerms([1, 1]), hard_state }],
      [2, { entries: entriesWithTerms([1, 1, 2]), hard_state }],
      [3, { entries: entriesWithTerms([1, 2]), hard_state }],
    ]);
    const c = new TestCluster([1, 2, 3], { pre_vote: false, check_quorum: false }, logs);
    c.tick(1, 3 * ELECTION_TIMEOUT_TICKS);
    expect(c.core(1).role).not.toBe('leader');
    const answers = c.delivered.filter((m) => m.type === 'vote_response' && m.to === 1);
    expect(answers.length).toBeGreaterThan(0);
    expect(answers.every((m) => m.type === 'vote_response' && !m.granted)).toBe(true);
    // Node 3's log (last term 2) is more up to date than node 1's (last term 1), so it can win.
    expect(c.elect(3).role).toBe('leader');
  });
});

describe('older terms', () => {
  test('§5.1 a vote request from an older term is answered with a rejection carrying the newer term, which the candidate adopts', () => {
    const logs = new Map([
      [1, { entries: entriesWithTerms([1, 2]), hard_state: { term: 3, vote: 0, commit: 0 } }],
      [2, { entries: entriesWithTerms([1]), hard_state: { term: 7, vote: 0, commit: 0 } }],
      [3, { entries: entriesWithTerms([1]), hard_state: { term: 7, vote: 0, commit: 0 } }],
    ]);
    const c = new TestCluster([1, 2, 3], { pre_vote: false, check_quorum: false }, logs);
    const voter = c.core(2);
    voter.step({ type: 'vote', from: 1, to: 2, term: 4, last_log_index: 2, last_log_term: 2, transfer: false });
    const rd = voter.ready();
    expect(rd.messages_to_send).toEqual([{ type: 'vote_response', from: 2, to: 1, term: 7, granted: false }]);
    expect(rd.hard_state).toBeUndefined(); // neither its term nor its vote changed
    voter.advance(rd);
    // Node 1, whose log is the most up to date but whose term is behind, learns term 7 from that
    // answer and so wins its next election: two timeouts, under 4 election timeouts in all. (Were
    // its requests dropped, it would need five: terms 4 to 7 ignored, then 8.)
    c.tick(1, 4 * ELECTION_TIMEOUT_TICKS);
    expect(c.core(1).role).toBe('leader');
    expect(c.core(1).term).toBeGreaterThan(7);
  });
});

describe('pre-vote', () => {
  test('§9.6 a node rejoining after a partition does not disrupt a stable leader', () => {
    const c = new TestCluster([1, 2, 3]);
    c.elect(1);
    c.isolate(3);
    c.tick(3, 10 * ELECTION_TIMEOUT_TICKS);
    // It rehearsed elections it could not win, so its term never moved.
    expect(c.core(3).term).toBe(1);
    c.heal();
    c.tickAll(3 * ELECTION_TIMEOUT_TICKS);
    expect(c.core(1).role).toBe('leader');
    expect([1, 2, 3].map((id) => c.core(id).term)).toEqual([1, 1, 1]);
    expect(c.core(3).lead).toBe(1);
  });

  test('without pre-vote the same rejoining node forces a new election (why pre-vote exists)', () => {
    const c = new TestCluster([1, 2, 3], { pre_vote: false, check_quorum: false });
    c.elect(1);
    c.isolate(3);
    c.tick(3, 10 * ELECTION_TIMEOUT_TICKS);
    expect(c.core(3).term).toBeGreaterThan(1);
    c.heal();
    c.tickAll(5 * ELECTION_TIMEOUT_TICKS);
    expect(c.core(1).term).toBeGreaterThan(1);
  });

  test('a pre-vote changes no term and no vote on either side', () => {
    const c = new TestCluster([1, 2, 3]);
    const r = c.core(2);
    r.step({ type: 'pre_vote', from: 1, to: 2, term: 1, last_log_index: 0, last_log_term: 0, transfer: false });
    const rd = r.ready();
    expect(rd.hard_state).toBeUndefined();
    expect(rd.messages_to_send).toEqual([{ type: 'pre_vote_response', from: 2, to: 1, term: 1, granted: true }]);
    r.advance(rd);
    expect(r.term).toBe(0);
    expect(r.vote).toBe(0);
  });
});

describe('check quorum and lease', () => {
  test('§6.2 a leader that cannot hear a majority steps down within an election timeout', () => {
    const c = new TestCluster([1, 2, 3]);
    c.elect(1);
    c.tickAll(5 * ELECTION_TIMEOUT_TICKS);
    expect(c.core(1).role).toBe('leader'); // a healthy leader stays
    c.isolate(1);
    c.tick(1, 2 * ELECTION_TIMEOUT_TICKS);
    expect(c.core(1).role).toBe('follower');
    expect(c.core(1).lead).toBe(0);
  });

  test('while it hears from a leader, a follower ignores a vote request with a higher term (unless it is a transfer)', () => {
    const c = new TestCluster([1, 2, 3]);
    c.elect(1);
    const f = c.core(2);
    const request: Message = { type: 'vote', from: 3, to: 2, term: 5, last_log_index: 1, last_log_term: 1, transfer: false };
    f.step(request);
    expect(f.hasReady()).toBe(false);
    expect(f.term).toBe(1);
    f.step({ ...request, transfer: true });
    const rd = f.ready();
    expect(rd.messages_to_send).toEqual([{ type: 'vote_response', from: 2, to: 3, term: 5, granted: true }]);
    expect(rd.hard_state).toEqual({ term: 5, vote: 3, commit: 1 });
    f.advance(rd);
  });

  test('a stale leader learns the newer term from a follower reply and steps down', () => {
    const c = new TestCluster([1, 2, 3]);
    c.elect(1);
    c.isolate(1);
    for (let i = 0; i < 4 * ELECTION_TIMEOUT_TICKS && c.core(2).role !== 'leader' && c.core(3).role !== 'leader'; i++) c.tickAll(1, [2, 3]);
    const new_term = Math.max(c.core(2).term, c.core(3).term);
    expect(new_term).toBeGreaterThan(1);
    expect(c.core(1).role).toBe('leader'); // it has not noticed yet
    c.heal();
    c.tick(1); // its heartbeat (term 1) is answered with the newer term
    expect(c.core(1).role).toBe('follower');
    expect(c.core(1).term).toBe(new_term);
  });
});
