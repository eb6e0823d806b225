/**
 * Replication benchmark (`npm run bench:raft`, issue 6): produce throughput, server CPU per MB and
 * commit latency of relaylog R1 (one server) and R3 (a Raft cluster of three server processes on
 * loopback, acks=all), side by side with NATS JetStream R3 (three nats-servers in a loopback
 * cluster, num_replicas 3), all driven through the same harness (bench/e2e/system.ts).
 *
 * Every system runs with the durability its replicas give without per-message fsync: relaylog
 * fsyncs every second (flush.ms=1000) and acknowledges once a quorum has the batch; JetStream
 * acknowledges once a quorum has it (it fsyncs every 2 minutes by default). All processes share
 * this machine's cores, so R3 pays for three copies on the same CPUs.
 *
 * Per round and system (rotated order, fresh servers and temp dirs):
 *   - produce BENCH_BYTES (default 128 MiB) of 1 KiB records, then of 64 KiB records: MB/s and the
 *     server processes' CPU ms per MB (all three nodes summed for R3);
 *   - commit latency: 1 KiB records at BENCH_RATE (default 2,000/s) for BENCH_LATENCY_MS, one at
 *     a time on the producer's pipeline: ack p50/p99 (an ack means committed).
 * Medians of BENCH_RUNS (default 3) rounds with min and max; ratios R3/JetStream-R3, R3/R1 and
 * CPU per MB R3/R1 come from the same run. Writes bench/results/<date>-raft.json and .md.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { parseBytesArg } from './bytes.js';
import { haveCommand } from './procs.js';
import { JetStreamSystem } from './jetstream.js';
import { RelaylogSystem } from './relaylog.js';
import { fixedRateLatency, produceDataset } from './scenarios.js';
import type { LogSystem } from './system.js';

const env = (k: string, d: number) => (process.env[k] ? Number(process.env[k]) : d);
const RUNS = Math.max(1, env('BENCH_RUNS', 3));
const BYTES = parseBytesArg(process.env.BENCH_BYTES || '128MiB');
const RATE = env('BENCH_RATE', 2000);
const LATENCY_MS = env('BENCH_LATENCY_MS', 5000);

const SYSTEMS: Record<string, () => LogSystem> = {
  'relaylog R1': () => new RelaylogSystem('interval'),
  'relaylog R3': () => new RelaylogSystem('interval', { nodes: 3 }),
  'JetStream R3': () => new JetStreamSystem(3),
};

type Metrics = Record<string, number>;

async function round(sys: LogSystem): Promise<Metrics> {
  await sys.start();
  try {
    const m: Metrics = {};
    for (const [label, size] of [
      ['1k', 1024],
      ['64k', 64 * 1024],
    ] as const) {
      const topic = `produce-${label}`;
      await sys.createTopic(topic);
      const r = await produceDataset(sys, topic, Math.round(BYTES / size), size);
      m[`produce_${label}_mb_s`] = r.mb_per_s;
      m[`cpu_${label}_ms_per_mb`] = r.server_cpu_ms_per_mb;
    }
    await sys.createTopic('latency');
    const lat = await fixedRateLatency(sys, 'latency', RATE, LATENCY_MS, 1024, 1000);
    m.ack_p50_ms = lat.ack_p50_ms;
    m.ack_p99_ms = lat.ack_p99_ms;
    return m;
  } finally {
    await sys.stop();
  }
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const fmt = (n: number) => (n >= 100 ? n.toFixed(0) : n >= 10 ? n.toFixed(1) : n.toFixed(2));


async function main(): Promise<void> {
  let names = Object.keys(SYSTEMS);
  if (!haveCommand('nats-server')) {
    console.log('nats-server is not installed: skipping JetStream R3 (no ratios to it). Install it with: apt-get install -y nats-server');
    names = names.filter((n) => n !== 'JetStream R3');
  }
  const runs = new Map<string, Metrics[]>(names.map((n) => [n, []]));
  const failures: string[] = [];
  for (let r = 0; r < RUNS; r++) {
    const order = names.map((_, i) => names[(i + r) % names.length]!);
    for (const name of order) {
      try {
        const m = await round(SYSTEMS[name]!());
        runs.get(name)!.push(m);
        console.log(`round ${r + 1} ${name}: ${Object.entries(m).map(([k, v]) => `${k} ${fmt(v)}`).join(', ')}`);
      } catch (err) {
        failures.push(`round ${r + 1} ${name}: ${(err as Error).message}`);
        console.error(`round ${r + 1} ${name} FAILED: ${(err as Error).message}`);
      }
    }
  }
  const keys = ['produce_1k_mb_s', 'produce_64k_mb_s', 'cpu_1k_ms_per_mb', 'cpu_64k_ms_per_mb', 'ack_p50_ms', 'ack_p99_ms'];
  const med: Record<string, Metrics> = {};
  const lines = [
    `# Replication benchmark, ${new Date().toISOString().slice(0, 10)}`,
    '',
    `${cpus().length} cores, load average ${loadavg().map((x) => x.toFixed(1)).join(' ')} at the end; ${(BYTES / 2 ** 20).toFixed(0)} MiB per produce run; latency at ${RATE} x 1 KiB/s for ${LATENCY_MS / 1000} s; medians of ${RUNS} rounds (min–max).`,
    '',
    `| system | ${keys.join(' | ')} |`,
    `|---|${keys.map(() => '---').join('|')}|`,
  ];
  for (const name of names) {
    const ms = runs.get(name)!;
    if (ms.length === 0) continue;
    med[name] = Object.fromEntries(keys.map((k) => [k, median(ms.map((m) => m[k]!))]));
    const cell = (k: string) => `${fmt(med[name]![k]!)} (${fmt(Math.min(...ms.map((m) => m[k]!)))}–${fmt(Math.max(...ms.map((m) => m[k]!)))})`;
    lines.push(`| ${name} | ${keys.map(cell).join(' | ')} |`);
  }
  const r1 = med['relaylog R1'];
  const r3 = med['relaylog R3'];
  const js = med['JetStream R3'];
  const ratios: Metrics = {};
  if (r1 && r3 && js) {
    for (const s of ['1k', '64k']) {
      ratios[`r3_vs_jetstream_r3_${s}`] = r3[`produce_${s}_mb_s`]! / js[`produce_${s}_mb_s`]!;
      ratios[`r3_vs_r1_${s}`] = r3[`produce_${s}_mb_s`]! / r1[`produce_${s}_mb_s`]!;
      ratios[`cpu_per_mb_r3_vs_r1_${s}`] = r3[`cpu_${s}_ms_per_mb`]! / r1[`cpu_${s}_ms_per_mb`]!;
    }
    ratios.ack_p99_r3_vs_jetstream_r3 = r3.ack_p99_ms! / js.ack_p99_ms!;
    lines.push('', 'Ratios of medians from this run (targets from issue 6: R3 ≥ 2× JetStream R3, R3 ≥ 0.33× R1, CPU per MB R3 ≤ 3.5× R1):', '');
    for (const [k, v] of Object.entries(ratios)) lines.push(`- ${k}: ${v.toFixed(2)}×`);
  }
  if (failures.length > 0) lines.push('', 'Failures:', '', ...failures.map((f) => `- ${f}`));
  const md = lines.join('\n');
  console.log(`\n${md}`);
  mkdirSync('bench/results', { recursive: true });
  const stem = `bench/results/${new Date().toISOString().slice(0, 10)}-raft`;
  writeFileSync(`${stem}.json`, JSON.stringify({ runs: Object.fromEntries(runs), medians: med, ratios, failures, bytes: BYTES, rate: RATE }, null, 2));
  writeFileSync(`${stem}.md`, `${md}\n`);
}

await main();
process.exit(0);
