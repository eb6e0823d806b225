/**
 * End-to-end benchmark (`npm run bench:compare`): relaylog and its peers (NATS JetStream, Redis
 * Streams) driven through one harness (bench/e2e/system.ts), with the physical limits of this
 * machine measured in the same run (bench/e2e/limits.ts).
 *
 * A run is BENCH_RUNS rounds; every round measures the limits, then every system (in a rotated
 * order, so that no system always runs first or last on a machine whose load drifts), each on a
 * fresh server with a fresh temp dir, through these scenarios for 1 KiB and 64 KiB records:
 *
 *   (1) durable produce throughput of a BENCH_REPLAY_BYTES data set (default 1 GiB)
 *   (2) replay of that data set from the start, and from a timestamp in its middle
 *   (3) produce->consume latency at a fixed rate with one live consumer (HDR histograms)
 *   (4) live fan-out: one producer at a fixed rate, 8 and 32 subscribers: egress and lag
 *   and the producer's ack latency while 8 readers replay.
 *
 * Every figure is the median of the rounds with min and max; relaylog's are printed as ratios to
 * each peer and to the limit. Writes bench/results/<date>-e2e.json and .md and one SVG chart per
 * scenario into BENCH_CHART_DIR (default docs/img; report.ts re-renders them from the JSON).
 *
 *   BENCH_RUNS=3  BENCH_SYSTEMS=relaylog,relaylog-interval,jetstream,redis  BENCH_REPLAY_BYTES=1GiB
 *   BENCH_SCENARIO_MAX_MS=600000  BENCH_LATENCY_MS=5000  BENCH_FANOUT_MS=5000  BENCH_WARMUP_MS=2000  BENCH_FANOUT_SUBS=8,32
 *   BENCH_LATENCY_RATE_1K=2000  BENCH_LATENCY_RATE_64K=200  BENCH_FANOUT_RATE_1K=1000  BENCH_FANOUT_RATE_64K=50
 *   BENCH_CHART_DIR=docs/img
 *
 * A quick run: BENCH_RUNS=1 BENCH_REPLAY_BYTES=64MiB BENCH_CHART_DIR=/tmp/charts npm run bench:compare
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, totalmem } from 'node:os';
import { parseBytesArg } from './bytes.js';
import { haveCommand } from './procs.js';
import { JetStreamSystem } from './jetstream.js';
import { measureLimits } from './limits.js';
import { RelaylogSystem } from './relaylog.js';
import { RedisStreamsSystem } from './redis.js';
import { writeReport, type Report, type Values } from './report.js';
import { ackLatencyUnderReplay, fanOut, fixedRateLatency, produceDataset, replayFromThroughput, replayThroughput } from './scenarios.js';
import type { LogSystem } from './system.js';

const env = (k: string, d: number) => (process.env[k] !== undefined && process.env[k] !== '' ? Number(process.env[k]) : d);

const RUNS = Math.max(1, env('BENCH_RUNS', 3));
const REPLAY_BYTES = parseBytesArg(process.env.BENCH_REPLAY_BYTES || '1GiB');
const SIZES = [
  { label: '1k', bytes: 1024 },
  { label: '64k', bytes: 64 * 1024 },
];
const LATENCY_MS = env('BENCH_LATENCY_MS', 5000);
/** Latency and fan-out scenarios first produce this long at their rate without measuring. */
const WARMUP_MS = env('BENCH_WARMUP_MS', 2000);
const LATENCY_RATE: Record<string, number> = { '1k': env('BENCH_LATENCY_RATE_1K', 2000), '64k': env('BENCH_LATENCY_RATE_64K', 200) };
const FANOUT_MS = env('BENCH_FANOUT_MS', 5000);
const FANOUT_RATE: Record<string, number> = { '1k': env('BENCH_FANOUT_RATE_1K', 1000), '64k': env('BENCH_FANOUT_RATE_64K', 50) };
const FANOUT_SUBS = (process.env.BENCH_FANOUT_SUBS || '8,32').split(',').map(Number).filter((n) => n > 0);
/** Ack latency at 2,000 x 1 KiB/s while 8 readers each replay this much of the 64 KiB data set. */
const UNDER_REPLAY = { readers: 8, replay_bytes: Math.min(REPLAY_BYTES, 256 * 1024 * 1024), rate_per_s: 2000, duration_ms: LATENCY_MS };
/** Every scenario gets this long; a peer that hangs is reported and left out, not waited for forever. */
const SCENARIO_MAX_MS = env('BENCH_SCENARIO_MAX_MS', 600_000);
const CHART_DIR = process.env.BENCH_CHART_DIR || 'docs/img';

export type SystemFactory = () => LogSystem;
const factories: Record<string, SystemFactory> = {
  relaylog: () => new RelaylogSystem(),
  'relaylog-interval': () => new RelaylogSystem('interval'),
  jetstream: () => new JetStreamSystem(),
  redis: () => new RedisStreamsSystem(),
};
const SHORT: Record<string, string> = { relaylog: 'relaylog fsync=always', 'relaylog-interval': 'relaylog fsync 1 s', jetstream: 'JetStream', redis: 'Redis' };
/** The server binary each peer needs, and how to get it. */
const NEEDS: Record<string, string> = { jetstream: 'nats-server', redis: 'redis-server' };

export function registerSystem(name: string, f: SystemFactory): void {
  factories[name] = f;
}


function version(cmd: string, args: string[]): string {
  try {
    return execFileSync(cmd, args, { encoding: 'utf8' }).trim().split('\n')[0]!;
  } catch {
    return 'absent';
  }
}

class Deadline extends Error {}
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Runs `p` against the scenario deadline. On expiry the caller stops the system (killing its
 * server), which makes the abandoned work fail instead of running on beside the next system.
 */
function within<T>(p: Promise<T>, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const t = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Deadline(`${what} did not finish within ${SCENARIO_MAX_MS} ms`)), SCENARIO_MAX_MS)));
  p.catch(() => undefined); // if the deadline wins, a later rejection of p is not an unhandled one
  return Promise.race([p, t]).finally(() => clearTimeout(timer));
}

interface Recorder {
  add(figure: string, v: number): void;
  fail(scenario: string, err: unknown): void;
}

/** One round of one system: every scenario, each within the deadline. A deadline ends the round. */
async function round(sys: LogSystem, rec: Recorder): Promise<void> {
  await sys.start();
  const step = async <T>(what: string, work: () => Promise<T>, use: (v: T) => void) => {
    console.error(`  ${sys.name}: ${what}`);
    try {
      use(await within(work(), `${sys.name}: ${what}`));
    } catch (err) {
      rec.fail(what, err);
      if (err instanceof Deadline) throw err;
    }
  };
  try {
    const datasets: Record<string, { count: number; mid_ms: number; after_mid: number } | null> = {};
    for (const { label, bytes } of SIZES) {
      const topic = `data${label}`;
      const count = Math.max(2, Math.round(REPLAY_BYTES / bytes));
      datasets[label] = null;
      await sys.createTopic(topic);
      await step(`produce ${count} x ${label}`, () => produceDataset(sys, topic, count, bytes), (p) => {
        datasets[label] = { count, mid_ms: p.mid_ms, after_mid: p.after_mid };
        rec.add(`produce_${label}_mb_per_s`, p.mb_per_s);
        rec.add(`produce_${label}_records_per_s`, p.records_per_s);
        rec.add(`produce_${label}_server_cpu_ms_per_mb`, p.server_cpu_ms_per_mb);
      });
      const d = datasets[label] as { count: number; mid_ms: number; after_mid: number } | null;
      if (!d) continue;
      await step(`replay ${label} from the start`, () => replayThroughput(sys, topic, d.count), (r) => {
        rec.add(`replay_start_${label}_mb_per_s`, r.mb_per_s);
        rec.add(`replay_start_${label}_server_cpu_ms_per_mb`, r.server_cpu_ms_per_mb);
      });
      await step(`replay ${label} from the middle timestamp`, () => replayFromThroughput(sys, topic, d.mid_ms, d.after_mid), (r) => rec.add(`replay_mid_${label}_mb_per_s`, r.mb_per_s));
    }
    for (const { label, bytes } of SIZES) {
      const topic = `lat${label}`;
      await sys.createTopic(topic);
      await step(`latency ${label} at ${LATENCY_RATE[label]}/s`, () => fixedRateLatency(sys, topic, LATENCY_RATE[label]!, LATENCY_MS, bytes, WARMUP_MS), (l) => {
        rec.add(`latency_${label}_p50_ms`, l.e2e_p50_ms);
        rec.add(`latency_${label}_p99_ms`, l.e2e_p99_ms);
        rec.add(`latency_${label}_p999_ms`, l.e2e_p999_ms);
        rec.add(`latency_${label}_delivered`, l.delivered);
        rec.add(`ack_${label}_p50_ms`, l.ack_p50_ms);
        rec.add(`ack_${label}_p99_ms`, l.ack_p99_ms);
      });
    }
    for (const { label, bytes } of SIZES) {
      for (const n of FANOUT_SUBS) {
        const topic = `fan${n}x${label}`;
        await sys.createTopic(topic);
        await step(`fan-out ${label} to ${n} at ${FANOUT_RATE[label]}/s`, () => fanOut(sys, topic, n, FANOUT_RATE[label]!, FANOUT_MS, bytes, WARMUP_MS), (f) => {
          rec.add(`fanout${n}_${label}_egress_mb_per_s`, f.egress_mb_per_s);
          rec.add(`fanout${n}_${label}_lag_p50_ms`, f.lag_p50_ms);
          rec.add(`fanout${n}_${label}_lag_p99_ms`, f.lag_p99_ms);
          rec.add(`fanout${n}_${label}_worst_sub_p99_ms`, f.worst_subscriber_p99_ms);
          rec.add(`fanout${n}_${label}_delivered`, f.delivered);
        });
      }
    }
    const big = SIZES[SIZES.length - 1]!;
    if (datasets[big.label]) {
      const topic = 'ackbusy';
      await sys.createTopic(topic);
      const n = UNDER_REPLAY.readers;
      await step(
        `ack latency while ${n} readers replay`,
        () => ackLatencyUnderReplay(sys, topic, `data${big.label}`, Math.max(1, Math.round(UNDER_REPLAY.replay_bytes / big.bytes)), n, UNDER_REPLAY.rate_per_s, UNDER_REPLAY.duration_ms),
        (b) => {
          rec.add(`ack_under_replay${n}_p50_ms`, b.ack_p50_ms);
          rec.add(`ack_under_replay${n}_p99_ms`, b.ack_p99_ms);
        },
      );
    }
  } finally {
    // Bounded: a hung peer must not hang the run in its own shutdown.
    await Promise.race([sys.stop().catch((err: unknown) => console.error(`  ${sys.name}: stop failed: ${(err as Error).message}`)), sleep(30_000)]);
  }
}

async function main(): Promise<void> {
  process.on('unhandledRejection', (err) => console.error(`(an abandoned scenario failed later: ${(err as Error)?.message ?? String(err)})`));
  const wanted = (process.env.BENCH_SYSTEMS || Object.keys(factories).join(',')).split(',').filter(Boolean);
  const keys: string[] = [];
  for (const key of wanted) {
    if (!factories[key]) throw new Error(`unknown system ${key}; known: ${Object.keys(factories).join(', ')}`);
    const bin = NEEDS[key];
    if (bin && !haveCommand(bin)) {
      console.log(`${bin} is not installed: skipping ${key}. Install it with: apt-get install -y ${bin}`);
      continue;
    }
    keys.push(key);
  }
  const report: Report = {
    date: new Date().toISOString(),
    runs: RUNS,
    params: {
      replay_bytes: REPLAY_BYTES,
      sizes: SIZES,
      latency: Object.fromEntries(SIZES.map((s) => [s.label, { rate_per_s: LATENCY_RATE[s.label]!, duration_ms: LATENCY_MS }])),
      warmup_ms: WARMUP_MS,
      fanout: { subscribers: FANOUT_SUBS, duration_ms: FANOUT_MS, rate_per_s: FANOUT_RATE },
      ack_under_replay: UNDER_REPLAY,
      scenario_max_ms: SCENARIO_MAX_MS,
    },
    machine: {
      cpus: cpus().length,
      cpu: cpus()[0]?.model ?? '?',
      ram_gib: Math.round(totalmem() / 1024 ** 3),
      node: process.version,
      'nats-server': version('nats-server', ['--version']),
      'redis-server': version('redis-server', ['--version']).replace(/ sha=.*/, ''),
      load_average_at_start: loadavg().map((l) => l.toFixed(1)).join(' '),
    },
    limits: {},
    systems: keys.map((key) => {
      const s = factories[key]!();
      return { key, name: s.name, short: SHORT[key] ?? s.name, durability: s.durability, figures: {} };
    }),
    failures: [],
  };
  const put = (into: Record<string, Values>, k: string, r: number, v: number) => {
    into[k] ??= new Array<number | null>(RUNS).fill(null);
    into[k]![r] = v;
  };
  const loads: string[] = [];
  for (let r = 0; r < RUNS; r++) {
    console.error(`round ${r + 1}/${RUNS}: physical limits`);
    const lim = await measureLimits(REPLAY_BYTES, SIZES.map((s) => ({ label: s.label, size: s.bytes, rate_per_s: LATENCY_RATE[s.label]!, duration_ms: LATENCY_MS })));
    for (const [k, v] of Object.entries(lim)) put(report.limits, k, r, v);
    const order = keys.map((_, i) => keys[(i + r) % keys.length]!);
    for (const key of order) {
      const entry = report.systems.find((s) => s.key === key)!;
      console.error(`round ${r + 1}/${RUNS}: ${key}`);
      const rec: Recorder = {
        add: (k, v) => put(entry.figures, k, r, v),
        fail: (scenario, err) => {
          const error = (err as Error)?.message ?? String(err);
          console.error(`  ${key} ${scenario} FAILED: ${error}`);
          report.failures.push({ system: key, round: r, scenario, error });
        },
      };
      try {
        await round(factories[key]!(), rec);
      } catch (err) {
        if (!(err instanceof Deadline)) rec.fail('start/stop', err);
      }
    }
    loads.push(loadavg()[0]!.toFixed(1));
  }
  report.machine.load_average_1min_after_each_round = loads.join(', ');
  mkdirSync('bench/results', { recursive: true });
  const file = `bench/results/${report.date.slice(0, 10)}-e2e.json`;
  writeFileSync(file, JSON.stringify(report, null, 2));
  const md = writeReport(report, file, CHART_DIR);
  console.log(md);
  console.log(`written: ${file}, ${file.replace(/\.json$/, '.md')} and the charts in ${CHART_DIR}/compare-*.svg`);
}

await main();
// Abandoned work of a timed-out peer may still hold sockets or timers: the results are written, so end here.
process.exit(0);
