import { describe, expect, test } from 'vitest';
import { ManualClock } from '../../../engine/base/clock.js';
import { KafkaCode } from '../../../server/kafka/errors.js';
import { GroupCoordinator } from '../../../server/kafka/group/coordinator.js';
import { kafkaLimits } from '../../../server/kafka/limits.js';
import type { JoinInput } from '../../../server/kafka/group/group-state.js';
import { recordingLogger } from '../../integration/kafka/harness.js';

/* The coordinator shell: promises for waiting joins and syncs, ticks driven by a manual clock. */

const join = (member_id = ''): JoinInput => ({ member_id, group_instance_id: null, client_id: 'app', session_timeout_ms: 6_000, rebalance_timeout_ms: 6_000, protocol_type: 'consumer', protocols: [{ name: 'range', metadata: Buffer.from('md') }] });

function coordinator() {
  const clock = new ManualClock();
  let n = 0;
  const logger = recordingLogger();
  const c = new GroupCoordinator({ clock, limits: { ...kafkaLimits }, logger, member_suffix: () => String(++n) });
  return { c, clock, logger };
}

describe('GroupCoordinator', () => {
  test('a waiting join resolves when the rebalance completes; sync resolves with the leader\'s assignment', async () => {
    const { c } = coordinator();
    const first = await c.join('g', join());
    expect(first).toMatchObject({ error_code: 0, member_id: 'app-1', generation_id: 1 });
    await c.sync('g', 'app-1', 1, [{ member_id: 'app-1', assignment: Buffer.from('a') }]);
    let second_done = false;
    const second = c.join('g', join()).then((r) => ((second_done = true), r));
    await Promise.resolve();
    expect(second_done).toBe(false);
    expect(c.heartbeat('g', 'app-1', 1)).toBe(KafkaCode.REBALANCE_IN_PROGRESS);
    const rejoin = await c.join('g', join('app-1'));
    expect(rejoin).toMatchObject({ generation_id: 2, leader: 'app-1' });
    expect(await second).toMatchObject({ error_code: 0, generation_id: 2, member_id: 'app-2', members: [] });
    const follower = c.sync('g', 'app-2', 2, []);
    const leader = c.sync('g', 'app-1', 2, [{ member_id: 'app-1', assignment: Buffer.from('p0') }, { member_id: 'app-2', assignment: Buffer.from('p1') }]);
    expect((await follower).assignment.toString()).toBe('p1');
    expect((await leader).assignment.toString()).toBe('p0');
    expect(c.describe('g')).toMatchObject({ phase: 'stable', generation_id: 2, members: ['app-1', 'app-2'] });
  });

  test('tick() expires members whose session lapsed; the group is forgotten once empty', async () => {
    const { c, clock, logger } = coordinator();
    await c.join('g', join());
    await c.sync('g', 'app-1', 1, []);
    clock.advance(5_000);
    c.tick();
    expect(c.heartbeat('g', 'app-1', 1)).toBe(0);
    clock.advance(6_001);
    c.tick();
    expect(c.describe('g')).toBeNull();
    expect(c.heartbeat('g', 'app-1', 1)).toBe(KafkaCode.UNKNOWN_MEMBER_ID);
    expect(logger.lines.some((l) => /expired or left/.test(l.msg))).toBe(true);
    // With no members, a commit from outside the group is accepted; a stale member's is not.
    expect(c.commitAllowed('g', '', -1)).toBe(0);
    expect(c.commitAllowed('g', 'app-1', 1)).toBe(KafkaCode.UNKNOWN_MEMBER_ID);
  });

  test('stop() answers waiting requests with NOT_COORDINATOR and refuses new ones', async () => {
    const { c } = coordinator();
    await c.join('g', join());
    await c.sync('g', 'app-1', 1, []);
    const waiting = c.join('g', join());
    c.stop();
    expect((await waiting).error_code).toBe(KafkaCode.NOT_COORDINATOR);
    expect((await c.join('g', join())).error_code).toBe(KafkaCode.NOT_COORDINATOR);
    expect(c.heartbeat('g', 'app-1', 1)).toBe(KafkaCode.NOT_COORDINATOR);
  });

  test('groups_max bounds the live groups', async () => {
    const clock = new ManualClock();
    const c = new GroupCoordinator({ clock, limits: { ...kafkaLimits, groups_max: 1 }, logger: recordingLogger() });
    expect((await c.join('a', join())).error_code).toBe(0);
    expect((await c.join('b', join())).error_code).toBe(KafkaCode.COORDINATOR_NOT_AVAILABLE);
  });
});
