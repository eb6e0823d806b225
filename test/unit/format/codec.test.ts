import { gzipSync } from 'node:zlib';
import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import {
  CRC_START,
  F_ATTRIBUTES,
  F_CRC,
  checkBatch,
  crc32c,
  decodeRecords,
  encodeBatch,
  forEachBatch,
  readBatchHeader,
  splitRecordSet,
  stampBatch,
} from '../../../engine/index.js';
import { readZigzag, writeZigzag, zigzagSize } from '../../../engine/format/varint.js';

const seed = Number(process.env.SEED ?? Date.now() % 2 ** 31);

describe('CRC-32C', () => {
  test('published check values (RFC 3720 appendix B.4 and the standard check string)', () => {
    expect(crc32c(Buffer.from('123456789'))).toBe(0xe3069283);
    expect(crc32c(Buffer.alloc(32, 0))).toBe(0x8a9136aa);
    expect(crc32c(Buffer.alloc(32, 0xff))).toBe(0x62a8ab43);
    expect(crc32c(Buffer.from(Array.from({ length: 32 }, (_, i) => i)))).toBe(0x46dd794e);
    expect(crc32c(Buffer.from(Array.from({ length: 32 }, (_, i) => 31 - i)))).toBe(0x113fdb5c);
  });

  test('incremental: crc(a+b) = crc(b, crc(a))', () => {
    const a = Buffer.from('hello, ');
    const b = Buffer.from('world');
    expect(crc32c(b, crc32c(a))).toBe(crc32c(Buffer.concat([a, b])));
  });
});

describe('zig-zag varints', () => {
  const cases = [0, -1, 1, 63, -64, 64, -65, 127, 128, 2 ** 31 - 1, -(2 ** 31), 2 ** 50, -(2 ** 50)];
  test.each(cases)('%d round-trips with the size it claims', (v) => {
    const buf = Buffer.alloc(16);
    const end = writeZigzag(buf, 0, v);
    expect(end).toBe(zigzagSize(v));
    const next = { pos: 0 };
    expect(readZigzag(buf, 0, next)).toBe(v);
    expect(next.pos).toBe(end);
  });

  test('known encodings', () => {
    const enc = (v: number) => {
      const b = Buffer.alloc(10);
      return b.subarray(0, writeZigzag(b, 0, v)).toString('hex');
    };
    expect(enc(0)).toBe('00');
    expect(enc(-1)).toBe('01');
    expect(enc(1)).toBe('02');
    expect(enc(-64)).toBe('7f');
    expect(enc(64)).toBe('8001');
    expect(enc(150)).toBe('ac02');
  });

  test('truncated and over-long varints are errors', () => {
    expect(() => readZigzag(Buffer.from([0x80]), 0, { pos: 0 })).toThrow(RangeError);
    expect(() => readZigzag(Buffer.alloc(11, 0x80), 0, { pos: 0 })).toThrow(RangeError);
  });
});

describe('record batch', () => {
  test('header fields sit where the layout says', () => {
    const b = encodeBatch([{ value: 'x', timestamp_ms: 5 }, { value: 'y', timestamp_ms: 9 }], { base_offset: 3, partition_leader_epoch: 4, producer_id: 77, producer_epoch: 2, base_sequence: 11 });
    expect(readBatchHeader(b)).toEqual({
      base_offset: 3,
      size_bytes: b.length,
      partition_leader_epoch: 4,
      magic: 2,
      crc: b.readUInt32BE(F_CRC),
      attributes: 0,
      last_offset_delta: 1,
      base_timestamp_ms: 5,
      max_timestamp_ms: 9,
      producer_id: 77,
      producer_epoch: 2,
      base_sequence: 11,
      record_count: 2,
    });
    expect(b.readUInt32BE(F_CRC)).toBe(crc32c(b.subarray(CRC_START)));
  });

  test('stamping offset and epoch keeps the CRC valid; any byte flipped under the CRC is caught', () => {
    const b = encodeBatch([{ key: 'k', value: 'v'.repeat(100) }]);
    stampBatch(b, 0, 2 ** 40, 123);
    expect(checkBatch(b)).toBeNull();
    for (let i = CRC_START; i < b.length; i++) {
      const c = Buffer.from(b);
      c[i] = c[i]! ^ 0x01;
      expect(checkBatch(c)).toMatch(/CRC-32C mismatch|recordCount/);
    }
  });

  test('bad input is refused with named errors', () => {
    const good = encodeBatch([{ value: 'v' }]);
    const wrongMagic = Buffer.from(good);
    wrongMagic[16] = 1;
    expect(() => splitRecordSet(wrongMagic)).toThrow(expect.objectContaining({ code: 'INVALID_BATCH' }));
    expect(() => splitRecordSet(good.subarray(0, 30))).toThrow(expect.objectContaining({ code: 'INVALID_BATCH' }));
    expect(() => splitRecordSet(Buffer.concat([good, good.subarray(0, good.length - 3)]))).toThrow(expect.objectContaining({ code: "CORRUPT_BATCH" }));
    expect(() => splitRecordSet(Buffer.alloc(0))).toThrow(expect.objectContaining({ code: 'INVALID_BATCH' }));
    const badLen = Buffer.from(good);
    badLen.writeInt32BE(5, 8);
    expect(() => splitRecordSet(badLen)).toThrow(expect.objectContaining({ code: 'CORRUPT_BATCH' }));
    expect(() => encodeBatch([])).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
    expect(splitRecordSet(Buffer.concat([good, good]))).toHaveLength(2);
  });

  test('a record running past its batch is CORRUPT_BATCH, not a crash', () => {
    const b = encodeBatch([{ value: 'hello' }]);
    b[61] = 0x7e; // record length varint: far too long
    b.writeUInt32BE(crc32c(b.subarray(CRC_START)), F_CRC);
    expect(() => decodeRecords(b)).toThrow(expect.objectContaining({ code: 'CORRUPT_BATCH' }));
  });

  test('gzip-compressed records decode', () => {
    const plain = encodeBatch([{ key: 'a', value: 'one' }, { value: 'two' }]);
    const body = gzipSync(plain.subarray(61));
    const gz = Buffer.concat([plain.subarray(0, 61), body]);
    gz.writeInt32BE(gz.length - 12, 8);
    gz.writeInt16BE(1, F_ATTRIBUTES);
    gz.writeUInt32BE(crc32c(gz.subarray(CRC_START)), F_CRC);
    expect(checkBatch(gz)).toBeNull();
    expect(decodeRecords(gz).map((r) => r.value!.toString())).toEqual(['one', 'two']);
  });
});

describe('record batch properties', () => {
  const record = fc.record({
    key: fc.option(fc.uint8Array({ maxLength: 64 }), { nil: null }),
    value: fc.option(fc.uint8Array({ maxLength: 4096 }), { nil: null }),
    timestamp_ms: fc.integer({ min: 0, max: 2 ** 45 }),
    headers: fc.array(fc.record({ key: fc.string({ maxLength: 20 }), value: fc.option(fc.uint8Array({ maxLength: 64 }), { nil: null }) }), { maxLength: 3 }),
  });

  test('decode(encode(x)) = x, the CRC holds, stamping keeps it, any flip under the CRC is detected', () => {
    fc.assert(
      fc.property(fc.array(record, { minLength: 1, maxLength: 20 }), fc.nat(), fc.nat({ max: 2 ** 31 - 1 }), fc.nat(), (recs, base, epoch, flip) => {
        const input = recs.map((r) => ({
          key: r.key && Buffer.from(r.key),
          value: r.value && Buffer.from(r.value),
          timestamp_ms: r.timestamp_ms,
          headers: r.headers.map((h) => ({ key: h.key, value: h.value && Buffer.from(h.value) })),
        }));
        const b = encodeBatch(input);
        expect(checkBatch(b)).toBeNull();
        stampBatch(b, 0, base, epoch);
        expect(checkBatch(b)).toBeNull();
        const out = decodeRecords(b);
        expect(out.map((r) => ({ offset: r.offset, key: r.key, value: r.value, ts: r.timestamp_ms, h: r.headers }))).toEqual(
          input.map((r, i) => ({ offset: base + i, key: r.key, value: r.value, ts: r.timestamp_ms, h: r.headers })),
        );
        let n = 0;
        forEachBatch(b, () => n++);
        expect(n).toBe(1);
        const c = Buffer.from(b);
        const at = CRC_START + (flip % (c.length - CRC_START));
        c[at] = c[at]! ^ 0xff;
        expect(checkBatch(c)).not.toBeNull();
      }),
      { seed, numRuns: 300 },
    );
  });
});
