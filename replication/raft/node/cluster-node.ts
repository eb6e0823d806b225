/**
 * A cluster node (`relaylog serve --node-id N --peers 1=host:port,...`): one PartitionNode (Raft
 * driver) per partition of every topic, a tick timer that drives them all, the node-to-node
 * transport, and topic membership across nodes (docs/raft.md, "Wiring"):
 *
 *  - CreateTopic on any node creates the topic here, then forwards it (same name, config and
 *    created_ms, the topic's incarnation) to every peer, and succeeds once a majority of the nodes
 *    (this one included) has it. A node that was down learns missing topics from its peers' lists
 *    at start and every `topic_sync_ms`, and whenever a peer sends Raft traffic for a topic it lacks.
 *  - Leaders are elected per partition by Raft; nothing is assigned.
 */
import { EngineError, isEngineError } from '../../../engine/base/errors.js';
import type { LogStore } from '../../../engine/log/log-store.js';
import type { PartitionLog } from '../../../engine/log/partition-log.js';
import { parseTopicConfig, topicConfigToKafka } from '../../../engine/log/topic-config.js';
import type { TopicConfig, TopicInfo } from '../../../engine/log/types.js';
import { quorumSize } from '../core/quorum.js';
import type { NodeId } from '../core/types.js';
import { decodeRaftMessage } from '../transport/codec.js';
import { RaftTransport } from '../transport/grpc-transport.js';
import { PartitionNode, type NodeLogger, type PartitionRaftStatus } from './partition-node.js';
import { addReplica, removeReplica, transferLeader, type MembershipResult } from './replica-admin.js';

/** Default deadline of a transfer or membership change (the request may name its own). */
export const replica_admin_default_timeout_ms = 30_000;

export interface ClusterOptions {
  node_id: NodeId;
  /**
   * The address book: every node that may host replicas, this one included: id -> HOST:PORT as the
   * others reach it. A partition's replicas are its Raft configuration, a subset of these.
   */
  peers: ReadonlyMap<NodeId, string>;
  /** The replica set of partitions of topics created on this node (default: every node of `peers`). */
  initial_replicas?: readonly NodeId[];
  /**
   * Where this node connects to a peer when that is not its `peers` address (a proxy, a NAT). The
   * `peers` address stays the one clients are sent to.
   */
  dial?: ReadonlyMap<NodeId, string>;
  store: LogStore;
  logger: NodeLogger & { debug?(obj: object, msg: string): void };
  /** One Raft tick (default 100 ms). */
  tick_ms?: number;
  /** Election timeout in ticks: followers campaign after [n, 2n) ticks without a leader (default 10). */
  election_timeout_ticks?: number;
  heartbeat_interval_ticks?: number;
  /** How often topics are compared with the peers' (default 5 s; 0: only at start and on demand). */
  topic_sync_ms?: number;
  /** Deadline of a forwarded topic creation or a topic list call (default 5 s). */
  peer_call_ms?: number;
}

/** A topic as the Raft service's TopicReplica message carries it. */
export interface TopicReplica {
  name: string;
  config: Record<string, string>;
  created_ms: number;
  partitions: number;
  /** Every partition's initial replica set; absent: every node of the address book. */
  replicas?: number[];
}

interface TopicNodes {
  readonly created_ms: number;
  readonly nodes: PartitionNode[];
}

export function replicaOf(info: TopicInfo): TopicReplica {
  return { name: info.name, config: topicConfigToKafka(info.config), created_ms: info.created_ms, partitions: info.config.partitions, ...(info.replicas ? { replicas: info.replicas } : {}) };
}

export class ClusterNode {
  readonly node_id: NodeId;
  readonly transport: RaftTransport;
  private readonly topics = new Map<string, TopicNodes>();
  private readonly attaching = new Set<Promise<void>>();
  private tick_timer: NodeJS.Timeout | null = null;
  private sync_timer: NodeJS.Timeout | null = null;
  private syncing: Promise<void> | null = null;
  private sync_again = false;
  private stopped = false;
  private readonly tick_ms: number;
  private readonly peer_call_ms: number;

  private constructor(private readonly o: ClusterOptions) {
    if (!o.peers.has(o.node_id)) throw new EngineError('INVALID_ARGUMENT', `--peers must list this node (--node-id ${o.node_id}) too`);
    this.node_id = o.node_id;
    this.tick_ms = o.tick_ms ?? 100;
    this.peer_call_ms = o.peer_call_ms ?? 5_000;
    const dial = new Map(o.peers);
    for (const [id, address] of o.dial ?? []) {
      if (!o.peers.has(id) || id === o.node_id) throw new EngineError('INVALID_ARGUMENT', `a dial address for node ${id}, which is not a peer of node ${o.node_id}`);
      dial.set(id, address);
    }
    this.transport = new RaftTransport({ node_id: o.node_id, peers: dial, logger: o.logger });
    for (const id of o.initial_replicas ?? []) {
      if (!o.peers.has(id)) throw new EngineError('UNKNOWN_NODE', `initial replica ${id} is not in --peers (${[...o.peers.keys()].join(', ')})`, { node_id: id });
    }
    this.initial_replicas = o.initial_replicas && o.initial_replicas.length > 0 ? [...o.initial_replicas].sort((a, b) => a - b) : this.voters;
  }

  /** The replica set new topics get. */
  readonly initial_replicas: NodeId[];

  /** Attaches a Raft driver to every partition of the store (which must be opened with `raft: true`). */
  static async open(o: ClusterOptions): Promise<ClusterNode> {
    if (!o.store.raft) throw new EngineError('INVALID_ARGUMENT', 'a cluster node needs a store opened in Raft mode');
    const c = new ClusterNode(o);
    o.store.setTopicHooks({
      created: (info, partitions) => c.track(c.attach(info, partitions)),
      deleting: (name) => c.detach(name),
    });
    for (const info of o.store.listTopics()) await c.attach(info, o.store.partitions(info.name));
    return c;
  }

  /** Starts ticking and syncing topics with the peers. */
  start(): void {
    this.tick_timer = setInterval(() => this.tick(), this.tick_ms);
    this.tick_timer.unref();
    const every = this.o.topic_sync_ms ?? 5_000;
    if (every > 0) {
      this.sync_timer = setInterval(() => this.requestTopicSync(), every);
      this.sync_timer.unref();
    }
    this.requestTopicSync();
  }

  /** Every node of the address book (--peers), sorted. */
  get voters(): NodeId[] {
    return [...this.o.peers.keys()].sort((a, b) => a - b);
  }

  isKnownNode(id: NodeId): boolean {
    return this.o.peers.has(id);
  }

  addressOf(id: NodeId): string {
    return this.o.peers.get(id) ?? '';
  }

  private tick(): void {
    for (const t of this.topics.values()) for (const n of t.nodes) n.tick();
  }

  private track(p: Promise<void>): void {
    const settled = p.catch((err: unknown) => this.o.logger.error({ err: (err as Error)?.message }, 'raft: attaching a topic failed'));
    this.attaching.add(settled);
    void settled.finally(() => this.attaching.delete(settled));
  }

  private async attach(info: TopicInfo, partitions: readonly PartitionLog[]): Promise<void> {
    const nodes: PartitionNode[] = [];
    try {
      for (const log of partitions) {
        nodes.push(
          await PartitionNode.open({
            node_id: this.node_id,
            voters: info.replicas ?? this.voters,
            log,
            catalog: this.o.store.catalog,
            logger: this.o.logger,
            address_of: (id) => this.addressOf(id),
            send: (messages) => {
              for (const message of messages) this.transport.send({ topic: info.name, partition: log.partition, topic_created_ms: info.created_ms, message });
            },
            ...(this.o.election_timeout_ticks !== undefined ? { election_timeout_ticks: this.o.election_timeout_ticks } : {}),
            ...(this.o.heartbeat_interval_ticks !== undefined ? { heartbeat_interval_ticks: this.o.heartbeat_interval_ticks } : {}),
          }),
        );
      }
    } catch (err) {
      for (const n of nodes) await n.stop();
      this.o.logger.error({ topic: info.name, err: (err as Error).message }, 'raft: could not start replication of the topic');
      return;
    }
    const current = (() => {
      try {
        return this.o.store.partitions(info.name);
      } catch {
        return null; // deleted meanwhile
      }
    })();
    if (this.stopped || current !== partitions) {
      for (const n of nodes) await n.stop(); // stopped or deleted meanwhile
      return;
    }
    this.topics.set(info.name, { created_ms: info.created_ms, nodes });
  }

  private async detach(name: string): Promise<void> {
    await Promise.allSettled([...this.attaching]);
    const t = this.topics.get(name);
    this.topics.delete(name);
    if (t) for (const n of t.nodes) await n.stop();
  }

  /** The driver of a partition, when replication of its topic is running here. */
  node(topic: string, partition: number): PartitionNode | undefined {
    return this.topics.get(topic)?.nodes[partition];
  }

  status(topic: string, partition: number): PartitionRaftStatus | null {
    return this.node(topic, partition)?.status() ?? null;
  }

  // ---- leader transfer and membership (replica-admin.ts) -----------------------------------------

  private partitionNode(topic: string, partition: number): PartitionNode {
    const info = this.o.store.topic(topic); // UNKNOWN_TOPIC
    if (!Number.isInteger(partition) || partition < 0 || partition >= info.config.partitions) {
      throw new EngineError('UNKNOWN_PARTITION', `topic ${JSON.stringify(topic)} has no partition ${partition} (it has ${info.config.partitions})`, { topic, partition });
    }
    const n = this.node(topic, partition);
    if (n === undefined) throw new EngineError('CLOSED', `replication of ${topic}/${partition} is not running on node ${this.node_id} yet; retry`);
    return n;
  }

  private knownNode(id: NodeId): void {
    if (!this.o.peers.has(id)) {
      throw new EngineError('UNKNOWN_NODE', `node ${id} is not in this node's --peers (${this.voters.join(', ')}): start the new node and add it to every node's --peers first`, { node_id: id });
    }
  }

  transferLeader(topic: string, partition: number, to: NodeId, timeout_ms = replica_admin_default_timeout_ms): Promise<MembershipResult> {
    const n = this.partitionNode(topic, partition);
    this.knownNode(to);
    return transferLeader(n, to, timeout_ms);
  }

  addReplica(topic: string, partition: number, id: NodeId, timeout_ms = replica_admin_default_timeout_ms): Promise<MembershipResult> {
    const n = this.partitionNode(topic, partition);
    this.knownNode(id);
    return addReplica(n, id, timeout_ms);
  }

  removeReplica(topic: string, partition: number, id: NodeId, timeout_ms = replica_admin_default_timeout_ms): Promise<MembershipResult> {
    const n = this.partitionNode(topic, partition);
    this.knownNode(id);
    return removeReplica(n, id, this.node_id, timeout_ms, (x) => this.addressOf(x));
  }

  // ---- inbound traffic ----------------------------------------------------------------------

  /** A frame from peer `from` (Raft.Step): each message goes to its partition's driver. */
  deliver(from: NodeId, raw_messages: readonly unknown[]): void {
    if (this.stopped) return;
    this.transport.heardFrom(from);
    for (const raw of raw_messages) {
      const pm = decodeRaftMessage(raw);
      if (pm === null || pm.message.from !== from) continue;
      const t = this.topics.get(pm.topic);
      if (t === undefined) {
        // A topic this node has not heard of (created while it was down): ask the peers.
        if (!this.o.store.listTopics().some((i) => i.name === pm.topic)) this.requestTopicSync();
        continue;
      }
      if (t.created_ms !== pm.topic_created_ms) continue; // another incarnation of the name
      t.nodes[pm.partition]?.step(pm.message);
    }
  }

  // ---- topics across nodes ------------------------------------------------------------------

  /**
   * CreateTopic on a cluster: here first, then on every peer (forwarded with the same created_ms).
   * Resolves once a majority of the nodes has the topic; the others learn it by topic sync.
   */
  async createTopic(name: string, config: Partial<TopicConfig>): Promise<TopicInfo> {
    const info = await this.o.store.createTopic(name, config, { replicas: this.initial_replicas });
    const req = replicaOf(info);
    const peers = this.transport.peerIds();
    const need = quorumSize(this.voters.length);
    // Answer as soon as a majority has it; a slow or unreachable peer goes on in the background
    // (it waits for a connection up to the call deadline) or learns the topic by topic sync.
    let have = 1;
    let settled = 0;
    await new Promise<void>((resolve) => {
      if (have >= need || peers.length === 0) resolve();
      for (const id of peers) {
        this.transport.call(id, 'CreateTopicReplica', req, this.peer_call_ms).then(
          () => void have++,
          (err: unknown) => this.o.logger.warn({ topic: name, peer: id, err: (err as Error)?.message }, 'raft: forwarding the new topic to a peer failed; it learns it by topic sync'),
        ).finally(() => {
          settled++;
          if (have >= need || settled === peers.length) resolve();
        });
      }
    });
    if (have < need) {
      throw new EngineError('CLOSED', `topic ${JSON.stringify(name)} was created on ${have} of ${this.voters.length} nodes, fewer than the ${need} it needs to elect leaders; the other nodes create it when they are reachable again (retry DescribeTopic)`);
    }
    return info;
  }

  /** DeleteTopic on a cluster: here, then forwarded to every peer (best effort). */
  async deleteTopic(name: string): Promise<void> {
    const info = this.o.store.topic(name); // UNKNOWN_TOPIC if none
    await this.o.store.deleteTopic(name);
    const req = replicaOf(info);
    const peers = this.transport.peerIds();
    const results = await Promise.allSettled(peers.map((id) => this.transport.call(id, 'DeleteTopicReplica', req, this.peer_call_ms)));
    results.forEach((r, i) => {
      if (r.status === 'rejected') this.o.logger.warn({ topic: name, peer: peers[i], err: (r.reason as Error)?.message }, 'raft: forwarding a topic deletion to a peer failed');
    });
  }

  /** Makes sure this node has the topic incarnation `t` (CreateTopicReplica, topic sync). */
  async ensureTopic(t: TopicReplica): Promise<void> {
    for (let attempt = 0; attempt < 250; attempt++) {
      if (this.stopped) throw new EngineError('CLOSED', 'cluster node is stopping');
      const have = this.o.store.listTopics().find((i) => i.name === t.name);
      if (have !== undefined) {
        if (have.created_ms === t.created_ms) return;
        throw new EngineError('TOPIC_EXISTS', `topic ${JSON.stringify(t.name)} exists on node ${this.node_id} as another incarnation (created_ms ${have.created_ms}, not ${t.created_ms})`, { topic: t.name });
      }
      try {
        await this.o.store.createTopic(t.name, { ...parseTopicConfig(t.config), partitions: t.partitions }, { created_ms: t.created_ms, ...(t.replicas ? { replicas: t.replicas } : {}) });
        this.o.logger.info({ topic: t.name, created_ms: t.created_ms }, 'raft: topic created from a peer');
        return;
      } catch (err) {
        // A creation of the same name is under way here (forwarding and sync raced): look again.
        if (!isEngineError(err, 'TOPIC_EXISTS')) throw err;
        await new Promise((r) => setTimeout(r, 20));
      }
    }
    throw new EngineError('CLOSED', `topic ${JSON.stringify(t.name)} is still being created on node ${this.node_id}; retry`);
  }

  /** DeleteTopicReplica: deletes the incarnation `t` here if present (idempotent). */
  async dropTopic(t: TopicReplica): Promise<void> {
    const have = this.o.store.listTopics().find((i) => i.name === t.name);
    if (have === undefined || have.created_ms !== t.created_ms) return;
    await this.o.store.deleteTopic(t.name);
  }

  listReplicas(): TopicReplica[] {
    return this.o.store.listTopics().map(replicaOf);
  }

  /** Compares topics with every reachable peer now (coalesced with a run under way). */
  requestTopicSync(): void {
    if (this.stopped) return;
    if (this.syncing) {
      this.sync_again = true;
      return;
    }
    this.syncing = this.syncTopics().finally(() => {
      this.syncing = null;
      if (this.sync_again && !this.stopped) {
        this.sync_again = false;
        this.requestTopicSync();
      }
    });
  }

  private async syncTopics(): Promise<void> {
    for (const id of this.transport.peerIds()) {
      if (this.stopped) return;
      let list: { topics?: TopicReplica[] };
      try {
        list = await this.transport.call(id, 'ListTopicReplicas', {}, this.peer_call_ms);
      } catch {
        continue; // unreachable: try at the next round
      }
      for (const t of list.topics ?? []) {
        if (this.stopped) return;
        if (this.o.store.listTopics().some((i) => i.name === t.name)) continue;
        try {
          await this.ensureTopic(t);
        } catch (err) {
          this.o.logger.warn({ topic: t.name, peer: id, err: (err as Error).message }, 'raft: could not create a topic a peer has');
        }
      }
    }
  }

  /** Stops ticking, every driver and the transport. The store stays open (its owner closes it). */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    if (this.tick_timer) clearInterval(this.tick_timer);
    if (this.sync_timer) clearInterval(this.sync_timer);
    await Promise.allSettled([...this.attaching]);
    for (const t of this.topics.values()) for (const n of t.nodes) await n.stop();
    this.topics.clear();
    this.transport.close();
    this.o.store.setTopicHooks(null);
  }

  get isStopped(): boolean {
    return this.stopped;
  }
}
