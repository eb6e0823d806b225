/**
 * Engine benchmark (issue 3): codec micro-benchmarks (tinybench), append and sequential-read MB/s
 * against the raw file-system limit measured in the same run with the same fsync cadence, and
 * durable appends/s under group commit against raw O_DSYNC appends.
 *
 *   npm run bench:engine        BENCH_MB=256 BENCH_RUNS=3
 */
import { execSync } from 'node:child_process';
import { constants, mkdtempSync, rmSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Bench } from 'tinybench';
import { LogStore, crc32c, decodeRecords, encodeBatch, type FsyncPolicy } from '../engine/index.js';

const TOTAL_MB = Number(process.env.BENCH_MB ?? 256);
const RUNS = Number(process.env.BENCH_RUNS ?? 3);
const MiB = 1024 * 1024;
const INTERVAL_MS = 100;

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const range = (xs: number[], d = 0) => `${median(xs).toFixed(d)} (${Math.min(...xs).toFixed(d)}–${Math.max(...xs).toFixed(d)})`;
const mbps = (bytes: number, ms: number) => bytes / MiB / (ms / 1000);

/** Start every timed write from a clean page cache, so no run pays for the previous run's writeback. */
function quiesce(): void {
  execSync('sync');
}

function batchesOf(record_bytes: number): Buffer[] {
  const per = Math.max(1, Math.floor(MiB / (record_bytes + 16)));
  const value = Buffer.alloc(record_bytes, 0x5a);
  const proto = encodeBatch(Array.from({ length: per }, () => ({ value })), { timestamp_ms: 1_700_000_000_000 });
  return Array.from({ length: Math.ceil((TOTAL_MB * MiB) / proto.length) }, () => Buffer.from(proto));
}

async function engineAppend(root: string, batches: Buffer[], fsync: FsyncPolicy): Promise<{ mbps: number; dir: string }> {
  const dir = mkdtempSync(join(root, 'eng-'));
  const store = await LogStore.open({ dir, disk_free_floor_bytes: 0, memory_tier_bytes: 0, retention_check_interval_ms: 0 });
  await store.createTopic('b', { fsync, segment_bytes: 1024 * MiB, max_message_bytes: 4 * MiB });
  const p = store.partition('b', 0);
  const bytes = batches.reduce((a, b) => a + b.length, 0);
  const own = batches.map((b) => Buffer.from(b)); // the log takes ownership of (and stamps) its input: copy outside the timing
  quiesce();
  const t = performance.now();
  for (const b of own) await p.append(b);
  await p.flush();
  const ms = performance.now() - t;
  await store.close();
  return { mbps: mbps(bytes, ms), dir };
}

/** The same bytes, sequentially written with the same fsync cadence: the physical limit. */
async function rawWrite(root: string, batches: Buffer[], fsync: FsyncPolicy): Promise<number> {
  const fh = await open(join(root, `raw-${Math.random()}`), 'w');
  let pos = 0;
  quiesce();
  let last_sync = performance.now();
  const t = performance.now();
  for (const b of batches) {
    await fh.write(b, 0, b.length, pos);
    pos += b.length;
    if (fsync.policy === 'always') await fh.datasync();
    else if (fsync.policy === 'interval' && performance.now() - last_sync >= INTERVAL_MS) {
      await fh.datasync();
      last_sync = performance.now();
    }
  }
  await fh.datasync();
  const ms = performance.now() - t;
  await fh.close();
  return mbps(pos, ms);
}

/**
 * Reads the whole log `passes` times from one open store. Pass 1 after opening CRC-checks every
 * batch (first read of bytes this process did not write); later passes find them verified.
 */
async function engineRead(dir: string, read_bytes: number, passes: number): Promise<number[]> {
  const store = await LogStore.open({ dir, disk_free_floor_bytes: 0, memory_tier_bytes: 0, retention_check_interval_ms: 0 });
  const p = store.partition('b', 0);
  const out: number[] = [];
  for (let i = 0; i < passes; i++) {
    let bytes = 0;
    const t = performance.now();
    for (let o = 0; o < p.highWatermark; ) {
      const r = await p.read(o, read_bytes);
      bytes += r.records.length;
      o = r.next_offset;
      r.release();
    }
    out.push(mbps(bytes, performance.now() - t));
  }
  await store.close();
  return out;
}

async function rawRead(dir: string, read_bytes: number): Promise<number> {
  const fh = await open(join(dir, 'topics', 'b', '0', '00000000000000000000.log'), 'r');
  const buf = Buffer.allocUnsafe(read_bytes);
  let pos = 0;
  const t = performance.now();
  for (;;) {
    const { bytesRead } = await fh.read(buf, 0, buf.length, pos);
    if (bytesRead === 0) break;
    pos += bytesRead;
  }
  const ms = performance.now() - t;
  await fh.close();
  return mbps(pos, ms);
}

/** Durable appends/s under fsync=always with `producers` concurrent producers, each awaiting its own. */
async function groupCommit(root: string, producers: number, duration_ms: number): Promise<number> {
  const dir = mkdtempSync(join(root, 'gc-'));
  const store = await LogStore.open({ dir, disk_free_floor_bytes: 0, memory_tier_bytes: 0, retention_check_interval_ms: 0 });
  await store.createTopic('b', { fsync: { policy: 'always' } });
  const p = store.partition('b', 0);
  const value = Buffer.alloc(1024, 1);
  let n = 0;
  const end = performance.now() + duration_ms;
  await Promise.all(
    Array.from({ length: producers }, async () => {
      while (performance.now() < end) {
        await p.append(encodeBatch([{ value }]));
        n++;
      }
    }),
  );
  await store.close();
  rmSync(dir, { recursive: true, force: true });
  return n / (duration_ms / 1000);
}

/** The raw limit for one durable writer: 4 KiB appends to a file opened O_DSYNC. */
async function rawDsync(root: string, duration_ms: number): Promise<number> {
  const fh = await open(join(root, 'dsync'), constants.O_WRONLY | constants.O_CREAT | constants.O_DSYNC);
  const b = Buffer.alloc(4096, 1);
  let n = 0;
  const end = performance.now() + duration_ms;
  for (let pos = 0; performance.now() < end; pos += b.length, n++) await fh.write(b, 0, b.length, pos);
  await fh.close();
  return n / (duration_ms / 1000);
}

async function micro(): Promise<void> {
  const small = Array.from({ length: 1000 }, (_, i) => ({ key: `k${i}`, value: Buffer.alloc(1024, i) }));
  const big = Array.from({ length: 16 }, () => ({ value: Buffer.alloc(64 * 1024, 3) }));
  const smallBatch = encodeBatch(small);
  const mib = Buffer.alloc(MiB, 9);
  const bench = new Bench({ time: 500 });
  bench
    .add('encodeBatch 1000 x 1 KiB', () => void encodeBatch(small))
    .add('encodeBatch 16 x 64 KiB', () => void encodeBatch(big))
    .add('decodeRecords 1000 x 1 KiB', () => void decodeRecords(smallBatch))
    .add('crc32c 1 MiB', () => void crc32c(mib));
  await bench.run();
  console.log('\n| micro-benchmark | ops/s (median) | MB/s |\n|---|---|---|');
  for (const t of bench.tasks) {
    const hz = t.result && 'throughput' in t.result ? t.result.throughput.p50 : 0;
    const bytes = t.name.includes('1000 x 1 KiB') ? smallBatch.length : t.name.includes('64 KiB') ? 16 * 64 * 1024 : MiB;
    console.log(`| ${t.name} | ${hz.toFixed(0)} | ${((hz * bytes) / MiB).toFixed(0)} |`);
  }
}

async function main(): Promise<void> {
  const root = mkdtempSync(join(tmpdir(), 'relaylog-bench-engine-'));
  try {
    await micro();
    console.log(`\n| append, ${TOTAL_MB} MiB in ~1 MiB batches | engine MB/s | raw write MB/s (same fsync cadence) | ratio |\n|---|---|---|---|`);
    const policies: FsyncPolicy[] = [{ policy: 'always' }, { policy: 'interval', interval_ms: INTERVAL_MS }, { policy: 'never' }];
    const reads: Array<[string, string]> = [];
    for (const record_bytes of [64 * 1024, 1024]) {
      const batches = batchesOf(record_bytes);
      for (const fsync of policies) {
        const eng: number[] = [];
        const raw: number[] = [];
        for (let i = 0; i < RUNS; i++) {
          raw.push(await rawWrite(root, batches, fsync));
          const r = await engineAppend(root, batches, fsync);
          eng.push(r.mbps);
          if (fsync.policy === 'never' && i === 0) reads.push([`${record_bytes / 1024} KiB records`, r.dir]);
          else rmSync(r.dir, { recursive: true, force: true });
        }
        const label = fsync.policy === 'interval' ? `interval(${INTERVAL_MS} ms)` : fsync.policy;
        console.log(`| ${record_bytes / 1024} KiB records, fsync=${label} | ${range(eng)} | ${range(raw)} | ${(median(eng) / median(raw)).toFixed(2)}× |`);
      }
    }
    console.log(`\n| sequential read, 1 MiB reads, page cache warm | engine MB/s | raw read MB/s | ratio |\n|---|---|---|---|`);
    for (const [label, dir] of reads) {
      const first: number[] = [];
      const steady: number[] = [];
      const raw: number[] = [];
      for (let i = 0; i < RUNS; i++) {
        raw.push(await rawRead(dir, MiB));
        const [a, ...rest] = await engineRead(dir, MiB, 3);
        first.push(a!);
        steady.push(median(rest));
      }
      console.log(`| ${label}, steady state (batches already CRC-checked in this process) | ${range(steady)} | ${range(raw)} | ${(median(steady) / median(raw)).toFixed(2)}× |`);
      console.log(`| ${label}, first read after restart (CRC-checks every batch) | ${range(first)} | ${range(raw)} | ${(median(first) / median(raw)).toFixed(2)}× |`);
      rmSync(dir, { recursive: true, force: true });
    }
    console.log(`\n| durable appends (fsync=always), 1 KiB records | appends/s | vs one raw O_DSYNC 4 KiB writer |\n|---|---|---|`);
    const dsync: number[] = [];
    for (let i = 0; i < RUNS; i++) dsync.push(await rawDsync(root, 2000));
    console.log(`| raw O_DSYNC 4 KiB appends, 1 writer | ${range(dsync)} | 1.00× |`);
    for (const producers of [1, 8, 64]) {
      const xs: number[] = [];
      for (let i = 0; i < RUNS; i++) xs.push(await groupCommit(root, producers, 2000));
      console.log(`| relaylog, ${producers} concurrent producer(s) | ${range(xs)} | ${(median(xs) / median(dsync)).toFixed(2)}× |`);
    }
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}

await main();
