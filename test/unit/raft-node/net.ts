import { LogStore, ManualClock, forEachBatch, type PartitionLog, type TopicConfig } from '../../../engine/index.js';
import type { Message } from '../../../replication/raft/core/types.js';
import { PartitionNode } from '../../../replication/raft/node/partition-node.js';

/*
 * The Raft driver over real segment stores (one LogStore in Raft mode per node), wired by an
 * in-process network that the test controls: ticks are manual, messages move when delivered, and
 * a node can be cut off. Whatever the driver persists is the partition log itself.
 */

const clock = new ManualClock(1_700_000_000_000);
const silent = { info: () => undefined, warn: () => undefined, error: () => undefined };

export class Net {
  private constructor(
    private readonly dir: string,
    readonly voters: readonly number[],
    private readonly topic_config: Partial<TopicConfig>,
  ) {}

  readonly stores = new Map<number, LogStore>();
  readonly nodes = new Map<number, PartitionNode>();
  private queue: Message[] = [];
  /** Nodes whose traffic (both ways) is dropped. */
  readonly cut = new Set<number>();

  /** Nodes `ids` of a partition whose initial replica set is `voters` (default: the ids). */
  static async start(dir: string, ids = [1, 2, 3], voters: readonly number[] = ids, topic_config: Partial<TopicConfig> = {}): Promise<Net> {
    const net = new Net(dir, voters, topic_config);
    for (const id of ids) await net.open(id);
    return net;
  }

  async open(id: number): Promise<PartitionNode> {
    const store = await LogStore.open({ dir: `${this.dir}/n${id}`, clock, raft: true, disk_free_floor_bytes: 0, retention_check_interval_ms: 0, archive_interval_ms: 0, compaction_interval_ms: 0 });
    if (store.listTopics().length === 0) await store.createTopic('t', { partitions: 1, ...this.topic_config }, { created_ms: 1 });
    this.stores.set(id, store);
    const node = await PartitionNode.open({
      node_id: id,
      voters: this.voters,
      log: store.partition('t', 0),
      catalog: store.catalog,
      send: (ms) => this.queue.push(...ms),
      address_of: (n) => `node${n}:7450`,
      logger: silent,
      election_timeout_ticks: 10,
      seed: id * 7919,
    });
    this.nodes.set(id, node);
    return node;
  }

  async close(id: number, how: 'close' | 'crash' = 'close'): Promise<void> {
    await this.nodes.get(id)!.stop();
    this.nodes.delete(id);
    const store = this.stores.get(id)!;
    this.stores.delete(id);
    if (how === 'close') await store.close();
    else await store.abandon();
  }

  log(id: number): PartitionLog {
    return this.stores.get(id)!.partition('t', 0);
  }

  node(id: number): PartitionNode {
    return this.nodes.get(id)!;
  }

  /** One round: deliver what was sent, tick everyone (optionally), let the drivers run. */
  async round(tick = true): Promise<void> {
    const q = this.queue;
    this.queue = [];
    for (const m of q) {
      if (this.cut.has(m.from) || this.cut.has(m.to)) continue;
      this.nodes.get(m.to)?.step(m);
    }
    if (tick) for (const n of this.nodes.values()) n.tick();
    await new Promise((r) => setTimeout(r, 2));
  }

  /** Rounds until `cond` holds; bounded (count) and failing with `what` otherwise. */
  async until(what: string, cond: () => boolean, rounds = 3_000): Promise<void> {
    for (let i = 0; i < rounds; i++) {
      if (cond()) return;
      await this.round();
    }
    throw new Error(`gave up waiting for ${what}`);
  }

  leader(among = [...this.nodes.keys()]): number | null {
    const leaders = among.filter((id) => this.nodes.get(id)?.role === 'leader' && !this.cut.has(id));
    return leaders.length === 1 ? leaders[0]! : null;
  }

  async closeAll(): Promise<void> {
    for (const id of [...this.nodes.keys()]) await this.close(id);
  }
}

/** A partition's stored batches, raw, up to its log end (uncommitted ones too). */
export async function stored(p: PartitionLog): Promise<Buffer[]> {
  const out: Buffer[] = [];
  for (let o = p.logStartOffset; o < p.logEndOffset; ) {
    const r = await p.readLocal(o, 1 << 20);
    forEachBatch(r.records, (pos, size) => out.push(Buffer.from(r.records.subarray(pos, pos + size))));
    o = r.next_offset;
  }
  return out;
}

/** Drives rounds while `p` settles. */
export async function settle<T>(net: Net, p: Promise<T>, rounds = 3_000): Promise<T> {
  let done = false;
  let out: { ok: true; v: T } | { ok: false; e: unknown } | undefined;
  p.then((v) => ((out = { ok: true, v }), (done = true)), (e: unknown) => ((out = { ok: false, e }), (done = true)));
  for (let i = 0; i < rounds && !done; i++) await net.round();
  if (!out) throw new Error('the promise did not settle');
  if (!out.ok) throw out.e;
  return out.v;
}

