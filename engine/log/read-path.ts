import { corruptSegment } from '../base/errors.js';
import { limits } from '../base/limits.js';
import { LOG_OVERHEAD_BYTES, batchBaseOffset, batchLastOffsetDelta, batchSizeAt, checkBatch } from '../format/record-batch.js';

/**
 * Anything that holds a segment's bytes and can read a range of them: a local segment file (SSD
 * tier) or a segment in the archive tier. The read path below is the same for both.
 */
export interface RangeSource {
  readonly base_offset: number;
  /** Committed bytes: only [0, size_bytes) is ever read. */
  readonly size_bytes: number;
  /** File or URL named in errors. */
  readonly path: string;
  readRange(position: number, length: number): Promise<Buffer>;
}

export interface SelectedBatches {
  records: Buffer;
  next_offset: number;
}

const READ_CHUNK_MIN_BYTES = 64 * 1024;

/**
 * Whole batches of `src` from the one containing `offset`, up to `max_bytes` (at least one batch),
 * below `hw`. Starts at `start_position`, which an index entry says holds the batch `expected_base`;
 * if it does not (a stale entry), the index is not trusted and the segment is walked from its start.
 * Every returned batch is CRC-checked when `verify_crc` is set. Returns null when no batch in this
 * source reaches `offset` (the offset lies past its last batch).
 */
export async function readBatches(
  src: RangeSource,
  start_position: number,
  expected_base: number,
  offset: number,
  max_bytes: number,
  hw: number,
  verify_crc: boolean,
): Promise<SelectedBatches | null> {
  const seg_size = src.size_bytes;
  let pos = start_position;
  let buf = await src.readRange(pos, Math.min(seg_size - pos, Math.max(READ_CHUNK_MIN_BYTES, max_bytes + limits.index_interval_bytes * 2)));
  // Pair assertion on the index: the entry must point at the start of the batch it names.
  if (pos > 0 && (buf.length < LOG_OVERHEAD_BYTES || batchBaseOffset(buf, 0) !== expected_base)) {
    return readBatches(src, 0, src.base_offset, offset, max_bytes, hw, verify_crc);
  }
  let off = 0;
  let first = -1;
  let end = -1;
  let next_offset = offset;
  while (off < buf.length) {
    const size = batchSizeAt(buf, off);
    if (size < 0 || off + size > buf.length) {
      if (first !== -1 || pos + off >= seg_size) break;
      // The batch we need runs past this chunk: read again starting at it, big enough for it.
      pos += off;
      buf = await src.readRange(pos, Math.min(seg_size - pos, Math.max(size, READ_CHUNK_MIN_BYTES, max_bytes)));
      off = 0;
      if (batchSizeAt(buf, 0) > buf.length) throw corruptSegment(src.path, pos, 'batch runs past the committed end of the segment');
      continue;
    }
    const base = batchBaseOffset(buf, off);
    const last = base + batchLastOffsetDelta(buf, off);
    if (base >= hw) break;
    if (last < offset) {
      off += size;
      continue;
    }
    if (first !== -1 && off + size - first > max_bytes) break;
    if (verify_crc) {
      const problem = checkBatch(buf, off, size);
      if (problem !== null) throw corruptSegment(src.path, pos + off, problem);
    }
    if (first === -1) first = off;
    end = off + size;
    next_offset = last + 1;
    off += size;
  }
  return first === -1 ? null : { records: buf.subarray(first, end), next_offset };
}
