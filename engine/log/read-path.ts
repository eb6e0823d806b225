import { corruptSegment } from '../base/errors.js';
import { limits } from '../base/limits.js';
import { LOG_OVERHEAD_BYTES, batchBaseOffset, batchLastOffsetDelta, batchSizeAt, checkBatch } from '../format/record-batch.js';
import { readBuffers } from '../base/buffer-pool.js';
import type { VerifiedRanges } from './verified-ranges.js';

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
  /** Reads [position, position+length) into `into`; returns the bytes read (fewer only at EOF). */
  readInto(into: Buffer, position: number, length: number): Promise<number>;
  /** Ranges already CRC-checked in this process, or null to check every batch every time. */
  readonly verified: VerifiedRanges | null;
}

export interface SelectedBatches {
  records: Buffer;
  next_offset: number;
  /** The pooled buffer `records` lives in; give it back with readBuffers.give() once done. */
  backing: Buffer | null;
}

const READ_CHUNK_MIN_BYTES = 64 * 1024;

async function readChunk(src: RangeSource, position: number, length: number): Promise<{ buf: Buffer; backing: Buffer }> {
  const backing = readBuffers.take(length);
  const n = await src.readInto(backing, position, length);
  return { buf: backing.subarray(0, n), backing };
}

/**
 * Whole batches of `src` from the one containing `offset`, up to `max_bytes` (at least one batch),
 * below `hw`. Starts at `start_position`, which an index entry says holds the batch `expected_base`;
 * if it does not (a stale entry), the index is not trusted and the segment is walked from its start.
 * Every returned batch has passed its CRC check in this process (now, or earlier per `src.verified`).
 * Returns null when no batch in this source reaches `offset` (it lies past its last batch).
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
  let { buf, backing } = await readChunk(src, pos, Math.min(seg_size - pos, Math.max(READ_CHUNK_MIN_BYTES, max_bytes + limits.index_interval_bytes * 2)));
  // Pair assertion on the index: the entry must point at the start of the batch it names.
  if (pos > 0 && (buf.length < LOG_OVERHEAD_BYTES || batchBaseOffset(buf, 0) !== expected_base)) {
    readBuffers.give(backing);
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
      readBuffers.give(backing);
      ({ buf, backing } = await readChunk(src, pos, Math.min(seg_size - pos, Math.max(size, READ_CHUNK_MIN_BYTES, max_bytes))));
      off = 0;
      if (batchSizeAt(buf, 0) > buf.length) {
        readBuffers.give(backing);
        throw corruptSegment(src.path, pos, 'batch runs past the committed end of the segment');
      }
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
    if (verify_crc && !src.verified?.covers(pos + off, pos + off + size)) {
      const problem = checkBatch(buf, off, size);
      if (problem !== null) {
        readBuffers.give(backing);
        throw corruptSegment(src.path, pos + off, problem);
      }
      src.verified?.add(pos + off, pos + off + size);
    }
    if (first === -1) first = off;
    end = off + size;
    next_offset = last + 1;
    off += size;
  }
  if (first === -1) {
    readBuffers.give(backing);
    return null;
  }
  return { records: buf.subarray(first, end), next_offset, backing };
}
