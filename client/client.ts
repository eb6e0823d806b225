import {
  credentials,
  makeGenericClientConstructor,
  Metadata,
  type Client,
  type ClientDuplexStream,
  type ClientReadableStream,
  type ClientWritableStream,
  type ServiceError,
} from '@grpc/grpc-js';
import { AdminService, LogService, preEncodeProduceRequest, type ProduceRequestObject } from '../server/proto/load.js';
import { installClientPrefixedSend, request_buffers } from '../server/rpc/prefixed-send.js';
import { fromServiceError, RpcError } from './errors.js';
import { isEngineError } from '../engine/base/errors.js';
import { ProducePipeline } from './pipeline.js';

/** Where a subscription or consumer starts. */
export type StartPosition =
  | { offset: number }
  | { timestamp_ms: number }
  | { position: 'earliest' | 'latest' }
  | { group: string };

export interface PartitionInfo {
  partition: number;
  log_start_offset: number;
  high_watermark: number;
  log_end_offset: number;
  memory_bytes: number;
  ssd_bytes: number;
  archive_bytes: number;
  /** HOST:PORT of the partition's leader (on a single node: the server itself). */
  leader: string;
  /** Segments on SSD, the active one included. */
  segment_count: number;
  archived_segment_count: number;
  /** On a relay replica: where the partition is pulled from and how far behind it is (empty/0 on the origin). */
  upstream: string;
  /** connecting | following | waiting | gap | diverged | error */
  relay_state: string;
  relay_detail: string;
  upstream_high_watermark: number;
  lag_offsets: number;
  lag_ms: number;
  relay_bytes_in: number;
  /** On a cluster node (0 / empty on a single node; always present in server answers): the Raft leader's node id as this node knows it (0: unknown). */
  leader_id?: number;
  raft_term?: number;
  /** follower | pre_candidate | candidate | leader */
  raft_role?: string;
  /** Raft indexes count record batches: the last committed one's and this node's last one's. */
  commit_index?: number;
  last_index?: number;
  /** On the leader: each member's progress, itself included. */
  replicas?: ReplicaProgress[];
  /** The partition's replica set (its Raft configuration as this node has it): voters, and learners being added. */
  voters?: number[];
  learners?: number[];
}
export interface ReplicaProgress {
  node_id: number;
  address: string;
  match_index: number;
  lag_entries: number;
  /** probe | replicate | self */
  state: string;
  /** A replica being added: it receives the log but does not vote yet. */
  learner?: boolean;
}
/** A partition's Raft configuration as its leader has it after a transfer or membership change. */
export interface PartitionMembership {
  leader_id: number;
  /** The leader's HOST:PORT ('' if unknown). */
  leader: string;
  voters: number[];
  learners: number[];
  raft_term: number;
}
export interface CompactReport {
  partitions: number;
  segments_rewritten: number;
  segments_merged: number;
  records_removed: number;
  bytes_before: number;
  bytes_after: number;
}
export interface ArchiveReport {
  archive_url: string;
  uploaded: number;
  deleted: number;
  failures: number;
  uploads_total: number;
  upload_failures_total: number;
  uploaded_bytes_total: number;
  last_error: string;
}
export interface TopicDescription {
  name: string;
  /** When this incarnation of the topic was created at the origin (relays keep the origin's). */
  created_ms: number;
  /** Kafka's key names: retention.ms, segment.bytes, ... */
  config: Record<string, string>;
  partitions: PartitionInfo[];
}
export interface ProduceResult {
  base_offset: number;
  last_offset: number;
  /** Base offset of each batch of the record set, in order. */
  batch_base_offsets: number[];
}
export interface FetchResult {
  /** Whole RecordBatch v2 batches; the first may start before the requested offset. */
  records: Buffer;
  next_offset: number;
  high_watermark: number;
  log_start_offset: number;
}
export type Frame = FetchResult;
export interface OffsetsResult {
  /** null when asked for a timestamp later than every record. */
  offset: number | null;
  log_start_offset: number;
  high_watermark: number;
}
export interface ProduceStreamResult {
  record_sets: number;
  /** -1 when the stream carried nothing. */
  first_offset: number;
  last_offset: number;
}
export interface ProduceStreamHandle {
  /** Queues a record set; false means the stream is full: wait for 'drain' on `stream` before writing more. */
  write(topic: string, partition: number, records: Buffer): boolean;
  /** Ends the stream and resolves with what the server appended (rejects with the first failure). */
  end(): Promise<ProduceStreamResult>;
  readonly stream: ClientWritableStream<object>;
}

export interface ClientOptions {
  /** Deadline of each unary call (long-poll fetches get their wait on top). */
  deadline_ms?: number;
  /**
   * Cluster: how many times one produce follows a NOT_LEADER answer (to the leader it names, or,
   * during an election, after a short wait) before giving up with it (default 10).
   */
  redirects_max?: number;
  /**
   * Open connections of this client's own. By default grpc-js gives every client of the same
   * address one shared HTTP/2 connection, so a consumer's replay frames and a producer's acks
   * queue on the same socket; a reader that should not delay (or be delayed by) the other clients
   * of its process asks for its own.
   */
  own_connection?: boolean;
}

const AdminClient = makeGenericClientConstructor(AdminService, 'Admin');
const LogClient = makeGenericClientConstructor(LogService, 'Log');
const MESSAGE_MAX_BYTES = 65 * 1024 * 1024;
const FLOW_CONTROL_WINDOW_BYTES = 16 * 1024 * 1024;
type Rpc = (req: object, md: Metadata, opts: object, cb: (err: ServiceError | null, res: unknown) => void) => unknown;

interface Connection {
  readonly admin: Client;
  readonly log: Client;
}

const CHANNEL_OPTIONS = {
  'grpc.max_receive_message_length': MESSAGE_MAX_BYTES,
  'grpc.max_send_message_length': MESSAGE_MAX_BYTES,
  // HTTP/2's default 64 KiB receive window would stall a replay between every two frames.
  'grpc-node.flow_control_window': FLOW_CONTROL_WINDOW_BYTES,
  // A cluster node that restarts is back within seconds: grpc-js's default reconnect backoff
  // (growing to two minutes) would keep failing calls to it long after.
  'grpc.initial_reconnect_backoff_ms': 200,
  'grpc.max_reconnect_backoff_ms': 2_000,
  // No service config from DNS TXT records: one with a hedging policy would send a produce twice at
  // once (appended twice, and a pooled request buffer reused while the other copy may be sending).
  'grpc.service_config_disable_resolution': 1,
};

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * A connection to a relaylog server: every Admin and Log call, typed. Failed calls reject with
 * an EngineError carrying the server's stable `code` (OFFSET_OUT_OF_RANGE, UNKNOWN_TOPIC ...) or an
 * RpcError (UNAVAILABLE when the server cannot be reached). `close()` when done.
 *
 * A cluster: `address` may list several nodes (`host1:port,host2:port,...`); calls go to the first
 * unless it was found unreachable. Produce follows NOT_LEADER answers to the partition's leader
 * (the `relaylog-leader` trailer) and remembers it per partition; during an election (no leader
 * known yet) it waits briefly and asks again, at most `redirects_max` times. A produce that fails
 * with UNAVAILABLE is not retried here (it may or may not have been appended); the next one goes to
 * another node.
 */
export class RelaylogClient {
  /** The first node of the list: where admin, fetch and subscribe calls go. */
  readonly address: string;
  /** Every node given. */
  readonly addresses: readonly string[];
  private readonly admin: Client;
  private readonly log: Client;
  private readonly deadline_ms: number;
  private readonly redirects_max: number;
  private readonly conns = new Map<string, Connection>();
  /** Cluster: the leader last seen per `topic/partition`. */
  private readonly leaders = new Map<string, string>();
  /** Cluster: which node of `addresses` unrouted produce goes to (moves on when one is unreachable). */
  private produce_node = 0;
  /** Cluster: nodes found unreachable, until when (ms); redirects to them wait instead. */
  private readonly down = new Map<string, number>();
  private readonly own_connection: boolean;

  constructor(address: string, opts: ClientOptions = {}) {
    // Large produce requests are encoded with room for the gRPC prefix (server/proto/load.ts): framed
    // in place rather than copied once more. Without the wrap (another grpc-js) they are copied.
    installClientPrefixedSend();
    this.own_connection = opts.own_connection ?? false;
    const list = address.split(',').map((a) => a.trim()).filter((a) => a !== '');
    this.addresses = list.length > 0 ? list : [address];
    this.address = this.addresses[0]!;
    const primary = this.conn(this.address);
    this.admin = primary.admin;
    this.log = primary.log;
    this.deadline_ms = opts.deadline_ms ?? 60_000;
    this.redirects_max = opts.redirects_max ?? 10;
  }

  private conn(address: string): Connection {
    let c = this.conns.get(address);
    if (c === undefined) {
      if (this.own_connection) {
        // A local subchannel pool is a connection no other client shares; Admin rides on Log's channel.
        const log = new LogClient(address, credentials.createInsecure(), { ...CHANNEL_OPTIONS, 'grpc.use_local_subchannel_pool': 1 });
        c = { admin: new AdminClient(address, credentials.createInsecure(), { channelOverride: log.getChannel() }), log };
      } else {
        // Same address and options: grpc-js's subchannel pool gives both clients one connection.
        c = { admin: new AdminClient(address, credentials.createInsecure(), CHANNEL_OPTIONS), log: new LogClient(address, credentials.createInsecure(), CHANNEL_OPTIONS) };
      }
      this.conns.set(address, c);
    }
    return c;
  }

  private call<T>(client: Client, method: string, req: object, extra_ms = 0, address = this.address): Promise<T> {
    const rpc = (client as unknown as Record<string, Rpc>)[method]!.bind(client);
    return new Promise((resolve, reject) => {
      rpc(req, new Metadata(), { deadline: Date.now() + this.deadline_ms + extra_ms }, (err, res) =>
        err ? reject(fromServiceError(err, address)) : resolve(res as T),
      );
    });
  }

  /** Where a produce to `topic/partition` goes first: its known leader, else the current node of the list. */
  leaderFor(topic: string, partition: number): string {
    const leader = this.leaders.get(`${topic}/${partition}`);
    if (leader !== undefined && !this.isDown(leader)) return leader;
    for (let i = 0; i < this.addresses.length; i++) {
      const a = this.addresses[(this.produce_node + i) % this.addresses.length]!;
      if (!this.isDown(a)) return a;
    }
    return this.addresses[this.produce_node % this.addresses.length]!;
  }

  private isDown(address: string): boolean {
    const until = this.down.get(address);
    if (until === undefined) return false;
    if (Date.now() < until) return true;
    this.down.delete(address);
    return false;
  }

  /**
   * Learns from a failed produce: a NOT_LEADER naming the leader is remembered; an unknown leader
   * or an unreachable node is forgotten (and the next produce tries the next node of the list).
   * Returns the leader to retry at, or null.
   */
  private learn(topic: string, partition: number, address: string, err: unknown): string | null {
    const key = `${topic}/${partition}`;
    if (isEngineError(err, 'NOT_LEADER')) {
      const leader = err.details.leader;
      // A leader just found unreachable is one the others have not noticed is gone yet: wait for the election.
      if (typeof leader === 'string' && leader !== '' && leader !== address && !this.isDown(leader)) {
        this.leaders.set(key, leader);
        return leader;
      }
      this.leaders.delete(key);
      if (this.addresses.length > 1) this.produce_node = (this.addresses.indexOf(address) + 1) % this.addresses.length;
      return null;
    }
    if (err instanceof RpcError && err.code === 'UNAVAILABLE') {
      this.down.set(address, Date.now() + 1_000);
      if (this.leaders.get(key) === address) this.leaders.delete(key);
      if (this.addresses.length > 1 && this.addresses[this.produce_node % this.addresses.length] === address) this.produce_node = (this.produce_node + 1) % this.addresses.length;
    }
    return null;
  }

  /** Runs a produce at the partition's leader, following NOT_LEADER answers (nothing was appended on those). */
  private async routed<T>(topic: string, partition: number, fn: (c: Connection, address: string) => Promise<T>): Promise<T> {
    let address = this.leaderFor(topic, partition);
    for (let attempt = 0; ; attempt++) {
      try {
        return await fn(this.conn(address), address);
      } catch (err) {
        const leader = this.learn(topic, partition, address, err);
        // Refused before a connection existed, the request never left: as safe to retry as NOT_LEADER.
        const never_sent = err instanceof RpcError && err.code === 'UNAVAILABLE' && /No connection established/.test(err.message);
        if (!(isEngineError(err, 'NOT_LEADER') || never_sent) || attempt >= this.redirects_max) throw err;
        if (leader === null) {
          // No leader known there yet (an election is under way): wait a little, ask again.
          await sleep(Math.min(1_000, 50 * 2 ** Math.min(attempt, 5)));
          address = this.leaderFor(topic, partition);
        } else {
          address = leader;
        }
      }
    }
  }

  // ------------------------------------------------------------------ admin

  createTopic(name: string, opts: { partitions?: number; config?: Record<string, string> } = {}): Promise<TopicDescription> {
    return this.call(this.admin, 'CreateTopic', { name, partitions: opts.partitions ?? 0, config: opts.config ?? {} });
  }
  async deleteTopic(name: string): Promise<void> {
    await this.call(this.admin, 'DeleteTopic', { name });
  }
  async listTopics(): Promise<TopicDescription[]> {
    return (await this.call<{ topics: TopicDescription[] }>(this.admin, 'ListTopics', {})).topics;
  }
  describeTopic(name: string): Promise<TopicDescription> {
    return this.call(this.admin, 'DescribeTopic', { name });
  }
  /** Compacts compacted topics now (all, or `topic`). */
  compact(topic = ''): Promise<CompactReport> {
    return this.call(this.admin, 'Compact', { topic });
  }
  /** Uploads eligible sealed segments to the server's archive tier now, then applies retention. */
  archive(topic = ''): Promise<ArchiveReport> {
    return this.call(this.admin, 'Archive', { topic });
  }

  // ------------------------------------------------------------------ cluster: leadership and replicas

  /**
   * Moves the leadership of `topic/partition` to node `to` (a voter), answered by the leader once
   * `to` leads (the client follows the redirect to the leader). TRANSFER_TIMEOUT if it does not
   * happen within `timeout_ms` (default: the server's, 30 s).
   */
  transferLeader(topic: string, partition: number, to: number, timeout_ms = 0): Promise<PartitionMembership> {
    return this.partitionAdmin('TransferLeader', topic, partition, to, timeout_ms);
  }
  /** Adds node `id` as a replica (a learner, promoted to voter once caught up); resolves once it votes. */
  addReplica(topic: string, partition: number, id: number, timeout_ms = 0): Promise<PartitionMembership> {
    return this.partitionAdmin('AddReplica', topic, partition, id, timeout_ms);
  }
  /** Removes replica `id` (the leader too: it hands leadership over, and the call follows to the new leader). */
  removeReplica(topic: string, partition: number, id: number, timeout_ms = 0): Promise<PartitionMembership> {
    return this.partitionAdmin('RemoveReplica', topic, partition, id, timeout_ms);
  }

  private partitionAdmin(method: string, topic: string, partition: number, node_id: number, timeout_ms: number): Promise<PartitionMembership> {
    const req = { topic, partition, node_id, timeout_ms };
    // The server waits up to the request's timeout (30 s by default): the deadline allows for it.
    const extra_ms = (timeout_ms > 0 ? timeout_ms : 30_000) + 5_000;
    return this.routed(topic, partition, (c, address) => this.call(c.admin, method, req, extra_ms, address));
  }

  // ------------------------------------------------------------------ log

  /**
   * Appends a record set (one or more RecordBatch v2 batches, e.g. from encodeBatch). `records`
   * must not change until the returned promise settles (a redirect sends it again).
   */
  produce(topic: string, partition: number, records: Buffer, acks: 'all' | 'leader' = 'all'): Promise<ProduceResult> {
    const req: ProduceRequestObject = { topic, partition, records, acks: acks === 'all' ? 'ACKS_ALL' : 'ACKS_LEADER' };
    // A large record set: encoded once into a pooled buffer, given back once answered OK.
    const pooled = preEncodeProduceRequest(req);
    const answered = this.routed(topic, partition, (c, address) => this.call<ProduceResult>(c.log, 'Produce', req, 0, address));
    if (pooled === null) return answered;
    return answered.then((res) => {
      request_buffers.give(pooled);
      return res;
    });
  }

  /**
   * An ordered pipeline of record sets with one answer per set (what Producer uses): separate
   * unary produce calls may overtake each other on HTTP/2, sets on one pipeline never do.
   */
  producePipeline(): ProducePipeline {
    type Open = (md: Metadata) => ClientDuplexStream<object, ProduceResult>;
    // A stream opens at the leader of the partition of its first record set (cluster), and the
    // leader is learnt from its failure: the Producer's retry then goes to the right node.
    return new ProducePipeline(
      (topic, partition) => {
        const address = this.leaderFor(topic, partition);
        const log = this.conn(address).log;
        return { stream: (log as unknown as Record<string, Open>).ProducePipeline!.call(log, new Metadata()), address };
      },
      (topic, partition, address, err) => void this.learn(topic, partition, address, err),
    );
  }

  /** A client stream of record sets for pipelines: one answer at the end. */
  produceStream(): ProduceStreamHandle {
    let settle!: { resolve: (v: ProduceStreamResult) => void; reject: (e: unknown) => void };
    const done = new Promise<ProduceStreamResult>((resolve, reject) => (settle = { resolve, reject }));
    type Open = (md: Metadata, cb: (err: ServiceError | null, res: unknown) => void) => ClientWritableStream<object>;
    const open = (this.log as unknown as Record<string, Open>).ProduceStream!.bind(this.log);
    const stream = open(new Metadata(), (err, res) => (err ? settle.reject(fromServiceError(err, this.address)) : settle.resolve(res as ProduceStreamResult)));
    return {
      stream,
      write: (topic, partition, records) => stream.write({ topic, partition, records }),
      end: () => {
        stream.end();
        return done;
      },
    };
  }

  /**
   * Whole batches from `offset` up to `max_bytes`. With `max_wait_ms`, a fetch at the high
   * watermark waits that long for data (long poll) before answering with no records.
   */
  fetch(topic: string, partition: number, offset: number, max_bytes = 1024 * 1024, max_wait_ms = 0): Promise<FetchResult> {
    return this.call(this.log, 'Fetch', { topic, partition, offset, max_bytes, max_wait_ms }, max_wait_ms);
  }

  /**
   * A server stream of frames of whole batches from `start`, following the tail. `cancel()` it to
   * stop. Most callers want Consumer, which decodes records and skips those before the start.
   */
  subscribe(topic: string, partition: number, start: StartPosition, max_frame_bytes = 0): ClientReadableStream<Frame> {
    const req: Record<string, unknown> = { topic, partition, max_frame_bytes };
    if ('offset' in start) req.offset = start.offset;
    else if ('timestamp_ms' in start) req.timestamp_ms = start.timestamp_ms;
    else if ('group' in start) req.group = start.group;
    else req.position = start.position === 'latest' ? 'LATEST' : 'EARLIEST';
    return (this.log as unknown as Record<string, (r: object) => ClientReadableStream<Frame>>).Subscribe!.call(this.log, req);
  }

  async listOffsets(topic: string, partition: number, query: { position: 'earliest' | 'latest' } | { timestamp_ms: number }): Promise<OffsetsResult> {
    const req = 'timestamp_ms' in query ? { topic, partition, timestamp_ms: query.timestamp_ms } : { topic, partition, position: query.position === 'latest' ? 'LATEST' : 'EARLIEST' };
    const r = await this.call<{ found: boolean; offset: number; log_start_offset: number; high_watermark: number }>(this.log, 'ListOffsets', req);
    return { offset: r.found ? r.offset : null, log_start_offset: r.log_start_offset, high_watermark: r.high_watermark };
  }

  /** Where leader epoch `epoch` ends in the server's log (see EpochEnd in the proto): for relays. */
  epochEnd(topic: string, partition: number, epoch: number): Promise<{ epoch: number; end_offset: number; latest_epoch: number; log_start_offset: number; high_watermark: number }> {
    return this.call(this.log, 'EpochEnd', { topic, partition, epoch });
  }

  /**
   * A producer id for an idempotent producer (Kafka's InitProducerId): unique across the cluster,
   * never handed out twice. Any node answers; an unreachable one is skipped for the next.
   */
  async initProducerId(): Promise<{ producer_id: number; producer_epoch: number }> {
    let last: unknown = null;
    for (let i = 0; i < this.addresses.length; i++) {
      const address = this.addresses[(this.produce_node + i) % this.addresses.length]!;
      try {
        return await this.call<{ producer_id: number; producer_epoch: number }>(this.conn(address).log, 'InitProducerId', {}, 0, address);
      } catch (err) {
        last = err;
        if (!(err instanceof RpcError && err.retriable)) throw err;
      }
    }
    throw last;
  }

  /** Stores `offset` (the next offset to consume) for the group; durable when it resolves. */
  async commitOffset(group: string, topic: string, partition: number, offset: number, metadata = ''): Promise<void> {
    await this.call(this.log, 'CommitOffset', { group, topic, partition, offset, metadata });
  }

  async fetchCommitted(group: string, topic: string, partition: number): Promise<{ offset: number; metadata: string } | null> {
    const r = await this.call<{ found: boolean; offset: number; metadata: string }>(this.log, 'FetchCommitted', { group, topic, partition });
    return r.found ? { offset: r.offset, metadata: r.metadata } : null;
  }

  /** A subscription's stream error as an EngineError/RpcError (as the unary calls reject). */
  streamError(err: unknown): Error {
    return typeof (err as ServiceError)?.code === 'number' ? fromServiceError(err as ServiceError, this.address) : (err as Error);
  }

  close(): void {
    for (const c of this.conns.values()) {
      c.admin.close();
      c.log.close();
    }
  }
}
