import { describe, expect, test } from 'vitest';
import { KafkaCode } from '../../../server/kafka/errors.js';
import { GroupState, type GroupConfig, type GroupOutput, type JoinInput } from '../../../server/kafka/group/group-state.js';

/*
 * The consumer-group state machine alone, with time as an input. Scenarios follow Kafka's classic
 * group protocol (KIP-62 session and rebalance timeouts, the two-phase join/sync rebalance,
 * KIP-345 static members).
 */

const CONFIG: GroupConfig = { session_timeout_min_ms: 1000, session_timeout_max_ms: 60_000, rebalance_timeout_max_ms: 60_000, members_max: 3, initial_rebalance_delay_ms: 0 };

const joinReq = (member_id = '', o: Partial<JoinInput> = {}): JoinInput => ({ member_id, group_instance_id: null, client_id: 'c', session_timeout_ms: 10_000, rebalance_timeout_ms: 20_000, protocol_type: 'consumer', protocols: [{ name: 'range', metadata: Buffer.from(member_id || 'new') }, { name: 'roundrobin', metadata: Buffer.from('rr') }], ...o });

/** Drives one GroupState with tokens and member ids handed out in order. */
class Harness {
  readonly g: GroupState;
  now_ms = 0;
  private token = 0;
  private ids = 0;
  readonly answers = new Map<number, GroupOutput>();

  constructor(config: Partial<GroupConfig> = {}) {
    this.g = new GroupState('grp', { ...CONFIG, ...config });
  }

  private take(outs: GroupOutput[]): void {
    for (const o of outs) {
      expect(this.answers.has(o.token)).toBe(false); // every request is answered exactly once
      this.answers.set(o.token, o);
    }
  }

  join(member_id = '', o: Partial<JoinInput> = {}): number {
    const t = ++this.token;
    this.take(this.g.join(this.now_ms, joinReq(member_id, o), t, `m${++this.ids}`));
    return t;
  }

  sync(member_id: string, generation_id: number, assignments: Array<[string, string]> = []): number {
    const t = ++this.token;
    this.take(this.g.sync(this.now_ms, member_id, generation_id, assignments.map(([m, a]) => ({ member_id: m, assignment: Buffer.from(a) })), t));
    return t;
  }

  leave(member_id: string): number {
    const r = this.g.leave(this.now_ms, member_id);
    this.take(r.outputs);
    return r.error_code;
  }

  tick(advance_ms: number): void {
    this.now_ms += advance_ms;
    this.take(this.g.tick(this.now_ms));
  }

  joined(token: number) {
    const o = this.answers.get(token);
    if (!o || o.kind !== 'join') return null;
    return o.result;
  }

  synced(token: number) {
    const o = this.answers.get(token);
    if (!o || o.kind !== 'sync') return null;
    return { error_code: o.result.error_code, assignment: o.result.assignment.toString() };
  }
}

/** A stable group of `n` members (m1 leader); returns the member ids. */
function stableGroup(h: Harness, n: number): string[] {
  const first = h.join();
  const m1 = h.joined(first)!.member_id;
  h.sync(m1, h.g.generation_id, [[m1, 'a1']]);
  const ids = [m1];
  for (let i = 1; i < n; i++) {
    const t = h.join();
    const rejoins = ids.map((m) => h.join(m));
    ids.push(h.joined(t)!.member_id);
    expect(rejoins.every((r) => h.joined(r)?.error_code === 0)).toBe(true);
    const gen = h.g.generation_id;
    for (const m of ids.slice(1)) h.sync(m, gen);
    h.sync(m1, gen, ids.map((m) => [m, `a-${m}`]));
  }
  expect(h.g.phase).toBe('stable');
  return ids;
}

describe('GroupState', () => {
  test('a first member joins at once, is leader, and gets its own assignment back from SyncGroup', () => {
    const h = new Harness();
    const t = h.join();
    expect(h.joined(t)).toEqual({ error_code: 0, generation_id: 1, protocol_name: 'range', leader: 'm1', member_id: 'm1', members: [{ member_id: 'm1', group_instance_id: null, metadata: Buffer.from('new') }] });
    expect(h.g.phase).toBe('completing_rebalance');
    expect(h.synced(h.sync('m1', 1, [['m1', 'p0,p1']]))).toEqual({ error_code: 0, assignment: 'p0,p1' });
    expect(h.g.phase).toBe('stable');
    expect(h.g.heartbeat(h.now_ms, 'm1', 1)).toBe(0);
  });

  test('a second member triggers a rebalance: the first learns by heartbeat, both rejoin, followers wait for the leader\'s assignment', () => {
    const h = new Harness();
    stableGroup(h, 1);
    const t2 = h.join();
    expect(h.joined(t2)).toBeNull(); // waits for m1 to rejoin
    expect(h.g.phase).toBe('preparing_rebalance');
    expect(h.g.heartbeat(h.now_ms, 'm1', 1)).toBe(KafkaCode.REBALANCE_IN_PROGRESS);
    const t1 = h.join('m1');
    expect(h.joined(t1)).toMatchObject({ error_code: 0, generation_id: 2, leader: 'm1', member_id: 'm1' });
    expect(h.joined(t1)!.members.map((m) => m.member_id)).toEqual(['m1', 'm2']);
    expect(h.joined(t2)).toMatchObject({ error_code: 0, generation_id: 2, leader: 'm1', member_id: 'm2', members: [] });
    const s2 = h.sync('m2', 2);
    expect(h.synced(s2)).toBeNull();
    const s1 = h.sync('m1', 2, [['m1', 'p0'], ['m2', 'p1']]);
    expect([h.synced(s1), h.synced(s2)]).toEqual([{ error_code: 0, assignment: 'p0' }, { error_code: 0, assignment: 'p1' }]);
    // A member the leader left out gets an empty assignment, not an error.
    expect(h.synced(h.sync('m2', 2))).toEqual({ error_code: 0, assignment: 'p1' });
  });

  test('the protocol chosen is the first of the leader\'s that every member supports', () => {
    const h = new Harness();
    const a = h.join('', { protocols: [{ name: 'sticky', metadata: Buffer.alloc(0) }, { name: 'roundrobin', metadata: Buffer.alloc(0) }] });
    h.sync('m1', 1);
    const b = h.join('', { protocols: [{ name: 'roundrobin', metadata: Buffer.from('b') }] });
    h.join('m1', { protocols: [{ name: 'sticky', metadata: Buffer.alloc(0) }, { name: 'roundrobin', metadata: Buffer.from('a') }] });
    expect(h.joined(a)!.protocol_name).toBe('sticky');
    expect(h.joined(b)).toMatchObject({ protocol_name: 'roundrobin', generation_id: 2 });
  });

  test('refusals: session timeout out of bounds, inconsistent protocols, unknown members, a full group', () => {
    const h = new Harness();
    expect(h.joined(h.join('', { session_timeout_ms: 10 }))!.error_code).toBe(KafkaCode.INVALID_SESSION_TIMEOUT);
    expect(h.joined(h.join('', { session_timeout_ms: 10 * 60_000 }))!.error_code).toBe(KafkaCode.INVALID_SESSION_TIMEOUT);
    expect(h.joined(h.join('', { protocols: [] }))!.error_code).toBe(KafkaCode.INCONSISTENT_GROUP_PROTOCOL);
    expect(h.joined(h.join('ghost'))!.error_code).toBe(KafkaCode.UNKNOWN_MEMBER_ID);
    expect(h.g.idle).toBe(true);
    stableGroup(h, 3);
    expect(h.joined(h.join('', { protocol_type: 'connect' }))!.error_code).toBe(KafkaCode.INCONSISTENT_GROUP_PROTOCOL);
    expect(h.joined(h.join('', { protocols: [{ name: 'other', metadata: Buffer.alloc(0) }] }))!.error_code).toBe(KafkaCode.INCONSISTENT_GROUP_PROTOCOL);
    expect(h.joined(h.join())!.error_code).toBe(KafkaCode.GROUP_MAX_SIZE_REACHED);
    expect(h.g.phase).toBe('stable');
  });

  test('generation and membership are checked by SyncGroup, Heartbeat and OffsetCommit', () => {
    const h = new Harness();
    const [m1] = stableGroup(h, 1) as [string];
    const gen = h.g.generation_id;
    expect(h.synced(h.sync(m1, gen + 1))!.error_code).toBe(KafkaCode.ILLEGAL_GENERATION);
    expect(h.synced(h.sync('ghost', gen))!.error_code).toBe(KafkaCode.UNKNOWN_MEMBER_ID);
    expect(h.g.heartbeat(h.now_ms, m1, gen - 1)).toBe(KafkaCode.ILLEGAL_GENERATION);
    expect(h.g.heartbeat(h.now_ms, 'ghost', gen)).toBe(KafkaCode.UNKNOWN_MEMBER_ID);
    expect(h.g.commitAllowed(m1, gen)).toBe(0);
    expect(h.g.commitAllowed(m1, gen - 1)).toBe(KafkaCode.ILLEGAL_GENERATION);
    expect(h.g.commitAllowed('ghost', gen)).toBe(KafkaCode.UNKNOWN_MEMBER_ID);
    expect(h.g.commitAllowed('', -1)).toBe(KafkaCode.UNKNOWN_MEMBER_ID); // the group has members
    // While preparing a rebalance, members may still commit what they processed (as Kafka allows).
    h.join();
    expect(h.g.commitAllowed(m1, gen)).toBe(0);
  });

  test('a member that leaves triggers a rebalance; the last one leaving empties the group', () => {
    const h = new Harness();
    const [m1, m2] = stableGroup(h, 2) as [string, string];
    expect(h.leave(m2)).toBe(0);
    expect(h.leave(m2)).toBe(KafkaCode.UNKNOWN_MEMBER_ID);
    expect(h.g.phase).toBe('preparing_rebalance');
    const gen = h.g.generation_id;
    expect(h.joined(h.join(m1))).toMatchObject({ error_code: 0, generation_id: gen + 1, leader: m1 });
    expect(h.leave(m1)).toBe(0);
    expect(h.g.phase).toBe('empty');
    expect(h.g.idle).toBe(true);
    expect(h.g.commitAllowed('', -1)).toBe(0);
  });

  test('a member that stops heartbeating expires after its session timeout; the others rebalance without it', () => {
    const h = new Harness();
    const [m1, m2] = stableGroup(h, 2) as [string, string];
    h.tick(5_000);
    expect(h.g.heartbeat(h.now_ms, m1, h.g.generation_id)).toBe(0); // m1 keeps its session alive, m2 does not
    h.tick(5_001);
    expect(h.g.memberIds()).toEqual([m1]);
    expect(h.g.phase).toBe('preparing_rebalance');
    expect(h.g.heartbeat(h.now_ms, m2, h.g.generation_id)).toBe(KafkaCode.UNKNOWN_MEMBER_ID);
    expect(h.joined(h.join(m1))).toMatchObject({ error_code: 0, leader: m1, members: [expect.objectContaining({ member_id: m1 })] });
  });

  test('a rebalance ends at the rebalance timeout: members that did not rejoin are dropped, a new leader is chosen', () => {
    const h = new Harness();
    const [m1, m2] = stableGroup(h, 2) as [string, string];
    const t3 = h.join(); // m3: rebalance starts, deadline = now + 20 s (the largest rebalance timeout)
    const t2 = h.join(m2);
    const gen = h.g.generation_id;
    // m1 keeps heartbeating (each answer says: rejoin) but never rejoins; a waiting join keeps m2
    // alive past its session timeout (10 s) ...
    for (let i = 0; i < 3; i++) {
      h.tick(5_000);
      expect(h.g.heartbeat(h.now_ms, m1, gen)).toBe(KafkaCode.REBALANCE_IN_PROGRESS);
    }
    expect(h.joined(t2)).toBeNull();
    expect(h.g.memberIds()).toContain(m2);
    // ... and at the rebalance deadline m1, which never rejoined, is out; m2 becomes leader.
    h.tick(5_000);
    expect(h.g.memberIds()).not.toContain(m1);
    expect(h.joined(t2)).toMatchObject({ error_code: 0, leader: m2 });
    expect(h.joined(t2)!.members.map((m) => m.member_id).sort()).toEqual([m2, h.joined(t3)!.member_id].sort());
    expect(h.joined(t3)).toMatchObject({ error_code: 0, leader: m2, members: [] });
  });

  test('a rebalance abandons a generation: followers waiting in SyncGroup are told to rejoin', () => {
    const h = new Harness();
    const [m1] = stableGroup(h, 1) as [string];
    const t2 = h.join();
    h.join(m1);
    const m2 = h.joined(t2)!.member_id;
    const s2 = h.sync(m2, h.g.generation_id); // waits for the leader ...
    h.join(); // ... but a third member arrives first
    expect(h.synced(s2)).toEqual({ error_code: KafkaCode.REBALANCE_IN_PROGRESS, assignment: '' });
  });

  test('with an initial rebalance delay, the first rebalance of an empty group waits and takes in late joiners', () => {
    const h = new Harness({ initial_rebalance_delay_ms: 3_000 });
    const a = h.join();
    h.tick(1_000);
    const b = h.join();
    expect([h.joined(a), h.joined(b)]).toEqual([null, null]);
    h.tick(2_000);
    expect(h.joined(a)).toMatchObject({ error_code: 0, generation_id: 1, leader: 'm1' });
    expect(h.joined(a)!.members).toHaveLength(2);
    expect(h.joined(b)).toMatchObject({ error_code: 0, generation_id: 1, leader: 'm1', member_id: 'm2' });
  });

  test('a static member (group.instance.id) rejoining under a new member id replaces its old incarnation', () => {
    const h = new Harness();
    const a = h.join('', { group_instance_id: 'pod-1' });
    h.sync('m1', 1, [['m1', 'x']]);
    const b = h.join('', { group_instance_id: 'pod-1' });
    expect(h.g.memberIds()).toEqual(['m2']);
    expect(h.joined(a)!.member_id).toBe('m1');
    expect(h.joined(b)).toMatchObject({ error_code: 0, member_id: 'm2', leader: 'm2', members: [expect.objectContaining({ group_instance_id: 'pod-1' })] });
  });

  test('shutdown answers every waiting request', () => {
    const h = new Harness();
    const [m1] = stableGroup(h, 1) as [string];
    const t2 = h.join();
    const outs = h.g.shutdown(KafkaCode.NOT_COORDINATOR);
    expect(outs.map((o) => [o.token, o.result.error_code])).toEqual([[t2, KafkaCode.NOT_COORDINATOR]]);
    expect(h.g.memberIds()).not.toContain(m1);
  });
});
