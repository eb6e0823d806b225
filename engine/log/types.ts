import type { Clock } from '../base/clock.js';
import type { PartitionHooks } from './partition-log.js';

/**
 * When appended bytes are fsynced, and so what an acknowledged append survives:
 * - always: fdatasync before the append is acknowledged (group commit shares one fsync between
 *   all appends waiting at that moment). Survives process crash and power loss.
 * - interval: fsync every `interval_ms`; acknowledged on write(). Survives a process crash
 *   (the bytes are in the OS page cache); a power loss may lose the last interval.
 * - never: the OS flushes when it likes. Survives a process crash only.
 */
export type FsyncPolicy = { policy: 'always' } | { policy: 'interval'; interval_ms: number } | { policy: 'never' };

export type CleanupPolicy = 'delete' | 'compact';

export interface TopicConfig {
  partitions: number;
  /** `segment.bytes`: roll the active segment when it would grow past this. */
  segment_bytes: number;
  /** `segment.ms`: roll the active segment once it is this old (wall-clock since its first append). */
  segment_ms: number;
  /** `retention.bytes` per partition; -1 = unlimited. Whole sealed segments only. */
  retention_bytes: number;
  /** `retention.ms`; -1 = unlimited. A sealed segment goes once its newest record is older. */
  retention_ms: number;
  /** `max.message.bytes`: the largest batch accepted. */
  max_message_bytes: number;
  /** `flush.messages` / `flush.ms` in Kafka's vocabulary. */
  fsync: FsyncPolicy;
  /** `cleanup.policy`. */
  cleanup_policy: CleanupPolicy;
  /** Compacted topics: how long a tombstone is kept after its timestamp (default one day). */
  delete_retention_ms?: number;
  /** `remote.storage.enable`: upload sealed segments to the node's archive tier (when it has one). */
  remote_storage_enable: boolean;
  /**
   * `local.retention.bytes` / `local.retention.ms`: how much stays on the SSD tier once archived.
   * -2 (Kafka's default) means "the same as retention.bytes / retention.ms".
   */
  local_retention_bytes: number;
  local_retention_ms: number;
}

export interface TopicInfo {
  name: string;
  config: TopicConfig;
  created_ms: number;
  /**
   * Raft cluster: the node ids of every partition's initial replica set (its bootstrap
   * configuration; membership changes in the log take over from there). Absent on a single node,
   * and for topics created before it existed (then: every node of --peers).
   */
  replicas?: number[];
}

export interface AppendOptions {
  /** Raft term stamped into partitionLeaderEpoch of every batch (default: 0 on a single node). */
  leader_epoch?: number;
  /**
   * Raft mode: `all` (default) resolves once the batches are committed (durable on a quorum),
   * `leader` once the leader has them durably. A single node treats both alike.
   */
  acks?: 'all' | 'leader';
}

export interface AppendResult {
  /** Offset given to the first record of the first batch. */
  base_offset: number;
  /** Offset of the last record of the last batch. */
  last_offset: number;
}

export interface ReadResult {
  /** Whole record batches, concatenated, exactly as stored (CRC-checked). Empty at the high watermark. */
  records: Buffer;
  /** Offset a follow-up read should start at (one past the last record returned). */
  next_offset: number;
  high_watermark: number;
  log_start_offset: number;
  /**
   * Gives the buffer behind `records` back to the read pool. Optional to call (an unreleased buffer
   * is garbage-collected), idempotent, and `records` must not be used afterwards.
   */
  release: () => void;
}

export interface PartitionStats {
  topic: string;
  partition: number;
  log_start_offset: number;
  log_end_offset: number;
  high_watermark: number;
  /** Bytes on the SSD tier (local segment files). */
  size_bytes: number;
  segment_count: number;
  /** Bytes of this partition's hot tail in the memory tier. */
  memory_bytes: number;
  /** Bytes held by the archive tier (segments may be both archived and local). */
  archive_bytes: number;
  archived_segment_count: number;
}

export interface StoreOptions {
  dir: string;
  clock?: Clock;
  /** Appends fail with DISK_FULL while free space under `dir` is below this. */
  disk_free_floor_bytes?: number;
  /** Free-space probe; defaults to statfs on the data dir. Injectable for tests. */
  free_bytes?: (dir: string) => number;
  /** Verify each batch's CRC when reading (pair assertion with the check on append). Default true. */
  verify_crc_on_read?: boolean;
  /** Node-wide memory-tier budget for partitions' hot tails (default 256 MiB; 0 disables). */
  memory_tier_bytes?: number;
  /** Defaults applied to topics created without explicit values. */
  topic_defaults?: Partial<TopicConfig>;
  /** Archive tier location: `webhdfs://host:port/path?user=NAME` or `file:///path`. */
  archive_url?: string;
  /** How often sealed segments are uploaded and retention runs when there is an archive (default 10 s; 0 = only on demand). */
  archive_interval_ms?: number;
  /** How often retention runs (0: only when asked). Default 30 s. */
  retention_check_interval_ms?: number;
  /** How often compacted topics are compacted (0: only when asked). Default 60 s. */
  compaction_interval_ms?: number;
  /** Bytes of the on-disk cache for archive reads (default 1 GiB). */
  archive_cache_bytes?: number;
  /** Where the engine reports background events (upload failures, recovery truncations). pino-compatible. */
  logger?: EngineLogger;
  /**
   * Cluster node: every partition is replicated by Raft (PartitionDeps.raft): the high watermark is
   * the commit point and produce goes through the partition's Raft driver. Default false.
   */
  raft?: boolean;
  /** Test hooks at named points of multi-step operations (a throwing hook acts as a crash there). */
  hooks?: PartitionHooks;
}

export interface EngineLogger {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
}

/** Told when topics come and go (a Raft cluster node attaches and detaches its drivers). */
export interface TopicHooks {
  /** After the topic's partitions are open, before createTopic resolves. */
  created(info: TopicInfo, partitions: readonly import('./partition-log.js').PartitionLog[]): void;
  /** Before the topic's partitions are closed. */
  deleting(name: string): Promise<void>;
}
