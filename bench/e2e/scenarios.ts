import { createServer, connect as netConnect } from 'node:net';
import hdr from 'hdr-histogram-js';
import type { LogSystem } from './system.js';

export const mbps = (bytes: number, ms: number) => bytes / (1024 * 1024) / (ms / 1000);

/** A payload whose first 8 bytes carry the send time (performance.now(), ms), for latency. */
function stamped(size: number): Buffer {
  const b = Buffer.alloc(size, 0x61);
  b.writeDoubleBE(performance.now(), 0);
  return b;
}

export async function produceThroughput(sys: LogSystem, topic: string, count: number, size: number) {
  const value = Buffer.alloc(size, 0x62);
  const cpu0 = sys.serverCpuMs();
  const t = performance.now();
  await sys.produceBulk(topic, count, value);
  const ms = performance.now() - t;
  return { records_per_s: count / (ms / 1000), mb_per_s: mbps(count * size, ms), server_cpu_ms_per_mb: (sys.serverCpuMs() - cpu0) / ((count * size) / 1048576) };
}

export async function replayThroughput(sys: LogSystem, topic: string, count: number, readers = 1) {
  const t = performance.now();
  const bytes = await Promise.all(Array.from({ length: readers }, () => sys.replay(topic, count)));
  const ms = performance.now() - t;
  return { mb_per_s: mbps(bytes.reduce((a, b) => a + b, 0), ms) };
}

/** Produce at a fixed rate with a live tail consumer: produce->consume latency and ack latency. */
export async function fixedRateLatency(sys: LogSystem, topic: string, rate_per_s: number, duration_ms: number, size = 1024) {
  const e2e = hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 60_000_000, numberOfSignificantValueDigits: 3 });
  const ack = hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 60_000_000, numberOfSignificantValueDigits: 3 });
  let received = 0;
  const stop = await sys.tail(topic, (v) => {
    e2e.recordValue(Math.max(1, Math.round((performance.now() - v.readDoubleBE(0)) * 1000)));
    received++;
  });
  const total = Math.floor((rate_per_s * duration_ms) / 1000);
  const start = performance.now();
  const acks: Promise<void>[] = [];
  for (let i = 0; i < total; i++) {
    const due = start + (i * 1000) / rate_per_s;
    const wait = due - performance.now();
    if (wait > 1) await new Promise((r) => setTimeout(r, wait));
    const sent = performance.now();
    acks.push(sys.produceOne(topic, stamped(size)).then(() => ack.recordValue(Math.max(1, Math.round((performance.now() - sent) * 1000)))));
  }
  await Promise.all(acks);
  const deadline = performance.now() + 10_000;
  while (received < total && performance.now() < deadline) await new Promise((r) => setTimeout(r, 10));
  await stop();
  const us = (h: hdr.Histogram, p: number) => h.getValueAtPercentile(p) / 1000;
  return {
    sent: total,
    received,
    e2e_p50_ms: us(e2e, 50),
    e2e_p99_ms: us(e2e, 99),
    e2e_p999_ms: us(e2e, 99.9),
    ack_p50_ms: us(ack, 50),
    ack_p99_ms: us(ack, 99),
  };
}

/** Producer ack latency at a fixed rate while `readers` replay the whole topic concurrently. */
export async function ackLatencyUnderReplay(sys: LogSystem, topic: string, replay_topic: string, replay_count: number, readers: number, rate_per_s: number, duration_ms: number) {
  const replaying = readers > 0 ? replayThroughput(sys, replay_topic, replay_count, readers) : Promise.resolve(null);
  const lat = await fixedRateLatency(sys, topic, rate_per_s, duration_ms);
  await replaying;
  return { ack_p50_ms: lat.ack_p50_ms, ack_p99_ms: lat.ack_p99_ms };
}

/** The physical limit of loopback TCP on this machine: one connection, 1 MiB writes. */
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
