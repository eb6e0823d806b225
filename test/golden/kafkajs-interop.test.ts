/**
 * Golden vectors from a real Kafka client: kafkajs 2.2's RecordBatch v2 codec, in both directions,
 * plus checked-in hex fixtures that kafkajs produced (see README.md beside this file).
 */
import { readFileSync } from 'node:fs';
import { describe, expect, test } from 'vitest';
import { checkBatch, decodeRecords, encodeBatch, readBatchHeader, splitRecordSet, stampBatch } from '../../engine/index.js';
import { kafkajsDecode, kafkajsEncode } from '../support/kafkajs.js';

const fixture = (name: string) => Buffer.from(readFileSync(new URL(`./${name}`, import.meta.url), 'utf8').replace(/\s+/g, ''), 'hex');

const RECORDS = [
  { key: Buffer.from('key'), value: Buffer.from('value'), timestamp: 1_700_000_000_000 },
  { key: null, value: Buffer.from('second'), timestamp: 1_700_000_000_005, headers: { trace: Buffer.from('abc'), 'content-type': Buffer.from('text/plain') } },
  { key: Buffer.from('k3'), value: null, timestamp: 1_699_999_999_990 },
];

describe('interop with kafkajs (a real Kafka client codec)', () => {
  test('our encoder produces byte-for-byte the batch kafkajs produces', async () => {
    const theirs = await kafkajsEncode({ records: RECORDS });
    const ours = encodeBatch(
      RECORDS.map((r) => ({
        key: r.key,
        value: r.value,
        timestamp_ms: r.timestamp,
        headers: Object.entries(r.headers ?? {}).map(([key, value]) => ({ key, value })),
      })),
      // kafkajs sends epoch 0 and sequence 0 with producerId -1 (not idempotent)
      { producer_id: -1, producer_epoch: 0, base_sequence: 0 },
    );
    expect(ours.toString('hex')).toBe(theirs.toString('hex'));
  });

  test('a kafkajs batch validates, decodes and survives offset/epoch stamping', async () => {
    const theirs = await kafkajsEncode({ records: RECORDS, firstOffset: 0 });
    expect(splitRecordSet(theirs)).toHaveLength(1);
    const recs = decodeRecords(theirs);
    expect(recs.map((r) => [r.offset, r.timestamp_ms, r.key?.toString() ?? null, r.value?.toString() ?? null])).toEqual([
      [0, 1_700_000_000_000, 'key', 'value'],
      [1, 1_700_000_000_005, null, 'second'],
      [2, 1_699_999_999_990, 'k3', null],
    ]);
    expect(recs[1]!.headers.map((h) => [h.key, h.value!.toString()])).toEqual([
      ['trace', 'abc'],
      ['content-type', 'text/plain'],
    ]);
    stampBatch(theirs, 0, 12_345, 9);
    expect(checkBatch(theirs)).toBeNull();
    const back = await kafkajsDecode(theirs);
    expect(back.firstOffset).toBe('12345');
    expect(back.partitionLeaderEpoch).toBe(9);
    expect(back.records.map((r) => r.offset)).toEqual(['12345', '12346', '12347']);
  });

  test('kafkajs decodes what we encode', async () => {
    const ours = encodeBatch([{ key: 'a', value: 'b', timestamp_ms: 42 }, { value: Buffer.alloc(300, 7), timestamp_ms: 40 }], { base_offset: 7 });
    const k = await kafkajsDecode(ours);
    expect(k.firstOffset).toBe('7');
    expect(k.firstTimestamp).toBe('42');
    expect(k.maxTimestamp).toBe('42');
    expect(k.records.map((r) => [r.offset, r.timestamp, r.key?.toString() ?? null])).toEqual([
      ['7', '42', 'a'],
      ['8', '40', null],
    ]);
    expect(k.records[1]!.value!.equals(Buffer.alloc(300, 7))).toBe(true);
  });

  test('a gzip-compressed kafkajs batch is accepted as it is and decoded', async () => {
    const gz = await kafkajsEncode({ records: RECORDS, gzip: true });
    expect(readBatchHeader(gz).attributes & 7).toBe(1);
    expect(checkBatch(gz)).toBeNull();
    expect(decodeRecords(gz).map((r) => r.value?.toString() ?? null)).toEqual(['value', 'second', null]);
  });

  test('checked-in fixtures (produced by kafkajs) decode and match our encoder', () => {
    const single = fixture('single-record.hex');
    expect(checkBatch(single)).toBeNull();
    expect(single.equals(encodeBatch([{ key: 'key', value: 'value', timestamp_ms: 1_700_000_000_000 }], { producer_epoch: 0, base_sequence: 0 }))).toBe(true);
    const h = readBatchHeader(single);
    expect(h).toMatchObject({ base_offset: 0, size_bytes: single.length, magic: 2, record_count: 1, last_offset_delta: 0, producer_id: -1, base_timestamp_ms: 1_700_000_000_000 });
    const three = fixture('three-records-headers.hex');
    expect(checkBatch(three)).toBeNull();
    expect(decodeRecords(three).map((r) => r.value?.toString() ?? null)).toEqual(['value', 'second', null]);
    const gz = fixture('gzip-three-records.hex');
    expect(checkBatch(gz)).toBeNull();
    expect(decodeRecords(gz).map((r) => r.key?.toString() ?? null)).toEqual(['key', null, 'k3']);
  });
});

export { RECORDS };
