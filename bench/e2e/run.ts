/**
 * End-to-end benchmark: relaylog and peers driven through the same harness (bench/e2e/system.ts),
 * each figure a median of BENCH_RUNS runs with min and max, relaylog's as ratios to the peer and to
 * the loopback TCP limit measured in the same run.
 *
 *   npm run bench:e2e                 BENCH_RUNS=3 BENCH_SYSTEMS=relaylog,jetstream
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { JetStreamSystem } from './jetstream.js';
import { RelaylogSystem } from './relaylog.js';
import { RedisStreamsSystem } from './redis.js';
import { ackLatencyUnderReplay, fixedRateLatency, loopbackTcpLimit, produceThroughput, replayThroughput } from './scenarios.js';
import type { LogSystem } from './system.js';

const RUNS = Number(process.env.BENCH_RUNS ?? 3);
const SCALE = Number(process.env.BENCH_SCALE ?? 1);

interface Stat {
  median: number;
  min: number;
  max: number;
}
const stat = (xs: number[]): Stat => {
  const s = [...xs].sort((a, b) => a - b);
  return { median: s[Math.floor(s.length / 2)]!, min: s[0]!, max: s[s.length - 1]! };
};

export type SystemFactory = () => LogSystem;
const factories: Record<string, SystemFactory> = {
  relaylog: () => new RelaylogSystem(),
  'relaylog-interval': () => new RelaylogSystem('interval'),
  jetstream: () => new JetStreamSystem(),
  redis: () => new RedisStreamsSystem(),
};
/** The server binary each peer needs, and how to get it. */
const NEEDS: Record<string, string> = { jetstream: 'nats-server', redis: 'redis-server' };

export function registerSystem(name: string, f: SystemFactory): void {
  factories[name] = f;
}

function have(cmd: string): boolean {
  try {
    execFileSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** Every scenario gets this long; a peer that hangs is reported and left out, not waited for forever. */
const SCENARIO_MAX_MS = Number(process.env.BENCH_SCENARIO_MAX_MS ?? 300_000);
function within<T>(p: Promise<T>, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const t = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what} did not finish within ${SCENARIO_MAX_MS} ms`)), SCENARIO_MAX_MS)));
  return Promise.race([p, t]).finally(() => clearTimeout(timer));
}

async function measure(make: SystemFactory) {
  const out: Record<string, number[]> = {};
  const add = (k: string, v: number) => (out[k] ??= []).push(v);
  let name = '';
  let durability = '';
  for (let run = 0; run < RUNS; run++) {
    const sys = make();
    name = sys.name;
    durability = sys.durability;
    await sys.start();
    try {
      for (const [label, size, count] of [['1k', 1024, Math.round(100_000 * SCALE)], ['64k', 64 * 1024, Math.round(2048 * SCALE)]] as const) {
        const topic = `bench${label}r${run}`;
        await sys.createTopic(topic);
        const p = await within(produceThroughput(sys, topic, count, size), `${name} produce ${label}`);
        add(`produce_${label}_records_per_s`, p.records_per_s);
        add(`produce_${label}_mb_per_s`, p.mb_per_s);
        add(`produce_${label}_server_cpu_ms_per_mb`, p.server_cpu_ms_per_mb);
        add(`replay_${label}_mb_per_s`, (await within(replayThroughput(sys, topic, count), `${name} replay ${label}`)).mb_per_s);
        if (label === '64k') add(`fanout8_${label}_total_mb_per_s`, (await within(replayThroughput(sys, topic, count, 8), `${name} fan-out`)).mb_per_s);
      }
      const lat = `lat${run}`;
      await sys.createTopic(lat);
      const l = await within(fixedRateLatency(sys, lat, 2000, 4000), `${name} latency`);
      add('latency_2000_e2e_p50_ms', l.e2e_p50_ms);
      add('latency_2000_e2e_p99_ms', l.e2e_p99_ms);
      add('latency_2000_e2e_p999_ms', l.e2e_p999_ms);
      add('ack_idle_p50_ms', l.ack_p50_ms);
      add('ack_idle_p99_ms', l.ack_p99_ms);
      const busy = await within(ackLatencyUnderReplay(sys, lat, `bench64kr${run}`, Math.round(2048 * SCALE), 8, 2000, 4000), `${name} ack latency under replay`);
      add('ack_8readers_p50_ms', busy.ack_p50_ms);
      add('ack_8readers_p99_ms', busy.ack_p99_ms);
    } finally {
      await sys.stop();
    }
  }
  return { name, durability, figures: Object.fromEntries(Object.entries(out).map(([k, v]) => [k, stat(v)])) };
}

async function main(): Promise<void> {
  const wanted = (process.env.BENCH_SYSTEMS ?? Object.keys(factories).join(',')).split(',').filter(Boolean);
  const results: Array<Awaited<ReturnType<typeof measure>>> = [];
  const tcp: number[] = [];
  for (let i = 0; i < RUNS; i++) tcp.push(await loopbackTcpLimit(1024 * 1024 * 1024));
  for (const key of wanted) {
    const f = factories[key];
    if (!f) throw new Error(`unknown system ${key}; known: ${Object.keys(factories).join(', ')}`);
    const bin = NEEDS[key];
    if (bin && !have(bin)) {
      console.log(`${bin} is not installed: skipping ${key}. Install it with: apt-get install -y ${bin}`);
      continue;
    }
    console.error(`measuring ${key} (${RUNS} runs)...`);
    try {
      results.push(await measure(f));
    } catch (err) {
      // One peer failing must not lose the others' figures: report it and go on.
      console.error(`${key} failed: ${(err as Error).message}; its figures are left out`);
    }
  }
  const loopback = stat(tcp);
  const report = { date: new Date().toISOString(), runs: RUNS, scale: SCALE, loopback_tcp_mb_per_s: loopback, results };
  mkdirSync('bench/results', { recursive: true });
  const file = `bench/results/${report.date.slice(0, 10)}-e2e.json`;
  writeFileSync(file, JSON.stringify(report, null, 2));
  const md = printTable(report.results, loopback);
  writeFileSync(file.replace(/\.json$/, '.md'), `# relaylog vs peers, ${report.date}\n\n${md}\n`);
  console.log(`\nwritten: ${file} and ${file.replace(/\.json$/, '.md')}`);
}

function printTable(results: Array<{ name: string; durability: string; figures: Record<string, Stat> }>, loopback: Stat): string {
  const keys = [...new Set(results.flatMap((r) => Object.keys(r.figures)))];
  const fmt = (s: Stat | undefined) => (s ? `${s.median.toFixed(s.median < 10 ? 2 : 0)} (${s.min.toFixed(s.min < 10 ? 2 : 0)}–${s.max.toFixed(s.max < 10 ? 2 : 0)})` : '—');
  const peers = results.slice(1);
  const lines: string[] = [];
  lines.push(`loopback TCP limit: ${fmt(loopback)} MB/s`, '');
  lines.push(`| figure (median, min–max) | ${results.map((r) => r.name).join(' | ')} |${peers.map((p) => ` relaylog / ${p.name} |`).join('')}`);
  lines.push(`|---|${results.map(() => '---').join('|')}|${peers.map(() => '---|').join('')}`);
  for (const k of keys) {
    const vals = results.map((r) => r.figures[k]);
    const ratios = peers.map((_, i) => (vals[0] && vals[i + 1] ? ` ${(vals[0].median / vals[i + 1]!.median).toFixed(2)}× |` : ' — |')).join('');
    lines.push(`| ${k} | ${vals.map(fmt).join(' | ')} |${ratios}`);
  }
  for (const r of results) lines.push('', `${r.name}: ${r.durability}`);
  const text = lines.join('\n');
  console.log(`\n${text}`);
  return text;
}

await main();
