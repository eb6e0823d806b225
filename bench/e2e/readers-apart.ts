/**
 * Catch-up replay with the readers in a process of their own, and the producer's ack latency
 * while they replay (issue 4: "with 8 replaying readers the producer's ack p99 stays ≤ 3× its
 * idle p99"). bench:compare runs its readers in the harness's own process, where decoding 2 GiB
 * delays the harness's producer as much as the server does; here the harness only produces and
 * measures, so what is measured is the server.
 *
 *   node dist/bench/e2e/readers-apart.js [BIN ...]
 *
 * BIN: a build's bin/relaylog.js (default: this tree's); several builds are alternated round by
 * round. Env: BENCH_RUNS (3), BENCH_READERS (8), BENCH_REPLAY_BYTES (256MiB), BENCH_RECORD_BYTES
 * (65536). Per round and build, a fresh server (fsync every 1 s) and:
 *   1. the data set is produced (BENCH_REPLAY_BYTES of BENCH_RECORD_BYTES records);
 *   2. replay alone: the readers, in a child process, each read it all from the start (4 MiB
 *      frames): MB/s over all readers and the server's CPU ms per MB they read;
 *   3. idle: 2,000 × 1 KiB records/s acknowledged one by one for 5 s (after 1 s of warm-up);
 *   4. the same while the readers replay the data set again: ack p50/p99, and the ratio of
 *      p99 under replay to the idle p99.
 */
import { spawn } from 'node:child_process';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { RelaylogClient, type Frame } from '../../client/index.js';
import { forEachBatch } from '../../engine/index.js';
import { parseBytesArg } from './bytes.js';
import { RelaylogSystem } from './relaylog.js';
import { fixedRateLatency, produceDataset } from './scenarios.js';

const RUNS = Math.max(1, Number(process.env.BENCH_RUNS || 3));
const READERS = Math.max(1, Number(process.env.BENCH_READERS || 8));
const BYTES = parseBytesArg(process.env.BENCH_REPLAY_BYTES || '256MiB');
const RECORD = Number(process.env.BENCH_RECORD_BYTES || 65536);
const FRAME_BYTES = 4 * 1024 * 1024;
const CHILD_TIMEOUT_MS = 300_000;
const F_RECORD_COUNT = 57; // recordCount in a RecordBatch v2 header

/** The child: `--child ADDRESS TOPIC RECORDS READERS`; prints {"bytes":N,"ms":N} when all are done. */
async function child(address: string, topic: string, records: number, readers: number): Promise<void> {
  const guard = setTimeout(() => {
    process.stderr.write(`readers: not done after ${CHILD_TIMEOUT_MS} ms\n`);
    process.exit(2);
  }, CHILD_TIMEOUT_MS);
  const t = performance.now();
  const bytes = await Promise.all(
    Array.from({ length: readers }, async () => {
      const c = new RelaylogClient(address, { own_connection: true });
      const s = c.subscribe(topic, 0, { position: 'earliest' }, FRAME_BYTES);
      let n = 0;
      let b = 0;
      try {
        for await (const f of s as AsyncIterable<Frame>) {
          b += f.records.length;
          forEachBatch(f.records, (pos) => void (n += f.records.readInt32BE(pos + F_RECORD_COUNT)));
          if (n >= records) break;
        }
      } finally {
        s.cancel();
        c.close();
      }
      if (n < records) throw new Error(`a reader ended after ${n} of ${records} records`);
      return b;
    }),
  );
  clearTimeout(guard);
  process.stdout.write(`${JSON.stringify({ bytes: bytes.reduce((a, x) => a + x, 0), ms: performance.now() - t })}\n`);
}

/** Starts the readers in a child process; resolves with what they read and how long it took. */
function replayApart(address: string, topic: string, records: number): Promise<{ bytes: number; ms: number }> {
  const self = fileURLToPath(import.meta.url);
  const c = spawn(process.execPath, [self, '--child', address, topic, String(records), String(READERS)], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  c.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  return new Promise((res, rej) => {
    c.once('exit', (code) => (code === 0 ? res(JSON.parse(out) as { bytes: number; ms: number }) : rej(new Error(`readers exited with ${code}`))));
  });
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

interface Row {
  replay_mb_s: number;
  replay_cpu_ms_per_mb: number;
  idle_ack_p50_ms: number;
  idle_ack_p99_ms: number;
  replaying_ack_p50_ms: number;
  replaying_ack_p99_ms: number;
  p99_ratio: number;
  /** How long the readers of step 4 took (the latency measurement lasts 6 s: 1 s warm-up, 5 s measured). */
  replaying_readers_s: number;
}

async function round(bin: string | undefined): Promise<Row> {
  const sys = new RelaylogSystem('interval', bin ? { bin } : {});
  await sys.start();
  try {
    await sys.createTopic('rep');
    await sys.createTopic('idle');
    await sys.createTopic('busy');
    const records = Math.max(1, Math.floor(BYTES / RECORD));
    await produceDataset(sys, 'rep', records, RECORD);
    const cpu0 = sys.serverCpuMs();
    const alone = await replayApart(sys.serverAddress(), 'rep', records);
    const mb = alone.bytes / 1048576;
    const cpu_per_mb = (sys.serverCpuMs() - cpu0) / mb;
    const idle = await fixedRateLatency(sys, 'idle', 2000, 5000, 1024, 1000);
    const replaying = replayApart(sys.serverAddress(), 'rep', records);
    replaying.catch(() => undefined);
    const busy = await fixedRateLatency(sys, 'busy', 2000, 5000, 1024, 1000);
    const during = await replaying;
    return {
      replay_mb_s: mb / (alone.ms / 1000),
      replay_cpu_ms_per_mb: cpu_per_mb,
      idle_ack_p50_ms: idle.ack_p50_ms,
      idle_ack_p99_ms: idle.ack_p99_ms,
      replaying_ack_p50_ms: busy.ack_p50_ms,
      replaying_ack_p99_ms: busy.ack_p99_ms,
      p99_ratio: busy.ack_p99_ms / idle.ack_p99_ms,
      replaying_readers_s: during.ms / 1000,
    };
  } finally {
    await sys.stop();
  }
}

async function main(): Promise<void> {
  const bins = process.argv.slice(2).map((b) => resolve(b));
  const builds: Array<string | undefined> = bins.length > 0 ? bins : [undefined];
  const rows = builds.map(() => [] as Row[]);
  for (let r = 0; r < RUNS; r++) {
    for (const [i, bin] of builds.entries()) {
      const row = await round(bin);
      rows[i]!.push(row);
      console.log(`round ${r + 1}, ${bin ?? 'this tree'}: ${Object.entries(row).map(([k, v]) => `${k} ${v.toFixed(2)}`).join(', ')}`);
    }
  }
  console.log(`\n${READERS} readers apart, ${BYTES} bytes of ${RECORD}-byte records, medians of ${RUNS} rounds (min–max):`);
  for (const [i, bin] of builds.entries()) {
    const keys = Object.keys(rows[i]![0]!) as Array<keyof Row>;
    console.log(`  ${bin ?? 'this tree'}:`);
    for (const k of keys) {
      const xs = rows[i]!.map((x) => x[k]);
      console.log(`    ${k} ${median(xs).toFixed(2)} (${Math.min(...xs).toFixed(2)}–${Math.max(...xs).toFixed(2)})`);
    }
  }
}

if (process.argv[2] === '--child') {
  const [, , , address, topic, records, readers] = process.argv;
  await child(address!, topic!, Number(records), Number(readers));
} else {
  await main();
  process.exit(0);
}
