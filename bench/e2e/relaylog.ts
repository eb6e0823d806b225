import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ChildProcess } from 'node:child_process';
import { RelaylogClient, type Frame, type StartPosition } from '../../client/index.js';
import { encodeBatch, forEachBatch, forEachRecord } from '../../engine/index.js';
import { processCpuMs, startProcess, stopProcess } from './procs.js';
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
  /** Node flags for the server (default: NODE_ARGS). */
  node_args?: string[];
}

/** relaylog as a real server process (`relaylog serve`), driven through its gRPC client. */
export class RelaylogSystem implements LogSystem {
  readonly name: string;
  readonly durability: string;
  private child: ChildProcess | null = null;
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
    this.name = fsync === 'always' ? 'relaylog (single node)' : 'relaylog (fsync every 1 s)';
    this.durability =
      fsync === 'always'
        ? 'acked after fdatasync (fsync=always, group commit): survives a process crash and a power loss'
        : 'acked after write(), fsynced every second: survives a process crash, loses up to ~1 s on a power loss';
  }

  async start(): Promise<void> {
    this.dir = mkdtempSync(join(tmpdir(), 'bench-relaylog-'));
    const { child, line } = await startProcess(process.execPath, [...(this.server.node_args ?? NODE_ARGS), this.server.bin ?? BIN, 'serve', '--data', this.dir, '--listen', '127.0.0.1:0'], /relaylog listening on/);
    this.child = child;
    this.address = line.replace(/.*listening on /, '').trim();
    this.client = new RelaylogClient(this.address);
  }

  async stop(): Promise<void> {
    this.pipeline?.end();
    this.client?.close();
    await stopProcess(this.child);
    rmSync(this.dir, { recursive: true, force: true });
  }

  async createTopic(topic: string): Promise<void> {
    const flush = this.fsync === 'interval' ? { 'flush.ms': '1000', 'flush.messages': '9223372036854775807' } : {};
    await this.client!.createTopic(topic, { partitions: 1, config: { 'segment.bytes': String(256 * 1024 * 1024), ...flush } });
  }

  /** Records batched into ~1 MiB RecordBatches, up to PRODUCE_WINDOW batches in flight. */
  async produceBulk(topic: string, count: number, value: Buffer): Promise<void> {
    const per = Math.max(1, Math.floor(BATCH_BYTES / (value.length + 16)));
    const inflight = new Set<Promise<unknown>>();
    for (let sent = 0; sent < count; sent += per) {
      const n = Math.min(per, count - sent);
      const batch = encodeBatch(Array.from({ length: n }, () => ({ value })));
      const p: Promise<boolean> = this.client!.produce(topic, 0, batch).then((): boolean => inflight.delete(p));
      inflight.add(p);
      if (inflight.size >= PRODUCE_WINDOW) await Promise.race(inflight);
    }
    await Promise.all(inflight);
  }

  /** One record per set on the ordered ProducePipeline stream (what the Producer uses), not a unary call each. */
  async produceOne(topic: string, value: Buffer): Promise<void> {
    this.pipeline ??= this.client!.producePipeline();
    await this.pipeline.send(topic, 0, encodeBatch([{ value }]), 'all');
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
    return processCpuMs(this.child?.pid);
  }
}
