import { afterAll, beforeAll, expect, test } from 'vitest';
import { RelaylogClient } from '../../../client/index.js';
import { recordsOf } from '../../support/batches.js';
import { IdempotentLoad } from '../../support/idempotent-load.js';
import { assertFreshBuild } from '../../support/server-process.js';
import { tempDir } from '../../support/tmp.js';
import { agreedLeader, allCaughtUp, rawBatches, TestCluster } from './cluster.js';
import { clusterState } from './continuous-producer.js';

/*
 * An idempotent Producer (up to 4 batches in flight, retrying ambiguous failures with the same
 * bytes) while the partition's leader is SIGKILLed and restarted three times. Afterwards every
 * replica holds the same bytes, every acknowledged record is there exactly once at its
 * acknowledged offset, and no record at all — acknowledged or not — is there twice: the new
 * leader recognised the retries of batches the old one had already replicated.
 */

const KILLS = 3;

beforeAll(() => assertFreshBuild());

const tmp = tempDir('relaylog-raft-idem-');
let cluster: TestCluster;

beforeAll(async () => {
  cluster = await TestCluster.start(tmp.dir);
});

afterAll(async () => {
  await cluster?.stopAll('SIGKILL');
  tmp.cleanup();
});

test('retries across leader crashes are stored once: every record exactly once, on every replica', async () => {
  const admin = new RelaylogClient(cluster.node(1).address);
  await admin.createTopic('events', { partitions: 1 });
  admin.close();

  const client = new RelaylogClient(cluster.addresses.join(','), { deadline_ms: 5_000, redirects_max: 40 });
  const load = new IdempotentLoad(client, 'events', 0, { records_max: 100_000, duration_max_ms: 150_000 });
  try {
    for (let round = 0; round < KILLS; round++) {
      await load.ackedMore(150, `acknowledged records before kill ${round + 1}`);
      const leader = await agreedLeader(cluster, 'events', 0);
      await cluster.stopNode(leader.id, 'SIGKILL');
      await load.ackedMore(150, `acknowledged records with node ${leader.id} down`);
      await cluster.startNode(leader.id);
    }
    await load.ackedMore(150, 'acknowledged records after the last restart');
  } catch (err) {
    throw new Error(`${(err as Error).message}\n${load.summary()}\n${await clusterState(cluster, 'events', 0)}`);
  } finally {
    await load.stop();
    client.close();
  }

  const leader = await agreedLeader(cluster, 'events', 0);
  const hw = (await rawBatches(leader.address, 'events', 0)).high_watermark;
  await allCaughtUp(cluster, 'events', 0, hw);
  const reference = await rawBatches(leader.address, 'events', 0);
  for (const n of cluster.nodes) {
    const got = await rawBatches(n.address, 'events', 0);
    expect(got.high_watermark, `node ${n.id}`).toBe(reference.high_watermark);
    expect(Buffer.concat(got.batches).equals(Buffer.concat(reference.batches)), `node ${n.id} holds the leader's bytes`).toBe(true);
  }
  load.expectExactlyOnce(recordsOf(Buffer.concat(reference.batches)));
  // Retries outlast an election: nothing failed for good, and everything sent was acknowledged.
  expect(load.failed.size, load.summary()).toBe(0);
  expect(load.acked.size, load.summary()).toBe(load.sent);
}, 300_000);
