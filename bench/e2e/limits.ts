/**
 * The physical limits every end-to-end figure is compared with, measured in the same run as the
 * systems (bench/e2e/run.ts measures them at the start of every round):
 *
 * - disk: sequential 1 MiB writes of the replay size to a file in the same temp dir the servers'
 *   data dirs live in (same file system), with one fdatasync at the end, and with an fdatasync
 *   after every 1 MiB; then the file read back sequentially (page cache warm, as every replay in
 *   these scenarios is: 1 GiB fits in memory).
 * - loopback TCP throughput: one connection from a child process writing 1 MiB chunks to this
 *   process (two processes, like a server and its client).
 * - loopback TCP latency: records stamped with their send time, at the scenario's fixed rate and
 *   size, from this process through a forwarding child process back to this process: the two
 *   hops a produce->consume path has (producer -> server -> consumer), with no storage and no
 *   protocol. The floor for the latency figures.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { connect as netConnect, createServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import hdr from 'hdr-histogram-js';

const MiB = 1024 * 1024;
export const mbps = (bytes: number, ms: number) => bytes / MiB / (ms / 1000);

/** Sequential write of `bytes` in 1 MiB writes; `sync_every`: fdatasync after every write, else once at the end. */
export async function diskWrite(path: string, bytes: number, sync_every: boolean): Promise<number> {
  const chunk = Buffer.alloc(MiB, 0x5a);
  const fh = await open(path, 'w');
  const t = performance.now();
  try {
    for (let done = 0; done < bytes; done += MiB) {
      await fh.write(chunk, 0, Math.min(MiB, bytes - done));
      if (sync_every) await fh.datasync();
    }
    await fh.datasync();
  } finally {
    await fh.close();
  }
  return mbps(bytes, performance.now() - t);
}

/** Sequential read of the whole file in 1 MiB reads into one reused buffer. */
export async function diskRead(path: string): Promise<number> {
  const buf = Buffer.alloc(MiB);
  const fh = await open(path, 'r');
  const t = performance.now();
  let got = 0;
  try {
    for (;;) {
      const { bytesRead } = await fh.read(buf, 0, MiB, got);
      if (bytesRead === 0) break;
      got += bytesRead;
    }
  } finally {
    await fh.close();
  }
  return mbps(got, performance.now() - t);
}

/** The child processes' code (plain JS run with `node -e`). */
const SENDER = `
const net = require('node:net');
const [port, total] = process.argv.slice(1).map(Number);
const chunk = Buffer.alloc(1024 * 1024, 1);
const s = net.connect(port, '127.0.0.1', () => {
  let sent = 0;
  const pump = () => {
    while (sent < total) {
      sent += chunk.length;
      if (!s.write(chunk)) return void s.once('drain', pump);
    }
    s.end();
  };
  pump();
});
s.on('close', () => process.exit(0));
`;
const FORWARDER = `
const net = require('node:net');
let consumer = null;
const srv = net.createServer((sock) => {
  sock.setNoDelay(true);
  if (!consumer) { consumer = sock; return; }
  sock.pipe(consumer);
  sock.on('end', () => srv.close(() => process.exit(0)));
});
srv.listen(0, '127.0.0.1', () => process.stdout.write(srv.address().port + '\\n'));
`;

/** Loopback TCP throughput: a child process sends `total_bytes` over one connection to this process. */
export async function tcpThroughput(total_bytes: number): Promise<number> {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const port = (server.address() as { port: number }).port;
  const child = spawn(process.execPath, ['-e', SENDER, String(port), String(total_bytes)], { stdio: 'ignore' });
  try {
    return await new Promise<number>((resolve, reject) => {
      child.once('error', reject);
      server.once('connection', (sock: Socket) => {
        const t = performance.now();
        let got = 0;
        sock.on('data', (d: Buffer) => (got += d.length));
        sock.on('end', () => resolve(mbps(got, performance.now() - t)));
        sock.on('error', reject);
      });
    });
  } finally {
    child.kill();
    await new Promise<void>((r) => server.close(() => r()));
  }
}

export interface LatencyFloor {
  p50_ms: number;
  p99_ms: number;
  p999_ms: number;
}

/**
 * Records of `size` bytes at `rate_per_s` for `duration_ms`, each stamped with its send time, from
 * this process through a forwarding child process and back: one-way latency over two loopback hops.
 */
export async function tcpLatencyFloor(size: number, rate_per_s: number, duration_ms: number): Promise<LatencyFloor> {
  const child = spawn(process.execPath, ['-e', FORWARDER], { stdio: ['ignore', 'pipe', 'inherit'] });
  try {
    const port = await new Promise<number>((resolve, reject) => {
      child.once('error', reject);
      child.stdout!.once('data', (d: Buffer) => resolve(Number(d.toString().trim())));
    });
    const h = hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 60_000_000, numberOfSignificantValueDigits: 3 });
    const total = Math.floor((rate_per_s * duration_ms) / 1000);
    let received = 0;
    const consumer = netConnect(port, '127.0.0.1');
    consumer.setNoDelay(true);
    await new Promise<void>((r) => consumer.once('connect', () => r()));
    let pending: Buffer = Buffer.alloc(0);
    const all = new Promise<void>((resolve) => {
      consumer.on('data', (d: Buffer) => {
        pending = pending.length === 0 ? d : Buffer.concat([pending, d]);
        const now = performance.now();
        let pos = 0;
        while (pending.length - pos >= size) {
          h.recordValue(Math.max(1, Math.round((now - pending.readDoubleBE(pos)) * 1000)));
          pos += size;
          received++;
        }
        pending = pending.subarray(pos);
        if (received >= total) resolve();
      });
    });
    // The forwarder takes its first connection as the consumer: let it see it before the producer.
    await new Promise((r) => setTimeout(r, 50));
    const producer = netConnect(port, '127.0.0.1');
    producer.setNoDelay(true);
    await new Promise<void>((r) => producer.once('connect', () => r()));
    const start = performance.now();
    for (let i = 0; i < total; i++) {
      const wait = start + (i * 1000) / rate_per_s - performance.now();
      if (wait > 1) await new Promise((r) => setTimeout(r, wait));
      const b = Buffer.alloc(size, 0x61);
      b.writeDoubleBE(performance.now(), 0);
      producer.write(b);
    }
    await Promise.race([all, new Promise((r) => setTimeout(r, 10_000))]);
    producer.end();
    consumer.destroy();
    const at = (p: number) => h.getValueAtPercentile(p) / 1000;
    return { p50_ms: at(50), p99_ms: at(99), p999_ms: at(99.9) };
  } finally {
    child.kill();
  }
}

export interface Limits {
  disk_write_mb_per_s: number;
  disk_write_sync_mb_per_s: number;
  disk_read_mb_per_s: number;
  tcp_mb_per_s: number;
  [k: `tcp_latency_${string}`]: number;
}

/** Every limit once: disk (of `bytes`), TCP throughput (of `bytes`), TCP latency at each (size, rate). */
export async function measureLimits(bytes: number, latency: Array<{ label: string; size: number; rate_per_s: number; duration_ms: number }>): Promise<Limits> {
  const dir = mkdtempSync(join(tmpdir(), 'bench-limits-'));
  try {
    const file = join(dir, 'raw');
    const disk_write_sync_mb_per_s = await diskWrite(file, bytes, true);
    const disk_write_mb_per_s = await diskWrite(file, bytes, false);
    const disk_read_mb_per_s = await diskRead(file);
    rmSync(file);
    const out: Limits = { disk_write_mb_per_s, disk_write_sync_mb_per_s, disk_read_mb_per_s, tcp_mb_per_s: await tcpThroughput(bytes) };
    for (const l of latency) {
      const f = await tcpLatencyFloor(l.size, l.rate_per_s, l.duration_ms);
      out[`tcp_latency_${l.label}_p50_ms`] = f.p50_ms;
      out[`tcp_latency_${l.label}_p99_ms`] = f.p99_ms;
      out[`tcp_latency_${l.label}_p999_ms`] = f.p999_ms;
    }
    return out;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
