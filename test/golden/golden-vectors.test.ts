/**
 * Golden vectors, each derived independently of engine/format (see README.md beside this file):
 *
 *   - single-record.hex, three-records-headers.hex, gzip-three-records.hex: kafkajs's encoder;
 *   - reference-idempotent-transactional.hex: the independent reference builder in
 *     reference-batch.ts (hand-assembled bytes, BigInt varints, bitwise CRC-32C).
 */
import { readFileSync } from 'node:fs';
import { gunzipSync, gzipSync } from 'node:zlib';
import { describe, expect, test } from 'vitest';
import {
  ATTR_TIMESTAMP_LOG_APPEND,
  Compression,
  CRC_START,
  checkBatch,
  decodeRecords,
  encodeBatch,
  readBatchHeader,
  recordsSection,
  splitRecordSet,
  stampBatch,
  type DecodedRecord,
  type RecordInput,
} from '../../engine/format/record-batch.js';
import { crc32c } from '../../engine/format/crc32c.js';
import { kafkajsDecode } from '../support/kafkajs.js';
import { parseHex, refBatch, refCrc32c, refRecord, refVarint, type RefRecord } from './reference-batch.js';

const fixture = (name: string): Buffer => parseHex(readFileSync(new URL(`./${name}`, import.meta.url), 'utf8'));
const te = (s: string) => Buffer.from(s, 'utf8');

/** The records of the kafkajs three-record fixtures (same inputs as kafkajs-interop.test.ts). */
const KAFKAJS_THREE: RefRecord[] = [
  { key: te('key'), value: te('value'), timestamp: 1_700_000_000_000n },
  { key: null, value: te('second'), timestamp: 1_700_000_000_005n, headers: [{ key: 'trace', value: te('abc') }, { key: 'content-type', value: te('text/plain') }] },
  { key: te('k3'), value: null, timestamp: 1_699_999_999_990n },
];

const view = (rs: DecodedRecord[]) =>
  rs.map((r) => ({
    offset: r.offset,
    ts: r.timestamp_ms,
    key: r.key?.toString('utf8') ?? null,
    value: r.value?.toString('utf8') ?? null,
    headers: r.headers.map((h) => [h.key, h.value?.toString('utf8') ?? null]),
  }));

/** The engine's input for a reference record. */
const toInput = (r: RefRecord): RecordInput => ({
  key: r.key === null ? null : Buffer.from(r.key),
  value: r.value === null ? null : Buffer.from(r.value),
  timestamp_ms: Number(r.timestamp),
  headers: (r.headers ?? []).map((h) => ({ key: h.key, value: h.value === null ? null : Buffer.from(h.value) })),
});

// ---------------------------------------------------------------- the reference builder itself

describe('reference builder sanity (so the vectors it makes mean something)', () => {
  test('its CRC-32C matches the published check value and RFC 3720 vectors', () => {
    expect(refCrc32c(te('123456789'))).toBe(0xe3069283);
    expect(refCrc32c(Buffer.alloc(32, 0))).toBe(0x8a9136aa);
    expect(refCrc32c(Buffer.alloc(32, 0xff))).toBe(0x62a8ab43);
    expect(refCrc32c(Uint8Array.from({ length: 32 }, (_, i) => i))).toBe(0x46dd794e);
  });

  test('its varints match the protobuf / Kafka examples', () => {
    const hex = (v: number | bigint) => Buffer.from(refVarint(v)).toString('hex');
    expect([0, -1, 1, -2, 2, 63, -64, 64, 150].map(hex)).toEqual(['00', '01', '02', '03', '04', '7e', '7f', '8001', 'ac02']);
    expect(hex(2n ** 63n - 1n)).toBe('feffffffffffffffff01'); // Long.MAX_VALUE: 10 bytes
    expect(hex(-(2n ** 63n))).toBe('ffffffffffffffffff01'); // Long.MIN_VALUE
  });

  test('it reproduces the kafkajs fixtures byte for byte', () => {
    expect(refBatch({ producerEpoch: 0, baseSequence: 0, records: [{ key: te('key'), value: te('value'), timestamp: 1_700_000_000_000n }] }).equals(fixture('single-record.hex'))).toBe(true);
    expect(refBatch({ producerEpoch: 0, baseSequence: 0, records: KAFKAJS_THREE }).equals(fixture('three-records-headers.hex'))).toBe(true);
  });
});

// ---------------------------------------------------------------- batches written by Kafka itself

describe('kafkajs-encoded fixtures', () => {
  test('single record: key "key", value "value", timestamp 1700000000000 — encodeBatch matches byte for byte', () => {
    const fx = fixture('single-record.hex');
    expect(encodeBatch([{ key: 'key', value: 'value', timestamp_ms: 1_700_000_000_000 }], { producer_epoch: 0, base_sequence: 0 }).toString('hex')).toBe(fx.toString('hex'));
    expect(fx.length).toBe(76);
    expect(view(decodeRecords(fx))).toEqual([{ offset: 0, ts: 1_700_000_000_000, key: 'key', value: 'value', headers: [] }]);
  });

  test('three records with headers, a null key, a null value, timestamps out of order', () => {
    const fx = fixture('three-records-headers.hex');
    expect(encodeBatch(KAFKAJS_THREE.map(toInput), { producer_epoch: 0, base_sequence: 0 }).toString('hex')).toBe(fx.toString('hex'));
    expect(readBatchHeader(fx)).toMatchObject({ record_count: 3, last_offset_delta: 2, base_timestamp_ms: 1_700_000_000_000, max_timestamp_ms: 1_700_000_000_005 });
    expect(view(decodeRecords(fx))).toEqual([
      { offset: 0, ts: 1_700_000_000_000, key: 'key', value: 'value', headers: [] },
      { offset: 1, ts: 1_700_000_000_005, key: null, value: 'second', headers: [['trace', 'abc'], ['content-type', 'text/plain']] },
      { offset: 2, ts: 1_699_999_999_990, key: 'k3', value: null, headers: [] },
    ]);
  });

  test('the gzip fixture decodes to the same records, and its section is the uncompressed fixture\'s', () => {
    const gz = fixture('gzip-three-records.hex');
    const plain = fixture('three-records-headers.hex');
    expect(checkBatch(gz)).toBeNull();
    expect(readBatchHeader(gz).attributes).toBe(Compression.gzip);
    expect(recordsSection(gz).equals(plain.subarray(61))).toBe(true);
    expect(view(decodeRecords(gz))).toEqual(view(decodeRecords(plain)));
  });
});

// ---------------------------------------------------------------- reference-built fixture

describe('reference-built fixture: idempotent, transactional, stamped, multi-byte varints', () => {
  const VALUE = Buffer.from(Array.from({ length: 200 }, (_, i) => i));
  const REF: Parameters<typeof refBatch>[0] = {
    baseOffset: 2n ** 40n,
    partitionLeaderEpoch: 7,
    attributes: 0x10,
    producerId: 4242n,
    producerEpoch: 3,
    baseSequence: 100,
    records: [
      { key: te('user-17'), value: VALUE, timestamp: 1_700_000_000_000n, headers: [{ key: 'h', value: null }] },
      { key: null, value: null, timestamp: 1_699_999_990_000n },
      { key: te('k'), value: te('é'), timestamp: 1_700_000_100_000n, headers: [{ key: 'ключ', value: te('v') }, { key: '', value: new Uint8Array(0) }] },
    ],
  };
  const fx = fixture('reference-idempotent-transactional.hex');

  test('the checked-in hex is what the reference builder makes', () => {
    expect(refBatch(REF).toString('hex')).toBe(fx.toString('hex'));
  });

  test('encodeBatch reproduces it byte for byte', () => {
    const ours = encodeBatch(REF.records.map(toInput), {
      base_offset: 2 ** 40,
      partition_leader_epoch: 7,
      transactional: true,
      producer_id: 4242,
      producer_epoch: 3,
      base_sequence: 100,
    });
    expect(ours.toString('hex')).toBe(fx.toString('hex'));
  });

  test('decodes back, including the 2-byte value length and the negative timestamp delta', () => {
    expect(checkBatch(fx)).toBeNull();
    expect(fx.subarray(61 + 2 + 3 + 1 + 7, 61 + 2 + 3 + 1 + 7 + 2).toString('hex')).toBe('9003'); // valueLength 200
    const recs = decodeRecords(fx);
    expect(recs[0]!.value!.equals(VALUE)).toBe(true);
    expect(view(recs).map((r) => ({ ...r, value: r.offset === 2 ** 40 ? '<200 bytes>' : r.value }))).toEqual([
      { offset: 2 ** 40, ts: 1_700_000_000_000, key: 'user-17', value: '<200 bytes>', headers: [['h', null]] },
      { offset: 2 ** 40 + 1, ts: 1_699_999_990_000, key: null, value: null, headers: [] },
      { offset: 2 ** 40 + 2, ts: 1_700_000_100_000, key: 'k', value: 'é', headers: [['ключ', 'v'], ['', '']] },
    ]);
  });

  test('a real client codec (kafkajs) reads the same fields from it', async () => {
    const k = await kafkajsDecode(Buffer.from(fx));
    expect([k.firstOffset, k.partitionLeaderEpoch, k.producerId, k.producerEpoch, k.firstSequence, k.lastOffsetDelta]).toEqual(['1099511627776', 7, '4242', 3, 100, 2]);
    expect(k.maxTimestamp).toBe('1700000100000');
    expect(k.records.map((r) => [r.offset, r.timestamp, r.key?.toString() ?? null, r.value?.length ?? null])).toEqual([
      ['1099511627776', '1700000000000', 'user-17', 200],
      ['1099511627777', '1699999990000', null, null],
      ['1099511627778', '1700000100000', 'k', 2],
    ]);
  });
});

// ---------------------------------------------------------------- hand-picked differential cases

describe('encodeBatch = reference builder on hand-picked edge cases', () => {
  const cases: Array<[string, RefRecord[]]> = [
    ['value lengths at varint width boundaries', [63, 64, 8191, 8192].map((n, i) => ({ key: null, value: new Uint8Array(n).fill(i), timestamp: 5n }))],
    ['timestamp deltas of ±2^50 and a negative base timestamp', [
      { key: te('a'), value: te('1'), timestamp: -1n },
      { key: te('b'), value: te('2'), timestamp: 2n ** 50n - 1n },
      { key: te('c'), value: te('3'), timestamp: -(2n ** 50n) - 1n },
    ]],
    ['65 records, so offsetDelta 64 takes two bytes', Array.from({ length: 65 }, (_, i) => ({ key: null, value: te(`${i}`), timestamp: 1n }))],
    ['a header value of 300 bytes and 70 headers', [{ key: te('k'), value: null, timestamp: 9n, headers: Array.from({ length: 70 }, (_, i) => ({ key: `h${i}`, value: i === 0 ? new Uint8Array(300) : null })) }]],
  ];

  test.each(cases)('%s', (_name, records) => {
    const ref = refBatch({ baseOffset: 12n, partitionLeaderEpoch: 3, records });
    const ours = encodeBatch(records.map(toInput), { base_offset: 12, partition_leader_epoch: 3 });
    expect(ours.toString('hex')).toBe(ref.toString('hex'));
    expect(crc32c(ours.subarray(CRC_START))).toBe(refCrc32c(ref, CRC_START));
  });

  test('a gzip batch built by the reference builder validates and decodes', () => {
    const gz = refBatch({ attributes: Compression.gzip, records: KAFKAJS_THREE, compress: (r) => gzipSync(r) });
    expect(checkBatch(gz)).toBeNull();
    expect(view(decodeRecords(gz))).toEqual(view(decodeRecords(fixture('three-records-headers.hex'))));
  });
});
