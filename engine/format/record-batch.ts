import { assert } from '../base/assert.js';
import { corruptBatch, invalidArgument, invalidBatch } from '../base/errors.js';
import { decompressSection } from './codecs.js';
import { crc32c } from './crc32c.js';
import { readZigzag, writeZigzag, zigzagSize } from './varint.js';

/*
 * Kafka RecordBatch v2 — relaylog's on-disk AND on-wire batch format (docs/format.md).
 * All integers big-endian.
 *
 *   off  size  field
 *   0    8     baseOffset            int64   rewritten by the log on append (not under CRC)
 *   8    4     batchLength           int32   bytes after this field (= total size - 12)
 *   12   4     partitionLeaderEpoch  int32   Raft term, rewritten by the log (not under CRC)
 *   16   1     magic                 int8    = 2
 *   17   4     crc                   uint32  CRC-32C of bytes [21, end)
 *   21   2     attributes            int16   bits 0-2 compression, 3 timestampType,
 *                                            4 transactional, 5 control, 6 deleteHorizon
 *   23   4     lastOffsetDelta       int32   = record count - 1 for a fresh batch
 *   27   8     baseTimestamp         int64   (first timestamp)
 *   35   8     maxTimestamp          int64
 *   43   8     producerId            int64   -1 = not idempotent
 *   51   2     producerEpoch         int16
 *   53   4     baseSequence          int32
 *   57   4     recordCount           int32
 *   61   ...   records (possibly compressed as one block)
 *
 * Record (uncompressed), varints zig-zag encoded:
 *   length varint | attributes int8 | timestampDelta varlong | offsetDelta varint |
 *   keyLength varint (-1 = null) | key | valueLength varint (-1 = null) | value |
 *   headerCount varint | { headerKeyLength varint | headerKey | headerValueLength varint | headerValue }*
 *
 * Because baseOffset and partitionLeaderEpoch sit outside the CRC, the log assigns offsets and
 * stamps the term by rewriting 12 bytes in place: a batch is never re-encoded between producer,
 * disk, follower, relay and consumer.
 */

export const MAGIC_V2 = 2;
export const LOG_OVERHEAD_BYTES = 12;
export const BATCH_HEADER_BYTES = 61;
export const CRC_START = 21;

export const F_BASE_OFFSET = 0;
export const F_BATCH_LENGTH = 8;
export const F_PARTITION_LEADER_EPOCH = 12;
export const F_MAGIC = 16;
export const F_CRC = 17;
export const F_ATTRIBUTES = 21;
export const F_LAST_OFFSET_DELTA = 23;
export const F_BASE_TIMESTAMP = 27;
export const F_MAX_TIMESTAMP = 35;
export const F_PRODUCER_ID = 43;
export const F_PRODUCER_EPOCH = 51;
export const F_BASE_SEQUENCE = 53;
export const F_RECORD_COUNT = 57;

export const COMPRESSION_MASK = 0x07;
export const Compression = { none: 0, gzip: 1, snappy: 2, lz4: 3, zstd: 4 } as const;
export const ATTR_TIMESTAMP_LOG_APPEND = 0x08;
export const ATTR_TRANSACTIONAL = 0x10;
export const ATTR_CONTROL = 0x20;

export interface RecordHeader {
  key: string;
  value: Buffer | null;
}

export interface RecordInput {
  key?: Buffer | string | null;
  value: Buffer | string | null;
  timestamp_ms?: number;
  headers?: readonly RecordHeader[];
}

export interface BatchOptions {
  base_offset?: number;
  partition_leader_epoch?: number;
  /** Timestamp for records that carry none; defaults to Date.now(). */
  timestamp_ms?: number;
  producer_id?: number;
  producer_epoch?: number;
  base_sequence?: number;
  transactional?: boolean;
  /**
   * Where to encode: a buffer of exactly `size` bytes (e.g. a view into a reused one; fresh
   * multi-MiB buffers cost a page fault per 4 KiB to fill). Default: a fresh buffer.
   */
  into?: (size: number) => Buffer;
}

export interface BatchHeader {
  base_offset: number;
  /** Whole batch size in bytes, including the 12-byte log overhead. */
  size_bytes: number;
  partition_leader_epoch: number;
  magic: number;
  crc: number;
  attributes: number;
  last_offset_delta: number;
  base_timestamp_ms: number;
  max_timestamp_ms: number;
  producer_id: number;
  producer_epoch: number;
  base_sequence: number;
  record_count: number;
}

export interface DecodedRecord {
  offset: number;
  timestamp_ms: number;
  key: Buffer | null;
  value: Buffer | null;
  headers: RecordHeader[];
}

const toBuf = (v: Buffer | string | null | undefined): Buffer | null =>
  v === null || v === undefined ? null : typeof v === 'string' ? Buffer.from(v) : v;

function recordBodySize(offsetDelta: number, tsDelta: number, key: Buffer | null, value: Buffer | null, headers: readonly RecordHeader[]): number {
  let n = 1 + zigzagSize(tsDelta) + zigzagSize(offsetDelta);
  n += key === null ? zigzagSize(-1) : zigzagSize(key.length) + key.length;
  n += value === null ? zigzagSize(-1) : zigzagSize(value.length) + value.length;
  n += zigzagSize(headers.length);
  for (const h of headers) {
    const kl = Buffer.byteLength(h.key);
    n += zigzagSize(kl) + kl;
    n += h.value === null ? zigzagSize(-1) : zigzagSize(h.value.length) + h.value.length;
  }
  return n;
}

/** Encodes uncompressed records into one RecordBatch v2 (the producer side). */
export function encodeBatch(records: readonly RecordInput[], opts: BatchOptions = {}): Buffer {
  if (records.length === 0) throw invalidArgument('a record batch needs at least one record');
  const now = opts.timestamp_ms ?? Date.now();
  const keys = records.map((r) => toBuf(r.key));
  const values = records.map((r) => toBuf(r.value));
  const stamps = records.map((r) => r.timestamp_ms ?? now);
  const base_ts = stamps[0]!;
  let max_ts = base_ts;
  for (const t of stamps) if (t > max_ts) max_ts = t;

  const bodies: number[] = [];
  let total = BATCH_HEADER_BYTES;
  for (let i = 0; i < records.length; i++) {
    const body = recordBodySize(i, stamps[i]! - base_ts, keys[i]!, values[i]!, records[i]!.headers ?? []);
    bodies.push(body);
    total += zigzagSize(body) + body;
  }

  const buf = opts.into !== undefined ? opts.into(total) : Buffer.allocUnsafe(total);
  assert(buf.length === total, `a batch buffer of ${buf.length} bytes for ${total}`);
  buf.writeBigInt64BE(BigInt(opts.base_offset ?? 0), F_BASE_OFFSET);
  buf.writeInt32BE(total - LOG_OVERHEAD_BYTES, F_BATCH_LENGTH);
  buf.writeInt32BE(opts.partition_leader_epoch ?? 0, F_PARTITION_LEADER_EPOCH);
  buf.writeInt8(MAGIC_V2, F_MAGIC);
  buf.writeInt16BE(opts.transactional ? ATTR_TRANSACTIONAL : 0, F_ATTRIBUTES);
  buf.writeInt32BE(records.length - 1, F_LAST_OFFSET_DELTA);
  buf.writeBigInt64BE(BigInt(base_ts), F_BASE_TIMESTAMP);
  buf.writeBigInt64BE(BigInt(max_ts), F_MAX_TIMESTAMP);
  buf.writeBigInt64BE(BigInt(opts.producer_id ?? -1), F_PRODUCER_ID);
  buf.writeInt16BE(opts.producer_epoch ?? -1, F_PRODUCER_EPOCH);
  buf.writeInt32BE(opts.base_sequence ?? -1, F_BASE_SEQUENCE);
  buf.writeInt32BE(records.length, F_RECORD_COUNT);

  let pos = BATCH_HEADER_BYTES;
  for (let i = 0; i < records.length; i++) {
    const key = keys[i]!;
    const value = values[i]!;
    pos = writeZigzag(buf, pos, bodies[i]!);
    buf[pos++] = 0; // record attributes: unused
    pos = writeZigzag(buf, pos, stamps[i]! - base_ts);
    pos = writeZigzag(buf, pos, i);
    pos = writeBytes(buf, pos, key);
    pos = writeBytes(buf, pos, value);
    const headers = records[i]!.headers ?? [];
    pos = writeZigzag(buf, pos, headers.length);
    for (const h of headers) {
      pos = writeBytes(buf, pos, Buffer.from(h.key));
      pos = writeBytes(buf, pos, h.value);
    }
  }
  assert(pos === total, `encoded ${pos} bytes, sized ${total}`);
  buf.writeUInt32BE(crc32c(buf.subarray(CRC_START)), F_CRC);
  return buf;
}

function writeBytes(buf: Buffer, pos: number, b: Buffer | null): number {
  if (b === null) return writeZigzag(buf, pos, -1);
  pos = writeZigzag(buf, pos, b.length);
  b.copy(buf, pos);
  return pos + b.length;
}

const readInt64 = (buf: Buffer, pos: number): number => Number(buf.readBigInt64BE(pos));

/** Size of the batch starting at `pos`, from its length field, or -1 if fewer than 12 bytes remain. */
export function batchSizeAt(buf: Buffer, pos = 0): number {
  if (buf.length - pos < LOG_OVERHEAD_BYTES) return -1;
  return buf.readInt32BE(pos + F_BATCH_LENGTH) + LOG_OVERHEAD_BYTES;
}

/** Reads the fixed header at `pos` (needs 61 bytes; does not check the CRC). */
export function readBatchHeader(buf: Buffer, pos = 0): BatchHeader {
  if (buf.length - pos < BATCH_HEADER_BYTES) {
    throw invalidBatch(`header needs ${BATCH_HEADER_BYTES} bytes, only ${buf.length - pos} present`);
  }
  return {
    base_offset: readInt64(buf, pos + F_BASE_OFFSET),
    size_bytes: buf.readInt32BE(pos + F_BATCH_LENGTH) + LOG_OVERHEAD_BYTES,
    partition_leader_epoch: buf.readInt32BE(pos + F_PARTITION_LEADER_EPOCH),
    magic: buf.readInt8(pos + F_MAGIC),
    crc: buf.readUInt32BE(pos + F_CRC),
    attributes: buf.readInt16BE(pos + F_ATTRIBUTES),
    last_offset_delta: buf.readInt32BE(pos + F_LAST_OFFSET_DELTA),
    base_timestamp_ms: readInt64(buf, pos + F_BASE_TIMESTAMP),
    max_timestamp_ms: readInt64(buf, pos + F_MAX_TIMESTAMP),
    producer_id: readInt64(buf, pos + F_PRODUCER_ID),
    producer_epoch: buf.readInt16BE(pos + F_PRODUCER_EPOCH),
    base_sequence: buf.readInt32BE(pos + F_BASE_SEQUENCE),
    record_count: buf.readInt32BE(pos + F_RECORD_COUNT),
  };
}

export const batchBaseOffset = (buf: Buffer, pos = 0): number => readInt64(buf, pos + F_BASE_OFFSET);
export const batchLastOffsetDelta = (buf: Buffer, pos = 0): number => buf.readInt32BE(pos + F_LAST_OFFSET_DELTA);
export const batchMaxTimestamp = (buf: Buffer, pos = 0): number => readInt64(buf, pos + F_MAX_TIMESTAMP);
export const batchLeaderEpoch = (buf: Buffer, pos = 0): number => buf.readInt32BE(pos + F_PARTITION_LEADER_EPOCH);

/** Rewrites the two fields outside the CRC: the log's offset and the Raft term. */
export function stampBatch(buf: Buffer, pos: number, base_offset: number, partition_leader_epoch: number): void {
  buf.writeBigInt64BE(BigInt(base_offset), pos + F_BASE_OFFSET);
  buf.writeInt32BE(partition_leader_epoch, pos + F_PARTITION_LEADER_EPOCH);
}

/**
 * Checks framing, magic and CRC of the batch at [pos, pos+size) without throwing.
 * Returns null when the batch is sound, else the reason. `avail` is how many bytes are present.
 */
export function checkBatch(buf: Buffer, pos = 0, avail = buf.length - pos): string | null {
  if (avail < BATCH_HEADER_BYTES) return `only ${avail} bytes left, a batch header needs ${BATCH_HEADER_BYTES}`;
  const size = buf.readInt32BE(pos + F_BATCH_LENGTH) + LOG_OVERHEAD_BYTES;
  if (size < BATCH_HEADER_BYTES) return `batchLength ${size - LOG_OVERHEAD_BYTES} is shorter than a header`;
  if (size > avail) return `batch of ${size} bytes runs past the ${avail} bytes present`;
  const magic = buf.readInt8(pos + F_MAGIC);
  if (magic !== MAGIC_V2) return `magic ${magic}, expected ${MAGIC_V2}`;
  const stored = buf.readUInt32BE(pos + F_CRC);
  const actual = crc32c(buf.subarray(pos + CRC_START, pos + size));
  if (stored !== actual) return `CRC-32C mismatch (stored 0x${stored.toString(16)}, computed 0x${actual.toString(16)})`;
  const count = buf.readInt32BE(pos + F_RECORD_COUNT);
  const lod = buf.readInt32BE(pos + F_LAST_OFFSET_DELTA);
  if (count < 0 || lod < 0) return `negative record count ${count} or lastOffsetDelta ${lod}`;
  // Compaction may leave fewer records than the offset span (gaps allowed), never more.
  if (count > lod + 1) return `recordCount ${count} exceeds lastOffsetDelta+1 = ${lod + 1}`;
  return null;
}

/**
 * Splits a record set (one or more concatenated batches, as a producer sends them) into batches,
 * validating each fully. Throws INVALID_BATCH / CORRUPT_BATCH with the byte position; the returned
 * buffers are views into `buf`.
 */
export function splitRecordSet(buf: Buffer): Buffer[] {
  const out: Buffer[] = [];
  let pos = 0;
  if (buf.length === 0) throw invalidBatch('empty record set');
  while (pos < buf.length) {
    const avail = buf.length - pos;
    if (avail < BATCH_HEADER_BYTES) throw invalidBatch(`trailing ${avail} bytes at position ${pos} are not a whole batch`, { position: pos });
    const magic = buf.readInt8(pos + F_MAGIC);
    if (magic !== MAGIC_V2) throw invalidBatch(`magic ${magic} at position ${pos}; only magic 2 (RecordBatch v2) is supported`, { position: pos, magic });
    const problem = checkBatch(buf, pos, avail);
    if (problem !== null) throw corruptBatch(`${problem} at position ${pos}`, { position: pos });
    const size = batchSizeAt(buf, pos);
    if (buf.readInt32BE(pos + F_RECORD_COUNT) === 0) throw invalidBatch(`batch at position ${pos} has no records`, { position: pos });
    out.push(buf.subarray(pos, pos + size));
    pos += size;
  }
  return out;
}

/** The uncompressed records section of a batch (decompressing when needed). */
export function recordsSection(batch: Buffer): Buffer {
  const attrs = batch.readInt16BE(F_ATTRIBUTES);
  const body = batch.subarray(BATCH_HEADER_BYTES, batch.readInt32BE(F_BATCH_LENGTH) + LOG_OVERHEAD_BYTES);
  return decompressSection(attrs & COMPRESSION_MASK, body);
}

/**
 * Calls `fn` for each record of a batch, lazily decoding key/value as views (no copies).
 * Throws CORRUPT_BATCH if a record runs past its bounds or a compressed section does not decompress.
 */
export function forEachRecord(batch: Buffer, fn: (r: DecodedRecord) => void | boolean): void {
  const base_offset = batchBaseOffset(batch);
  const base_ts = readInt64(batch, F_BASE_TIMESTAMP);
  // Kafka semantics (DefaultRecord.readFrom): with timestampType = LogAppendTime every record's
  // timestamp is the batch's maxTimestamp, whatever its own delta says.
  const log_append_ts = (batch.readInt16BE(F_ATTRIBUTES) & ATTR_TIMESTAMP_LOG_APPEND) !== 0 ? readInt64(batch, F_MAX_TIMESTAMP) : null;
  const count = batch.readInt32BE(F_RECORD_COUNT);
  const body = recordsSection(batch);
  const next = { pos: 0 };
  let pos = 0;
  try {
    for (let i = 0; i < count; i++) {
      const len = readZigzag(body, pos, next);
      const end = next.pos + len;
      if (len < 0 || end > body.length) throw new RangeError(`record ${i} of length ${len} runs past the batch`);
      pos = next.pos + 1; // skip record attributes
      const ts_delta = readZigzag(body, pos, next);
      const off_delta = readZigzag(body, next.pos, next);
      const key = readBytes(body, next.pos, next, end);
      const value = readBytes(body, next.pos, next, end);
      const header_count = readZigzag(body, next.pos, next);
      const headers: RecordHeader[] = [];
      for (let h = 0; h < header_count; h++) {
        const hk = readBytes(body, next.pos, next, end);
        const hv = readBytes(body, next.pos, next, end);
        headers.push({ key: hk === null ? '' : hk.toString(), value: hv });
      }
      if (next.pos !== end) throw new RangeError(`record ${i} length ${len} does not match its fields`);
      pos = end;
      if (fn({ offset: base_offset + off_delta, timestamp_ms: log_append_ts ?? base_ts + ts_delta, key, value, headers }) === false) return;
    }
  } catch (err) {
    if (err instanceof RangeError) throw corruptBatch(err.message, { base_offset });
    throw err;
  }
}

function readBytes(buf: Buffer, pos: number, next: { pos: number }, end: number): Buffer | null {
  const len = readZigzag(buf, pos, next);
  if (len === -1) return null;
  if (len < -1 || next.pos + len > end) throw new RangeError(`field of length ${len} runs past its record`);
  const out = buf.subarray(next.pos, next.pos + len);
  next.pos += len;
  return out;
}

export function decodeRecords(batch: Buffer): DecodedRecord[] {
  const out: DecodedRecord[] = [];
  forEachRecord(batch, (r) => {
    out.push(r);
  });
  return out;
}

/** Walks a buffer of concatenated, already-validated batches, calling fn(pos, size). */
export function forEachBatch(buf: Buffer, fn: (pos: number, size: number) => void): void {
  let pos = 0;
  while (pos < buf.length) {
    const size = batchSizeAt(buf, pos);
    assert(size >= BATCH_HEADER_BYTES && pos + size <= buf.length, `malformed batch chain at ${pos}`);
    fn(pos, size);
    pos += size;
  }
}
