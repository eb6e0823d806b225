import { existsSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { open as openLmdb } from 'lmdb';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { RelaylogClient } from '../../../client/index.js';
import { assertFreshBuild, runCli } from '../../support/server-process.js';
import { fillFileSystem, mountTmpfs, tmpfsUnavailable, unmountTmpfs } from '../../support/tmpfs.js';
import { tempDir } from '../../support/tmp.js';
import { agreedLeader, eventually, partitionState, rawBatches, TestCluster } from './cluster.js';
import { clusterState, ContinuousProducer, expectIdenticalReplicas } from './continuous-producer.js';

/*
 * One follower's disk fills up, for real: every node's data dir is its own small tmpfs, served
 * with `--disk-free-floor 0`, and the test fills the follower's tmpfs with a file, so its writes
 * meet the file system's own ENOSPC. (The engine's free-space check, a statfs at most once a
 * second, may see the full disk before a write does; both report DISK_FULL. Mounting needs root
 * or CAP_SYS_ADMIN; where that is refused the test is skipped, saying so.)
 *
 * While the disk is full the test also holds a read transaction on the node's LMDB catalog, so
 * LMDB cannot reuse freed pages and the catalog's own commits meet ENOSPC too (without that they
 * do only now and then). That is how this test found that a failed LMDB commit ended the process.
 *
 * The two other nodes go on committing a continuous acks=all producer's batches; the full node
 * logs DISK_FULL, keeps running and serving what it had, takes nothing more, and loses nothing.
 * Once the file is removed it catches up: afterwards every node holds the same bytes, every
 * acknowledged record is there exactly once and in order, and the full node stops cleanly and its
 * data dir verifies clean offline (`relaylog verify`).
 */

const TMPFS_BYTES = 48 * 1024 * 1024;
const TOPIC = 'events';
const unavailable = tmpfsUnavailable();
if (unavailable !== null) console.warn(`disk-full.test.ts skipped: ${unavailable}`);

interface CatalogReader {
  release(): void;
}

/** Opens a node's LMDB catalog read-only and holds one read transaction until released. */
function pinCatalog(path: string): CatalogReader {
  const env = openLmdb({ path, readOnly: true, maxDbs: 16, mapSize: 2 ** 34 });
  const txn = (env as unknown as { useReadTransaction(): { done(): void } }).useReadTransaction();
  let released = false;
  return {
    release() {
      if (released) return;
      released = true;
      txn.done();
      void env.close();
    },
  };
}

describe.skipIf(unavailable !== null)('a follower whose disk is full', () => {
  const tmp = tempDir('relaylog-raft-diskfull-');
  const mounts: string[] = [];
  let cluster: TestCluster | undefined;

  beforeAll(async () => {
    assertFreshBuild();
    for (const id of [1, 2, 3]) {
      const dir = join(tmp.dir, `node${id}`); // TestCluster's data dir of node `id`
      mountTmpfs(dir, TMPFS_BYTES);
      mounts.push(dir);
    }
    cluster = await TestCluster.start(tmp.dir, 3, () => ['--disk-free-floor', '0']);
  });

  afterAll(async () => {
    await cluster?.stopAll('SIGKILL');
    for (const dir of mounts) unmountTmpfs(dir);
    tmp.cleanup();
  });

  test('the other two go on committing; the full node loses nothing, then catches up', async () => {
    const c = cluster!;
    const admin = new RelaylogClient(c.node(1).address);
    await admin.createTopic(TOPIC, { partitions: 1 });
    admin.close();

    const producer = new ContinuousProducer(c.addresses, TOPIC, 0, { produce_max: 20_000, produce_max_ms: 120_000 });
    let filler = '';
    let full_id = 0;
    let reader: CatalogReader | null = null;
    let had: { batches: Buffer[]; high_watermark: number } = { batches: [], high_watermark: 0 };
    try {
      await producer.ackedMore(25, 'acknowledged produces before the disk fills');
      const leader = await agreedLeader(c, TOPIC, 0);
      const full = c.nodes.find((n) => n.id !== leader.id)!;
      full_id = full.id;
      had = await rawBatches(full.address, TOPIC, 0);

      // A reader holds a snapshot of the node's catalog, so LMDB cannot reuse the pages it frees:
      // the catalog's next commit needs new ones, and meets ENOSPC like the segment writes do.
      reader = pinCatalog(join(full.dir, 'catalog'));
      filler = join(full.dir, 'filler');
      fillFileSystem(filler, TMPFS_BYTES);

      // The full node says why it stopped writing, by name, and stops appending; the others commit without it.
      await eventually(`node ${full.id} to log DISK_FULL`, async () => (full.proc!.stderr().includes('"code":"DISK_FULL"') ? true : undefined));
      const stuck = await eventually(`node ${full.id} to stop appending`, async () => {
        const before = (await partitionState(full.address, TOPIC, 0)).last_index!;
        await producer.ackedMore(10, `acknowledged produces while node ${full.id} fills up`);
        const after = (await partitionState(full.address, TOPIC, 0)).last_index!;
        return after === before ? after : undefined;
      }, 20, 0);
      await producer.ackedMore(50, `acknowledged produces while node ${full.id}'s disk is full`);
      const l = await partitionState(leader.address, TOPIC, 0);
      expect(l.raft_role).toBe('leader');
      expect(l.commit_index!, 'the leader commits past what the full node holds').toBeGreaterThan(stuck);
      expect(l.replicas!.find((r) => r.node_id === full.id)!.match_index).toBeLessThanOrEqual(stuck);

      // Still running, still serving everything it had, unchanged, and took nothing while full.
      expect(full.proc!.child.exitCode, `node ${full.id} exited`).toBeNull();
      expect((await partitionState(full.address, TOPIC, 0)).last_index).toBe(stuck);
      const during = await rawBatches(full.address, TOPIC, 0);
      expect(during.high_watermark).toBeGreaterThanOrEqual(had.high_watermark);
      expect(Buffer.concat(during.batches).subarray(0, Buffer.concat(had.batches).length).equals(Buffer.concat(had.batches)), `node ${full.id} still serves what it had`).toBe(true);

      // Space comes back: it catches up with the producer still running.
      reader.release();
      rmSync(filler);
      filler = '';
      await eventually(`node ${full.id} to catch up after space was freed`, async () => {
        const s = await partitionState(full.address, TOPIC, 0);
        return s.commit_index! > l.commit_index! ? true : undefined;
      });
      await producer.ackedMore(25, 'acknowledged produces after space was freed');
    } catch (err) {
      throw new Error(`${(err as Error).message}\n${producer.summary()}\nfull node ${full_id}\n${await clusterState(c, TOPIC, 0)}`);
    } finally {
      reader?.release();
      if (filler !== '' && existsSync(filler)) rmSync(filler);
      await producer.stop();
    }

    await expectIdenticalReplicas(c, producer);
    const final = await rawBatches(c.node(full_id).address, TOPIC, 0);
    expect(Buffer.concat(final.batches).subarray(0, Buffer.concat(had.batches).length).equals(Buffer.concat(had.batches)), `node ${full_id} kept what it had`).toBe(true);
    // A produce fails only if an election happens under it: the full follower causes none (a
    // spurious one on a loaded machine may fail one or two).
    expect(producer.failed.size, `failures: ${JSON.stringify([...producer.errors])}`).toBeLessThanOrEqual(5);

    // A clean stop, and an offline check of every batch it stored.
    const full_proc = c.node(full_id).proc!;
    const stop_code = await c.stopNode(full_id, 'SIGTERM');
    expect(stop_code, `node ${full_id} stops cleanly; its log ends:\n${full_proc.stderr().split('\n').slice(-15).join('\n')}`).toBe(0);
    const verify = await runCli(['verify', '--data', c.node(full_id).dir, '--json']);
    expect(verify.code, verify.stdout + verify.stderr).toBe(0);
    expect(JSON.parse(verify.stdout).clean).toBe(true);
  }, 120_000);
});
