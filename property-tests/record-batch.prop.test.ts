/**
 * Property tests of the RecordBatch v2 codec. Replay a failure with the seed it prints:
 *   SEED=123456 npx vitest run property-tests/record-batch.prop.test.ts
 */
import { gzipSync } from 'node:zlib';
import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import { EngineError } from '../engine/base/errors.js';
import { crc32c } from '../engine/format/crc32c.js';
import {
  BATCH_HEADER_BYTES,
  CRC_START,
  Compression,
  F_ATTRIBUTES,
  F_BATCH_LENGTH,
  F_CRC,
  checkBatch,
  decodeRecords,
  encodeBatch,
  readBatchHeader,
  splitRecordSet,
  stampBatch,
  type BatchOptions,
  type DecodedRecord,
  type RecordInput,
} from '../engine/format/record-batch.js';
import { readZigzag, writeZigzag, zigzagSize } from '../engine/format/varint.js';
import { refBatch, refCrc32c, refVarint } from '../test/golden/reference-batch.js';

const seed = Number(process.env.SEED ?? Date.now() % 2 ** 31);

/** fc.assert with the run's seed; a failure names the seed to replay it with. */
function check<Ts extends [unknown, ...unknown[]]>(prop: fc.IProperty<Ts>, numRuns: number): void {
  try {
    // Shrinking is synchronous here, out of reach of the test timeout: stop it in time, keeping
    // the smallest counterexample found so far.
    fc.assert(prop, { seed, numRuns, interruptAfterTimeLimit: 45_000, markInterruptAsFailure: true });
  } catch (err) {
    const msg = `property failed — replay with SEED=${seed}\n${(err as Error).message}`;
    console.error(msg);
    throw new Error(msg, { cause: err });
  }
}

// ---------------------------------------------------------------- generators

const bytes = (maxLength: number) => fc.uint8Array({ maxLength }).map((u) => Buffer.from(u));
const nullable = <T>(arb: fc.Arbitrary<T>) => fc.option(arb, { nil: null, freq: 4 });
/** Mostly small payloads, sometimes a few KB. */
const payload = fc.oneof({ arbitrary: bytes(64), weight: 4 }, { arbitrary: bytes(4096), weight: 1 });
const EPOCH_2023 = 1_700_000_000_000;
/** Timestamps near a realistic "now", with arbitrary (non-monotonic) jitter, sometimes far off. */
const timestamp = fc.oneof(
  { arbitrary: fc.integer({ min: -86_400_000, max: 86_400_000 }).map((d) => EPOCH_2023 + d), weight: 4 },
  { arbitrary: fc.integer({ min: -(2 ** 50), max: 2 ** 50 }), weight: 1 },
  { arbitrary: fc.constantFrom(-1, 0, 2 ** 50, -(2 ** 50)), weight: 1 },
);
const header = fc.record({ key: fc.string({ unit: 'grapheme', maxLength: 12 }), value: nullable(bytes(48)) });
const record: fc.Arbitrary<RecordInput & { timestamp_ms: number }> = fc.record({
  key: nullable(bytes(64)),
  value: nullable(payload),
  timestamp_ms: timestamp,
  headers: fc.array(header, { maxLength: 4 }),
});
const records = fc.array(record, { minLength: 1, maxLength: 12 });
const options: fc.Arbitrary<BatchOptions> = fc.record(
  {
    base_offset: fc.integer({ min: 0, max: 2 ** 52 }),
    partition_leader_epoch: fc.integer({ min: -1, max: 2 ** 31 - 1 }),
    producer_id: fc.integer({ min: -1, max: 2 ** 50 }),
    producer_epoch: fc.integer({ min: -1, max: 2 ** 15 - 1 }),
    base_sequence: fc.integer({ min: -1, max: 2 ** 31 - 1 }),
    transactional: fc.boolean(),
  },
  { requiredKeys: [] },
);

// ---------------------------------------------------------------- expectations

const expected = (input: readonly RecordInput[], base_offset: number) =>
  input.map((r, i) => ({
    offset: base_offset + i,
    timestamp_ms: r.timestamp_ms,
    key: r.key ?? null,
    value: r.value ?? null,
    headers: (r.headers ?? []).map((h) => ({ key: h.key, value: h.value })),
  }));

const actual = (out: DecodedRecord[]) =>
  out.map((r) => ({ offset: r.offset, timestamp_ms: r.timestamp_ms, key: r.key, value: r.value, headers: r.headers }));

// ---------------------------------------------------------------- properties

describe(`record batch properties (SEED=${seed})`, () => {
  test('decode(encode(x)) = x, with every header field as specified', () => {
    check(
      fc.property(records, options, (input, opts) => {
        const b = encodeBatch(input, opts);
        expect(checkBatch(b)).toBeNull();
        expect(actual(decodeRecords(b))).toEqual(expected(input, opts.base_offset ?? 0));
        const stamps = input.map((r) => r.timestamp_ms);
        expect(readBatchHeader(b)).toEqual({
          base_offset: opts.base_offset ?? 0,
          size_bytes: b.length,
          partition_leader_epoch: opts.partition_leader_epoch ?? 0,
          magic: 2,
          crc: crc32c(b.subarray(CRC_START)),
          attributes: opts.transactional ? 0x10 : 0,
          last_offset_delta: input.length - 1,
          base_timestamp_ms: stamps[0],
          max_timestamp_ms: Math.max(...stamps),
          producer_id: opts.producer_id ?? -1,
          producer_epoch: opts.producer_epoch ?? -1,
          base_sequence: opts.base_sequence ?? -1,
          record_count: input.length,
        });
      }),
      200,
    );
  });

  test('encodeBatch is byte-identical to the independent reference builder', () => {
    check(
      fc.property(records, options, (input, opts) => {
        const ours = encodeBatch(input, opts);
        const ref = refBatch({
          baseOffset: BigInt(opts.base_offset ?? 0),
          partitionLeaderEpoch: opts.partition_leader_epoch ?? 0,
          attributes: opts.transactional ? 0x10 : 0,
          producerId: BigInt(opts.producer_id ?? -1),
          producerEpoch: opts.producer_epoch ?? -1,
          baseSequence: opts.base_sequence ?? -1,
          records: input.map((r) => ({
            key: (r.key as Buffer | null) ?? null,
            value: r.value as Buffer | null,
            timestamp: BigInt(r.timestamp_ms!),
            headers: r.headers ?? [],
          })),
        });
        expect(ours.equals(ref)).toBe(true);
      }),
      150,
    );
  });

  test('stampBatch keeps the CRC valid, touches only bytes 0-7 and 12-15, and shifts every offset', () => {
    check(
      fc.property(records, fc.integer({ min: 0, max: 2 ** 52 }), fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 }), (input, offset, epoch) => {
        const b = encodeBatch(input);
        const before = Buffer.from(b);
        stampBatch(b, 0, offset, epoch);
        expect(checkBatch(b)).toBeNull();
        expect(b.subarray(8, 12).equals(before.subarray(8, 12))).toBe(true);
        expect(b.subarray(16).equals(before.subarray(16))).toBe(true);
        expect(readBatchHeader(b)).toMatchObject({ base_offset: offset, partition_leader_epoch: epoch });
        expect(decodeRecords(b).map((r) => r.offset)).toEqual(input.map((_, i) => offset + i));
      }),
      150,
    );
  });

  test('any single-byte corruption in [21, end) is detected, by checkBatch and by splitRecordSet', () => {
    check(
      fc.property(records, fc.nat(), fc.integer({ min: 1, max: 255 }), (input, where, mask) => {
        const b = encodeBatch(input);
        const at = CRC_START + (where % (b.length - CRC_START));
        b[at] = b[at]! ^ mask;
        expect(checkBatch(b)).toMatch(/CRC-32C mismatch/);
        expect(() => splitRecordSet(b)).toThrow(expect.objectContaining({ code: 'CORRUPT_BATCH' }));
      }),
      300,
    );
  });

  test('a record set of concatenated batches splits back into exactly those batches; any cut short is refused', () => {
    check(
      fc.property(fc.array(records, { minLength: 1, maxLength: 5 }), fc.nat(), (sets, cutAt) => {
        const batches = sets.map((rs, i) => encodeBatch(rs, { base_offset: i * 100 }));
        const all = Buffer.concat(batches);
        const parts = splitRecordSet(all);
        expect(parts.map((p) => p.toString('hex'))).toEqual(batches.map((p) => p.toString('hex')));
        const cut = cutAt % all.length; // a strict prefix: empty, ending on a batch boundary, or mid-batch
        const boundaries = new Set<number>();
        let pos = 0;
        for (const b of batches) boundaries.add((pos += b.length));
        const prefix = all.subarray(0, cut);
        if (cut === 0) expect(() => splitRecordSet(prefix)).toThrow(expect.objectContaining({ code: 'INVALID_BATCH' }));
        else if (boundaries.has(cut)) expect(splitRecordSet(prefix).length).toBeGreaterThan(0);
        else expect(() => splitRecordSet(prefix)).toThrow(expect.objectContaining({ code: expect.stringMatching(/^(INVALID_BATCH|CORRUPT_BATCH)$/) }));
      }),
      150,
    );
  });

  test('gzip: a batch with its records section gzipped decodes to the same records', () => {
    check(
      fc.property(records, (input) => {
        const plain = encodeBatch(input);
        const gz = Buffer.concat([plain.subarray(0, BATCH_HEADER_BYTES), gzipSync(plain.subarray(BATCH_HEADER_BYTES))]);
        gz.writeInt32BE(gz.length - 12, F_BATCH_LENGTH);
        gz.writeInt16BE(Compression.gzip, F_ATTRIBUTES);
        gz.writeUInt32BE(crc32c(gz.subarray(CRC_START)), F_CRC);
        expect(checkBatch(gz)).toBeNull();
        expect(actual(decodeRecords(gz))).toEqual(actual(decodeRecords(plain)));
      }),
      60,
    );
  });

  test('decoding arbitrary damage under a recomputed CRC succeeds or throws a named error, never anything else', () => {
    check(
      fc.property(
        records,
        fc.boolean(),
        fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 4 }),
        (input, compress, edits) => {
          let b = encodeBatch(input);
          if (compress) {
            b = Buffer.concat([b.subarray(0, BATCH_HEADER_BYTES), gzipSync(b.subarray(BATCH_HEADER_BYTES))]);
            b.writeInt32BE(b.length - 12, F_BATCH_LENGTH);
            b.writeInt16BE(Compression.gzip, F_ATTRIBUTES);
          }
          // damage anywhere under the CRC, header fields included, mostly in the records section
          for (const [where, byte] of edits) {
            const from = where % 4 === 0 ? CRC_START : BATCH_HEADER_BYTES;
            b[from + (where % (b.length - from))] = byte;
          }
          b.writeUInt32BE(crc32c(b.subarray(CRC_START)), F_CRC); // a producer could send exactly this
          try {
            decodeRecords(b);
          } catch (err) {
            expect(err).toBeInstanceOf(EngineError);
            // Kafka defines codecs 0-4 (none, gzip, snappy, lz4, zstd), all decoded here; 5-7 are
            // no codec at all. A defined codec whose bytes do not decode is a corrupt batch.
            const unknown_codec = (b.readInt16BE(F_ATTRIBUTES) & 7) > 4;
            expect((err as EngineError).code).toBe(unknown_codec ? 'INVALID_BATCH' : 'CORRUPT_BATCH');
          }
        },
      ),
      300,
    );
  });

  test('CRC-32C equals the bit-by-bit reference, and chains incrementally', () => {
    check(
      fc.property(fc.uint8Array({ maxLength: 2048 }), fc.nat(), (data, split) => {
        const b = Buffer.from(data);
        expect(crc32c(b)).toBe(refCrc32c(b));
        const cut = b.length === 0 ? 0 : split % (b.length + 1);
        expect(crc32c(b.subarray(cut), crc32c(b.subarray(0, cut)))).toBe(crc32c(b));
      }),
      200,
    );
  });

  test('zig-zag varints round-trip over the exact range and match Kafka\'s encoding', () => {
    check(
      fc.property(fc.oneof(fc.integer(), fc.integer({ min: -(2 ** 52), max: Number.MAX_SAFE_INTEGER })), (v) => {
        const buf = Buffer.alloc(12);
        const end = writeZigzag(buf, 0, v);
        expect(end).toBe(zigzagSize(v));
        expect(buf.subarray(0, end).equals(Buffer.from(refVarint(v)))).toBe(true);
        const next = { pos: 0 };
        expect(readZigzag(buf, 0, next)).toBe(v);
        expect(next.pos).toBe(end);
      }),
      500,
    );
  });
});
