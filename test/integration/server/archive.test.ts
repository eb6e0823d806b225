import { readdirSync, renameSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { Consumer, Producer, RelaylogClient } from '../../../client/index.js';
import type { DecodedRecord } from '../../../engine/index.js';
import { digestRecords } from '../../support/batches.js';
import { assertFreshBuild, runCli, startServer, type ServerProcess } from '../../support/server-process.js';
import { tempDir } from '../../support/tmp.js';

/*
 * The archive tier through the real server process (issue 5): produce enough to roll many
 * segments, archive them, let local retention evict the SSD copies, then replay the whole topic by
 * offset and by timestamp over gRPC and compare digests of every record; kill the server with
 * SIGKILL while it uploads and restart it; rebuild a fresh node from the archive alone.
 * The WebHDFS backend runs the same flow against the protocol stand-in in webhdfs-archive.test.ts.
 */

// Recent timestamps: records older than retention.ms (7 days by default) would rightly be deleted.
const T0 = Math.floor(Date.now() / 1000) * 1000 - 2 * 3600_000;
const N = 1500;
const VALUE_BYTES = 4000;
const SEGMENT_BYTES = 256 * 1024;
const LOCAL_RETENTION_BYTES = 512 * 1024;
/** Record i: 4000 bytes derived from i, one second after record i-1. */
const valueOf = (i: number) => Buffer.alloc(VALUE_BYTES, `v${i}|`);
const tsOf = (i: number) => T0 + i * 1000;

async function produce(client: RelaylogClient, from: number, to: number): Promise<void> {
  const producer = new Producer(client, { topic: 'train', partition: 0, batch_bytes: 64 * 1024 });
  for (let i = from; i < to; i++) {
    producer.push({ key: `k${i}`, value: valueOf(i), timestamp_ms: tsOf(i) });
    if (i % 200 === 0) await producer.ready();
  }
  await producer.close();
}

/** What a replay of records [from, to) must return, as digests. */
function expected(from: number, to: number): ReturnType<typeof digestRecords> {
  const recs: DecodedRecord[] = [];
  for (let i = from; i < to; i++) recs.push({ offset: i, timestamp_ms: tsOf(i), key: Buffer.from(`k${i}`), value: valueOf(i), headers: [] });
  return digestRecords(recs);
}

async function replay(client: RelaylogClient, from: { offset: number } | { timestamp_ms: number }, end_offset: number): Promise<ReturnType<typeof digestRecords>> {
  const out: DecodedRecord[] = [];
  const c = new Consumer(client, { topic: 'train', from, end_offset });
  for await (const r of c) out.push({ ...r, key: r.key && Buffer.from(r.key), value: r.value && Buffer.from(r.value) });
  c.close();
  return digestRecords(out);
}

beforeAll(() => assertFreshBuild());

describe('archive tier (file:// backend) through the server', () => {
  const tmp = tempDir('relaylog-archive-');
  const archive_dir = join(tmp.dir, 'archive');
  const archive_url = `file://${archive_dir}`;
  const data = join(tmp.dir, 'node1');
  let server: ServerProcess | null = null;
  let client: RelaylogClient | null = null;

  const start = async (dir = data) => {
    server = await startServer(dir, { extra_args: ['--archive', archive_url, '--archive-interval', '0', '--memory', String(64 * 1024)] });
    client = new RelaylogClient(server.address);
    return client;
  };
  const stop = async (signal: NodeJS.Signals = 'SIGTERM') => {
    client?.close();
    client = null;
    const code = await server?.stop(signal);
    server = null;
    return code;
  };

  afterAll(async () => {
    await stop();
    tmp.cleanup();
  });

  test('archived segments leave SSD only after upload, and replay by offset and by timestamp reads through every tier', async () => {
    const c = await start();
    await c.createTopic('train', { config: { 'segment.bytes': String(SEGMENT_BYTES), 'local.retention.bytes': String(LOCAL_RETENTION_BYTES) } });
    await produce(c, 0, N);
    const before = (await c.describeTopic('train')).partitions[0]!;
    expect(before.archived_segment_count).toBe(0);
    expect(before.ssd_bytes).toBeGreaterThan(N * VALUE_BYTES);

    const r = await c.archive();
    expect(r).toMatchObject({ archive_url, failures: 0, last_error: '' });
    expect(r.uploaded).toBe(before.segment_count - 1); // every sealed segment; the active one stays
    const after = (await c.describeTopic('train')).partitions[0]!;
    expect(after.archived_segment_count).toBe(r.uploaded);
    expect(after.ssd_bytes).toBeLessThanOrEqual(LOCAL_RETENTION_BYTES + SEGMENT_BYTES);
    expect(after.archive_bytes).toBeGreaterThan((N * VALUE_BYTES) / 2);
    expect(after).toMatchObject({ log_start_offset: 0, high_watermark: N });
    const files = readdirSync(join(archive_dir, 'train', '0'));
    expect(files.filter((f) => f.endsWith('.log'))).toHaveLength(r.uploaded);
    expect(files.filter((f) => f.endsWith('.json'))).toHaveLength(r.uploaded);

    expect(await replay(c, { offset: 0 }, N)).toEqual(expected(0, N));
    // By timestamp: deep in the archive, near the SSD boundary, in the tail.
    for (const i of [0, 1, 137, Math.floor(N / 2), N - 50, N - 1]) {
      expect((await c.listOffsets('train', 0, { timestamp_ms: tsOf(i) - 500 })).offset).toBe(i);
      expect(await replay(c, { timestamp_ms: tsOf(i) - 500 }, Math.min(N, i + 40))).toEqual(expected(i, Math.min(N, i + 40)));
    }
  });

  test('a restart keeps the archive catalog; a server killed (SIGKILL) while uploading finishes after restart with nothing lost or duplicated', async () => {
    expect(await stop()).toBe(0);
    let c = await start();
    expect(await replay(c, { offset: 0 }, N)).toEqual(expected(0, N));
    await produce(c, N, 2 * N);
    // Start an upload and kill the process while it is at it (the request fails with the connection).
    const pending = c.archive().catch((err: unknown) => err);
    await new Promise((r) => setTimeout(r, 15));
    expect(await stop('SIGKILL')).toBeNull();
    await pending;

    c = await start();
    const r = await c.archive();
    expect({ failures: r.failures, last_error: r.last_error }).toEqual({ failures: 0, last_error: '' });
    const p = (await c.describeTopic('train')).partitions[0]!;
    const files = readdirSync(join(archive_dir, 'train', '0'));
    expect(files.filter((f) => f.includes('.tmp-'))).toEqual([]);
    expect(files.filter((f) => f.endsWith('.log'))).toHaveLength(p.archived_segment_count);
    expect(p.ssd_bytes).toBeLessThanOrEqual(LOCAL_RETENTION_BYTES + SEGMENT_BYTES);
    expect(p).toMatchObject({ log_start_offset: 0, high_watermark: 2 * N });
    expect(await replay(c, { offset: 0 }, 2 * N)).toEqual(expected(0, 2 * N));
  });

  test('`relaylog restore` rebuilds an empty node from the archive alone, and it serves every archived record', async () => {
    const archived = (await client!.describeTopic('train')).partitions[0]!;
    expect(await stop()).toBe(0);
    const fresh = join(tmp.dir, 'node2');
    const restored = await runCli(['restore', '--archive', archive_url, '--data', fresh]);
    expect(restored.stderr).toBe('');
    expect(restored.code).toBe(0);
    expect(restored.stdout).toMatch(/^train\/0: offsets 0\.\.\d+, \d+ archived segment\(s\)$/m);
    const c = await start(fresh);
    const p = (await c.describeTopic('train')).partitions[0]!;
    expect(p.archived_segment_count).toBe(archived.archived_segment_count);
    expect(p.log_start_offset).toBe(0);
    // Everything that reached the archive; the rest lived only on node1's SSD.
    const end = p.high_watermark;
    expect(end).toBeGreaterThan(N);
    expect(await replay(c, { offset: 0 }, end)).toEqual(expected(0, end));
    expect((await c.listOffsets('train', 0, { timestamp_ms: tsOf(777) })).offset).toBe(777);
    // ... and the new node continues the log where the archive ends.
    const res = await c.produce('train', 0, (await import('../../../engine/index.js')).encodeBatch([{ value: 'after restore' }]));
    expect(res.base_offset).toBe(end);
  });

  test('`relaylog restore --ssd-from-offset` copies the recent archived range back to local disk, where it is served without the archive', async () => {
    expect(await stop()).toBe(0);
    const fresh = join(tmp.dir, 'node3');
    // Copy back only what fits the topic's local retention, so nothing is evicted again meanwhile.
    const first = await runCli(['restore', '--archive', archive_url, '--data', join(tmp.dir, 'node3-probe')]);
    const end = Number(/offsets 0\.\.(\d+)/.exec(first.stdout)![1]);
    const from = end - 100;
    const restored = await runCli(['restore', '--archive', archive_url, '--data', fresh, '--ssd-from-offset', String(from), '--topic', 'train']);
    expect(restored.stderr).toBe('');
    expect(restored.code).toBe(0);
    const m = /^train\/0: offsets 0\.\.(\d+), (\d+) archived segment\(s\), (\d+) copied to local disk \(offsets (\d+)\.\.(\d+)\)$/m.exec(restored.stdout);
    expect(m, restored.stdout).not.toBeNull();
    const [copied, local_start] = [Number(m![3]), Number(m![4])];
    expect(copied).toBeGreaterThan(0);
    expect(local_start).toBeLessThanOrEqual(from);
    expect(Number(m![5])).toBe(end);
    // The copies are sound (verify reads every batch) and inspect shows them on both tiers.
    const verify = await runCli(['verify', '--data', fresh, '--json']);
    expect(verify.code).toBe(0);
    const c = await start(fresh);
    const p = (await c.describeTopic('train')).partitions[0]!;
    expect(p.ssd_bytes).toBeGreaterThan(0);
    expect(p).toMatchObject({ log_start_offset: 0, high_watermark: end });
    // With the archive gone, the copied range still replays (from local disk) and older offsets do not.
    renameSync(archive_dir, `${archive_dir}.away`);
    try {
      expect(await replay(c, { offset: local_start }, end)).toEqual(expected(local_start, end));
      await expect(c.fetch('train', 0, 0, 1 << 20)).rejects.toMatchObject({ code: expect.anything() });
    } finally {
      renameSync(`${archive_dir}.away`, archive_dir);
    }
    expect(await replay(c, { offset: 0 }, end)).toEqual(expected(0, end));
  });

  test('`relaylog archive` through the server reports, and a server without an archive refuses with a named error', async () => {
    const r = await runCli(['archive', '--server', client!.address, '--json']);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ archive_url, failures: 0 });
    // One topic at a time; a topic that does not exist is refused by name.
    const one = await runCli(['archive', '--server', client!.address, '--topic', 'train', '--json']);
    expect(one.code).toBe(0);
    expect(JSON.parse(one.stdout)).toMatchObject({ archive_url, failures: 0 });
    const none = await runCli(['archive', '--server', client!.address, '--topic', 'nope']);
    expect(none.code).toBe(1);
    expect(none.stderr).toMatch(/nope/);
    expect(await stop()).toBe(0);
    const plain = await startServer(join(tmp.dir, 'plain'));
    try {
      const c = new RelaylogClient(plain.address);
      await expect(c.archive()).rejects.toMatchObject({ code: 'ARCHIVE_NOT_CONFIGURED', message: expect.stringMatching(/--archive/) });
      c.close();
      const cli = await runCli(['archive', '--server', plain.address]);
      expect(cli.code).toBe(1);
      expect(cli.stderr).toMatch(/^relaylog: this server has no archive tier/);
    } finally {
      expect(await plain.stop()).toBe(0);
    }
  });
});
