/**
 * Log replication (§5.3): consistency check, truncation of a divergent suffix, fast backoff, the
 * commit rule for entries of earlier terms (§5.4.2), batching limits and the leader's self-ack.
 */
import { describe, expect, test } from 'vitest';
import { TestCluster, entriesWithTerms } from '../../../property-tests/support/raft-sim.js';
import { MemoryLogStorage, Raft, type AppendResponse, type Message } from '../../../replication/raft/core/index.js';
import { Prng } from '../../../engine/base/prng.js';

/** §5.3 Figure 7: the leader's log (term 8) and followers (a)-(f). */
const FIGURE_7_LEADER = [1, 1, 1, 4, 4, 5, 5, 6, 6, 6];
const FIGURE_7_FOLLOWERS: Record<string, number[]> = {
  a: [1, 1, 1, 4, 4, 5, 5, 6, 6],
  b: [1, 1, 1, 4],
  c: [1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 6],
  d: [1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 7, 7],
  e: [1, 1, 1, 4, 4, 4, 4],
  f: [1, 1, 1, 2, 2, 2, 3, 3, 3, 3, 3],
};

describe('§5.3 log replication', () => {
  for (const [name, follower] of Object.entries(FIGURE_7_FOLLOWERS)) {
    test(`Figure 7 (${name}): the leader makes the follower's log equal to its own`, () => {
      const hard_state = { term: 7, vote: 0, commit: 0 };
      const logs = new Map([
        [1, { entries: entriesWithTerms(FIGURE_7_LEADER), hard_state }],
        [2, { entries: entriesWithTerms(follower), hard_state }],
        [3, { entries: entriesWithTerms(FIGURE_7_LEADER), hard_state }],
      ]);
      const c = new TestCluster([1, 2, 3], { append_entries_max_count: 100 }, logs);
      const leader = c.elect(1);
      expect(leader.term).toBe(8);
      c.tickAll(3);
      const expected = [...FIGURE_7_LEADER, 8];
      expect(c.terms(2)).toEqual(expected);
      expect(c.node(2).storage.all().map((e) => e.data.toString())).toEqual(c.node(1).storage.all().map((e) => e.data.toString()));
      expect(c.core(2).commitIndex).toBe(11);
      // Fast backoff: each rejection skips at least a whole term of the follower's log.
      const rejections = c.delivered.filter((m) => m.type === 'append_response' && m.from === 2 && !m.success).length;
      expect(rejections).toBeLessThanOrEqual(new Set(follower).size);
    });
  }

  test('a follower rejects a mismatching append and hints the last entry that may match', () => {
    const storage = new MemoryLogStorage(entriesWithTerms([1, 1, 2, 2, 2]));
    storage.setHardState({ term: 3, vote: 0, commit: 0 });
    const r = new Raft({ id: 2, storage, prng: new Prng(1), conf_state: { voters: [1, 2, 3], learners: [] }, hard_state: storage.hard_state });
    const reply = (prev_log_index: number, prev_log_term: number): AppendResponse => {
      r.step({ type: 'append', from: 1, to: 2, term: 3, prev_log_index, prev_log_term, entries: [], commit: 0 });
      const rd = r.ready();
      r.advance(rd);
      return rd.messages_to_send[0] as AppendResponse;
    };
    expect(reply(5, 3)).toMatchObject({ success: false, reject_index: 5, hint_index: 5, hint_term: 2 });
    expect(reply(5, 1)).toMatchObject({ success: false, reject_index: 5, hint_index: 2, hint_term: 1 });
    expect(reply(9, 3)).toMatchObject({ success: false, reject_index: 9, hint_index: 5, hint_term: 2 });
    expect(reply(4, 2)).toMatchObject({ success: true, match_index: 4 });
  });

  test('a follower truncates a conflicting suffix; the Ready says where to overwrite from', () => {
    const storage = new MemoryLogStorage(entriesWithTerms([1, 1, 1]));
    storage.setHardState({ term: 1, vote: 0, commit: 1 });
    const r = new Raft({ id: 2, storage, prng: new Prng(1), conf_state: { voters: [1, 2], learners: [] }, hard_state: storage.hard_state });
    const entry = { index: 2, term: 2, kind: 'normal' as const, data: Buffer.from('new') };
    r.step({ type: 'append', from: 1, to: 2, term: 2, prev_log_index: 1, prev_log_term: 1, entries: [entry], commit: 1 });
    const rd = r.ready();
    expect(rd.entries_to_persist).toEqual([entry]);
    storage.append(rd.entries_to_persist); // deletes 2@1 and 3@1, then appends 2@2
    storage.setHardState(rd.hard_state!);
    r.advance(rd);
    expect(storage.all().map((e) => e.term)).toEqual([1, 2]);
    expect(r.lastIndex()).toBe(2);
  });

  test('a follower commits min(leader commit, last new entry)', () => {
    const storage = new MemoryLogStorage();
    const r = new Raft({ id: 2, storage, prng: new Prng(1), conf_state: { voters: [1, 2, 3], learners: [] } });
    r.step({ type: 'append', from: 1, to: 2, term: 1, prev_log_index: 0, prev_log_term: 0, entries: entriesWithTerms([1, 1]), commit: 9 });
    expect(r.commitIndex).toBe(2);
  });

  test('a heartbeat carries min(follower match, leader commit), so a lagging follower never commits what it lacks', () => {
    const c = new TestCluster([1, 2, 3]);
    c.elect(1);
    c.tickAll(1);
    c.keep = (m) => !(m.type === 'append' && m.to === 3);
    c.core(1).propose(Buffer.from('x'));
    c.deliver();
    expect(c.core(1).commitIndex).toBe(2);
    c.tick(1);
    const heartbeats = c.delivered.filter((m): m is Extract<Message, { type: 'heartbeat' }> => m.type === 'heartbeat');
    expect(heartbeats.filter((m) => m.to === 2).pop()?.commit).toBe(2);
    expect(heartbeats.filter((m) => m.to === 3).pop()?.commit).toBe(1);
    expect(c.core(3).commitIndex).toBe(1);
    expect(c.core(3).lastIndex()).toBe(1);
  });

  test('appends respect append_entries_max_count and append_entries_max_bytes', () => {
    const c = new TestCluster([1, 2], { append_entries_max_count: 2, append_entries_max_bytes: 25 });
    c.elect(1);
    c.cutLink(1, 2); // node 2 falls behind, so the leader has a backlog to batch
    for (let i = 0; i < 6; i++) c.core(1).propose(Buffer.alloc(10, i));
    c.core(1).propose(Buffer.alloc(40, 9)); // larger than the byte limit: still goes, alone
    c.deliver();
    c.heal();
    c.tickAll(10);
    const appends = c.delivered.filter((m): m is Extract<Message, { type: 'append' }> => m.type === 'append');
    expect(Math.max(...appends.map((m) => m.entries.length))).toBe(2);
    for (const m of appends) {
      const size_bytes = m.entries.reduce((n, e) => n + e.data.length, 0);
      expect(m.entries.length <= 1 || size_bytes <= 25).toBe(true);
    }
    expect(c.core(2).commitIndex).toBeGreaterThanOrEqual(7);
    expect(c.terms(2)).toEqual(c.terms(1));
  });
});

describe('§5.4.2 committing entries from previous terms', () => {
  test('Figure 8: replicas of an earlier-term entry on a majority do not commit it; the leader\'s own entry does', () => {
    const logs = new Map([
      [1, { entries: entriesWithTerms([1, 2]), hard_state: { term: 3, vote: 0, commit: 1 } }],
      [2, { entries: entriesWithTerms([1, 2]), hard_state: { term: 3, vote: 0, commit: 1 } }],
      [3, { entries: entriesWithTerms([1]), hard_state: { term: 3, vote: 5, commit: 1 } }],
      [4, { entries: entriesWithTerms([1]), hard_state: { term: 3, vote: 5, commit: 1 } }],
      [5, { entries: entriesWithTerms([1, 3]), hard_state: { term: 3, vote: 5, commit: 1 } }],
    ]);
    const c = new TestCluster([1, 2, 3, 4, 5], { append_entries_max_count: 1 }, logs);
    c.isolate(5);
    // Hold back every append carrying the new leader's own entry (3@4).
    c.keep = (m) => !(m.type === 'append' && m.entries.some((e) => e.term === 4));
    const leader = c.elect(1);
    expect(leader.term).toBe(4);
    expect([2, 3, 4].map((id) => c.terms(id))).toEqual([
      [1, 2],
      [1, 2],
      [1, 2],
    ]);
    // 2@2 is now on all of S1..S4, yet it is not committed: S5 (last term 3) could still win and erase it.
    expect(leader.commitIndex).toBe(1);

    // (d) in the figure: S5 wins term 5 with votes from S2..S4 and overwrites index 2.
    c.queue = [];
    c.crash(1);
    c.heal();
    c.keep = () => true;
    c.core(5).step({ type: 'timeout_now', from: 1, to: 5, term: 4 });
    c.deliver();
    expect(c.core(5).role).toBe('leader');
    c.tickAll(2);
    expect(c.terms(3).slice(0, 2)).toEqual([1, 3]);
  });

  test('Figure 8 (e): once an entry of the leader\'s term is on a majority, everything before it commits', () => {
    const logs = new Map([
      [1, { entries: entriesWithTerms([1, 2]), hard_state: { term: 3, vote: 0, commit: 1 } }],
      [2, { entries: entriesWithTerms([1, 2]), hard_state: { term: 3, vote: 0, commit: 1 } }],
      [3, { entries: entriesWithTerms([1]), hard_state: { term: 3, vote: 5, commit: 1 } }],
      [4, { entries: entriesWithTerms([1]), hard_state: { term: 3, vote: 5, commit: 1 } }],
      [5, { entries: entriesWithTerms([1, 3]), hard_state: { term: 3, vote: 5, commit: 1 } }],
    ]);
    const c = new TestCluster([1, 2, 3, 4, 5], { append_entries_max_count: 1 }, logs);
    c.isolate(5);
    const leader = c.elect(1);
    c.tickAll(2, [1]);
    expect(leader.commitIndex).toBe(3);
    expect(c.terms(3)).toEqual([1, 2, 4]);
    // S5 can no longer win: its last term (3) is behind a majority's (4).
    c.heal();
    c.crash(1);
    c.core(5).step({ type: 'timeout_now', from: 1, to: 5, term: 4 });
    c.deliver();
    expect(c.core(5).role).not.toBe('leader');
  });

  test('a leader counts its own entries toward the quorum only after they are persisted', () => {
    const storage = new MemoryLogStorage();
    const r = new Raft({ id: 1, storage, prng: new Prng(3), conf_state: { voters: [1], learners: [] } });
    while (r.role !== 'leader') r.tick();
    const rd1 = r.ready();
    expect(rd1.entries_to_persist.map((e) => e.index)).toEqual([1]);
    expect(rd1.hard_state?.commit).toBe(0);
    expect(rd1.committed_entries_to_apply).toEqual([]);
    storage.append(rd1.entries_to_persist);
    storage.setHardState(rd1.hard_state!);
    r.advance(rd1);
    expect(r.commitIndex).toBe(1);
    const rd2 = r.ready();
    expect(rd2.hard_state?.commit).toBe(1);
    expect(rd2.committed_entries_to_apply.map((e) => e.index)).toEqual([1]);
    storage.setHardState(rd2.hard_state!);
    r.advance(rd2);
    expect(r.appliedIndex).toBe(1);
  });
});
