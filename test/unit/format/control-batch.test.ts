import { describe, expect, test } from 'vitest';
import { CONTROL_TYPE_RAFT_CONF, decodeControlBatch, encodeControlBatch, isControlBatch } from '../../../engine/format/control-batch.js';
import { ATTR_CONTROL, F_ATTRIBUTES, batchBaseOffset, batchLeaderEpoch, checkBatch, readBatchHeader } from '../../../engine/format/record-batch.js';
import { confChangeBatch, confChangeOfBatch } from '../../../replication/raft/node/conf-batch.js';
import { batchOf } from '../../support/batches.js';

/* The control batch that stores a Raft membership change (docs/format.md, "Control batches"). */

describe('control batch', () => {
  const json = Buffer.from('{"type":"add_learner","node_id":4,"voters":[1,2,3],"learners":[4]}');

  test('layout: control bit, one record, no timestamps or producer, key = version 0 + type', () => {
    const b = encodeControlBatch(42, 7, CONTROL_TYPE_RAFT_CONF, json);
    expect(checkBatch(b)).toBeNull(); // framing and CRC
    const h = readBatchHeader(b);
    expect(b.readInt16BE(F_ATTRIBUTES)).toBe(ATTR_CONTROL);
    expect({ base: batchBaseOffset(b), epoch: batchLeaderEpoch(b), lod: h.last_offset_delta, count: h.record_count, ts: h.max_timestamp_ms, pid: h.producer_id }).toEqual({ base: 42, epoch: 7, lod: 0, count: 1, ts: -1, pid: -1 });
    expect(isControlBatch(b)).toBe(true);
    expect(decodeControlBatch(b)).toEqual({ type: 0x5243, value: json });
  });

  test('golden: add_learner 4 at offset 1234, term 3 (the bytes drawn in docs/format.md)', () => {
    const golden =
      '00000000000004d20000008000000003028a987cf3002000000000ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff00000001' +
      '9a01000000080000524384017b2274797065223a226164645f6c6561726e6572222c226e6f64655f6964223a342c22766f74657273223a5b312c322c335d2c226c6561726e657273223a5b345d7d00';
    expect(confChangeBatch(1234, 3, json).toString('hex')).toBe(golden);
  });

  test('a membership change batch is a pure function of (offset, term, data): every replica writes the same bytes', () => {
    expect(confChangeBatch(10, 3, json).equals(confChangeBatch(10, 3, Buffer.from(json)))).toBe(true);
    expect(confChangeOfBatch(confChangeBatch(10, 3, json))!.equals(json)).toBe(true);
    expect(confChangeOfBatch(batchOf(1))).toBeNull();
    expect(confChangeOfBatch(encodeControlBatch(0, 0, 0, Buffer.from([0, 0, 0, 0])))).toBeNull(); // a Kafka transaction marker type
  });
});
