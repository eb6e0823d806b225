/**
 * The relay headline benchmark (issue 7): N consumers replay the same stream (a) all directly from
 * the origin, (b) through a tree origin -> 2 relays -> 4 relays -> consumers. Reports the origin's
 * egress (from its Prometheus counter) as a multiple of the ingest, per-consumer and aggregate
 * replay MB/s (as ratios to the loopback TCP limit measured in the same run), and the latency of a
 * live record to a consumer at each level of the tree, p50/p99, so the added latency per hop can
 * be read off. Real processes on 127.0.0.1; medians of BENCH_RUNS runs.
 *
 *   npm run bench:relays         BENCH_RUNS=3 RELAY_BENCH_N=4,8,16,32 RELAY_BENCH_MB=32
 *
 * Writes bench/results/<date>-relays.json and docs/img/relay-egress.svg.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import hdr from 'hdr-histogram-js';
import { RelaylogClient } from '../../client/index.js';
import { encodeBatch, forEachBatch, forEachRecord } from '../../engine/index.js';
import { SERVER_ENV, SERVER_NODE_ARGS, stopProcess } from './procs.js';
import { loopbackTcpLimit } from './scenarios.js';
import { lineChartSvg } from './svg-chart.js';

const BIN = fileURLToPath(new URL('../../../bin/relaylog.js', import.meta.url));
const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const RUNS = Number(process.env.BENCH_RUNS ?? 3);
const NS = (process.env.RELAY_BENCH_N ?? '4,8,16,32').split(',').map(Number);
const STREAM_MB = Number(process.env.RELAY_BENCH_MB ?? 32);
const VALUE_BYTES = 4096;
const LIVE_RATE_PER_S = 200;
const LIVE_SECONDS = Number(process.env.RELAY_BENCH_LIVE_S ?? 15);
const TOPIC = 'stream';

interface Node {
  child: ChildProcess;
  address: string;
  metrics_url: string;
  dir: string;
}

/** Starts `relaylog <args>` with a fresh data dir and a metrics endpoint; resolves with both addresses. */
function startNode(args: string[]): Promise<Node> {
  const dir = mkdtempSync(join(tmpdir(), 'bench-relay-'));
  // Started as npm start starts a server (procs.ts, SERVER_ENV and SERVER_NODE_ARGS).
  const env = { ...process.env, ...SERVER_ENV };
  const child = spawn(process.execPath, [...SERVER_NODE_ARGS, BIN, ...args, '--data', dir, '--listen', '127.0.0.1:0', '--metrics', '127.0.0.1:0', '--log-level', 'warn'], { stdio: ['ignore', 'pipe', 'inherit'], env });
  return new Promise((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`relaylog ${args[0]} did not start: ${out}`));
    }, 20_000);
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const a = /relaylog listening on (\S+)/.exec(out);
      const m = /relaylog metrics on (\S+)/.exec(out);
      if (a && m) {
        clearTimeout(timer);
        resolve({ child, dir, address: a[1]!, metrics_url: m[1]! });
      }
    });
    child.once('exit', (code) => reject(new Error(`relaylog ${args[0]} exited with ${code}: ${out}`)));
  });
}

async function stopNode(n: Node): Promise<void> {
  await stopProcess(n.child);
  rmSync(n.dir, { recursive: true, force: true });
}

async function counter(n: Node, name: string, labels = ''): Promise<number> {
  const text = await (await fetch(n.metrics_url)).text();
  const re = new RegExp(`^${name}${labels.replace(/[{}]/g, (c) => `\\${c}`)} (\\S+)$`, 'm');
  return Number(re.exec(text)?.[1] ?? 0);
}
const egress = async (n: Node) => (await counter(n, 'relaylog_bytes_out_total', '{rpc="subscribe"}')) + (await counter(n, 'relaylog_bytes_out_total', '{rpc="fetch"}'));

async function highWatermark(address: string): Promise<number> {
  const c = new RelaylogClient(address, { deadline_ms: 2000 });
  try {
    return (await c.describeTopic(TOPIC)).partitions[0]!.high_watermark;
  } catch {
    return -1;
  } finally {
    c.close();
  }
}

async function caughtUp(addresses: string[], hw: number, timeout_ms = 120_000): Promise<void> {
  const until = Date.now() + timeout_ms;
  for (const a of addresses) {
    while ((await highWatermark(a)) !== hw) {
      if (Date.now() > until) throw new Error(`${a} did not reach ${hw}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}

/** One consumer: subscribe from 0 until `end`, counting record bytes. Resolves with MB/s. */
async function replayOne(address: string, end: number): Promise<{ bytes: number; ms: number }> {
  const client = new RelaylogClient(address);
  const t = performance.now();
  let bytes = 0;
  const stream = client.subscribe(TOPIC, 0, { offset: 0 }, 4 * 1024 * 1024);
  try {
    for await (const f of stream as AsyncIterable<{ records: Buffer; next_offset: number }>) {
      bytes += f.records.length;
      if (f.next_offset >= end) break;
    }
  } finally {
    stream.cancel();
    client.close();
  }
  return { bytes, ms: performance.now() - t };
}

const mbps = (bytes: number, ms: number) => bytes / 1e6 / (ms / 1000);
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

/** Produces the stream: STREAM_MB of 4 KiB records in ~1 MiB batches. Returns the record count. */
async function produceStream(origin: Node): Promise<number> {
  const c = new RelaylogClient(origin.address);
  const per = Math.floor((1024 * 1024) / (VALUE_BYTES + 16));
  const value = Buffer.alloc(VALUE_BYTES, 7);
  const total = Math.floor((STREAM_MB * 1024 * 1024) / VALUE_BYTES);
  for (let sent = 0; sent < total; sent += per) {
    const n = Math.min(per, total - sent);
    await c.produce(TOPIC, 0, encodeBatch(Array.from({ length: n }, () => ({ value, timestamp_ms: Date.now() }))));
  }
  c.close();
  return total;
}

/**
 * Live latency: consumers follow the tail at the origin (level 0), at a first-level relay (1) and at
 * a second-level relay (2) while records are produced at LIVE_RATE_PER_S, each carrying its send
 * time and a sequence number. Per level: end-to-end p50/p99 (send -> arrival). Per hop: the
 * distribution, over records, of (arrival at level k) - (arrival at level k-1) for the same record,
 * which is what a hop adds (the difference of two p99s is not a p99 of anything).
 */
async function liveLatency(levels: string[], start_offset: number): Promise<{ levels: Array<{ p50: number; p99: number }>; hops: Array<{ p50: number; p99: number; p999: number }> }> {
  const hist = () => hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 60_000_000, numberOfSignificantValueDigits: 3 });
  const hists = levels.map(hist);
  const total = LIVE_RATE_PER_S * LIVE_SECONDS;
  const arrival = levels.map(() => new Float64Array(total).fill(NaN));
  const clients = levels.map((a) => new RelaylogClient(a));
  const done = levels.map((_, i) =>
    (async () => {
      const stream = clients[i]!.subscribe(TOPIC, 0, { offset: start_offset }, 0);
      let seen = 0;
      for await (const f of stream as AsyncIterable<{ records: Buffer }>) {
        const now = performance.timeOrigin + performance.now();
        forEachBatch(f.records, (pos, size) => {
          forEachRecord(f.records.subarray(pos, pos + size), (r) => {
            hists[i]!.recordValue(Math.max(1, Math.round((now - Number(r.value!.readDoubleBE(0))) * 1000)));
            arrival[i]![r.value!.readUInt32BE(8)] = now;
            seen++;
          });
        });
        if (seen >= total) break;
      }
      stream.cancel();
    })(),
  );
  const producer = new RelaylogClient(levels[0]!);
  const t0 = performance.now();
  for (let i = 0; i < total; i++) {
    const due = t0 + (i * 1000) / LIVE_RATE_PER_S;
    const wait = due - performance.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    const v = Buffer.alloc(1024);
    v.writeDoubleBE(performance.timeOrigin + performance.now(), 0);
    v.writeUInt32BE(i, 8);
    await producer.produce(TOPIC, 0, encodeBatch([{ value: v }]));
  }
  await Promise.all(done);
  producer.close();
  for (const c of clients) c.close();
  const hops = levels.slice(1).map((_, k) => {
    const h = hist();
    for (let i = 0; i < total; i++) h.recordValue(Math.max(1, Math.round((arrival[k + 1]![i]! - arrival[k]![i]!) * 1000)));
    return { p50: h.getValueAtPercentile(50) / 1000, p99: h.getValueAtPercentile(99) / 1000, p999: h.getValueAtPercentile(99.9) / 1000 };
  });
  return { levels: hists.map((h) => ({ p50: h.getValueAtPercentile(50) / 1000, p99: h.getValueAtPercentile(99) / 1000 })), hops };
}

async function oneRun() {
  const origin = await startNode(['serve']);
  const relays: Node[] = [];
  try {
    const oc = new RelaylogClient(origin.address);
    await oc.createTopic(TOPIC, { config: { 'segment.bytes': String(256 * 1024 * 1024) } });
    oc.close();
    // The tree: origin -> l1[0..1] -> l2[0..3] (two per first-level relay).
    const l1 = [await startNode(['relay', '--upstream', origin.address]), await startNode(['relay', '--upstream', origin.address])];
    const l2: Node[] = [];
    for (let i = 0; i < 4; i++) l2.push(await startNode(['relay', '--upstream', l1[i >> 1]!.address]));
    relays.push(...l1, ...l2);
    await caughtUp(relays.map((r) => r.address), 0);

    const egress0 = await egress(origin);
    const count = await produceStream(origin);
    const ingest = await counter(origin, 'relaylog_bytes_in_total');
    await caughtUp(relays.map((r) => r.address), count);
    const tree_pull = (await egress(origin)) - egress0; // what the two first-level relays pulled

    const rows: Array<Record<string, number>> = [];
    for (const n of NS) {
      // (a) direct
      let e = await egress(origin);
      let t = performance.now();
      const direct = await Promise.all(Array.from({ length: n }, () => replayOne(origin.address, count)));
      const direct_ms = performance.now() - t;
      const direct_egress = (await egress(origin)) - e;
      // (b) through the tree: consumers spread over the second-level relays
      e = await egress(origin);
      t = performance.now();
      const tree = await Promise.all(Array.from({ length: n }, (_, i) => replayOne(l2[i % l2.length]!.address, count)));
      const tree_ms = performance.now() - t;
      const tree_egress_during = (await egress(origin)) - e;
      rows.push({
        n,
        direct_origin_egress_x_ingest: direct_egress / ingest,
        tree_origin_egress_x_ingest: (tree_pull + tree_egress_during) / ingest,
        direct_per_consumer_mbps: median(direct.map((d) => mbps(d.bytes, d.ms))),
        tree_per_consumer_mbps: median(tree.map((d) => mbps(d.bytes, d.ms))),
        direct_aggregate_mbps: mbps(direct.reduce((s, d) => s + d.bytes, 0), direct_ms),
        tree_aggregate_mbps: mbps(tree.reduce((s, d) => s + d.bytes, 0), tree_ms),
      });
      console.log(`  N=${n}: origin egress direct ${rows.at(-1)!.direct_origin_egress_x_ingest!.toFixed(2)}x ingest, tree ${rows.at(-1)!.tree_origin_egress_x_ingest!.toFixed(2)}x`);
    }
    const latency = await liveLatency([origin.address, l1[0]!.address, l2[0]!.address], count);
    return { ingest_bytes: ingest, rows, latency };
  } finally {
    await Promise.all(relays.map(stopNode));
    await stopNode(origin);
  }
}

async function main() {
  const tcp = median(await Promise.all([0, 1, 2].map(() => loopbackTcpLimit(256 * 1024 * 1024))));
  console.log(`loopback TCP limit: ${tcp.toFixed(0)} MB/s`);
  const runs: Array<Awaited<ReturnType<typeof oneRun>>> = [];
  for (let r = 0; r < RUNS; r++) {
    console.log(`run ${r + 1}/${RUNS}`);
    runs.push(await oneRun());
  }
  const rows = NS.map((n, i) => {
    const pick = (k: string) => median(runs.map((run) => run.rows[i]![k]!));
    return {
      n,
      direct_origin_egress_x_ingest: pick('direct_origin_egress_x_ingest'),
      tree_origin_egress_x_ingest: pick('tree_origin_egress_x_ingest'),
      direct_per_consumer_mbps: pick('direct_per_consumer_mbps'),
      tree_per_consumer_mbps: pick('tree_per_consumer_mbps'),
      direct_aggregate_x_tcp: pick('direct_aggregate_mbps') / tcp,
      tree_aggregate_x_tcp: pick('tree_aggregate_mbps') / tcp,
    };
  });
  const lat = [0, 1, 2].map((lvl) => ({ level: lvl, p50_ms: median(runs.map((r) => r.latency.levels[lvl]!.p50)), p99_ms: median(runs.map((r) => r.latency.levels[lvl]!.p99)) }));
  const spread = (xs: number[]) => ({ median: median(xs), min: Math.min(...xs), max: Math.max(...xs) });
  const hops = [1, 2].map((h) => ({
    hop: h,
    added_p50_ms: spread(runs.map((r) => r.latency.hops[h - 1]!.p50)),
    added_p99_ms: spread(runs.map((r) => r.latency.hops[h - 1]!.p99)),
    added_p999_ms: spread(runs.map((r) => r.latency.hops[h - 1]!.p999)),
  }));
  const report = { date: new Date().toISOString(), runs: RUNS, stream_mb: STREAM_MB, loopback_tcp_mbps: tcp, rows, latency: lat, hops, live_rate_per_s: LIVE_RATE_PER_S, live_record_bytes: 1024 };
  console.table(rows);
  console.table(lat);
  console.table(hops.map((h) => ({ hop: h.hop, p50_ms: h.added_p50_ms.median, p99_ms: h.added_p99_ms.median, p99_min: h.added_p99_ms.min, p99_max: h.added_p99_ms.max, p999_ms: h.added_p999_ms.median })));
  mkdirSync(join(ROOT, 'bench/results'), { recursive: true });
  writeFileSync(join(ROOT, 'bench/results', `${report.date.slice(0, 10)}-relays.json`), JSON.stringify(report, null, 2));
  mkdirSync(join(ROOT, 'docs/img'), { recursive: true });
  writeFileSync(
    join(ROOT, 'docs/img/relay-egress.svg'),
    lineChartSvg({
      title: 'Origin egress vs consumers (medians of runs)',
      x_label: 'consumers replaying the stream (N)',
      y_label: 'origin egress / ingest',
      series: [
        { name: 'all consumers at the origin', points: rows.map((r) => [r.n, r.direct_origin_egress_x_ingest]) },
        { name: 'through 2 → 4 relays', points: rows.map((r) => [r.n, r.tree_origin_egress_x_ingest]) },
      ],
    }),
  );
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
