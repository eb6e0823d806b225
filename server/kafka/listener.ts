import { createServer, type Server, type Socket } from 'node:net';
import { systemClock, type Clock } from '../../engine/base/clock.js';
import { invalidArgument } from '../../engine/base/errors.js';
import type { LogStore } from '../../engine/log/log-store.js';
import type { ServerLogger } from '../rpc/context.js';
import { parseListen } from '../rpc/listen-address.js';
import { KafkaConnection } from './connection.js';
import type { AdvertisedNode, KafkaClusterView, KafkaContext } from './context.js';
import { GroupCoordinator } from './group/coordinator.js';
import { kafkaLimits, type KafkaLimits } from './limits.js';

export interface KafkaListenerOptions {
  /** An open store; the listener never closes it (the gRPC server may share it). */
  store: LogStore;
  /** HOST:PORT to listen on; port 0 picks a free one (see `address`). */
  listen: string;
  /** HOST:PORT that Metadata and FindCoordinator tell clients to connect to (for NAT, containers). Default: the listen address, or for a wildcard listen address the address each client connected to. */
  advertised?: string;
  logger: ServerLogger;
  /** The store is a read-only relay replica: Produce and CreateTopics are refused with NOT_LEADER_OR_FOLLOWER (6). */
  relay?: { upstreams: string[] };
  limits?: Partial<KafkaLimits>;
  /** The broker id in Metadata (default 0; a cluster node's Raft node id). */
  node_id?: number;
  /** On a Raft cluster node: the cluster as Metadata reports it. */
  cluster?: KafkaClusterView;
  /** The cluster id in Metadata v2+ (default "relaylog"). */
  cluster_id?: string;
  /** Metadata creates unknown topics (1 partition, default config) when the client allows it (default false). */
  auto_create_topics?: boolean;
  clock?: Clock;
  /** Called once per record set appended by a Kafka produce (the gRPC server paces catch-up replay on it). */
  on_append?: () => void;
}

const WILDCARD_HOSTS = new Set(['0.0.0.0', '::', '[::]']);
const unbracket = (host: string) => host.replace(/^\[(.*)\]$/, '$1');

/**
 * The Kafka wire-protocol listener: existing Kafka clients produce to and consume from a LogStore
 * (docs/kafka.md). Lifecycle: `KafkaListener.start()` binds; `stop()` stops accepting, ends long
 * polls, answers waiting group joins with NOT_COORDINATOR, lets answered-in-flight requests drain
 * (then closes connections), and waits for every append it started. It does not close the store.
 * stop() is idempotent.
 */
export class KafkaListener {
  private readonly connections = new Set<KafkaConnection>();
  private readonly inflight = new Set<Promise<unknown>>();
  private readonly stopping = new AbortController();
  private readonly coordinator: GroupCoordinator;
  private readonly ctx: KafkaContext;
  private stopped: Promise<void> | null = null;
  private bound = '';
  private bound_port = 0;

  private constructor(private readonly server: Server, private readonly opts: KafkaListenerOptions, readonly limits: KafkaLimits) {
    const clock = opts.clock ?? systemClock;
    this.coordinator = new GroupCoordinator({ clock, limits, logger: opts.logger });
    const inflight = this.inflight;
    let creating: Promise<unknown> = Promise.resolve();
    this.ctx = {
      store: opts.store,
      limits,
      logger: opts.logger,
      clock,
      coordinator: this.coordinator,
      cluster_id: opts.cluster_id ?? 'relaylog',
      relay: opts.relay ? { upstreams: [...opts.relay.upstreams] } : null,
      cluster: opts.cluster ?? null,
      auto_create_topics: opts.auto_create_topics ?? false,
      stopping: this.stopping.signal,
      noteAppend: opts.on_append ?? (() => undefined),
      createTopic(name, config) {
        const created = creating.then(() => opts.store.createTopic(name, config));
        creating = created.catch(() => undefined);
        return this.track(created);
      },
      track<T>(work: Promise<T>): Promise<T> {
        inflight.add(work);
        const forget = () => inflight.delete(work);
        work.then(forget, forget);
        return work;
      },
    };
  }

  static async start(opts: KafkaListenerOptions): Promise<KafkaListener> {
    const { host, port } = parseListen(opts.listen);
    if (opts.advertised !== undefined) parseListen(opts.advertised);
    const limits: KafkaLimits = { ...kafkaLimits, ...opts.limits };
    const server = createServer({ pauseOnConnect: false });
    const listener = new KafkaListener(server, opts, limits);
    server.on('connection', (socket) => listener.accept(socket));
    try {
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen({ host: unbracket(host), port }, () => {
          server.off('error', reject);
          resolve();
        });
      });
    } catch (err) {
      server.close();
      throw invalidArgument(`cannot listen for Kafka clients on ${opts.listen}: ${(err as Error).message}`);
    }
    server.on('error', (err) => opts.logger.error({ err: err.message }, 'kafka listener error'));
    const a = server.address();
    listener.bound_port = typeof a === 'object' && a ? a.port : port;
    listener.bound = `${host}:${listener.bound_port}`;
    listener.coordinator.start();
    opts.logger.info({ address: listener.bound, advertised: opts.advertised ?? null, relay_of: opts.relay?.upstreams ?? null }, 'kafka listener started');
    return listener;
  }

  /** HOST:PORT the listener is bound to (the real port when started with port 0). */
  get address(): string {
    return this.bound;
  }

  get connectionCount(): number {
    return this.connections.size;
  }

  /** For tests: the group coordinator's view of a group. */
  describeGroup(group_id: string): ReturnType<GroupCoordinator['describe']> {
    return this.coordinator.describe(group_id);
  }

  private advertisedFor(socket: Socket): AdvertisedNode {
    const node_id = this.opts.node_id ?? 0;
    if (this.opts.advertised !== undefined) {
      const a = parseListen(this.opts.advertised);
      return { node_id, host: unbracket(a.host), port: a.port === 0 ? this.bound_port : a.port };
    }
    const { host } = parseListen(this.opts.listen);
    if (!WILDCARD_HOSTS.has(host)) return { node_id, host: unbracket(host), port: this.bound_port };
    // Listening on every interface: tell each client the address it reached us on.
    const local = (socket.localAddress ?? '127.0.0.1').replace(/^::ffff:/, '');
    return { node_id, host: local, port: this.bound_port };
  }

  private accept(socket: Socket): void {
    if (this.stopping.signal.aborted) {
      socket.destroy();
      return;
    }
    if (this.connections.size >= this.limits.connections_max) {
      this.opts.logger.warn({ remote: `${socket.remoteAddress}:${socket.remotePort}`, connections_max: this.limits.connections_max }, 'kafka: connection refused: connections_max reached');
      socket.destroy();
      return;
    }
    const conn = new KafkaConnection(socket, this.ctx, this.advertisedFor(socket), (c) => this.connections.delete(c));
    this.connections.add(conn);
  }

  stop(): Promise<void> {
    this.stopped ??= this.doStop();
    return this.stopped;
  }

  private async doStop(): Promise<void> {
    this.stopping.abort();
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    this.coordinator.stop();
    await Promise.all([...this.connections].map((c) => c.shutdown(this.limits.shutdown_drain_max_ms)));
    await closed;
    // Appends already handed to the engine finish before the caller may close the store.
    while (this.inflight.size > 0) await Promise.allSettled([...this.inflight]);
    this.opts.logger.info({ address: this.bound }, 'kafka listener stopped');
  }
}
