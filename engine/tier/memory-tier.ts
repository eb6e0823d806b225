import { assert } from '../base/assert.js';
import { batchBaseOffset, batchLastOffsetDelta } from '../format/record-batch.js';
import { readBuffers } from '../base/buffer-pool.js';

/**
 * The memory tier: the hot tail of every partition, kept in RAM under one node-wide byte budget.
 *
 * It is write-through: a partition adds batches only after they are written to its segment file,
 * so evicting from memory never loses anything. The log owns appended batches (append() takes
 * ownership), so a run of batches that lies back to back in one parent buffer (one produce
 * request's record set) is kept as it is, without a copy, when the large runs added from that
 * parent fill at least 3/4 of it (one run, or several: a Raft follower's frame holds several entries with
 * a few bytes of framing between them): the parent's runs share its size as their cost against
 * the budget, so the budget still bounds the memory really retained (give or take one parent per
 * partition whose oldest runs were evicted while its newest are still held, and one per Raft
 * suffix cut that removed a parent's later runs but not its earlier ones). Copying every large batch cost a page fault per fresh 4 KiB and most of
 * the produce path's CPU at 64 KiB records. Small runs (up to SLAB_RUN_MAX_BYTES) and batches cut
 * from a larger network buffer are copied instead, into the partition's open **slab**: one owned
 * buffer (64 KiB, doubling per slab up to 1 MiB, and at most an eighth of the partition's fair
 * share) that takes batch after batch, charged to the budget at its whole size when it is created. Kept one chunk per small produce, the tier held
 * about 650 bytes of JavaScript objects per record (chunk, Buffer, ArrayBuffer, two arrays) until
 * evicted, and copying them out of the young generation was most of every scavenge at 2,000 x
 * 1 KiB records/s (docs/benchmarks.md, "Where the latency tail comes from"). A read inside one
 * chunk is a zero-copy slice. (So a reader still holding a slice keeps its whole chunk alive after
 * eviction, a slab up to 1 MiB: the budget bounds what the tier holds, not what readers hold.)
 *
 * Fairness: when the budget is exceeded, the partition furthest above its fair share
 * (budget / partitions) loses its oldest chunk first, so one busy partition cannot push every
 * other partition's tail out of memory.
 */
/** A read continues into the next chunk (copying) only while it holds less than this. */
const SPAN_MIN_BYTES = 256 * 1024;
/** Runs of batches up to this size are copied into the partition's slab rather than kept as they are. */
const SLAB_RUN_MAX_BYTES = 16 * 1024;
/** A partition's first slab; each next one is twice as large, up to SLAB_MAX_BYTES (and at most an eighth of the partition's fair share of the budget). */
const SLAB_MIN_BYTES = 64 * 1024;
const SLAB_MAX_BYTES = 1024 * 1024;

export class MemoryTier {
  private tails = new Set<PartitionTail>();
  private used = 0;

  constructor(readonly budget_bytes: number) {
    assert(Number.isSafeInteger(budget_bytes) && budget_bytes >= 0, 'memory tier budget must be a non-negative integer');
  }

  get used_bytes(): number {
    return this.used;
  }

  get partition_count(): number {
    return this.tails.size;
  }

  register(name: string): PartitionTail {
    const t = new PartitionTail(this, name);
    this.tails.add(t);
    return t;
  }

  unregister(t: PartitionTail): void {
    if (!this.tails.delete(t)) return;
    this.used -= t.bytes;
    t.reset();
  }

  /** Called by a tail after its size changed by `delta` bytes; evicts until within budget. */
  account(delta: number): void {
    this.used += delta;
    while (this.used > this.budget_bytes) {
      const fair = this.budget_bytes / Math.max(1, this.tails.size);
      let victim: PartitionTail | null = null;
      for (const t of this.tails) {
        if (t.bytes === 0) continue;
        if (victim === null || t.bytes - fair > victim.bytes - fair) victim = t;
      }
      assert(victim !== null, 'memory tier over budget with nothing to evict');
      this.used -= victim.evictOldest();
    }
  }
}

interface Chunk {
  buf: Buffer;
  /** Bytes of buf holding batches: all of it, except in a slab still being filled. */
  len: number;
  /** A slab: an owned buffer that later batches of the partition are copied into while they fit. */
  slab: boolean;
  /** Bytes charged to the budget: buf's length, or its whole parent's when buf is a slice kept as is. */
  cost: number;
  /** Base offset of each batch in the chunk, ascending. */
  bases: number[];
  /** Byte position of each batch within buf. */
  positions: number[];
  next_offset: number;
}

/** One partition's cached tail: contiguous chunks covering [first_offset, end_offset). */
export class PartitionTail {
  private chunks: Chunk[] = [];
  private head = 0;
  /** Size of the next slab this partition opens. */
  private next_slab = SLAB_MIN_BYTES;
  bytes = 0;
  hits = 0;

  constructor(private readonly tier: MemoryTier, readonly name: string) {}

  get first_offset(): number {
    return this.head < this.chunks.length ? this.chunks[this.head]!.bases[0]! : -1;
  }

  get end_offset(): number {
    return this.head < this.chunks.length ? this.chunks[this.chunks.length - 1]!.next_offset : -1;
  }

  /**
   * Adds batches just written to the segment (already stamped with offsets). Batches that do not
   * continue the cached range (after a truncation or a reopen) restart the cache.
   */
  add(batches: readonly Buffer[], total_bytes: number): void {
    if (batches.length === 0 || total_bytes > this.tier.budget_bytes) {
      if (total_bytes > this.tier.budget_bytes) this.dropAll();
      return;
    }
    const first = batchBaseOffset(batches[0]!);
    if (this.end_offset !== -1 && first !== this.end_offset) this.dropAll();
    let next_offset = first;
    let added = 0;
    /** Batches waiting to be copied into one owned chunk. */
    let copy_from = -1;
    let copy_bytes = 0;
    const flushCopies = (to: number) => {
      if (copy_from < 0) return;
      // Checked before anything changes, so that a broken run leaves the accounting as it was.
      let expect_base = next_offset;
      for (let k = copy_from; k < to; k++) {
        const base = batchBaseOffset(batches[k]!);
        assert(base === expect_base, `memory tier: batch ${base} does not follow ${expect_base}`);
        expect_base = base + batchLastOffsetDelta(batches[k]!) + 1;
      }
      let c = this.head < this.chunks.length ? this.chunks[this.chunks.length - 1]! : undefined;
      if (c === undefined || !c.slab || c.next_offset !== next_offset || c.len + copy_bytes > c.buf.length) {
        // At most an eighth of the partition's fair share, so that many quiet partitions' open slabs
        // do not take the budget from the busy ones.
        const share = Math.floor(this.tier.budget_bytes / 8 / Math.max(1, this.tier.partition_count));
        const size = Math.max(copy_bytes, Math.min(this.next_slab, share));
        this.next_slab = Math.min(SLAB_MAX_BYTES, this.next_slab * 2);
        c = { buf: Buffer.allocUnsafeSlow(size), len: 0, slab: true, cost: size, bases: [], positions: [], next_offset };
        this.chunks.push(c);
        this.bytes += size;
        added += size;
      }
      for (let k = copy_from; k < to; k++) this.appendToSlab(c, batches[k]!);
      next_offset = c.next_offset;
      copy_from = -1;
      copy_bytes = 0;
    };
    // The runs: the longest stretches of batches that lie back to back in one parent buffer.
    const runs: Array<{ from: number; to: number; bytes: number; parent: ArrayBufferLike }> = [];
    for (let i = 0; i < batches.length; ) {
      const b = batches[i]!;
      let j = i + 1;
      let end = b.byteOffset + b.length;
      while (j < batches.length && batches[j]!.buffer === b.buffer && batches[j]!.byteOffset === end) end += batches[j++]!.length;
      runs.push({ from: i, to: j, bytes: end - b.byteOffset, parent: b.buffer });
      i = j;
    }
    // Bytes of the large runs in each parent buffer: a Raft follower's frame holds several entries
    // with a few bytes of framing between them, so no single run fills it, but together they do.
    // (Small runs are copied, so they do not count towards keeping the parent.)
    const large = new Map<ArrayBufferLike, number>();
    for (const r of runs) if (r.bytes > SLAB_RUN_MAX_BYTES) large.set(r.parent, (large.get(r.parent) ?? 0) + r.bytes);
    for (const r of runs) {
      const parent = r.parent.byteLength;
      const in_parent = large.get(r.parent) ?? 0;
      if (r.bytes > SLAB_RUN_MAX_BYTES && in_parent * 4 >= parent * 3 && parent <= this.tier.budget_bytes) {
        flushCopies(r.from);
        // The large runs of one parent share its cost in proportion to their size (together: the parent).
        const cost = Math.ceil((parent * r.bytes) / in_parent);
        next_offset = this.push(Buffer.from(r.parent, batches[r.from]!.byteOffset, r.bytes), cost, batches, r.from, r.to, next_offset);
        added += cost;
      } else {
        if (copy_from < 0) copy_from = r.from;
        copy_bytes += r.bytes;
      }
    }
    flushCopies(batches.length);
    this.tier.account(added);
  }

  /** Appends a chunk holding batches[from, to) back to back in `buf`; returns the next offset. */
  private push(buf: Buffer, cost: number, batches: readonly Buffer[], from: number, to: number, next_offset: number): number {
    const bases: number[] = [];
    const positions: number[] = [];
    let pos = 0;
    for (let k = from; k < to; k++) {
      const b = batches[k]!;
      const base = batchBaseOffset(b);
      assert(base === next_offset, `memory tier: batch ${base} does not follow ${next_offset}`);
      bases.push(base);
      positions.push(pos);
      next_offset = base + batchLastOffsetDelta(b) + 1;
      pos += b.length;
    }
    assert(pos === buf.length, 'memory tier: chunk size mismatch');
    this.chunks.push({ buf, len: buf.length, slab: false, cost, bases, positions, next_offset });
    this.bytes += cost;
    return next_offset;
  }

  /** Copies batch `b` to the end of slab `c` (the caller checked that it fits and continues the slab). */
  private appendToSlab(c: Chunk, b: Buffer): void {
    const base = batchBaseOffset(b);
    c.bases.push(base);
    c.positions.push(c.len);
    c.len += b.copy(c.buf, c.len);
    c.next_offset = base + batchLastOffsetDelta(b) + 1;
  }

  /**
   * Whole batches from the one containing `offset`, up to max_bytes (at least one), below `hw`.
   * Returns null when `offset` is not in memory (the caller reads the SSD tier).
   */
  read(offset: number, max_bytes: number, hw: number): { records: Buffer; next_offset: number; backing: Buffer | null } | null {
    if (this.head >= this.chunks.length || offset < this.first_offset || offset >= this.end_offset) return null;
    let ci = this.findChunk(offset);
    const parts: Buffer[] = [];
    let size = 0;
    let next_offset = offset;
    let bi = findBatch(this.chunks[ci]!.bases, offset);
    for (; ci < this.chunks.length; ci++, bi = 0) {
      const c = this.chunks[ci]!;
      const start = c.positions[bi]!;
      let end = start;
      for (; bi < c.bases.length; bi++) {
        if (c.bases[bi]! >= hw) break;
        const batch_end = bi + 1 < c.positions.length ? c.positions[bi + 1]! : c.len;
        if (size + (end - start) > 0 && size + (batch_end - start) > max_bytes) break;
        end = batch_end;
        next_offset = bi + 1 < c.bases.length ? c.bases[bi + 1]! : c.next_offset;
      }
      if (end > start) {
        parts.push(c.buf.subarray(start, end));
        size += end - start;
      }
      if (bi < c.bases.length) break; // stopped inside this chunk (hw or max_bytes)
      // A read may return less than max_bytes: one chunk's worth, if it is not small, goes out as
      // a zero-copy slice rather than being copied together with the next chunks (every reader of
      // the hot tail would pay that copy).
      if (size >= Math.min(max_bytes, SPAN_MIN_BYTES)) break;
    }
    if (parts.length === 0) return null;
    this.hits++;
    if (parts.length === 1) return { records: parts[0]!, next_offset, backing: null };
    // Spanning chunks: one copy into a pooled buffer (fresh multi-MiB buffers are slow to touch).
    const backing = readBuffers.take(size);
    let at = 0;
    for (const part of parts) at += part.copy(backing, at);
    return { records: backing.subarray(0, size), next_offset, backing };
  }

  private findChunk(offset: number): number {
    let lo = this.head;
    let hi = this.chunks.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (this.chunks[mid]!.bases[0]! <= offset) lo = mid;
      else hi = mid - 1;
    }
    return lo;
  }

  /** Drops cached batches at or after `offset` (log truncation). */
  truncateTo(offset: number): void {
    if (this.head >= this.chunks.length || offset >= this.end_offset) return;
    // Chunks are dropped whole; a chunk straddling `offset` goes too (it will be re-read from SSD).
    let freed = 0;
    while (this.chunks.length > this.head && this.chunks[this.chunks.length - 1]!.next_offset > offset) {
      const c = this.chunks.pop()!;
      if (c.bases[0]! < offset) {
        freed += c.cost;
        break;
      }
      freed += c.cost;
    }
    this.bytes -= freed;
    this.tier.account(-freed);
    if (this.head >= this.chunks.length) this.reset();
  }

  /** Evicts the oldest chunk; returns bytes freed. */
  evictOldest(): number {
    const c = this.chunks[this.head];
    if (!c) return 0;
    this.chunks[this.head] = undefined as unknown as Chunk;
    this.head++;
    this.bytes -= c.cost;
    if (this.head >= this.chunks.length) {
      this.chunks = [];
      this.head = 0;
    } else if (this.head > 64 && this.head * 2 > this.chunks.length) {
      this.chunks = this.chunks.slice(this.head);
      this.head = 0;
    }
    return c.cost;
  }

  private dropAll(): void {
    const freed = this.bytes;
    this.reset();
    this.tier.account(-freed);
  }

  reset(): void {
    this.chunks = [];
    this.head = 0;
    this.bytes = 0;
    this.next_slab = SLAB_MIN_BYTES;
  }
}

function findBatch(bases: readonly number[], offset: number): number {
  let lo = 0;
  let hi = bases.length - 1;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if (bases[mid]! <= offset) lo = mid;
    else hi = mid - 1;
  }
  return lo;
}
