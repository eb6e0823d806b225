import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { Consumer, Producer, RelaylogClient } from '../../../client/index.js';
import { batchLeaderEpoch, encodeBatch, type DecodedRecord } from '../../../engine/index.js';
import { Client, credentials, Metadata, type ServiceError } from '@grpc/grpc-js';
import { assertFreshBuild } from '../../support/server-process.js';
import { tempDir } from '../../support/tmp.js';
import { recordsOf } from '../../support/batches.js';
import { messageType, encodeMessage } from '../../../server/proto/load.js';
import { agreedLeader, allCaughtUp, eventually, rawBatches, TestCluster } from './cluster.js';

/*
 * A three-node cluster of real `relaylog serve --node-id N --peers ...` processes: each partition
 * is replicated by Raft, the Raft log being the segment store. Produce through any node (the client
 * follows NOT_LEADER to the leader), consume from every node: the same records at the same offsets,
 * as the same bytes, with the Raft term in each batch's partitionLeaderEpoch.
 */

beforeAll(() => assertFreshBuild());

describe('a three-node cluster', () => {
  const tmp = tempDir('relaylog-raft-');
  let cluster: TestCluster;

  beforeAll(async () => {
    cluster = await TestCluster.start(tmp.dir);
  });

  afterAll(async () => {
    const codes = await cluster?.stopAll();
    tmp.cleanup();
    expect(codes).toEqual([0, 0, 0]);
  });

  test('produce with acks=all through every node; every node serves identical batches, offsets and records', async () => {
    const first = new RelaylogClient(cluster.node(1).address);
    try {
      const created = await first.createTopic('samples', { partitions: 2 });
      expect(created.partitions).toHaveLength(2);
      // CreateTopic on node 1 created it on every node (it answers once a majority has it), with the same incarnation.
      for (const n of cluster.nodes) {
        const c = new RelaylogClient(n.address);
        try {
          const d = await eventually(`node ${n.id} to have the topic`, () => c.describeTopic('samples').catch(() => undefined));
          expect(d.created_ms).toBe(created.created_ms);
        } finally {
          c.close();
        }
      }
    } finally {
      first.close();
    }

    // Through each node in turn (two of the three are followers of each partition).
    const produced: Array<{ partition: number; value: string; base_offset: number }> = [];
    for (const n of cluster.nodes) {
      const c = new RelaylogClient(n.address);
      try {
        for (let i = 0; i < 15; i++) {
          for (const partition of [0, 1]) {
            const value = `n${n.id}-p${partition}-${i}`;
            const r = await c.produce('samples', partition, encodeBatch([{ key: `k${i}`, value, timestamp_ms: 1_700_000_000_000 + i }]), 'all');
            produced.push({ partition, value, base_offset: r.base_offset });
          }
        }
        // acks=leader answers once the leader has the batch durably (it commits just the same).
        const r = await c.produce('samples', 0, encodeBatch([{ value: `n${n.id}-leader-ack` }]), 'leader');
        produced.push({ partition: 0, value: `n${n.id}-leader-ack`, base_offset: r.base_offset });
      } finally {
        c.close();
      }
    }

    for (const partition of [0, 1]) {
      const leader = await agreedLeader(cluster, 'samples', partition);
      const mine = produced.filter((p) => p.partition === partition);
      const hw = Math.max(...mine.map((p) => p.base_offset)) + 1;
      await allCaughtUp(cluster, 'samples', partition, hw);
      const reference = await rawBatches(leader.address, 'samples', partition);
      for (const n of cluster.nodes) {
        const got = await rawBatches(n.address, 'samples', partition);
        expect(got.high_watermark, `node ${n.id} high watermark`).toBe(reference.high_watermark);
        expect(got.batches.length).toBe(reference.batches.length);
        // Byte for byte: the leader's bytes, stored once and shipped as they are.
        expect(Buffer.concat(got.batches).equals(Buffer.concat(reference.batches)), `node ${n.id} serves the leader's bytes`).toBe(true);
      }
      // Every acknowledged record is there once, at the offset its produce answered.
      const records = recordsOf(Buffer.concat(reference.batches));
      const byValue = new Map(records.map((r) => [r.value!.toString(), r.offset]));
      expect(records.length).toBe(mine.length);
      for (const p of mine) expect(byValue.get(p.value), p.value).toBe(p.base_offset);
      // partitionLeaderEpoch holds the Raft term: at least 1, never decreasing along the log.
      const epochs = reference.batches.map((b) => batchLeaderEpoch(b));
      expect(Math.min(...epochs)).toBeGreaterThanOrEqual(1);
      expect([...epochs].sort((a, b) => a - b)).toEqual(epochs);
    }
  });

  test('the Producer (one pipeline) through a follower; a Consumer on each node reads the same records', async () => {
    const leader = await agreedLeader(cluster, 'samples', 1);
    const follower = cluster.nodes.find((n) => n.id !== leader.id)!;
    const c = new RelaylogClient(follower.address);
    let before: number;
    try {
      before = (await c.listOffsets('samples', 1, { position: 'latest' })).high_watermark;
      const producer = new Producer(c, { topic: 'samples', partition: 1, batch_bytes: 4 * 1024, max_in_flight: 1 });
      const acked: Array<Promise<number>> = [];
      for (let i = 0; i < 2_000; i++) acked.push(producer.send({ key: `k${i % 5}`, value: `pipe-${i}`, timestamp_ms: 1_700_000_100_000 + i }));
      await producer.close();
      const offsets = await Promise.all(acked);
      expect([...offsets].sort((a, b) => a - b)).toEqual(offsets);
      await allCaughtUp(cluster, 'samples', 1, offsets[offsets.length - 1]! + 1);
    } finally {
      c.close();
    }
    const views: string[][] = [];
    for (const n of cluster.nodes) {
      const nc = new RelaylogClient(n.address);
      try {
        const consumer = new Consumer(nc, { topic: 'samples', partition: 1, from: { offset: before } });
        const got: DecodedRecord[] = [];
        for await (const r of consumer) {
          got.push(r);
          if (got.length >= 2_000) break;
        }
        consumer.close();
        views.push(got.map((r) => `${r.offset}:${r.value!.toString()}`));
      } finally {
        nc.close();
      }
    }
    expect(views[0]!.map((v) => v.split(':')[1])).toEqual(Array.from({ length: 2_000 }, (_, i) => `pipe-${i}`));
    expect(views[1]).toEqual(views[0]);
    expect(views[2]).toEqual(views[0]);
  });

  test('a follower answers produce with FAILED_PRECONDITION naming the leader, and the client follows it', async () => {
    const leader = await agreedLeader(cluster, 'samples', 0);
    const follower = cluster.nodes.find((n) => n.id !== leader.id)!;
    // What the follower answers on the wire.
    const raw = new Client(follower.address, credentials.createInsecure());
    try {
      const body = encodeMessage(messageType('ProduceRequest'), { topic: 'samples', partition: 0, records: encodeBatch([{ value: 'raw' }]), acks: 'ACKS_ALL' });
      const answer = await new Promise<{ code: number; leader: unknown; trailer_code: unknown }>((resolve) => {
        raw.makeUnaryRequest('/relaylog.v1.Log/Produce', (b: Buffer) => b, (b: Buffer) => b, body, new Metadata(), { deadline: Date.now() + 10_000 }, (err: ServiceError | null) => {
          resolve({ code: err?.code ?? 0, leader: err?.metadata.get('relaylog-leader')[0], trailer_code: err?.metadata.get('relaylog-code')[0] });
        });
      });
      expect(answer).toEqual({ code: 9, leader: leader.address, trailer_code: 'NOT_LEADER' });
    } finally {
      raw.close();
    }
    // The client, pointed at the follower only, lands the batch on the leader.
    const c = new RelaylogClient(follower.address);
    try {
      const r = await c.produce('samples', 0, encodeBatch([{ value: 'redirected' }]));
      expect(c.leaderFor('samples', 0)).toBe(leader.address);
      const lc = new RelaylogClient(leader.address);
      try {
        const f = await lc.fetch('samples', 0, r.base_offset);
        expect(recordsOf(f.records).find((x) => x.offset === r.base_offset)?.value?.toString()).toBe('redirected');
      } finally {
        lc.close();
      }
    } finally {
      c.close();
    }
  });

  test('DescribeTopic on the leader shows the term and every member caught up', async () => {
    const leader = await agreedLeader(cluster, 'samples', 0);
    const c = new RelaylogClient(leader.address);
    try {
      const p = await eventually('every follower to match the leader', async () => {
        const d = (await c.describeTopic('samples')).partitions[0]!;
        return d.replicas?.length === 3 && d.replicas.every((r) => r.lag_entries === 0) ? d : undefined;
      });
      expect(p).toMatchObject({ leader: leader.address, leader_id: leader.id, raft_role: 'leader' });
      expect(p.raft_term).toBeGreaterThanOrEqual(1);
      expect(p.commit_index).toBe(p.last_index);
      expect(p.replicas!.map((r) => r.node_id).sort()).toEqual([1, 2, 3]);
      expect(p.replicas!.find((r) => r.node_id === leader.id)?.state).toBe('self');
    } finally {
      c.close();
    }
  });

  test('a node that was down when a topic was created learns it from its peers and catches up', async () => {
    expect(await cluster.stopNode(3)).toBe(0);
    const c = new RelaylogClient(cluster.node(1).address);
    try {
      // Two of three nodes have it: a majority, enough to elect leaders and commit.
      const created = await c.createTopic('late', { partitions: 1 });
      const r = await c.produce('late', 0, encodeBatch([{ value: 'while-3-was-down' }]));
      await cluster.startNode(3);
      const n3 = new RelaylogClient(cluster.node(3).address);
      try {
        const d = await eventually('node 3 to learn topic "late"', async () => n3.describeTopic('late').catch(() => undefined));
        expect(d.created_ms).toBe(created.created_ms);
      } finally {
        n3.close();
      }
      await allCaughtUp(cluster, 'late', 0, r.base_offset + 1);
      const ref = await rawBatches(cluster.node(1).address, 'late', 0);
      const got = await rawBatches(cluster.node(3).address, 'late', 0);
      expect(Buffer.concat(got.batches).equals(Buffer.concat(ref.batches))).toBe(true);
    } finally {
      c.close();
    }
  });
});
