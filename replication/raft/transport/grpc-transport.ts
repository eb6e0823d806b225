/**
 * Node-to-node transport of a Raft cluster over gRPC, on each node's ordinary --listen port
 * (service Raft in server/proto/relaylog.proto):
 *
 *  - each node opens one client stream `Raft.Step` to each peer and sends every partition's
 *    messages to that peer on it, batched into frames (one frame per event-loop turn per peer);
 *    the peer's answers come back on the peer's own stream to this node;
 *  - sending never blocks the Raft loop: a message for a peer that is down, or whose stream is
 *    backed up beyond `peer_queue_max_bytes`, is dropped. Raft is built for lossy links: heartbeats,
 *    probes and retransmission recover (etcd's transport behaves the same);
 *  - a broken stream is reopened on the next send, at most every `reconnect_ms`.
 *
 * The same per-peer channel carries the unary cluster calls (topic creation forwarding, topic lists).
 */
import { credentials, makeGenericClientConstructor, Metadata, type Client, type ClientWritableStream, type ServiceError } from '@grpc/grpc-js';
import { BufferPool } from '../../../engine/base/buffer-pool.js';
import { RaftService } from '../../../server/proto/load.js';
import { installClientPrefixedSend } from '../../../server/rpc/prefixed-send.js';
import type { NodeId } from '../core/types.js';
import { messageBytes, type PartitionMessage } from './codec.js';
import { encodeRaftFrame } from './frame-codec.js';

export interface TransportLogger {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
}

export interface TransportOptions {
  node_id: NodeId;
  /** Every node of the cluster, this one included: id -> HOST:PORT. */
  peers: ReadonlyMap<NodeId, string>;
  logger: TransportLogger;
  /** Bytes written to a peer's stream and not yet flushed to its socket, beyond which messages are dropped. */
  peer_queue_max_bytes?: number;
  /** Wait at least this long between attempts to (re)open a peer's stream. */
  reconnect_ms?: number;
  /** A frame carries at most this many bytes of messages (a single larger message still goes alone). */
  frame_max_bytes?: number;
}

/**
 * The Raft service as this client sends it: a Step frame arrives already encoded (frame-codec.ts),
 * so its serializer passes Buffers through (anything else goes through protobufjs as before).
 */
const StepDefinition = RaftService['Step'] as unknown as { requestSerialize: (v: unknown) => Buffer };
const RaftClient = makeGenericClientConstructor(
  {
    ...RaftService,
    Step: { ...RaftService['Step'], requestSerialize: (v: unknown): Buffer => (Buffer.isBuffer(v) ? v : StepDefinition.requestSerialize(v)) },
  } as typeof RaftService,
  'Raft',
);
const MESSAGE_MAX_BYTES = 65 * 1024 * 1024;

/**
 * Buffers for large frames (appends), reused once sent. A fresh multi-MiB buffer costs a page fault
 * per 4 KiB on first write, and on this kind of machine that fault cost was the largest item in a
 * leader's profile (engine/base/buffer-pool.ts). A frame is at most `frame_max_bytes` of messages
 * plus headers: size classes are powers of two plus 64 KiB of slack, so a 1 MiB frame fits its
 * class. Frames under POOLED_MIN_BYTES (heartbeats, responses) take ordinary allocations.
 *
 * A buffer goes back to the pool in the stream write's callback. That is sound only if grpc-js
 * calls it once the HTTP/2 stream has written the bytes, which it does when the message is not
 * kept in its retry buffer: the channels below disable retries and give that buffer no room.
 */
const frame_pool = new BufferPool(16, 64 * 1024);
const POOLED_MIN_BYTES = 64 * 1024;

interface Peer {
  readonly id: NodeId;
  readonly address: string;
  readonly client: Client;
  stream: ClientWritableStream<object> | null;
  opened_ms: number;
  queue: PartitionMessage[];
  queue_bytes: number;
  /** Written to the stream, not yet handed to the socket. */
  inflight_bytes: number;
  /** When inflight_bytes first went over the limit (a stuck stream is reopened after a while). */
  congested_since_ms: number;
  flush_scheduled: boolean;
  up: boolean;
}

export class RaftTransport {
  private readonly peers = new Map<NodeId, Peer>();
  private closed = false;
  /** Messages dropped because a peer was unreachable or backed up (metrics, tests). */
  dropped = 0;
  sent = 0;
  private readonly queue_max: number;
  private readonly reconnect_ms: number;
  private readonly frame_max: number;

  constructor(private readonly o: TransportOptions) {
    this.queue_max = o.peer_queue_max_bytes ?? 64 * 1024 * 1024;
    this.reconnect_ms = o.reconnect_ms ?? 200;
    // Small frames let a follower start on the first append while the next is on the wire (a
    // message is delivered only once all of it has arrived); larger appends still go alone.
    this.frame_max = o.frame_max_bytes ?? 1024 * 1024;
    installClientPrefixedSend();
    for (const [id, address] of o.peers) {
      if (id === o.node_id) continue;
      const client = new RaftClient(address, credentials.createInsecure(), {
        'grpc.max_receive_message_length': MESSAGE_MAX_BYTES,
        'grpc.max_send_message_length': MESSAGE_MAX_BYTES,
        'grpc-node.flow_control_window': 16 * 1024 * 1024,
        // Reconnect quickly after a peer restarts (grpc-js's default backoff grows to 120 s).
        'grpc.initial_reconnect_backoff_ms': 100,
        'grpc.max_reconnect_backoff_ms': 1000,
        // Our own transport reconnects and Raft retransmits, and the unary topic calls on this
        // channel fall back on topic sync; with no retry buffer a write's callback means "sent"
        // (frame_pool above), not "buffered for a retry".
        'grpc.enable_retries': 0,
        'grpc.per_rpc_retry_buffer_size': 0,
      });
      this.peers.set(id, { id, address, client, stream: null, opened_ms: 0, queue: [], queue_bytes: 0, inflight_bytes: 0, congested_since_ms: 0, flush_scheduled: false, up: false });
    }
  }

  /** Queues a message for its destination node (m.message.to); sent with the others of this turn. */
  send(pm: PartitionMessage): void {
    const peer = this.peers.get(pm.message.to);
    if (peer === undefined || this.closed) {
      this.dropped++;
      return;
    }
    const size = messageBytes(pm.message);
    if (peer.queue_bytes + peer.inflight_bytes + size > this.queue_max && peer.queue.length > 0) {
      this.dropped++;
      return;
    }
    peer.queue.push(pm);
    peer.queue_bytes += size;
    if (!peer.flush_scheduled) {
      peer.flush_scheduled = true;
      setImmediate(() => this.flush(peer));
    }
  }

  private flush(peer: Peer): void {
    peer.flush_scheduled = false;
    if (this.closed || peer.queue.length === 0) return;
    const now = Date.now();
    if (peer.inflight_bytes > this.queue_max) {
      // The stream is not draining: drop what is queued; reopen it if it stays stuck.
      if (peer.congested_since_ms === 0) peer.congested_since_ms = now;
      else if (now - peer.congested_since_ms > 5_000) this.resetStream(peer, 'stream stuck');
      this.dropQueue(peer);
      return;
    }
    peer.congested_since_ms = 0;
    const stream = this.streamOf(peer, now);
    if (stream === null) {
      this.dropQueue(peer);
      return;
    }
    while (peer.queue.length > 0) {
      const frame: PartitionMessage[] = [];
      let bytes = 0;
      while (peer.queue.length > 0) {
        const size = messageBytes(peer.queue[0]!.message);
        if (frame.length > 0 && bytes + size > this.frame_max) break;
        frame.push(peer.queue.shift()!);
        bytes += size;
      }
      peer.queue_bytes -= bytes;
      peer.inflight_bytes += bytes;
      this.sent += frame.length;
      let encoded: Buffer;
      let pooled: Buffer | null = null;
      const alloc = (size: number): Buffer => (size < POOLED_MIN_BYTES ? Buffer.allocUnsafe(size) : (pooled = frame_pool.take(size)));
      try {
        encoded = encodeRaftFrame(this.o.node_id, peer.id, frame, alloc);
      } catch (err) {
        // A message with a value the wire cannot carry: dropped (Raft retransmits), never thrown here.
        peer.inflight_bytes -= bytes;
        this.dropped += frame.length;
        this.o.logger.warn({ peer: peer.id, err: (err as Error).message }, 'raft: a frame could not be encoded; its messages are dropped');
        continue;
      }
      stream.write(encoded, () => {
        peer.inflight_bytes -= bytes;
        if (pooled !== null) frame_pool.give(pooled);
      });
    }
    peer.queue_bytes = 0;
  }

  private dropQueue(peer: Peer): void {
    this.dropped += peer.queue.length;
    peer.queue = [];
    peer.queue_bytes = 0;
  }

  private streamOf(peer: Peer, now: number): ClientWritableStream<object> | null {
    if (peer.stream !== null) return peer.stream;
    if (now - peer.opened_ms < this.reconnect_ms) return null;
    peer.opened_ms = now;
    type Open = (md: Metadata, cb: (err: ServiceError | null) => void) => ClientWritableStream<object>;
    const open = (peer.client as unknown as Record<string, Open>).Step!.bind(peer.client);
    const stream = open(new Metadata(), (err) => {
      if (peer.stream === stream) this.resetStream(peer, err ? err.details || err.message : 'ended');
    });
    stream.on('error', () => undefined); // reported through the callback above
    peer.stream = stream;
    peer.inflight_bytes = 0;
    return stream;
  }

  private resetStream(peer: Peer, why: string): void {
    const stream = peer.stream;
    peer.stream = null;
    peer.inflight_bytes = 0;
    peer.congested_since_ms = 0;
    if (stream) stream.cancel();
    if (peer.up) this.o.logger.info({ peer: peer.id, address: peer.address, why }, 'raft: stream to peer closed');
    peer.up = false;
  }

  /** Marks a peer reachable (it answered or sent something): for the log only. */
  heardFrom(id: NodeId): void {
    const peer = this.peers.get(id);
    if (peer && !peer.up) {
      peer.up = true;
      this.o.logger.info({ peer: id, address: peer.address }, 'raft: peer reachable');
    }
  }

  /** A unary Raft-service call to a peer (topic forwarding); rejects with the gRPC error. */
  call<T>(to: NodeId, method: string, req: object, deadline_ms: number): Promise<T> {
    const peer = this.peers.get(to);
    if (peer === undefined) return Promise.reject(new Error(`unknown peer ${to}`));
    type Rpc = (req: object, md: Metadata, opts: object, cb: (err: ServiceError | null, res: unknown) => void) => unknown;
    const rpc = (peer.client as unknown as Record<string, Rpc>)[method]!.bind(peer.client);
    return new Promise((resolve, reject) => {
      // Wait for a connection (within the deadline) rather than fail at once while the channel is
      // backing off from a peer that was not listening yet (every node starts at about the same time).
      rpc(req, new Metadata({ waitForReady: true }), { deadline: Date.now() + deadline_ms }, (err, res) => (err ? reject(err) : resolve(res as T)));
    });
  }

  peerIds(): NodeId[] {
    return [...this.peers.keys()];
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const peer of this.peers.values()) {
      const stream = peer.stream;
      peer.stream = null;
      if (stream) {
        stream.end();
        stream.cancel();
      }
      peer.client.close();
    }
  }
}
