import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ChildProcess } from 'node:child_process';
import { RelaylogClient, type Frame, type StartPosition } from '../../client/index.js';
import { encodeBatch, forEachBatch, forEachRecord } from '../../engine/index.js';
import { freePort, processCpuMs, SERVER_ENV, SERVER_NODE_ARGS, startProcess, stopProcess } from './procs.js';
import type { LogSystem } from './system.js';

/** This tree's CLI; BENCH_RELAYLOG_BIN=/path/to/bin/relaylog.js runs another build under the same harness. */
const BIN = process.env.BENCH_RELAYLOG_BIN || fileURLToPath(new URL('../../../bin/relaylog.js', import.meta.url));
const BATCH_BYTES = 1024 * 1024;
const PRODUCE_WINDOW = 8;
/** Subscribe frames of up to 4 MiB (whole batches). */
const FRAME_BYTES = 4 * 1024 * 1024;
/** Extra node flags for the server process, e.g. BENCH_RELAYLOG_NODE_ARGS='--cpu-prof --cpu-prof-dir=/tmp/prof'. */
const NODE_ARGS = (process.env.BENCH_RELAYLOG_NODE_ARGS ?? '').split(' ').filter(Boolean);

export interface RelaylogServerOptions {
  /** The CLI to start (default: BIN). */
  bin?: string;
  /** Node flags for the server besides SERVER_NODE_ARGS (default: NODE_ARGS). */
  node_args?: string[];
  /** 3: a Raft cluster of three server processes on loopback, every partition on all three (R3). */
  nodes?: 1 | 3;
}

/** relaylog as a real server process (`relaylog serve`), driven through its gRPC client. */
export class RelaylogSystem implements LogSystem {
  readonly name: string;
  readonly durability: string;
  private child: ChildProcess | null = null;
  /** The other two nodes of an R3 cluster. */
  private peers: ChildProcess[] = [];
  private peer_dirs: string[] = [];
  private client: RelaylogClient | null = null;
  private dir = '';
  private address = '';
  private pipeline: ReturnType<RelaylogClient['producePipeline']> | null = null;

  /**
   * `fsync`: 'always' (the default: acked after fdatasync) or 'interval' (fsync once a second, acked
   * on write: the durability Redis's appendfsync everysec and JetStream's defaults give), so that
   * each peer is compared at the durability it offers.
   */
  constructor(
    private readonly fsync: 'always' | 'interval' = 'always',
    private readonly server: RelaylogServerOptions = {},
  ) {
    const r3 = server.nodes === 3;
    this.name = (fsync === 'always' ? 'relaylog (single node)' : 'relaylog (fsync every 1 s)').replace(/^relaylog/, r3 ? 'relaylog R3' : 'relaylog');
    this.durability =
      (fsync === 'always'
        ? 'acked after fdatasync (fsync=always, group commit): survives a process crash and a power loss'
        : 'acked after write(), fsynced every second: survives a process crash, loses up to ~1 s on a power loss') +
      (r3 ? '; acked once a quorum of the 3 nodes has it (acks=all)' : '');
  }

  async start(): Promise<void> {
    if (this.server.nodes === 3) return this.startCluster();
    this.dir = mkdtempSync(join(tmpdir(), 'bench-relaylog-'));
    const { child, line } = await startProcess(process.execPath, [...SERVER_NODE_ARGS, ...(this.server.node_args ?? NODE_ARGS), this.server.bin ?? BIN, 'serve', '--data', this.dir, '--listen', '127.0.0.1:0'], /relaylog listening on/, 20_000, SERVER_ENV);
    this.child = child;
    this.address = line.replace(/.*listening on /, '').trim();
    this.client = new RelaylogClient(this.address);
  }

  /** Three `relaylog serve --node-id N --peers ...` processes; the client gets all three addresses and follows the leader. */
  private async startCluster(): Promise<void> {
    const ports = [await freePort(), await freePort(), await freePort()];
    const peers = ports.map((p, i) => `${i + 1}=127.0.0.1:${p}`).join(',');
    const dirs = ports.map(() => mkdtempSync(join(tmpdir(), 'bench-relaylog-')));
    this.dir = dirs[0]!;
    this.peer_dirs = dirs.slice(1);
    const started = await Promise.all(
      ports.map((p, i) =>
        startProcess(
          process.execPath,
          [...SERVER_NODE_ARGS, ...(this.server.node_args ?? NODE_ARGS), this.server.bin ?? BIN, 'serve', '--data', dirs[i]!, '--listen', `127.0.0.1:${p}`, '--node-id', String(i + 1), '--peers', peers],
          /relaylog listening on/,
          20_000,
          SERVER_ENV,
        ),
      ),
    );
    this.child = started[0]!.child;
    this.peers = started.slice(1).map((x) => x.child);
    this.address = ports.map((p) => `127.0.0.1:${p}`).join(',');
    this.client = new RelaylogClient(this.address);
  }

  async stop(): Promise<void> {
    this.pipeline?.end();
    this.client?.close();
    await Promise.all([this.child, ...this.peers].map((c) => stopProcess(c)));
    for (const d of [this.dir, ...this.peer_dirs]) rmSync(d, { recursive: true, force: true });
  }

  async createTopic(topic: string): Promise<void> {
    const flush = this.fsync === 'interval' ? { 'flush.ms': '1000', 'flush.messages': '9223372036854775807' } : {};
    await this.client!.createTopic(topic, { partitions: 1, config: { 'segment.bytes': String(256 * 1024 * 1024), ...flush } });
    if (this.server.nodes === 3) await this.electedLeader(topic);
  }

  /** Waits (bounded) until the new topic's partition has a Raft leader, so that the first produce does not meet the election. */
  private async electedLeader(topic: string): Promise<void> {
    for (let i = 0; i < 150; i++) {
      const d = await this.client!.describeTopic(topic).catch(() => null);
      if (d?.partitions[0]?.leader_id) return;
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(`${topic}: no Raft leader elected within 15 s`);
  }

  /**
   * Record sets of ~1 MiB, PRODUCE_WINDOW in flight, on the ordered ProducePipeline stream (what
   * the Producer uses; a unary call per set cost the server a fifth more CPU per MB at 64 KiB
   * records). The first set goes as a unary produce, which follows redirects, so that on a
   * cluster the pipeline opens at the leader. Each set is encoded afresh (timestamps, CRC) into
   * one of PRODUCE_WINDOW + 1 reused buffers, a buffer being reused only once its produce has
   * settled (as produce() requires): the other systems' harnesses publish the same value buffer
   * again and again, and fresh 1 MiB buffers would charge relaylog's side a page fault per 4 KiB.
   */
  async produceBulk(topic: string, count: number, value: Buffer): Promise<void> {
    const pipeline = this.client!.producePipeline();
    try {
      await bulkSets(count, value, (batch, first) => (first ? this.client!.produce(topic, 0, batch) : pipeline.send(topic, 0, batch, 'all')));
    } finally {
      pipeline.end();
    }
  }

  /** One record per set on the ordered ProducePipeline stream (what the Producer uses), not a unary call each. */
  async produceOne(topic: string, value: Buffer): Promise<void> {
    this.pipeline ??= this.client!.producePipeline();
    const batch = encodeBatch([{ value }]);
    // On a cluster the pipeline learns the leader from its first NOT_LEADER answer (and sets behind
    // it are ABORTED): retried as the Producer would, so only the first sends pay for it.
    for (let attempt = 0; ; attempt++) {
      try {
        await this.pipeline.send(topic, 0, batch, 'all');
        return;
      } catch (err) {
        if (attempt >= 10 || !(err as { retriable?: boolean }).retriable) throw err;
      }
    }
  }

  async replay(topic: string, count: number): Promise<number> {
    return this.read(topic, { position: 'earliest' }, count, 0);
  }

  /** Subscribe by timestamp: the server finds the offset (time index); whole batches may start a little earlier, and the client skips those records. */
  async replayFrom(topic: string, timestamp_ms: number, count: number): Promise<number> {
    return this.read(topic, { timestamp_ms }, count, timestamp_ms);
  }

  /** A reader's own client and connection (as Redis's and JetStream's readers have), so its frames never queue with the producer's acks. */
  private reader(): RelaylogClient {
    return new RelaylogClient(this.address, { own_connection: true });
  }

  private async read(topic: string, start: StartPosition, count: number, from_ms: number): Promise<number> {
    const client = this.reader();
    const stream = client.subscribe(topic, 0, start, FRAME_BYTES);
    let n = 0;
    let bytes = 0;
    try {
      for await (const frame of stream as AsyncIterable<Frame>) {
        forEachBatch(frame.records, (pos, size) => {
          forEachRecord(frame.records.subarray(pos, pos + size), (r) => {
            if (r.timestamp_ms < from_ms || n >= count) return;
            n++;
            bytes += r.value?.length ?? 0;
          });
        });
        if (n >= count) break;
      }
    } finally {
      stream.cancel();
      client.close();
    }
    if (n < count) throw new Error(`${topic}: the subscription ended after ${n} of ${count} records`);
    return bytes;
  }

  /** Subscribes at the high watermark read first, so that nothing produced after this resolves is missed. */
  async tail(topic: string, onValue: (value: Buffer) => void): Promise<() => Promise<void>> {
    const client = this.reader();
    const { high_watermark } = await client.listOffsets(topic, 0, { position: 'latest' });
    const stream = client.subscribe(topic, 0, { offset: high_watermark });
    const done = (async () => {
      for await (const frame of stream as AsyncIterable<Frame>) {
        forEachBatch(frame.records, (pos, size) =>
          forEachRecord(frame.records.subarray(pos, pos + size), (r) => void (r.offset >= high_watermark && r.value && onValue(r.value))),
        );
      }
    })().catch(() => undefined);
    return async () => {
      stream.cancel();
      await done;
      client.close();
    };
  }

  serverCpuMs(): number {
    return [this.child, ...this.peers].reduce((n, c) => n + processCpuMs(c?.pid), 0);
  }

  /** HOST:PORT of the server (comma-separated for a cluster), for clients in other processes. */
  serverAddress(): string {
    return this.address;
  }
}

/** produceBulk's sets: `send(batch, first)` each, PRODUCE_WINDOW in flight, batch buffers reused once settled. */
async function bulkSets(count: number, value: Buffer, send: (batch: Buffer, first: boolean) => Promise<unknown>): Promise<void> {
  const per = Math.max(1, Math.floor(BATCH_BYTES / (value.length + 16)));
  const inflight = new Set<Promise<unknown>>();
  const spare: Buffer[] = [];
  for (let sent = 0; sent < count; sent += per) {
    const n = Math.min(per, count - sent);
    let buf: Buffer | undefined;
    const batch = encodeBatch(Array.from({ length: n }, () => ({ value })), {
      into: (size) => {
        buf = spare.pop();
        if (buf === undefined || buf.length < size) buf = Buffer.allocUnsafe(size);
        return buf.subarray(0, size);
      },
    });
    const p: Promise<boolean> = send(batch, sent === 0).then((): boolean => {
      spare.push(buf!);
      return inflight.delete(p);
    });
    inflight.add(p);
    // The first set alone: its answer tells the client the leader before the pipeline opens.
    if (inflight.size >= PRODUCE_WINDOW || sent === 0) await Promise.race(inflight);
  }
  await Promise.all(inflight);
}
