import { assert } from '../base/assert.js';
import { crc32c } from '../format/crc32c.js';
import {
  ATTR_CONTROL,
  ATTR_TRANSACTIONAL,
  BATCH_HEADER_BYTES,
  COMPRESSION_MASK,
  CRC_START,
  F_ATTRIBUTES,
  F_BASE_OFFSET,
  F_BASE_SEQUENCE,
  F_BASE_TIMESTAMP,
  F_BATCH_LENGTH,
  F_CRC,
  F_LAST_OFFSET_DELTA,
  F_MAGIC,
  F_MAX_TIMESTAMP,
  F_PARTITION_LEADER_EPOCH,
  F_PRODUCER_EPOCH,
  F_PRODUCER_ID,
  F_RECORD_COUNT,
  LOG_OVERHEAD_BYTES,
  MAGIC_V2,
  decodeRecords,
  readBatchHeader,
  type BatchHeader,
  type DecodedRecord,
} from '../format/record-batch.js';
import { writeZigzag, zigzagSize } from '../format/varint.js';

/*
 * Log compaction's decisions and batch rewriting, as pure functions over batch Buffers
 * (cleanup.policy=compact: keep the latest record per key; a tombstone, a null value, removes its
 * key once delete.retention.ms has passed). The segment swap that uses them is the I/O shell's job.
 *
 * Offsets never change. A batch keeps its baseOffset and lastOffsetDelta (its whole offset range)
 * and only loses records; a run of batches that lose every record becomes one empty batch spanning
 * their ranges (recordCount 0, as Kafka's cleaner leaves them). So batches stay contiguous, which
 * recovery and the read path rely on, and a consumer at a removed offset simply gets the next
 * record kept. Transactional and control batches are kept as they are.
 */

/** Key identity for the offset map (binary-safe). */
const keyId = (key: Buffer): string => key.toString('latin1');

/**
 * The offset of the latest record of every key, over batches in log order. Records without a key
 * are not in the map (they are always kept).
 */
export function latestOffsets(batches: Iterable<Buffer>, into = new Map<string, number>()): Map<string, number> {
  for (const b of batches) {
    if (isSpecial(b)) continue;
    for (const r of decodeRecords(b)) if (r.key !== null) into.set(keyId(r.key), r.offset);
  }
  return into;
}

export interface CompactionRule {
  /** Latest offset per key (latestOffsets over everything up to the log end). */
  latest: ReadonlyMap<string, number>;
  /** Tombstones with a timestamp before this are removed (now - delete.retention.ms). */
  tombstone_horizon_ms: number;
}

/** Whether a record survives compaction. */
export function keepRecord(r: DecodedRecord, rule: CompactionRule): boolean {
  if (r.key === null) return true;
  if (rule.latest.get(keyId(r.key)) !== r.offset) return false; // a later record has this key
  if (r.value === null && r.timestamp_ms < rule.tombstone_horizon_ms) return false; // an expired tombstone
  return true;
}

const isSpecial = (b: Buffer) => (b.readInt16BE(F_ATTRIBUTES) & (ATTR_TRANSACTIONAL | ATTR_CONTROL)) !== 0;

/**
 * Compacts a contiguous run of batches. Returns the new batches (same offset coverage, contiguous)
 * and whether anything changed. A batch that keeps every record is returned as the same Buffer.
 */
export function compactBatches(batches: readonly Buffer[], rule: CompactionRule): { batches: Buffer[]; changed: boolean; removed_records: number } {
  const out: Buffer[] = [];
  let changed = false;
  let removed = 0;
  /** A pending run of batches that lost every record. */
  type Range = { first: number; last: number; max_ts: number; epoch: number };
  const run: { empty: Range | null } = { empty: null };
  const extend = (first: number, last: number, max_ts: number, epoch: number): Range =>
    run.empty ? { ...run.empty, last, max_ts: Math.max(run.empty.max_ts, max_ts) } : { first, last, max_ts, epoch };
  const flushEmpty = () => {
    const e = run.empty;
    if (e) out.push(encodeEmptyRange(e.first, e.last, e.max_ts, e.epoch));
    run.empty = null;
  };
  for (const b of batches) {
    const h = readBatchHeader(b);
    if (isSpecial(b) || h.record_count === 0) {
      if (h.record_count === 0 && !isSpecial(b)) {
        // An empty range from an earlier compaction: merge it into the pending run.
        run.empty = extend(h.base_offset, h.base_offset + h.last_offset_delta, h.max_timestamp_ms, h.partition_leader_epoch);
        continue;
      }
      flushEmpty();
      out.push(b);
      continue;
    }
    const records = decodeRecords(b);
    const kept = records.filter((r) => keepRecord(r, rule));
    removed += records.length - kept.length;
    if (kept.length === records.length) {
      flushEmpty();
      out.push(b);
      continue;
    }
    changed = true;
    if (kept.length === 0) {
      run.empty = extend(h.base_offset, h.base_offset + h.last_offset_delta, h.max_timestamp_ms, h.partition_leader_epoch);
      continue;
    }
    flushEmpty();
    out.push(encodeKept(h, kept));
  }
  flushEmpty();
  // Merging two pre-existing empty ranges is a change even if no record went.
  if (!changed) changed = out.length !== batches.length;
  return { batches: out, changed, removed_records: removed };
}

/**
 * A batch holding `kept` (a subset of the records of the batch described by `h`), with `h`'s
 * offsets, epoch, producer fields and max timestamp. Written uncompressed.
 */
function encodeKept(h: BatchHeader, kept: readonly DecodedRecord[]): Buffer {
  const base_ts = h.base_timestamp_ms;
  const bodies: number[] = [];
  let total = BATCH_HEADER_BYTES;
  for (const r of kept) {
    const body = recordBody(r, h.base_offset, base_ts);
    bodies.push(body);
    total += zigzagSize(body) + body;
  }
  const buf = header(total, h.base_offset, h.last_offset_delta, h.partition_leader_epoch, h.attributes & ~COMPRESSION_MASK, base_ts, h.max_timestamp_ms, kept.length);
  buf.writeBigInt64BE(BigInt(h.producer_id), F_PRODUCER_ID);
  buf.writeInt16BE(h.producer_epoch, F_PRODUCER_EPOCH);
  buf.writeInt32BE(h.base_sequence, F_BASE_SEQUENCE);
  let pos = BATCH_HEADER_BYTES;
  kept.forEach((r, i) => {
    pos = writeZigzag(buf, pos, bodies[i]!);
    buf[pos++] = 0;
    pos = writeZigzag(buf, pos, r.timestamp_ms - base_ts);
    pos = writeZigzag(buf, pos, r.offset - h.base_offset);
    pos = writeBytes(buf, pos, r.key);
    pos = writeBytes(buf, pos, r.value);
    pos = writeZigzag(buf, pos, r.headers.length);
    for (const x of r.headers) {
      pos = writeBytes(buf, pos, Buffer.from(x.key));
      pos = writeBytes(buf, pos, x.value);
    }
  });
  assert(pos === total, `compacted batch: wrote ${pos} bytes, sized ${total}`);
  buf.writeUInt32BE(crc32c(buf.subarray(CRC_START)), F_CRC);
  return buf;
}

/** An empty batch covering offsets first..last (every record there was compacted away). */
export function encodeEmptyRange(first: number, last: number, max_ts: number, epoch: number): Buffer {
  assert(last >= first, 'empty range runs backwards');
  const buf = header(BATCH_HEADER_BYTES, first, last - first, epoch, 0, max_ts, max_ts, 0);
  buf.writeBigInt64BE(-1n, F_PRODUCER_ID);
  buf.writeInt16BE(-1, F_PRODUCER_EPOCH);
  buf.writeInt32BE(-1, F_BASE_SEQUENCE);
  buf.writeUInt32BE(crc32c(buf.subarray(CRC_START)), F_CRC);
  return buf;
}

function header(total: number, base: number, last_delta: number, epoch: number, attributes: number, base_ts: number, max_ts: number, count: number): Buffer {
  const buf = Buffer.alloc(total);
  buf.writeBigInt64BE(BigInt(base), F_BASE_OFFSET);
  buf.writeInt32BE(total - LOG_OVERHEAD_BYTES, F_BATCH_LENGTH);
  buf.writeInt32BE(epoch, F_PARTITION_LEADER_EPOCH);
  buf.writeInt8(MAGIC_V2, F_MAGIC);
  buf.writeInt16BE(attributes, F_ATTRIBUTES);
  buf.writeInt32BE(last_delta, F_LAST_OFFSET_DELTA);
  buf.writeBigInt64BE(BigInt(base_ts), F_BASE_TIMESTAMP);
  buf.writeBigInt64BE(BigInt(max_ts), F_MAX_TIMESTAMP);
  buf.writeInt32BE(count, F_RECORD_COUNT);
  return buf;
}

function recordBody(r: DecodedRecord, base_offset: number, base_ts: number): number {
  let n = 1 + zigzagSize(r.timestamp_ms - base_ts) + zigzagSize(r.offset - base_offset);
  n += r.key === null ? 1 : zigzagSize(r.key.length) + r.key.length;
  n += r.value === null ? 1 : zigzagSize(r.value.length) + r.value.length;
  n += zigzagSize(r.headers.length);
  for (const h of r.headers) {
    const k = Buffer.byteLength(h.key);
    n += zigzagSize(k) + k;
    n += h.value === null ? 1 : zigzagSize(h.value.length) + h.value.length;
  }
  return n;
}

function writeBytes(buf: Buffer, pos: number, b: Buffer | null): number {
  if (b === null) return writeZigzag(buf, pos, -1);
  pos = writeZigzag(buf, pos, b.length);
  b.copy(buf, pos);
  return pos + b.length;
}
