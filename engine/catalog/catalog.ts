import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { open, type Database, type RootDatabase } from 'lmdb';
import { AssertionError } from '../base/assert.js';
import { closed, storageError, type EngineError } from '../base/errors.js';
import { catalogWriteError, settledWrite } from './write-failure.js';

/**
 * The LMDB catalog: one environment per data dir (`<dir>/catalog`), holding
 *  - segments:  [topic, partition, base_offset] -> SegmentRecord
 *  - oindex:    [topic, partition, batch_base_offset] -> [segment_base, position]   (sparse offset index)
 *  - tindex:    [topic, partition, running_max_ts] -> [batch_base_offset, segment_base, position] (sparse time index)
 *  - groups:    [group, topic, partition] -> GroupOffset
 *  - raft:      [topic, partition] -> RaftHardState (cluster nodes)
 *               [topic, partition, 'snapshot'] -> RaftSnapshotRecord (what stands for a discarded prefix)
 *  - meta:      string -> any
 *
 * Everything here except `groups` and `meta` can be rebuilt from the segment files
 * (principle: segments are the source of truth). Reads are synchronous (memory-mapped);
 * writes are asynchronous and batched by lmdb-js into few transactions.
 */

export interface SegmentRecord {
  size_bytes: number;
  next_offset: number;
  max_timestamp_ms: number;
  first_append_ms: number;
  sealed: boolean;
  /** Active segment only: bytes known durable (fsynced). Faults before this are corruption, after it a torn tail. */
  durable_bytes: number;
  /** Set by a clean close: the file is exactly size_bytes and fully indexed, so open need not rescan it. */
  clean: boolean;
}

export interface GroupOffset {
  offset: number;
  metadata: string;
  committed_ms: number;
}

export type PartitionKey = readonly [topic: string, partition: number];

/** Raft's persistent state for one partition (the core's HardState). */
export interface RaftHardState {
  term: number;
  vote: number;
  commit: number;
}

/**
 * A cluster node's Raft snapshot of one partition: entries 1..index (the last of term `term`) are
 * no longer in the local log, which starts at `next_offset` (where entry index + 1 begins);
 * `voters`/`learners` is the membership in effect at `index`. Unlike the rest of the catalog, it
 * cannot be rebuilt from the segments: it is what gives their batches their Raft indexes.
 */
export interface RaftSnapshotRecord {
  index: number;
  term: number;
  next_offset: number;
  voters: number[];
  learners: number[];
}

/** A sealed segment held by the archive tier (its local copy may be gone). */
export interface ArchivedSegment {
  base_offset: number;
  next_offset: number;
  size_bytes: number;
  crc32c: number;
  max_timestamp_ms: number;
  /** Path inside the archive store. */
  path: string;
  uploaded_ms: number;
}

/** Sparse index entries of one segment: [batch base offset, position, running max timestamp at that batch]. */
export type SegmentIndexEntries = Array<[offset: number, position: number, running_max_ts: number]>;

const CATALOG_VERSION = 1;
const TS_MIN = -(2 ** 53);
const TS_MAX = 2 ** 53;
/**
 * Sparse index entries are handed to LMDB in groups of this many (or sooner, see
 * Catalog.putOffsetEntry). One LMDB commit (with its fsync) per few entries made the index the
 * append path's largest cost at small records: ~117 commits/s at 2,000 x 1 KiB/s.
 */
const INDEX_WRITE_GROUP_ENTRIES = 64;
/** ...or once the pending entries of one segment span this many bytes of it. */
const INDEX_WRITE_GROUP_SPAN_BYTES = 4 * 1024 * 1024;

/** An index entry handed to LMDB and not yet committed: offset index [segment, position], time index [batch, segment, position]. */
interface InFlightEntry {
  tindex: boolean;
  key: (string | number)[];
  value: readonly number[];
}

/**
 * Idempotent producers' state of one partition as of `offset` (every batch below it): per producer
 * id its epoch and last batches as [first_seq, last_seq, base_offset, last_offset].
 */
export interface ProducerSnapshot {
  offset: number;
  producers: Array<{ producer_id: number; epoch: number; batches: Array<[number, number, number, number]> }>;
}

const producerSnapshotKey = (p: PartitionKey): string => `producers:${JSON.stringify([p[0], p[1]])}`;

export class Catalog {
  private is_closed = false;
  /** Where the environment lives, for error messages. */
  private dir = '';
  /**
   * Told of every failed write that nobody waits for, as DISK_FULL or STORAGE_ERROR (the LogStore
   * logs them). Losing those is safe: a lookup reads forward from an earlier index entry, and a
   * segment whose record is stale is rescanned on the next open.
   */
  onWriteError: ((err: EngineError) => void) | null = null;

  /** Index entries not yet handed to LMDB, in the order they were put (see putOffsetEntry). */
  private pending_oindex: Array<[(string | number)[], [number, number]]> = [];
  private pending_tindex: Array<[(string | number)[], [number, number, number]]> = [];
  /** Segment and byte position of the first pending offset entry (for the span bound). */
  private pending_from: { segment_base: number; position: number } | null = null;
  /**
   * Index entries handed to LMDB asynchronously and not yet committed. LMDB commits a synchronous
   * transaction before asynchronous writes issued earlier, so a drop (synchronous) would not remove
   * them: after each drop, the ones it covers are removed again, asynchronously, behind their puts.
   */
  private in_flight: InFlightEntry[] = [];

  /** An asynchronous LMDB write the caller waits for: its failure is a retriable EngineError, and nothing is left unhandled. */
  private awaited<T>(what: string, write: PromiseLike<T>): Promise<T> {
    return settledWrite(Promise.resolve(write), this.dir, what, null);
  }

  /** An asynchronous LMDB write nobody has to wait for: a failure goes to onWriteError. */
  private background<T>(what: string, write: PromiseLike<T>): Promise<T> {
    return settledWrite(Promise.resolve(write), this.dir, what, (err) => this.onWriteError?.(err));
  }

  /** A synchronous LMDB transaction: its failure is thrown as a retriable EngineError. */
  private transaction<T>(what: string, fn: () => T): T {
    try {
      return this.env.transactionSync(fn);
    } catch (err) {
      if (err instanceof AssertionError) throw err;
      throw catalogWriteError(this.dir, what, err);
    }
  }

  /** Any use after close is refused: a write to a closed LMDB environment is undefined behaviour. */
  private guard(): void {
    if (this.is_closed) throw closed('the LMDB catalog');
  }

  /**
   * Every write other than an index entry first hands the pending index entries to LMDB, so LMDB
   * sees all writes in the order they were made (a segment record never commits before the index
   * entries of the batches it covers; a drop never runs before puts it should remove).
   */
  private guardWrite(): void {
    this.guard();
    this.issueIndexWrites();
  }

  /** Inside a synchronous transaction: the pending entries go into it, ahead of what it does. */
  private writePendingInTxn(): void {
    const o = this.pending_oindex;
    const t = this.pending_tindex;
    this.pending_oindex = [];
    this.pending_tindex = [];
    this.pending_from = null;
    for (const [k, v] of o) this.oindex.putSync(k, v);
    for (const [k, v] of t) this.tindex.putSync(k, v);
  }

  private issueIndexWrites(): void {
    if (this.pending_oindex.length === 0 && this.pending_tindex.length === 0) return;
    const o = this.pending_oindex;
    const t = this.pending_tindex;
    this.pending_oindex = [];
    this.pending_tindex = [];
    this.pending_from = null;
    const issued: InFlightEntry[] = [...o.map(([key, value]) => ({ tindex: false, key, value })), ...t.map(([key, value]) => ({ tindex: true, key, value }))];
    this.in_flight.push(...issued);
    let last: Promise<boolean> | null = null;
    for (const [k, v] of o) last = this.background('an offset index entry', this.oindex.put(k, v));
    for (const [k, v] of t) last = this.background('a time index entry', this.tindex.put(k, v));
    // One group commits together (or in order): once its last put settles, all of it has (or failed).
    const settled = () => {
      const done = new Set(issued);
      this.in_flight = this.in_flight.filter((e) => !done.has(e));
    };
    void last?.then(settled, settled);
  }

  /** Removes again, asynchronously, the in-flight entries of partition `p` that `drops` says a drop covered. */
  private redropInFlight(p: PartitionKey, drops: (e: InFlightEntry) => boolean): void {
    for (const e of this.in_flight) {
      if (e.key[0] !== p[0] || e.key[1] !== p[1] || !drops(e)) continue;
      void this.background('removing an index entry', e.tindex ? this.tindex.remove(e.key) : this.oindex.remove(e.key));
    }
  }

  private constructor(
    private readonly env: RootDatabase,
    readonly segments: Database<SegmentRecord, (string | number)[]>,
    readonly oindex: Database<[number, number], (string | number)[]>,
    readonly tindex: Database<[number, number, number], (string | number)[]>,
    readonly groups: Database<GroupOffset, (string | number)[]>,
    readonly meta: Database<unknown, string>,
    readonly archived: Database<ArchivedSegment, (string | number)[]>,
    /** Leader-epoch starts: [topic, partition, epoch] -> first offset written in that epoch. */
    readonly epochs: Database<number, (string | number)[]>,
    /** True when the environment was created by this open (nothing to trust, rebuild from segments). */
    readonly fresh: boolean,
    /** Raft hard state per partition: [topic, partition] -> {term, vote, commit} (cluster nodes only; null when opened read-only without it). */
    readonly raft: Database<RaftHardState | RaftSnapshotRecord, (string | number)[]> | null = null,
  ) {}

  static open(path: string): Catalog {
    try {
      // overlappingSync off: a commit's fsync finishes on LMDB's writer thread before the commit
      // resolves, so closing the environment never races a background sync. eventTurnBatching off:
      // with it, lmdb-js 3.5.6 opens each event turn's batch with a write of its own whose promise
      // nobody holds, and a failed commit (ENOSPC) rejects that promise unhandled, which ends the
      // process (see write-failure.ts). Writes are still grouped: the ones issued before the writer
      // thread starts (on the next setImmediate) commit together.
      const env = open({ path, maxDbs: 16, compression: false, mapSize: 2 ** 34, overlappingSync: false, eventTurnBatching: false });
      const meta = env.openDB<unknown, string>({ name: 'meta' });
      const fresh = meta.get('version') === undefined;
      if (fresh) meta.putSync('version', CATALOG_VERSION);
      const catalog = new Catalog(
        env,
        env.openDB({ name: 'segments' }),
        env.openDB({ name: 'oindex' }),
        env.openDB({ name: 'tindex' }),
        env.openDB({ name: 'groups' }),
        meta,
        env.openDB({ name: 'archived' }),
        env.openDB({ name: 'epochs' }),
        fresh,
        env.openDB({ name: 'raft' }),
      );
      catalog.dir = path;
      return catalog;
    } catch (err) {
      throw storageError(`opening the LMDB catalog at ${path}`, err);
    }
  }

  /**
   * Opens an existing catalog for reading only (the offline `verify`, `inspect` and `dump` tools):
   * LMDB's read-only mode, so nothing in `data.mdb` can change; any write method throws. Returns
   * null when there is no catalog at `path` (it creates nothing). Only LMDB's reader table in
   * `lock.mdb` is touched, as by any reader.
   */
  static openReadOnly(path: string): Catalog | null {
    if (!existsSync(join(path, 'data.mdb'))) return null;
    try {
      const env = open({ path, maxDbs: 16, compression: false, mapSize: 2 ** 34, readOnly: true });
      const db = <V>(name: string): Database<V, (string | number)[]> => {
        const d = env.openDB<V, (string | number)[]>({ name }) as Database<V, (string | number)[]> | undefined;
        if (d === undefined) throw new Error(`the catalog has no "${name}" database`);
        return d;
      };
      const meta = env.openDB<unknown, string>({ name: 'meta' }) as Database<unknown, string> | undefined;
      if (meta === undefined) throw new Error('the catalog has no "meta" database');
      return new Catalog(env, db('segments'), db('oindex'), db('tindex'), db('groups'), meta, db('archived'), db('epochs'), false);
    } catch (err) {
      throw storageError(`opening the LMDB catalog at ${path} read-only`, err);
    }
  }

  listSegments(p: PartitionKey): Array<{ base_offset: number; record: SegmentRecord }> {
    this.guard();
    const out: Array<{ base_offset: number; record: SegmentRecord }> = [];
    for (const { key, value } of this.segments.getRange({ start: [p[0], p[1], -1], end: [p[0], p[1], TS_MAX] })) {
      out.push({ base_offset: key[2] as number, record: value });
    }
    return out;
  }

  putSegment(p: PartitionKey, base_offset: number, record: SegmentRecord): Promise<boolean> {
    this.guardWrite();
    return this.background('a segment record', this.segments.put([p[0], p[1], base_offset], record));
  }

  removeSegment(p: PartitionKey, base_offset: number): Promise<boolean> {
    this.guardWrite();
    return this.background('removing a segment record', this.segments.remove([p[0], p[1], base_offset]));
  }

  /** Floor lookup: the last offset-index entry at or below `offset` within [segment_base, offset]. */
  offsetFloor(p: PartitionKey, segment_base: number, offset: number): { offset: number; position: number } | null {
    this.guard();
    for (const { key, value } of this.oindex.getRange({
      start: [p[0], p[1], offset],
      end: [p[0], p[1], segment_base],
      inclusiveEnd: true,
      reverse: true,
      limit: 1,
    })) {
      if (value[0] === segment_base) return { offset: key[2] as number, position: value[1] };
    }
    return null;
  }

  /**
   * Index entries are not durable on their own and may reach LMDB a little later than they are
   * put: they are held until INDEX_WRITE_GROUP_ENTRIES are pending, the pending ones of a segment
   * span INDEX_WRITE_GROUP_SPAN_BYTES, or any other catalog write is made. A lookup meanwhile finds
   * an earlier entry and reads forward from it (what it also does while an LMDB commit is in
   * flight); recovery re-indexes an active segment that was not closed cleanly, and a segment is
   * sealed by a record write, which issues its entries first.
   */
  putOffsetEntry(p: PartitionKey, batch_base: number, segment_base: number, position: number): void {
    this.guard();
    this.pending_oindex.push([[p[0], p[1], batch_base], [segment_base, position]]);
    const from = this.pending_from;
    if (from === null) this.pending_from = { segment_base, position };
    if (
      this.pending_oindex.length >= INDEX_WRITE_GROUP_ENTRIES ||
      (from !== null && (from.segment_base !== segment_base || position - from.position >= INDEX_WRITE_GROUP_SPAN_BYTES))
    ) {
      this.issueIndexWrites();
    }
  }

  /** The last time-index entry whose running-max timestamp is strictly below ts. */
  timeFloor(p: PartitionKey, ts_ms: number): { offset: number; segment_base: number; position: number } | null {
    this.guard();
    for (const { key, value } of this.tindex.getRange({
      start: [p[0], p[1], ts_ms],
      end: [p[0], p[1], TS_MIN],
      reverse: true,
      limit: 2,
    })) {
      if ((key[2] as number) < ts_ms) return { offset: value[0], segment_base: value[1], position: value[2] };
    }
    return null;
  }

  // ------------------------------------------------------------ Raft hard state

  /** The partition's persisted Raft hard state, or null when it never had one. */
  getRaftState(p: PartitionKey): RaftHardState | null {
    this.guard();
    return (this.raft?.get([p[0], p[1]]) as RaftHardState | undefined) ?? null;
  }

  /** The partition's Raft snapshot record, or null while its log has discarded nothing. */
  getRaftSnapshot(p: PartitionKey): RaftSnapshotRecord | null {
    this.guard();
    return (this.raft?.get([p[0], p[1], 'snapshot']) as RaftSnapshotRecord | undefined) ?? null;
  }

  /** Durable when it resolves: segments below `next_offset` may be deleted only after. */
  async putRaftSnapshot(p: PartitionKey, s: RaftSnapshotRecord): Promise<void> {
    this.guardWrite();
    if (this.raft === null) throw closed('the read-only LMDB catalog');
    const record: RaftSnapshotRecord = { index: s.index, term: s.term, next_offset: s.next_offset, voters: [...s.voters], learners: [...s.learners] };
    await this.awaited('the Raft snapshot', this.raft.put([p[0], p[1], 'snapshot'], record));
    await this.awaited('the Raft snapshot', this.raft.flushed);
  }

  /** Durable (LMDB commit synced) when it resolves: a vote or an acknowledgement may only leave after. */
  async putRaftState(p: PartitionKey, hs: RaftHardState): Promise<void> {
    this.guardWrite();
    if (this.raft === null) throw closed('the read-only LMDB catalog');
    await this.awaited('the Raft hard state', this.raft.put([p[0], p[1]], { term: hs.term, vote: hs.vote, commit: hs.commit }));
    await this.awaited('the Raft hard state', this.raft.flushed);
  }

  // ------------------------------------------------------------ idempotent producers

  /**
   * Hands out the next producer id of this data dir, durably (a synchronous LMDB commit): ids are
   * never reused, even after a crash. The caller combines it with the node id (server/rpc).
   */
  allocateProducerId(): number {
    this.guard();
    let id = 0;
    this.transaction('a producer id', () => {
      this.writePendingInTxn();
      id = (this.meta.get('producer_id_next') as number | undefined) ?? 0;
      this.meta.putSync('producer_id_next', id + 1);
    });
    return id;
  }

  /** Makes the next producer id counter at least `floor` (a rebuilt catalog: LogStore). */
  raiseProducerIdCounter(floor: number): void {
    this.guard();
    this.transaction('a producer id floor', () => {
      this.writePendingInTxn();
      const next = (this.meta.get('producer_id_next') as number | undefined) ?? 0;
      if (floor > next) this.meta.putSync('producer_id_next', floor);
    });
  }

  /** The partition's producer-state snapshot (docs/format.md), or null. Rebuildable from the segments. */
  getProducerSnapshot(p: PartitionKey): ProducerSnapshot | null {
    this.guard();
    return (this.meta.get(producerSnapshotKey(p)) as ProducerSnapshot | undefined) ?? null;
  }

  /** Not waited for by the log: a lost snapshot only means a longer rescan on open. */
  putProducerSnapshot(p: PartitionKey, s: ProducerSnapshot): Promise<boolean> {
    this.guardWrite();
    return this.meta.put(producerSnapshotKey(p), s);
  }

  // ------------------------------------------------------------ leader epochs

  /** Records that `epoch` starts at `start_offset` (the first batch stamped with it). */
  putEpochStart(p: PartitionKey, epoch: number, start_offset: number): void {
    this.guard();
    // Rare (once per epoch), read at once by epochEnd.
    this.transaction('a leader epoch start', () => {
      this.writePendingInTxn();
      this.epochs.putSync([p[0], p[1], epoch], start_offset);
    });
  }

  /** Every recorded epoch start, ascending (epochs and start offsets both grow). */
  listEpochs(p: PartitionKey): Array<{ epoch: number; start_offset: number }> {
    this.guard();
    return [...this.epochs.getRange({ start: [p[0], p[1], -1], end: [p[0], p[1], TS_MAX] })].map((e) => ({ epoch: e.key[2] as number, start_offset: e.value }));
  }

  /** The newest leader epoch recorded in any partition, or the node epoch stored in meta (-1: none). */
  maxEpoch(): number {
    this.guard();
    let max = (this.meta.get('node_epoch') as number | undefined) ?? -1;
    for (const { key } of this.epochs.getRange({})) max = Math.max(max, key[2] as number);
    return max;
  }

  /** Persists the node's epoch (its incarnation), durably. */
  putNodeEpoch(epoch: number): void {
    this.guard();
    this.transaction('the node epoch', () => {
      this.writePendingInTxn();
      this.meta.putSync('node_epoch', epoch);
    });
  }

  /** Forgets epochs that start at or after `offset` (the log was truncated there). */
  dropEpochsFrom(p: PartitionKey, offset: number): void {
    this.guard();
    this.transaction('dropping epoch starts', () => {
      this.writePendingInTxn();
      for (const { key, value } of this.epochs.getRange({ start: [p[0], p[1], -1], end: [p[0], p[1], TS_MAX] })) {
        if (value >= offset) this.epochs.removeSync(key);
      }
    });
  }

  /** The largest key (running max timestamp) in the partition's time index, or null when it has none. */
  lastTimeKey(p: PartitionKey): number | null {
    this.guard();
    for (const { key } of this.tindex.getRange({ start: [p[0], p[1], TS_MAX], end: [p[0], p[1], TS_MIN], reverse: true, limit: 1 })) {
      return key[2] as number;
    }
    return null;
  }

  /** Held with the offset entries (see putOffsetEntry). */
  putTimeEntry(p: PartitionKey, running_max_ts: number, batch_base: number, segment_base: number, position: number): void {
    this.guard();
    this.pending_tindex.push([[p[0], p[1], running_max_ts], [batch_base, segment_base, position]]);
    if (this.pending_tindex.length >= INDEX_WRITE_GROUP_ENTRIES) this.issueIndexWrites();
  }

  /**
   * Drops index entries for offsets >= from (truncation) or < below (retention), in one synchronous
   * transaction, so no reader can see a dropped entry once this returns.
   */
  dropIndexRange(p: PartitionKey, range: { from_offset?: number; below_offset?: number }): void {
    this.guard();
    this.transaction('dropping index entries', () => {
      this.writePendingInTxn();
      this.dropIndexRangeInTxn(p, range);
    });
    const below = range.below_offset;
    const from = range.from_offset ?? 0;
    // The batch's offset: the key of an offset entry, the first value of a time entry.
    this.redropInFlight(p, (e) => {
      const offset = e.tindex ? e.value[0]! : (e.key[2] as number);
      return below !== undefined ? offset < below : offset >= from;
    });
  }

  private dropIndexRangeInTxn(p: PartitionKey, range: { from_offset?: number; below_offset?: number }): void {
    const lo = range.below_offset !== undefined ? -1 : (range.from_offset ?? 0);
    const hi = range.below_offset !== undefined ? range.below_offset : TS_MAX;
    for (const { key } of this.oindex.getRange({ start: [p[0], p[1], lo], end: [p[0], p[1], hi] })) {
      this.oindex.removeSync(key);
    }
    // Time-index keys (running max timestamp) grow with offset, so the entries to drop are a
    // contiguous run at one end: walk from that end and stop at the first entry to keep.
    const below = range.below_offset;
    const from = range.from_offset ?? 0;
    for (const { key, value } of this.tindex.getRange({
      start: [p[0], p[1], below !== undefined ? TS_MIN : TS_MAX],
      end: [p[0], p[1], below !== undefined ? TS_MAX : TS_MIN],
      reverse: below === undefined,
    })) {
      const keep = below !== undefined ? value[0] >= below : value[0] < from;
      if (keep) break;
      this.tindex.removeSync(key);
    }
  }

  dropPartition(p: PartitionKey): void {
    this.guard();
    this.transaction('dropping a partition', () => {
      this.writePendingInTxn();
      for (const db of [this.segments, this.oindex, this.archived, this.epochs] as const) {
        for (const { key } of db.getRange({ start: [p[0], p[1], -1], end: [p[0], p[1], TS_MAX] })) db.removeSync(key);
      }
      for (const { key } of this.tindex.getRange({ start: [p[0], p[1], TS_MIN], end: [p[0], p[1], TS_MAX] })) this.tindex.removeSync(key);
      this.raft?.removeSync([p[0], p[1]]);
      this.raft?.removeSync([p[0], p[1], 'snapshot']);
      this.meta.removeSync(producerSnapshotKey(p));
    });
    this.redropInFlight(p, () => true);
  }

  listArchived(p: PartitionKey): ArchivedSegment[] {
    this.guard();
    return [...this.archived.getRange({ start: [p[0], p[1], -1], end: [p[0], p[1], TS_MAX] })].map((e) => e.value);
  }

  /** Durable when it resolves: a local segment may be deleted only after this. */
  async putArchived(p: PartitionKey, a: ArchivedSegment): Promise<void> {
    this.guardWrite();
    await this.awaited('an archived segment', this.archived.put([p[0], p[1], a.base_offset], a));
    await this.awaited('an archived segment', this.archived.flushed);
  }

  async removeArchived(p: PartitionKey, base_offset: number): Promise<void> {
    this.guardWrite();
    await this.awaited('removing an archived segment', this.archived.remove([p[0], p[1], base_offset]));
  }

  /** The index entries that belong to the segment starting at `segment_base` (for archive sidecars). */
  segmentIndexEntries(p: PartitionKey, segment_base: number, next_offset: number): SegmentIndexEntries {
    this.guard();
    const rmts = new Map<number, number>();
    for (const { key, value } of this.tindex.getRange({ start: [p[0], p[1], TS_MIN], end: [p[0], p[1], TS_MAX] })) {
      if (value[1] === segment_base) rmts.set(value[0], key[2] as number);
    }
    const out: SegmentIndexEntries = [];
    for (const { key, value } of this.oindex.getRange({ start: [p[0], p[1], segment_base], end: [p[0], p[1], next_offset] })) {
      if (value[0] !== segment_base) continue;
      const off = key[2] as number;
      out.push([off, value[1], rmts.get(off) ?? -1]);
    }
    return out;
  }

  /** Writes a segment's index entries back (restore from the archive). */
  /** Drops the offset and time index entries that point into segment `segment_base` (it was rewritten). */
  dropSegmentIndex(p: PartitionKey, segment_base: number, next_offset: number): void {
    this.guard();
    this.transaction("dropping a segment's index entries", () => {
      this.writePendingInTxn();
      for (const { key, value } of this.oindex.getRange({ start: [p[0], p[1], segment_base], end: [p[0], p[1], next_offset] })) {
        if (value[0] === segment_base) this.oindex.removeSync(key);
      }
      for (const { key, value } of this.tindex.getRange({ start: [p[0], p[1], TS_MIN], end: [p[0], p[1], TS_MAX] })) {
        if (value[1] === segment_base) this.tindex.removeSync(key);
      }
    });
    this.redropInFlight(p, (e) => (e.tindex ? e.value[1] === segment_base : e.value[0] === segment_base && (e.key[2] as number) < next_offset));
  }

  putSegmentIndexEntries(p: PartitionKey, segment_base: number, entries: SegmentIndexEntries): void {
    this.guard();
    for (const [offset, position, rmts] of entries) {
      this.putOffsetEntry(p, offset, segment_base, position);
      if (rmts >= 0) this.putTimeEntry(p, rmts, offset, segment_base, position);
    }
  }

  /** Durable when the promise resolves (LMDB commit is synced to disk). */
  async commitGroupOffset(group: string, topic: string, partition: number, value: GroupOffset): Promise<void> {
    this.guardWrite();
    await this.awaited('a group offset', this.groups.put([group, topic, partition], value));
    await this.awaited('a group offset', this.groups.flushed);
  }

  getGroupOffset(group: string, topic: string, partition: number): GroupOffset | undefined {
    this.guard();
    return this.groups.get([group, topic, partition]);
  }

  /** Resolves when every write made so far (index entries held for grouping included) is committed. */
  async flush(): Promise<void> {
    this.guardWrite();
    await this.awaited('the pending writes', Promise.all([this.segments.committed, this.oindex.committed, this.tindex.committed]));
    await this.awaited('the pending writes', this.segments.flushed);
  }

  /** Waits for every write issued so far to be committed and flushed, then closes the environment. */
  async close(): Promise<void> {
    if (this.is_closed) return;
    this.issueIndexWrites();
    this.is_closed = true;
    try {
      await this.awaited('the last writes', Promise.all([this.segments, this.oindex, this.tindex, this.groups, this.meta, this.archived, ...(this.raft ? [this.raft] : [])].map((db) => db.committed)));
      await this.awaited('the last writes', this.segments.flushed);
    } finally {
      await this.env.close();
    }
  }
}
