import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { Consumer, RelaylogClient } from '../../../client/index.js';
import { encodeBatch, type DecodedRecord } from '../../../engine/index.js';
import { assertFreshBuild, runCli, startServer, type ServerProcess } from '../../support/server-process.js';
import { tempDir } from '../../support/tmp.js';

/* `relaylog compact` online (Admin.Compact through a running server) and offline (on a data dir). */

beforeAll(() => assertFreshBuild());

describe('relaylog compact', () => {
  const tmp = tempDir('relaylog-compact-');
  const data = join(tmp.dir, 'node');
  let server: ServerProcess | null = null;
  afterAll(async () => {
    await server?.stop('SIGKILL');
    tmp.cleanup();
  });

  async function latest(c: RelaylogClient, end: number): Promise<Map<string, string>> {
    const out = new Map<string, string>();
    const consumer = new Consumer(c, { topic: 'registry', from: { offset: 0 }, end_offset: end });
    const seen: DecodedRecord[] = [];
    for await (const r of consumer) seen.push(r);
    consumer.close();
    for (const r of seen) out.set(r.key!.toString(), r.value!.toString());
    return out;
  }

  test('online and offline, the latest value of every key survives and the log shrinks', async () => {
    server = await startServer(data, { extra_args: ['--compaction-interval', '0'] });
    const c = new RelaylogClient(server.address);
    await c.createTopic('registry', { config: { 'cleanup.policy': 'compact', 'segment.bytes': String(16 * 1024) } });
    await c.createTopic('plain');
    for (let round = 0; round < 8; round++) {
      for (let k = 0; k < 30; k++) await c.produce('registry', 0, encodeBatch([{ key: `model-${k}`, value: `v${round}`.padEnd(300, '.') }]));
    }
    const end = 8 * 30;
    const want = await latest(c, end);
    const described = (await c.describeTopic('registry')).partitions[0]!;
    const before = described.ssd_bytes;
    const online = await runCli(['compact', '--server', server.address, '--topic', 'registry', '--json']);
    expect(online.stderr).toBe('');
    const report = JSON.parse(online.stdout) as { segments_rewritten: number; segments_merged: number; records_removed: number };
    expect(report.segments_rewritten).toBeGreaterThan(2);
    // The shrunken segments were merged: fewer files, as many fewer as the report says.
    expect(report.segments_merged).toBeGreaterThan(0);
    expect((await c.describeTopic('registry')).partitions[0]!.segment_count).toBe(described.segment_count - report.segments_merged);
    expect(report.records_removed).toBeGreaterThan(100);
    expect((await c.describeTopic('registry')).partitions[0]!.ssd_bytes).toBeLessThan(before / 2);
    expect(await latest(c, end)).toEqual(want);
    // A topic that is not compacted is refused by name.
    const refused = await runCli(['compact', '--server', server.address, '--topic', 'plain']);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/cleanup\.policy=delete/);
    // Offline refuses while the server holds the data dir ...
    const locked = await runCli(['compact', '--data', data]);
    expect(locked.code).toBe(1);
    expect(locked.stderr).toMatch(/in use by another relaylog process/);
    c.close();
    expect(await server.stop()).toBe(0);
    server = null;
    // ... and runs once it is free (nothing left to do after the online pass).
    const offline = await runCli(['compact', '--data', data]);
    expect(offline.code).toBe(0);
    expect(offline.stdout).toMatch(/^compacted 1 partition\(s\): 0 segment\(s\) rewritten/);
  });
});
