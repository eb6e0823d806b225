import { readBuffers } from '../base/buffer-pool.js';
import { limits } from '../base/limits.js';
import { crc32c } from '../format/crc32c.js';
import {
  BATCH_HEADER_BYTES,
  F_BASE_TIMESTAMP,
  F_MAGIC,
  F_RECORD_COUNT,
  LOG_OVERHEAD_BYTES,
  MAGIC_V2,
  batchBaseOffset,
  batchLastOffsetDelta,
  batchLeaderEpoch,
  batchMaxTimestamp,
  batchSizeAt,
  checkBatch,
} from '../format/record-batch.js';

/*
 * A full check of one segment's bytes that, unlike scanSegment (recovery's scan, which stops at the
 * first fault), goes on past faults: after a bad batch it resynchronises at the next position that
 * holds a sound batch and reports the bytes it skipped. It also computes the CRC-32C of the whole
 * content in the same single sequential pass, for comparing an archived copy with its sidecar.
 * Used by `relaylog verify` on local segment files and archived segments alike. Pure reading.
 */

/** Any holder of a segment's bytes read front to back: a local file or an archived object. */
export interface SequentialSource {
  readonly size_bytes: number;
  /** Reads [position, position + length) into `into` at `offset`; returns the bytes read (fewer only at the end). */
  readInto(into: Buffer, offset: number, position: number, length: number): Promise<number>;
}

export interface WalkedBatch {
  position: number;
  size_bytes: number;
  base_offset: number;
  last_offset: number;
  base_timestamp_ms: number;
  max_timestamp_ms: number;
  record_count: number;
  leader_epoch: number;
}

export interface BatchFault {
  /** Byte position in the segment where the faulty bytes start. */
  position: number;
  /**
   * The offset the bytes at `position` should hold: the one continuity expects, else the base
   * offset in the batch header when one is readable there, else null.
   */
  offset: number | null;
  reason: string;
  /** Bytes from `position` to the next sound batch (or to the end of the segment if none follows). */
  skipped_bytes: number;
  /** Nothing sound follows: the fault runs to the end (a batch cut off, zero fill, garbage). */
  at_tail: boolean;
}

export interface SegmentWalk {
  size_bytes: number;
  /** CRC-32C of the whole content (every byte, sound or not); 0 when not asked for. */
  crc32c: number;
  batches: number;
  records: number;
  /** One past the last offset of the last sound batch, or null if no sound batch was found. */
  next_offset: number | null;
  /** Timestamp of the first record of the first sound batch (its baseTimestamp), -1 if none. */
  first_timestamp_ms: number;
  max_timestamp_ms: number;
  /** End of the last sound batch. */
  sound_end_position: number;
  faults: BatchFault[];
  /** Faults found beyond `max_faults` (counted, not listed). */
  faults_not_listed: number;
}

const CHUNK_BYTES = 8 * 1024 * 1024;
const MAX_BATCH_BYTES = limits.batch_size_ceiling_bytes + BATCH_HEADER_BYTES;

/** Room kept in front of each read-ahead chunk for the window's unread tail (a batch cut by the chunk end). */
const SPILL_BYTES = 1024 * 1024;

/**
 * A window over the source that moves forward (a rare step back re-reads); every byte enters the
 * whole-content CRC exactly once, in order. Two pooled buffers take turns: while the walk checks
 * the chunk in one, the next chunk is already being read into the other (read-ahead, so CRC work
 * and I/O overlap), behind a spill area where the current window's unread tail is copied when the
 * buffers swap. Nothing is allocated per chunk (fresh buffers cost a page fault per 4 KiB: see
 * engine/base/buffer-pool.ts).
 */
class ForwardWindow {
  private readonly chunk: number;
  private readonly spill: number;
  private mem: Buffer;
  private spare: Buffer | null = null;
  /** The window is mem[off, off + len). */
  private off = 0;
  private len = 0;
  /** Source position of the window's first byte. */
  start = 0;
  crc = 0;
  /** Source bytes that have entered the window (and the CRC). */
  private read_to = 0;
  /** The read-ahead under way: source [read_to, read_to + chunk) into spare[spill, ...). */
  private ahead: Promise<number> | null = null;

  constructor(private readonly src: SequentialSource, private readonly on_read?: (bytes: number) => void, private readonly whole_crc = true) {
    this.chunk = Math.min(CHUNK_BYTES, Math.max(src.size_bytes, 1));
    this.spill = Math.min(SPILL_BYTES, this.chunk);
    this.mem = readBuffers.take(this.spill + this.chunk);
  }

  get size(): number {
    return this.src.size_bytes;
  }

  /** The window's bytes; valid until the next ensure(). */
  get buf(): Buffer {
    return this.mem.subarray(this.off, this.off + this.len);
  }

  /** Makes [pos, pos + n) (clipped to the end) available; returns the index of pos in `buf`. */
  async ensure(pos: number, n: number): Promise<number> {
    const want_end = Math.min(this.size, pos + n);
    if (pos >= this.start && want_end <= this.start + this.len) return pos - this.start;
    if (pos < this.start) {
      // A step back (a resync search after a failed look-ahead): read those bytes again; they
      // were counted in the CRC already.
      const back = this.start - pos;
      const m = Buffer.allocUnsafe(back + this.len);
      if ((await this.src.readInto(m, 0, pos, back)) < back) throw new Error(`read fewer than ${back} bytes at position ${pos}`);
      this.mem.copy(m, back, this.off, this.off + this.len);
      this.replace(m, 0, back + this.len);
      this.start = pos;
      return this.ensure(pos, n);
    }
    // Forward: what lies before pos is done with.
    const drop = Math.min(pos - this.start, this.len);
    this.off += drop;
    this.len -= drop;
    this.start += drop;
    while (this.start + this.len < want_end) await this.more();
    return pos - this.start;
  }

  private startAhead(): void {
    if (this.ahead !== null || this.read_to >= this.size) return;
    if (this.spare === null || this.spare.length < this.spill + this.chunk) {
      if (this.spare) readBuffers.give(this.spare);
      this.spare = readBuffers.take(this.spill + this.chunk);
    }
    const length = Math.min(this.chunk, this.size - this.read_to);
    const p = this.src.readInto(this.spare, this.spill, this.read_to, length).then((got) => {
      if (got < length) throw new Error(`read ${got} of ${length} bytes at position ${this.read_to} (the file shrank while being verified?)`);
      return got;
    });
    p.catch(() => undefined); // awaited by more() or release(); never an unhandled rejection
    this.ahead = p;
  }

  /** Appends the next chunk of the source to the window (the one read ahead), then reads ahead again. */
  private async more(): Promise<void> {
    this.startAhead();
    if (this.ahead === null) throw new Error(`no bytes left to read at position ${this.read_to} of ${this.size}`);
    const got = await this.ahead;
    this.ahead = null;
    const spare = this.spare!;
    const fresh = spare.subarray(this.spill, this.spill + got);
    if (this.whole_crc) this.crc = crc32c(fresh, this.crc);
    if (this.len <= this.spill) {
      // The usual case: the unread tail moves in front of the new chunk and the buffers swap.
      this.mem.copy(spare, this.spill - this.len, this.off, this.off + this.len);
      this.spare = this.mem;
      this.mem = spare;
      this.off = this.spill - this.len;
      this.len += got;
    } else {
      // A tail bigger than the spill area (a batch of more than a MiB): one buffer for both.
      const m = readBuffers.take(Math.max(this.spill + this.chunk, this.len + got));
      this.mem.copy(m, 0, this.off, this.off + this.len);
      fresh.copy(m, this.len);
      this.replace(m, 0, this.len + got);
    }
    this.read_to += got;
    this.on_read?.(got);
    this.startAhead();
  }

  private replace(m: Buffer, off: number, len: number): void {
    readBuffers.give(this.mem);
    this.mem = m;
    this.off = off;
    this.len = len;
  }

  /** Reads whatever is left, for the whole-content CRC. */
  async drain(): Promise<void> {
    while (this.read_to < this.size) {
      this.off += this.len; // nothing in the window is needed any more
      this.start += this.len;
      this.len = 0;
      await this.more();
    }
  }

  /** Gives the buffers back (after any read still writing into one has finished). */
  async release(): Promise<void> {
    if (this.ahead) await this.ahead.catch(() => 0);
    this.ahead = null;
    readBuffers.give(this.mem);
    if (this.spare) readBuffers.give(this.spare);
    this.mem = Buffer.alloc(0);
    this.spare = null;
    this.len = 0;
  }
}

/** Why the bytes at `pos` are not a sound batch, or null when they are (`avail` bytes remain). */
async function problemAt(w: ForwardWindow, pos: number): Promise<{ problem: string | null; size: number }> {
  const avail = w.size - pos;
  if (avail < BATCH_HEADER_BYTES) return { problem: `only ${avail} bytes left, a batch header needs ${BATCH_HEADER_BYTES}`, size: -1 };
  let i = await w.ensure(pos, BATCH_HEADER_BYTES);
  const size = batchSizeAt(w.buf, i);
  if (size < BATCH_HEADER_BYTES) return { problem: `batchLength ${size - LOG_OVERHEAD_BYTES} is shorter than a header`, size };
  if (size > MAX_BATCH_BYTES) return { problem: `batch length ${size} is larger than any batch relaylog writes`, size };
  if (size > avail) return { problem: `batch of ${size} bytes runs past the end of the segment (${avail} bytes left)`, size };
  i = await w.ensure(pos, size);
  return { problem: checkBatch(w.buf, i, size), size };
}

/** The first position at or after `from` that starts a sound batch, or the end of the source. */
async function nextSoundBatch(w: ForwardWindow, from: number): Promise<number> {
  let p = from;
  while (p + BATCH_HEADER_BYTES <= w.size) {
    // Scan the bytes in the window without awaiting per byte; only a plausible header costs a check.
    let i = await w.ensure(p, BATCH_HEADER_BYTES);
    const buf = w.buf;
    let candidate = -1;
    for (; i + BATCH_HEADER_BYTES <= buf.length; i++, p++) {
      if (buf[i + F_MAGIC] !== MAGIC_V2) continue;
      const size = batchSizeAt(buf, i);
      if (size < BATCH_HEADER_BYTES || size > MAX_BATCH_BYTES || p + size > w.size) continue;
      candidate = p;
      break;
    }
    if (candidate < 0) continue; // the window is used up: ensure() moves it on
    if ((await problemAt(w, candidate)).problem === null) return candidate;
    p = candidate + 1;
  }
  return w.size;
}

/**
 * Walks every batch of `src`: framing, magic, CRC-32C, record count against lastOffsetDelta, and
 * offset continuity from `expected_offset` (null: take the first batch's base offset). A fault is
 * recorded and the walk resumes at the next sound batch; continuity is then re-established from
 * that batch (a gap or overlap after it is reported again). At most `max_faults` faults are listed.
 */
export async function walkSegment(
  src: SequentialSource,
  opts: {
    expected_offset: number | null;
    on_batch?: (b: WalkedBatch) => void;
    on_read?: (bytes: number) => void;
    max_faults?: number;
    /** Compute the CRC-32C of the whole content (default true; its cost is about that of the batch CRCs). */
    whole_crc?: boolean;
  },
): Promise<SegmentWalk> {
  const w = new ForwardWindow(src, opts.on_read, opts.whole_crc ?? true);
  try {
    return await walk(w, opts);
  } finally {
    await w.release();
  }
}

async function walk(w: ForwardWindow, opts: { expected_offset: number | null; on_batch?: (b: WalkedBatch) => void; max_faults?: number }): Promise<SegmentWalk> {
  const max_faults = opts.max_faults ?? 1000;
  const faults: BatchFault[] = [];
  let not_listed = 0;
  const fault = (f: BatchFault) => (faults.length < max_faults ? faults.push(f) : not_listed++);
  let expected = opts.expected_offset;
  let next_offset: number | null = null;
  let batches = 0;
  let records = 0;
  let first_ts = -1;
  let max_ts = -1;
  let sound_end = 0;
  let pos = 0;
  while (pos < w.size) {
    const { problem, size } = await problemAt(w, pos);
    if (problem !== null) {
      let header_base: number | null = null;
      if (w.size - pos >= LOG_OVERHEAD_BYTES) header_base = batchBaseOffset(w.buf, await w.ensure(pos, LOG_OVERHEAD_BYTES));
      // A batch whose framing holds (a flipped byte under the CRC) usually has a sound batch right
      // after it: try there first, then search byte by byte.
      let next = -1;
      if (size >= BATCH_HEADER_BYTES && pos + size <= w.size && (pos + size === w.size || (await problemAt(w, pos + size)).problem === null)) next = pos + size;
      if (next < 0) next = await nextSoundBatch(w, pos + 1);
      fault({ position: pos, offset: expected ?? header_base, reason: problem, skipped_bytes: next - pos, at_tail: next >= w.size });
      expected = null;
      pos = next;
      continue;
    }
    const i = await w.ensure(pos, size);
    const base = batchBaseOffset(w.buf, i);
    const last = base + batchLastOffsetDelta(w.buf, i);
    if (expected !== null && base !== expected) {
      fault({ position: pos, offset: expected, reason: `batch base offset ${base}, expected ${expected} (offsets must be contiguous)`, skipped_bytes: 0, at_tail: false });
    }
    const ts = batchMaxTimestamp(w.buf, i);
    const count = w.buf.readInt32BE(i + F_RECORD_COUNT);
    const base_ts = Number(w.buf.readBigInt64BE(i + F_BASE_TIMESTAMP));
    opts.on_batch?.({ position: pos, size_bytes: size, base_offset: base, last_offset: last, base_timestamp_ms: base_ts, max_timestamp_ms: ts, record_count: count, leader_epoch: batchLeaderEpoch(w.buf, i) });
    if (batches === 0) first_ts = base_ts;
    if (ts > max_ts) max_ts = ts;
    batches++;
    records += count;
    expected = last + 1;
    next_offset = last + 1;
    pos += size;
    sound_end = pos;
  }
  await w.drain();
  return {
    size_bytes: w.size,
    crc32c: w.crc,
    batches,
    records,
    next_offset,
    first_timestamp_ms: first_ts,
    max_timestamp_ms: max_ts,
    sound_end_position: sound_end,
    faults,
    faults_not_listed: not_listed,
  };
}
