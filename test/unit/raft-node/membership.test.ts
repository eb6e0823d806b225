import { afterEach, beforeEach, describe, expect, test } from 'vitest';
import { isControlBatch } from '../../../engine/format/control-batch.js';
import { batchOf, readAll } from '../../support/batches.js';
import { tempDir } from '../../support/tmp.js';
import { confChangeOfBatch } from '../../../replication/raft/node/conf-batch.js';
import { Net, settle, stored } from './net.js';

/*
 * Leader transfer and single-server membership changes through the driver, over real segment
 * stores (net.ts): a conf change is a control batch in the log, byte-identical everywhere, and
 * the configuration comes back from the log after a restart.
 */

let dir: string;
let cleanup: () => void;

beforeEach(() => ({ dir, cleanup } = tempDir('relaylog-raftmember-')));
afterEach(() => cleanup());

const TIMEOUT_MS = 20_000;

describe('PartitionNode membership', () => {
  test('transfer to each voter in turn; the old leader redirects to the new one', async () => {
    const net = await Net.start(dir);
    try {
      await net.until('a leader', () => net.leader() !== null);
      for (const round of [0, 1, 2]) {
        const from = net.leader()!;
        const to = [1, 2, 3].find((id) => id !== from && (round + id) % 2 === 0) ?? [1, 2, 3].find((id) => id !== from)!;
        await settle(net, net.log(from).append(batchOf(1, `before-${round}`)));
        await settle(net, net.node(from).transferLeadership(to, TIMEOUT_MS));
        expect(net.node(from).leaderId).toBe(to);
        await net.until('the new leader leads alone', () => net.leader() === to);
        const err = await net.log(from).append(batchOf(1)).catch((e: unknown) => e);
        expect(err).toMatchObject({ code: 'NOT_LEADER', details: { leader_id: to, leader: `node${to}:7450` } });
      }
      // Transfer to a non-member is refused by name.
      const leader = net.leader()!;
      await expect(settle(net, net.node(leader).transferLeadership(9, TIMEOUT_MS))).rejects.toMatchObject({ code: 'NOT_A_REPLICA' });
    } finally {
      await net.closeAll();
    }
  });

  test('an empty node joins as a learner, is promoted, an old voter (then the old leader) is removed; restart recovers the configuration', async () => {
    const net = await Net.start(dir, [1, 2, 3, 4], [1, 2, 3]);
    try {
      await net.until('a leader among 1..3', () => net.leader() !== null);
      let leader = net.leader()!;
      expect(leader).not.toBe(4);
      for (let i = 0; i < 5; i++) await settle(net, net.log(leader).append(batchOf(2, `a${i}`)));

      await settle(net, net.node(leader).changeMembership({ type: 'add_learner', node_id: 4 }, TIMEOUT_MS));
      expect(net.node(leader).confState()).toEqual({ voters: [1, 2, 3], learners: [4] });
      // A second change waits for nothing here (the first committed); two at once are refused.
      const end = net.log(leader).logEndOffset;
      await net.until('the learner caught up', () => net.log(4).logEndOffset === end && net.log(4).highWatermark === end);
      await settle(net, net.node(leader).changeMembership({ type: 'add_voter', node_id: 4 }, TIMEOUT_MS));
      await settle(net, net.log(leader).append(batchOf(1, 'after-add')));

      // Remove a follower of the original three.
      const gone = [1, 2, 3].find((id) => id !== leader)!;
      await settle(net, net.node(leader).changeMembership({ type: 'remove_node', node_id: gone }, TIMEOUT_MS));
      const members = [1, 2, 3, 4].filter((id) => id !== gone);
      expect(net.node(leader).confState().voters.slice().sort()).toEqual(members);
      await settle(net, net.log(leader).append(batchOf(1, 'after-remove')));

      // The leader itself: hand leadership over, then the new leader removes it.
      const old_leader = leader;
      const next = members.find((id) => id !== old_leader)!;
      await settle(net, net.node(old_leader).transferLeadership(next, TIMEOUT_MS));
      await net.until('the new leader', () => net.leader(members) === next);
      leader = next;
      await settle(net, net.node(leader).changeMembership({ type: 'remove_node', node_id: old_leader }, TIMEOUT_MS));
      const final = members.filter((id) => id !== old_leader);
      await settle(net, net.log(leader).append(batchOf(1, 'last')));
      const last_end = net.log(leader).logEndOffset;
      await net.until('the remaining voters hold everything', () => final.every((id) => net.log(id).highWatermark === last_end));

      // Every current replica holds the same bytes; the conf changes are control batches in them.
      const ref = await stored(net.log(leader));
      for (const id of final) expect(Buffer.concat(await stored(net.log(id))).equals(Buffer.concat(ref)), `node ${id}`).toBe(true);
      const changes = ref.filter((b) => isControlBatch(b)).map((b) => JSON.parse(confChangeOfBatch(b)!.toString()) as { type: string; node_id: number });
      expect(changes.map((c) => `${c.type} ${c.node_id}`)).toEqual(['add_learner 4', 'add_voter 4', `remove_node ${gone}`, `remove_node ${old_leader}`]);
      // A reader sees records only.
      const values = (await readAll(net.log(4))).map((r) => r.value!.toString());
      expect(values.filter((v) => !/^a\d-\d$/.test(v))).toEqual(['after-add-0', 'after-remove-0', 'last-0']);

      // The configuration comes back from the log (not the bootstrap [1, 2, 3]) after a restart.
      await net.close(4);
      const again = await net.open(4);
      expect({ voters: [...again.confState().voters].sort(), learners: again.confState().learners }).toEqual({ voters: final.slice().sort(), learners: [] });
      await net.until('a leader after the restart', () => net.leader(final) !== null);
      const l = net.leader(final)!;
      await settle(net, net.log(l).append(batchOf(1, 'after-restart')));
    } finally {
      await net.closeAll();
    }
  });

  test('a second change while one is uncommitted is refused with CONF_CHANGE_IN_PROGRESS', async () => {
    const net = await Net.start(dir, [1, 2, 3, 4, 5], [1, 2, 3]);
    try {
      await net.until('a leader', () => net.leader() !== null);
      const leader = net.leader()!;
      await settle(net, net.log(leader).append(batchOf(1)));
      // The followers are cut off: the first change cannot commit.
      for (const id of [1, 2, 3, 4, 5].filter((x) => x !== leader)) net.cut.add(id);
      const first = net.node(leader).changeMembership({ type: 'add_learner', node_id: 4 }, 60_000);
      first.catch(() => undefined);
      await net.until('the change is in the leader\'s log', () => net.node(leader).confState().learners.includes(4));
      await expect(settle(net, net.node(leader).changeMembership({ type: 'add_learner', node_id: 5 }, TIMEOUT_MS))).rejects.toMatchObject({ code: 'CONF_CHANGE_IN_PROGRESS' });
      net.cut.clear();
      await settle(net, first);
    } finally {
      await net.closeAll();
    }
  });
});
