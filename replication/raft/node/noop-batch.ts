/**
 * The record batch that stores a new leader's empty Raft entry (§5.4.2: a leader commits entries
 * of earlier terms only under one of its own, so it appends an empty one at once). One Raft entry
 * is one batch, so the empty entry is an empty batch: no records, one offset (lastOffsetDelta 0),
 * no timestamps (-1), not transactional, not a control batch. Compaction leaves batches of the same
 * shape, so every reader (the Consumer, Kafka clients through the listener) already skips them: a
 * consumer sees a one-offset gap per leader election, as Kafka consumers see transaction markers.
 */
import { crc32c } from '../../../engine/format/crc32c.js';
import {
  BATCH_HEADER_BYTES,
  CRC_START,
  F_ATTRIBUTES,
  F_BASE_SEQUENCE,
  F_BASE_TIMESTAMP,
  F_BATCH_LENGTH,
  F_CRC,
  F_LAST_OFFSET_DELTA,
  F_MAGIC,
  F_MAX_TIMESTAMP,
  F_PRODUCER_EPOCH,
  F_PRODUCER_ID,
  F_RECORD_COUNT,
  LOG_OVERHEAD_BYTES,
  MAGIC_V2,
  stampBatch,
} from '../../../engine/format/record-batch.js';

/** An empty batch at `base_offset`, stamped with `term`. */
export function noopBatch(base_offset: number, term: number): Buffer {
  const b = Buffer.alloc(BATCH_HEADER_BYTES);
  b.writeInt32BE(BATCH_HEADER_BYTES - LOG_OVERHEAD_BYTES, F_BATCH_LENGTH);
  b.writeInt8(MAGIC_V2, F_MAGIC);
  b.writeInt16BE(0, F_ATTRIBUTES);
  b.writeInt32BE(0, F_LAST_OFFSET_DELTA);
  b.writeBigInt64BE(-1n, F_BASE_TIMESTAMP);
  b.writeBigInt64BE(-1n, F_MAX_TIMESTAMP);
  b.writeBigInt64BE(-1n, F_PRODUCER_ID);
  b.writeInt16BE(-1, F_PRODUCER_EPOCH);
  b.writeInt32BE(-1, F_BASE_SEQUENCE);
  b.writeInt32BE(0, F_RECORD_COUNT);
  b.writeUInt32BE(crc32c(b.subarray(CRC_START)), F_CRC);
  stampBatch(b, 0, base_offset, term);
  return b;
}
