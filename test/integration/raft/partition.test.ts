import { afterAll, beforeAll, expect, test } from 'vitest';
import { RelaylogClient } from '../../../client/index.js';
import { encodeBatch } from '../../../engine/index.js';
import { assertFreshBuild } from '../../support/server-process.js';
import { tempDir } from '../../support/tmp.js';
import { agreedLeader, eventually, partitionState, sleep, TestCluster } from './cluster.js';
import { clusterState, ContinuousProducer, expectIdenticalReplicas } from './continuous-producer.js';
import { PeerLinks } from './peer-links.js';

/*
 * A network partition of the leader. Three nodes reach each other only through TCP proxies the
 * test runs (one per ordered pair, `--peer-dial`; clients connect to the nodes directly). While a
 * continuous acks=all producer runs, the leader is cut off from both other nodes:
 *
 *  - the majority elects a new leader and goes on acknowledging produces;
 *  - the old leader, which clients can still reach, acknowledges nothing: produces sent straight
 *    to it fail or time out. It steps down by itself (check quorum), keeping an uncommitted tail
 *    of what it took while it still believed it led;
 *  - after healing, it learns the new term, its tail is cut and it catches up.
 *
 * Afterwards every node holds the same bytes; every acknowledged record is there exactly once, in
 * order; a failed one at most once; and nothing produced to the isolated leader is there at all
 * (§5.4.1: the majority committed entries of a newer term, so its term-T tail can never win).
 */

const PRODUCE_MAX = 20_000;
const PRODUCE_MAX_MS = 120_000;
const TOPIC = 'events';

beforeAll(() => assertFreshBuild());

const tmp = tempDir('relaylog-raft-partition-');
let links: PeerLinks;
let cluster: TestCluster;

beforeAll(async () => {
  links = await PeerLinks.open([1, 2, 3]);
  cluster = await TestCluster.start(tmp.dir, 3, (id, addresses) => links.dialArgs(id, addresses));
});

afterAll(async () => {
  await cluster?.stopAll('SIGKILL');
  await links?.close();
  tmp.cleanup();
});

/** Produces `stray-k` straight to `address` (no redirects) until stopped; every outcome is recorded. */
function strayProducer(address: string) {
  const client = new RelaylogClient(address, { deadline_ms: 3_000, redirects_max: 0 });
  const sent: string[] = [];
  const acked: string[] = [];
  const errors = new Map<string, number>();
  let stopping = false;
  const one = async (value: string) => {
    sent.push(value);
    try {
      await client.produce(TOPIC, 0, encodeBatch([{ key: 'stray', value, timestamp_ms: 1_700_000_000_000 }]), 'all');
      acked.push(value);
    } catch (err) {
      const code = (err as { code?: string }).code ?? 'unknown';
      errors.set(code, (errors.get(code) ?? 0) + 1);
    }
  };
  const running = (async () => {
    // A few at once, straight after the cut, while it still believes it leads; then one at a time.
    await Promise.all([0, 1, 2, 3].map((k) => one(`stray-${k}`)));
    for (let k = 4; !stopping && k < 200; k++) {
      await one(`stray-${k}`);
      await sleep(100);
    }
  })();
  let stopped: Promise<void> | null = null;
  return {
    sent,
    acked,
    errors,
    stop(): Promise<void> {
      stopping = true;
      stopped ??= running.then(() => client.close());
      return stopped;
    },
  };
}

test('an isolated leader acknowledges nothing; the majority goes on; after healing every replica holds the same log', async () => {
  const admin = new RelaylogClient(cluster.node(1).address);
  await admin.createTopic(TOPIC, { partitions: 1 });
  admin.close();

  const producer = new ContinuousProducer(cluster.addresses, TOPIC, 0, { produce_max: PRODUCE_MAX, produce_max_ms: PRODUCE_MAX_MS });
  let stray: ReturnType<typeof strayProducer> | null = null;
  let old_id = 0;
  try {
    await producer.ackedMore(25, 'acknowledged produces before the partition');
    const old = await agreedLeader(cluster, TOPIC, 0);
    old_id = old.id;
    const old_term = (await partitionState(old.address, TOPIC, 0)).raft_term!;
    const majority = cluster.nodes.filter((n) => n.id !== old.id);

    links.isolate(old.id);
    stray = strayProducer(old.address);

    // The majority elects one of its own, in a newer term, and goes on acknowledging.
    const fresh = await eventually('the majority to elect a new leader', async () => {
      const states = await Promise.all(majority.map((n) => partitionState(n.address, TOPIC, 0)));
      const lead = states[0]!.leader_id;
      if (!lead || lead === old.id || states.some((s) => s.leader_id !== lead)) return undefined;
      return { id: lead, term: states[0]!.raft_term! };
    });
    expect(fresh.term).toBeGreaterThan(old_term);
    await producer.ackedMore(25, `acknowledged produces on the majority side (leader ${fresh.id}) while node ${old.id} is cut off`);

    // The old leader notices it lost its quorum and steps down, still in its old term, with a tail
    // the others never saw.
    const cut_off = await eventually(`node ${old.id} to step down while cut off`, async () => {
      const s = await partitionState(old.address, TOPIC, 0);
      return s.raft_role !== 'leader' ? s : undefined;
    });
    expect(cut_off.raft_term).toBe(old_term);
    expect(cut_off.last_index!, `node ${old.id} holds the stray batches it took as leader, uncommitted`).toBeGreaterThan(cut_off.commit_index!);

    await stray.stop();
    expect(stray.acked, `produces acknowledged by the isolated node ${old.id} (errors: ${JSON.stringify([...stray.errors])})`).toEqual([]);
    expect(stray.sent.length).toBeGreaterThan(4);

    links.healAll();
    // The old leader learns the new term and follows the new leader; clients are sent there too.
    await eventually(`node ${old.id} to follow node ${fresh.id} after healing`, async () => {
      const s = await partitionState(old.address, TOPIC, 0);
      return s.raft_role === 'follower' && s.leader_id === fresh.id && s.raft_term === fresh.term ? true : undefined;
    });
    await producer.ackedMore(25, 'acknowledged produces after healing');
  } catch (err) {
    throw new Error(`${(err as Error).message}\n${producer.summary()}\nlinks: ${links.describe()}\n${await clusterState(cluster, TOPIC, 0)}`);
  } finally {
    links.healAll();
    await stray?.stop();
    await producer.stop();
  }

  expect(producer.acked.length).toBeGreaterThan(75);
  const values = await expectIdenticalReplicas(cluster, producer);
  // Nothing the isolated leader took is anywhere: its tail was cut on every node that had it.
  expect(values.filter((v) => v.startsWith('stray-')), `stray records in the log (old leader ${old_id})`).toEqual([]);
  // A produce fails only when it went to the old leader before the client learnt of the new one.
  expect(producer.failed.size, `failures: ${JSON.stringify([...producer.errors])}`).toBeLessThanOrEqual(20);
}, 120_000);
