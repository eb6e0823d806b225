import { isControlBatch } from '../format/control-batch.js';
import { mkdir, open, readFile, rename, unlink, writeFile } from 'node:fs/promises';
import { compactBatches, latestOffsets } from './compaction.js';
import { DEFAULT_DELETE_RETENTION_MS } from './topic-config.js';
import { assert } from '../base/assert.js';
import type { Clock } from '../base/clock.js';
import {
  EngineError,
  batchTooLarge,
  closed,
  corruptBatch,
  corruptSegment,
  invalidArgument,
  invalidBatch,
  isEngineError,
  offsetMismatch,
  offsetOutOfRange,
  storageError,
} from '../base/errors.js';
import { limits } from '../base/limits.js';
import type { Catalog, PartitionKey } from '../catalog/catalog.js';
import {
  F_RECORD_COUNT,
  batchBaseOffset,
  batchLastOffsetDelta,
  batchLeaderEpoch,
  batchMaxTimestamp,
  batchSizeAt,
  checkBatch,
  forEachBatch,
  forEachRecord,
  splitRecordSet,
  stampBatch,
} from '../format/record-batch.js';
import { Indexer } from './indexer.js';
import { recoverPartition, syncDir } from './recovery.js';
import type { Slots } from '../base/slots.js';
import { scanSegment } from './segment-scan.js';
import { Segment } from './segment.js';
import type { AppendOptions, AppendResult, PartitionStats, ReadResult, TopicConfig } from './types.js';
import { Waiters } from './waiters.js';
import { AppendQueue, type PendingAppend } from './append-queue.js';
import { DiskGuard } from './disk-space.js';
import { writeAll } from './segment.js';
import { readBatches, type RangeSource, type SelectedBatches } from './read-path.js';
import { readBuffers } from '../base/buffer-pool.js';
import type { MemoryTier, PartitionTail } from '../tier/memory-tier.js';
import type { ArchiveTier } from '../tier/archive-tier.js';
import type { ArchivedSegment, ProducerSnapshot } from '../catalog/catalog.js';
import { planRetention } from './retention.js';
import { ProducerStateTable, producerBatchOf, type ProducerBatch, type ProducerEntry } from './producer-state.js';

/** Where an idempotent producer's batch landed: what a duplicate of it is answered with. */
export type OffsetRange = AppendResult;

export interface PartitionDeps {
  topic: string;
  partition: number;
  dir: string;
  config: TopicConfig;
  catalog: Catalog;
  clock: Clock;
  free_bytes: () => number;
  disk_free_floor_bytes: number;
  verify_crc_on_read: boolean;
  /** The node's memory tier (hot tails), or null to read everything from segment files. */
  memory: MemoryTier | null;
  /** The node's archive tier, or null when the node has none. */
  archive: ArchiveTier | null;
  /** Leader epoch stamped on produced batches (the node's incarnation; the Raft term once replicated). */
  leader_epoch: () => number;
  /** Test hooks: called at named points of multi-step operations; a hook that throws stops the operation there, as a crash would. */
  hooks?: PartitionHooks;
  /** The node's bound on concurrent segment-file reads (engine/base/slots.ts); appends never take one. */
  read_slots?: Slots;
  /** Called once per appendReplicated call that is queued (a Raft follower's entries, a relay's copies). */
  on_replicated_append?: () => void;
  /**
   * Raft mode (a cluster node): the high watermark is the commit point, set by the replicator
   * (`advanceHighWatermark`), not the log end; produce goes through the replicator
   * (`setReplicator`); retention deletes only committed segments, and only once the replicator has
   * stored the Raft snapshot that stands for them (`PartitionReplicator.discardBelow`); compaction
   * rewrites nothing. See docs/raft.md, "Retention on cluster nodes".
   */
  raft?: boolean;
}

/** Where `append()` goes in Raft mode: the partition's Raft driver (it proposes, then answers per acks). */
export interface PartitionReplicator {
  /** `batches` are validated (framing, CRC, record count, size); the replicator owns them. */
  append(batches: Buffer[], opts: AppendOptions): Promise<AppendResult>;
  /**
   * Retention wants to delete the local log below `offset` (a segment boundary at or below the
   * high watermark). Resolves with how far the replicator allows it (at most `offset`, at least
   * the log start offset) once it has durably recorded what stands for the discarded entries.
   */
  discardBelow?(offset: number): Promise<number>;
}

/** One batch of the local log, as `scanLocalBatches` reports it. */
export interface LocalBatch {
  base_offset: number;
  last_offset: number;
  leader_epoch: number;
  size_bytes: number;
  /** The batch's idempotent producer fields (null without a producer id). */
  producer: ProducerBatch | null;
  /** The batch's bytes when it is a control batch (a Raft membership change), else absent. */
  control_bytes?: Buffer;
}

/** Where a compaction can be made to stop, for crash tests: a hook that throws there stops it. */
export type CompactionPoint = 'rewrite:written' | 'rewrite:renamed' | 'merge:written' | 'merge:renamed' | 'merge:unlinked-one';

export interface PartitionHooks {
  compaction?: (point: CompactionPoint) => void;
}

export interface CompactResult {
  segments_rewritten: number;
  /** Segments that disappeared into the segment before them (merging small sealed segments). */
  segments_merged: number;
  records_removed: number;
  bytes_before: number;
  bytes_after: number;
}

/** Writes a segment's replacement to `<segment>.compact` and fsyncs it; returns that path (renamed over the segment later). */
async function writeAside(seg: Segment, bytes: Buffer): Promise<string> {
  const tmp = `${seg.path}.compact`;
  const fh = await open(tmp, 'w');
  try {
    await writeAll(fh, [bytes], 0, bytes.length);
    await fh.datasync();
  } finally {
    await fh.close();
  }
  return tmp;
}


/**
 * One partition's log: an ordered list of segment files, the last one active.
 * Appends go through a single writer that groups every append waiting at that moment into one
 * writev (and one fdatasync under fsync=always): group commit. Reads run concurrently with the
 * writer and only ever see committed bytes.
 */
export class PartitionLog {
  readonly topic: string;
  readonly partition: number;
  private readonly key: PartitionKey;
  private segments: Segment[] = [];
  private indexer: Indexer;
  private readonly appends: AppendQueue;
  private readonly disk: DiskGuard;
  private lock_tail: Promise<unknown> = Promise.resolve();
  /** Bumped by every truncation (flush() skips its bookkeeping if one happened meanwhile). */
  private truncations = 0;
  /** fsync=interval|never: the running fdatasync of segments that rolls left behind (syncRolled). */
  private rolled_sync: Promise<void> | null = null;
  private hw = 0;
  private end_offset = 0;
  private closed_state: 'open' | 'closing' | 'closed' = 'open';
  private flush_timer: NodeJS.Timeout | null = null;
  private readonly waiters = new Waiters();
  /** Bytes cut from a torn tail when this partition was opened. */
  recovered_truncated_bytes = 0;
  private tail: PartitionTail | null = null;
  /** Reads served per tier (a disk or archive read counts each range read once). */
  readonly io = { memory_reads: 0, disk_reads: 0, archive_reads: 0 };
  /** Segments held by the archive tier, oldest first (some may also still be local). */
  private archived: ArchivedSegment[] = [];
  private archive_backoff_until_ms = 0;
  private archive_failures = 0;
  /** Raft mode: the driver produce is handed to (null: not running yet, produce is refused). */
  private replicator: PartitionReplicator | null = null;
  /**
   * Idempotent producers' state on a single node (null in Raft mode: the driver keeps it, since
   * it must see proposals before they reach the log). Rebuilt from the segments on open.
   */
  private producers: ProducerStateTable<OffsetRange> | null;

  private constructor(private readonly deps: PartitionDeps) {
    this.topic = deps.topic;
    this.partition = deps.partition;
    this.key = [deps.topic, deps.partition];
    this.indexer = new Indexer(deps.catalog, this.key);
    this.appends = new AppendQueue((group) => this.exclusive(() => this.writeGroup(group)), () => this.closed_state === 'open');
    this.disk = new DiskGuard(deps.dir, deps.disk_free_floor_bytes, deps.free_bytes, deps.clock);
    this.producers = deps.raft ? null : new ProducerStateTable<OffsetRange>();
  }

  static async open(deps: PartitionDeps): Promise<PartitionLog> {
    const log = new PartitionLog(deps);
    await mkdir(deps.dir, { recursive: true });
    const { segments, truncated_bytes } = await recoverPartition(deps.dir, log.key, deps.catalog, log.indexer);
    log.segments = segments;
    log.recovered_truncated_bytes = truncated_bytes;
    log.archived = deps.archive ? deps.archive.list(log.key) : [];
    // A partition restored from the archive alone starts its local log where the archive ends.
    if (segments.length === 0) await log.createSegment(log.archived.at(-1)?.next_offset ?? 0);
    // A crash in the middle of retention (file unlinked, catalog not told yet) leaves index entries
    // below the log start; recovery dropped the segment record, drop those too, as retention would.
    deps.catalog.dropIndexRange(log.key, { below_offset: log.logStartOffset });
    log.end_offset = log.active.next_offset;
    // In Raft mode nothing is known committed until the driver says so (it sets the commit point at once).
    log.hw = deps.raft ? log.logStartOffset : log.end_offset;
    log.tail = deps.memory?.register(`${deps.topic}/${deps.partition}`) ?? null;
    if (log.producers !== null) await log.loadProducerState(log.producers);
    if (deps.config.fsync.policy === 'interval') {
      log.flush_timer = setInterval(() => void log.flush().catch(() => undefined), deps.config.fsync.interval_ms);
      log.flush_timer.unref();
    }
    return log;
  }

  /** Re-read after every await: close or abandon can happen in between. */
  private isOpen(): boolean {
    return this.closed_state === 'open';
  }

  get config(): TopicConfig {
    return this.deps.config;
  }
  get logStartOffset(): number {
    const local = this.segments[0]!.base_offset;
    const archived = this.archived[0]?.base_offset;
    return archived !== undefined && archived < local ? archived : local;
  }
  get logEndOffset(): number {
    return this.end_offset;
  }
  get highWatermark(): number {
    return this.hw;
  }
  /** True when this partition is replicated by Raft (see PartitionDeps.raft). */
  get raftMode(): boolean {
    return this.deps.raft === true;
  }
  private get active(): Segment {
    return this.segments[this.segments.length - 1]!;
  }

  stats(): PartitionStats {
    let size_bytes = 0;
    for (const s of this.segments) size_bytes += s.size_bytes;
    let archive_bytes = 0;
    for (const a of this.archived) archive_bytes += a.size_bytes;
    return {
      memory_bytes: this.tail?.bytes ?? 0,
      archive_bytes,
      archived_segment_count: this.archived.length,
      topic: this.topic,
      partition: this.partition,
      log_start_offset: this.logStartOffset,
      log_end_offset: this.end_offset,
      high_watermark: this.hw,
      size_bytes,
      segment_count: this.segments.length,
    };
  }

  /** Segment layout, for inspect/verify and tests. */
  segmentInfo(): Array<{ base_offset: number; next_offset: number; size_bytes: number; durable_bytes: number; sealed: boolean; path: string; max_timestamp_ms: number }> {
    return this.segments.map((s) => ({
      base_offset: s.base_offset,
      next_offset: s.next_offset,
      size_bytes: s.size_bytes,
      durable_bytes: s.durable_bytes,
      sealed: s.sealed,
      path: s.path,
      max_timestamp_ms: s.max_timestamp_ms,
    }));
  }

  // ---------------------------------------------------------------- append

  /**
   * Appends a record set (one Buffer of concatenated batches) or a list of them. Every batch is
   * validated (framing, magic, CRC, record count, size) before anything is written; the log then
   * takes ownership of the buffers and stamps offset and leader epoch into them in place.
   * Resolves once the batches are durable per the topic's fsync policy.
   */
  append(input: Buffer | readonly Buffer[], opts: AppendOptions = {}): Promise<AppendResult> {
    if (this.closed_state !== 'open') return Promise.reject(closed(`partition ${this.topic}/${this.partition}`));
    let batches: Buffer[];
    try {
      batches = Buffer.isBuffer(input) ? splitRecordSet(input) : input.flatMap((b) => splitRecordSet(b));
      if (batches.length === 0) throw invalidBatch('no batches to append');
      for (const b of batches) this.checkProducedBatch(b);
      if (batches.length > 1 && batches.some((b) => producerBatchOf(b) !== null)) {
        throw invalidBatch(`a produce with an idempotent producer's batch must carry exactly one batch (this one has ${batches.length})`);
      }
    } catch (err) {
      return Promise.reject(err);
    }
    if (this.deps.raft) {
      const r = this.replicator;
      if (r === null) return Promise.reject(new EngineError('NOT_LEADER', `${this.topic}/${this.partition}: replication is not running on this node yet; retry`, { leader_id: 0 }));
      for (const b of batches) checked_here.add(b);
      return r.append(batches, opts);
    }
    let bytes = 0;
    for (const b of batches) bytes += b.length;
    return this.appends.enqueue({ batches, bytes, leader_epoch: opts.leader_epoch ?? this.deps.leader_epoch() });
  }

  /** Raft mode: the driver that takes produce (null detaches it). */
  setReplicator(r: PartitionReplicator | null): void {
    assert(this.deps.raft === true, 'setReplicator is for Raft mode');
    this.replicator = r;
  }

  /**
   * Appends batches copied from another log (a relay's upstream, a Raft leader) exactly as they
   * are: offsets and leader epochs are kept, not stamped, so the bytes stay identical. The first
   * batch must start at the log end offset and the batches must be contiguous (OFFSET_MISMATCH
   * otherwise, nothing written); every batch's CRC is checked, except a batch this process checked
   * itself when it was produced (a Raft leader persisting its own proposal: `checked_here`).
   */
  appendReplicated(records: Buffer | readonly Buffer[]): Promise<AppendResult> {
    if (this.closed_state !== 'open') return Promise.reject(closed(`partition ${this.topic}/${this.partition}`));
    let batches: Buffer[];
    let bytes = 0;
    try {
      // Empty batches (record count 0) are allowed here: compaction leaves them, and a Raft leader's
      // no-op entry is one (docs/raft.md, "Wiring").
      const split = (b: Buffer): Buffer[] => (checked_here.has(b) ? [b] : splitReplicated(b));
      batches = Buffer.isBuffer(records) ? split(records) : records.flatMap(split);
      if (batches.length === 0) throw invalidBatch('no batches to append');
      for (const b of batches) bytes += b.length;
      let next = batchBaseOffset(batches[0]!);
      for (const b of batches) {
        if (batchBaseOffset(b) !== next) throw offsetMismatch(this.topic, this.partition, next, batchBaseOffset(b));
        next = batchBaseOffset(b) + batchLastOffsetDelta(b) + 1;
      }
    } catch (err) {
      return Promise.reject(err);
    }
    this.deps.on_replicated_append?.();
    return this.appends.enqueue({ batches, bytes, leader_epoch: -1, replicated: true });
  }

  private checkProducedBatch(b: Buffer): void {
    if (b.length > this.deps.config.max_message_bytes) throw batchTooLarge(b.length, this.deps.config.max_message_bytes);
    const count = b.readInt32BE(F_RECORD_COUNT);
    const lod = batchLastOffsetDelta(b);
    // A fresh batch spans exactly its records; anything else would burn or overlap offsets.
    if (lod !== count - 1) throw invalidBatch(`lastOffsetDelta ${lod} does not match recordCount ${count}`);
    // Control batches are the log's own (Raft membership changes, docs/format.md): never a producer's.
    if (isControlBatch(b)) throw invalidBatch('control batches (attributes bit 5) are written by the log itself, not by producers');
  }

  private async writeGroup(group: PendingAppend[]): Promise<void> {
    if (this.closed_state === 'closed') {
      for (const p of group) p.reject(closed(`partition ${this.topic}/${this.partition}`));
      return;
    }
    let bytes = 0;
    for (const p of group) bytes += p.bytes;
    try {
      this.disk.check(bytes, this.active.size_bytes + bytes > this.deps.config.segment_bytes);
      if (this.rollDue(bytes)) await this.rollLocked();
    } catch (err) {
      for (const p of group) p.reject(err);
      return;
    }
    const seg = this.active;
    const start_position = seg.size_bytes;
    const buffers: Buffer[] = [];
    const results: AppendResult[] = [];
    let next = this.end_offset;
    const accepted: PendingAppend[] = [];
    // Replicated batches, when there are idempotent producers to replay them into.
    const replicated: Buffer[] | null = this.producers !== null ? [] : null;
    // Idempotent producers: batches are checked and recorded as offsets are assigned (so a retry
    // in the same group is seen); a failed write puts the producers' entries back. (Created only
    // when needed: on the produce path of small records every allocation here is per record.)
    let saved: Map<number, ProducerEntry<OffsetRange> | undefined> | null = null;
    let duplicates: Array<{ p: PendingAppend; ref: OffsetRange }> | null = null;
    for (const p of group) {
      const base_offset = next;
      if (p.replicated) {
        // Replicated batches keep their offsets: they must continue the log exactly.
        if (batchBaseOffset(p.batches[0]!) !== next) {
          p.reject(offsetMismatch(this.topic, this.partition, next, batchBaseOffset(p.batches[0]!)));
          continue;
        }
        for (const b of p.batches) {
          next += batchLastOffsetDelta(b) + 1;
          buffers.push(b);
          replicated?.push(b);
        }
      } else {
        const producer = this.producers !== null && p.batches.length === 1 ? producerBatchOf(p.batches[0]!) : null;
        if (producer !== null) {
          saved ??= new Map();
          if (!saved.has(producer.producer_id)) saved.set(producer.producer_id, this.producers!.save(producer.producer_id));
          try {
            const c = this.producers!.checkAndRecord(producer, { base_offset: next, last_offset: next + batchLastOffsetDelta(p.batches[0]!) });
            if (c.kind === 'duplicate') {
              (duplicates ??= []).push({ p, ref: c.ref });
              continue;
            }
          } catch (err) {
            p.reject(err);
            continue;
          }
        }
        for (const b of p.batches) {
          stampBatch(b, 0, next, p.leader_epoch);
          next += batchLastOffsetDelta(b) + 1;
          buffers.push(b);
        }
      }
      accepted.push(p);
      results.push({ base_offset, last_offset: next - 1 });
    }
    if (accepted.length > 0) {
      if (accepted.length < group.length) bytes = buffers.reduce((n, b) => n + b.length, 0);
      try {
        const fh = await seg.handle();
        await writeAll(fh, buffers, start_position, bytes);
        if (this.deps.config.fsync.policy === 'always') await fh.datasync();
      } catch (err) {
        await this.undoWrite(seg, start_position);
        for (const [id, e] of saved ?? []) this.producers!.restore(id, e);
        const e = (err as NodeJS.ErrnoException).code === 'ENOSPC' ? this.disk.enospc() : storageError(`appending to ${seg.path}`, err);
        for (const p of accepted) p.reject(e);
        // A duplicate may name a batch of this very group: its producer retries.
        for (const d of duplicates ?? []) d.p.reject(e);
        return;
      }
      this.commitWrite(seg, start_position, buffers, next);
      if (replicated !== null) for (const b of replicated) this.replayProducer(b);
    }
    accepted.forEach((p, i) => p.resolve(results[i]!));
    // Kafka's answer to a duplicate: the offsets the batch got the first time; nothing is written.
    for (const d of duplicates ?? []) d.p.resolve({ base_offset: d.ref.base_offset, last_offset: d.ref.last_offset });
  }

  private replayProducer(b: Buffer): void {
    const producer = producerBatchOf(b);
    if (producer !== null) this.producers!.replay(producer, { base_offset: batchBaseOffset(b), last_offset: batchBaseOffset(b) + batchLastOffsetDelta(b) });
  }

  /**
   * Open: the idempotent producers' state is the snapshot taken at the last roll or clean close
   * (when it is still inside the local log) plus the batches after it, replayed from the segments;
   * without a usable snapshot (catalog rebuilt, log truncated or cut by retention since) it is
   * rebuilt from the newest segments alone (`rebuildProducerState`).
   */
  private async loadProducerState(table: ProducerStateTable<OffsetRange>): Promise<void> {
    const snap = this.deps.catalog.getProducerSnapshot(this.key);
    if (snap === null || snap.offset < this.segments[0]!.base_offset || snap.offset > this.end_offset) {
      return this.rebuildProducerState(table, limits.producer_state_scan_min_bytes);
    }
    for (const p of snap.producers) {
      for (const [first_seq, last_seq, base_offset, last_offset] of p.batches) {
        table.replay({ producer_id: p.producer_id, producer_epoch: p.epoch, first_seq, last_seq }, { base_offset, last_offset });
      }
    }
    let first = this.segments.length - 1;
    while (first > 0 && this.segments[first]!.base_offset > snap.offset) first--;
    await this.replaySegments(table, first, snap.offset);
  }

  /**
   * Rebuilds the idempotent producers' state from the newest local segments: whole segments,
   * newest first, until at least `min_bytes` are covered (always the active one), replayed in log
   * order. A producer whose batches all lie further back is unknown afterwards, and its next batch
   * is accepted at any sequence (Kafka's rule for a producer whose state is gone).
   */
  private async rebuildProducerState(table: ProducerStateTable<OffsetRange>, min_bytes: number): Promise<void> {
    let first = this.segments.length - 1;
    for (let covered = this.active.size_bytes; first > 0 && covered < min_bytes; ) covered += this.segments[--first]!.size_bytes;
    await this.replaySegments(table, first, 0);
  }

  /**
   * Replays the producer fields of every batch at or after `from_offset` in segments[first..]. A
   * damaged batch ends the replay quietly: recovery has judged the active segment already, and a
   * read of a damaged sealed segment reports CORRUPT_SEGMENT itself (open must not refuse a data
   * dir that recovery accepts).
   */
  private async replaySegments(table: ProducerStateTable<OffsetRange>, first: number, from_offset: number): Promise<void> {
    for (const seg of this.segments.slice(first)) {
      if (seg.size_bytes === 0 || seg.next_offset <= from_offset) continue;
      const r = await seg.use(this.deps.clock.now_ms(), (fh) =>
        scanSegment(fh, seg.size_bytes, {
          expected_offset: seg.base_offset,
          on_batch: (b) => {
            if (b.producer !== null && b.base_offset >= from_offset) table.replay(b.producer, { base_offset: b.base_offset, last_offset: b.last_offset });
          },
        }),
      );
      if (r.fault) return;
      seg.verified.add(0, r.end_position);
    }
  }

  private producerSnapshot(): ProducerSnapshot {
    return {
      offset: this.end_offset,
      producers: this.producers!.entries().map((e) => ({
        producer_id: e.producer_id,
        epoch: e.epoch,
        batches: e.batches.map((b): [number, number, number, number] => [b.first_seq, b.last_seq, b.ref.base_offset, b.ref.last_offset]),
      })),
    };
  }

  /** The idempotent producers' state (single node; null in Raft mode), for tests and tools. */
  producerState(): ProducerStateTable<OffsetRange> | null {
    return this.producers;
  }

  /** A table rebuilt from the segments now, as `open` would (tests compare it with the live one). */
  rebuiltProducerState(min_bytes = limits.producer_state_scan_min_bytes): Promise<ProducerStateTable<OffsetRange>> {
    return this.exclusive(async () => {
      const t = new ProducerStateTable<OffsetRange>();
      await this.rebuildProducerState(t, min_bytes);
      return t;
    });
  }

  private commitWrite(seg: Segment, start_position: number, buffers: Buffer[], next_offset: number): void {
    let pos = start_position;
    for (const b of buffers) {
      const ts = batchMaxTimestamp(b);
      this.indexer.onBatch(seg.base_offset, pos, batchBaseOffset(b), ts, batchLeaderEpoch(b));
      if (ts > seg.max_timestamp_ms) seg.max_timestamp_ms = ts;
      pos += b.length;
    }
    if (seg.first_append_ms === 0) seg.first_append_ms = this.deps.clock.now_ms();
    seg.verified.add(start_position, pos); // every batch was CRC-checked on append
    seg.size_bytes = pos;
    seg.next_offset = next_offset;
    this.end_offset = next_offset;
    this.disk.wrote(pos - start_position);
    this.tail?.add(buffers, pos - start_position);
    if (this.deps.config.fsync.policy === 'always') {
      seg.durable_bytes = pos;
      void this.deps.catalog.putSegment(this.key, seg.base_offset, seg.record());
    }
    if (!this.deps.raft) this.setHighWatermark(next_offset);
  }

  /**
   * Raft mode: the commit point moved to `offset` (a batch boundary at or below the log end). Wakes
   * long polls. Never moves backwards.
   */
  advanceHighWatermark(offset: number): void {
    assert(this.deps.raft === true, 'advanceHighWatermark is for Raft mode');
    assert(offset <= this.end_offset, `high watermark ${offset} beyond the log end ${this.end_offset}`);
    this.setHighWatermark(offset);
  }

  /** A failed write must leave nothing behind: cut the file back to where the group started. */
  private async undoWrite(seg: Segment, position: number): Promise<void> {
    try {
      const fh = await seg.handle();
      await fh.truncate(position);
    } catch {
      // If even truncation fails the bytes past `position` are unacknowledged; recovery cuts them.
    }
  }

  // ---------------------------------------------------------------- high watermark and waiting

  private setHighWatermark(hw: number): void {
    if (hw <= this.hw) return;
    this.hw = hw;
    this.waiters.wake(hw);
  }

  /**
   * Long poll: resolves true as soon as the high watermark passes `offset` (data at `offset` is
   * readable), false after `timeout_ms`, on abort, or when the log closes. Never busy-waits.
   */
  waitForData(offset: number, timeout_ms: number, signal?: AbortSignal): Promise<boolean> {
    if (this.hw > offset) return Promise.resolve(true);
    if (this.closed_state !== 'open') return Promise.resolve(false);
    return this.waiters.wait(offset, timeout_ms, signal);
  }

  // ---------------------------------------------------------------- read

  /**
   * Whole batches from the one containing `offset` onwards, up to `max_bytes` (at least one batch,
   * however large, so a reader always progresses). Offsets are batch-granular: the first batch may
   * start before `offset`. `offset === high watermark` returns no records.
   */
  read(offset: number, max_bytes: number): Promise<ReadResult> {
    return this.readBelow(offset, max_bytes, this.hw);
  }

  /**
   * As read(), but up to the log end rather than the high watermark: uncommitted batches too. Only
   * for the Raft driver (a leader ships entries before they commit); never for consumers.
   */
  readLocal(offset: number, max_bytes: number): Promise<ReadResult> {
    return this.readBelow(offset, max_bytes, this.end_offset);
  }

  private async readBelow(offset: number, max_bytes: number, hw: number): Promise<ReadResult> {
    if (this.closed_state === 'closed') throw closed(`partition ${this.topic}/${this.partition}`);
    if (!Number.isSafeInteger(offset)) throw invalidArgument(`offset must be an integer, got ${offset}`);
    if (!Number.isSafeInteger(max_bytes) || max_bytes <= 0) throw invalidArgument(`max_bytes must be a positive integer, got ${max_bytes}`);
    const log_start = this.logStartOffset;
    if (offset < log_start || offset > hw) throw offsetOutOfRange(offset, log_start, hw, `${this.topic}/${this.partition}`);
    const empty: ReadResult = { records: Buffer.alloc(0), next_offset: offset, high_watermark: hw, log_start_offset: log_start, release: noop };
    if (offset === hw) return empty;
    const cap = Math.min(max_bytes, limits.read_size_max_bytes);
    const hot = this.tail?.read(offset, cap, hw);
    if (hot) {
      this.io.memory_reads++;
      return withRelease(hot, hw, log_start);
    }
    if (offset < this.segments[0]!.base_offset) {
      return withRelease(await this.readFromArchive(offset, cap, hw), hw, log_start);
    }
    for (let attempt = 0; ; attempt++) {
      const swaps = this.compaction_swaps;
      const seg = this.segmentFor(offset);
      const floor = this.deps.catalog.offsetFloor(this.key, seg.base_offset, offset);
      try {
        return withRelease(await this.readFromSegment(seg, floor ? floor.position : 0, floor?.offset ?? seg.base_offset, offset, cap, hw), hw, log_start);
      } catch (err) {
        // A compacted segment replaced this one between the index lookup and the read, or a merge
        // deleted its file (ENOENT on open): look again.
        if (attempt < 3 && swaps !== this.compaction_swaps && (isEngineError(err) || seg.deleted)) continue;
        throw err;
      }
    }
  }

  private async readFromArchive(offset: number, max_bytes: number, hw: number): Promise<SelectedBatches> {
    const archive = this.deps.archive;
    let i = this.archived.length - 1;
    while (i > 0 && this.archived[i]!.base_offset > offset) i--;
    const a = this.archived[i];
    assert(archive !== null && a !== undefined && a.base_offset <= offset, `offset ${offset} is below the local log but not archived`);
    const floor = this.deps.catalog.offsetFloor(this.key, a.base_offset, offset);
    const src = archive.source(a);
    const counted: RangeSource = { ...src, readInto: (into, pos, len) => (this.io.archive_reads++, src.readInto(into, pos, len)) };
    const got = await readBatches(counted, floor ? floor.position : 0, floor?.offset ?? a.base_offset, offset, max_bytes, hw, this.deps.verify_crc_on_read);
    assert(got !== null, `archived segment ${a.path} has no batch at offset ${offset}`);
    return got;
  }

  /**
   * Uploads sealed local segments that the archive does not hold yet, oldest first. Returns how many
   * were uploaded. A failure is recorded in the archive tier's metrics and retried with backoff; the
   * local copies stay until their upload is verified.
   */
  /** Bytes of sealed local segments not archived yet (what archiveSegments would upload). */
  get unarchivedBytes(): number {
    const have = new Set(this.archived.map((a) => a.base_offset));
    return this.segments.filter((s) => s.sealed && !have.has(s.base_offset)).reduce((n, s) => n + s.size_bytes, 0);
  }

  async archiveSegments(on_progress?: (bytes: number) => void): Promise<number> {
    const archive = this.deps.archive;
    if (!archive || !this.deps.config.remote_storage_enable || this.closed_state !== 'open') return 0;
    if (this.deps.clock.now_ms() < this.archive_backoff_until_ms) return 0;
    const have = new Set(this.archived.map((a) => a.base_offset));
    let n = 0;
    try {
      for (const seg of this.segments.filter((s) => s.sealed && !have.has(s.base_offset))) {
        if (seg.deleted) continue;
        if (!this.isOpen()) break; // stopped while uploading: do nothing more
        const a = await archive.upload({ name: this.topic, config: this.deps.config, created_ms: 0 }, this.key, seg);
        this.archived.push(a);
        this.archived.sort((x, y) => x.base_offset - y.base_offset);
        n++;
        on_progress?.(seg.size_bytes);
      }
      this.archive_failures = 0;
    } catch (err) {
      this.archive_failures++;
      const backoff_ms = Math.min(60_000, 500 * 2 ** Math.min(this.archive_failures, 7));
      this.archive_backoff_until_ms = this.deps.clock.now_ms() + backoff_ms;
      throw err;
    }
    return n;
  }

  private segmentFor(offset: number): Segment {
    let lo = 0;
    let hi = this.segments.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (this.segments[mid]!.base_offset <= offset) lo = mid;
      else hi = mid - 1;
    }
    return this.segments[lo]!;
  }

  private async readFromSegment(seg: Segment, start_position: number, expected_base: number, offset: number, max_bytes: number, hw: number): Promise<SelectedBatches> {
    const now = this.deps.clock.now_ms();
    const src: RangeSource = {
      base_offset: seg.base_offset,
      size_bytes: seg.size_bytes,
      path: seg.path,
      verified: seg.verified,
      readInto: (into, position, length) => {
        this.io.disk_reads++;
        return this.deps.read_slots ? this.deps.read_slots.run(() => seg.readInto(now, into, position, length)) : seg.readInto(now, into, position, length);
      },
    };
    const got = await readBatches(src, start_position, expected_base, offset, max_bytes, hw, this.deps.verify_crc_on_read);
    if (got) return got;
    // Only possible when `offset` lies in a gap past this segment's last batch (compaction).
    const later = this.segments[this.segments.indexOf(seg) + 1];
    assert(later !== undefined && later.base_offset > offset, `no batch covers offset ${offset} in ${seg.path}`);
    return this.readFromSegment(later, 0, later.base_offset, later.base_offset, max_bytes, hw);
  }

  /**
   * The first offset whose record timestamp is >= ts_ms (Kafka's ListOffsets by timestamp), or null
   * if no record that old or newer exists below the high watermark. The sparse time index, keyed by
   * the running max timestamp, gives a start point from which at most about one index interval is scanned.
   */
  async offsetForTimestamp(ts_ms: number): Promise<number | null> {
    if (!Number.isSafeInteger(ts_ms)) throw invalidArgument(`timestamp must be an integer (epoch ms), got ${ts_ms}`);
    const floor = this.deps.catalog.timeFloor(this.key, ts_ms);
    let offset = floor && floor.offset >= this.logStartOffset ? floor.offset : this.logStartOffset;
    const from = offset;
    while (offset < this.hw) {
      const r = await this.read(offset, 1024 * 1024);
      let found: number | null = null;
      forEachBatch(r.records, (pos, size) => {
        if (found !== null || batchMaxTimestamp(r.records, pos) < ts_ms) return;
        forEachRecord(r.records.subarray(pos, pos + size), (rec) => {
          if (rec.offset >= from && rec.timestamp_ms >= ts_ms) {
            found = rec.offset;
            return false;
          }
          return true;
        });
      });
      if (found !== null) return found;
      if (r.next_offset <= offset) break;
      offset = r.next_offset;
    }
    return null;
  }

  // ---------------------------------------------------------------- segments: roll, retention, truncation

  private exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.lock_tail.then(fn, fn);
    this.lock_tail = run.catch(() => undefined);
    return run;
  }

  /** Whether the active segment must be rolled before `incoming_bytes` more are written to it. */
  private rollDue(incoming_bytes: number): boolean {
    const seg = this.active;
    if (seg.size_bytes === 0) return false;
    const too_big = seg.size_bytes + incoming_bytes > this.deps.config.segment_bytes;
    const too_old = this.deps.clock.now_ms() - seg.first_append_ms >= this.deps.config.segment_ms;
    return too_big || too_old;
  }

  /** Seals the active segment (if it has data) and starts a new one at the log end. */
  roll(): Promise<void> {
    return this.structural(async () => {
      if (this.closed_state === 'closed') throw closed(`partition ${this.topic}/${this.partition}`);
      await this.rollLocked();
      await this.settleRolled();
    });
  }

  /**
   * Starts a new active segment at the log end. Under fsync=always the old one is already durable
   * (every append was fsynced), and is sealed here. Otherwise its fdatasync runs after the lock is
   * released (syncRolled), as Kafka flushes a rolled segment in the background: that fdatasync
   * covers up to a second of writes (fsync=interval), 200-250 ms for 300 MiB here, and every append
   * queued behind the roll used to wait for it.
   */
  private async rollLocked(): Promise<void> {
    if (this.closed_state === 'closed') throw closed(`partition ${this.topic}/${this.partition}`);
    const seg = this.active;
    if (seg.size_bytes === 0) return;
    const in_background = this.deps.config.fsync.policy !== 'always';
    if (!in_background) await this.sealSynced(seg);
    // Kafka's producer snapshot at roll: a restart replays only the segments after it.
    if (this.producers !== null) void this.deps.catalog.putProducerSnapshot(this.key, this.producerSnapshot());
    await this.createSegment(this.end_offset);
    if (in_background) this.syncRolled().catch(() => undefined); // retried by the next flush, close or structural operation
  }

  /** fdatasyncs a segment that is no longer written to, and records it sealed and durable. */
  private async sealSynced(seg: Segment): Promise<void> {
    await seg.use(this.deps.clock.now_ms(), (fh) => fh.datasync());
    seg.sealed = true;
    seg.durable_bytes = seg.size_bytes;
    void this.deps.catalog.putSegment(this.key, seg.base_offset, seg.record());
    await seg.closeHandle(); // reopened read-only on next read
  }

  /** Segments a roll left behind that are not durable yet (fsync=interval|never). */
  private rolledUnsynced(): Segment | undefined {
    const active = this.active;
    return this.segments.find((s) => s !== active && !s.sealed && !s.deleted);
  }

  /**
   * Seals the segments that rolls left behind, oldest first, outside the writer lock: appends go on
   * into the new active segment meanwhile. One run at a time; a segment rolled during a run is
   * taken by the same run. Until a segment is sealed its catalog record says neither sealed nor
   * durable past its last flush, which is what recovery needs to treat a torn tail in it after a
   * power loss as a tail (recovery.ts).
   */
  private syncRolled(): Promise<void> {
    if (this.rolled_sync === null) {
      const run = (async () => {
        const stopped = (): boolean => this.closed_state === 'closed';
        for (let seg = this.rolledUnsynced(); seg !== undefined && !stopped(); seg = this.rolledUnsynced()) {
          const size = seg.size_bytes;
          await seg.use(this.deps.clock.now_ms(), (fh) => fh.datasync());
          // A crash-stop meanwhile writes nothing more to the catalog; a truncation waits for this run.
          if (stopped()) return;
          if (seg.deleted || seg === this.active || seg.sealed || seg.size_bytes !== size) continue;
          seg.sealed = true;
          seg.durable_bytes = size;
          void this.deps.catalog.putSegment(this.key, seg.base_offset, seg.record());
          // Reopened read-only on next read; not under a scan that holds it (it runs outside the lock).
          if (!seg.in_use) await seg.closeHandle();
        }
      })().finally(() => {
        if (this.rolled_sync === run) this.rolled_sync = null;
      });
      this.rolled_sync = run;
    }
    return this.rolled_sync;
  }

  /** Waits until every segment but the active one is sealed (a failed fdatasync rejects). */
  private async settleRolled(): Promise<void> {
    while (this.rolledUnsynced() !== undefined && this.closed_state !== 'closed') await this.syncRolled();
  }

  /**
   * exclusive(), once every segment a roll left behind is sealed: for operations that change the
   * segment list or rely on every segment but the active one being sealed (all but appends).
   */
  private structural<T>(fn: () => Promise<T>): Promise<T> {
    return this.exclusive(async () => {
      await this.settleRolled();
      return fn();
    });
  }

  private async createSegment(base_offset: number): Promise<void> {
    const seg = Segment.at(this.deps.dir, base_offset);
    const fh = await open(seg.path, 'w+');
    seg.setHandle(fh);
    const dir = await open(this.deps.dir, 'r');
    try {
      await dir.sync(); // make the new file's directory entry durable
    } finally {
      await dir.close();
    }
    this.segments.push(seg);
    void this.deps.catalog.putSegment(this.key, seg.base_offset, seg.record());
  }

  /**
   * Deletes whole sealed segments beyond `retention.bytes` or older than `retention.ms`
   * (judged by their newest record). The active segment is never deleted. Returns segments deleted.
   * In Raft mode only committed segments, once the replicator has stored a snapshot for them.
   */
  applyRetention(): Promise<number> {
    if (this.deps.raft) return this.applyRaftRetention();
    return this.structural(async () => {
      if (this.closed_state !== 'open') return 0; // a closed (or crash-stopped) log deletes nothing
      const plan = this.retentionPlan();
      for (const base of plan.archive_deletes) await this.deleteArchived(base);
      for (const d of plan.local_deletes) {
        assert(this.segments[0]!.base_offset === d.base_offset && this.segments.length > 1, 'retention plan out of order');
        await this.deleteFirstSegment();
        if (d.and_archive) await this.deleteArchived(d.base_offset);
      }
      return plan.archive_deletes.length + plan.local_deletes.length;
    });
  }

  /** What `retention.*` and `local.retention.*` would delete now (engine/log/retention.ts). */
  private retentionPlan(): ReturnType<typeof planRetention> {
    const c = this.deps.config;
    const archived_bases = new Set(this.archived.map((a) => a.base_offset));
    const local_start = this.segments[0]!.base_offset;
    return planRetention({
      now_ms: this.deps.clock.now_ms(),
      retention_bytes: c.retention_bytes,
      retention_ms: c.retention_ms,
      local_retention_bytes: c.local_retention_bytes,
      local_retention_ms: c.local_retention_ms,
      archived_only: this.archived.filter((a) => a.base_offset < local_start),
      local: this.segments.map((s) => ({ base_offset: s.base_offset, size_bytes: s.size_bytes, max_timestamp_ms: s.max_timestamp_ms, archived: archived_bases.has(s.base_offset) })),
      archive_enabled: this.deps.archive !== null && c.remote_storage_enable,
    });
  }

  /**
   * Raft mode: only committed local segments go, and only as far as the replicator allows once it
   * has stored the snapshot that stands for them. Its answer is awaited outside the lock (the Raft
   * driver writes to this log meanwhile). Archived segments below the local log go as planned.
   */
  private async applyRaftRetention(): Promise<number> {
    const planned = await this.structural(async () => {
      if (this.closed_state !== 'open') return { below: -1, archived: 0 };
      const plan = this.retentionPlan();
      for (const base of plan.archive_deletes) await this.deleteArchived(base);
      let below = this.logStartOffset;
      for (const d of plan.local_deletes) {
        const seg = this.segments.find((x) => x.base_offset === d.base_offset);
        if (seg === undefined || !seg.sealed || seg === this.active || seg.next_offset > this.hw) break;
        below = seg.next_offset;
      }
      return { below, archived: plan.archive_deletes.length };
    });
    const r = this.replicator;
    if (planned.below <= this.logStartOffset || r?.discardBelow === undefined) return planned.archived;
    // A replicator that cannot record a snapshot now (stopped, failed: it logs why) deletes nothing;
    // retention of the other partitions goes on.
    const allowed = await r.discardBelow(planned.below).catch(() => this.logStartOffset);
    return planned.archived + (await this.discardBelow(Math.min(allowed, planned.below)));
  }

  /**
   * Deletes the local segments wholly below `offset` (the active one never), as retention does; an
   * archived copy stays. A cluster node calls it after storing the Raft snapshot for them, and again
   * on open to finish a deletion a crash interrupted. Returns segments deleted.
   */
  discardBelow(offset: number): Promise<number> {
    return this.structural(async () => {
      if (this.closed_state !== 'open') return 0;
      let n = 0;
      while (this.segments.length > 1 && this.segments[0]!.next_offset <= offset && this.segments[0]!.sealed) {
        await this.deleteFirstSegment();
        n++;
      }
      return n;
    });
  }

  private async deleteArchived(base_offset: number): Promise<void> {
    const i = this.archived.findIndex((a) => a.base_offset === base_offset);
    assert(i === 0 && this.deps.archive !== null, 'archive deletes go oldest first');
    const [a] = this.archived.splice(0, 1);
    await this.deps.archive.delete(this.key, a!);
    this.deps.catalog.dropIndexRange(this.key, { below_offset: this.logStartOffset });
  }

  private async deleteFirstSegment(): Promise<void> {
    const seg = this.segments.shift()!;
    seg.deleted = true;
    if (!seg.in_use) await seg.closeHandle();
    await unlink(seg.path);
    void this.deps.catalog.removeSegment(this.key, seg.base_offset);
    this.deps.catalog.dropIndexRange(this.key, { below_offset: this.logStartOffset });
  }

  private compacting = false;
  /** Compaction's read buffer (see scratch()); dropped when a pass ends. */
  private scratch_buf: Buffer | null = null;
  /** Bumped when a compacted segment replaces its original (a read racing the swap retries). */
  private compaction_swaps = 0;

  /**
   * Log compaction (cleanup.policy=compact): rewrites each sealed local segment keeping the latest
   * record of every key (tombstones until `delete_retention_ms` after their timestamp), offsets
   * unchanged (engine/log/compaction.ts). The active segment is never rewritten, but its records
   * count as the latest of their keys. Crash-safe: the new file is written aside and fsynced, then
   * renamed over the old one (atomic), then the catalog and the index follow; recovery accepts a
   * sealed segment that is smaller than recorded only if it scans sound to exactly the recorded
   * next offset. A reader holding the old file keeps reading the old version; one that meets the
   * swap half-way retries. Returns what it did.
   */
  /** Bytes a compact() pass reads twice (every local segment: once for the latest keys, the sealed ones again to rewrite). */
  get compactionWorkBytes(): number {
    if (this.deps.config.cleanup_policy !== 'compact') return 0;
    return this.segments.reduce((n, s, i) => n + (i === this.segments.length - 1 ? s.size_bytes : 2 * s.size_bytes), 0);
  }

  async compact(opts: { delete_retention_ms?: number; merge?: boolean; on_progress?: (bytes: number) => void } = {}): Promise<CompactResult> {
    const out: CompactResult = { segments_rewritten: 0, segments_merged: 0, records_removed: 0, bytes_before: 0, bytes_after: 0 };
    // Raft mode: a compacted copy would differ from the other replicas' bytes (and merge entries).
    if (this.deps.config.cleanup_policy !== 'compact' || this.compacting || this.closed_state !== 'open' || this.deps.raft) return out;
    this.compacting = true;
    try {
      const segs = [...this.segments];
      const active = segs.pop()!;
      const active_size = active.size_bytes;
      const latest = new Map<string, number>();
      for (const seg of segs) {
        latestOffsets(await this.batchesOf(seg, seg.size_bytes), latest);
        opts.on_progress?.(seg.size_bytes);
      }
      latestOffsets(await this.batchesOf(active, active_size), latest);
      opts.on_progress?.(active_size);
      const rule = { latest, tombstone_horizon_ms: this.deps.clock.now_ms() - (opts.delete_retention_ms ?? this.deps.config.delete_retention_ms ?? DEFAULT_DELETE_RETENTION_MS) };
      await this.rewritePass(segs, rule, out, opts.on_progress);
      if (opts.merge !== false) await this.mergeSmallSegments(rule, out);
      return out;
    } finally {
      this.compacting = false;
      this.scratch_buf = null;
    }
  }

  /**
   * Rewrites each of `segs` that compaction changes. The next segment is read and compacted while
   * the previous one's copy is being written and fsynced (one swap in flight at a time, so at most
   * two segments' bytes are held): the fsyncs, not the decoding, were half of a pass's time.
   */
  private async rewritePass(segs: Segment[], rule: Parameters<typeof compactBatches>[1], out: CompactResult, on_progress?: (bytes: number) => void): Promise<void> {
    let in_flight: Promise<void> = Promise.resolve();
    try {
      for (const seg of segs) {
        if (this.closed_state !== 'open') break;
        if (seg.deleted) continue;
        const before = await this.batchesOf(seg, seg.size_bytes);
        on_progress?.(seg.size_bytes);
        const r = compactBatches(before, rule);
        if (!r.changed) continue;
        const bytes = Buffer.concat(r.batches);
        // A copy of exactly the old size gains nothing, and recovery could not tell it from the
        // original by its catalog record (a compressed batch is re-encoded uncompressed, so a copy
        // that lost records is not always smaller): it is not swapped in.
        if (bytes.length === seg.size_bytes) continue;
        await in_flight;
        in_flight = this.swapCompacted(seg, bytes).then((swapped) => {
          if (!swapped) return;
          out.segments_rewritten++;
          out.records_removed += r.removed_records;
          out.bytes_before += seg.size_bytes;
          out.bytes_after += bytes.length;
        });
        // A failed swap is rethrown by the next await of it; until then it must not count as an
        // unhandled rejection (which would end the process) while the next segment is read.
        in_flight.catch(() => undefined);
      }
    } finally {
      await in_flight;
    }
  }

  /**
   * Merges runs of adjacent sealed segments whose sizes add up to at most segment.bytes into the
   * first of them (compaction shrinks segments; without this a compacted log would keep one small
   * file per rolled segment). Offsets are unchanged: the merged file is the same batches, one after
   * the other, with adjacent empty ranges joined. Crash-safe in the same way as a rewrite:
   *   1. the merged bytes are written to `<first>.log.compact` and fsynced (a crash here: recovery
   *      deletes the copy, the originals hold);
   *   2. renamed over the first segment, directory fsynced (a crash here: recovery finds a sealed
   *      segment that runs past the next file's base offset to exactly the base of a later one,
   *      and deletes the files it covers: they are copies of what it holds);
   *   3. the covered files are unlinked, the directory fsynced, then the catalog and the index
   *      follow (the catalog's older size for the first segment makes recovery rescan it).
   * Not done on a node with an archive tier: archived segments are named by base offset, and a
   * merged segment would overlap ones already uploaded.
   */
  private async mergeSmallSegments(rule: Parameters<typeof compactBatches>[1], out: CompactResult): Promise<void> {
    if (this.deps.archive !== null) return;
    for (let rounds = 0; rounds < 1000 && this.closed_state === 'open'; rounds++) {
      const group = this.mergeGroup();
      if (group === null) break;
      // The catalog records of earlier rewrites and merges must be durable: recovery relies on the
      // first segment's recorded size differing from the merged file's.
      await this.deps.catalog.flush();
      // The group's segments side by side in the scratch buffer (sized for all of them first).
      let at = 0;
      this.scratch(group.reduce((n, g) => n + g.size_bytes, 0));
      const parts: Buffer[] = [];
      for (const seg of group) {
        parts.push(...(await this.batchesOf(seg, seg.size_bytes, at)));
        at += seg.size_bytes;
      }
      // The batches one after the other, with the empty ranges that meet at the old boundaries
      // joined (and anything the rule drops now dropped). Should that come out at exactly the
      // first segment's size, the plain concatenation is written instead (it is larger), so a
      // crash can never leave a merged file that its stale catalog record would vouch for.
      const r = compactBatches(parts, rule);
      let bytes = Buffer.concat(r.batches);
      let removed = r.removed_records;
      if (bytes.length === group[0]!.size_bytes) {
        bytes = Buffer.concat(parts);
        removed = 0;
      }
      const fresh = await this.swapMerged(group, bytes);
      if (fresh === null) break;
      out.segments_merged += group.length - 1;
      out.records_removed += removed;
    }
  }

  /** The first run of >= 2 adjacent sealed segments that fits in segment.bytes, or null. */
  private mergeGroup(): Segment[] | null {
    const limit = this.deps.config.segment_bytes;
    const sealed = this.segments.slice(0, -1);
    for (let i = 0; i < sealed.length - 1; i++) {
      let size = sealed[i]!.size_bytes;
      let j = i + 1;
      while (j < sealed.length && size + sealed[j]!.size_bytes <= limit) size += sealed[j++]!.size_bytes;
      if (j - i >= 2) return sealed.slice(i, j);
    }
    return null;
  }

  private async swapMerged(group: Segment[], bytes: Buffer): Promise<Segment | null> {
    const first = group[0]!;
    const last = group.at(-1)!;
    const tmp = await writeAside(first, bytes);
    this.deps.hooks?.compaction?.('merge:written');
    return this.structural(async () => {
      const i = this.segments.indexOf(first);
      const still = i >= 0 && i + group.length < this.segments.length && group.every((g, k) => this.segments[i + k] === g && !g.deleted);
      if (this.closed_state !== 'open' || !still) {
        await unlink(tmp).catch(() => undefined);
        return null;
      }
      this.compaction_swaps++;
      // The seal records of the merged segments (structural() may have just written them) must be
      // in the catalog before the rename: recovery judges a merged file by them.
      await this.deps.catalog.flush();
      await rename(tmp, first.path);
      await syncDir(this.deps.dir);
      this.deps.hooks?.compaction?.('merge:renamed');
      // Readers switch to the merged segment before the files it covers go: one that still holds
      // an old segment reads its open file, or retries on the merged one (the read path's retry).
      const fresh = this.swappedIn(first, bytes.length, last.next_offset, Math.max(...group.map((g) => g.max_timestamp_ms)));
      this.segments.splice(i, group.length, fresh);
      this.compaction_swaps++;
      for (const seg of group) {
        seg.deleted = true;
        if (!seg.in_use) await seg.closeHandle();
      }
      for (const seg of group.slice(1)) {
        await unlink(seg.path);
        this.deps.hooks?.compaction?.('merge:unlinked-one');
      }
      await syncDir(this.deps.dir);
      for (const seg of group.slice(1)) void this.deps.catalog.removeSegment(this.key, seg.base_offset);
      void this.deps.catalog.putSegment(this.key, fresh.base_offset, fresh.record());
      for (const seg of group) this.deps.catalog.dropSegmentIndex(this.key, seg.base_offset, seg.next_offset);
      this.reindexSegment(fresh, i, bytes);
      this.compaction_swaps++;
      return fresh;
    });
  }

  /**
   * The sealed segment a compaction swap renamed over `old` (a rewrite of it, or a merge starting
   * at it): `size` bytes, fsynced and every batch already checked (built or read here).
   */
  private swappedIn(old: Segment, size: number, next_offset: number, max_timestamp_ms: number): Segment {
    const fresh = Segment.at(this.deps.dir, old.base_offset);
    fresh.size_bytes = size;
    fresh.durable_bytes = size;
    fresh.next_offset = next_offset;
    fresh.max_timestamp_ms = max_timestamp_ms;
    fresh.first_append_ms = old.first_append_ms;
    fresh.sealed = true;
    fresh.verified.add(0, size);
    return fresh;
  }

  /** Indexes a rewritten segment (the same rule as appends, continuing the running max timestamp of the segments before it). */
  private reindexSegment(fresh: Segment, i: number, bytes: Buffer): void {
    let running = -1;
    for (const s of this.segments.slice(0, i)) running = Math.max(running, s.max_timestamp_ms);
    const indexer = new Indexer(this.deps.catalog, this.key, running, 'segment');
    let pos = 0;
    forEachBatch(bytes, (p, n) => {
      indexer.onBatch(fresh.base_offset, p, batchBaseOffset(bytes, p), batchMaxTimestamp(bytes, p), batchLeaderEpoch(bytes, p));
      pos = p + n;
    });
    assert(pos === bytes.length, 'a rewritten segment is whole batches');
  }

  /** The batches of `seg` up to `size` bytes, read whole (a segment is at most segment.bytes). */
  private async batchesOf(seg: Segment, size: number, at = 0): Promise<Buffer[]> {
    const scratch = this.scratch(at + size);
    const buf = await seg.use(this.deps.clock.now_ms(), async (fh) => {
      let done = 0;
      while (done < size) {
        const { bytesRead } = await fh.read(scratch, at + done, size - done, done);
        if (bytesRead === 0) break;
        done += bytesRead;
      }
      return scratch.subarray(at, at + done);
    });
    const out: Buffer[] = [];
    forEachBatch(buf, (pos, n) => out.push(buf.subarray(pos, pos + n)));
    return out;
  }

  /**
   * Compaction reads whole segments into one buffer reused from segment to segment: on this kind
   * of machine first-touching fresh memory costs about 4 ms per MiB, which made allocating a new
   * buffer per segment read the largest cost of a pass. Batches read into it are valid until the
   * next read at the same place; everything kept is copied out (Buffer.concat) before that.
   */
  private scratch(min_bytes: number): Buffer {
    if (this.scratch_buf === null || this.scratch_buf.length < min_bytes) this.scratch_buf = Buffer.allocUnsafeSlow(min_bytes);
    return this.scratch_buf;
  }

  /** Writes the compacted bytes aside, fsyncs, renames over `seg` and updates catalog and index. */
  private async swapCompacted(seg: Segment, bytes: Buffer): Promise<boolean> {
    const tmp = await writeAside(seg, bytes);
    this.deps.hooks?.compaction?.('rewrite:written');
    return this.structural(async () => {
      const i = this.segments.indexOf(seg);
      if (this.closed_state !== 'open' || seg.deleted || i < 0 || i === this.segments.length - 1) {
        await unlink(tmp).catch(() => undefined);
        return false;
      }
      // The segment's catalog record must be current and durable before the rename (an earlier
      // merge or rewrite may still have its update in flight): recovery trusts a sealed segment
      // whose size equals its record's, and the copy's size differs from the current one's (see
      // rewritePass), so only a stale record (from before a merge, say) could vouch for it.
      await this.deps.catalog.flush();
      this.compaction_swaps++;
      await rename(tmp, seg.path);
      await syncDir(this.deps.dir);
      this.deps.hooks?.compaction?.('rewrite:renamed');
      const fresh = this.swappedIn(seg, bytes.length, seg.next_offset, seg.max_timestamp_ms);
      this.segments[i] = fresh;
      seg.deleted = true; // the old version's handle closes once no reader holds it
      if (!seg.in_use) await seg.closeHandle();
      void this.deps.catalog.putSegment(this.key, fresh.base_offset, fresh.record());
      this.deps.catalog.dropSegmentIndex(this.key, fresh.base_offset, fresh.next_offset);
      this.reindexSegment(fresh, i, bytes);
      this.compaction_swaps++;
      return true;
    });
  }

  /**
   * Copies archived segments back to the SSD tier, so that the local log starts at the segment
   * holding `from_offset`: a node rebuilt from the archive (`relaylog restore`) then serves that
   * range from local disk. Only on a partition that holds nothing locally yet. Each copy is checked
   * against the manifest (size, CRC-32C) and written aside, fsynced and renamed; the catalog
   * already has the segments' index entries (they are the archived ones). Local retention
   * (`local.retention.*`) applies to the copies as to any archived local segment. Returns the
   * number of segments copied.
   */
  restoreLocal(from_offset: number): Promise<number> {
    return this.structural(async () => {
      if (this.closed_state !== 'open') throw closed(`partition ${this.topic}/${this.partition}`);
      const archive = this.deps.archive;
      if (archive === null) throw new EngineError('ARCHIVE_NOT_CONFIGURED', `${this.topic}/${this.partition} has no archive tier to restore from`);
      if (this.segments.length !== 1 || this.active.size_bytes !== 0) {
        throw invalidArgument(`${this.topic}/${this.partition} already holds offsets ${this.segments[0]!.base_offset}..${this.end_offset} locally; restore into an empty data dir`);
      }
      const end = this.active.base_offset;
      const picks = this.archived.filter((a) => a.next_offset > from_offset && a.base_offset < end);
      for (let i = 0; i < picks.length; i++) {
        const next = picks[i + 1]?.base_offset ?? end;
        if (picks[i]!.next_offset !== next) throw corruptSegment(picks[i]!.path, 0, `archived segment ends at offset ${picks[i]!.next_offset - 1} but the next one starts at ${next}`);
      }
      const restored: Segment[] = [];
      for (const a of picks) {
        const seg = Segment.at(this.deps.dir, a.base_offset);
        await archive.download(a, seg.path);
        seg.size_bytes = a.size_bytes;
        seg.durable_bytes = a.size_bytes;
        seg.next_offset = a.next_offset;
        seg.max_timestamp_ms = a.max_timestamp_ms;
        seg.sealed = true;
        restored.push(seg); // batches are CRC-checked on first read, as after any recovery scan
      }
      if (restored.length === 0) return 0;
      await syncDir(this.deps.dir);
      this.segments.unshift(...restored);
      for (const seg of restored) void this.deps.catalog.putSegment(this.key, seg.base_offset, seg.record());
      await this.deps.catalog.flush();
      return restored.length;
    });
  }

  /**
   * Moves an empty log to start at `offset` (a relay or follower joining an upstream whose log
   * starts there after retention). Refused unless the log holds nothing locally, and nothing
   * archived either unless `forget_archived` (a Raft node installing a snapshot past its archived
   * segments): their records are then dropped from the catalog, the files left in the archive
   * store. Returns the archived segments forgotten.
   */
  startAt(offset: number, opts: { forget_archived?: boolean } = {}): Promise<number> {
    return this.structural(async () => {
      if (this.closed_state !== 'open') throw closed(`partition ${this.topic}/${this.partition}`);
      if (!Number.isSafeInteger(offset) || offset < 0) throw invalidArgument(`cannot start ${this.topic}/${this.partition} at offset ${offset}`);
      if (offset === this.end_offset && this.archived.length === 0) return 0;
      if (this.segments.length !== 1 || this.active.size_bytes !== 0 || (this.archived.length !== 0 && !opts.forget_archived)) {
        throw invalidArgument(`${this.topic}/${this.partition} is not empty (offsets ${this.logStartOffset}..${this.end_offset}); truncate it first`);
      }
      const forgotten = this.archived.splice(0);
      for (const a of forgotten) await this.deps.catalog.removeArchived(this.key, a.base_offset);
      if (offset === this.end_offset) return forgotten.length;
      const old = this.segments.pop()!;
      old.deleted = true;
      await old.closeHandle();
      await unlink(old.path);
      void this.deps.catalog.removeSegment(this.key, old.base_offset);
      this.deps.catalog.dropIndexRange(this.key, { from_offset: 0 });
      this.deps.catalog.dropEpochsFrom(this.key, 0);
      this.tail?.truncateTo(old.base_offset);
      await this.createSegment(offset);
      this.end_offset = offset;
      this.hw = offset;
      this.indexer = new Indexer(this.deps.catalog, this.key);
      return forgotten.length;
    });
  }

  /**
   * Where leader epoch `epoch` ends in this log (Kafka's OffsetForLeaderEpoch): the start of the
   * first later epoch, or the log end offset if none is later; with the largest epoch at or below
   * `epoch` that this log holds (-1 if none). A follower or relay whose log goes past `end_offset`
   * in that epoch has diverged and truncates there.
   */
  epochEnd(epoch: number): { epoch: number; end_offset: number; latest_epoch: number } {
    // Raft mode: only the committed log counts (what relays and consumers can see); an uncommitted
    // tail, and the term it was written in, may still be cut.
    const end = this.deps.raft ? this.hw : this.end_offset;
    let epochs = this.deps.catalog.listEpochs(this.key);
    if (this.deps.raft) epochs = epochs.filter((e) => e.start_offset < end);
    const latest_epoch = epochs.length > 0 ? epochs[epochs.length - 1]!.epoch : -1;
    let found = -1;
    for (const e of epochs) {
      if (e.epoch > epoch) return { epoch: found, end_offset: Math.min(e.start_offset, end), latest_epoch };
      found = e.epoch;
    }
    return { epoch: found, end_offset: end, latest_epoch };
  }

  /**
   * Records that `epoch` starts at the log end now, before anything is written in it: an origin
   * does this when it opens, so relays holding a tail it lost in a crash see at once that the log
   * went on (in the new epoch) from here. Replicas never call it: their epochs are their upstream's.
   */
  markEpochStart(epoch: number): void {
    const epochs = this.deps.catalog.listEpochs(this.key);
    const last = epochs[epochs.length - 1];
    if (last && last.epoch >= epoch) return;
    this.deps.catalog.putEpochStart(this.key, epoch, this.end_offset);
  }

  /** The leader epoch of the batch holding offset `end - 1` (the last one), or -1 for an empty log. */
  async lastEpoch(): Promise<number> {
    if (this.end_offset <= this.logStartOffset) return -1;
    assert(this.hw === this.end_offset, 'lastEpoch reads committed data: the high watermark must be the log end');
    const r = await this.read(this.end_offset - 1, 1);
    try {
      let epoch = -1;
      forEachBatch(r.records, (pos) => (epoch = batchLeaderEpoch(r.records, pos)));
      return epoch;
    } finally {
      r.release();
    }
  }

  /**
   * Cuts the log back so that `offset` is the next offset written (Raft follower divergence,
   * relay re-sync). `offset` must be a batch boundary at or above the log start offset.
   */
  truncateTo(offset: number): Promise<void> {
    return this.structural(async () => {
      if (this.closed_state !== 'open') throw closed(`partition ${this.topic}/${this.partition}`);
      if (!Number.isSafeInteger(offset) || offset < this.segments[0]!.base_offset || offset > this.end_offset) {
        throw offsetOutOfRange(offset, this.logStartOffset, this.end_offset, `truncation of ${this.topic}/${this.partition}`);
      }
      if (offset === this.end_offset) return;
      this.truncations++;
      this.producers?.forget((ref) => ref.last_offset >= offset);
      this.tail?.truncateTo(offset);
      let unlinked = false;
      while (this.segments.length > 1 && this.active.base_offset >= offset) {
        const seg = this.segments.pop()!;
        seg.deleted = true;
        if (!seg.in_use) await seg.closeHandle();
        await unlink(seg.path);
        void this.deps.catalog.removeSegment(this.key, seg.base_offset);
        unlinked = true;
      }
      // The cut must not come back after a power loss (a Raft snapshot record may rely on it).
      if (unlinked) await syncDir(this.deps.dir);
      const seg = this.active;
      await seg.closeHandle();
      seg.sealed = false;
      const fh = await seg.handle();
      let cut = -1;
      let max_ts = -1;
      await scanSegment(fh, seg.size_bytes, {
        expected_offset: seg.base_offset,
        on_batch: (b) => {
          if (cut === -1 && b.base_offset >= offset) cut = b.position;
          if (cut === -1) max_ts = Math.max(max_ts, b.max_timestamp_ms);
          if (b.base_offset < offset && b.last_offset >= offset) {
            throw invalidArgument(`offset ${offset} is inside the batch ${b.base_offset}..${b.last_offset}; truncate at a batch boundary`);
          }
        },
      });
      if (cut === -1) cut = seg.size_bytes;
      await fh.truncate(cut);
      await fh.datasync();
      seg.verified.cutAt(cut);
      seg.size_bytes = cut;
      seg.durable_bytes = cut;
      seg.next_offset = offset;
      seg.max_timestamp_ms = max_ts;
      this.end_offset = offset;
      if (this.hw > offset) this.hw = offset;
      // A snapshot taken past the cut would vouch for batches that are gone: replace it.
      if (this.producers !== null) void this.deps.catalog.putProducerSnapshot(this.key, this.producerSnapshot());
      this.deps.catalog.dropIndexRange(this.key, { from_offset: offset });
      this.deps.catalog.dropEpochsFrom(this.key, offset);
      let running = -1;
      for (const s of this.segments) running = Math.max(running, s.max_timestamp_ms);
      this.indexer = new Indexer(this.deps.catalog, this.key, running);
      const floor = this.deps.catalog.offsetFloor(this.key, seg.base_offset, Math.max(seg.base_offset, offset - 1));
      this.indexer.resumeAt(seg.base_offset, floor ? floor.position : -1);
      void this.deps.catalog.putSegment(this.key, seg.base_offset, seg.record());
    });
  }

  /**
   * Calls `fn` for every batch of the local segments, in log order (each segment scanned in full,
   * CRC and continuity checked): how the Raft driver rebuilds its batch-ordinal index on open.
   */
  scanLocalBatches(fn: (b: LocalBatch) => void): Promise<void> {
    return this.exclusive(async () => {
      if (this.closed_state === 'closed') throw closed(`partition ${this.topic}/${this.partition}`);
      for (const seg of this.segments) {
        await seg.use(this.deps.clock.now_ms(), async (fh) => {
          const r = await scanSegment(fh, seg.size_bytes, {
            expected_offset: seg.base_offset,
            on_batch: (b) => fn({ base_offset: b.base_offset, last_offset: b.last_offset, leader_epoch: b.leader_epoch, size_bytes: b.size_bytes, producer: b.producer, ...(b.control_bytes ? { control_bytes: b.control_bytes } : {}) }),
          });
          if (r.fault) throw corruptSegment(seg.path, r.fault.position, r.fault.reason);
          seg.verified.add(0, r.end_position);
        });
      }
    });
  }

  /**
   * Drops this partition's offset and time index entries and rebuilds them by scanning every
   * segment (CRC and continuity checked), exactly as the append path would have written them.
   */
  rebuildIndexes(): Promise<void> {
    return this.exclusive(async () => {
      if (this.closed_state === 'closed') throw closed(`partition ${this.topic}/${this.partition}`);
      this.deps.catalog.dropIndexRange(this.key, { from_offset: 0 });
      this.deps.catalog.dropEpochsFrom(this.key, this.segments[0]!.base_offset);
      const indexer = new Indexer(this.deps.catalog, this.key);
      for (const seg of this.segments) {
        await seg.use(this.deps.clock.now_ms(), async (fh) => {
          const r = await scanSegment(fh, seg.size_bytes, {
            expected_offset: seg.base_offset,
            on_batch: (b) => indexer.onBatch(seg.base_offset, b.position, b.base_offset, b.max_timestamp_ms, b.leader_epoch),
          });
          if (r.fault) throw corruptSegment(seg.path, r.fault.position, r.fault.reason);
          seg.verified.add(0, r.end_position);
        });
      }
      this.indexer = indexer;
      await this.deps.catalog.flush();
    });
  }

  /** fsyncs the active segment now and records how much of it is durable. */
  /**
   * Makes what is written so far durable (fsync=interval's timer, and on demand). The fdatasync
   * runs outside the writer lock, so appends go on while the disk flushes (under the lock every
   * append arriving during a slow flush would wait for it); only the bookkeeping takes the lock,
   * and is skipped if the log was truncated or closed meanwhile.
   */
  async flush(): Promise<void> {
    if (this.closed_state !== 'open') return;
    // The segments before the active one first: no segment is recorded durable ahead of them.
    await this.settleRolled();
    if (!this.isOpen()) return;
    const seg = this.active;
    const size = seg.size_bytes;
    const truncations = this.truncations;
    if (seg.durable_bytes >= size) return;
    await seg.use(this.deps.clock.now_ms(), (fh) => fh.datasync());
    await this.exclusive(async () => {
      if (this.closed_state !== 'open' || this.truncations !== truncations || seg.deleted || seg.durable_bytes >= size) return;
      seg.durable_bytes = size;
      void this.deps.catalog.putSegment(this.key, seg.base_offset, seg.record());
    });
  }

  // ---------------------------------------------------------------- lifecycle

  /** Refuses new appends, waits for queued ones, fsyncs, records a clean close. Idempotent. */
  async close(): Promise<void> {
    if (this.closed_state !== 'open') return;
    this.closed_state = 'closing';
    if (this.flush_timer) clearInterval(this.flush_timer);
    await this.appends.drained();
    await this.structural(async () => {
      const seg = this.active;
      await (await seg.handle()).datasync();
      seg.durable_bytes = seg.size_bytes;
      await this.deps.catalog.putSegment(this.key, seg.base_offset, seg.record(true));
      if (this.producers !== null) await this.deps.catalog.putProducerSnapshot(this.key, this.producerSnapshot());
      this.closed_state = 'closed';
      for (const s of this.segments) await s.closeHandle();
    });
    this.releaseTail();
    this.waiters.closeAll();
  }

  /**
   * For crash tests: stop as a killed process would, without fsync or a clean-close record.
   * Queued appends are rejected; handles are closed.
   */
  async abandon(): Promise<void> {
    this.closed_state = 'closed';
    if (this.flush_timer) clearInterval(this.flush_timer);
    this.appends.rejectAll(closed('abandoned partition'));
    await this.appends.drained();
    // A roll, flush or retention already under way finishes (as a write under way does) before
    // the caller closes the catalog: none of them may write to it afterwards. Later ones see
    // closed_state and do nothing.
    await this.exclusive(async () => undefined);
    await this.rolled_sync?.catch(() => undefined); // it stops at closed_state, writing nothing more
    for (const s of this.segments) await s.closeHandle();
    this.releaseTail();
    this.waiters.closeAll();
  }

  private releaseTail(): void {
    if (this.tail) this.deps.memory?.unregister(this.tail);
    this.tail = null;
  }
}

const noop = () => undefined;

function withRelease(got: SelectedBatches, high_watermark: number, log_start_offset: number): ReadResult {
  const backing = got.backing;
  let released = false;
  return {
    records: got.records,
    next_offset: got.next_offset,
    high_watermark,
    log_start_offset,
    release: backing
      ? () => {
          if (released) return;
          released = true;
          readBuffers.give(backing);
        }
      : noop,
  };
}

/**
 * Splits batches copied from another log: framing, magic and CRC checked as for produce, but a
 * batch may hold fewer records than its offset span, or none (compaction, a Raft no-op entry).
 */
/**
 * Batches that append() checked (framing, CRC, counts) and handed to the Raft replicator as single
 * batches: when the leader persists them (appendReplicated) they are not checked again. Reading a
 * large batch's bytes once more from memory for its CRC was 7% of a leader's busy time in
 * profiles at 64 KiB records. Anything received from another process is always checked.
 */
const checked_here = new WeakSet<Buffer>();

function splitReplicated(buf: Buffer): Buffer[] {
  const out: Buffer[] = [];
  if (buf.length === 0) throw invalidBatch('empty record set');
  for (let pos = 0; pos < buf.length; ) {
    const problem = checkBatch(buf, pos, buf.length - pos);
    if (problem !== null) throw corruptBatch(`${problem} at position ${pos}`, { position: pos });
    const size = batchSizeAt(buf, pos);
    out.push(buf.subarray(pos, pos + size));
    pos += size;
  }
  return out;
}

export function isRetriable(err: unknown): boolean {
  return isEngineError(err) && (err as EngineError).retriable;
}
