/**
 * RecordBatch v2 codec: layout, stamping, validation (checkBatch / splitRecordSet) and record
 * decoding, including hand-built gzip and LogAppendTime batches. Byte-for-byte comparisons with
 * independently built batches live in test/golden/.
 */
import { gzipSync } from 'node:zlib';
import { compressFrameSync as lz4Frame } from 'lz4-napi';
import { compressSync as snappyCompressSync } from 'snappy';
import { describe, expect, test } from 'vitest';
import { AssertionError } from '../../../engine/base/assert.js';
import { EngineError, isEngineError } from '../../../engine/base/errors.js';
import { crc32c } from '../../../engine/format/crc32c.js';
import {
  ATTR_TIMESTAMP_LOG_APPEND,
  ATTR_TRANSACTIONAL,
  BATCH_HEADER_BYTES,
  COMPRESSION_MASK,
  CRC_START,
  Compression,
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
  batchBaseOffset,
  batchLastOffsetDelta,
  batchLeaderEpoch,
  batchMaxTimestamp,
  batchSizeAt,
  checkBatch,
  decodeRecords,
  encodeBatch,
  forEachBatch,
  forEachRecord,
  readBatchHeader,
  recordsSection,
  splitRecordSet,
  stampBatch,
  type DecodedRecord,
  type RecordInput,
} from '../../../engine/format/record-batch.js';

// ---------------------------------------------------------------- helpers

const T0 = 1_700_000_000_000;

/** Recomputes batchLength and CRC after a test tampered with bytes under them. */
function reseal(b: Buffer): Buffer {
  b.writeInt32BE(b.length - LOG_OVERHEAD_BYTES, F_BATCH_LENGTH);
  b.writeUInt32BE(crc32c(b.subarray(CRC_START)), F_CRC);
  return b;
}

/** The same batch with its records section gzip-compressed, as a Kafka producer would send it. */
const snappyCompress = (b: Buffer): Buffer => snappyCompressSync(b) as Buffer;

function gzipped(plain: Buffer, extraAttributes = 0): Buffer {
  const gz = Buffer.concat([plain.subarray(0, BATCH_HEADER_BYTES), gzipSync(plain.subarray(BATCH_HEADER_BYTES))]);
  gz.writeInt16BE(Compression.gzip | extraAttributes, F_ATTRIBUTES);
  return reseal(gz);
}

/** Expects fn to throw an EngineError with this code; returns it for further checks. */
function engineError(fn: () => unknown, code: string): EngineError {
  let thrown: unknown;
  try {
    fn();
  } catch (err) {
    thrown = err;
  }
  expect(thrown, 'expected a throw').toBeInstanceOf(EngineError);
  const e = thrown as EngineError;
  expect(e.code).toBe(code);
  expect(isEngineError(e, e.code)).toBe(true);
  return e;
}

const plainRecords = (rs: DecodedRecord[]) =>
  rs.map((r) => ({
    offset: r.offset,
    timestamp_ms: r.timestamp_ms,
    key: r.key === null ? null : r.key.toString('latin1'),
    value: r.value === null ? null : r.value.toString('latin1'),
    headers: r.headers.map((h) => [h.key, h.value === null ? null : h.value.toString('latin1')]),
  }));

const THREE: RecordInput[] = [
  { key: 'key', value: 'value', timestamp_ms: T0 },
  { key: null, value: 'second', timestamp_ms: T0 + 5, headers: [{ key: 'trace', value: Buffer.from('abc') }] },
  { key: 'k3', value: null, timestamp_ms: T0 - 10 },
];

// ---------------------------------------------------------------- layout

describe('layout constants', () => {
  test('field offsets are those of Kafka RecordBatch v2', () => {
    expect([F_BASE_OFFSET, F_BATCH_LENGTH, F_PARTITION_LEADER_EPOCH, F_MAGIC, F_CRC, F_ATTRIBUTES, F_LAST_OFFSET_DELTA]).toEqual([0, 8, 12, 16, 17, 21, 23]);
    expect([F_BASE_TIMESTAMP, F_MAX_TIMESTAMP, F_PRODUCER_ID, F_PRODUCER_EPOCH, F_BASE_SEQUENCE, F_RECORD_COUNT]).toEqual([27, 35, 43, 51, 53, 57]);
    expect(BATCH_HEADER_BYTES).toBe(61);
    expect(LOG_OVERHEAD_BYTES).toBe(12);
    expect(CRC_START).toBe(21);
    expect(MAGIC_V2).toBe(2);
    expect(COMPRESSION_MASK).toBe(0x07);
    expect(Compression).toEqual({ none: 0, gzip: 1, snappy: 2, lz4: 3, zstd: 4 });
    expect([ATTR_TIMESTAMP_LOG_APPEND, ATTR_TRANSACTIONAL]).toEqual([0x08, 0x10]);
  });
});

describe('encodeBatch', () => {
  test('writes every header field at its position (read back by hand, not via readBatchHeader)', () => {
    const b = encodeBatch(THREE, {
      base_offset: 2 ** 40 + 3,
      partition_leader_epoch: 17,
      producer_id: 2 ** 33 + 1,
      producer_epoch: 9,
      base_sequence: 1234,
      transactional: true,
    });
    expect(b.readBigInt64BE(0)).toBe(BigInt(2 ** 40 + 3));
    expect(b.readInt32BE(8)).toBe(b.length - 12);
    expect(b.readInt32BE(12)).toBe(17);
    expect(b.readInt8(16)).toBe(2);
    expect(b.readUInt32BE(17)).toBe(crc32c(b.subarray(21)));
    expect(b.readInt16BE(21)).toBe(0x10);
    expect(b.readInt32BE(23)).toBe(2);
    expect(b.readBigInt64BE(27)).toBe(BigInt(T0)); // first record's timestamp, not the smallest
    expect(b.readBigInt64BE(35)).toBe(BigInt(T0 + 5)); // largest
    expect(b.readBigInt64BE(43)).toBe(BigInt(2 ** 33 + 1));
    expect(b.readInt16BE(51)).toBe(9);
    expect(b.readInt32BE(53)).toBe(1234);
    expect(b.readInt32BE(57)).toBe(3);
    // first record starts right after the header: length varint, attributes 0, tsDelta 0, offsetDelta 0, key "key"
    // (body 14 bytes -> 0x1c, attributes 00, tsDelta 00, offsetDelta 00, keyLength 3 -> 06, "key")
    expect(b.subarray(61, 69).toString('hex')).toBe('1c000000066b6579');
  });

  test('defaults: offset 0, epoch 0, not idempotent (producer id/epoch/sequence -1), no attributes', () => {
    const b = encodeBatch([{ value: 'v', timestamp_ms: 1 }]);
    expect(readBatchHeader(b)).toEqual({
      base_offset: 0,
      size_bytes: b.length,
      partition_leader_epoch: 0,
      magic: 2,
      crc: crc32c(b.subarray(21)),
      attributes: 0,
      last_offset_delta: 0,
      base_timestamp_ms: 1,
      max_timestamp_ms: 1,
      producer_id: -1,
      producer_epoch: -1,
      base_sequence: -1,
      record_count: 1,
    });
  });

  test('records without a timestamp take opts.timestamp_ms, else the current time', () => {
    const b = encodeBatch([{ value: 'a' }, { value: 'b', timestamp_ms: 50 }], { timestamp_ms: 40 });
    expect(decodeRecords(b).map((r) => r.timestamp_ms)).toEqual([40, 50]);
    const before = Date.now();
    const c = encodeBatch([{ value: 'a' }]);
    const after = Date.now();
    const ts = readBatchHeader(c).base_timestamp_ms;
    expect(ts).toBeGreaterThanOrEqual(before);
    expect(ts).toBeLessThanOrEqual(after);
  });

  test('strings and Buffers encode identically (UTF-8)', () => {
    const a = encodeBatch([{ key: 'ключ', value: 'é€😀', timestamp_ms: 1 }]);
    const b = encodeBatch([{ key: Buffer.from('ключ'), value: Buffer.from('é€😀'), timestamp_ms: 1 }]);
    expect(a.equals(b)).toBe(true);
  });

  test('a missing key is a null key', () => {
    expect(encodeBatch([{ value: 'v', timestamp_ms: 1 }]).equals(encodeBatch([{ key: null, value: 'v', timestamp_ms: 1 }]))).toBe(true);
  });

  test('`into`: the same bytes in the caller\'s buffer, which must be exactly the size asked for', () => {
    const records = [{ key: 'k', value: Buffer.alloc(70_000, 5) }, { value: 'v', timestamp_ms: 1_700_000_000_123 }];
    const opts = { timestamp_ms: 1_700_000_000_000, producer_id: 7, producer_epoch: 1, base_sequence: 3 };
    const fresh = encodeBatch(records, opts);
    const backing = Buffer.alloc(fresh.length + 10, 0xee);
    const into = encodeBatch(records, { ...opts, into: (size) => backing.subarray(4, 4 + size) });
    expect(into.buffer).toBe(backing.buffer);
    expect(into.equals(fresh)).toBe(true);
    expect(backing[3]).toBe(0xee); // nothing written outside the view
    expect(backing[4 + fresh.length]).toBe(0xee);
    expect(() => encodeBatch(records, { ...opts, into: (size) => Buffer.alloc(size + 1) })).toThrow(AssertionError);
  });

  test('an empty record list is INVALID_ARGUMENT', () => {
    engineError(() => encodeBatch([]), 'INVALID_ARGUMENT');
  });

  test('multi-byte varints: long values, 64+ records, big timestamp deltas', () => {
    const records: RecordInput[] = Array.from({ length: 130 }, (_, i) => ({
      key: i % 3 === 0 ? null : `k${i}`,
      value: Buffer.alloc(i * 70, i),
      timestamp_ms: T0 + (i % 2 === 0 ? i * 2 ** 30 : -i * 2 ** 30),
    }));
    records.push({ value: 'far', timestamp_ms: T0 + 2 ** 50 }, { value: 'past', timestamp_ms: T0 - 2 ** 40 });
    const b = encodeBatch(records);
    expect(checkBatch(b)).toBeNull();
    const out = decodeRecords(b);
    expect(out).toHaveLength(132);
    out.forEach((r, i) => {
      const want = records[i]!;
      expect(r.offset).toBe(i);
      expect(r.timestamp_ms).toBe(want.timestamp_ms);
      expect(r.key === null ? null : r.key.toString()).toBe(want.key ?? null);
    });
    expect(out[129]!.value!.equals(Buffer.alloc(129 * 70, 129))).toBe(true);
    expect(readBatchHeader(b).max_timestamp_ms).toBe(T0 + 2 ** 50);
  });
});

// ---------------------------------------------------------------- header readers

describe('header readers', () => {
  test('readBatchHeader and the accessors work at any position of a larger buffer', () => {
    const a = encodeBatch([{ value: 'first', timestamp_ms: 3 }], { base_offset: 10, partition_leader_epoch: 2 });
    const b = encodeBatch(THREE, { base_offset: 11, partition_leader_epoch: 4 });
    const buf = Buffer.concat([a, b]);
    const h = readBatchHeader(buf, a.length);
    expect(h).toEqual(readBatchHeader(b));
    expect(h).toMatchObject({ base_offset: 11, partition_leader_epoch: 4, size_bytes: b.length, record_count: 3, last_offset_delta: 2 });
    expect(batchSizeAt(buf, 0)).toBe(a.length);
    expect(batchSizeAt(buf, a.length)).toBe(b.length);
    expect(batchBaseOffset(buf, a.length)).toBe(11);
    expect(batchLastOffsetDelta(buf, a.length)).toBe(2);
    expect(batchMaxTimestamp(buf, a.length)).toBe(T0 + 5);
    expect(batchLeaderEpoch(buf, a.length)).toBe(4);
    expect(batchLeaderEpoch(buf, 0)).toBe(2);
  });

  test('batchSizeAt is -1 with fewer than 12 bytes; reads the length field with 12', () => {
    const b = encodeBatch([{ value: 'v', timestamp_ms: 1 }]);
    for (let n = 0; n < 12; n++) expect(batchSizeAt(b.subarray(0, n))).toBe(-1);
    expect(batchSizeAt(b.subarray(0, 12))).toBe(b.length);
    expect(batchSizeAt(b, b.length - 11)).toBe(-1);
  });

  test('readBatchHeader refuses fewer than 61 bytes with INVALID_BATCH', () => {
    const b = encodeBatch([{ value: 'v', timestamp_ms: 1 }]);
    expect(readBatchHeader(b.subarray(0, 61)).record_count).toBe(1);
    for (const n of [0, 12, 60]) engineError(() => readBatchHeader(b.subarray(0, n)), 'INVALID_BATCH');
    engineError(() => readBatchHeader(b, b.length - 60), 'INVALID_BATCH');
  });

  test('negative 64-bit fields read back as negative numbers', () => {
    const b = encodeBatch([{ value: 'v', timestamp_ms: -5 }], { producer_id: -1 });
    expect(readBatchHeader(b)).toMatchObject({ base_timestamp_ms: -5, max_timestamp_ms: -5, producer_id: -1 });
  });
});

// ---------------------------------------------------------------- stamping

describe('stampBatch', () => {
  test('rewrites only baseOffset and partitionLeaderEpoch; the CRC stays valid', () => {
    const b = encodeBatch(THREE, { base_offset: 0, partition_leader_epoch: 0 });
    const before = Buffer.from(b);
    for (const [offset, epoch] of [
      [1, 1],
      [2 ** 40, 123],
      [Number.MAX_SAFE_INTEGER - 10, 2 ** 31 - 1],
      [0, -1],
    ] as const) {
      stampBatch(b, 0, offset, epoch);
      expect(checkBatch(b)).toBeNull();
      expect(b.readUInt32BE(F_CRC)).toBe(before.readUInt32BE(F_CRC));
      expect(b.subarray(8, 12).equals(before.subarray(8, 12))).toBe(true);
      expect(b.subarray(16).equals(before.subarray(16))).toBe(true);
      expect(readBatchHeader(b)).toMatchObject({ base_offset: offset, partition_leader_epoch: epoch });
      expect(decodeRecords(b).map((r) => r.offset)).toEqual([offset, offset + 1, offset + 2]);
    }
  });

  test('at a position inside a record set, touches only that batch', () => {
    const a = encodeBatch([{ value: 'a', timestamp_ms: 1 }]);
    const b = encodeBatch([{ value: 'b', timestamp_ms: 2 }]);
    const set = Buffer.concat([a, b, a]);
    const copy = Buffer.from(set);
    stampBatch(set, a.length, 99, 7);
    expect(set.subarray(0, a.length).equals(copy.subarray(0, a.length))).toBe(true);
    expect(set.subarray(a.length + b.length).equals(copy.subarray(a.length + b.length))).toBe(true);
    expect(batchBaseOffset(set, a.length)).toBe(99);
    expect(batchLeaderEpoch(set, a.length)).toBe(7);
    expect(splitRecordSet(set).map((x) => batchBaseOffset(x))).toEqual([0, 99, 0]);
  });
});

// ---------------------------------------------------------------- checkBatch

describe('checkBatch', () => {
  const good = encodeBatch(THREE, { base_offset: 5, partition_leader_epoch: 3 });

  test('a sound batch is null', () => {
    expect(checkBatch(good)).toBeNull();
  });

  test('any byte changed in [21, end) is caught (three different flips per byte)', () => {
    for (let i = CRC_START; i < good.length; i++) {
      for (const mask of [0x01, 0x80, 0xff]) {
        const c = Buffer.from(good);
        c[i] = c[i]! ^ mask;
        expect(checkBatch(c), `byte ${i} ^ ${mask}`).toMatch(/CRC-32C mismatch/);
      }
    }
  });

  test('bytes outside the CRC: offset and epoch may change freely; magic, CRC and length may not', () => {
    for (const i of [0, 1, 7, 12, 13, 15]) {
      const c = Buffer.from(good);
      c[i] = c[i]! ^ 0xff;
      expect(checkBatch(c), `byte ${i}`).toBeNull();
    }
    for (const i of [17, 18, 19, 20]) {
      const c = Buffer.from(good);
      c[i] = c[i]! ^ 0x01;
      expect(checkBatch(c), `crc byte ${i}`).toMatch(/CRC-32C mismatch/);
    }
    for (const magic of [0, 1, 3, -1]) {
      const c = Buffer.from(good);
      c.writeInt8(magic, F_MAGIC);
      expect(checkBatch(c)).toBe(`magic ${magic}, expected 2`);
    }
    const longer = Buffer.from(good);
    longer.writeInt32BE(good.length - 12 + 1, F_BATCH_LENGTH);
    expect(checkBatch(longer)).toMatch(/runs past/);
    const shorter = Buffer.from(good);
    shorter.writeInt32BE(good.length - 12 - 1, F_BATCH_LENGTH);
    expect(checkBatch(shorter)).toMatch(/CRC-32C mismatch/);
  });

  test('framing: too few bytes, a length shorter than a header, a length past the bytes present', () => {
    expect(checkBatch(good.subarray(0, 60))).toMatch(/a batch header needs 61/);
    expect(checkBatch(good, 0, 60)).toMatch(/only 60 bytes left/);
    expect(checkBatch(good, 0, good.length - 1)).toMatch(/runs past the .* bytes present/);
    expect(checkBatch(good.subarray(0, good.length - 1))).toMatch(/runs past/);
    for (const len of [48, 0, -1, -(2 ** 31)]) {
      const c = Buffer.from(good);
      c.writeInt32BE(len, F_BATCH_LENGTH);
      expect(checkBatch(c), `batchLength ${len}`).toMatch(/shorter than a header/);
    }
    const huge = Buffer.from(good);
    huge.writeInt32BE(2 ** 31 - 1, F_BATCH_LENGTH);
    expect(checkBatch(huge)).toMatch(/runs past/);
  });

  test('counts: negative, or more records than the offset span (re-sealed so the CRC holds)', () => {
    const over = Buffer.from(good);
    over.writeInt32BE(1, F_LAST_OFFSET_DELTA); // 3 records in a span of 2 offsets
    expect(checkBatch(reseal(over))).toMatch(/recordCount 3 exceeds lastOffsetDelta\+1 = 2/);
    const negCount = Buffer.from(good);
    negCount.writeInt32BE(-1, F_RECORD_COUNT);
    expect(checkBatch(reseal(negCount))).toMatch(/negative record count/);
    const negLod = Buffer.from(good);
    negLod.writeInt32BE(-2, F_LAST_OFFSET_DELTA);
    expect(checkBatch(reseal(negLod))).toMatch(/negative record count/);
    // fewer records than the span (compaction leaves gaps) is sound
    const gaps = Buffer.from(good);
    gaps.writeInt32BE(10, F_LAST_OFFSET_DELTA);
    expect(checkBatch(reseal(gaps))).toBeNull();
  });

  test('checks the batch at pos within a record set, bounded by avail', () => {
    const other = encodeBatch([{ value: 'x', timestamp_ms: 1 }]);
    const set = Buffer.concat([other, good, other]);
    expect(checkBatch(set, other.length)).toBeNull();
    expect(checkBatch(set, other.length, good.length)).toBeNull();
    expect(checkBatch(set, other.length, good.length - 1)).toMatch(/runs past/);
    set[other.length + 40] = set[other.length + 40]! ^ 4;
    expect(checkBatch(set, other.length)).toMatch(/CRC-32C mismatch/);
    expect(checkBatch(set, 0)).toBeNull();
    expect(checkBatch(set, other.length + good.length)).toBeNull();
  });
});

// ---------------------------------------------------------------- splitRecordSet

describe('splitRecordSet', () => {
  const a = encodeBatch([{ value: 'a', timestamp_ms: 1 }], { base_offset: 0 });
  const b = encodeBatch(THREE, { base_offset: 1 });
  const c = encodeBatch([{ value: Buffer.alloc(1000, 1), timestamp_ms: 2 }], { base_offset: 4 });

  test('splits concatenated batches into views of the input', () => {
    const set = Buffer.concat([a, b, c, a]);
    const parts = splitRecordSet(set);
    expect(parts.map((p) => p.length)).toEqual([a.length, b.length, c.length, a.length]);
    expect(parts[0]!.equals(a) && parts[1]!.equals(b) && parts[2]!.equals(c) && parts[3]!.equals(a)).toBe(true);
    expect(parts[1]!.buffer).toBe(set.buffer);
    expect(parts[1]!.byteOffset).toBe(set.byteOffset + a.length);
    parts[1]![0] = 0x7f; // a view, not a copy
    expect(set[a.length]).toBe(0x7f);
    expect(splitRecordSet(b)).toHaveLength(1);
  });

  test('empty input is INVALID_BATCH', () => {
    engineError(() => splitRecordSet(Buffer.alloc(0)), 'INVALID_BATCH');
  });

  test('fewer than 61 bytes, alone or trailing a good batch, is INVALID_BATCH with the position', () => {
    for (const n of [1, 12, 60]) {
      const e = engineError(() => splitRecordSet(b.subarray(0, n)), 'INVALID_BATCH');
      expect(e.details).toMatchObject({ position: 0 });
      const t = engineError(() => splitRecordSet(Buffer.concat([a, b.subarray(0, n)])), 'INVALID_BATCH');
      expect(t.details).toMatchObject({ position: a.length });
      expect(t.message).toMatch(new RegExp(`trailing ${n} bytes at position ${a.length}`));
    }
  });

  test('a batch cut short after its header is CORRUPT_BATCH at its position', () => {
    for (const cut of [61, 62, b.length - 1]) {
      const e = engineError(() => splitRecordSet(Buffer.concat([a, b.subarray(0, cut)])), 'CORRUPT_BATCH');
      expect(e.details).toMatchObject({ position: a.length });
    }
  });

  test('wrong magic is INVALID_BATCH (an unsupported format, not damage), naming the magic', () => {
    for (const magic of [0, 1, 3, 127]) {
      const bad = Buffer.from(b);
      bad.writeInt8(magic, F_MAGIC);
      const e = engineError(() => splitRecordSet(Buffer.concat([a, bad])), 'INVALID_BATCH');
      expect(e.details).toEqual({ position: a.length, magic });
      expect(e.message).toMatch(/only magic 2/);
    }
  });

  test('a CRC mismatch anywhere is CORRUPT_BATCH at that batch', () => {
    const set = Buffer.concat([a, b, c]);
    set[a.length + b.length + 500] = set[a.length + b.length + 500]! ^ 0x20;
    const e = engineError(() => splitRecordSet(set), 'CORRUPT_BATCH');
    expect(e.details).toEqual({ position: a.length + b.length });
    expect(e.message).toMatch(/CRC-32C mismatch/);
  });

  test('a batchLength too small or too large is CORRUPT_BATCH', () => {
    for (const len of [0, 48, b.length - 12 + 1, 2 ** 31 - 1, -5]) {
      const bad = Buffer.from(b);
      bad.writeInt32BE(len, F_BATCH_LENGTH);
      engineError(() => splitRecordSet(bad), 'CORRUPT_BATCH');
    }
  });

  test('too many records for the offset span is CORRUPT_BATCH; zero records is INVALID_BATCH', () => {
    const over = Buffer.from(b);
    over.writeInt32BE(0, F_LAST_OFFSET_DELTA);
    engineError(() => splitRecordSet(reseal(over)), 'CORRUPT_BATCH');
    const none = Buffer.from(a);
    none.writeInt32BE(0, F_RECORD_COUNT);
    const e = engineError(() => splitRecordSet(Buffer.concat([b, reseal(none)])), 'INVALID_BATCH');
    expect(e.details).toEqual({ position: b.length });
    expect(e.message).toMatch(/has no records/);
  });

  test('errors carry the Kafka and gRPC codes the edges map them to', () => {
    const inv = engineError(() => splitRecordSet(Buffer.alloc(0)), 'INVALID_BATCH');
    expect([inv.kafka_code, inv.grpc_status, inv.retriable]).toEqual([87, 3, false]);
    const bad = Buffer.from(a);
    bad[30] = bad[30]! ^ 1;
    const cor = engineError(() => splitRecordSet(bad), 'CORRUPT_BATCH');
    expect([cor.kafka_code, cor.grpc_status, cor.retriable]).toEqual([2, 3, false]);
    expect(cor.name).toBe('CorruptBatchError');
  });
});

// ---------------------------------------------------------------- records

describe('decodeRecords / forEachRecord', () => {
  test('keys, values, nulls, empties and headers come back exactly', () => {
    const records: RecordInput[] = [
      { key: 'key', value: 'value', timestamp_ms: T0 },
      { key: null, value: 'no key', timestamp_ms: T0 + 1 },
      { key: 'tombstone', value: null, timestamp_ms: T0 + 2 },
      { key: null, value: null, timestamp_ms: T0 + 3 },
      { key: '', value: '', timestamp_ms: T0 + 4 },
      {
        key: Buffer.from([0, 255, 128]),
        value: Buffer.from([1, 2, 3]),
        timestamp_ms: T0 - 1000,
        headers: [
          { key: 'trace', value: Buffer.from('abc') },
          { key: 'nothing', value: null },
          { key: 'trace', value: Buffer.from('dup') },
          { key: '', value: Buffer.alloc(0) },
          { key: 'ключ-😀', value: Buffer.from('v') },
        ],
      },
    ];
    const b = encodeBatch(records, { base_offset: 100 });
    const out = decodeRecords(b);
    expect(plainRecords(out)).toEqual([
      { offset: 100, timestamp_ms: T0, key: 'key', value: 'value', headers: [] },
      { offset: 101, timestamp_ms: T0 + 1, key: null, value: 'no key', headers: [] },
      { offset: 102, timestamp_ms: T0 + 2, key: 'tombstone', value: null, headers: [] },
      { offset: 103, timestamp_ms: T0 + 3, key: null, value: null, headers: [] },
      { offset: 104, timestamp_ms: T0 + 4, key: '', value: '', headers: [] },
      {
        offset: 105,
        timestamp_ms: T0 - 1000,
        key: '\u0000\u00ff\u0080',
        value: '\u0001\u0002\u0003',
        headers: [
          ['trace', 'abc'],
          ['nothing', null],
          ['trace', 'dup'],
          ['', ''],
          ['ключ-😀', 'v'],
        ],
      },
    ]);
    // an empty key is not a null key
    expect(out[4]!.key).toEqual(Buffer.alloc(0));
    expect(out[5]!.headers[4]!.key).toBe('ключ-😀');
  });

  test('a header key with a lone surrogate is encoded as U+FFFD, and the sizes still add up', () => {
    const b = encodeBatch([{ value: 'v', timestamp_ms: 1, headers: [{ key: 'a\ud800b', value: null }] }]);
    expect(checkBatch(b)).toBeNull();
    expect(decodeRecords(b)[0]!.headers[0]!.key).toBe('a\ufffdb');
  });

  test('keys and values are views into the batch, not copies', () => {
    const b = encodeBatch([{ key: 'kk', value: 'vvvv', timestamp_ms: 1 }]);
    const [r] = decodeRecords(b);
    expect(r!.value!.buffer).toBe(b.buffer);
    b[b.length - 2] = 'X'.charCodeAt(0); // last value byte (the header count follows it)
    expect(r!.value!.toString()).toBe('vvvX');
  });

  test('forEachRecord stops when the callback returns false', () => {
    const b = encodeBatch(Array.from({ length: 10 }, (_, i) => ({ value: `v${i}`, timestamp_ms: i })));
    const seen: number[] = [];
    forEachRecord(b, (r) => {
      seen.push(r.offset);
      return r.offset < 3;
    });
    expect(seen).toEqual([0, 1, 2, 3]);
    let all = 0;
    forEachRecord(b, () => {
      all++;
    });
    expect(all).toBe(10);
  });

  test('offsets follow a stamped base offset; timestamps are baseTimestamp + delta', () => {
    const b = encodeBatch(THREE);
    stampBatch(b, 0, 2 ** 45, 1);
    expect(decodeRecords(b).map((r) => [r.offset, r.timestamp_ms])).toEqual([
      [2 ** 45, T0],
      [2 ** 45 + 1, T0 + 5],
      [2 ** 45 + 2, T0 - 10],
    ]);
  });

  test('with timestampType = LogAppendTime every record carries the batch maxTimestamp (as Kafka)', () => {
    const b = encodeBatch(THREE);
    b.writeInt16BE(ATTR_TIMESTAMP_LOG_APPEND, F_ATTRIBUTES);
    b.writeBigInt64BE(BigInt(T0 + 777), F_MAX_TIMESTAMP); // what a broker stamps
    reseal(b);
    expect(checkBatch(b)).toBeNull();
    expect(decodeRecords(b).map((r) => r.timestamp_ms)).toEqual([T0 + 777, T0 + 777, T0 + 777]);
    expect(decodeRecords(b).map((r) => r.value?.toString() ?? null)).toEqual(['value', 'second', null]);
  });

  test('transactional and control bits do not change decoding', () => {
    const b = encodeBatch(THREE, { transactional: true });
    expect(readBatchHeader(b).attributes).toBe(ATTR_TRANSACTIONAL);
    expect(plainRecords(decodeRecords(b))).toEqual(plainRecords(decodeRecords(encodeBatch(THREE))));
  });
});

describe('malformed records are CORRUPT_BATCH, never a crash', () => {
  // One record, no headers: [61] length varint, [62] attributes, [63] tsDelta, [64] offsetDelta,
  // [65] keyLength (-1 = 0x01), [66] valueLength, [67..] value, then headerCount.
  const base = () => encodeBatch([{ value: 'hello', timestamp_ms: 1 }]);

  test('the layout assumed below holds', () => {
    expect(base().subarray(61).toString('hex')).toBe('16000000010a68656c6c6f00');
  });

  test.each([
    ['record length past the batch', (b: Buffer) => (b[61] = 0x7e)],
    ['record length negative', (b: Buffer) => (b[61] = 0x03)],
    ['record length shorter than its fields', (b: Buffer) => (b[61] = 0x0c)],
    ['value length past the record', (b: Buffer) => (b[66] = 0x0e)],
    ['value length -2', (b: Buffer) => (b[66] = 0x03)],
    ['key length past the record', (b: Buffer) => (b[65] = 0x20)],
    ['header count with no headers present', (b: Buffer) => (b[72] = 0x02)],
    ['more records claimed than present', (b: Buffer) => b.writeInt32BE(2, F_RECORD_COUNT)],
    ['an unterminated varint', (b: Buffer) => b.fill(0xff, 61)],
  ])('%s', (_name, mutate) => {
    const b = base();
    mutate(b);
    reseal(b);
    const e = engineError(() => decodeRecords(b), 'CORRUPT_BATCH');
    expect(e.details).toMatchObject({ base_offset: 0 });
  });
});

// ---------------------------------------------------------------- compression

describe('compressed batches', () => {
  const plain = encodeBatch(THREE, { base_offset: 40 });

  test('gzip (attributes = 1, records section gzipped, CRC recomputed) validates and decodes like the plain batch', () => {
    const gz = gzipped(plain);
    expect(readBatchHeader(gz).attributes & COMPRESSION_MASK).toBe(Compression.gzip);
    expect(gz.length).not.toBe(plain.length);
    expect(checkBatch(gz)).toBeNull();
    expect(splitRecordSet(Buffer.concat([gz, plain]))).toHaveLength(2);
    expect(recordsSection(gz).equals(plain.subarray(61))).toBe(true);
    expect(plainRecords(decodeRecords(gz))).toEqual(plainRecords(decodeRecords(plain)));
    stampBatch(gz, 0, 1000, 2);
    expect(checkBatch(gz)).toBeNull();
    expect(decodeRecords(gz).map((r) => r.offset)).toEqual([1000, 1001, 1002]);
  });

  test('gzip with other attribute bits set (transactional) still decodes', () => {
    const gz = gzipped(plain, ATTR_TRANSACTIONAL);
    expect(readBatchHeader(gz).attributes).toBe(0x11);
    expect(decodeRecords(gz).map((r) => r.key?.toString() ?? null)).toEqual(['key', null, 'k3']);
  });

  test('a gzip section that does not decompress is CORRUPT_BATCH (not a raw zlib error)', () => {
    const notGzip = Buffer.concat([plain.subarray(0, 61), Buffer.from('definitely not gzip')]);
    notGzip.writeInt16BE(Compression.gzip, F_ATTRIBUTES);
    reseal(notGzip);
    expect(checkBatch(notGzip)).toBeNull(); // the CRC is fine: the producer sent this
    engineError(() => decodeRecords(notGzip), 'CORRUPT_BATCH');
    const gz = gzipped(plain);
    const truncated = reseal(Buffer.from(gz.subarray(0, gz.length - 10)));
    engineError(() => decodeRecords(truncated), 'CORRUPT_BATCH');
  });

  /** `plain` with its records section replaced by `section` and the codec bits set (CRC recomputed). */
  const withSection = (codec: number, section: Buffer): Buffer => {
    const b = Buffer.concat([plain.subarray(0, BATCH_HEADER_BYTES), section]);
    b.writeInt16BE(codec, F_ATTRIBUTES);
    return reseal(b);
  };
  const records = plain.subarray(BATCH_HEADER_BYTES);
  /** Java's and kafka-python's snappy framing: the xerial header, then [int32 length][raw block]... */
  const xerial = (blocks: Buffer[]): Buffer => {
    const header = Buffer.from([0x82, 0x53, 0x4e, 0x41, 0x50, 0x50, 0x59, 0x00, 0, 0, 0, 1, 0, 0, 0, 1]);
    const framed = blocks.map((raw) => {
      const len = Buffer.alloc(4);
      len.writeInt32BE(raw.length);
      return Buffer.concat([len, raw]);
    });
    return Buffer.concat([header, ...framed]);
  };
  // `zstd -c` of THREE's records section (zstd 1.5.4): fzstd decodes, nothing here encodes zstd.
  const ZSTD_THREE = '28b52ffd04587901001c000000066b65790a76616c7565002c000a02010c7365636f6e64020a74726163650661626310001304046b330100ffa1cbb4';

  test.each([
    ['snappy, raw (librdkafka)', Compression.snappy, () => snappyCompress(records)],
    ['snappy, xerial framing in one block (Java, kafka-python)', Compression.snappy, () => xerial([snappyCompress(records)])],
    ['snappy, xerial framing in two blocks', Compression.snappy, () => xerial([snappyCompress(records.subarray(0, 20)), snappyCompress(records.subarray(20))])],
    ['lz4 frame', Compression.lz4, () => lz4Frame(records)],
    ['zstd frame', Compression.zstd, () => Buffer.from(ZSTD_THREE, 'hex')],
  ])('%s: validates and decodes like the plain batch', (_name, codec, section) => {
    const b = withSection(codec, section());
    expect(checkBatch(b)).toBeNull();
    expect(splitRecordSet(b)).toHaveLength(1);
    expect(recordsSection(b).equals(records)).toBe(true);
    expect(plainRecords(decodeRecords(b))).toEqual(plainRecords(decodeRecords(plain)));
  });

  test.each([
    ['snappy', Compression.snappy],
    ['lz4', Compression.lz4],
    ['zstd', Compression.zstd],
  ])('a %s section that does not decompress is CORRUPT_BATCH, naming the codec', (name, codec) => {
    const b = withSection(codec, Buffer.from('definitely not compressed, whatever the codec'));
    expect(checkBatch(b)).toBeNull(); // the CRC is fine: the producer sent this
    const e = engineError(() => decodeRecords(b), 'CORRUPT_BATCH');
    expect(e.message).toContain(`${name} records section does not decompress`);
  });

  test('a xerial snappy block whose length runs past the section is CORRUPT_BATCH', () => {
    const framed = xerial([snappyCompress(records)]);
    framed.writeInt32BE(framed.length, 16);
    engineError(() => decodeRecords(withSection(Compression.snappy, framed)), 'CORRUPT_BATCH');
  });

  test('codec ids 5-7 (which Kafka does not define) are INVALID_BATCH', () => {
    for (const codec of [5, 6, 7]) {
      const e = engineError(() => decodeRecords(withSection(codec, Buffer.from(records))), 'INVALID_BATCH');
      expect(e.message).toMatch(new RegExp(`compression codec ${codec} is not one Kafka defines`));
    }
  });
});

// ---------------------------------------------------------------- forEachBatch

describe('forEachBatch', () => {
  test('walks a chain of batches', () => {
    const a = encodeBatch([{ value: 'a', timestamp_ms: 1 }]);
    const b = encodeBatch(THREE);
    const seen: Array<[number, number]> = [];
    forEachBatch(Buffer.concat([a, b, a]), (pos, size) => seen.push([pos, size]));
    expect(seen).toEqual([
      [0, a.length],
      [a.length, b.length],
      [a.length + b.length, a.length],
    ]);
    forEachBatch(Buffer.alloc(0), () => {
      throw new Error('no batches in an empty buffer');
    });
  });

  test('a malformed chain is an assertion failure (it must have been validated before)', () => {
    const a = encodeBatch([{ value: 'a', timestamp_ms: 1 }]);
    expect(() => forEachBatch(Buffer.concat([a, a.subarray(0, 30)]), () => {})).toThrow(AssertionError);
    const bad = Buffer.from(a);
    bad.writeInt32BE(10, F_BATCH_LENGTH);
    expect(() => forEachBatch(bad, () => {})).toThrow(AssertionError);
  });
});
