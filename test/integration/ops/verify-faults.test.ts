import { appendFileSync, cpSync, openSync, closeSync, readdirSync, readFileSync, readSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { F_BATCH_LENGTH, LogStore, batchBaseOffset, batchSizeAt, encodeBatch, forEachBatch } from '../../../engine/index.js';
import { assertFreshBuild, runCli } from '../../support/server-process.js';
import { tempDir } from '../../support/tmp.js';

/*
 * `relaylog verify` on data dirs written by the engine and then damaged in the ways it must tell
 * apart: a torn tail after a crash (what the next open cuts: a note, exit 0), a broken length field
 * in a sealed segment (it resynchronises and checks every batch after the damage), a segment file
 * gone from the middle, and a data dir without its catalog.
 */

beforeAll(() => assertFreshBuild());

const BATCHES = 40;

interface Report {
  clean: boolean;
  ssd: { segments: number; batches: number };
  faults: Array<{ tier: string; kind: string; file: string; position: number | null; offset: number | null; reason: string }>;
  notes: Array<{ tier: string; file: string; message: string }>;
}

describe('relaylog verify tells damage from a torn tail and keeps going', () => {
  const tmp = tempDir('relaylog-ops-faults-');
  const pristine = join(tmp.dir, 'pristine');
  afterAll(() => tmp.cleanup());
  let n = 0;
  /** A fresh copy of the pristine data dir for one case. */
  const copy = () => {
    const d = join(tmp.dir, `case-${n++}`);
    cpSync(pristine, d, { recursive: true });
    return d;
  };
  const segDir = (d: string) => join(d, 'topics', 'a', '0');
  const segments = (d: string) => readdirSync(segDir(d)).filter((f) => f.endsWith('.log')).sort().map((f) => join(segDir(d), f));
  const verify = async (d: string) => {
    const r = await runCli(['verify', '--data', d, '--json']);
    expect(r.stderr).toBe('');
    return { code: r.code, report: JSON.parse(r.stdout) as Report };
  };

  beforeAll(async () => {
    const store = await LogStore.open({ dir: pristine, retention_check_interval_ms: 0, compaction_interval_ms: 0 });
    try {
      await store.createTopic('a', { segment_bytes: 16 * 1024 });
      const p = store.partition('a', 0);
      for (let i = 0; i < BATCHES; i++) await p.append(encodeBatch(Array.from({ length: 3 }, (_, j) => ({ key: `k${i}`, value: `v${i}-${j}`.padEnd(400, '-') }))));
    } finally {
      await store.close();
    }
  });

  test('a torn tail in the active segment after a crash is a note, not a fault (exit 0)', async () => {
    const d = join(tmp.dir, 'crashed');
    const store = await LogStore.open({ dir: d, retention_check_interval_ms: 0, compaction_interval_ms: 0 });
    await store.createTopic('a', { segment_bytes: 16 * 1024 });
    for (let i = 0; i < 10; i++) await store.partition('a', 0).append(encodeBatch([{ value: `v${i}`.padEnd(400, '-') }]));
    await store.abandon(); // as a killed process: no clean-close record
    const active = segments(d).at(-1)!;
    appendFileSync(active, Buffer.alloc(300)); // zero fill past the last fsync
    const { code, report } = await verify(d);
    expect(code).toBe(0);
    expect(report.clean).toBe(true);
    expect(report.notes).toContainEqual({ tier: 'ssd', topic: 'a', partition: 0, file: active, message: expect.stringMatching(/^torn tail: 300 byte\(s\) from byte \d+ were never acknowledged as durable .*; the next open cuts them$/) });
  });

  test('a torn rolled segment whose background fdatasync never finished is a tail too: verify and the next open agree', async () => {
    const d = join(tmp.dir, 'rolled-unsynced');
    const store = await LogStore.open({ dir: d, retention_check_interval_ms: 0, compaction_interval_ms: 0 });
    await store.createTopic('a', { segment_bytes: 16 * 1024, fsync: { policy: 'never' } });
    for (let i = 0; i < 120; i++) await store.partition('a', 0).append(encodeBatch([{ value: `v${i}`.padEnd(400, '-') }]));
    // What a power loss can leave: segment 1's seal never reached the catalog, nothing after it
    // was made durable, and the disk kept only part of its last batch.
    const files = segments(d);
    expect(files.length).toBeGreaterThanOrEqual(3);
    const recs = store.catalog.listSegments(['a', 0]);
    for (const r of recs.slice(1)) await store.catalog.putSegment(['a', 0], r.base_offset, { ...r.record, sealed: false, durable_bytes: 0 });
    await store.abandon();
    const size = readFileSync(files[1]!).length;
    writeFileSync(files[1]!, readFileSync(files[1]!).subarray(0, size - 100));
    const { code, report } = await verify(d);
    expect(report.faults).toEqual([]);
    expect(code).toBe(0);
    expect(report.notes).toContainEqual({ tier: 'ssd', topic: 'a', partition: 0, file: files[1]!, message: expect.stringMatching(new RegExp(`^torn tail: \\d+ byte\\(s\\) from byte \\d+ .*; the next open cuts them and deletes the ${files.length - 2} later segment\\(s\\)$`)) });
    for (const f of files.slice(2)) expect(report.notes).toContainEqual({ tier: 'ssd', topic: 'a', partition: 0, file: f, message: expect.stringMatching(/never made durable; the next open deletes it$/) });
    // The next open does what verify said.
    const reopened = await LogStore.open({ dir: d, retention_check_interval_ms: 0, compaction_interval_ms: 0 });
    try {
      expect(segments(d)).toEqual(files.slice(0, 2));
      expect(reopened.partition('a', 0).highWatermark).toBe(recs[2]!.base_offset - 1);
    } finally {
      await reopened.close();
    }
    expect((await verify(d)).report.clean).toBe(true);
  });

  test('a broken length field in a sealed segment: the fault is reported and every later batch is still checked', async () => {
    const d = copy();
    const file = segments(d)[1]!;
    const bytes = readFileSync(file);
    const starts: number[] = [];
    forEachBatch(bytes, (pos) => starts.push(pos));
    const pos = starts[1]!;
    const base = batchBaseOffset(bytes, pos);
    bytes.writeInt32BE(0x7fff0000, pos + F_BATCH_LENGTH);
    writeFileSync(file, bytes);
    const { code, report } = await verify(d);
    expect(code).toBe(1);
    expect(report.faults).toEqual([
      { tier: 'ssd', kind: 'batch', topic: 'a', partition: 0, file, position: pos, offset: base, reason: expect.stringMatching(/^batch length \d+ is larger than any batch relaylog writes; \d+ byte\(s\) up to the next sound batch$/) },
    ]);
    expect(report.ssd.batches).toBe(BATCHES - 1);
  });

  test('a segment file missing from the middle is a fault; so is the gap it leaves', async () => {
    const d = copy();
    const files = segments(d);
    expect(files.length).toBeGreaterThan(3);
    rmSync(files[1]!);
    const { code, report } = await verify(d);
    expect(code).toBe(1);
    expect(report.faults.map((f) => [f.kind, f.file])).toEqual([
      ['continuity', files[2]],
      ['missing', files[1]],
    ]);
  });

  test('without a catalog, every segment is still checked (exit 0)', async () => {
    const d = copy();
    rmSync(join(d, 'catalog'), { recursive: true });
    const { code, report } = await verify(d);
    expect(code).toBe(0);
    expect(report).toMatchObject({ clean: true, ssd: { batches: BATCHES } });
    expect(readdirSync(d)).not.toContain('catalog'); // verify created nothing
  });
  test('big segments: batches larger than the read-ahead spill, across 8 MiB chunk boundaries; archived copies checked whole (CRC-32C across chunks)', async () => {
    const d = join(tmp.dir, 'big');
    const archive = join(tmp.dir, 'big-archive');
    const url = `file://${archive}`;
    const store = await LogStore.open({ dir: d, archive_url: url, archive_interval_ms: 0, retention_check_interval_ms: 0, compaction_interval_ms: 0 });
    let count = 0;
    try {
      await store.createTopic('big', { segment_bytes: 64 * 1024 * 1024 });
      const p = store.partition('big', 0);
      // About 30 MiB: mostly 100 KiB batches, every eighth a 3 MiB one (bigger than the 1 MiB spill).
      for (let i = 0; i < 72; i++) {
        const size = i % 8 === 7 ? 3 * 1024 * 1024 : 100 * 1024;
        await p.append(encodeBatch([{ key: `k${i}`, value: Buffer.alloc(size, i & 0xff) }]));
        count++;
      }
      await p.roll();
      await p.append(encodeBatch([{ value: 'tail' }]));
      count++;
      expect((await store.archiveAndRetain()).uploaded).toBe(1);
    } finally {
      await store.close();
    }
    expect(await runCli(['verify', '--data', d, '--archive', url])).toMatchObject({ code: 0, stderr: '' });
    const clean = await verify(d);
    expect(clean.report).toMatchObject({ clean: true, ssd: { batches: count } });

    // Damage the local copy: a flipped byte in the batch that spans the 8 MiB boundary, and a
    // length field shortened (but plausible) in the first batch after 16 MiB, which forces the
    // walk to search back through bytes it had already passed.
    const file = join(d, 'topics', 'big', '0', '00000000000000000000.log');
    const bytes = readFileSync(file);
    const starts: number[] = [];
    forEachBatch(bytes, (pos) => starts.push(pos));
    const across = starts.find((s) => s < 8 * 1024 * 1024 && s + batchSizeAt(bytes, s) > 8 * 1024 * 1024)!;
    const after16 = starts.find((s) => s > 16 * 1024 * 1024)!;
    const fd = openSync(file, 'r+');
    try {
      const b = Buffer.alloc(1);
      const flipAt = Math.max(across + 21, Math.min(8 * 1024 * 1024 + 10, across + batchSizeAt(bytes, across) - 1));
      readSync(fd, b, 0, 1, flipAt);
      b[0] = b[0]! ^ 0xff;
      writeSync(fd, b, 0, 1, flipAt);
      const len = Buffer.alloc(4);
      len.writeInt32BE(batchSizeAt(bytes, after16) - 12 - 500);
      writeSync(fd, len, 0, 4, after16 + F_BATCH_LENGTH);
    } finally {
      closeSync(fd);
    }
    const { code, report } = await verify(d);
    expect(code).toBe(1);
    expect(report.faults.map((f) => [f.tier, f.kind, f.position, f.offset])).toEqual([
      ['ssd', 'batch', across, batchBaseOffset(bytes, across)],
      ['ssd', 'batch', after16, batchBaseOffset(bytes, after16)],
    ]);
    expect(report.faults.every((f) => / up to the next sound batch$/.test(f.reason))).toBe(true);
    expect(report.ssd.batches).toBe(count - 2);
    // The archived copy is intact (its whole-content CRC-32C, computed across chunks, matches).
    const withArchive = JSON.parse((await runCli(['verify', '--data', d, '--archive', url, '--json'])).stdout) as Report & { archive: { segments: number; batches: number } };
    expect(withArchive.faults.map((f) => f.tier)).toEqual(['ssd', 'ssd']);
    expect(withArchive.archive).toMatchObject({ segments: 1, batches: count - 1 });
  });
});
