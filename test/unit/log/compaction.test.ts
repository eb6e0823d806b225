import { gzipSync } from 'node:zlib';
import { describe, expect, test } from 'vitest';
import { ATTR_TRANSACTIONAL, checkBatch, decodeRecords, encodeBatch, readBatchHeader, stampBatch } from '../../../engine/index.js';
import { crc32c } from '../../../engine/format/crc32c.js';
import { compactBatches, encodeEmptyRange, latestOffsets } from '../../../engine/log/compaction.js';

const T0 = 1_700_000_000_000;
const at = (b: Buffer, base: number) => (stampBatch(b, 0, base, 1), b);

describe('compaction batch rewriting', () => {
  test('a tombstone goes exactly when its timestamp is before the horizon', () => {
    const log = [at(encodeBatch([{ key: 'a', value: null, timestamp_ms: T0 + 100 }]), 0)];
    const rule = (h: number) => ({ latest: latestOffsets(log), tombstone_horizon_ms: h });
    expect(decodeRecords(compactBatches(log, rule(T0 + 100)).batches[0]!)).toHaveLength(1); // not before: kept
    const gone = compactBatches(log, rule(T0 + 101));
    expect(gone.removed_records).toBe(1);
    expect(readBatchHeader(gone.batches[0]!)).toMatchObject({ base_offset: 0, last_offset_delta: 0, record_count: 0 });
  });

  test('a batch that keeps every record is the same Buffer; runs of emptied batches become one empty range', () => {
    const log = [
      at(encodeBatch([{ key: 'a', value: '1' }, { key: 'b', value: '1' }]), 0),
      at(encodeBatch([{ key: 'a', value: '2' }]), 2),
      at(encodeBatch([{ key: 'a', value: '3' }]), 3),
      at(encodeBatch([{ key: 'b', value: '2' }, { key: 'c', value: '1' }]), 4),
    ];
    const r = compactBatches(log, { latest: latestOffsets(log), tombstone_horizon_ms: 0 });
    expect(r.batches).toHaveLength(3);
    expect(readBatchHeader(r.batches[0]!)).toMatchObject({ base_offset: 0, last_offset_delta: 2, record_count: 0 }); // offsets 0..2
    expect(r.batches[1]).toBe(log[2]); // untouched, not re-encoded
    expect(r.batches[2]).toBe(log[3]);
  });

  test('a compressed batch is rewritten uncompressed with its records, offsets and epoch; transactional batches are left alone', () => {
    const plain = at(encodeBatch([{ key: 'x', value: 'old' }, { key: 'y', value: 'keep' }], { timestamp_ms: T0 }), 10);
    // Build a gzip batch by hand from the plain one: same header, compressed records section, attribute 1.
    const body = plain.subarray(61);
    const z = gzipSync(body);
    const gz = Buffer.concat([plain.subarray(0, 61), z]);
    gz.writeInt32BE(gz.length - 12, 8);
    gz.writeInt16BE(1, 21);
    gz.writeUInt32BE(crc32c(gz.subarray(21)), 17);
    expect(checkBatch(gz, 0, gz.length)).toBeNull();
    const txn = at(encodeBatch([{ key: 'x', value: 'txn' }], { transactional: true, producer_id: 5, producer_epoch: 0, base_sequence: 0 }), 12);
    expect(txn.readInt16BE(21) & ATTR_TRANSACTIONAL).toBeTruthy();
    const later = at(encodeBatch([{ key: 'x', value: 'new' }]), 13);
    const log = [gz, txn, later];
    const r = compactBatches(log, { latest: latestOffsets(log), tombstone_horizon_ms: 0 });
    const h = readBatchHeader(r.batches[0]!);
    expect(h).toMatchObject({ base_offset: 10, last_offset_delta: 1, record_count: 1, partition_leader_epoch: 1, attributes: 0 });
    expect(decodeRecords(r.batches[0]!).map((x) => [x.offset, x.value!.toString()])).toEqual([[11, 'keep']]);
    expect(r.batches[1]).toBe(txn);
  });

  test('an empty range is a sound batch', () => {
    const b = encodeEmptyRange(100, 199, T0, 4);
    expect(checkBatch(b, 0, b.length)).toBeNull();
    expect(readBatchHeader(b)).toMatchObject({ base_offset: 100, last_offset_delta: 99, record_count: 0, partition_leader_epoch: 4, max_timestamp_ms: T0 });
  });
});
