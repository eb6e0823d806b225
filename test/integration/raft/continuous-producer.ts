import { expect } from 'vitest';
import { RelaylogClient } from '../../../client/index.js';
import { encodeBatch } from '../../../engine/index.js';
import { recordsOf } from '../../support/batches.js';
import { agreedLeader, allCaughtUp, eventually, partitionState, rawBatches, sleep, type TestCluster } from './cluster.js';

/*
 * A producer writing `seq-0, seq-1, ...` one acks=all produce at a time, through a client that
 * knows every node (it follows NOT_LEADER redirects, waits out elections, and never retries an
 * ambiguous failure), and the check of what the replicas hold afterwards.
 */

export class ContinuousProducer {
  readonly acked: Array<{ seq: number; offset: number }> = [];
  /** Produces that failed: not acknowledged, so in the log at most once. */
  readonly failed = new Set<number>();
  readonly errors = new Map<string, number>();
  private stopping = false;
  private readonly client: RelaylogClient;
  private readonly running: Promise<void>;

  constructor(addresses: string[], readonly topic: string, readonly partition: number, opts: { produce_max: number; produce_max_ms: number }) {
    this.client = new RelaylogClient(addresses.join(','), { deadline_ms: 5_000, redirects_max: 40 });
    this.running = this.run(opts.produce_max, opts.produce_max_ms);
  }

  private async run(produce_max: number, produce_max_ms: number): Promise<void> {
    const until = Date.now() + produce_max_ms;
    for (let seq = 0; !this.stopping && seq < produce_max && Date.now() < until; seq++) {
      try {
        const r = await this.client.produce(this.topic, this.partition, encodeBatch([{ key: 'k', value: `seq-${seq}`, timestamp_ms: 1_700_000_000_000 + seq }]), 'all');
        this.acked.push({ seq, offset: r.base_offset });
      } catch (err) {
        this.failed.add(seq);
        const code = (err as { code?: string }).code ?? 'unknown';
        this.errors.set(code, (this.errors.get(code) ?? 0) + 1);
        await sleep(20);
      }
    }
  }

  /** Waits (bounded: 30 s) until `more` further produces have been acknowledged. */
  async ackedMore(more: number, what: string): Promise<void> {
    const target = this.acked.length + more;
    await eventually(what, async () => (this.acked.length >= target ? true : undefined), 600, 50);
  }

  summary(): string {
    return `acknowledged ${this.acked.length}, failed ${this.failed.size}: ${JSON.stringify([...this.errors])}`;
  }

  /** Stops after the produce under way (bounded by the client deadline) and closes the client. */
  async stop(): Promise<void> {
    this.stopping = true;
    await this.running;
    this.client.close();
  }
}

/** What each running node says about the partition, and its warnings, for a failure message. */
export async function clusterState(cluster: TestCluster, topic: string, partition: number): Promise<string> {
  const lines: string[] = [];
  for (const n of cluster.running()) {
    lines.push(`node ${n.id}: ${await partitionState(n.address, topic, partition).then((p) => JSON.stringify(p), (e: Error) => e.message)}`);
  }
  const warnings = cluster.logs().split('\n').filter((l) => !l.includes('"level":30')).join('\n');
  return `${lines.join('\n')}\n${warnings.slice(-4000)}`;
}

/**
 * After the producer stopped: every running node (or every node of `among`: the partition's
 * current replicas) holds the same log, the same bytes; every acknowledged record is there exactly
 * once, at its acknowledged offset, in produce order; every other record was produced and failed
 * (so may be there, once). Returns the values in the log.
 */
export async function expectIdenticalReplicas(cluster: TestCluster, producer: ContinuousProducer, among?: readonly number[]): Promise<string[]> {
  const { topic, partition } = producer;
  const nodes = () => cluster.running().filter((n) => among === undefined || among.includes(n.id));
  const leader = await agreedLeader(cluster, topic, partition, among);
  const leader_state = await partitionState(leader.address, topic, partition);
  const hw = (await rawBatches(leader.address, topic, partition)).high_watermark;
  await allCaughtUp(cluster, topic, partition, hw, among);
  // No tail left anywhere: every node's log ends where the leader's committed log does.
  await eventually(`every node's last index of ${topic}/${partition} to be the leader's commit index`, async () => {
    const l = await partitionState(leader.address, topic, partition);
    if (l.last_index !== l.commit_index) return undefined;
    for (const n of nodes()) {
      const s = await partitionState(n.address, topic, partition);
      if (s.last_index !== l.last_index || s.commit_index !== l.commit_index) return undefined;
    }
    return true;
  });

  const reference = await rawBatches(leader.address, topic, partition);
  expect(reference.high_watermark).toBeGreaterThanOrEqual(hw);
  for (const n of nodes()) {
    const got = await rawBatches(n.address, topic, partition);
    expect(got.high_watermark, `node ${n.id}`).toBe(reference.high_watermark);
    expect(Buffer.concat(got.batches).equals(Buffer.concat(reference.batches)), `node ${n.id} holds the leader's bytes`).toBe(true);
  }
  expect(leader_state.raft_role).toBe('leader');

  const records = recordsOf(Buffer.concat(reference.batches));
  const values = records.map((r) => r.value!.toString());
  const seqs = values.filter((v) => v.startsWith('seq-')).map((v) => Number(v.slice('seq-'.length)));
  // In produce order, none twice (a failed produce is never retried, so any record is there once at most).
  for (let i = 1; i < seqs.length; i++) expect(seqs[i]!, `seq-${seqs[i]} after seq-${seqs[i - 1]}`).toBeGreaterThan(seqs[i - 1]!);
  const at = new Map(records.filter((r) => r.value!.toString().startsWith('seq-')).map((r) => [Number(r.value!.toString().slice(4)), r.offset]));
  for (const a of producer.acked) expect(at.get(a.seq), `acknowledged seq-${a.seq}`).toBe(a.offset);
  const acked = new Set(producer.acked.map((a) => a.seq));
  for (const s of seqs) expect(acked.has(s) || producer.failed.has(s), `seq-${s} was produced`).toBe(true);
  return values;
}
