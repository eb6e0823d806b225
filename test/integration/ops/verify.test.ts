import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { status } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { RelaylogClient } from '../../../client/index.js';
import { batchBaseOffset, batchLastOffsetDelta, encodeBatch, forEachBatch } from '../../../engine/index.js';
import { encodeMessage, messageType } from '../../../server/proto/load.js';
import { recordsOf } from '../../support/batches.js';
import { RawGrpc } from '../../support/grpc-raw.js';
import { assertFreshBuild, runCli, startServer, type ServerProcess } from '../../support/server-process.js';
import { tempDir } from '../../support/tmp.js';

/*
 * `relaylog verify` against a data dir written by the real server: clean (exit 0, text and JSON);
 * refused, like every offline ops command, while the server holds the dir; then one flipped byte in
 * a sealed segment: verify names the file, the byte and the offset (exit 1), and the restarted
 * server refuses exactly that batch with DATA_LOSS / CORRUPT_SEGMENT while serving every other one.
 */

beforeAll(() => assertFreshBuild());

const BATCHES = 60;
const RECORDS_PER_BATCH = 4;
const recordsOf_ = (i: number) => Array.from({ length: RECORDS_PER_BATCH }, (_, j) => ({ key: `k${i}-${j}`, value: `v${i}-${j}`.padEnd(300, '.') }));

interface VerifyJson {
  clean: boolean;
  partitions: number;
  ssd: { segments: number; batches: number; records: number };
  faults: Array<{ tier: string; kind: string; topic: string; partition: number; file: string; position: number | null; offset: number | null; reason: string }>;
  notes: unknown[];
}

describe('relaylog verify', () => {
  const tmp = tempDir('relaylog-ops-verify-');
  const data = join(tmp.dir, 'node');
  let server: ServerProcess | null = null;
  afterAll(async () => {
    await server?.stop('SIGKILL');
    tmp.cleanup();
  });

  test('a clean data dir: exit 0 with a summary, --json parses; every offline ops command is refused while the server holds the dir', async () => {
    server = await startServer(data, { extra_args: ['--compaction-interval', '0'] });
    const c = new RelaylogClient(server.address);
    await c.createTopic('train', { partitions: 2, config: { 'segment.bytes': String(16 * 1024) } });
    for (let i = 0; i < BATCHES; i++) await c.produce('train', 0, encodeBatch(recordsOf_(i)));
    for (let i = 0; i < 5; i++) await c.produce('train', 1, encodeBatch(recordsOf_(i)));
    c.close();

    const refusal = `relaylog: data dir ${data} is in use by another relaylog process (pid ${server.child.pid}); stop it first or choose another --data dir\n`;
    for (const args of [['verify'], ['inspect'], ['dump', '--topic', 'train'], ['archive', 'list']]) {
      const r = await runCli([...args, '--data', data]);
      expect({ args, code: r.code, stderr: r.stderr, stdout: r.stdout }).toEqual({ args, code: 1, stderr: refusal, stdout: '' });
    }

    expect(await server.stop()).toBe(0);
    server = null;
    const text = await runCli(['verify', '--data', data]);
    expect(text).toMatchObject({ code: 0, stderr: '' });
    expect(text.stdout).toMatch(new RegExp(`^verify ${data}: 1 topic\\(s\\), 2 partition\\(s\\), \\d+ SSD segment\\(s\\) \\([^)]*, ${BATCHES + 5} batches\\): clean\\n$`));
    const json = await runCli(['verify', '--data', data, '--json']);
    expect(json.code).toBe(0);
    const report = JSON.parse(json.stdout) as VerifyJson;
    expect(report).toMatchObject({ clean: true, partitions: 2, faults: [], notes: [] });
    expect(report.ssd.segments).toBeGreaterThan(4);
    expect(report.ssd).toMatchObject({ batches: BATCHES + 5, records: (BATCHES + 5) * RECORDS_PER_BATCH });
  });

  test('one flipped byte in a sealed segment: verify reports file, byte position and offset (exit 1); the server refuses that batch (DATA_LOSS) and serves every other', async () => {
    const dir = join(data, 'topics', 'train', '0');
    const files = readdirSync(dir).filter((f) => f.endsWith('.log')).sort();
    expect(files.length).toBeGreaterThan(3);
    // The second segment is sealed (only the last one is active); damage its third batch, inside
    // a record, where the CRC covers it but the framing stays intact.
    const file = join(dir, files[1]!);
    const bytes = readFileSync(file);
    const batches: Array<{ position: number; base: number; last: number }> = [];
    forEachBatch(bytes, (position) => batches.push({ position, base: batchBaseOffset(bytes, position), last: batchBaseOffset(bytes, position) + batchLastOffsetDelta(bytes, position) }));
    expect(batches.length).toBeGreaterThan(3);
    const bad = batches[2]!;
    bytes.writeUInt8(bytes.readUInt8(bad.position + 100) ^ 0xff, bad.position + 100);
    writeFileSync(file, bytes);

    const text = await runCli(['verify', '--data', data]);
    expect(text.code).toBe(1);
    expect(text.stderr).toBe('');
    expect(text.stdout).toContain(`FAULT ssd train/0 ${file} byte ${bad.position} offset ${bad.base}: CRC-32C mismatch`);
    expect(text.stdout).toMatch(/: 1 fault\(s\)\n$/);
    const json = await runCli(['verify', '--data', data, '--json']);
    expect(json.code).toBe(1);
    const report = JSON.parse(json.stdout) as VerifyJson;
    expect(report.clean).toBe(false);
    expect(report.faults).toEqual([{ tier: 'ssd', kind: 'batch', topic: 'train', partition: 0, file, position: bad.position, offset: bad.base, reason: expect.stringMatching(/^CRC-32C mismatch/) }]);
    // It went on past the fault: every other batch was still read.
    expect(report.ssd.batches).toBe(BATCHES + 5 - 1);
    // --topic names an unknown topic in one line.
    const other = await runCli(['verify', '--data', data, '--topic', 'nope']);
    expect(other).toMatchObject({ code: 1, stderr: 'relaylog: unknown topic "nope"\n' });

    server = await startServer(data, { extra_args: ['--compaction-interval', '0'] });
    const raw = new RawGrpc(server.address);
    const c = new RelaylogClient(server.address);
    try {
      const F = messageType('FetchRequest');
      for (const offset of [bad.base, bad.last]) {
        const r = await raw.unary('/relaylog.v1.Log/Fetch', encodeMessage(F, { topic: 'train', partition: 0, offset, max_bytes: 1 }));
        expect(r.code).toBe(status.DATA_LOSS);
        expect(r.trailer_code).toBe('CORRUPT_SEGMENT');
        expect(r.details).toContain(`corrupt segment ${file} at byte ${bad.position}: CRC-32C mismatch`);
      }
      // Every other batch, one Fetch each, before and after the bad one (bounded: one fetch per batch).
      const hw = (await c.listOffsets('train', 0, { position: 'latest' })).high_watermark;
      expect(hw).toBe(BATCHES * RECORDS_PER_BATCH);
      const served: number[] = [];
      let offset = 0;
      for (let n = 0; offset < hw && n < BATCHES; n++) {
        if (offset === bad.base) offset = bad.last + 1;
        const f = await c.fetch('train', 0, offset, 1);
        served.push(...recordsOf(f.records).map((r) => r.offset));
        offset = f.next_offset;
      }
      const expected = Array.from({ length: hw }, (_, i) => i).filter((o) => o < bad.base || o > bad.last);
      expect(served).toEqual(expected);
      expect(served.some((o) => o < bad.base) && served.some((o) => o > bad.last)).toBe(true);
    } finally {
      raw.close();
      c.close();
    }
    expect(await server.stop()).toBe(0);
    server = null;
  });
});
