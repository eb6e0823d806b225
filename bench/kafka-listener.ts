/**
 * `npm run bench:kafka`: what the Kafka wire-protocol listener costs against relaylog's own gRPC
 * path, on one server process, in one run (issue 10: "the listener should cost < 20% of the gRPC
 * figures").
 *
 * One `relaylog serve --kafka-listen` process. Per round, for each path, a fresh topic:
 *   produce  gRPC: the Node client, ~1 MiB RecordBatches, 8 in flight, acks=all
 *            Kafka: kcat (librdkafka), one 1 KiB message per line, acks=all, batches up to 1 MiB
 *   consume  gRPC: Subscribe from the earliest offset until the high watermark (frames counted,
 *            not decoded: the server's work is the same either way)
 *            Kafka: kcat -C from the beginning to the end of the partition
 * and the server's CPU time over each phase (from /proc), so the comparison is of the server's
 * work per MB, not of two client libraries. Figures are medians of BENCH_ROUNDS (default 3) with
 * min and max; the ratios are Kafka / gRPC from the same rounds.
 *
 * Needs kcat (`apt-get install -y kcat`); without it the bench says so and exits 1.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createWriteStream, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { RelaylogClient, type Frame } from '../client/index.js';
import { encodeBatch } from '../engine/index.js';
import { freePort, processCpuMs, startProcess, stopProcess } from './e2e/procs.js';

const BIN = fileURLToPath(new URL('../../bin/relaylog.js', import.meta.url));
const RESULTS = fileURLToPath(new URL('../../bench/results/', import.meta.url));
const RECORD_BYTES = 1024;
const TOTAL_MB = Number(process.env.BENCH_KAFKA_MB ?? 256);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const COUNT = Math.floor((TOTAL_MB * 1024 * 1024) / RECORD_BYTES);
const BATCH_RECORDS = 1000;
const WINDOW = 8;
const PHASE_MAX_MS = Number(process.env.BENCH_PHASE_MAX_MS ?? 300_000);

interface Phase {
  mbps: number;
  /** Server CPU (user+system) per MB moved. */
  cpu_ms_per_mb: number;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

function run(cmd: string, args: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const child: ChildProcess = spawn(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), PHASE_MAX_MS);
    child.once('error', reject);
    child.once('exit', (code) => {
      clearTimeout(timer);
      if (code === 0) resolve();
      else reject(new Error(`${cmd} ${args.join(' ')} exited with ${code}: ${err.slice(-1000)}`));
    });
  });
}

async function timed(pid: number, bytes: number, f: () => Promise<void>): Promise<Phase> {
  const cpu0 = processCpuMs(pid);
  const t0 = performance.now();
  await f();
  const ms = performance.now() - t0;
  const mb = bytes / (1024 * 1024);
  return { mbps: mb / (ms / 1000), cpu_ms_per_mb: (processCpuMs(pid) - cpu0) / mb };
}

async function grpcProduce(client: RelaylogClient, topic: string, value: Buffer): Promise<void> {
  const inflight = new Set<Promise<unknown>>();
  for (let sent = 0; sent < COUNT; sent += BATCH_RECORDS) {
    const n = Math.min(BATCH_RECORDS, COUNT - sent);
    const p: Promise<boolean> = client.produce(topic, 0, encodeBatch(Array.from({ length: n }, () => ({ value })))).then(() => inflight.delete(p));
    inflight.add(p);
    if (inflight.size >= WINDOW) await Promise.race(inflight);
  }
  await Promise.all(inflight);
}

async function grpcConsume(client: RelaylogClient, topic: string): Promise<void> {
  const hw = (await client.listOffsets(topic, 0, { position: 'latest' })).high_watermark;
  const stream = client.subscribe(topic, 0, { position: 'earliest' }, 4 * 1024 * 1024);
  try {
    for await (const frame of stream as AsyncIterable<Frame>) if (frame.next_offset >= hw) break;
  } finally {
    stream.cancel();
  }
}

async function main(): Promise<void> {
  if (spawnSync('kcat', ['-V']).status !== 0) {
    console.error('kcat is not installed: apt-get install -y kcat (the Kafka side of this bench is librdkafka via kcat)');
    process.exit(1);
  }
  const dir = mkdtempSync(join(tmpdir(), 'bench-kafka-'));
  const input = join(dir, 'records.txt');
  const value = Buffer.alloc(RECORD_BYTES - 1, 'k');
  // kcat -l sends one message per line: 1023 bytes of value per line (gRPC records carry 1024).
  const line = Buffer.alloc(RECORD_BYTES - 1, 'k');
  await new Promise<void>((resolve, reject) => {
    const w = createWriteStream(input);
    w.on('error', reject);
    const chunk = Buffer.concat(Array.from({ length: 1024 }, () => Buffer.concat([line, Buffer.from('\n')])));
    for (let i = 0; i < COUNT / 1024; i++) w.write(chunk);
    w.end(resolve);
  });
  const grpcAddress = `127.0.0.1:${await freePort()}`;
  const { child, line: ready } = await startProcess(process.execPath, [BIN, 'serve', '--data', join(dir, 'data'), '--listen', grpcAddress, '--kafka-listen', '127.0.0.1:0'], /relaylog kafka listening on/);
  const kafkaAddr = ready.replace(/.*kafka listening on /, '').trim();
  const client = new RelaylogClient(grpcAddress);
  const pid = child.pid!;
  const rows: Record<string, Phase[]> = { 'grpc produce': [], 'kafka produce': [], 'grpc consume': [], 'kafka consume': [] };
  const bytes = COUNT * RECORD_BYTES;
  try {
    for (let r = 0; r < ROUNDS; r++) {
      const g = `grpc-${r}`;
      const k = `kafka-${r}`;
      for (const t of [g, k]) await client.createTopic(t, { partitions: 1, config: { 'segment.bytes': String(256 * 1024 * 1024) } });
      rows['grpc produce']!.push(await timed(pid, bytes, () => grpcProduce(client, g, value)));
      rows['kafka produce']!.push(
        await timed(pid, bytes, () =>
          run('kcat', ['-b', kafkaAddr, '-P', '-t', k, '-p', '0', '-l', '-X', 'acks=all', '-X', 'linger.ms=5', '-X', 'batch.num.messages=1000', '-X', 'batch.size=1048576', '-X', 'queue.buffering.max.messages=1000000', '-X', 'compression.codec=none', input]),
        ),
      );
      rows['grpc consume']!.push(await timed(pid, bytes, () => grpcConsume(client, g)));
      rows['kafka consume']!.push(
        await timed(pid, bytes, () => run('kcat', ['-b', kafkaAddr, '-C', '-t', k, '-p', '0', '-o', 'beginning', '-e', '-q', '-f', '%o\n', '-X', 'fetch.message.max.bytes=4194304', '-X', 'fetch.max.bytes=16777216'])),
      );
      process.stderr.write(`round ${r + 1}/${ROUNDS} done\n`);
    }
  } finally {
    client.close();
    await stopProcess(child);
    rmSync(dir, { recursive: true, force: true });
  }
  const stat = (xs: Phase[], f: (p: Phase) => number) => ({ median: median(xs.map(f)), min: Math.min(...xs.map(f)), max: Math.max(...xs.map(f)) });
  const out: string[] = [];
  out.push(`Kafka listener vs gRPC, one relaylog process, ${TOTAL_MB} MiB of 1 KiB records per phase, ${ROUNDS} rounds (median [min–max])`);
  out.push('');
  out.push('| phase | gRPC MB/s | Kafka MB/s | Kafka/gRPC throughput | gRPC server CPU ms/MB | Kafka server CPU ms/MB | Kafka/gRPC CPU per MB |');
  out.push('|---|---|---|---|---|---|---|');
  const fmt = (s: { median: number; min: number; max: number }, d = 1) => `${s.median.toFixed(d)} [${s.min.toFixed(d)}–${s.max.toFixed(d)}]`;
  const summary: Record<string, unknown> = {};
  for (const phase of ['produce', 'consume']) {
    const g = rows[`grpc ${phase}`]!;
    const k = rows[`kafka ${phase}`]!;
    const tput = k.map((x, i) => x.mbps / g[i]!.mbps);
    const cpu = k.map((x, i) => x.cpu_ms_per_mb / g[i]!.cpu_ms_per_mb);
    summary[phase] = { grpc: g, kafka: k, throughput_ratio: stat(tput.map((x) => ({ mbps: x, cpu_ms_per_mb: 0 })), (p) => p.mbps), cpu_ratio: median(cpu) };
    out.push(`| ${phase} | ${fmt(stat(g, (p) => p.mbps))} | ${fmt(stat(k, (p) => p.mbps))} | ${median(tput).toFixed(2)}× | ${fmt(stat(g, (p) => p.cpu_ms_per_mb), 2)} | ${fmt(stat(k, (p) => p.cpu_ms_per_mb), 2)} | ${median(cpu).toFixed(2)}× |`);
  }
  console.log(out.join('\n'));
  mkdirSync(RESULTS, { recursive: true });
  const file = join(RESULTS, `kafka-listener-${new Date().toISOString().slice(0, 10)}.json`);
  writeFileSync(file, JSON.stringify({ total_mb: TOTAL_MB, rounds: ROUNDS, record_bytes: RECORD_BYTES, ...summary }, null, 2));
  console.log(`\nwrote ${file}`);
}

void main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
