/**
 * Log compaction and InstallSnapshot (§7): a leader whose log no longer holds what a follower needs
 * sends its snapshot; the follower discards its log (or, if it holds the snapshot's last entry, only
 * moves its commit index), answers at the snapshot's index, and replication goes on from there.
 * The membership travels in the snapshot; a restart starts from the stored snapshot.
 */
import { describe, expect, test } from 'vitest';
import { Prng } from '../../../engine/base/prng.js';
import { TestCluster, entriesWithTerms } from '../../../property-tests/support/raft-sim.js';
import { MemoryLogStorage, Raft, type ConfState, type Message, type Ready, type SnapshotRequest } from '../../../replication/raft/core/index.js';

const VOTERS: ConfState = { voters: [1, 2, 3], learners: [] };
const OPTS = { election_timeout_ticks: 10, heartbeat_interval_ticks: 1, append_entries_max_count: 100 };

function propose(c: TestCluster, id: number, n: number): void {
  for (let i = 0; i < n; i++) c.core(id).propose(Buffer.from(`p${i}`));
  c.deliver();
}

function snapshotsTo(c: TestCluster, to: number): SnapshotRequest[] {
  return c.delivered.filter((m: Message): m is SnapshotRequest => m.type === 'snapshot' && m.to === to);
}

/** The (index, term, data) of every stored entry after the snapshot. */
function stored(c: TestCluster, id: number): string[] {
  return c.node(id).storage.all().map((e) => `${e.index}@${e.term}:${e.data.toString()}`);
}

describe('§7 snapshots', () => {
  test('a follower behind a compacted leader installs its snapshot, then replicates from there', () => {
    const c = new TestCluster([1, 2, 3], OPTS);
    c.elect(1);
    c.isolate(3);
    propose(c, 1, 10);
    const leader = c.core(1);
    expect(leader.commitIndex).toBe(11);
    c.node(1).storage.compact(8, VOTERS, Buffer.from('state@8'));
    c.node(2).storage.compact(8, VOTERS, Buffer.from('state@8'));
    c.heal();
    c.tickAll(3);
    const sent = snapshotsTo(c, 3);
    expect(sent.length).toBeGreaterThanOrEqual(1);
    expect(sent[0]!.snapshot.meta).toEqual({ index: 8, term: leader.term, conf_state: VOTERS });
    expect(sent[0]!.snapshot.data.toString()).toBe('state@8');
    // Node 3's log now starts after the snapshot and holds the rest of the leader's.
    const s3 = c.node(3).storage;
    expect(s3.firstIndex()).toBe(9);
    expect(s3.snapshot().data.toString()).toBe('state@8');
    expect(stored(c, 3)).toEqual(stored(c, 1));
    expect(c.core(3).commitIndex).toBe(11);
    // What the snapshot covers (2..8) is not applied entry by entry; what follows it is. (Entry 1,
    // the leader's first, committed while node 3 was still connected.)
    expect(c.node(3).applied.map((e) => e.index)).toEqual([1, 9, 10, 11]);
    // The progress is back to streaming appends: new entries reach node 3 without another snapshot.
    propose(c, 1, 3);
    expect(snapshotsTo(c, 3)).toHaveLength(sent.length);
    expect(c.core(3).commitIndex).toBe(14);
    expect(leader.progressOf(3)).toMatchObject({ match: 14, state: 'replicate' });
  });

  test('a follower that holds the snapshot\'s last entry keeps its log and only commits; a later one replaces it', () => {
    const storage = new MemoryLogStorage(entriesWithTerms([1, 1, 1, 1, 1, 1]));
    storage.setHardState({ term: 1, vote: 0, commit: 2 });
    const r = new Raft({ id: 3, storage, prng: new Prng(1), conf_state: VOTERS, hard_state: storage.hard_state, applied_index: 2 });
    const step = (index: number): Ready => {
      r.step({ type: 'snapshot', from: 1, to: 3, term: 1, snapshot: { meta: { index, term: 1, conf_state: VOTERS }, data: Buffer.from(`s${index}`) } });
      const rd = r.ready();
      if (rd.snapshot) storage.applySnapshot(rd.snapshot);
      storage.append(rd.entries_to_persist);
      if (rd.hard_state) storage.setHardState(rd.hard_state);
      r.advance(rd);
      return rd;
    };
    const held = step(6);
    expect(held.snapshot).toBeUndefined();
    expect(held.hard_state?.commit).toBe(6);
    expect(held.messages_to_send).toEqual([expect.objectContaining({ type: 'append_response', success: true, match_index: 6 })]);
    expect(held.committed_entries_to_apply.map((e) => e.index)).toEqual([3, 4, 5, 6]);
    expect(storage.firstIndex()).toBe(1);
    expect(storage.lastIndex()).toBe(6);
    const replaced = step(9);
    expect(replaced.snapshot?.data.toString()).toBe('s9');
    expect(replaced.hard_state?.commit).toBe(9);
    expect(replaced.committed_entries_to_apply).toEqual([]);
    expect(replaced.messages_to_send).toEqual([expect.objectContaining({ type: 'append_response', success: true, match_index: 9 })]);
    expect([storage.firstIndex(), storage.lastIndex(), storage.term(9)]).toEqual([10, 9, 1]);
    expect([r.commitIndex, r.appliedIndex, r.lastIndex()]).toEqual([9, 9, 9]);
  });

  test('a snapshot at or below the follower\'s commit index changes nothing', () => {
    const c = new TestCluster([1, 2, 3], OPTS);
    c.elect(1);
    propose(c, 1, 5);
    const follower = c.core(2);
    expect(follower.commitIndex).toBe(6);
    const old = { meta: { index: 3, term: c.core(1).term, conf_state: VOTERS }, data: Buffer.alloc(0) };
    follower.step({ type: 'snapshot', from: 1, to: 2, term: c.core(1).term, snapshot: old });
    const rd = follower.ready();
    expect(rd.snapshot).toBeUndefined();
    expect(rd.messages_to_send).toEqual([expect.objectContaining({ type: 'append_response', success: true, match_index: 6 })]);
    follower.advance(rd);
    expect(c.node(2).storage.firstIndex()).toBe(1);
  });

  test('a divergent uncommitted tail is discarded by the snapshot', () => {
    const c = new TestCluster([1, 2, 3], OPTS);
    c.elect(1);
    propose(c, 1, 2); // 1..3 everywhere
    c.isolate(1);
    propose(c, 1, 4); // 4..7 on node 1 only, never committed
    c.heal();
    c.isolate(1);
    c.tickAll(40, [2, 3]); // the lease node 1 gave them runs out; one of them is elected
    const l = [2, 3].find((id) => c.core(id).role === 'leader')!;
    expect(l).toBeDefined();
    propose(c, l, 6); // 4..10 in the new term on 2 and 3
    c.node(l).storage.compact(9, VOTERS);
    expect(c.node(1).storage.lastIndex()).toBe(7);
    c.heal();
    c.tickAll(15);
    expect(c.core(1).role).toBe('follower');
    expect(c.node(1).storage.firstIndex()).toBe(10);
    expect(stored(c, 1)).toEqual(stored(c, l));
    expect(c.core(1).commitIndex).toBe(c.core(l).commitIndex);
  });

  test('a new member gets the membership from the snapshot and learns later changes from the log', () => {
    const c = new TestCluster([1, 2, 3], OPTS);
    c.elect(1);
    propose(c, 1, 5);
    for (const id of [1, 2, 3]) c.node(id).storage.compact(5, VOTERS);
    c.add(4, { voters: [], learners: [] });
    c.core(1).proposeConfChange({ type: 'add_learner', node_id: 4 });
    c.tickAll(5);
    expect(snapshotsTo(c, 4).length).toBeGreaterThanOrEqual(1);
    expect(c.node(4).storage.firstIndex()).toBe(6);
    expect(c.core(4).confState()).toEqual({ voters: [1, 2, 3], learners: [4] });
    c.core(1).proposeConfChange({ type: 'add_voter', node_id: 4 });
    c.tickAll(5);
    expect(c.core(4).confState()).toEqual({ voters: [1, 2, 3, 4], learners: [] });
    expect(stored(c, 4)).toEqual(stored(c, 1));
  });

  test('a lost snapshot goes out again after the next heartbeat response', () => {
    const c = new TestCluster([1, 2, 3], OPTS);
    c.elect(1);
    c.isolate(3);
    propose(c, 1, 6);
    c.node(1).storage.compact(5, VOTERS);
    c.heal();
    let dropped = 0;
    c.keep = (m) => !(m.type === 'snapshot' && dropped++ === 0);
    c.tickAll(6);
    expect(dropped).toBeGreaterThanOrEqual(2); // the first was dropped, a later one delivered
    expect(c.node(3).storage.firstIndex()).toBe(6);
    expect(stored(c, 3)).toEqual(stored(c, 1));
  });

  test('a restarted follower starts from its stored snapshot: commit, membership, what to apply', () => {
    const c = new TestCluster([1, 2, 3], OPTS);
    c.elect(1);
    c.isolate(3);
    propose(c, 1, 6);
    c.node(1).storage.compact(6, VOTERS);
    c.heal();
    c.tickAll(3);
    expect(c.node(3).storage.firstIndex()).toBe(7);
    // A crash between installing the snapshot and storing the hard state that follows it.
    c.node(3).storage.hard_state = { ...c.node(3).storage.hard_state, commit: 0 };
    c.crash(3);
    const r = c.restart(3);
    expect(r.commitIndex).toBe(6);
    expect(r.appliedIndex).toBe(6);
    expect(r.confState()).toEqual(VOTERS);
    expect(r.lastIndex()).toBe(7);
    c.tickAll(3);
    expect(c.core(3).commitIndex).toBe(7);
    expect(c.node(3).applied.map((e) => e.index)).toEqual([7]);
  });
});
