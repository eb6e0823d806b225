import { isControlBatch } from '../format/control-batch.js';
import type { FileHandle } from 'node:fs/promises';
import { limits } from '../base/limits.js';
import {
  BATCH_HEADER_BYTES,
  LOG_OVERHEAD_BYTES,
  batchBaseOffset,
  batchLastOffsetDelta,
  batchLeaderEpoch,
  batchMaxTimestamp,
  batchSizeAt,
  checkBatch,
} from '../format/record-batch.js';
import { producerBatchOf, type ProducerBatch } from './producer-state.js';

/**
 * Sequential validation of a segment file: every batch's framing and CRC, and offset continuity.
 * Used by recovery (tail check), rebuildIndexes and `verify`. Pure reading; it changes nothing.
 */

export interface ScannedBatch {
  position: number;
  base_offset: number;
  last_offset: number;
  max_timestamp_ms: number;
  size_bytes: number;
  leader_epoch: number;
  /** The batch's idempotent producer fields (null without a producer id). */
  producer: ProducerBatch | null;
  /** A copy of the batch when it is a control batch (rare: Raft membership changes), else absent. */
  control_bytes?: Buffer;
}

export interface ScanFault {
  position: number;
  reason: string;
  /** The faulty batch is the last thing in the file (it runs to or past EOF, or only zero bytes follow it). */
  at_tail: boolean;
}

export interface ScanResult {
  /** End of the last sound batch. */
  end_position: number;
  /** One past the last offset of the last sound batch (or the expected start if none). */
  next_offset: number;
  max_timestamp_ms: number;
  batch_count: number;
  fault: ScanFault | null;
}

const CHUNK_BYTES = 8 * 1024 * 1024;
const MAX_BATCH_BYTES = limits.batch_size_ceiling_bytes + BATCH_HEADER_BYTES;

export async function scanSegment(
  fh: FileHandle,
  file_size: number,
  opts: { start_position?: number; expected_offset: number; on_batch?: (b: ScannedBatch) => void },
): Promise<ScanResult> {
  let pos = opts.start_position ?? 0;
  let next_offset = opts.expected_offset;
  let max_ts = -1;
  let count = 0;
  let chunk: Buffer = Buffer.alloc(0);
  let chunk_pos = pos; // file position of chunk[0]

  const fault = async (position: number, reason: string): Promise<ScanResult> => {
    const at_tail = await onlyZerosAfter(fh, position, file_size);
    return { end_position: position, next_offset, max_timestamp_ms: max_ts, batch_count: count, fault: { position, reason, at_tail } };
  };

  while (pos < file_size) {
    let off = pos - chunk_pos;
    if (chunk.length - off < LOG_OVERHEAD_BYTES || chunk.length - off < Math.min(batchSizeAt(chunk, off), MAX_BATCH_BYTES)) {
      const want = Math.min(file_size - pos, CHUNK_BYTES);
      chunk = await readAt(fh, pos, want);
      chunk_pos = pos;
      off = 0;
      const size = batchSizeAt(chunk, 0);
      if (size > chunk.length && size <= MAX_BATCH_BYTES && pos + size <= file_size) {
        chunk = await readAt(fh, pos, size);
      }
    }
    const avail = file_size - pos;
    const size = batchSizeAt(chunk, off);
    if (size < 0 || avail < BATCH_HEADER_BYTES) return fault(pos, `only ${avail} bytes left, a batch header needs ${BATCH_HEADER_BYTES}`);
    if (size > MAX_BATCH_BYTES) return fault(pos, `batch length ${size} is larger than any batch relaylog writes`);
    if (size > avail) return fault(pos, `batch of ${size} bytes runs past the end of the file (${avail} bytes left)`);
    const problem = checkBatch(chunk, off, chunk.length - off);
    if (problem !== null) return fault(pos, problem);
    const base = batchBaseOffset(chunk, off);
    if (base !== next_offset) return fault(pos, `batch base offset ${base}, expected ${next_offset} (offsets must be contiguous)`);
    const last = base + batchLastOffsetDelta(chunk, off);
    const ts = batchMaxTimestamp(chunk, off);
    if (opts.on_batch) {
      const control = isControlBatch(chunk, off) ? { control_bytes: Buffer.from(chunk.subarray(off, off + size)) } : {};
      opts.on_batch({ position: pos, base_offset: base, last_offset: last, max_timestamp_ms: ts, size_bytes: size, leader_epoch: batchLeaderEpoch(chunk, off), producer: producerBatchOf(chunk, off), ...control });
    }
    if (ts > max_ts) max_ts = ts;
    next_offset = last + 1;
    count++;
    pos += size;
  }
  return { end_position: pos, next_offset, max_timestamp_ms: max_ts, batch_count: count, fault: null };
}

async function readAt(fh: FileHandle, position: number, length: number): Promise<Buffer> {
  const buf = Buffer.allocUnsafe(length);
  let done = 0;
  while (done < length) {
    const { bytesRead } = await fh.read(buf, done, length - done, position + done);
    if (bytesRead === 0) break;
    done += bytesRead;
  }
  return buf.subarray(0, done);
}

/**
 * A fault is at the tail when nothing sound follows it: the faulty batch ends exactly at EOF, or no
 * position after it starts a sound batch (magic 2, a plausible length, a matching CRC). Zero-fill
 * and torn garbage both qualify; a damaged batch followed by intact ones does not. A length that
 * runs past EOF (or is negative) proves nothing by itself: a damaged length field in mid-file looks
 * exactly like that, with sound batches after it, so it is searched like any other fault.
 */
async function onlyZerosAfter(fh: FileHandle, position: number, file_size: number): Promise<boolean> {
  const head = await readAt(fh, position, Math.min(LOG_OVERHEAD_BYTES, file_size - position));
  const size = batchSizeAt(head, 0);
  if (size > 0 && position + size === file_size) return true;
  return !(await soundBatchAfter(fh, position + 1, file_size));
}

async function soundBatchAfter(fh: FileHandle, from: number, file_size: number): Promise<boolean> {
  for (let p = from; p + BATCH_HEADER_BYTES <= file_size; ) {
    const chunk = await readAt(fh, p, Math.min(CHUNK_BYTES + BATCH_HEADER_BYTES, file_size - p));
    const last = chunk.length - BATCH_HEADER_BYTES;
    for (let i = 0; i <= last && i < CHUNK_BYTES; i++) {
      if (chunk[i + 16] !== 2) continue; // magic
      const size = chunk.readInt32BE(i + 8) + LOG_OVERHEAD_BYTES;
      if (size < BATCH_HEADER_BYTES || size > MAX_BATCH_BYTES || p + i + size > file_size) continue;
      const candidate = i + size <= chunk.length ? chunk.subarray(i, i + size) : await readAt(fh, p + i, size);
      if (checkBatch(candidate, 0, size) === null) return true;
    }
    p += CHUNK_BYTES;
  }
  return false;
}

export { readAt };
