import { setMaxListeners } from 'node:events';
import { Server, ServerCredentials } from '@grpc/grpc-js';
import { invalidArgument } from '../../engine/base/errors.js';
import { parseListen } from './listen-address.js';
import { LogStore } from '../../engine/log/log-store.js';
import type { StoreOptions } from '../../engine/log/types.js';
import { AdminService, LogService, RaftService } from '../proto/load.js';
import { adminService } from './admin-service.js';
import { widenReceiveWindows } from './flow-control.js';
import { installPrefixedSend } from './prefixed-send.js';
import { TurnBudget } from './turn-budget.js';
import type { ServerLogger, ServiceContext } from './context.js';
import { serverLimits, type ServerLimits } from './limits.js';
import { logService } from './log-service.js';
import { shuttingDown } from './status.js';
import { RelayRunner } from '../../replication/relay/relay-runner.js';
import { ServerMetrics } from '../metrics.js';
import { KafkaListener } from '../kafka/index.js';
import type { KafkaClusterView } from '../kafka/context.js';
import { ClusterNode } from '../../replication/raft/node/cluster-node.js';
import { raftService } from '../../replication/raft/transport/raft-service.js';

export interface ServerOptions {
  /** The data dir and engine options; the store is opened (and its lock taken) by start(). */
  store: Omit<StoreOptions, 'logger'>;
  /** HOST:PORT to listen on; port 0 picks a free one (see `address`). */
  listen: string;
  logger: ServerLogger;
  limits?: Partial<ServerLimits>;
  /** Run as a read-only relay replica pulling from these upstreams (any cluster node or relay). */
  relay?: { upstreams: string[]; topics?: RegExp; topic_poll_ms?: number; failback_ms?: number };
  /** HOST:PORT for the Prometheus /metrics endpoint (absent: none). */
  metrics_listen?: string;
  /** HOST:PORT for the Kafka wire-protocol listener on the same store (absent: none); see docs/kafka.md. */
  kafka_listen?: string;
  /** HOST:PORT Kafka clients are told to connect to (default: the bound address). */
  kafka_advertised?: string;
  /** Cluster mode: each node's Kafka address (default: its peer host with this node's Kafka port). */
  kafka_peers?: ReadonlyMap<number, string>;
  /**
   * Run as a node of a Raft cluster: every partition is replicated by Raft across `peers`
   * (id -> HOST:PORT, this node included). See docs/raft.md, "Wiring".
   */
  cluster?: ClusterServerOptions;
}

export interface ClusterServerOptions {
  node_id: number;
  peers: ReadonlyMap<number, string>;
  /** Where this node connects to some peers, when not at their `peers` address (--peer-dial). */
  dial?: ReadonlyMap<number, string>;
  /** The replica set of partitions of topics created on this node (--replicas; default: every peer). */
  initial_replicas?: readonly number[];
  /** One Raft tick (default 100 ms). */
  tick_ms?: number;
  /** Election timeout in ticks (default 10). */
  election_timeout_ticks?: number;
  /** How often topics are compared with the peers' (default 5 s). */
  topic_sync_ms?: number;
}

/**
 * The single-node log server: a LogStore behind the Admin and Log gRPC services.
 * Lifecycle: `LogServer.start()` opens the store (taking the data-dir lock) and binds; `stop()`
 * stops accepting, ends subscriptions with UNAVAILABLE, drains in-flight calls (cancelling what is
 * left after `shutdown_drain_max_ms`), waits for every append it started, and closes the store
 * (fsync, lock release). stop() is idempotent.
 */
export class LogServer {
  private readonly grpc: Server;
  private readonly stopping = new AbortController();
  private readonly inflight = new Set<Promise<unknown>>();
  private stopped: Promise<void> | null = null;
  private bound = '';
  private relay: RelayRunner | null = null;
  readonly metrics: ServerMetrics;
  private readonly replay_turns: TurnBudget;
  private metrics_address: string | null = null;
  private kafka: KafkaListener | null = null;

  private constructor(private readonly store: LogStore, private readonly opts: ServerOptions, readonly limits: ServerLimits, readonly cluster: ClusterNode | null = null) {
    // Every open call listens for the stop signal: as many listeners as calls, by design.
    setMaxListeners(0, this.stopping.signal);
    this.replay_turns = new TurnBudget(limits.replay_bytes_per_turn, limits.replay_small_frame_bytes, {
      lag_target_ms: limits.replay_pace_lag_ms,
      floor_bytes_per_s: limits.replay_pace_floor_bytes_per_s,
      period_ms: limits.replay_pace_period_ms,
    });
    // On a cluster node, a follower's replicated appends are on the commit path too: they pace
    // catch-up replay as produce requests do. (A relay's copies do not: it takes no produce.)
    if (cluster) store.setReplicatedAppendHook(() => this.replay_turns.noteAppend());
    this.metrics = new ServerMetrics(() => (this.stopping.signal.aborted ? null : this.store), () => this.relay, () => this.replay_turns);
    if (opts.relay) {
      const r = opts.relay;
      this.relay = new RelayRunner({
        store,
        upstreams: r.upstreams,
        logger: opts.logger,
        ...(r.topics ? { topics: r.topics } : {}),
        ...(r.topic_poll_ms !== undefined ? { topic_poll_ms: r.topic_poll_ms } : {}),
        ...(r.failback_ms !== undefined ? { failback_ms: r.failback_ms } : {}),
      });
    }
    this.grpc = new Server({
      'grpc.max_receive_message_length': limits.message_max_bytes,
      'grpc.max_send_message_length': limits.message_max_bytes,
    });
    const ctx = this.context();
    this.grpc.addService(AdminService, adminService(ctx, cluster));
    this.grpc.addService(LogService, logService(ctx));
    if (cluster) this.grpc.addService(RaftService, raftService(cluster, this.stopping.signal, opts.logger));
  }

  static async start(opts: ServerOptions): Promise<LogServer> {
    const { host } = parseListen(opts.listen);
    const limits: ServerLimits = { ...serverLimits, ...opts.limits };
    if (opts.cluster && opts.relay) throw invalidArgument('a node is either a relay or a cluster member, not both');
    const store = await LogStore.open({ ...opts.store, logger: opts.logger, ...(opts.cluster ? { raft: true } : {}) });
    let cluster: ClusterNode | null = null;
    if (opts.cluster) {
      const c = opts.cluster;
      try {
        cluster = await ClusterNode.open({
          node_id: c.node_id,
          peers: c.peers,
          ...(c.dial ? { dial: c.dial } : {}),
          ...(c.initial_replicas ? { initial_replicas: c.initial_replicas } : {}),
          store,
          logger: opts.logger,
          ...(c.tick_ms !== undefined ? { tick_ms: c.tick_ms } : {}),
          ...(c.election_timeout_ticks !== undefined ? { election_timeout_ticks: c.election_timeout_ticks } : {}),
          ...(c.topic_sync_ms !== undefined ? { topic_sync_ms: c.topic_sync_ms } : {}),
        });
      } catch (err) {
        await store.close();
        throw err;
      }
    }
    const server = new LogServer(store, opts, limits, cluster);
    // An origin stamps its incarnation as the epoch; in a cluster the Raft term is the epoch.
    if (!opts.relay && !opts.cluster) store.markEpochStarts();
    try {
      const port = await new Promise<number>((resolve, reject) =>
        server.grpc.bindAsync(opts.listen, ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
      );
      server.bound = `${host}:${port}`;
      if (!widenReceiveWindows(server.grpc)) opts.logger.warn({}, 'this grpc-js does not expose its HTTP/2 servers: connections keep the default 64 KiB receive windows (produce of large batches is slower)');
      if (!installPrefixedSend()) opts.logger.warn({}, 'this grpc-js serializes server messages elsewhere: Subscribe frames are copied once more before sending (replay is slower)');
      server.relay?.start();
      server.cluster?.start();
      if (opts.metrics_listen !== undefined) server.metrics_address = await server.metrics.serve(opts.metrics_listen);
      if (opts.kafka_listen !== undefined) {
        server.kafka = await KafkaListener.start({
          store,
          listen: opts.kafka_listen,
          logger: opts.logger,
          ...(opts.kafka_advertised !== undefined ? { advertised: opts.kafka_advertised } : {}),
          ...(opts.relay ? { relay: { upstreams: opts.relay.upstreams } } : {}),
          ...(cluster ? { node_id: cluster.node_id, cluster: kafkaClusterView(cluster, opts) } : {}),
          on_append: () => server.replay_turns.noteAppend(),
        });
      }
    } catch (err) {
      server.grpc.forceShutdown();
      await server.relay?.stop();
      await server.cluster?.stop();
      await server.metrics.close();
      await store.close();
      // grpc-js wraps the socket error: "No address added out of total 1 resolved errors: [listen EADDRINUSE: ...]".
      const why = /errors: \[(.*)\]$/.exec((err as Error).message)?.[1] ?? (err as Error).message;
      throw invalidArgument(`cannot listen on ${opts.listen}: ${why}`);
    }
    return server;
  }

  /** HOST:PORT of the /metrics endpoint, when one was asked for. */
  get metricsAddress(): string | null {
    return this.metrics_address;
  }

  /** HOST:PORT of the Kafka listener, when one was asked for. */
  get kafkaAddress(): string | null {
    return this.kafka?.address ?? null;
  }

  /** HOST:PORT the server is bound to (the real port when started with port 0). */
  get address(): string {
    return this.bound;
  }

  private context(): ServiceContext {
    const relay = this.relay!;
    return {
      limits: this.limits,
      logger: this.opts.logger,
      stopping: this.stopping.signal,
      address: () => this.bound,
      node_id: this.cluster?.node_id ?? 0,
      metrics: this.metrics,
      replay_turns: this.replay_turns,
      relay: this.relay
        ? {
            upstreams: this.relay.upstreams,
            get upstream() {
              return relay.upstream;
            },
            status: (t: string, p: number) => relay.status(t, p),
          }
        : null,
      store: () => {
        if (this.stopping.signal.aborted) throw shuttingDown(this.bound);
        return this.store;
      },
      track: <T>(work: Promise<T>): Promise<T> => {
        this.inflight.add(work);
        const forget = () => this.inflight.delete(work);
        work.then(forget, forget);
        return work;
      },
    };
  }

  stop(): Promise<void> {
    this.stopped ??= this.doStop();
    return this.stopped;
  }

  private async doStop(): Promise<void> {
    this.stopping.abort();
    this.replay_turns.close();
    // Kafka clients first: the listener drains its requests and waits for its appends; the store stays open until the end.
    await this.kafka?.stop();
    if (this.cluster) {
      // Produces waiting for a commit need Raft (and the peers' streams) running: let them finish
      // (within the drain period), then stop replication, which also ends the peers' Step streams
      // that would otherwise hold the gRPC drain below open.
      let t: NodeJS.Timeout | undefined;
      const limit = new Promise<void>((resolve) => (t = setTimeout(resolve, this.limits.shutdown_drain_max_ms)));
      await Promise.race([Promise.allSettled([...this.inflight]), limit]);
      clearTimeout(t);
      await this.cluster.stop();
    }
    let timer: NodeJS.Timeout | undefined;
    const drained = new Promise<boolean>((resolve) => this.grpc.tryShutdown(() => resolve(true)));
    const timeout = new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), this.limits.shutdown_drain_max_ms)));
    const clean = await Promise.race([drained, timeout]);
    clearTimeout(timer);
    if (!clean) {
      this.opts.logger.warn({ drain_max_ms: this.limits.shutdown_drain_max_ms }, 'calls still open after the drain period; cancelling them');
      this.grpc.forceShutdown();
    }
    await this.relay?.stop();
    await this.metrics.close();
    // Appends already handed to the engine finish (and are acknowledged if their call is still open).
    while (this.inflight.size > 0) await Promise.allSettled([...this.inflight]);
    await this.store.close();
  }
}

/** The cluster as this node's Kafka listener reports it in Metadata (server/kafka/context.ts). */
function kafkaClusterView(cluster: ClusterNode, opts: ServerOptions): KafkaClusterView {
  const own_port = () => parseListen(opts.kafka_advertised ?? opts.kafka_listen!).port;
  return {
    voters: () => cluster.voters,
    kafkaAddressOf: (id) => {
      const explicit = opts.kafka_peers?.get(id);
      if (explicit !== undefined) {
        const { host, port } = parseListen(explicit);
        return { host: host.replace(/^\[(.*)\]$/, '$1'), port };
      }
      const peer = cluster.addressOf(id);
      if (peer === '') return null;
      return { host: parseListen(peer).host.replace(/^\[(.*)\]$/, '$1'), port: own_port() };
    },
    leaderOf: (topic, partition) => cluster.status(topic, partition)?.leader_id ?? 0,
    replicasOf: (topic, partition) => cluster.status(topic, partition)?.voters ?? cluster.voters,
  };
}
