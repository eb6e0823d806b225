import { mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, expect, test } from 'vitest';
import { LogStore, ManualClock } from '../../../engine/index.js';
import { batchOf, digestRecords, readAll } from '../../support/batches.js';
import { tempDir } from '../../support/tmp.js';

let dir: string;
let cleanup: () => void;
beforeEach(() => ({ dir, cleanup } = tempDir()));
afterEach(() => cleanup());

const T0 = 1_700_000_000_000;
const repo = fileURLToPath(new URL('../../..', import.meta.url));

async function openNode(name: string, archive: string, clock: ManualClock) {
  return LogStore.open({
    dir: join(dir, name),
    clock,
    disk_free_floor_bytes: 0,
    retention_check_interval_ms: 0,
    archive_interval_ms: 0,
    archive_url: `file://${archive}`,
    archive_cache_bytes: 256 * 1024,
    memory_tier_bytes: 32 * 1024,
  });
}

describe('archive tier (file:// backend)', () => {
  test('sealed segments are uploaded, leave SSD only once verified, and every tier serves reads by offset and time', async () => {
    const archive = join(dir, 'archive');
    const clock = new ManualClock(T0);
    const s = await openNode('node1', archive, clock);
    try {
      await s.createTopic('t', { segment_bytes: 16 * 1024, local_retention_bytes: 20 * 1024 });
      const p = s.partition('t', 0);
      for (let i = 0; i < 300; i++) await p.append(batchOf(2, `r${i}`, T0 + i * 1000, 200));
      const want = await readAll(p);
      const r = await s.archiveAndRetain();
      expect(r.failures).toBe(0);
      expect(r.uploaded).toBeGreaterThan(5);
      const st = p.stats();
      expect(st.archived_segment_count).toBe(r.uploaded);
      expect(st.size_bytes).toBeLessThan(20 * 1024 + 16 * 1024); // local copies beyond local retention are gone
      expect(st.log_start_offset).toBe(0); // ... but the log still starts at 0, in the archive
      expect(readdirSync(join(archive, 't', '0')).filter((f) => f.endsWith('.log')).length).toBe(r.uploaded);
      expect(readdirSync(join(archive, 't', '0')).filter((f) => f.endsWith('.json')).length).toBe(r.uploaded);

      expect(await readAll(p)).toEqual(want);
      expect(p.io.archive_reads).toBeGreaterThan(0);
      expect(p.io.disk_reads).toBeGreaterThan(0);
      expect(p.io.memory_reads).toBeGreaterThan(0);
      // Timestamp lookups resolve in the archive too (index entries were kept).
      expect(await p.offsetForTimestamp(T0 + 10_500)).toBe(22);
      expect(await p.offsetForTimestamp(T0 + 299_000)).toBe(598);
    } finally {
      await s.close();
    }
  });

  test('a new node with an empty data dir rebuilds its catalog from the archive alone and continues the log', async () => {
    const archive = join(dir, 'archive');
    const clock = new ManualClock(T0);
    const a = await openNode('node1', archive, clock);
    await a.createTopic('t', { segment_bytes: 16 * 1024, partitions: 2 });
    for (let i = 0; i < 200; i++) await a.partition('t', i % 2).append(batchOf(3, `r${i}`, T0 + i, 150));
    await a.partition('t', 0).roll();
    await a.partition('t', 1).roll();
    await a.archiveAndRetain();
    const want0 = await readAll(a.partition('t', 0));
    const end0 = a.partition('t', 0).highWatermark;
    await a.close();

    const b = await openNode('node2', archive, clock);
    try {
      expect(b.listTopics().map((t) => t.name)).toEqual(['t']);
      expect(b.topic('t').config.segment_bytes).toBe(16 * 1024);
      const p = b.partition('t', 0);
      expect(p.logStartOffset).toBe(0);
      expect(p.highWatermark).toBe(end0);
      expect(await readAll(p)).toEqual(want0);
      expect(p.io.disk_reads).toBe(0);
      expect(await p.append(batchOf(1, 'next'))).toEqual({ base_offset: end0, last_offset: end0 });
      expect(await b.partition('t', 0).offsetForTimestamp(T0 + 100)).toBe(150);
    } finally {
      await b.close();
    }
  });

  test('total retention removes archived segments too; deleting a topic removes its archive', async () => {
    const archive = join(dir, 'archive');
    const clock = new ManualClock(T0);
    const s = await openNode('node1', archive, clock);
    try {
      await s.createTopic('t', { segment_bytes: 16 * 1024, local_retention_bytes: 0, retention_ms: 3_600_000 });
      const p = s.partition('t', 0);
      for (let i = 0; i < 100; i++) await p.append(batchOf(2, `old${i}`, T0, 200));
      await s.archiveAndRetain();
      expect(p.stats().archived_segment_count).toBeGreaterThan(2);
      for (let i = 0; i < 10; i++) await p.append(batchOf(2, `new${i}`, T0 + 7_200_000, 200));
      clock.set(T0 + 7_200_000);
      await s.archiveAndRetain();
      expect(p.logStartOffset).toBeGreaterThan(0);
      const left = (await readAll(p)).map((r) => r.value!.toString());
      expect(left.filter((v) => v.startsWith('old')).length).toBeLessThan(40);
      expect(left.filter((v) => v.startsWith('new')).length).toBe(20);
      const archived_files = readdirSync(join(archive, 't', '0')).filter((f) => f.endsWith('.log'));
      expect(archived_files.length).toBe(p.stats().archived_segment_count);
      await s.deleteTopic('t');
      expect(readdirSync(join(archive, 't', '0')).length).toBe(0);
    } finally {
      await s.close();
    }
  });

  test('an upload that died after its sidecar but before the catalog record is accepted on the next attempt', async () => {
    const archive = join(dir, 'archive');
    const clock = new ManualClock(T0);
    let s = await openNode('node1', archive, clock);
    await s.createTopic('t', { segment_bytes: 16 * 1024, local_retention_bytes: -1 });
    let p = s.partition('t', 0);
    for (let i = 0; i < 60; i++) await p.append(batchOf(2, `r${i}`, T0 + i, 200));
    expect((await s.archiveAndRetain()).failures).toBe(0);
    const archived = p.stats().archived_segment_count;
    const last = s.catalog.listArchived(['t', 0]).pop()!;
    // The kill -9 window: segment and sidecar are in the archive, the catalog never recorded it.
    await s.catalog.removeArchived(['t', 0], last.base_offset);
    await s.close();
    clock.advance(60_000); // the retry writes a different upload time into its sidecar
    s = await openNode('node1', archive, clock);
    try {
      p = s.partition('t', 0);
      expect(p.stats().archived_segment_count).toBe(archived - 1);
      const r = await s.archiveAndRetain();
      expect({ failures: r.failures, uploaded: r.uploaded, last_error: s.archive!.metrics.last_error }).toEqual({ failures: 0, uploaded: 1, last_error: '' });
      expect(s.catalog.listArchived(['t', 0]).pop()).toEqual(last); // the sidecar's record, as first written
      expect(readdirSync(join(archive, 't', '0')).filter((f) => f.endsWith('.json'))).toHaveLength(archived);
    } finally {
      await s.close();
    }
  });

  test('a permanently failing archive keeps every segment on SSD and reports the failure', async () => {
    const archive = join(dir, 'archive');
    mkdirSync(archive);
    writeFileSync(join(archive, 't'), 'a file where the topic directory should be'); // every upload fails
    const clock = new ManualClock(T0);
    const warnings: string[] = [];
    const s = await LogStore.open({
      dir: join(dir, 'node1'),
      clock,
      disk_free_floor_bytes: 0,
      retention_check_interval_ms: 0,
      archive_interval_ms: 0,
      archive_url: `file://${archive}`,
      logger: { info: () => undefined, warn: (_o, msg) => void warnings.push(msg) },
    });
    try {
      await s.createTopic('t', { segment_bytes: 16 * 1024, local_retention_bytes: 0 });
      const p = s.partition('t', 0);
      for (let i = 0; i < 100; i++) await p.append(batchOf(2, `r${i}`, T0, 200));
      const before = p.stats();
      const r = await s.archiveAndRetain();
      expect(r.failures).toBe(1);
      expect(warnings[0]).toMatch(/archive upload failed; local segments kept/);
      expect(s.archive!.metrics.upload_failures).toBe(1);
      expect(p.stats().segment_count).toBe(before.segment_count);
      expect((await readAll(p)).length).toBe(200);
      rmSync(join(archive, 't'));
      clock.advance(120_000); // past the backoff
      expect((await s.archiveAndRetain()).uploaded).toBeGreaterThan(0);
      expect(p.stats().segment_count).toBe(1);
      expect((await readAll(p)).length).toBe(200);
    } finally {
      await s.close();
    }
  });
  test('a node killed (SIGKILL) mid-upload uploads again after restart: no partial file visible, no duplicate, nothing lost', async () => {
    const archive = join(dir, 'archive');
    const clock = new ManualClock(T0);
    let s = await openNode('node1', archive, clock);
    await s.createTopic('t', { segment_bytes: 4 * 1024 * 1024, local_retention_bytes: 0 });
    let p = s.partition('t', 0);
    for (let i = 0; i < 40; i++) await p.append(batchOf(1, `r${i}`, T0, 250_000)); // ~10 MB, 3 sealed segments
    const want = digestRecords(await readAll(p));
    await s.close();
    // A real process starts uploading and is killed with SIGKILL while it is at it.
    const script = `import('${join(repo, 'dist/engine/index.js')}').then(async (m) => {
      const s = await m.LogStore.open({ dir: process.argv[1], disk_free_floor_bytes: 0, retention_check_interval_ms: 0,
        archive_interval_ms: 0, archive_url: process.argv[2], memory_tier_bytes: 32 * 1024 });
      console.log('UPLOADING');
      await s.archiveAndRetain();
      console.log('DONE');
    })`;
    const child = spawn(process.execPath, ['--input-type=module', '-e', script, join(dir, 'node1'), `file://${archive}`], { stdio: ['ignore', 'pipe', 'inherit'] });
    // Listened for from the start: on a loaded machine the child can finish its upload and exit on
    // its own before the kill below, and an 'exit' listener added after that would wait forever.
    const exited = new Promise((r) => child.once('exit', r));
    await new Promise<void>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error('child never started uploading')), 20_000);
      child.stdout.on('data', (d: Buffer) => d.toString().includes('UPLOADING') && (clearTimeout(t), setTimeout(resolve, 20)));
    });
    child.kill('SIGKILL');
    await exited;
    s = await openNode('node1', archive, clock);
    try {
      p = s.partition('t', 0);
      const r = await s.archiveAndRetain();
      expect(r.failures).toBe(0);
      const files = readdirSync(join(archive, 't', '0'));
      expect(files.filter((f) => f.includes('.tmp-'))).toEqual([]);
      expect(files.filter((f) => f.endsWith('.log')).length).toBe(p.stats().archived_segment_count);
      expect(p.stats().segment_count).toBe(1); // local copies went only after verified uploads
      expect(digestRecords(await readAll(p))).toEqual(want);
    } finally {
      await s.close();
    }
  });
});
