import { describe, expect, test } from 'vitest';
import { CONTROL_TYPE_RAFT_CONF, encodeControlBatch, isControlBatch } from '../../../engine/format/control-batch.js';
import { batchBaseOffset, batchLastOffsetDelta, batchLeaderEpoch, checkBatch, encodeBatch, forEachBatch, readBatchHeader } from '../../../engine/format/record-batch.js';
import { hideRaftControlBatches } from '../../../server/kafka/control-batches.js';

/* What the Kafka listener's Fetch sends in place of a Raft membership control batch. */

describe('hideRaftControlBatches', () => {
  const data = (base: number) => {
    const b = encodeBatch([{ value: `v${base}` }], { base_offset: base, timestamp_ms: 1 });
    return b;
  };

  test('a record set without relaylog control batches is returned as is (no copy)', () => {
    const set = Buffer.concat([data(0), encodeControlBatch(1, 2, 0, Buffer.from([0, 0, 0, 0])), data(2)]);
    expect(hideRaftControlBatches(set)).toBe(set);
  });

  test('a membership change becomes an empty batch over the same offset and term; the rest is unchanged', () => {
    const ctl = encodeControlBatch(1, 7, CONTROL_TYPE_RAFT_CONF, Buffer.from('{}'));
    const out = hideRaftControlBatches(Buffer.concat([data(0), ctl, data(2)]));
    const batches: Buffer[] = [];
    forEachBatch(out, (pos, size) => batches.push(out.subarray(pos, pos + size)));
    expect(batches).toHaveLength(3);
    expect(batches[0]!.equals(data(0))).toBe(true);
    expect(batches[2]!.equals(data(2))).toBe(true);
    const empty = batches[1]!;
    expect(checkBatch(empty)).toBeNull();
    expect(isControlBatch(empty)).toBe(false);
    expect({ base: batchBaseOffset(empty), lod: batchLastOffsetDelta(empty), epoch: batchLeaderEpoch(empty), count: readBatchHeader(empty).record_count }).toEqual({ base: 1, lod: 0, epoch: 7, count: 0 });
  });
});
