import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { AckPolicy, DeliverPolicy, StorageType, connect, type JetStreamClient, type NatsConnection } from 'nats';
import { freePort, processCpuMs, startProcess, stopProcess } from './procs.js';
import type { LogSystem } from './system.js';

const PUBLISH_WINDOW = 512;
/** The client's 5 s default times out on a loaded two-core machine with 512 publishes in flight. */
const PUBLISH_TIMEOUT_MS = 60_000;

/** NATS JetStream, R1, file storage, driven by the npm `nats` client. */
export class JetStreamSystem implements LogSystem {
  readonly name = 'NATS JetStream R1 (file)';
  readonly durability = 'acked once in the server\'s page cache (JetStream 2.9 fsyncs every 2 min by default): survives a process crash, not a power loss';
  private child: ChildProcess | null = null;
  private nc: NatsConnection | null = null;
  private js: JetStreamClient | null = null;
  private dir = '';

  async start(): Promise<void> {
    this.dir = mkdtempSync(join(tmpdir(), 'bench-jetstream-'));
    const port = await freePort();
    ({ child: this.child } = await startProcess('nats-server', ['-js', '-sd', this.dir, '-a', '127.0.0.1', '-p', String(port)], /Server is ready/));
    this.nc = await connect({ servers: `127.0.0.1:${port}`, maxPingOut: 100 });
    this.js = this.nc.jetstream();
  }

  async stop(): Promise<void> {
    await this.nc?.close().catch(() => undefined);
    await stopProcess(this.child);
    rmSync(this.dir, { recursive: true, force: true });
  }

  async createTopic(topic: string): Promise<void> {
    const jsm = await this.nc!.jetstreamManager();
    await jsm.streams.add({ name: topic, subjects: [`${topic}.>`], storage: StorageType.File, num_replicas: 1, max_msg_size: 8 * 1024 * 1024 });
  }

  async produceBulk(topic: string, count: number, value: Buffer): Promise<void> {
    const inflight = new Set<Promise<unknown>>();
    for (let i = 0; i < count; i++) {
      const p: Promise<boolean> = this.js!.publish(`${topic}.x`, value, { timeout: PUBLISH_TIMEOUT_MS }).then((): boolean => inflight.delete(p));
      inflight.add(p);
      if (inflight.size >= PUBLISH_WINDOW) await Promise.race(inflight);
    }
    await Promise.all(inflight);
  }

  async produceOne(topic: string, value: Buffer): Promise<void> {
    await this.js!.publish(`${topic}.x`, value, { timeout: PUBLISH_TIMEOUT_MS });
  }

  /** An ephemeral pull consumer without acks (the npm client's ordered consumer hung the event loop here). */
  private async consumer(topic: string, deliver_policy: DeliverPolicy) {
    const jsm = await this.nc!.jetstreamManager();
    const info = await jsm.consumers.add(topic, { ack_policy: AckPolicy.None, deliver_policy, inactive_threshold: 30e9 });
    return this.js!.consumers.get(topic, info.name);
  }

  async replay(topic: string, count: number): Promise<number> {
    const c = await this.consumer(topic, DeliverPolicy.All);
    let n = 0;
    let bytes = 0;
    while (n < count) {
      const batch = await c.fetch({ max_messages: Math.min(4096, count - n), expires: 5000 });
      for await (const m of batch) {
        bytes += m.data.length;
        n++;
      }
    }
    return bytes;
  }

  async tail(topic: string, onValue: (value: Buffer) => void): Promise<() => Promise<void>> {
    const c = await this.consumer(topic, DeliverPolicy.New);
    const msgs = await c.consume({ max_messages: 1024 });
    const done = (async () => {
      for await (const m of msgs) onValue(Buffer.from(m.data.buffer, m.data.byteOffset, m.data.length));
    })();
    return async () => {
      await msgs.close();
      await done.catch(() => undefined);
    };
  }

  serverCpuMs(): number {
    return processCpuMs(this.child?.pid);
  }
}

