/**
 * The in-memory model behind property-tests/segment-store.prop.test.ts, and an independent walker
 * over segment files that predicts what crash recovery must keep.
 *
 * The model is deliberately naive: a list of batches exactly as they must be stored (bytes after
 * the log stamped offset and leader epoch), a log start offset moved only by retention, and
 * derived queries written the obvious way (linear scans). It never looks at engine internals.
 */
import { LOG_OVERHEAD_BYTES, BATCH_HEADER_BYTES, checkBatch, batchBaseOffset, batchLastOffsetDelta } from '../../engine/index.js';

export interface ModelHeader {
  key: string;
  value: Buffer | null;
}

export interface ModelRecord {
  offset: number;
  ts: number;
  key: Buffer | null;
  value: Buffer | null;
  headers: ModelHeader[];
}

export interface ModelBatch {
  base: number;
  /** One past the last offset. */
  next: number;
  /** The batch as it must be stored and returned: offset and leader epoch stamped, nothing else changed. */
  bytes: Buffer;
  records: ModelRecord[];
}

export class LogModel {
  readonly batches: ModelBatch[] = [];
  /** Moved only by retention. */
  log_start = 0;

  get hw(): number {
    return this.batches.at(-1)?.next ?? this.first_base;
  }

  /** Offset of the first batch ever kept (0 until something is retained). */
  private first_base = 0;

  push(b: ModelBatch): void {
    if (b.base !== this.hw) throw new Error(`model: batch at ${b.base} does not follow ${this.hw}`);
    this.batches.push(b);
  }

  /** Keeps batches below `hw` (must be a batch boundary): what survived a crash. */
  cutTo(hw: number): void {
    const i = this.batches.findIndex((b) => b.base >= hw);
    if (i === -1) {
      if (hw !== this.hw) throw new Error(`model: ${hw} is not a batch boundary (hw ${this.hw})`);
      return;
    }
    if (this.batches[i]!.base !== hw) throw new Error(`model: ${hw} is not a batch boundary`);
    this.batches.length = i;
  }

  /** Index of the batch holding `offset`, or -1. */
  batchIndex(offset: number): number {
    let lo = 0;
    let hi = this.batches.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      const b = this.batches[mid]!;
      if (offset < b.base) hi = mid - 1;
      else if (offset >= b.next) lo = mid + 1;
      else return mid;
    }
    return -1;
  }

  batchAt(offset: number): ModelBatch | undefined {
    const i = this.batchIndex(offset);
    return i === -1 ? undefined : this.batches[i];
  }

  /** Batches whose offsets lie in [from, to). */
  batchesIn(from: number, to: number): ModelBatch[] {
    return this.batches.filter((b) => b.base >= from && b.next <= to);
  }

  /** Live records (from the log start to the high watermark), in offset order. */
  liveRecords(): ModelRecord[] {
    const out: ModelRecord[] = [];
    for (const b of this.batches) if (b.base >= this.log_start) out.push(...b.records);
    return out;
  }

  /** Kafka's ListOffsets by timestamp: the first live offset whose record timestamp is >= ts, else null. */
  offsetForTimestamp(ts: number): number | null {
    for (const b of this.batches) {
      if (b.base < this.log_start) continue;
      for (const r of b.records) if (r.ts >= ts) return r.offset;
    }
    return null;
  }

  /** Max record timestamp over batches in [from, to), -1 if none. */
  maxTs(from: number, to: number): number {
    let m = -1;
    for (const b of this.batches) {
      if (b.base < from || b.base >= to) continue;
      for (const r of b.records) if (r.ts > m) m = r.ts;
    }
    return m;
  }

  /** Forgets batches below the new log start (retention). */
  retainFrom(log_start: number): void {
    if (log_start < this.log_start) throw new Error(`model: log start may not move back (${this.log_start} -> ${log_start})`);
    this.log_start = log_start;
    const i = this.batches.findIndex((b) => b.base >= log_start);
    this.batches.splice(0, i === -1 ? this.batches.length : i);
    this.first_base = log_start;
  }
}

export interface WalkedBatch {
  position: number;
  size: number;
  base: number;
  next: number;
}

export interface WalkResult {
  batches: WalkedBatch[];
  /** End of the last sound batch. */
  end: number;
  /** One past the last offset of the last sound batch (the segment base if none). */
  next: number;
  /** Where and why the walk stopped early, or null when it reached the end of the bytes. */
  fault: { position: number; reason: string } | null;
}

/**
 * Walks a segment file's bytes: framing, magic, CRC (checkBatch) and offset continuity from
 * `base`, stopping at the first batch that fails any of them. This is the oracle for recovery:
 * after a crash the engine must keep exactly the sound prefix of the damaged active segment.
 */
export function walkSegment(bytes: Buffer, base: number): WalkResult {
  const batches: WalkedBatch[] = [];
  let pos = 0;
  let next = base;
  let fault: WalkResult['fault'] = null;
  while (pos < bytes.length) {
    const avail = bytes.length - pos;
    if (avail < BATCH_HEADER_BYTES) {
      fault = { position: pos, reason: `only ${avail} bytes left` };
      break;
    }
    const size = bytes.readInt32BE(pos + 8) + LOG_OVERHEAD_BYTES;
    if (size < BATCH_HEADER_BYTES || size > avail) {
      fault = { position: pos, reason: `batch size ${size} with ${avail} bytes left` };
      break;
    }
    const problem = checkBatch(bytes, pos, size);
    if (problem !== null) {
      fault = { position: pos, reason: problem };
      break;
    }
    const b = batchBaseOffset(bytes, pos);
    if (b !== next) {
      fault = { position: pos, reason: `base offset ${b}, expected ${next}` };
      break;
    }
    const n = b + batchLastOffsetDelta(bytes, pos) + 1;
    batches.push({ position: pos, size, base: b, next: n });
    next = n;
    pos += size;
  }
  return { batches, end: pos, next, fault };
}
