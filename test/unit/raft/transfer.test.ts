/** Leadership transfer (thesis §3.10): catch the target up, then TimeoutNow. */
import { describe, expect, test } from 'vitest';
import { TestCluster } from '../../../property-tests/support/raft-sim.js';
import { EngineError, isEngineError } from '../../../engine/base/errors.js';

describe('leader transfer', () => {
  test('to an up-to-date follower: it campaigns at once, wins, and the old leader follows', () => {
    const c = new TestCluster([1, 2, 3]);
    c.elect(1);
    c.tickAll(1);
    c.core(1).transferLeadership(2);
    c.deliver();
    expect(c.delivered.some((m) => m.type === 'timeout_now' && m.to === 2)).toBe(true);
    expect(c.core(2).role).toBe('leader');
    expect(c.core(2).term).toBe(2);
    expect(c.core(1).role).toBe('follower');
    expect(c.core(1).lead).toBe(2);
  });

  test('to a lagging follower: it is brought up to date before TimeoutNow is sent', () => {
    const c = new TestCluster([1, 2, 3]);
    c.elect(1);
    c.cutLink(1, 3);
    for (let i = 0; i < 3; i++) c.core(1).propose(Buffer.from(`e${i}`));
    c.deliver();
    c.heal();
    const last = c.core(1).lastIndex();
    c.core(1).transferLeadership(3);
    c.deliver();
    const at = c.delivered.findIndex((m) => m.type === 'timeout_now');
    const caught_up = c.delivered.findIndex((m) => m.type === 'append_response' && m.from === 3 && m.success && m.match_index === last);
    expect(caught_up).toBeGreaterThanOrEqual(0);
    expect(at).toBeGreaterThan(caught_up);
    expect(c.core(3).role).toBe('leader');
    c.tickAll(2);
    expect(c.terms(3)).toEqual(c.terms(1));
  });

  test('proposals are refused with NOT_LEADER during a transfer; a stalled transfer is abandoned after an election timeout', () => {
    const c = new TestCluster([1, 2, 3]);
    const leader = c.elect(1);
    c.isolate(2);
    leader.transferLeadership(2);
    let err: unknown;
    try {
      leader.propose(Buffer.from('x'));
    } catch (e) {
      err = e;
    }
    expect(isEngineError(err, 'NOT_LEADER')).toBe(true);
    expect((err as EngineError).details['leader_id']).toBe(2);
    c.tick(1, 10);
    expect(leader.role).toBe('leader');
    expect(leader.leadTransferee).toBe(0);
    expect(() => leader.propose(Buffer.from('x'))).not.toThrow();
  });

  test('a transfer to a learner, a non-member, or from a follower is refused', () => {
    const c = new TestCluster([1, 2, 3], {}, new Map(), [4]);
    const leader = c.elect(1);
    expect(() => leader.transferLeadership(4)).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
    expect(() => leader.transferLeadership(9)).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
    expect(() => c.core(2).transferLeadership(3)).toThrow(expect.objectContaining({ code: 'NOT_LEADER' }));
  });
});
