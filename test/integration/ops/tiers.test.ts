import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { RelaylogClient } from '../../../client/index.js';
import { batchBaseOffset, crc32c, encodeBatch, forEachBatch } from '../../../engine/index.js';
import { assertFreshBuild, runCli, startServer, type ServerProcess } from '../../support/server-process.js';
import { tempDir } from '../../support/tmp.js';

/*
 * The offline ops commands on a data dir whose oldest segments live only in the archive tier
 * (file:// backend), written by the real server: `inspect` (tiers, totals; changes nothing),
 * `archive list` (from the archive's manifest, also while the server runs, and from the catalog),
 * `dump` through both tiers, and `verify` of archived segments against their manifest.
 */

beforeAll(() => assertFreshBuild());

const BATCHES = 80;
const PER_BATCH = 4;
const N = BATCHES * PER_BATCH;
const T0 = Date.now() - 3600_000; // recent: older records would rightly fall to retention.ms
const keyOf = (i: number) => `k${i}`;
const valueOf = (i: number) => `v${i}|`.repeat(60);
const tsOf = (i: number) => T0 + i * 10;

/** Every file under `dir` (but the lock files, which a lock holder writes) -> sha256 and mtime. */
function snapshot(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.name !== '.lock' && e.name !== 'lock.mdb') out[relative(dir, p)] = `${createHash('sha256').update(readFileSync(p)).digest('hex')} ${statSync(p).mtimeMs}`;
    }
  };
  walk(dir);
  return out;
}

interface InspectJson {
  topics: Array<{
    name: string;
    partitions: Array<{
      partition: number;
      log_start_offset: number;
      log_end_offset: number;
      segments: Array<{ tier: string; base_offset: number; next_offset: number; size_bytes: number; state: string; first_timestamp: string | null; max_timestamp: string | null; path: string | null; archive_path: string | null }>;
      totals: { segments: number; ssd_segments: number; ssd_bytes: number; archive_segments: number; archive_bytes: number };
    }>;
  }>;
  totals: { segments: number };
}

interface ListJson {
  source: string;
  segments: Array<{ topic: string; partition: number; base_offset: number; next_offset: number; size_bytes: number; crc32c: string; first_timestamp: string | null; max_timestamp: string | null; path: string }>;
}

describe('ops commands across the SSD and archive tiers', () => {
  const tmp = tempDir('relaylog-ops-tiers-');
  const data = join(tmp.dir, 'node');
  const archive_dir = join(tmp.dir, 'archive');
  const archive_url = `file://${archive_dir}`;
  let server: ServerProcess | null = null;
  afterAll(async () => {
    await server?.stop('SIGKILL');
    tmp.cleanup();
  });

  test('archive list reads the manifest while the server runs; inspect shows each tier and changes nothing', async () => {
    server = await startServer(data, { extra_args: ['--archive', archive_url, '--archive-interval', '0', '--compaction-interval', '0'] });
    const c = new RelaylogClient(server.address);
    await c.createTopic('train', { config: { 'segment.bytes': String(16 * 1024), 'local.retention.bytes': String(40 * 1024) } });
    await c.createTopic('other');
    for (let b = 0; b < BATCHES; b++) {
      const recs = Array.from({ length: PER_BATCH }, (_, j) => b * PER_BATCH + j).map((i) => ({ key: keyOf(i), value: valueOf(i), timestamp_ms: tsOf(i) }));
      await c.produce('train', 0, encodeBatch(recs));
    }
    await c.produce('other', 0, encodeBatch([{ value: 'x' }]));
    const r = await c.archive();
    expect(r.failures).toBe(0);
    expect(r.uploaded).toBeGreaterThan(3);
    expect(r.deleted).toBeGreaterThan(1);
    c.close();

    const archived_files = readdirSync(join(archive_dir, 'train', '0')).filter((f) => f.endsWith('.log')).sort();
    const live = await runCli(['archive', 'list', '--archive', archive_url, '--json']);
    expect(live).toMatchObject({ code: 0, stderr: '' });
    const listed = JSON.parse(live.stdout) as ListJson;
    expect(listed.source).toBe('archive');
    expect(listed.segments.map((s) => s.path)).toEqual(archived_files.map((f) => `train/0/${f}`));
    for (const s of listed.segments) {
      const bytes = readFileSync(join(archive_dir, s.path));
      expect(s).toMatchObject({ topic: 'train', partition: 0, size_bytes: bytes.length, crc32c: `0x${crc32c(bytes).toString(16).padStart(8, '0')}`, first_timestamp: new Date(tsOf(s.base_offset)).toISOString() });
      expect(s.max_timestamp).toBe(new Date(tsOf(s.next_offset - 1)).toISOString());
    }
    // Contiguous from offset 0.
    expect(listed.segments[0]!.base_offset).toBe(0);
    for (let i = 1; i < listed.segments.length; i++) expect(listed.segments[i]!.base_offset).toBe(listed.segments[i - 1]!.next_offset);
    const text = await runCli(['archive', 'list', '--archive', archive_url, '--topic', 'train']);
    expect(text.code).toBe(0);
    expect(text.stdout.split('\n')[0]).toMatch(/^topic +partition +base-offset +next-offset +bytes +crc32c +first-timestamp +max-timestamp +path$/);
    expect(text.stdout).toMatch(new RegExp(`^${listed.segments.length} archived segment\\(s\\), .* \\(from the manifest of ${archive_url}\\)$`, 'm'));
    // Usage: exactly one source.
    expect((await runCli(['archive', 'list'])).code).toBe(2);
    expect((await runCli(['archive', 'list', '--data', data, '--archive', archive_url])).code).toBe(2);

    expect(await server.stop()).toBe(0);
    server = null;
    // From the data dir's catalog: the same segments.
    const fromCatalog = JSON.parse((await runCli(['archive', 'list', '--data', data, '--json'])).stdout) as ListJson;
    expect(fromCatalog.source).toBe('catalog');
    expect(fromCatalog.segments.map((s) => [s.base_offset, s.next_offset, s.size_bytes, s.crc32c])).toEqual(listed.segments.map((s) => [s.base_offset, s.next_offset, s.size_bytes, s.crc32c]));

    const before = snapshot(data);
    const ij = await runCli(['inspect', '--data', data, '--json']);
    expect(ij).toMatchObject({ code: 0, stderr: '' });
    const report = JSON.parse(ij.stdout) as InspectJson;
    expect(report.topics.map((t) => t.name)).toEqual(['other', 'train']);
    const p = report.topics[1]!.partitions[0]!;
    expect(p).toMatchObject({ partition: 0, log_start_offset: 0, log_end_offset: N });
    const tiers = p.segments.map((s) => s.tier);
    const archive_only = listed.segments.filter((s) => !p.segments.some((x) => x.tier !== 'archive' && x.base_offset === s.base_offset));
    expect(archive_only.length).toBeGreaterThan(0);
    expect(tiers).toEqual([...archive_only.map(() => 'archive'), ...tiers.slice(archive_only.length)]);
    expect(tiers.slice(archive_only.length).every((t) => t === 'ssd' || t === 'ssd+archive')).toBe(true);
    expect(tiers.at(-1)).toBe('ssd');
    expect(p.segments.at(-1)!.state).toBe('active');
    for (let i = 1; i < p.segments.length; i++) expect(p.segments[i]!.base_offset).toBe(p.segments[i - 1]!.next_offset);
    const local_files = readdirSync(join(data, 'topics', 'train', '0')).filter((f) => f.endsWith('.log')).sort();
    expect(p.segments.filter((s) => s.tier !== 'archive').map((s) => s.path)).toEqual(local_files.map((f) => join(data, 'topics', 'train', '0', f)));
    expect(p.totals).toMatchObject({
      segments: p.segments.length,
      ssd_segments: local_files.length,
      ssd_bytes: local_files.reduce((n, f) => n + statSync(join(data, 'topics', 'train', '0', f)).size, 0),
      archive_segments: listed.segments.length,
      archive_bytes: listed.segments.reduce((n, s) => n + s.size_bytes, 0),
    });
    // SSD segments carry their time range; archive-only ones their newest timestamp (the first needs --archive).
    expect(p.segments.at(-2)!.first_timestamp).toBe(new Date(tsOf(p.segments.at(-2)!.base_offset)).toISOString());
    expect(p.segments[0]!).toMatchObject({ first_timestamp: null, max_timestamp: new Date(tsOf(p.segments[0]!.next_offset - 1)).toISOString() });
    const withArchive = JSON.parse((await runCli(['inspect', '--data', data, '--topic', 'train', '--archive', archive_url, '--json'])).stdout) as InspectJson;
    expect(withArchive.topics[0]!.partitions[0]!.segments[0]!.first_timestamp).toBe(new Date(tsOf(0)).toISOString());
    const it = await runCli(['inspect', '--data', data, '--topic', 'train']);
    expect(it.code).toBe(0);
    expect(it.stdout).toMatch(/^topic train \(cleanup\.policy=delete, segment\.bytes=16384\): 1 partition\(s\), /);
    expect(it.stdout).toMatch(new RegExp(`^ +partition 0: offsets 0\\.\\.${N}, `, 'm'));
    expect(it.stdout).toMatch(/^ +tier +base-offset +next-offset +bytes +first-timestamp +max-timestamp +state$/m);
    expect(it.stdout).toMatch(/^ +archive +0 +\d+ +\d+ +- +\S+Z +sealed$/m);
    expect(it.stdout).toMatch(/^ +ssd +\d+ +\d+ +\d+ +\S+Z +\S+Z +active$/m);
    // Nothing in the data dir changed (contents and mtimes), only the lock files were touched.
    expect(snapshot(data)).toEqual(before);
  });

  test('dump reads archived offsets through --archive and SSD offsets from the files, across the boundary', async () => {
    const json = await runCli(['dump', '--data', data, '--topic', 'train', '--archive', archive_url, '--json']);
    expect(json).toMatchObject({ code: 0, stderr: '' });
    const all = json.stdout.trim().split('\n').map((l) => JSON.parse(l) as { offset: number; timestamp: string; key: { utf8: string }; value: { size: number; utf8: string; truncated: boolean }; headers: number });
    expect(all.map((r) => r.offset)).toEqual(Array.from({ length: N }, (_, i) => i));
    for (const r of all) {
      expect(r).toMatchObject({ timestamp: new Date(tsOf(r.offset)).toISOString(), key: { utf8: keyOf(r.offset) }, value: { size: valueOf(r.offset).length, utf8: valueOf(r.offset).slice(0, 64), truncated: true }, headers: 0 });
    }
    // Without --archive, archived offsets are refused by name; SSD offsets still dump.
    const refused = await runCli(['dump', '--data', data, '--topic', 'train']);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/^relaylog: offsets 0\.\.\d+ of train\/0 are only in the archive tier; give --archive URL/);
    const inspect = JSON.parse((await runCli(['inspect', '--data', data, '--topic', 'train', '--json'])).stdout) as InspectJson;
    const first_local = inspect.topics[0]!.partitions[0]!.segments.find((s) => s.tier !== 'archive')!.base_offset;
    const tail = await runCli(['dump', '--data', data, '--topic', 'train', '--from-offset', String(first_local), '--max', '3']);
    expect(tail.code).toBe(0);
    expect(tail.stdout).toBe(
      [0, 1, 2].map((d) => `offset=${first_local + d} timestamp=${new Date(tsOf(first_local + d)).toISOString()} key=[${keyOf(first_local + d).length}]${JSON.stringify(keyOf(first_local + d))} value=[${valueOf(first_local + d).length}]${JSON.stringify(valueOf(first_local + d).slice(0, 64))}… headers=0\n`).join(''),
    );
    const across = await runCli(['dump', '--data', data, '--topic', 'train', '--archive', archive_url, '--from-offset', String(first_local - 2), '--max', '4', '--json']);
    expect(across.stdout.trim().split('\n').map((l) => (JSON.parse(l) as { offset: number }).offset)).toEqual([first_local - 2, first_local - 1, first_local, first_local + 1]);
    expect((await runCli(['dump', '--data', data, '--topic', 'train', '--from-offset', String(N + 1)])).stderr).toMatch(/^relaylog: offset \d+ is out of range for train\/0: valid offsets are 0\.\.\d+/);
  });

  test('verify checks archived segments against the manifest: clean, then a damaged archived copy is a fault (exit 1)', async () => {
    const without = await runCli(['verify', '--data', data, '--json']);
    expect(without.code).toBe(0);
    const w = JSON.parse(without.stdout) as { clean: boolean; archive: { segments: number; not_checked: number }; notes: Array<{ tier: string; message: string }> };
    expect(w).toMatchObject({ clean: true, archive: { segments: 0 } });
    expect(w.archive.not_checked).toBeGreaterThan(0);
    expect(w.notes).toContainEqual(expect.objectContaining({ tier: 'archive', message: expect.stringMatching(/not checked: give --archive URL/) }));
    const clean = await runCli(['verify', '--data', data, '--archive', archive_url]);
    expect(clean).toMatchObject({ code: 0, stderr: '' });
    expect(clean.stdout).toMatch(/\d+ archived segment\(s\) \([^)]*\): clean\n$/);

    // Damage the first archived segment (no longer on SSD) inside its second batch.
    const path = join(archive_dir, 'train', '0', '00000000000000000000.log');
    const bytes = readFileSync(path);
    const starts: number[] = [];
    forEachBatch(bytes, (pos) => starts.push(pos));
    const pos = starts[1]!;
    const base = batchBaseOffset(bytes, pos);
    bytes.writeUInt8(bytes.readUInt8(pos + 80) ^ 0x01, pos + 80);
    writeFileSync(path, bytes);
    const r = await runCli(['verify', '--data', data, '--archive', archive_url, '--json']);
    expect(r.code).toBe(1);
    const report = JSON.parse(r.stdout) as { clean: boolean; faults: Array<Record<string, unknown>> };
    expect(report.clean).toBe(false);
    const file = `${archive_url}/train/0/00000000000000000000.log`;
    expect(report.faults).toEqual([
      { tier: 'archive', kind: 'manifest', topic: 'train', partition: 0, file, position: 0, offset: 0, reason: expect.stringMatching(/^the CRC-32C of the archived file is 0x[0-9a-f]+, the manifest says 0x[0-9a-f]+$/) },
      { tier: 'archive', kind: 'batch', topic: 'train', partition: 0, file, position: pos, offset: base, reason: expect.stringMatching(/^CRC-32C mismatch/) },
    ]);
    const text = await runCli(['verify', '--data', data, '--archive', archive_url]);
    expect(text.stdout).toContain(`FAULT archive train/0 ${file} byte ${pos} offset ${base}: CRC-32C mismatch`);
  });
});
