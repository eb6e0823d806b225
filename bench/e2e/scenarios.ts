import { createServer, connect as netConnect } from 'node:net';
import hdr from 'hdr-histogram-js';
import { mbps } from './limits.js';
import type { LogSystem } from './system.js';

export { mbps };

const histogram = () => hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 600_000_000, numberOfSignificantValueDigits: 3 });
/** Microseconds in the histograms, milliseconds out. */
const ms_at = (h: hdr.Histogram, p: number) => h.getValueAtPercentile(p) / 1000;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A payload whose first 8 bytes carry the send time (performance.now(), ms), for latency. */
function stamped(size: number): Buffer {
  const b = Buffer.alloc(size, 0x61);
  b.writeDoubleBE(performance.now(), 0);
  return b;
}

/**
 * (1) Durable produce throughput: `count` records of `size` bytes, as fast as each system's client
 * allows, in two halves with a pause between them; `mid_ms` is a wall-clock time inside the pause,
 * so every record of the second half (and none of the first) is stamped at or after it: the
 * start of the replay-from-a-timestamp scenario. The pause is not counted in the throughput.
 */
export async function produceDataset(sys: LogSystem, topic: string, count: number, size: number) {
  const value = Buffer.alloc(size, 0x62);
  const first = Math.floor(count / 2);
  const cpu0 = sys.serverCpuMs();
  let t = performance.now();
  await sys.produceBulk(topic, first, value);
  let ms = performance.now() - t;
  await sleep(20);
  const mid_ms = Date.now();
  await sleep(20);
  t = performance.now();
  await sys.produceBulk(topic, count - first, value);
  ms += performance.now() - t;
  const mb = (count * size) / 1048576;
  return {
    mid_ms,
    after_mid: count - first,
    records_per_s: count / (ms / 1000),
    mb_per_s: mb / (ms / 1000),
    server_cpu_ms_per_mb: (sys.serverCpuMs() - cpu0) / mb,
  };
}

/** (2) Replay from the start: `readers` read the first `count` records concurrently; total MB/s. */
export async function replayThroughput(sys: LogSystem, topic: string, count: number, readers = 1) {
  const cpu0 = sys.serverCpuMs();
  const t = performance.now();
  const bytes = await Promise.all(Array.from({ length: readers }, () => sys.replay(topic, count)));
  const ms = performance.now() - t;
  const total = bytes.reduce((a, b) => a + b, 0);
  return { mb_per_s: mbps(total, ms), server_cpu_ms_per_mb: (sys.serverCpuMs() - cpu0) / (total / 1048576) };
}

/** (2) Replay from a timestamp: the `count` records stamped at or after `from_ms`. */
export async function replayFromThroughput(sys: LogSystem, topic: string, from_ms: number, count: number) {
  const t = performance.now();
  const bytes = await sys.replayFrom(topic, from_ms, count);
  return { mb_per_s: mbps(bytes, performance.now() - t) };
}

/**
 * Produces stamped records at `rate_per_s`, each acknowledged on its own: first `warmup_ms` worth
 * that count for nothing (a server fresh from start runs its code cold: relaylog's first seconds
 * at 2,000 records/s queue for hundreds of ms while V8 compiles it), then `total` measured ones.
 * `from.ms` becomes the send time of the first measured record: consumers ignore records stamped
 * earlier. Resolves with the measured records' ack histogram.
 */
async function produceAtRate(sys: LogSystem, topic: string, total: number, rate_per_s: number, size: number, warmup_ms: number, from: { ms: number }): Promise<hdr.Histogram> {
  const ack = histogram();
  const warm = Math.floor((rate_per_s * warmup_ms) / 1000);
  const start = performance.now();
  const acks: Promise<unknown>[] = [];
  for (let i = 0; i < warm + total; i++) {
    const wait = start + (i * 1000) / rate_per_s - performance.now();
    if (wait > 1) await sleep(wait);
    const sent = performance.now();
    if (i === warm) from.ms = sent;
    const p = sys.produceOne(topic, stamped(size));
    acks.push(i < warm ? p : p.then(() => ack.recordValue(Math.max(1, Math.round((performance.now() - sent) * 1000)))));
  }
  await Promise.all(acks);
  return ack;
}

/**
 * (3) Produce at a fixed rate with one live tail consumer: produce->consume latency (HDR) and the
 * producer's ack latency, after a warm-up at the same rate. `delivered` is the fraction of the
 * measured records the consumer saw (1 unless lost or later than 10 s after the last ack); the
 * percentiles are over the delivered ones.
 */
export async function fixedRateLatency(sys: LogSystem, topic: string, rate_per_s: number, duration_ms: number, size = 1024, warmup_ms = 0) {
  const e2e = histogram();
  let received = 0;
  const from = { ms: Infinity };
  const stop = await sys.tail(topic, (v) => {
    const stamp = v.readDoubleBE(0);
    if (stamp < from.ms) return;
    e2e.recordValue(Math.max(1, Math.round((performance.now() - stamp) * 1000)));
    received++;
  });
  const total = Math.floor((rate_per_s * duration_ms) / 1000);
  let ack: hdr.Histogram;
  try {
    ack = await produceAtRate(sys, topic, total, rate_per_s, size, warmup_ms, from);
    const deadline = performance.now() + 10_000;
    while (received < total && performance.now() < deadline) await sleep(10);
  } finally {
    await stop();
  }
  return {
    delivered: received / total,
    e2e_p50_ms: ms_at(e2e, 50),
    e2e_p99_ms: ms_at(e2e, 99),
    e2e_p999_ms: ms_at(e2e, 99.9),
    ack_p50_ms: ms_at(ack, 50),
    ack_p99_ms: ms_at(ack, 99),
  };
}

/**
 * (4) Live fan-out: one producer at `rate_per_s`, `subscribers` tail consumers. Egress: payload
 * bytes delivered to all subscribers over the time from the first send to the last delivery.
 * Lag: each delivery's produce->consume latency, all subscribers merged (p50, p99) and the worst
 * subscriber's own p99. After a warm-up at the same rate, as in (3).
 */
export async function fanOut(sys: LogSystem, topic: string, subscribers: number, rate_per_s: number, duration_ms: number, size: number, warmup_ms = 0) {
  const hs = Array.from({ length: subscribers }, histogram);
  const counts = new Array<number>(subscribers).fill(0);
  let bytes = 0;
  let last_rx = 0;
  const stops: Array<() => Promise<void>> = [];
  const total = Math.floor((rate_per_s * duration_ms) / 1000);
  const from = { ms: Infinity };
  try {
    for (let i = 0; i < subscribers; i++) {
      stops.push(
        await sys.tail(topic, (v) => {
          const stamp = v.readDoubleBE(0);
          if (stamp < from.ms) return;
          last_rx = performance.now();
          hs[i]!.recordValue(Math.max(1, Math.round((last_rx - stamp) * 1000)));
          counts[i]!++;
          bytes += v.length;
        }),
      );
    }
    await produceAtRate(sys, topic, total, rate_per_s, size, warmup_ms, from);
    const deadline = performance.now() + 15_000;
    while (counts.some((c) => c < total) && performance.now() < deadline) await sleep(10);
  } finally {
    for (const s of stops) await s();
  }
  const start = from.ms;
  const merged = histogram();
  for (const h of hs) merged.add(h);
  return {
    egress_mb_per_s: last_rx > start ? mbps(bytes, last_rx - start) : 0,
    delivered: counts.reduce((a, b) => a + b, 0) / (total * subscribers),
    lag_p50_ms: ms_at(merged, 50),
    lag_p99_ms: ms_at(merged, 99),
    worst_subscriber_p99_ms: Math.max(...hs.map((h) => ms_at(h, 99))),
  };
}

/** Producer ack latency at a fixed rate while `readers` replay `replay_count` records of another topic. */
export async function ackLatencyUnderReplay(sys: LogSystem, topic: string, replay_topic: string, replay_count: number, readers: number, rate_per_s: number, duration_ms: number) {
  const replaying = replayThroughput(sys, replay_topic, replay_count, readers);
  replaying.catch(() => undefined); // awaited below; not an unhandled rejection if the latency part fails first
  const lat = await fixedRateLatency(sys, topic, rate_per_s, duration_ms);
  await replaying;
  return { ack_p50_ms: lat.ack_p50_ms, ack_p99_ms: lat.ack_p99_ms };
}

/**
 * Loopback TCP in one process: one connection, 1 MiB writes (used by relay-fanout.ts; run.ts
 * measures its limit between two processes, see limits.ts).
 */
export async function loopbackTcpLimit(total_bytes: number): Promise<number> {
  const chunk = Buffer.alloc(1024 * 1024, 1);
  const server = createServer((sock) => {
    let sent = 0;
    const pump = () => {
      while (sent < total_bytes) {
        sent += chunk.length;
        if (!sock.write(chunk)) return void sock.once('drain', pump);
      }
      sock.end();
    };
    pump();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const port = (server.address() as { port: number }).port;
  const t = performance.now();
  let got = 0;
  await new Promise<void>((resolve, reject) => {
    const c = netConnect(port, '127.0.0.1');
    c.on('data', (d: Buffer) => (got += d.length));
    c.on('end', () => resolve());
    c.on('error', reject);
  });
  const ms = performance.now() - t;
  await new Promise<void>((r) => server.close(() => r()));
  return mbps(got, ms);
}
