/**
 * Ops-tools benchmark (issue 8): compaction throughput and `relaylog verify` throughput, each in MB/s
 * of segment bytes read, reported as a ratio to the raw sequential read rate of the same files
 * measured in the same run (a plain fs read loop, 4 MiB reads; the page cache is NOT dropped: the
 * files were just written or copied, so the raw rate is a warm-cache read, and so are the others).
 *
 * The data: one partition of a keyed topic (cleanup.policy=compact), 1 KiB values in batches of 64
 * records, keys written round-robin so that each key is written 10 times: 10% of the records are
 * the latest of their key and survive compaction.
 *
 *   npm run bench:ops              (BENCH_OPS_BYTES=1073741824 by default; BENCH_RUNS=3)
 *   BENCH_OPS_BYTES=67108864 npm run bench:ops
 *
 * Compaction is destructive, so each compaction run works on a fresh copy of the data dir (copied
 * before timing; the copy warms the page cache the same way for the raw read measured next to it).
 */
import { spawnSync } from 'node:child_process';
import { cpSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LogStore, encodeBatch } from '../engine/index.js';
import { runVerify } from '../server/cli/ops/verify.js';
import { rawRead } from './raw-read.js';

const TOTAL_BYTES = Number(process.env.BENCH_OPS_BYTES ?? 1024 * 1024 * 1024);
const RUNS = Number(process.env.BENCH_RUNS ?? 3);
const VALUE_BYTES = 1024;
const BATCH_RECORDS = 64;
const SEGMENT_BYTES = 64 * 1024 * 1024;
const LIVE_FRACTION = 0.1;
const READ_BYTES = 4 * 1024 * 1024;

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const mbps = (bytes: number, ms: number) => bytes / (1024 * 1024) / (ms / 1000);
/** a / b as `0.27×`, or with two significant digits when small (`0.0044×`). */
function ratio(a: number, b: number): string {
  const r = a / b;
  return `${r >= 0.1 ? r.toFixed(2) : r.toPrecision(2)}×`;
}
const range = (xs: number[]) => `${median(xs).toFixed(0)} (${Math.min(...xs).toFixed(0)}–${Math.max(...xs).toFixed(0)})`;

async function timedRawRead(paths: string[]): Promise<{ bytes: number; ms: number }> {
  const t = performance.now();
  const bytes = await rawRead(paths, READ_BYTES);
  return { bytes, ms: performance.now() - t };
}

const storeOptions = (dir: string) => ({ dir, disk_free_floor_bytes: 0, memory_tier_bytes: 0, retention_check_interval_ms: 0, compaction_interval_ms: 0, archive_interval_ms: 0 });

/** Writes the keyed topic; returns the sealed segment files and their total size. */
/**
 * The disk's own sequential read rate for the same files, bypassing the page cache: `dd
 * iflag=direct` (O_DIRECT), 4 MiB blocks. null when dd or O_DIRECT is not available here.
 */
function diskRead(paths: string[]): { bytes: number; ms: number } | null {
  let bytes = 0;
  const t = performance.now();
  for (const p of paths) {
    const r = spawnSync('dd', [`if=${p}`, 'of=/dev/null', 'bs=4M', 'iflag=direct'], { encoding: 'utf8' });
    if (r.status !== 0) return null;
    bytes += statSync(p).size;
  }
  return { bytes, ms: performance.now() - t };
}

async function makeData(dir: string): Promise<{ files: string[]; bytes: number; records: number; keys: number }> {
  const store = await LogStore.open(storeOptions(dir));
  try {
    await store.createTopic('keyed', { cleanup_policy: 'compact', segment_bytes: SEGMENT_BYTES, fsync: { policy: 'never' }, retention_ms: -1 });
    const p = store.partition('keyed', 0);
    const records = Math.max(BATCH_RECORDS, Math.ceil(TOTAL_BYTES / (VALUE_BYTES + 40) / BATCH_RECORDS) * BATCH_RECORDS);
    const keys = Math.max(1, Math.round(records * LIVE_FRACTION));
    const value = Buffer.alloc(VALUE_BYTES, 'x');
    const now = Date.now();
    for (let i = 0; i < records; i += BATCH_RECORDS) {
      const batch = Array.from({ length: BATCH_RECORDS }, (_, j) => ({ key: `key-${(i + j) % keys}`, value, timestamp_ms: now }));
      await p.append(encodeBatch(batch));
    }
    await p.roll();
    const segs = p.segmentInfo().filter((s) => s.sealed);
    return { files: segs.map((s) => s.path), bytes: segs.reduce((n, s) => n + s.size_bytes, 0), records, keys };
  } finally {
    await store.close();
  }
}

async function main(): Promise<void> {
  const root = mkdtempSync(join(tmpdir(), 'relaylog-bench-ops-'));
  try {
    const base = join(root, 'base');
    const t0 = performance.now();
    const data = await makeData(base);
    console.log(`wrote ${(data.bytes / 1024 / 1024).toFixed(0)} MiB: ${data.records} records of ${VALUE_BYTES} B over ${data.keys} keys (${LIVE_FRACTION * 100}% live), ${data.files.length} segments, in ${((performance.now() - t0) / 1000).toFixed(1)} s`);

    // verify: the whole data dir, as `relaylog verify --data` does it (lock, read-only catalog,
    // every batch's CRC, index checks), against a raw read of the same files just before.
    const verify_raw: number[] = [];
    const verify: number[] = [];
    for (let i = 0; i < RUNS; i++) {
      const raw = await timedRawRead(data.files);
      verify_raw.push(mbps(raw.bytes, raw.ms));
      const t = performance.now();
      const r = await runVerify({ data: base });
      const ms = performance.now() - t;
      if (!r.clean) throw new Error(`verify found faults in fresh data: ${JSON.stringify(r.faults.slice(0, 3))}`);
      verify.push(mbps(r.ssd.bytes, ms));
    }

    // compaction: a fresh copy of the data dir per run; input = the bytes of every segment it reads.
    const compact_raw: number[] = [];
    const compact_disk: number[] = [];
    const compact: number[] = [];
    let last: { segments_rewritten: number; records_removed: number; bytes_before: number; bytes_after: number } | null = null;
    for (let i = 0; i < RUNS; i++) {
      const dir = join(root, `run-${i}`);
      cpSync(base, dir, { recursive: true });
      const files = data.files.map((f) => f.replace(base, dir));
      const raw = await timedRawRead(files);
      compact_raw.push(mbps(raw.bytes, raw.ms));
      const disk = diskRead(files);
      if (disk) compact_disk.push(mbps(disk.bytes, disk.ms));
      const store = await LogStore.open(storeOptions(dir));
      try {
        const t = performance.now();
        last = await store.compact('keyed');
        compact.push(mbps(data.bytes, performance.now() - t));
      } finally {
        await store.close();
      }
      rmSync(dir, { recursive: true, force: true });
    }

    console.log(`\nrelaylog ops benchmark: ${(data.bytes / 1024 / 1024).toFixed(0)} MiB keyed topic, ${RUNS} runs, medians (min–max); raw = sequential fs read of the same segment files in the same run, page cache warm (not dropped)\n`);
    console.log('| measurement | MB/s | raw read MB/s | ratio |');
    console.log('|---|---|---|---|');
    console.log(`| compaction, ${LIVE_FRACTION * 100}% live keys (MB/s of input) | ${range(compact)} | ${range(compact_raw)} | ${ratio(median(compact), median(compact_raw))} |`);
    console.log(`| verify (every batch CRC-checked, index checked) | ${range(verify)} | ${range(verify_raw)} | ${ratio(median(verify), median(verify_raw))} |`);
    if (compact_disk.length > 0) {
      console.log(`\nagainst the disk itself (dd iflag=direct of the same files, page cache bypassed, same runs): disk read ${range(compact_disk)} MB/s; compaction ${ratio(median(compact), median(compact_disk))}, verify ${ratio(median(verify), median(compact_disk))} (verify read warm files)`);
    }
    if (last) console.log(`\ncompaction result (last run): ${last.segments_rewritten} segments rewritten, ${last.records_removed} records removed, ${(last.bytes_before / 1024 / 1024).toFixed(0)} MiB -> ${(last.bytes_after / 1024 / 1024).toFixed(0)} MiB`);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}

await main();
