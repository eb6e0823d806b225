import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { Consumer, Producer, RelaylogClient } from '../../../client/index.js';
import type { DecodedRecord } from '../../../engine/index.js';
import { digestRecords } from '../../support/batches.js';
import { assertFreshBuild, runCli, startServer, type ServerProcess } from '../../support/server-process.js';
import { tempDir } from '../../support/tmp.js';
import { startWebHdfsStandin, type WebHdfsStandin } from '../../support/webhdfs-standin.js';

/*
 * The archive tier over WebHDFS through the real server process, against the protocol stand-in
 * (no HDFS can run here; docs/archive.md says what the stand-in covers): archive under injected
 * faults, evict, replay by offset and timestamp; SIGKILL while a slow DataNode takes an upload;
 * a new node restored from the archive alone.
 */

const T0 = Math.floor(Date.now() / 1000) * 1000 - 2 * 3600_000;
const N = 1200;
const valueOf = (i: number) => Buffer.alloc(4000, `w${i}|`);
const tsOf = (i: number) => T0 + i * 1000;

async function produce(c: RelaylogClient, from: number, to: number) {
  const p = new Producer(c, { topic: 'train', partition: 0, batch_bytes: 64 * 1024 });
  for (let i = from; i < to; i++) {
    p.push({ key: `k${i}`, value: valueOf(i), timestamp_ms: tsOf(i) });
    if (i % 200 === 0) await p.ready();
  }
  await p.close();
}
const expected = (from: number, to: number) =>
  digestRecords(Array.from({ length: to - from }, (_, j) => ({ offset: from + j, timestamp_ms: tsOf(from + j), key: Buffer.from(`k${from + j}`), value: valueOf(from + j), headers: [] })));
async function replay(c: RelaylogClient, from: { offset: number } | { timestamp_ms: number }, end: number) {
  const out: DecodedRecord[] = [];
  const consumer = new Consumer(c, { topic: 'train', from, end_offset: end });
  for await (const r of consumer) out.push({ ...r, key: r.key && Buffer.from(r.key), value: r.value && Buffer.from(r.value) });
  consumer.close();
  return digestRecords(out);
}

beforeAll(() => assertFreshBuild());

describe('archive tier over WebHDFS (stand-in) through the server', () => {
  const tmp = tempDir('relaylog-whdfs-');
  let hdfs: WebHdfsStandin;
  let server: ServerProcess | null = null;
  let client: RelaylogClient | null = null;
  const data = join(tmp.dir, 'node1');
  beforeAll(async () => {
    hdfs = await startWebHdfsStandin({ root_dir: join(tmp.dir, 'hdfs') });
  });
  const start = async (dir = data) => {
    server = await startServer(dir, { extra_args: ['--archive', hdfs.url('/warehouse/relaylog'), '--archive-interval', '0', '--memory', String(64 * 1024)] });
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
    await stop('SIGKILL');
    await hdfs.close();
    tmp.cleanup();
  });

  test('uploads survive injected 5xx, resets and truncated bodies; evicted data replays by offset and timestamp', async () => {
    const c = await start();
    await c.createTopic('train', { config: { 'segment.bytes': String(256 * 1024), 'local.retention.bytes': String(512 * 1024) } });
    await produce(c, 0, N);
    hdfs.inject({ op: 'CREATE', at: 'datanode', kind: 'reset', times: 2 });
    hdfs.inject({ op: 'CREATE', at: 'namenode', kind: 'status_500', times: 2 });
    hdfs.inject({ op: 'OPEN', at: 'datanode', kind: 'truncate', times: 3 });
    const r = await c.archive();
    expect({ failures: r.failures, last_error: r.last_error }).toEqual({ failures: 0, last_error: '' });
    expect(r.uploaded).toBeGreaterThan(10);
    const p = (await c.describeTopic('train')).partitions[0]!;
    expect(p.archived_segment_count).toBe(r.uploaded);
    expect(p.ssd_bytes).toBeLessThanOrEqual(512 * 1024 + 256 * 1024);
    const files = readdirSync(join(tmp.dir, 'hdfs', 'warehouse', 'relaylog', 'train', '0'));
    expect(files.filter((f) => f.endsWith('.log'))).toHaveLength(r.uploaded);
    expect(files.filter((f) => f.includes('.tmp-'))).toEqual([]);
    hdfs.inject({ op: 'OPEN', at: 'datanode', kind: 'reset', times: 3 });
    expect(await replay(c, { offset: 0 }, N)).toEqual(expected(0, N));
    for (const i of [0, 333, N - 1]) expect(await replay(c, { timestamp_ms: tsOf(i) - 1 }, Math.min(N, i + 20))).toEqual(expected(i, Math.min(N, i + 20)));
    expect(hdfs.log.some((l) => l.at === 'datanode' && l.op === 'OPEN')).toBe(true);
  });

  test('a server killed while a slow DataNode takes an upload finishes after restart: no partial file, nothing lost', async () => {
    let c = client!;
    await produce(c, N, 2 * N);
    hdfs.inject({ op: 'CREATE', at: 'datanode', kind: 'delay', times: 1, delay_ms: 3000 });
    const pending = c.archive().catch((e: unknown) => e);
    // Wait until the upload is at the DataNode, then kill.
    const until = Date.now() + 10_000;
    const seen = hdfs.log.length;
    while (Date.now() < until && !hdfs.log.slice(seen).some((l) => l.at === 'datanode' && l.op === 'CREATE')) await new Promise((r) => setTimeout(r, 20));
    expect(await stop('SIGKILL')).toBeNull();
    await pending;
    // The dead server's request is still at the slow DataNode; let it land (as an orphan temp file)
    // before the restart, so the next upload of that segment finds and removes it.
    await new Promise((r) => setTimeout(r, 3500));
    c = await start();
    const r = await c.archive();
    expect({ failures: r.failures, last_error: r.last_error }).toEqual({ failures: 0, last_error: '' });
    const files = readdirSync(join(tmp.dir, 'hdfs', 'warehouse', 'relaylog', 'train', '0'));
    expect(files.filter((f) => f.includes('.tmp-'))).toEqual([]);
    const p = (await c.describeTopic('train')).partitions[0]!;
    expect(files.filter((f) => f.endsWith('.log'))).toHaveLength(p.archived_segment_count);
    expect(await replay(c, { offset: 0 }, 2 * N)).toEqual(expected(0, 2 * N));
  });

  test('a fresh node restored from the WebHDFS archive alone serves every archived record', async () => {
    const archived = (await client!.describeTopic('train')).partitions[0]!;
    expect(await stop()).toBe(0);
    const fresh = join(tmp.dir, 'node2');
    const restored = await runCli(['restore', '--archive', hdfs.url('/warehouse/relaylog'), '--data', fresh]);
    expect(restored.code).toBe(0);
    const c = await start(fresh);
    const p = (await c.describeTopic('train')).partitions[0]!;
    expect(p.archived_segment_count).toBe(archived.archived_segment_count);
    expect(await replay(c, { offset: 0 }, p.high_watermark)).toEqual(expected(0, p.high_watermark));
  });
});
