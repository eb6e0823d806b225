/**
 * The Raft log of one partition IS its segment store: Raft index i is the partition's i-th record
 * batch (1-based, dense), and the batch's partitionLeaderEpoch is the term of entry i. Once
 * retention has discarded a prefix (or a snapshot from the leader replaced the log), the local log
 * starts at entry `firstIndex` = snapshot index + 1 (the snapshot record in the catalog says which
 * index the first local batch has). This module keeps the one piece of bookkeeping that adds: an
 * in-memory index from batch ordinal to (next offset, term, byte size), in typed arrays (16 bytes
 * per batch), rebuilt from the segment files on open. The base offset of entry i is the next offset
 * of entry i - 1.
 *
 * `BatchLogStorage` serves the core's synchronous `LogStorage` from this index. The bytes stay in
 * the segment store: `entries()` hands out *lazy* entries whose `data` is a zero-filled view of the
 * right length (the core only needs sizes for its byte limits); the driver replaces them with the
 * stored bytes (an async read, usually a memory-tier hit) before an append leaves the node.
 */
import { assert } from '../../../engine/base/assert.js';
import { emptySnapshot, type LogStorage } from '../core/log-storage.js';
import type { ConfState, Entry, Snapshot } from '../core/types.js';

/** One stored batch as the index sees it. */
export interface IndexedBatch {
  readonly base_offset: number;
  readonly next_offset: number;
  readonly term: number;
  readonly size_bytes: number;
}

const INITIAL_CAPACITY = 1024;

/** Ordinal -> (next offset, term, size) for the batches of one partition's local log. */
export class BatchIndex {
  private next_offsets = new Float64Array(INITIAL_CAPACITY);
  private terms = new Uint32Array(INITIAL_CAPACITY);
  private sizes = new Uint32Array(INITIAL_CAPACITY);
  private count = 0;
  /** Raft index of the first entry held (arrays[0]); entries before it are covered by a snapshot. */
  private first = 1;
  /** Term of entry first - 1 (0 when nothing was discarded). */
  private prev_term = 0;
  /** Membership changes (rare): Raft index -> the core's conf_change entry data (conf-batch.ts). */
  private readonly conf = new Map<number, Buffer>();

  /**
   * `start_offset`: the base offset of the first entry held (the log start offset);
   * `snapshot`: the last discarded entry (index and term), if a prefix has been discarded.
   */
  constructor(
    private start_offset: number,
    snapshot: { index: number; term: number } = { index: 0, term: 0 },
  ) {
    assert(Number.isSafeInteger(start_offset) && start_offset >= 0, `bad start offset ${start_offset}`);
    assert(Number.isSafeInteger(snapshot.index) && snapshot.index >= 0 && (snapshot.index > 0 || snapshot.term === 0), `bad snapshot ${snapshot.index}@${snapshot.term}`);
    this.first = snapshot.index + 1;
    this.prev_term = snapshot.term;
  }

  /** The first entry held (1 unless a prefix was discarded). */
  get firstIndex(): number {
    return this.first;
  }

  get lastIndex(): number {
    return this.first - 1 + this.count;
  }

  /** Offset where the first entry held starts. */
  get startOffset(): number {
    return this.start_offset;
  }

  /** Offset one past the last batch (the log end offset the index knows). */
  get endOffset(): number {
    return this.count === 0 ? this.start_offset : this.next_offsets[this.count - 1]!;
  }

  /** Term of entry `index`: that of the snapshot for firstIndex - 1, undefined outside [firstIndex - 1, lastIndex]. */
  term(index: number): number | undefined {
    if (index === this.first - 1) return this.prev_term;
    if (!Number.isInteger(index) || index < this.first || index > this.lastIndex) return undefined;
    return this.terms[index - this.first];
  }

  /** Offset one past entry `index` (firstIndex - 1: the log start). */
  nextOffset(index: number): number {
    assert(Number.isInteger(index) && index >= this.first - 1 && index <= this.lastIndex, `no entry ${index} (held: ${this.first}..${this.lastIndex})`);
    return index === this.first - 1 ? this.start_offset : this.next_offsets[index - this.first]!;
  }

  baseOffset(index: number): number {
    assert(index >= this.first && index <= this.lastIndex, `no entry ${index} (held: ${this.first}..${this.lastIndex})`);
    return this.nextOffset(index - 1);
  }

  sizeBytes(index: number): number {
    assert(index >= this.first && index <= this.lastIndex, `no entry ${index} (held: ${this.first}..${this.lastIndex})`);
    return this.sizes[index - this.first]!;
  }

  get(index: number): IndexedBatch {
    return { base_offset: this.baseOffset(index), next_offset: this.nextOffset(index), term: this.term(index)!, size_bytes: this.sizeBytes(index) };
  }

  /** Appends the next batch; it must continue the log (its base offset is the current end). */
  push(b: IndexedBatch): void {
    assert(b.base_offset === this.endOffset, `batch at ${b.base_offset} does not continue the index ending at ${this.endOffset}`);
    assert(b.next_offset > b.base_offset, `batch ${b.base_offset}..${b.next_offset} spans no offset`);
    const prev_term = this.count === 0 ? this.prev_term : this.terms[this.count - 1]!;
    assert(b.term >= prev_term, `term goes backwards at index ${this.lastIndex + 1}: ${b.term} < ${prev_term}`);
    if (this.count === this.terms.length) this.grow();
    this.next_offsets[this.count] = b.next_offset;
    this.terms[this.count] = b.term;
    this.sizes[this.count] = b.size_bytes;
    this.count++;
  }

  /** Keeps entries 1..last_index (drops a suffix). */
  truncateAfter(last_index: number): void {
    assert(last_index >= this.first - 1 && last_index <= this.lastIndex, `cannot truncate after ${last_index} (held: ${this.first}..${this.lastIndex})`);
    this.count = last_index - this.first + 1;
    for (const i of [...this.conf.keys()]) if (i > last_index) this.conf.delete(i);
  }

  /** Forgets entries up to `index` (retention deleted them; a snapshot stands for them). */
  discardThrough(index: number): void {
    assert(index >= this.first && index <= this.lastIndex, `cannot discard through ${index} (held: ${this.first}..${this.lastIndex})`);
    const k = index - this.first + 1;
    this.prev_term = this.term(index)!;
    this.start_offset = this.nextOffset(index);
    this.next_offsets.copyWithin(0, k, this.count);
    this.terms.copyWithin(0, k, this.count);
    this.sizes.copyWithin(0, k, this.count);
    this.count -= k;
    this.first = index + 1;
    for (const i of [...this.conf.keys()]) if (i <= index) this.conf.delete(i);
  }

  /** Holds nothing; the log starts after entry `index` (of `term`) at `start_offset` (an installed snapshot). */
  reset(index: number, term: number, start_offset: number): void {
    this.count = 0;
    this.first = index + 1;
    this.prev_term = term;
    this.start_offset = start_offset;
    this.conf.clear();
  }

  /** Entry `index` (already pushed) is a membership change with this core entry data. */
  setConfChange(index: number, data: Buffer): void {
    assert(index >= this.first && index <= this.lastIndex, `no entry ${index} (held: ${this.first}..${this.lastIndex})`);
    this.conf.set(index, data);
  }

  /** The core's data of entry `index` if it is a membership change, else undefined. */
  confChange(index: number): Buffer | undefined {
    return this.conf.get(index);
  }

  /** The newest membership change at or below `index`: [its index, its data], or null. */
  lastConfChangeAtOrBelow(index: number): [number, Buffer] | null {
    let best: [number, Buffer] | null = null;
    for (const [i, d] of this.conf) if (i <= index && (best === null || i > best[0])) best = [i, d];
    return best;
  }

  /** The ordinal of the batch starting at `base_offset`, or 0 if no batch starts there. */
  indexOfBase(base_offset: number): number {
    let lo = this.first;
    let hi = this.lastIndex;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      const b = this.nextOffset(mid - 1);
      if (b === base_offset) return mid;
      if (b < base_offset) lo = mid + 1;
      else hi = mid - 1;
    }
    return 0;
  }

  private grow(): void {
    const n = this.terms.length * 2;
    const no = new Float64Array(n);
    no.set(this.next_offsets);
    const t = new Uint32Array(n);
    t.set(this.terms);
    const s = new Uint32Array(n);
    s.set(this.sizes);
    this.next_offsets = no;
    this.terms = t;
    this.sizes = s;
  }
}

/** Entries handed out by BatchLogStorage whose bytes are still on disk. */
const lazy = new WeakSet<Entry>();
let phantom = Buffer.alloc(64 * 1024);

/** A zero-filled view of `size` bytes (shared: never written, never sent). */
function phantomOf(size: number): Buffer {
  if (size > phantom.length) phantom = Buffer.alloc(Math.max(size, phantom.length * 2));
  return phantom.subarray(0, size);
}

/** True for an entry whose `data` is a placeholder: the driver must load its bytes before sending it. */
export function isLazyEntry(e: Entry): boolean {
  return lazy.has(e);
}

/** A snapshot's data on a cluster node: where the entry after it starts (JSON, for a person reading a trace). */
export function encodeSnapshotData(next_offset: number): Buffer {
  return Buffer.from(JSON.stringify({ next_offset }));
}

/** The offset a snapshot's data names; throws on anything else. */
export function decodeSnapshotData(data: Buffer): number {
  const v = (JSON.parse(data.toString('utf8')) as { next_offset?: unknown }).next_offset;
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) throw new RangeError(`snapshot data names no offset: ${data.toString('utf8').slice(0, 80)}`);
  return v;
}

/** The core's read-only view of the partition log, through the batch index. */
export class BatchLogStorage implements LogStorage {
  /** The membership in effect at firstIndex() - 1 (the snapshot's); set by the driver. */
  snapshot_conf: ConfState = { voters: [], learners: [] };

  constructor(readonly index: BatchIndex) {}

  firstIndex(): number {
    return this.index.firstIndex;
  }

  snapshot(): Snapshot {
    const i = this.index.firstIndex - 1;
    if (i === 0) return emptySnapshot(this.snapshot_conf);
    return { meta: { index: i, term: this.index.term(i)!, conf_state: this.snapshot_conf }, data: encodeSnapshotData(this.index.startOffset) };
  }

  lastIndex(): number {
    return this.index.lastIndex;
  }

  term(index: number): number | undefined {
    return this.index.term(index);
  }

  entries(lo: number, hi: number, max_bytes: number): Entry[] {
    assert(lo >= this.index.firstIndex && lo <= hi && hi <= this.index.lastIndex + 1, `entries [${lo}, ${hi}) outside [${this.index.firstIndex}, ${this.index.lastIndex + 1})`);
    const out: Entry[] = [];
    let size_bytes = 0;
    for (let i = lo; i < hi; i++) {
      const size = this.index.sizeBytes(i);
      size_bytes += size;
      if (out.length > 0 && size_bytes > max_bytes) break;
      const conf = this.index.confChange(i);
      if (conf !== undefined) {
        // The core reads a membership change's data (to apply it on append): it is kept in memory.
        out.push({ index: i, term: this.index.term(i)!, kind: 'conf_change', data: conf });
        continue;
      }
      const e: Entry = { index: i, term: this.index.term(i)!, kind: 'normal', data: phantomOf(size) };
      lazy.add(e);
      out.push(e);
    }
    return out;
  }
}
