import { createServer } from 'node:net';
import { join } from 'node:path';
import { RelaylogClient, type TopicDescription } from '../../../client/index.js';
import { forEachBatch } from '../../../engine/index.js';
import { startServer, type ServerProcess } from '../../support/server-process.js';

/*
 * A three-node `relaylog serve --node-id N --peers ...` cluster of real processes on 127.0.0.1, for
 * the Raft integration tests. Ports are chosen up front (every node must know every address), so a
 * node restarts on the same port with the same data dir.
 */

export const TICK_MS = 50;

/** `n` ports that were free a moment ago (bound to 127.0.0.1:0, then released). */
export async function freePorts(n: number): Promise<number[]> {
  const servers = await Promise.all(
    Array.from({ length: n }, () => new Promise<import('node:net').Server>((resolve, reject) => {
      const s = createServer();
      s.once('error', reject);
      s.listen(0, '127.0.0.1', () => resolve(s));
    })),
  );
  const ports = servers.map((s) => (s.address() as import('node:net').AddressInfo).port);
  await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
  return ports;
}

export interface ClusterNodeProcess {
  readonly id: number;
  readonly address: string;
  readonly dir: string;
  proc: ServerProcess | null;
}

/** More arguments for node `id`'s `relaylog serve`, given every node's address (e.g. its --peer-dial). */
export type ExtraArgs = (id: number, addresses: ReadonlyMap<number, string>) => string[] | Promise<string[]>;

export class TestCluster {
  private constructor(readonly nodes: ClusterNodeProcess[], private readonly peers: string, private readonly extra: ExtraArgs) {}

  /** `size` nodes in every node's --peers; only `start_ids` (default: all) are started now. */
  static async start(root: string, size = 3, extra: ExtraArgs = () => [], start_ids?: readonly number[]): Promise<TestCluster> {
    const ports = await freePorts(size);
    const nodes = ports.map((port, i) => ({ id: i + 1, address: `127.0.0.1:${port}`, dir: join(root, `node${i + 1}`), proc: null }));
    const c = new TestCluster(nodes, nodes.map((n) => `${n.id}=${n.address}`).join(','), extra);
    // Every start is waited for, so that when one fails none is left running unseen.
    const started = await Promise.allSettled(nodes.filter((n) => start_ids === undefined || start_ids.includes(n.id)).map((n) => c.startNode(n.id)));
    const failed = started.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) {
      await c.stopAll('SIGKILL');
      throw failed.reason;
    }
    return c;
  }

  node(id: number): ClusterNodeProcess {
    const n = this.nodes.find((x) => x.id === id);
    if (!n) throw new Error(`no node ${id}`);
    return n;
  }

  get addresses(): string[] {
    return this.nodes.map((n) => n.address);
  }

  async startNode(id: number): Promise<void> {
    const n = this.node(id);
    if (n.proc) throw new Error(`node ${id} is running`);
    const extra = await this.extra(id, new Map(this.nodes.map((x) => [x.id, x.address])));
    n.proc = await startServer(n.dir, {
      listen: n.address,
      extra_args: ['--node-id', String(id), '--peers', this.peers, '--raft-tick-ms', String(TICK_MS), '--log-level', 'info', '--memory', String(64 * 1024 * 1024), ...extra],
    });
  }

  /** Stops a node (SIGKILL: a crash; SIGTERM: a clean stop); resolves with its exit code. */
  async stopNode(id: number, signal: NodeJS.Signals = 'SIGTERM'): Promise<number | null> {
    const n = this.node(id);
    const p = n.proc;
    n.proc = null;
    return p ? p.stop(signal) : null;
  }

  async stopAll(signal: NodeJS.Signals = 'SIGTERM'): Promise<Array<number | null>> {
    return Promise.all(this.nodes.map((n) => this.stopNode(n.id, signal)));
  }

  running(): ClusterNodeProcess[] {
    return this.nodes.filter((n) => n.proc !== null);
  }

  /** Everything the nodes wrote to stderr (pino JSON), for failure messages. */
  logs(): string {
    return this.nodes.map((n) => `--- node ${n.id}\n${n.proc?.stderr() ?? '(not running)'}`).join('\n');
  }
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Polls `fn` until it returns a value other than undefined: at most `attempts` times, `every_ms`
 * apart (bounded in count and time); throws with `what` if it never does.
 */
export async function eventually<T>(what: string, fn: () => Promise<T | undefined>, attempts = 200, every_ms = 100): Promise<T> {
  let last: unknown;
  for (let i = 0; i < attempts; i++) {
    try {
      const v = await fn();
      if (v !== undefined) return v;
    } catch (err) {
      last = err;
    }
    await sleep(every_ms);
  }
  throw new Error(`gave up waiting for ${what}${last ? `: ${(last as Error).message}` : ''}`);
}

/** The leader of `topic/partition` that every running node (or every node of `among`) agrees on, once they do. */
export async function agreedLeader(cluster: TestCluster, topic: string, partition: number, among?: readonly number[]): Promise<{ id: number; address: string }> {
  return eventually(`a leader of ${topic}/${partition} all nodes agree on`, async () => {
    const seen = new Set<number>();
    for (const n of cluster.running().filter((x) => among === undefined || among.includes(x.id))) {
      const c = new RelaylogClient(n.address, { deadline_ms: 2_000 });
      try {
        const d: TopicDescription = await c.describeTopic(topic);
        seen.add(d.partitions[partition]!.leader_id ?? 0);
      } finally {
        c.close();
      }
    }
    const [id] = [...seen];
    if (seen.size !== 1 || !id) return undefined;
    return { id, address: cluster.node(id).address };
  });
}

/** Every batch of `topic/partition` below the node's high watermark, as the raw bytes it serves. */
export async function rawBatches(address: string, topic: string, partition: number): Promise<{ batches: Buffer[]; high_watermark: number }> {
  const c = new RelaylogClient(address, { deadline_ms: 10_000 });
  try {
    const batches: Buffer[] = [];
    const { high_watermark } = await c.listOffsets(topic, partition, { position: 'latest' });
    for (let offset = 0, rounds = 0; offset < high_watermark && rounds < 100_000; rounds++) {
      const r = await c.fetch(topic, partition, offset, 1024 * 1024);
      forEachBatch(r.records, (pos, size) => {
        const b = r.records.subarray(pos, pos + size);
        if (b.readBigInt64BE(0) >= BigInt(offset)) batches.push(Buffer.from(b));
      });
      if (r.next_offset <= offset) break;
      offset = Math.min(r.next_offset, high_watermark);
    }
    return { batches, high_watermark };
  } finally {
    c.close();
  }
}

/** Waits until every running node's (or every node of `among`'s) high watermark of `topic/partition` is at least `hw`. */
export async function allCaughtUp(cluster: TestCluster, topic: string, partition: number, hw: number, among?: readonly number[]): Promise<void> {
  await eventually(`every node's high watermark of ${topic}/${partition} to reach ${hw}`, async () => {
    for (const n of cluster.running().filter((x) => among === undefined || among.includes(x.id))) {
      const c = new RelaylogClient(n.address, { deadline_ms: 2_000 });
      try {
        const o = await c.listOffsets(topic, partition, { position: 'latest' });
        if (o.high_watermark < hw) return undefined;
      } finally {
        c.close();
      }
    }
    return true;
  });
}

/** One node's view of `topic/partition` (DescribeTopic against that node only). */
export async function partitionState(address: string, topic: string, partition: number): Promise<TopicDescription['partitions'][number]> {
  const c = new RelaylogClient(address, { deadline_ms: 2_000 });
  try {
    const p = (await c.describeTopic(topic)).partitions[partition];
    if (p === undefined) throw new Error(`${address} has no ${topic}/${partition}`);
    return p;
  } finally {
    c.close();
  }
}
