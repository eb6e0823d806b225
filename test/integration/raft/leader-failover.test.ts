import { afterAll, beforeAll, expect, test } from 'vitest';
import { RelaylogClient } from '../../../client/index.js';
import { encodeBatch } from '../../../engine/index.js';
import { recordsOf } from '../../support/batches.js';
import { assertFreshBuild } from '../../support/server-process.js';
import { tempDir } from '../../support/tmp.js';
import { agreedLeader, allCaughtUp, eventually, rawBatches, sleep, TestCluster } from './cluster.js';

/*
 * A continuous acks=all producer while the partition's leader is SIGKILLed and restarted, three
 * times. Afterwards every replica holds the same bytes; every acknowledged record is there exactly
 * once, in the order it was produced; a record whose produce failed (the leader died under it, so
 * it may or may not have committed) is there at most once.
 */

const KILLS = 3;
const PRODUCE_MAX = 20_000;
const PRODUCE_MAX_MS = 120_000;

beforeAll(() => assertFreshBuild());

const tmp = tempDir('relaylog-raft-kill-');
let cluster: TestCluster;

beforeAll(async () => {
  cluster = await TestCluster.start(tmp.dir);
});

afterAll(async () => {
  await cluster?.stopAll('SIGKILL');
  tmp.cleanup();
});

test('acknowledged records survive leader crashes exactly once, in order, on every replica', async () => {
  const admin = new RelaylogClient(cluster.node(1).address);
  await admin.createTopic('events', { partitions: 1 });
  admin.close();

  // The producer knows every node; it follows redirects and never retries an ambiguous failure.
  const client = new RelaylogClient(cluster.addresses.join(','), { deadline_ms: 5_000, redirects_max: 40 });
  const acked: Array<{ seq: number; offset: number }> = [];
  const failed = new Set<number>();
  const errors = new Map<string, number>();
  let stop = false;
  const producing = (async () => {
    const until = Date.now() + PRODUCE_MAX_MS;
    for (let seq = 0; !stop && seq < PRODUCE_MAX && Date.now() < until; seq++) {
      try {
        const r = await client.produce('events', 0, encodeBatch([{ key: 'k', value: `seq-${seq}`, timestamp_ms: 1_700_000_000_000 + seq }]), 'all');
        acked.push({ seq, offset: r.base_offset });
      } catch (err) {
        failed.add(seq);
        const code = (err as { code?: string }).code ?? 'unknown';
        errors.set(code, (errors.get(code) ?? 0) + 1);
        await sleep(20);
      }
    }
  })();

  const ackedAtLeast = (n: number, what: string) => eventually(what, async () => (acked.length >= n ? true : undefined), 600, 50);
  try {
    for (let round = 0; round < KILLS; round++) {
      await ackedAtLeast(acked.length + 25, `acknowledged produce before kill ${round + 1}`);
      const leader = await agreedLeader(cluster, 'events', 0);
      await cluster.stopNode(leader.id, 'SIGKILL');
      // The two others elect a leader and go on without it.
      await ackedAtLeast(acked.length + 25, `acknowledged produce with node ${leader.id} down`);
      await cluster.startNode(leader.id);
    }
    await ackedAtLeast(acked.length + 25, 'acknowledged produce after the last restart');
  } catch (err) {
    // What the nodes say, to tell a stuck election from a stuck client.
    const state: string[] = [`acknowledged ${acked.length}, failed ${failed.size}: ${JSON.stringify([...errors])}`];
    for (const n of cluster.running()) {
      const c = new RelaylogClient(n.address, { deadline_ms: 2_000 });
      state.push(`node ${n.id}: ${JSON.stringify(await c.describeTopic('events').then((d) => d.partitions[0], (e: Error) => e.message))}`);
      c.close();
    }
    const warnings = cluster.logs().split('\n').filter((l) => !l.includes('"level":30')).join('\n');
    throw new Error(`${(err as Error).message}\n${state.join('\n')}\n${warnings.slice(-4000)}`);
  } finally {
    stop = true;
    await producing;
    client.close();
  }

  expect(acked.length).toBeGreaterThan(100);
  const leader = await agreedLeader(cluster, 'events', 0);
  const hw = (await rawBatches(leader.address, 'events', 0)).high_watermark;
  await allCaughtUp(cluster, 'events', 0, hw);

  const reference = await rawBatches(leader.address, 'events', 0);
  for (const n of cluster.nodes) {
    const got = await rawBatches(n.address, 'events', 0);
    expect(got.high_watermark, `node ${n.id}`).toBe(reference.high_watermark);
    expect(Buffer.concat(got.batches).equals(Buffer.concat(reference.batches)), `node ${n.id} holds the leader's bytes`).toBe(true);
  }

  const records = recordsOf(Buffer.concat(reference.batches));
  const seqs = records.map((r) => Number(r.value!.toString().slice('seq-'.length)));
  // In produce order, none twice (a failed produce is never retried, so any record is there once at most).
  for (let i = 1; i < seqs.length; i++) expect(seqs[i]!, `record at offset ${records[i]!.offset}`).toBeGreaterThan(seqs[i - 1]!);
  const at = new Map(records.map((r, i) => [seqs[i]!, r.offset]));
  for (const a of acked) expect(at.get(a.seq), `acknowledged seq-${a.seq}`).toBe(a.offset);
  // Everything in the log was either acknowledged or failed ambiguously.
  const ackedSet = new Set(acked.map((a) => a.seq));
  for (const s of seqs) expect(ackedSet.has(s) || failed.has(s), `seq-${s} was produced`).toBe(true);
  // A produce fails only when the leader dies under it (the client waits out elections and
  // follows redirects): a handful per crash (generous: timing decides the exact count).
  expect(failed.size, `failures: ${JSON.stringify([...errors])}`).toBeLessThanOrEqual(20 * KILLS);
}, 300_000);
