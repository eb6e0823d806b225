import type { Clock } from '../../engine/base/clock.js';
import type { LogStore } from '../../engine/log/log-store.js';
import type { TopicConfig, TopicInfo } from '../../engine/log/types.js';
import type { ServerLogger } from '../rpc/context.js';
import type { GroupCoordinator } from './group/coordinator.js';
import type { KafkaLimits } from './limits.js';
import type { RequestHeader } from './protocol/frame.js';

/** This node as clients should reach it (Metadata, FindCoordinator). */
export interface AdvertisedNode {
  node_id: number;
  host: string;
  port: number;
}

/**
 * A Raft cluster as the Kafka listener of one of its nodes sees it (absent on a single node or a
 * relay): Metadata lists every node and names each partition's Raft leader, so clients send
 * Produce to the leader; a follower that gets one answers NOT_LEADER_OR_FOLLOWER.
 */
export interface KafkaClusterView {
  /** Every voter's node id (the Kafka broker ids). */
  voters(): readonly number[];
  /** A partition's replica set (its Raft voters); absent: every node of voters(). */
  replicasOf?(topic: string, partition: number): readonly number[];
  /** Where Kafka clients reach node `id`'s listener, or null if not known. */
  kafkaAddressOf(id: number): { host: string; port: number } | null;
  /** The partition's leader as this node knows it; 0 while unknown (an election). */
  leaderOf(topic: string, partition: number): number;
}

/** What every Kafka handler needs from the listener, and nothing more. */
export interface KafkaContext {
  readonly store: LogStore;
  readonly limits: KafkaLimits;
  readonly logger: ServerLogger;
  readonly clock: Clock;
  readonly coordinator: GroupCoordinator;
  readonly cluster_id: string;
  /** Set on a Raft cluster node (see KafkaClusterView). */
  readonly cluster: KafkaClusterView | null;
  /** Set when the store is a read-only relay replica: Produce and CreateTopics are refused. */
  readonly relay: { readonly upstreams: readonly string[] } | null;
  /** Metadata creates a missing topic (1 partition) when the client allows it. Off by default. */
  readonly auto_create_topics: boolean;
  /** Aborted when the listener begins to stop: long polls end at once. */
  readonly stopping: AbortSignal;
  /** A record set is being appended by a Kafka produce (catch-up Subscribe replay is paced while these arrive). */
  noteAppend(): void;
  /**
   * Creates a topic through the store, one creation at a time: LogStore.createTopic is not safe
   * against two concurrent creates of one name (both write the same temp file), and Kafka clients
   * on different connections do race to create topics.
   */
  createTopic(name: string, config: Partial<TopicConfig>): Promise<TopicInfo>;
  /** Registers work (an append) that stop() waits for. */
  track<T>(work: Promise<T>): Promise<T>;
}

/** One request on one connection. */
export interface RequestContext {
  readonly header: RequestHeader;
  /** The node as this connection should reach it (the configured advertised address, else the socket's local address). */
  readonly node: AdvertisedNode;
  readonly remote: string;
  /** Aborted when the connection closes or the listener stops. */
  readonly signal: AbortSignal;
  /** Runs `fn` once the response has been handed to the socket (or the connection closed): returns read buffers to their pool. */
  afterSent(fn: () => void): void;
}
