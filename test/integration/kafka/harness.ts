import { Kafka, logLevel, type KafkaConfig } from 'kafkajs';
import { LogStore } from '../../../engine/log/log-store.js';
import type { StoreOptions } from '../../../engine/log/types.js';
import { KafkaListener, type KafkaListenerOptions } from '../../../server/kafka/index.js';
import type { ServerLogger } from '../../../server/rpc/context.js';
import { tempDir } from '../../support/tmp.js';

export interface LogLine {
  level: 'debug' | 'info' | 'warn' | 'error';
  obj: object;
  msg: string;
}

/** A logger that keeps every line, so tests can assert what the listener said. */
export function recordingLogger(): ServerLogger & { lines: LogLine[] } {
  const lines: LogLine[] = [];
  const at = (level: LogLine['level']) => (obj: object, msg: string) => {
    lines.push({ level, obj, msg });
    if (level === 'error' && process.env.KAFKA_TEST_LOG) console.error(msg, obj);
  };
  return { lines, debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') };
}

/** A LogStore in a temp dir with a KafkaListener on 127.0.0.1:0 over it; `restart()` reopens both on the same dir. */
export class KafkaHarness {
  store!: LogStore;
  listener!: KafkaListener;
  readonly logger = recordingLogger();
  private readonly tmp = tempDir('relaylog-kafka-');
  private readonly clients: Array<{ disconnect(): Promise<void> }> = [];

  constructor(private readonly opts: { store?: Partial<StoreOptions>; listener?: Partial<KafkaListenerOptions> } = {}) {}

  get dir(): string {
    return this.tmp.dir;
  }

  async start(): Promise<this> {
    this.store = await LogStore.open({ dir: this.tmp.dir, retention_check_interval_ms: 0, compaction_interval_ms: 0, disk_free_floor_bytes: 0, topic_defaults: { fsync: { policy: 'never' } }, ...this.opts.store });
    this.listener = await KafkaListener.start({ store: this.store, listen: '127.0.0.1:0', logger: this.logger, ...this.opts.listener });
    return this;
  }

  async restart(): Promise<void> {
    await this.stopServer();
    await this.start();
  }

  get broker(): string {
    return this.listener.address;
  }

  kafka(config: Partial<KafkaConfig> = {}): Kafka {
    return new Kafka({ clientId: 'relaylog-test', brokers: [this.broker], logLevel: logLevel.NOTHING, retry: { retries: 3, initialRetryTime: 50, maxRetryTime: 500 }, connectionTimeout: 2000, ...config });
  }

  /** Registers a kafkajs client (producer, consumer, admin) to be disconnected on stop(). */
  track<T extends { disconnect(): Promise<void> }>(client: T): T {
    this.clients.push(client);
    return client;
  }

  private async stopServer(): Promise<void> {
    await this.listener?.stop();
    await this.store?.close();
  }

  async stop(): Promise<void> {
    for (const c of this.clients.splice(0)) await c.disconnect().catch(() => undefined);
    await this.stopServer();
    this.tmp.cleanup();
  }
}

/** Polls `cond` every 20 ms until true or `timeout_ms` passes (then throws with `what`). */
export async function waitUntil(cond: () => boolean, timeout_ms: number, what: string): Promise<void> {
  const deadline = Date.now() + timeout_ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeout_ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
