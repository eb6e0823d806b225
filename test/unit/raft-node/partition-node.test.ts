import { afterEach, beforeEach, describe, expect, test } from 'vitest';
import { batchLeaderEpoch, encodeBatch, isEngineError } from '../../../engine/index.js';
import { producerBatchOf } from '../../../engine/log/producer-state.js';
import { noopBatch } from '../../../replication/raft/node/noop-batch.js';
import { PartitionNode } from '../../../replication/raft/node/partition-node.js';
import { batchOf, readAll } from '../../support/batches.js';
import { tempDir } from '../../support/tmp.js';
import { Net, settle, stored } from './net.js';

/* The Raft driver over three real segment stores and an in-process network (net.ts). */

let dir: string;
let cleanup: () => void;

beforeEach(() => ({ dir, cleanup } = tempDir('relaylog-raftnode-')));
afterEach(() => cleanup());

describe('PartitionNode', () => {
  test('elects a leader whose empty entry is an empty batch stamped with its term, on every node', async () => {
    const net = await Net.start(dir);
    try {
      await net.until('a leader', () => net.leader() !== null);
      // Each elected leader commits one empty entry. Usually there is one election; when the machine
      // is busy the drivers' disk work can lag the manual ticks and a second one happens. Either way
      // every node ends with the same empty entries, the last stamped with the current leader's term.
      await net.until('the empty entries committed everywhere', () => {
        const hw = net.log(1).highWatermark;
        return hw >= 1 && net.leader() !== null && [2, 3].every((id) => net.log(id).highWatermark === hw) && net.log(net.leader()!).logEndOffset === hw;
      });
      const term = net.node(net.leader()!).term;
      const first = await stored(net.log(1));
      expect(first.length).toBe(net.log(1).highWatermark);
      for (const id of [1, 2, 3]) {
        const batches = await stored(net.log(id));
        expect(batches).toEqual(first); // the same bytes on every node
        for (const b of batches) expect(b.length).toBe(61); // an empty batch: header only
        expect(batchLeaderEpoch(batches.at(-1)!)).toBe(term);
        expect(await readAll(net.log(id))).toEqual([]); // consumers see no record
      }
    } finally {
      await net.closeAll();
    }
  });

  test('produce on the leader lands byte-identical at the same offsets on every node; acks=all answers once committed', async () => {
    const net = await Net.start(dir);
    try {
      await net.until('a leader', () => net.leader() !== null);
      const leader = net.leader()!;
      const results = [];
      for (let i = 0; i < 20; i++) results.push(await settle(net, net.log(leader).append(batchOf(1 + (i % 3), `r${i}`), { acks: i % 2 === 0 ? 'all' : 'leader' })));
      // One request of several batches takes consecutive entries, answered with its offsets.
      const multi = await settle(net, net.log(leader).append([batchOf(2, 'm1'), batchOf(3, 'm2')]));
      expect(multi.last_offset - multi.base_offset).toBe(4);
      const end = multi.last_offset + 1;
      await net.until('every node committed everything', () => [1, 2, 3].every((id) => net.log(id).highWatermark === end));
      const ref = Buffer.concat(await stored(net.log(leader)));
      for (const id of [1, 2, 3]) expect(Buffer.concat(await stored(net.log(id))).equals(ref), `node ${id}`).toBe(true);
      const records = await readAll(net.log(leader === 1 ? 2 : 1));
      expect(records.map((r) => r.value!.toString()).slice(0, 3)).toEqual(['r0-0', 'r1-0', 'r1-1']);
      expect(records[0]!.offset).toBe(results[0]!.base_offset);
    } finally {
      await net.closeAll();
    }
  });

  test('a follower refuses produce with NOT_LEADER naming the leader; the high watermark is the commit point', async () => {
    const net = await Net.start(dir);
    try {
      await net.until('a leader known everywhere', () => net.leader() !== null && [1, 2, 3].every((id) => net.node(id).leaderId === net.leader()));
      const leader = net.leader()!;
      const follower = [1, 2, 3].find((id) => id !== leader)!;
      const err = await net.log(follower).append(batchOf(1)).catch((e: unknown) => e);
      expect(isEngineError(err, 'NOT_LEADER')).toBe(true);
      expect((err as { details: Record<string, unknown> }).details).toMatchObject({ leader_id: leader, leader: `node${leader}:7450` });
      // With the followers cut off the leader writes but cannot commit: nothing past the commit point is readable.
      const others = [1, 2, 3].filter((id) => id !== leader);
      for (const id of others) net.cut.add(id);
      const hw = net.log(leader).highWatermark;
      const pending = net.log(leader).append(batchOf(1, 'uncommitted'));
      pending.catch(() => undefined);
      await net.until('the leader stored the batch', () => net.log(leader).logEndOffset > hw);
      expect(net.log(leader).highWatermark).toBe(hw);
      expect(await readAll(net.log(leader))).toEqual([]);
      for (const id of others) net.cut.delete(id);
      await settle(net, pending);
      expect((await readAll(net.log(leader))).map((r) => r.value!.toString())).toEqual(['uncommitted-0']);
    } finally {
      await net.closeAll();
    }
  });

  test('a deposed leader’s uncommitted tail is cut and replaced by the new leader’s log, also after a restart', async () => {
    const net = await Net.start(dir);
    try {
      await net.until('a leader', () => net.leader() !== null);
      const old = net.leader()!;
      await settle(net, net.log(old).append(batchOf(1, 'committed')));
      // Cut the leader off; it stores batches nobody else gets.
      net.cut.add(old);
      const lost = [net.log(old).append(batchOf(1, 'lost-a')), net.log(old).append(batchOf(2, 'lost-b'))];
      for (const p of lost) p.catch(() => undefined);
      const end_before = net.log(old).logEndOffset;
      await net.until('the old leader stored its tail', () => net.log(old).logEndOffset > end_before + 0 && net.node(old).lastIndex >= 4);
      const rest = [1, 2, 3].filter((id) => id !== old);
      await net.until('a new leader among the others', () => net.leader(rest) !== null);
      const fresh = net.leader(rest)!;
      await settle(net, net.log(fresh).append(batchOf(3, 'kept')));
      // The old leader restarts (a crash: its uncommitted tail is on disk) and rejoins.
      await net.close(old, 'crash');
      await net.open(old);
      net.cut.delete(old);
      const end = net.log(fresh).logEndOffset;
      await net.until('the old leader caught up', () => net.log(old).highWatermark === end && net.log(old).logEndOffset === end);
      const ref = Buffer.concat(await stored(net.log(fresh)));
      expect(Buffer.concat(await stored(net.log(old))).equals(ref)).toBe(true);
      expect((await readAll(net.log(old))).map((r) => r.value!.toString())).toEqual(['committed-0', 'kept-0', 'kept-1', 'kept-2']);
      // The producers of the lost batches were told (the stopped node refused them): nothing acknowledged was lost.
      for (const p of lost) await expect(p).rejects.toMatchObject({ code: expect.stringMatching(/NOT_LEADER|CLOSED/) });
    } finally {
      await net.closeAll();
    }
  });

  test('a restarted node rebuilds its index from the segments and its hard state from the catalog', async () => {
    const net = await Net.start(dir);
    try {
      await net.until('a leader', () => net.leader() !== null);
      const leader = net.leader()!;
      for (let i = 0; i < 5; i++) await settle(net, net.log(leader).append(batchOf(2, `r${i}`)));
      const follower = [1, 2, 3].find((id) => id !== leader)!;
      const end = net.log(leader).logEndOffset;
      await net.until('the follower committed everything', () => net.log(follower).highWatermark === end);
      const before = { term: net.node(follower).term, last: net.node(follower).lastIndex, commit: net.node(follower).commitIndex };
      await net.close(follower);
      const again = await net.open(follower);
      expect({ term: again.term, last: again.lastIndex }).toEqual({ term: before.term, last: before.last });
      // The high watermark comes back at the persisted commit point at once (no leader contact yet).
      expect(net.log(follower).highWatermark).toBeGreaterThan(0);
      expect(again.commitIndex).toBeLessThanOrEqual(before.commit);
      await net.until('it rejoins', () => net.log(follower).highWatermark === end);
      await settle(net, net.log(leader).append(batchOf(1, 'after')));
      const end2 = net.log(leader).logEndOffset;
      await net.until('it follows on', () => net.log(follower).highWatermark === end2);
      expect(Buffer.concat(await stored(net.log(follower))).equals(Buffer.concat(await stored(net.log(leader))))).toBe(true);
    } finally {
      await net.closeAll();
    }
  });
});

/** An idempotent producer's batch; a fresh buffer per call, as a retry arrives over the wire. */
const idem = (producer_id: number, base_sequence: number, count = 1, prefix = `p${producer_id}s${base_sequence}`) =>
  encodeBatch(Array.from({ length: count }, (_, i) => ({ value: `${prefix}-${i}`, timestamp_ms: 1 })), { producer_id, producer_epoch: 0, base_sequence });

/** Every node's producer state, with Raft indexes (the same log gives the same state). */
const stateOf = (net: Net, id: number) => net.node(id).producerState().entries();

describe('PartitionNode: idempotent producer', () => {
  test('the leader\'s empty entry carries no producer', () => {
    expect(producerBatchOf(noopBatch(0, 3))).toBeNull();
  });

  test('a retry is answered with the original offsets, also while the original is not committed yet; stored once everywhere', async () => {
    const net = await Net.start(dir);
    try {
      await net.until('a leader', () => net.leader() !== null);
      const leader = net.leader()!;
      const a = await settle(net, net.log(leader).append(idem(7, 0, 2)));
      expect(await settle(net, net.log(leader).append(idem(7, 0, 2)))).toEqual(a);
      // The followers are cut off: the next batch is stored on the leader only, uncommitted; its
      // retry (and the retry of the retry) waits for the same entry.
      const others = [1, 2, 3].filter((id) => id !== leader);
      for (const id of others) net.cut.add(id);
      const first = net.log(leader).append(idem(7, 2, 3));
      const retry = net.log(leader).append(idem(7, 2, 3));
      await net.until('the leader stored it', () => net.log(leader).logEndOffset === a.last_offset + 4);
      const retry2 = net.log(leader).append(idem(7, 2, 3));
      await expect(net.log(leader).append(idem(7, 9))).rejects.toMatchObject({ code: 'OUT_OF_ORDER_SEQUENCE' });
      for (const id of others) net.cut.delete(id);
      const [r1, r2, r3] = await settle(net, Promise.all([first, retry, retry2]));
      expect(r2).toEqual(r1);
      expect(r3).toEqual(r1);
      const end = net.log(leader).logEndOffset;
      expect(end).toBe(r1.last_offset + 1);
      await net.until('every node has everything', () => [1, 2, 3].every((id) => net.log(id).highWatermark === end));
      for (const id of [1, 2, 3]) {
        expect((await readAll(net.log(id))).map((r) => r.value!.toString())).toEqual(['p7s0-0', 'p7s0-1', 'p7s2-0', 'p7s2-1', 'p7s2-2']);
        expect(stateOf(net, id)).toEqual(stateOf(net, leader));
      }
    } finally {
      await net.closeAll();
    }
  });

  test('after failover the new leader recognises a retry of a batch the old leader committed; a restart rebuilds the same state', async () => {
    const net = await Net.start(dir);
    try {
      await net.until('a leader', () => net.leader() !== null);
      const old = net.leader()!;
      const acked = [];
      for (let i = 0; i < 8; i++) acked.push(await settle(net, net.log(old).append(idem(1 + (i % 2), Math.floor(i / 2)))));
      const end = net.log(old).logEndOffset;
      await net.until('every node has everything', () => [1, 2, 3].every((id) => net.log(id).highWatermark === end));
      await net.close(old, 'crash');
      const rest = [1, 2, 3].filter((id) => id !== old);
      await net.until('a new leader', () => net.leader(rest) !== null);
      const fresh = net.leader(rest)!;
      expect(await settle(net, net.log(fresh).append(idem(2, 3)))).toEqual(acked[7]);
      expect(await settle(net, net.log(fresh).append(idem(1, 2)))).toEqual(acked[4]);
      await settle(net, net.log(fresh).append(idem(1, 4)));
      await net.open(old);
      const end2 = net.log(fresh).logEndOffset;
      await net.until('the old leader caught up', () => net.log(old).highWatermark === end2);
      for (const id of [1, 2, 3]) expect(stateOf(net, id)).toEqual(stateOf(net, fresh));
      expect((await readAll(net.log(old))).filter((r) => r.value!.toString() === 'p1s2-0')).toHaveLength(1);
    } finally {
      await net.closeAll();
    }
  });

  test('a deposed leader\'s uncommitted batch is forgotten with its tail: the retry at the new leader is written once', async () => {
    const net = await Net.start(dir);
    try {
      await net.until('a leader', () => net.leader() !== null);
      const old = net.leader()!;
      await settle(net, net.log(old).append(idem(4, 0)));
      net.cut.add(old);
      const lost = net.log(old).append(idem(4, 1));
      lost.catch(() => undefined);
      const before = net.node(old).lastIndex;
      await net.until('the old leader stored it', () => net.node(old).lastIndex > before);
      const rest = [1, 2, 3].filter((id) => id !== old);
      await net.until('a new leader among the others', () => net.leader(rest) !== null);
      const fresh = net.leader(rest)!;
      const r = await settle(net, net.log(fresh).append(idem(4, 1)));
      net.cut.delete(old);
      const end = net.log(fresh).logEndOffset;
      await net.until('the old leader caught up', () => net.log(old).highWatermark === end && net.log(old).logEndOffset === end);
      await expect(lost).rejects.toMatchObject({ code: 'NOT_LEADER' });
      for (const id of [1, 2, 3]) {
        expect((await readAll(net.log(id))).map((x) => x.value!.toString())).toEqual(['p4s0-0', 'p4s1-0']);
        expect(stateOf(net, id)).toEqual(stateOf(net, fresh));
      }
      expect(r.base_offset).toBe((await readAll(net.log(old)))[1]!.offset);
    } finally {
      await net.closeAll();
    }
  });
});

describe('PartitionNode: retention under a Raft snapshot', () => {
  const SMALL = { segment_bytes: 16 * 1024, retention_bytes: 40 * 1024 };
  const value = (i: number) => `r${i}-`.padEnd(900, 'x');

  test('retention discards committed segments under a stored snapshot; a follower behind it installs the leader\'s snapshot; restarts keep the indexes', async () => {
    const net = await Net.start(dir, [1, 2, 3], [1, 2, 3], SMALL);
    try {
      await net.until('a leader', () => net.leader() !== null);
      const leader = net.leader()!;
      const [other, behind] = [1, 2, 3].filter((id) => id !== leader) as [number, number];
      net.cut.add(behind);
      for (let i = 0; i < 120; i++) await settle(net, net.log(leader).append(batchOf(1, value(i))));
      const hw = net.log(leader).highWatermark;
      await net.until('the other follower committed everything', () => net.log(other).highWatermark === hw);
      // Retention runs on each node on its own; it deletes only what a stored snapshot stands for.
      for (const id of [leader, other]) await settle(net, net.log(id).applyRetention());
      const start = net.log(leader).logStartOffset;
      expect(start).toBeGreaterThan(0);
      const snap = net.stores.get(leader)!.catalog.getRaftSnapshot(['t', 0]);
      expect(snap).toMatchObject({ next_offset: start, voters: [1, 2, 3], learners: [] });
      expect(net.node(leader).status().last_index).toBeGreaterThan(snap!.index);
      expect(await readAll(net.log(leader))).toHaveLength(hw - start); // one record per batch, from the new start
      // The follower that was cut off needs entries the leader no longer has: a snapshot, then the rest.
      net.cut.delete(behind);
      await net.until('the lagging follower caught up', () => net.log(behind).highWatermark === hw);
      expect(net.node(behind).snapshots_installed).toBe(1);
      expect(net.log(behind).logStartOffset).toBe(start);
      expect(Buffer.concat(await stored(net.log(behind))).equals(Buffer.concat(await stored(net.log(leader))))).toBe(true);
      // Producing goes on, and every node holds the same bytes from its own log start on.
      for (let i = 120; i < 140; i++) await settle(net, net.log(leader).append(batchOf(1, value(i))));
      const end = net.log(leader).logEndOffset;
      await net.until('all caught up', () => [1, 2, 3].every((id) => net.log(id).highWatermark === end));
      // Restarts (a crash for the leader) rebuild the Raft indexes from the snapshot record.
      await net.close(behind);
      await net.close(leader, 'crash');
      await net.open(behind);
      await net.open(leader);
      await net.until('a leader again', () => net.leader() !== null);
      const l2 = net.leader()!;
      await settle(net, net.log(l2).append(batchOf(2, 'after-restart')));
      const end2 = net.log(l2).logEndOffset;
      await net.until('all caught up after the restarts', () => [1, 2, 3].every((id) => net.log(id).highWatermark === end2));
      const tail = async (id: number) => {
        const b = await stored(net.log(id));
        const from = b.findIndex((x) => x.readBigInt64BE(0) === BigInt(start));
        return Buffer.concat(b.slice(from));
      };
      const ref = await tail(l2);
      for (const id of [1, 2, 3]) expect((await tail(id)).equals(ref), `node ${id}`).toBe(true);
      const records = await readAll(net.log(behind));
      expect(records[0]!.offset).toBe(start);
      expect(records.at(-1)!.value!.toString()).toBe('after-restart-1');
    } finally {
      await net.closeAll();
    }
  });

  test('a cut-off node holding an uncommitted tail has it replaced by the snapshot; its waiting producer gets an ambiguous error', async () => {
    const net = await Net.start(dir, [1, 2, 3], [1, 2, 3], SMALL);
    try {
      await net.until('a leader', () => net.leader() !== null);
      const old = net.leader()!;
      await settle(net, net.log(old).append(batchOf(1, 'committed')));
      net.cut.add(old);
      const lost = net.log(old).append(batchOf(1, 'never-committed'));
      lost.catch(() => undefined);
      const rest = [1, 2, 3].filter((id) => id !== old);
      await net.until('a new leader among the others', () => net.leader(rest) !== null);
      const fresh = net.leader(rest)!;
      for (let i = 0; i < 100; i++) await settle(net, net.log(fresh).append(batchOf(1, value(i))));
      for (const id of rest) await settle(net, net.log(id).applyRetention());
      expect(net.log(fresh).logStartOffset).toBeGreaterThan(0);
      net.cut.delete(old);
      const hw = net.log(fresh).highWatermark;
      await net.until('the old leader caught up', () => net.log(old).highWatermark === hw && net.log(old).logEndOffset === hw);
      expect(net.node(old).snapshots_installed).toBe(1);
      await expect(lost).rejects.toMatchObject({ code: expect.stringMatching(/NOT_LEADER|CLOSED/) });
      const values = (await readAll(net.log(old))).map((r) => r.value!.toString());
      expect(values).not.toContain('never-committed-0');
      expect(values.at(-1)).toBe(`${value(99)}-0`);
    } finally {
      await net.closeAll();
    }
  });

  test('a crash after the snapshot is stored and before its segments are deleted: open finishes the deletion', async () => {
    const net = await Net.start(dir, [1, 2, 3], [1, 2, 3], SMALL);
    try {
      await net.until('a leader', () => net.leader() !== null);
      const leader = net.leader()!;
      for (let i = 0; i < 80; i++) await settle(net, net.log(leader).append(batchOf(1, value(i))));
      const hw = net.log(leader).highWatermark;
      const f = [1, 2, 3].find((id) => id !== leader)!;
      await net.until('the follower committed everything', () => net.log(f).highWatermark === hw);
      const segs = net.log(f).segmentInfo();
      const boundary = segs[2]!.base_offset; // two whole sealed segments below it
      const allowed = await settle(net, net.node(f).discardBelow(boundary));
      expect(allowed).toBe(boundary);
      expect(net.log(f).logStartOffset).toBe(0); // the segments are still there: the crash comes now
      await net.close(f, 'crash');
      await net.open(f);
      expect(net.log(f).logStartOffset).toBe(boundary);
      expect(net.stores.get(f)!.catalog.getRaftSnapshot(['t', 0])?.next_offset).toBe(boundary);
      await settle(net, net.log(net.leader()!).append(batchOf(1, 'after')));
      const end = net.log(net.leader()!).logEndOffset;
      await net.until('the follower caught up', () => net.log(f).highWatermark === end);
      expect(net.node(f).snapshots_installed).toBe(0); // it had the entries: plain appends did it
      const records = await readAll(net.log(f));
      expect(records[0]!.offset).toBe(boundary);
      expect(records.at(-1)!.value!.toString()).toBe('after-0');
    } finally {
      await net.closeAll();
    }
  });
});
