/**
 * Tier benchmark (issue 5): replay MB/s from each tier — memory, SSD, archive — and archive upload
 * MB/s, each reported as a ratio to a physical limit measured in the same run:
 *   - memory and SSD replay vs. raw sequential read of the same segment files (page cache warm);
 *   - archive replay and upload vs. the raw limit of the archive's transport: for file:// a raw
 *     file copy, for webhdfs:// a plain HTTP transfer over loopback.
 *
 *   npm run bench:tiers            (BENCH_TIER_MB=256 by default; BENCH_RUNS=3)
 */
import { createReadStream, createWriteStream, mkdtempSync, rmSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { createServer, get } from 'node:http';
import { LogStore, encodeBatch } from '../engine/index.js';
import { startWebHdfsStandin } from '../test/support/webhdfs-standin.js';
import { rawRead } from './raw-read.js';

/** Which archive backends to measure: file:// and webhdfs:// (the protocol stand-in, on loopback). */
const ARCHIVES = (process.env.BENCH_ARCHIVES ?? 'file,webhdfs').split(',');

/** The loopback HTTP transfer limit: one GET of `bytes` from a local node:http server, in 1 MiB writes. */
async function httpLimit(bytes: number): Promise<number> {
  const chunk = Buffer.alloc(1 << 20, 1);
  const server = createServer((_req, res) => {
    res.writeHead(200, { 'content-length': bytes });
    let sent = 0;
    const pump = () => {
      while (sent < bytes) {
        const n = Math.min(chunk.length, bytes - sent);
        sent += n;
        if (!res.write(n === chunk.length ? chunk : chunk.subarray(0, n))) return void res.once('drain', pump);
      }
      res.end();
    };
    pump();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const port = (server.address() as { port: number }).port;
  const mb = await timeIt(
    () =>
      new Promise<number>((resolve, reject) => {
        get(`http://127.0.0.1:${port}/`, (res) => {
          let got = 0;
          res.on('data', (d: Buffer) => (got += d.length));
          res.on('end', () => resolve(got));
        }).on('error', reject);
      }),
  );
  await new Promise<void>((r) => server.close(() => r()));
  return mb;
}

const TOTAL_MB = Number(process.env.BENCH_TIER_MB ?? 256);
const RUNS = Number(process.env.BENCH_RUNS ?? 3);
const RECORD_BYTES = 64 * 1024;
const BATCH_RECORDS = 16; // 1 MiB batches
const READ_BYTES = 4 * 1024 * 1024;

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const mbps = (bytes: number, ms: number) => bytes / (1024 * 1024) / (ms / 1000);

async function timeIt(fn: () => Promise<number>): Promise<number> {
  const t = performance.now();
  const bytes = await fn();
  return mbps(bytes, performance.now() - t);
}


async function rawCopy(paths: string[], to: string): Promise<number> {
  let total = 0;
  for (const [i, p] of paths.entries()) {
    await pipeline(createReadStream(p, { highWaterMark: 1 << 20 }), createWriteStream(join(to, `copy-${i}`)));
    const fh = await open(join(to, `copy-${i}`), 'r+');
    await fh.sync();
    total += (await fh.stat()).size;
    await fh.close();
  }
  return total;
}

/** Where a replay delivers what it reads: one copy of every byte, as handing it to a socket makes. */
let sink = Buffer.alloc(0);

async function replay(store: LogStore, from: number, to: number): Promise<number> {
  const p = store.partition('bench', 0);
  let bytes = 0;
  for (let o = from; o < to; ) {
    const r = await p.read(o, READ_BYTES);
    // A memory-tier read is a slice of memory already there: without touching the bytes its
    // "MB/s" would only count slices. Every tier's bytes are copied once, so the tiers compare.
    if (sink.length < r.records.length) sink = Buffer.alloc(r.records.length);
    r.records.copy(sink, 0);
    bytes += r.records.length;
    o = r.next_offset;
    r.release();
  }
  return bytes;
}

async function main(kind: string): Promise<void> {
  const root = mkdtempSync(join(tmpdir(), 'relaylog-bench-tiers-'));
  const archive = join(root, 'archive');
  const rows: Array<{ what: string; runs: number[]; limit: number[]; limit_name: string }> = [];
  const hdfs = kind === 'webhdfs' ? await startWebHdfsStandin({ root_dir: archive }) : null;
  try {
    const store = await LogStore.open({
      dir: join(root, 'data'),
      disk_free_floor_bytes: 0,
      archive_url: hdfs ? hdfs.url('/relaylog') : `file://${archive}`,
      archive_interval_ms: 0,
      retention_check_interval_ms: 0,
      memory_tier_bytes: Math.floor(TOTAL_MB / 4) * 1024 * 1024,
      archive_cache_bytes: 64 * 1024 * 1024,
    });
    await store.createTopic('bench', { segment_bytes: 32 * 1024 * 1024, fsync: { policy: 'never' }, local_retention_bytes: Math.floor(TOTAL_MB / 2) * 1024 * 1024 });
    const p = store.partition('bench', 0);
    const value = Buffer.alloc(RECORD_BYTES, 7);
    for (let written = 0; written < TOTAL_MB; written++) {
      await p.append(encodeBatch(Array.from({ length: BATCH_RECORDS }, () => ({ value }))));
    }
    await p.roll();
    const segs = p.segmentInfo().filter((s) => s.sealed);
    const hw = p.highWatermark;
    // Upload: every sealed segment, timed against a raw copy of the same files (copied first:
    // local retention deletes the local copies once they are archived).
    const upload_bytes_total = segs.reduce((a, s) => a + s.size_bytes, 0);
    const copy = hdfs ? median(await Promise.all([0, 1, 2].map(() => httpLimit(upload_bytes_total)))) : await timeIt(() => rawCopy(segs.map((s) => s.path), root));
    const t = performance.now();
    const { uploaded } = await store.archiveAndRetain();
    const upload_ms = performance.now() - t;
    const upload_bytes = segs.reduce((a, s) => a + s.size_bytes, 0);
    rows.push({ what: `archive upload to ${kind}:// (${uploaded} segments, incl. read-back verify)`, runs: [mbps(upload_bytes, upload_ms)], limit: [copy], limit_name: hdfs ? 'one loopback HTTP transfer' : 'raw copy + fsync' });

    const local = p.segmentInfo();
    const local_start = local[0]!.base_offset;
    // The newest 80% of the memory budget is certainly in memory (16 offsets of 64 KiB per MiB).
    const mem_from = hw - Math.floor((TOTAL_MB / 4) * 0.8) * BATCH_RECORDS;
    const local_files = local.filter((s) => s.sealed).map((s) => s.path);
    const tiers: Array<[string, number, number]> = [
      ['memory tier replay', Math.max(mem_from, local_start), hw],
      ['SSD tier replay', local_start, Math.max(mem_from, local_start)],
      [`archive tier replay (cold cache, ${kind}://)`, 0, local_start],
    ];
    const raw_runs: number[] = [];
    for (let i = 0; i < RUNS; i++) raw_runs.push(await timeIt(() => rawRead(local_files)));
    const http_runs: number[] = [];
    if (hdfs) for (let i = 0; i < RUNS; i++) http_runs.push(await httpLimit(64 * 1024 * 1024));
    for (const [name, from, to] of tiers) {
      const runs: number[] = [];
      for (let i = 0; i < RUNS; i++) {
        if (name.startsWith('archive')) await store.archive!.cache.close(); // cold cache each run
        runs.push(await timeIt(() => replay(store, from, to)));
      }
      const over_http = hdfs !== null && name.startsWith('archive');
      rows.push({ what: `${name}, offsets ${from}..${to}`, runs, limit: over_http ? http_runs : raw_runs, limit_name: over_http ? 'one loopback HTTP transfer' : 'raw sequential read of the SSD segment files' });
    }
    const io = { ...p.io };
    await store.close();
    console.log(`\nrelaylog tier benchmark (${kind}:// archive): ${TOTAL_MB} MiB of 64 KiB records in 1 MiB batches, ${RUNS} runs, medians`);
    console.log(`reads per tier during the run: ${JSON.stringify(io)}\n`);
    console.log('| measurement | median MB/s (min–max) | limit MB/s | ratio |');
    console.log('|---|---|---|---|');
    for (const r of rows) {
      const m = median(r.runs);
      const l = median(r.limit);
      console.log(`| ${r.what} | ${m.toFixed(0)} (${Math.min(...r.runs).toFixed(0)}–${Math.max(...r.runs).toFixed(0)}) | ${l.toFixed(0)} (${r.limit_name}) | ${(m / l).toFixed(2)}× |`);
    }
  } finally {
    await hdfs?.close();
    rmSync(root, { recursive: true, force: true });
  }
}

for (const kind of ARCHIVES) await main(kind);
