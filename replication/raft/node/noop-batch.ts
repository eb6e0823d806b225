/**
 * The record batch that stores a new leader's empty Raft entry (§5.4.2: a leader commits entries
 * of earlier terms only under one of its own, so it appends an empty one at once). One Raft entry
 * is one batch, so the empty entry is an empty batch: no records, one offset (lastOffsetDelta 0),
 * no timestamps (-1), not transactional, not a control batch. Compaction leaves batches of the same
 * shape, so every reader (the Consumer, Kafka clients through the listener) already skips them: a
 * consumer sees a one-offset gap per leader election, as Kafka consumers see transaction markers.
 */
import { encodeEmptyRange } from '../../../engine/log/compaction.js';

/** An empty batch at `base_offset`, stamped with `term` (the shape compaction leaves for a removed range). */
export function noopBatch(base_offset: number, term: number): Buffer {
  return encodeEmptyRange(base_offset, base_offset, -1, term);
}
