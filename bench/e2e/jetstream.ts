import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { AckPolicy, DeliverPolicy, StorageType, connect, type ConsumerConfig, type JetStreamClient, type JsMsg, type NatsConnection } from 'nats';
import { freePort, processCpuMs, startProcess, stopProcess } from './procs.js';
import type { LogSystem } from './system.js';

const PUBLISH_WINDOW = 512;
/** The client's 5 s default times out on a loaded two-core machine with 512 publishes in flight. */
const PUBLISH_TIMEOUT_MS = 60_000;
/**
 * Bytes one reader asks the server for at a time (a pull of this many bytes' worth of messages,
 * refilled as they arrive), like relaylog's 4 MiB frames and its 8 MiB per-subscriber window.
 *
 * Why this bound exists (the "JetStream hangs on a loaded machine" finding): nats-server keeps at
 * most max_pending (64 MiB) of outbound data per client connection; past it, or when the socket
 * has not drained for write_deadline, it logs "Slow Consumer Detected", drops what it could not
 * write and closes the connection. The harness used to pull 4096 messages per request (256 MiB of
 * 64 KiB records) and ran 8 readers on the one connection the producer also used: whenever the
 * loaded machine kept this process from reading its socket for a moment, the server dropped
 * messages and the connection. With AckPolicy.None nothing is redelivered, so a reader waiting for
 * `count` records waited forever ("a stalled pull consumer"), and the producer's publishes on the
 * dropped connection lost their acks ("publish timeouts"). Now each reader has its own connection,
 * asks for at most PULL_BYTES at a time, and fails at once on a gap in stream sequences or a
 * disconnect instead of waiting for records that will not come.
 */
const PULL_BYTES = 4 * 1024 * 1024;

/**
 * NATS JetStream, file storage, driven by the npm `nats` client: one server (R1), or with
 * `replicas: 3` three nats-servers in a loopback cluster and every stream replicated on all three.
 */
export class JetStreamSystem implements LogSystem {
  readonly name: string;
  readonly durability: string;
  private child: ChildProcess | null = null;
  /** The other two servers of an R3 cluster. */
  private peers: ChildProcess[] = [];
  private peer_dirs: string[] = [];
  private urls: string[] = [];
  private nc: NatsConnection | null = null;
  private js: JetStreamClient | null = null;
  private dir = '';
  private port = 0;
  private log = '';
  /** Payload size last produced to each topic, to size pulls in messages. */
  private readonly record_bytes = new Map<string, number>();
  private readonly readers = new Set<NatsConnection>();

  constructor(private readonly replicas: 1 | 3 = 1) {
    this.name = replicas === 1 ? 'NATS JetStream R1 (file)' : 'NATS JetStream R3 (file, 3 servers)';
    this.durability =
      replicas === 1
        ? "acked once in the server's page cache (JetStream 2.9 fsyncs every 2 min by default): survives a process crash, not a power loss"
        : "acked once a majority of the 3 servers has it in its page cache (no fsync by default): survives the loss of one server's process";
  }

  async start(): Promise<void> {
    this.dir = mkdtempSync(join(tmpdir(), 'bench-jetstream-'));
    this.port = await freePort();
    if (this.replicas === 3) return this.startCluster();
    this.urls = [`127.0.0.1:${this.port}`];
    ({ child: this.child } = await startProcess('nats-server', ['-js', '-sd', this.dir, '-a', '127.0.0.1', '-p', String(this.port)], /Server is ready/));
    this.afterStart();
    this.nc = await this.connection();
    this.js = this.nc.jetstream();
  }

  /** Three servers with routes to each other (a JetStream cluster needs a name and a name per server). */
  private async startCluster(): Promise<void> {
    const ports = [this.port, await freePort(), await freePort()];
    const routes = [await freePort(), await freePort(), await freePort()];
    this.urls = ports.map((p) => `127.0.0.1:${p}`);
    this.peer_dirs = [mkdtempSync(join(tmpdir(), 'bench-jetstream-')), mkdtempSync(join(tmpdir(), 'bench-jetstream-'))];
    const dirs = [this.dir, ...this.peer_dirs];
    const started = await Promise.all(
      [0, 1, 2].map((i) =>
        startProcess(
          'nats-server',
          // prettier-ignore
          ['-js', '-sd', dirs[i]!, '-a', '127.0.0.1', '-p', String(ports[i]), '-n', `bench-${i + 1}`, '--cluster_name', 'bench',
            '--cluster', `nats://127.0.0.1:${routes[i]}`, '--routes', routes.filter((_, j) => j !== i).map((r) => `nats://127.0.0.1:${r}`).join(',')],
          /Server is ready/,
        ),
      ),
    );
    this.child = started[0]!.child;
    this.peers = [started[1]!.child, started[2]!.child];
    this.afterStart();
    // JetStream answers only once the meta group has elected a leader.
    for (let i = 0; ; i++) {
      try {
        this.nc = await this.connection();
        await (await this.nc.jetstreamManager()).getAccountInfo();
        break;
      } catch (err) {
        await this.nc?.close().catch(() => undefined);
        if (i >= 100) throw new Error(`the JetStream cluster did not become ready: ${(err as Error).message}\n${this.log}`);
        await new Promise((r) => setTimeout(r, 200));
      }
    }
    this.js = this.nc.jetstream();
  }

  private afterStart(): void {
    // Keep the server's warnings (slow consumers, write deadlines) for error messages.
    const keep = (d: Buffer) => (this.log = (this.log + d.toString()).slice(-4000));
    for (const c of [this.child!, ...this.peers]) {
      c.stdout?.on('data', keep);
      c.stderr?.on('data', keep);
    }
  }

  private connection(): Promise<NatsConnection> {
    return connect({ servers: this.urls, maxPingOut: 100, reconnect: false });
  }

  async stop(): Promise<void> {
    for (const r of this.readers) await r.close().catch(() => undefined);
    await this.nc?.close().catch(() => undefined);
    await Promise.all([this.child, ...this.peers].map((c) => stopProcess(c)));
    for (const d of [this.dir, ...this.peer_dirs]) rmSync(d, { recursive: true, force: true });
  }

  async createTopic(topic: string): Promise<void> {
    const jsm = await this.nc!.jetstreamManager();
    await jsm.streams.add({ name: topic, subjects: [`${topic}.>`], storage: StorageType.File, num_replicas: this.replicas, max_msg_size: 8 * 1024 * 1024 });
  }

  async produceBulk(topic: string, count: number, value: Buffer): Promise<void> {
    this.record_bytes.set(topic, value.length);
    const inflight = new Set<Promise<unknown>>();
    for (let i = 0; i < count; i++) {
      const p: Promise<boolean> = this.js!.publish(`${topic}.x`, value, { timeout: PUBLISH_TIMEOUT_MS }).then((): boolean => inflight.delete(p));
      inflight.add(p);
      if (inflight.size >= PUBLISH_WINDOW) await Promise.race(inflight);
    }
    await Promise.all(inflight);
  }

  async produceOne(topic: string, value: Buffer): Promise<void> {
    this.record_bytes.set(topic, value.length);
    await this.js!.publish(`${topic}.x`, value, { timeout: PUBLISH_TIMEOUT_MS });
  }

  /**
   * Reads from an ephemeral pull consumer without acks on a connection of its own, calling onMsg
   * until it returns false (or `stop` is called). Throws on a gap in stream sequences (messages
   * the server dropped) or when the connection closes under it.
   */
  private async read(topic: string, config: Partial<ConsumerConfig>, onMsg: (m: JsMsg) => boolean): Promise<{ done: Promise<void>; stop: () => Promise<void> }> {
    const nc = await this.connection();
    this.readers.add(nc);
    const jsm = await nc.jetstreamManager();
    const info = await jsm.consumers.add(topic, { ack_policy: AckPolicy.None, inactive_threshold: 30e9, ...config });
    const c = await nc.jetstream().consumers.get(topic, info.name);
    const max_messages = Math.max(1, Math.floor(PULL_BYTES / (this.record_bytes.get(topic) ?? 1024)));
    const msgs = await c.consume({ max_messages });
    let failure: Error | null = null;
    let closing = false;
    const fail = (why: string) => {
      const warnings = this.log.split('\n').filter((l) => /WRN|ERR|Slow/.test(l)).slice(-3).join(' | ') || '(none)';
      failure ??= new Error(`JetStream reader of ${topic}: ${why}; server warnings: ${warnings}`);
      void msgs.close().catch(() => undefined);
    };
    void nc.closed().then((err) => {
      if (!closing) fail(`its connection closed${err ? ` (${err.message})` : ''}`);
    });
    let expected = -1;
    const done = (async () => {
      try {
        for await (const m of msgs) {
          if (expected !== -1 && m.seq !== expected) fail(`stream sequence ${m.seq} where ${expected} was due: the server dropped messages`);
          expected = m.seq + 1;
          if (failure || !onMsg(m)) break;
        }
      } finally {
        closing = true;
        // Not awaited: close() resolves only when an iteration consumes the stop it queues, and
        // after a `break` nobody iterates (awaiting it here was a hang of its own).
        void msgs.close().catch(() => undefined);
        this.readers.delete(nc);
        await nc.close().catch(() => undefined);
      }
      if (failure) throw failure;
    })();
    return {
      done,
      stop: async () => {
        void msgs.close().catch(() => undefined);
        await done.catch(() => undefined);
      },
    };
  }

  private async readCount(topic: string, config: Partial<ConsumerConfig>, count: number, from_ms = 0): Promise<number> {
    let n = 0;
    let bytes = 0;
    let early: number | null = null;
    const r = await this.read(topic, config, (m) => {
      const ts_ms = m.info.timestampNanos / 1e6;
      if (ts_ms < from_ms) early = ts_ms;
      bytes += m.data.length;
      return ++n < count;
    });
    await r.done;
    if (early !== null) throw new Error(`JetStream delivered a record stamped ${early}, before the start time ${from_ms}`);
    if (n < count) throw new Error(`JetStream reader of ${topic} ended after ${n} of ${count} records`);
    return bytes;
  }

  replay(topic: string, count: number): Promise<number> {
    return this.readCount(topic, { deliver_policy: DeliverPolicy.All }, count);
  }

  replayFrom(topic: string, timestamp_ms: number, count: number): Promise<number> {
    return this.readCount(topic, { deliver_policy: DeliverPolicy.StartTime, opt_start_time: new Date(timestamp_ms).toISOString() }, count, timestamp_ms);
  }

  /** DeliverPolicy.New: the consumer exists (and its start is fixed) before this resolves. */
  async tail(topic: string, onValue: (value: Buffer) => void): Promise<() => Promise<void>> {
    const r = await this.read(topic, { deliver_policy: DeliverPolicy.New }, (m) => {
      onValue(Buffer.from(m.data.buffer, m.data.byteOffset, m.data.length));
      return true;
    });
    r.done.catch(() => undefined);
    return r.stop;
  }

  serverCpuMs(): number {
    return [this.child, ...this.peers].reduce((n, c) => n + processCpuMs(c?.pid), 0);
  }
}
