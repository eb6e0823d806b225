import { mkdir, readFile, readdir, rename, rm, writeFile, open as openFile } from 'node:fs/promises';
import { join } from 'node:path';
import { systemClock, type Clock } from '../base/clock.js';
import { closed, invalidArgument, storageError, topicExists, unknownPartition, unknownTopic, type EngineError } from '../base/errors.js';
import { limits } from '../base/limits.js';
import { Catalog } from '../catalog/catalog.js';
import { DataDirLock } from './data-dir-lock.js';
import { MemoryTier } from '../tier/memory-tier.js';
import { statfsFreeBytes } from './disk-space.js';
import { PartitionLog } from './partition-log.js';
import { PRODUCER_ID_COUNTER_SPAN } from './producer-state.js';
import { Slots } from '../base/slots.js';
import { resolveTopicConfig, validateTopicName } from './topic-config.js';
import type { EngineLogger, StoreOptions, TopicConfig, TopicHooks, TopicInfo } from './types.js';
import { ArchiveTier } from '../tier/archive-tier.js';
import { openArchiveStore } from '../tier/archive/archive-store.js';

const silentLogger: EngineLogger = { info: () => undefined, warn: () => undefined };

const TOPIC_FILE = 'topic.json';

interface OpenTopic {
  info: TopicInfo;
  partitions: PartitionLog[];
}

/**
 * A data dir: an exclusive lock, one LMDB catalog, and a directory per topic holding a
 * `topic.json` (its config, so the catalog can be rebuilt) and a directory per partition.
 *
 *   <dir>/.lock
 *   <dir>/catalog/                      LMDB environment (segments, indexes, group offsets)
 *   <dir>/topics/<topic>/topic.json
 *   <dir>/topics/<topic>/<partition>/<base offset, 20 digits>.log
 */
export class LogStore {
  private topics = new Map<string, OpenTopic>();
  /** Concurrent segment-file reads, node-wide: the rest of libuv's thread pool stays free for appends' writes and fsyncs. */
  private readonly read_slots = new Slots(limits.segment_reads_concurrent_max);
  /** Names whose createTopic is under way (reserved before its first await). */
  private readonly creating = new Set<string>();
  private state: 'open' | 'closing' | 'closed' = 'open';
  private retention_timer: NodeJS.Timeout | null = null;

  private constructor(
    readonly dir: string,
    private readonly lock: DataDirLock,
    readonly catalog: Catalog,
    private readonly opts: Required<Omit<StoreOptions, 'topic_defaults' | 'memory_tier_bytes' | 'archive_url' | 'archive_interval_ms' | 'retention_check_interval_ms' | 'compaction_interval_ms' | 'archive_cache_bytes' | 'logger' | 'hooks' | 'raft'>> & { topic_defaults: Partial<TopicConfig>; hooks?: StoreOptions['hooks']; raft: boolean },
    readonly memory: MemoryTier | null,
    private readonly logger: EngineLogger,
  ) {}

  /** Leader epoch stamped on batches produced to this node since it opened. */
  node_epoch = 0;
  private topic_hooks: TopicHooks | null = null;

  /** True when partitions are replicated by Raft (StoreOptions.raft). */
  get raft(): boolean {
    return this.opts.raft;
  }

  /** Registers the one listener told about topics created and deleted from now on (a cluster node's Raft drivers). */
  setTopicHooks(hooks: TopicHooks | null): void {
    this.topic_hooks = hooks;
  }

  private replicated_append: (() => void) | null = null;
  /** Registers the one listener told of every appendReplicated on any partition (a Raft follower's gRPC server paces catch-up replay on it). */
  setReplicatedAppendHook(hook: (() => void) | null): void {
    this.replicated_append = hook;
  }
  /** The archive tier, when the store was opened with `archive_url`. */
  archive: ArchiveTier | null = null;
  private archive_timer: NodeJS.Timeout | null = null;
  private compaction_timer: NodeJS.Timeout | null = null;

  static async open(options: StoreOptions): Promise<LogStore> {
    const dir = options.dir;
    await mkdir(join(dir, 'topics'), { recursive: true });
    const lock = DataDirLock.acquire(dir);
    let catalog: Catalog | null = null;
    const memory_bytes = options.memory_tier_bytes ?? limits.memory_tier_bytes;
    try {
      catalog = Catalog.open(join(dir, 'catalog'));
      const store = new LogStore(dir, lock, catalog, {
        dir,
        clock: options.clock ?? systemClock,
        disk_free_floor_bytes: options.disk_free_floor_bytes ?? limits.disk_free_floor_bytes,
        free_bytes: options.free_bytes ?? statfsFreeBytes,
        verify_crc_on_read: options.verify_crc_on_read ?? true,
        topic_defaults: options.topic_defaults ?? {},
        raft: options.raft ?? false,
        ...(options.hooks ? { hooks: options.hooks } : {}),
      }, memory_bytes > 0 ? new MemoryTier(memory_bytes) : null, options.logger ?? silentLogger);
      catalog.onWriteError = catalogWriteWarnings(options.logger ?? silentLogger, store.opts.clock);
      if (options.archive_url) {
        store.archive = await ArchiveTier.open({
          store: openArchiveStore(options.archive_url),
          catalog,
          clock: store.opts.clock,
          cache_dir: join(dir, 'archive-cache'),
          ...(options.archive_cache_bytes !== undefined ? { cache_max_bytes: options.archive_cache_bytes } : {}),
        });
        if (catalog.fresh) await store.restoreFromArchive();
      }
      await store.openTopics();
      if (catalog.fresh) await store.raiseProducerIdFloor();
      // Each incarnation of a node writes with a new, larger leader epoch, so a relay that copied a
      // tail this node lost in a crash (fsync=interval|never) sees the divergence and truncates.
      store.node_epoch = catalog.maxEpoch() + 1;
      catalog.putNodeEpoch(store.node_epoch);
      const archive_every_ms = options.archive_interval_ms ?? 10_000;
      if (store.archive && archive_every_ms > 0) {
        store.archive_timer = setInterval(() => void store.archiveAndRetain(), archive_every_ms);
        store.archive_timer.unref();
      }
      const compact_every_ms = options.compaction_interval_ms ?? 60_000;
      if (compact_every_ms > 0) {
        store.compaction_timer = setInterval(() => {
          if (store.state !== 'open') return;
          store.compact().catch((err: unknown) => store.logger.warn({ err: (err as Error).message }, 'compaction failed; will retry'));
        }, compact_every_ms);
        store.compaction_timer.unref();
      }
      const every_ms = options.retention_check_interval_ms ?? 30_000;
      if (every_ms > 0) {
        store.retention_timer = setInterval(() => void store.applyRetention().catch(() => undefined), every_ms);
        store.retention_timer.unref();
      }
      return store;
    } catch (err) {
      if (catalog) await catalog.close().catch(() => undefined);
      lock.release();
      throw err;
    }
  }

  /**
   * An empty (or lost) catalog with an archive configured: rebuild the archived-segment catalog and
   * index entries from the archive's sidecars, and recreate topics this data dir does not have.
   */
  private async restoreFromArchive(): Promise<void> {
    const topics = await this.archive!.restoreCatalog();
    for (const info of topics) {
      const tdir = join(this.dir, 'topics', info.name);
      await mkdir(tdir, { recursive: true });
      const file = join(tdir, TOPIC_FILE);
      await writeFile(file, JSON.stringify(info, null, 2), { flag: 'wx' }).catch((err: NodeJS.ErrnoException) => {
        if (err.code !== 'EEXIST') throw err;
      });
    }
    this.logger.info({ archive: this.archive!.url, topics: topics.length }, 'catalog rebuilt from the archive');
  }

  /** Compacts every partition of compacted topics (or of `topic`); see PartitionLog.compact. */
  async compact(topic?: string, opts: { on_progress?: (bytes: number) => void } = {}): Promise<{ partitions: number; segments_rewritten: number; segments_merged: number; records_removed: number; bytes_before: number; bytes_after: number }> {
    this.checkOpen();
    const total = { partitions: 0, segments_rewritten: 0, segments_merged: 0, records_removed: 0, bytes_before: 0, bytes_after: 0 };
    for (const t of this.topics.values()) {
      if (topic !== undefined && t.info.name !== topic) continue;
      if (t.info.config.cleanup_policy !== 'compact') continue;
      for (const p of t.partitions) {
        const r = await p.compact(opts.on_progress ? { on_progress: opts.on_progress } : {});
        total.partitions++;
        total.segments_rewritten += r.segments_rewritten;
        total.segments_merged += r.segments_merged;
        total.records_removed += r.records_removed;
        total.bytes_before += r.bytes_before;
        total.bytes_after += r.bytes_after;
      }
    }
    return total;
  }

  /**
   * An origin (a node that takes produce) marks its new epoch at every partition's log end when it
   * starts serving; see PartitionLog.markEpochStart. Relays do not.
   */
  markEpochStarts(): void {
    for (const t of this.topics.values()) for (const p of t.partitions) p.markEpochStart(this.node_epoch);
  }

  /** Uploads eligible sealed segments (of every topic, or of `topic`), then applies retention to all. Never throws. */
  async archiveAndRetain(on_progress?: (bytes: number) => void, topic?: string): Promise<{ uploaded: number; deleted: number; failures: number }> {
    if (this.state !== 'open') return { uploaded: 0, deleted: 0, failures: 0 };
    let uploaded = 0;
    let failures = 0;
    for (const t of this.topics.values()) {
      if (topic !== undefined && t.info.name !== topic) continue;
      for (const p of t.partitions) {
        try {
          uploaded += await p.archiveSegments(on_progress);
        } catch (err) {
          failures++;
          this.logger.warn({ topic: p.topic, partition: p.partition, err: (err as Error).message }, 'archive upload failed; local segments kept, will retry');
        }
      }
    }
    const deleted = await this.applyRetention().catch((err: unknown) => {
      this.logger.warn({ err: (err as Error).message }, 'retention failed');
      return 0;
    });
    return { uploaded, deleted, failures };
  }

  private async openTopics(): Promise<void> {
    for (const name of await readdir(join(this.dir, 'topics'))) {
      let info: TopicInfo;
      try {
        info = JSON.parse(await readFile(join(this.dir, 'topics', name, TOPIC_FILE), 'utf8')) as TopicInfo;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') continue; // half-created or half-deleted
        throw storageError(`reading ${join(this.dir, 'topics', name, TOPIC_FILE)}`, err);
      }
      this.topics.set(name, { info, partitions: await this.openPartitions(info) });
    }
  }

  private async openPartitions(info: TopicInfo): Promise<PartitionLog[]> {
    const out: PartitionLog[] = [];
    for (let p = 0; p < info.config.partitions; p++) {
      out.push(
        await PartitionLog.open({
          topic: info.name,
          partition: p,
          dir: join(this.dir, 'topics', info.name, String(p)),
          config: info.config,
          catalog: this.catalog,
          clock: this.opts.clock,
          free_bytes: () => this.opts.free_bytes(this.dir),
          disk_free_floor_bytes: this.opts.disk_free_floor_bytes,
          verify_crc_on_read: this.opts.verify_crc_on_read,
          memory: this.memory,
          archive: this.archive,
          leader_epoch: () => this.node_epoch,
          read_slots: this.read_slots,
          raft: this.opts.raft,
          on_replicated_append: () => this.replicated_append?.(),
          ...(this.opts.hooks ? { hooks: this.opts.hooks } : {}),
        }),
      );
    }
    return out;
  }

  private checkOpen(): void {
    if (this.state !== 'open') throw closed(`log store ${this.dir}`);
  }

  /**
   * Creates a topic. `created_ms` identifies this incarnation of the name (a relay copies its
   * upstream's, so a topic deleted and re-created upstream is recognised downstream).
   */
  async createTopic(name: string, config: Partial<TopicConfig> = {}, opts: { created_ms?: number; replicas?: readonly number[] } = {}): Promise<TopicInfo> {
    this.checkOpen();
    validateTopicName(name);
    // The name is reserved before the first await: a concurrent create of the same name gets
    // TOPIC_EXISTS, never a half-written topic dir or a raw ENOENT from the loser's rename.
    if (this.topics.has(name) || this.creating.has(name)) throw topicExists(name);
    this.creating.add(name);
    try {
      const info: TopicInfo = {
        name,
        config: resolveTopicConfig(config, this.opts.topic_defaults),
        created_ms: opts.created_ms ?? this.opts.clock.now_ms(),
        ...(opts.replicas ? { replicas: [...opts.replicas] } : {}),
      };
      const tdir = join(this.dir, 'topics', name);
      await mkdir(tdir, { recursive: true });
      // topic.json appears atomically: written aside, fsynced, renamed.
      const tmp = join(tdir, `${TOPIC_FILE}.tmp`);
      await writeFile(tmp, JSON.stringify(info, null, 2));
      const fh = await openFile(tmp, 'r');
      await fh.sync();
      await fh.close();
      await rename(tmp, join(tdir, TOPIC_FILE));
      const partitions = await this.openPartitions(info);
      this.topics.set(name, { info, partitions });
      this.topic_hooks?.created(info, partitions);
      return info;
    } finally {
      this.creating.delete(name);
    }
  }

  async deleteTopic(name: string): Promise<void> {
    this.checkOpen();
    const t = this.topics.get(name);
    if (!t) throw unknownTopic(name);
    this.topics.delete(name);
    await this.topic_hooks?.deleting(name);
    for (const p of t.partitions) {
      // Archived data goes too, or a later rebuild from the archive would bring the topic back.
      if (this.archive) for (const a of this.archive.list([name, p.partition])) await this.archive.delete([name, p.partition], a);
      await p.close();
      this.catalog.dropPartition([name, p.partition]);
    }
    await this.archive?.deleteTopic(name);
    // Rename first so a crash mid-delete never leaves a half-topic that looks alive.
    const tdir = join(this.dir, 'topics', name);
    const gone = join(this.dir, `.deleted-${name}-${Date.now()}`);
    await rename(tdir, gone);
    await rm(gone, { recursive: true, force: true });
  }

  /**
   * A rebuilt catalog has lost the producer-id counter (docs/format.md): it restarts above every
   * producer id the segments still remember (the counter part, whatever node handed it out), so
   * a new producer never takes the id of one whose batches a partition would match. A cluster
   * node's partitions remember their whole local log, so all of it is read there.
   */
  private async raiseProducerIdFloor(): Promise<void> {
    let floor = 0;
    for (const t of this.topics.values()) {
      for (const p of t.partitions) {
        const table = await p.rebuiltProducerState(this.opts.raft ? Number.POSITIVE_INFINITY : limits.producer_state_scan_min_bytes);
        for (const e of table.entries()) floor = Math.max(floor, (e.producer_id % PRODUCER_ID_COUNTER_SPAN) + 1);
      }
    }
    if (floor > 0) this.catalog.raiseProducerIdCounter(floor);
  }

  listTopics(): TopicInfo[] {
    return [...this.topics.values()].map((t) => t.info).sort((a, b) => a.name.localeCompare(b.name));
  }

  topic(name: string): TopicInfo {
    const t = this.topics.get(name);
    if (!t) throw unknownTopic(name);
    return t.info;
  }

  partitions(name: string): readonly PartitionLog[] {
    const t = this.topics.get(name);
    if (!t) throw unknownTopic(name);
    return t.partitions;
  }

  partition(topic: string, partition: number): PartitionLog {
    this.checkOpen();
    const t = this.topics.get(topic);
    if (!t) throw unknownTopic(topic);
    const p = Number.isInteger(partition) ? t.partitions[partition] : undefined;
    if (!p) throw unknownPartition(topic, partition, t.partitions.length);
    return p;
  }

  /** Stores a consumer group's committed offset; durable (LMDB commit synced) when it resolves. */
  async commitGroupOffset(group: string, topic: string, partition: number, offset: number, metadata = ''): Promise<void> {
    this.partition(topic, partition);
    if (typeof group !== 'string' || group.length === 0 || group.length > 255) throw invalidArgument('group id must be 1..255 characters');
    if (!Number.isSafeInteger(offset) || offset < 0) throw invalidArgument(`committed offset must be a non-negative integer, got ${offset}`);
    await this.catalog.commitGroupOffset(group, topic, partition, { offset, metadata, committed_ms: this.opts.clock.now_ms() });
  }

  fetchGroupOffset(group: string, topic: string, partition: number): { offset: number; metadata: string } | null {
    this.partition(topic, partition);
    const v = this.catalog.getGroupOffset(group, topic, partition);
    return v ? { offset: v.offset, metadata: v.metadata } : null;
  }

  /** Runs retention on every partition now (it also runs on a timer). Returns segments deleted. */
  async applyRetention(): Promise<number> {
    let n = 0;
    for (const t of this.topics.values()) for (const p of t.partitions) n += await p.applyRetention();
    return n;
  }

  /** Rebuilds every partition's indexes from its segment files (segments are the source of truth). */
  async rebuildIndexes(): Promise<void> {
    this.checkOpen();
    for (const t of this.topics.values()) for (const p of t.partitions) await p.rebuildIndexes();
  }

  /** Drains in-flight appends, fsyncs, records clean closes, closes LMDB, releases the lock. Idempotent. */
  async close(): Promise<void> {
    if (this.state !== 'open') return;
    this.state = 'closing';
    if (this.retention_timer) clearInterval(this.retention_timer);
    if (this.archive_timer) clearInterval(this.archive_timer);
    if (this.compaction_timer) clearInterval(this.compaction_timer);
    try {
      for (const t of this.topics.values()) for (const p of t.partitions) await p.close();
      await this.archive?.close();
      await this.catalog.flush();
      await this.catalog.close();
    } finally {
      this.lock.release();
      this.state = 'closed';
    }
  }

  /** For crash tests: drop everything as a killed process would (no fsync, no clean-close records). */
  async abandon(): Promise<void> {
    if (this.state !== 'open') return;
    this.state = 'closed';
    if (this.retention_timer) clearInterval(this.retention_timer);
    if (this.archive_timer) clearInterval(this.archive_timer);
    if (this.compaction_timer) clearInterval(this.compaction_timer);
    for (const t of this.topics.values()) for (const p of t.partitions) await p.abandon();
    await this.archive?.close().catch(() => undefined);
    await this.catalog.close();
    this.lock.release();
  }
}

/**
 * Catalog writes that failed and that nobody waited for (index entries, segment records): the first
 * is logged at once, then at most one line per 10 s, with a count.
 */
function catalogWriteWarnings(logger: EngineLogger, clock: Clock): (err: EngineError) => void {
  let last_ms = -Infinity;
  let failed = 0;
  return (err) => {
    failed++;
    const now = clock.now_ms();
    if (now - last_ms < 10_000) return;
    logger.warn({ code: err.code, err: err.message, failed_writes: failed }, 'catalog writes failed: lookups read forward from an earlier index entry, a segment with a stale record is rescanned on the next open');
    last_ms = now;
    failed = 0;
  };
}
