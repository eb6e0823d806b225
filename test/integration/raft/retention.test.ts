import { afterAll, beforeAll, expect, test } from 'vitest';
import { RelaylogClient } from '../../../client/index.js';
import { encodeBatch, forEachBatch } from '../../../engine/index.js';
import { recordsOf } from '../../support/batches.js';
import { assertFreshBuild, runCli } from '../../support/server-process.js';
import { tempDir } from '../../support/tmp.js';
import { agreedLeader, allCaughtUp, eventually, TestCluster } from './cluster.js';
import { ContinuousProducer, clusterState } from './continuous-producer.js';

/*
 * Retention on a real three-node cluster (docs/raft.md, "Retention on cluster nodes"): small
 * segments and `retention.bytes`, retention checked every 300 ms, a continuous acks=all producer
 * plus bulk batches. One follower is killed (-9) early; while it is down the others' retention
 * deletes segments it never got, so when it restarts the leader has to send it a snapshot. Then:
 * every node's log starts above 0 and holds, from the highest start on, the same bytes; every
 * acknowledged record at or above that point is there at its offset; the restarted node logged
 * the snapshot install; and a consumer reading from "earliest" on it gets contiguous records.
 */

const TOPIC = 'retained';
const SEGMENT_BYTES = 16 * 1024;
const RETENTION_BYTES = 64 * 1024;
const BULK_VALUE = 'b'.repeat(4000);

beforeAll(() => assertFreshBuild());

const tmp = tempDir('relaylog-raft-retention-');
let cluster: TestCluster;

beforeAll(async () => {
  cluster = await TestCluster.start(tmp.dir, 3, () => ['--retention-interval', '300']);
});

afterAll(async () => {
  await cluster?.stopAll('SIGKILL');
  tmp.cleanup();
});

async function offsets(address: string): Promise<{ start: number; hw: number }> {
  const c = new RelaylogClient(address, { deadline_ms: 5_000 });
  try {
    const o = await c.listOffsets(TOPIC, 0, { position: 'earliest' });
    return { start: o.log_start_offset, hw: o.high_watermark };
  } finally {
    c.close();
  }
}

/** The raw batches a node serves in [from, hw). */
async function batchesFrom(address: string, from: number, hw: number): Promise<Buffer[]> {
  const c = new RelaylogClient(address, { deadline_ms: 10_000 });
  try {
    const out: Buffer[] = [];
    for (let offset = from, rounds = 0; offset < hw && rounds < 100_000; rounds++) {
      const r = await c.fetch(TOPIC, 0, offset, 1024 * 1024);
      forEachBatch(r.records, (pos, size) => {
        const b = r.records.subarray(pos, pos + size);
        if (b.readBigInt64BE(0) >= BigInt(offset) && b.readBigInt64BE(0) < BigInt(hw)) out.push(Buffer.from(b));
      });
      if (r.next_offset <= offset) break;
      offset = r.next_offset;
    }
    return out;
  } finally {
    c.close();
  }
}

test('segments a stopped follower never got are deleted by retention; it comes back through a snapshot, nothing acknowledged above the start is lost', async () => {
  const admin = new RelaylogClient(cluster.node(1).address, { deadline_ms: 10_000 });
  await admin.createTopic(TOPIC, { partitions: 1, config: { 'segment.bytes': String(SEGMENT_BYTES), 'retention.bytes': String(RETENTION_BYTES) } });
  admin.close();
  const producer = new ContinuousProducer(cluster.addresses, TOPIC, 0, { produce_max: 100_000, produce_max_ms: 60_000 });
  const bulk = new RelaylogClient(cluster.addresses.join(','), { deadline_ms: 10_000, redirects_max: 40 });
  let behind = 0;
  try {
    await producer.ackedMore(20, 'the first acknowledged produce');
    const leader = await agreedLeader(cluster, TOPIC, 0);
    behind = [1, 2, 3].find((id) => id !== leader.id)!;
    await cluster.stopNode(behind, 'SIGKILL');
    const behind_end = producer.acked.at(-1)!.offset + 1;
    // Enough bulk data for retention to delete well past what the stopped node holds.
    let bulk_acked = 0;
    await eventually(
      'the live nodes to delete segments past what the stopped node holds',
      async () => {
        for (let i = 0; i < 10; i++) {
          await bulk.produce(TOPIC, 0, encodeBatch([{ value: BULK_VALUE }, { value: BULK_VALUE }]), 'all');
          bulk_acked++;
        }
        const live = cluster.running();
        for (const n of live) if ((await offsets(n.address)).start <= behind_end) return undefined;
        return true;
      },
      300,
      50,
    );
    expect(bulk_acked).toBeGreaterThan(0);
    await producer.ackedMore(20, 'acknowledged produce after retention');
    await cluster.startNode(behind);
    await producer.ackedMore(20, 'acknowledged produce with the stopped node back');
  } catch (err) {
    throw new Error(`${(err as Error).message}\n${producer.summary()}\n${await clusterState(cluster, TOPIC, 0)}`);
  } finally {
    await producer.stop();
    bulk.close();
  }

  const leader = await agreedLeader(cluster, TOPIC, 0);
  const { hw } = await offsets(leader.address);
  await allCaughtUp(cluster, TOPIC, 0, hw);
  // The restarted node could not have caught up by appends: the leader sent it a snapshot.
  await eventually('the snapshot install in the restarted node\'s log', async () => (cluster.node(behind).proc!.stderr().includes('installing a snapshot from the leader') ? true : undefined), 50, 100);
  const starts = await Promise.all([1, 2, 3].map(async (id) => (await offsets(cluster.node(id).address)).start));
  for (const s of starts) expect(s).toBeGreaterThan(0);
  const from = Math.max(...starts);
  const reference = Buffer.concat(await batchesFrom(leader.address, from, hw));
  expect(reference.length).toBeGreaterThan(0);
  for (const id of [1, 2, 3]) {
    expect(Buffer.concat(await batchesFrom(cluster.node(id).address, from, hw)).equals(reference), `node ${id} holds the leader's bytes from offset ${from}`).toBe(true);
  }
  // Every acknowledged record at or above the common start is there, at its offset, once.
  const records = recordsOf(reference);
  const at = new Map<number, number>();
  for (const r of records) {
    const v = r.value!.toString();
    if (!v.startsWith('seq-')) continue;
    const seq = Number(v.slice(4));
    expect(at.has(seq), `seq-${seq} once`).toBe(false);
    at.set(seq, r.offset);
  }
  const kept = producer.acked.filter((a) => a.offset >= from);
  expect(kept.length).toBeGreaterThan(20);
  for (const a of kept) expect(at.get(a.seq), `acknowledged seq-${a.seq}`).toBe(a.offset);
  // A consumer on the restarted node reads from its earliest offset, contiguously.
  const c = new RelaylogClient(cluster.node(behind).address, { deadline_ms: 10_000 });
  try {
    const o = await offsets(c.address);
    const mine = recordsOf(Buffer.concat(await batchesFrom(c.address, o.start, o.hw)));
    expect(mine[0]!.offset).toBe(o.start);
    for (let i = 1; i < mine.length; i++) expect(mine[i]!.offset).toBeGreaterThan(mine[i - 1]!.offset);
  } finally {
    c.close();
  }
  // Stopped cleanly, the node that installed the snapshot verifies clean offline.
  expect(await cluster.stopNode(behind, 'SIGTERM')).toBe(0);
  const verify = await runCli(['verify', '--data', cluster.node(behind).dir, '--json']);
  expect(verify.code, verify.stdout + verify.stderr).toBe(0);
  expect(JSON.parse(verify.stdout).clean).toBe(true);
}, 150_000);
