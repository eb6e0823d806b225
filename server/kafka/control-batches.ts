/**
 * relaylog's own control batches (Raft membership changes, docs/format.md "Control batches") on the
 * Kafka wire. Kafka clients are meant to skip control batches, but not all do: kafka-python 2.0.2
 * hands their records to the application as messages. So the Fetch handler sends each relaylog
 * control batch as an empty batch over the same offsets instead — the shape compaction leaves and a
 * Raft leader's empty entry has, which every client skips. Kafka's own control types (transaction
 * markers) pass unchanged, and nothing is copied when a response holds no relaylog control batch.
 */
import { CONTROL_TYPE_RAFT_CONF, decodeControlBatch, isControlBatch } from '../../engine/format/control-batch.js';
import { batchBaseOffset, batchLastOffsetDelta, batchLeaderEpoch, forEachBatch } from '../../engine/format/record-batch.js';
import { encodeEmptyRange } from '../../engine/log/compaction.js';

export function hideRaftControlBatches(records: Buffer): Buffer {
  const ours = (b: Buffer) => isControlBatch(b) && decodeControlBatch(b).type === CONTROL_TYPE_RAFT_CONF;
  let found = false;
  forEachBatch(records, (pos, size) => {
    if (!found && isControlBatch(records, pos)) found = ours(records.subarray(pos, pos + size));
  });
  if (!found) return records;
  const parts: Buffer[] = [];
  forEachBatch(records, (pos, size) => {
    const b = records.subarray(pos, pos + size);
    if (ours(b)) {
      const base = batchBaseOffset(b);
      parts.push(encodeEmptyRange(base, base + batchLastOffsetDelta(b), -1, batchLeaderEpoch(b)));
    } else {
      parts.push(b);
    }
  });
  return Buffer.concat(parts);
}
