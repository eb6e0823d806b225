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

/** NATS JetStream, R1, file storage, driven by the npm `nats` client. */
export class JetStreamSystem implements LogSystem {
  readonly name = 'NATS JetStream R1 (file)';
  readonly durability = "acked once in the server's page cache (JetStream 2.9 fsyncs every 2 min by default): survives a process crash, not a power loss";
  private child: ChildProcess | null = null;
  private nc: NatsConnection | null = null;
  private js: JetStreamClient | null = null;
  private dir = '';
  private port = 0;
  private log = '';
  /** Payload size last produced to each topic, to size pulls in messages. */
  private readonly record_bytes = new Map<string, number>();
  private readonly readers = new Set<NatsConnection>();

  async start(): Promise<void> {
    this.dir = mkdtempSync(join(tmpdir(), 'bench-jetstream-'));
    this.port = await freePort();
    ({ child: this.child } = await startProcess('nats-server', ['-js', '-sd', this.dir, '-a', '127.0.0.1', '-p', String(this.port)], /Server is ready/));
    // Keep the server's warnings (slow consumers, write deadlines) for error messages.
    const keep = (d: Buffer) => (this.log = (this.log + d.toString()).slice(-4000));
    this.child.stdout?.on('data', keep);
    this.child.stderr?.on('data', keep);
    this.nc = await this.connection();
    this.js = this.nc.jetstream();
  }

  private connection(): Promise<NatsConnection> {
    return connect({ servers: `127.0.0.1:${this.port}`, maxPingOut: 100, reconnect: false });
  }

  async stop(): Promise<void> {
    for (const r of this.readers) await r.close().catch(() => undefined);
    await this.nc?.close().catch(() => undefined);
    await stopProcess(this.child);
    rmSync(this.dir, { recursive: true, force: true });
  }

  async createTopic(topic: string): Promise<void> {
    const jsm = await this.nc!.jetstreamManager();
    await jsm.streams.add({ name: topic, subjects: [`${topic}.>`], storage: StorageType.File, num_replicas: 1, max_msg_size: 8 * 1024 * 1024 });
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
    return processCpuMs(this.child?.pid);
  }
}
