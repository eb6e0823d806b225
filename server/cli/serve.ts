import { availableParallelism } from 'node:os';
import { format } from 'node:util';
import { setLogger } from '@grpc/grpc-js';
import { pino } from 'pino';
import { LogServer, type ClusterServerOptions } from '../rpc/log-server.js';
import { parseListen } from '../rpc/listen-address.js';
import { UsageError } from './args.js';

export interface ServeOptions {
  data: string;
  listen: string;
  archive?: string;
  archiveInterval: number;
  retentionInterval: number;
  /** Relays keep their copies byte-identical to the upstream's: they do not compact (0). */
  compactionInterval?: number;
  metrics?: string;
  kafkaListen?: string;
  kafkaAdvertised?: string;
  /** Cluster mode: `1=host:port,...`, where each node's Kafka listener is reached (default: its --peers host, this node's Kafka port). */
  kafkaPeers?: string;
  memory: number;
  /** Appends fail with DISK_FULL below this much free space under the data dir (default limits.disk_free_floor_bytes). */
  diskFreeFloor?: number;
  logLevel: string;
  relay?: { upstreams: string[]; topics?: RegExp; failback_ms?: number };
  /** Cluster mode: this node's id in `peers`. */
  nodeId?: number;
  /** Cluster mode: `1=host:port,2=host:port,3=host:port`, this node included. */
  peers?: string;
  /** Cluster mode: `2=host:port,...`, where this node connects to a peer when that is not its --peers address. */
  peerDial?: string;
  /** Cluster mode: `1,2,3`, the replica set of topics created on this node (default: every node of --peers). */
  replicas?: string;
  raftTickMs?: number;
  /** While producers write, catch-up replay is slowed when the event loop runs this late, ms (0: never; limits.replay_pace_lag_ms). */
  replayPaceLag?: number;
}

/**
 * `--node-id N --peers 1=host:port,...` as cluster options (UsageError on a mistake): ids are
 * positive integers, addresses HOST:PORT, and this node must be among the peers.
 */
export function parseCluster(node_id: number | undefined, peers: string | undefined, tick_ms?: number): ClusterServerOptions | undefined {
  if (peers === undefined && node_id === undefined) return undefined;
  if (peers === undefined || node_id === undefined) throw new UsageError('cluster mode needs both --node-id and --peers');
  const map = new Map<number, string>();
  for (const part of peers.split(',').map((p) => p.trim()).filter((p) => p !== '')) {
    const m = /^(\d+)=(.+)$/.exec(part);
    if (!m) throw new UsageError(`--peers takes id=host:port[,id=host:port...], got ${JSON.stringify(part)}`);
    const id = Number(m[1]);
    if (!Number.isSafeInteger(id) || id < 1) throw new UsageError(`--peers: node ids are positive integers, got ${m[1]}`);
    if (map.has(id)) throw new UsageError(`--peers lists node ${id} twice`);
    try {
      parseListen(m[2]!);
    } catch (err) {
      throw new UsageError(`--peers: node ${id}: ${(err as Error).message}`);
    }
    map.set(id, m[2]!);
  }
  if (!map.has(node_id)) throw new UsageError(`--peers does not list this node (--node-id ${node_id})`);
  return { node_id, peers: map, ...(tick_ms !== undefined ? { tick_ms } : {}) };
}

/** `--replicas 1,2,3`: only with --peers, node ids it lists, at least one. */
export function parseReplicas(v: string, cluster: ClusterServerOptions | undefined): number[] {
  if (!cluster) throw new UsageError('--replicas is for cluster mode (with --node-id and --peers)');
  const ids = v.split(',').map((p) => p.trim()).filter((p) => p !== '');
  if (ids.length === 0) throw new UsageError('--replicas takes node ids: 1,2,3');
  const out: number[] = [];
  for (const p of ids) {
    const id = Number(p);
    if (!/^\d+$/.test(p) || !Number.isSafeInteger(id) || id < 1) throw new UsageError(`--replicas: node ids are positive integers, got ${JSON.stringify(p)}`);
    if (!cluster.peers.has(id)) throw new UsageError(`--replicas: node ${id} is not in --peers`);
    if (out.includes(id)) throw new UsageError(`--replicas lists node ${id} twice`);
    out.push(id);
  }
  return out;
}

/** `--kafka-peers 1=host:port,...`: only with --peers, and only for nodes it lists. */
export function parseKafkaPeers(v: string, cluster: ClusterServerOptions | undefined): Map<number, string> {
  return parseNodeAddresses('--kafka-peers', v, cluster);
}

/**
 * `--peer-dial 2=host:port,...`: where this node connects to those peers instead of their --peers
 * address (a proxy, a NAT, a test's network partition). --peers stays what clients are told (the
 * leader's address in NOT_LEADER) and what Kafka Metadata derives from. Not for this node itself.
 */
export function parsePeerDial(v: string, cluster: ClusterServerOptions | undefined): Map<number, string> {
  const map = parseNodeAddresses('--peer-dial', v, cluster);
  if (cluster && map.has(cluster.node_id)) throw new UsageError(`--peer-dial: node ${cluster.node_id} is this node, which never dials itself`);
  return map;
}

/** `id=host:port[,...]` for nodes listed in --peers (UsageError naming `flag` on a mistake). */
function parseNodeAddresses(flag: string, v: string, cluster: ClusterServerOptions | undefined): Map<number, string> {
  if (!cluster) throw new UsageError(`${flag} is for cluster mode (with --node-id and --peers)`);
  const map = new Map<number, string>();
  for (const part of v.split(',').map((p) => p.trim()).filter((p) => p !== '')) {
    const m = /^(\d+)=(.+)$/.exec(part);
    if (!m) throw new UsageError(`${flag} takes id=host:port[,id=host:port...], got ${JSON.stringify(part)}`);
    const id = Number(m[1]);
    if (!cluster.peers.has(id)) throw new UsageError(`${flag}: node ${id} is not in --peers`);
    if (map.has(id)) throw new UsageError(`${flag} lists node ${id} twice`);
    try {
      parseListen(m[2]!);
    } catch (err) {
      throw new UsageError(`${flag}: node ${id}: ${(err as Error).message}`);
    }
    map.set(id, m[2]!);
  }
  return map;
}

/**
 * `relaylog serve`: opens the data dir, listens, and prints `relaylog listening on HOST:PORT` as
 * one stdout line (scripts and tests read the real port from it when started with port 0). Logs
 * are pino JSON on stderr. SIGTERM/SIGINT stop accepting, drain in-flight produces, close the
 * store (fsync, lock release) and exit 0; a second signal while stopping exits 1 at once.
 */
const HUGE_PAGES_TUNABLE = 'glibc.malloc.hugetlb=1';

/** True when glibc's malloc was told (at exec, by the environment) to use transparent huge pages, or when that cannot apply (not Linux). */
function hugePagesForMalloc(): boolean {
  if (process.platform !== 'linux') return true;
  return (process.env.GLIBC_TUNABLES ?? '').split(':').some((t) => t === HUGE_PAGES_TUNABLE || t === 'glibc.malloc.hugetlb=2');
}

/** True when V8 was started with its garbage collection on the main thread only. */
function singleThreadedGc(): boolean {
  return process.execArgv.includes('--single-threaded-gc');
}

/** True when V8 was started with an initial old generation (or heap) size of its operator's choosing. */
function initialOldSpaceSet(): boolean {
  return process.execArgv.some((a) => /^--initial[-_](old[-_]space|heap)[-_]size/.test(a));
}

export async function serve(o: ServeOptions): Promise<void> {
  const logger = pino({ base: { service: 'relaylog' }, level: o.logLevel }, pino.destination({ dest: 2, sync: true }));
  // grpc-js's own diagnostics go to the same JSON log, not as bare lines on stderr.
  setLogger({ error: (...args: unknown[]) => logger.warn({ grpc: format(...args) }, 'grpc-js') });
  const parsed = parseCluster(o.nodeId, o.peers, o.raftTickMs);
  const dial = o.peerDial !== undefined ? parsePeerDial(o.peerDial, parsed) : undefined;
  const replicas = o.replicas !== undefined ? parseReplicas(o.replicas, parsed) : undefined;
  const cluster = parsed ? { ...parsed, ...(dial ? { dial } : {}), ...(replicas ? { initial_replicas: replicas } : {}) } : parsed;
  if (cluster && o.relay) throw new UsageError('a relay cannot be a cluster node');
  const server = await LogServer.start({
    store: { dir: o.data, memory_tier_bytes: o.memory, archive_interval_ms: o.archiveInterval, retention_check_interval_ms: o.retentionInterval, compaction_interval_ms: o.relay ? 0 : (o.compactionInterval ?? 60_000), ...(o.archive ? { archive_url: o.archive } : {}), ...(o.diskFreeFloor !== undefined ? { disk_free_floor_bytes: o.diskFreeFloor } : {}) },
    listen: o.listen,
    logger,
    ...(o.relay ? { relay: o.relay } : {}),
    ...(cluster ? { cluster } : {}),
    ...(o.metrics !== undefined ? { metrics_listen: o.metrics } : {}),
    ...(o.kafkaListen !== undefined ? { kafka_listen: o.kafkaListen } : {}),
    ...(o.kafkaAdvertised !== undefined ? { kafka_advertised: o.kafkaAdvertised } : {}),
    ...(o.kafkaPeers !== undefined ? { kafka_peers: parseKafkaPeers(o.kafkaPeers, cluster) } : {}),
    ...(o.replayPaceLag !== undefined ? { limits: { replay_pace_lag_ms: o.replayPaceLag } } : {}),
  });
  process.stdout.write(`relaylog listening on ${server.address}\n`);
  if (server.metricsAddress) process.stdout.write(`relaylog metrics on http://${server.metricsAddress}/metrics\n`);
  if (server.kafkaAddress) process.stdout.write(`relaylog kafka listening on ${server.kafkaAddress}\n`);
  logger.info({ address: server.address, data: o.data, archive: o.archive ?? null, relay_of: o.relay?.upstreams ?? null, node_id: cluster?.node_id ?? null, peers: cluster ? Object.fromEntries(cluster.peers) : null, ...(dial ? { peer_dial: Object.fromEntries(dial) } : {}) }, 'serving');
  if (availableParallelism() <= 2 && !singleThreadedGc()) {
    logger.info({ hint: '--single-threaded-gc' }, `${availableParallelism()} CPUs: starting node with --single-threaded-gc (as npm start does) cut server CPU per produced MB by 9-23% and the p99.9 latency at 2,000 records/s by about a third on a 2-core machine (docs/operations.md, "CPU: garbage collection on small machines")`);
  }
  if (!initialOldSpaceSet()) {
    logger.info({ hint: '--initial-old-space-size=128' }, 'starting node with --initial-old-space-size=128 (as npm start does) cut server CPU per MB of 64 KiB records produced by about a quarter: far fewer full garbage collections (docs/operations.md, "CPU: garbage collection on small machines")');
  }
  if (!hugePagesForMalloc()) {
    logger.info({ hint: `${HUGE_PAGES_TUNABLE}` }, 'malloc does not ask for transparent huge pages: setting GLIBC_TUNABLES=glibc.malloc.hugetlb=1 in the environment cuts produce CPU per MB by about a quarter (docs/operations.md, "Memory: transparent huge pages")');
  }
  let stopping = false;
  const stop = (signal: NodeJS.Signals) => {
    if (stopping) {
      logger.warn({ signal }, 'second signal while stopping: exiting without a clean close');
      process.exit(1);
    }
    stopping = true;
    logger.info({ signal }, 'stopping: no new calls, draining in-flight produces, closing the store');
    server.stop().then(
      () => {
        logger.info({}, 'stopped cleanly');
        process.exit(0);
      },
      (err: unknown) => {
        logger.error({ err: (err as Error).message, code: (err as { code?: unknown }).code, stack: (err as Error).stack }, 'error while stopping');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}
