/**
 * How a Raft membership change (a core `conf_change` entry) is stored in the segment store, which
 * is the Raft log: as a control batch (attributes bit 5) holding one control record of type
 * CONTROL_TYPE_RAFT_CONF whose value is the core's entry data unchanged (conf-change.ts: the change
 * and the full membership after it, UTF-8 JSON). See docs/format.md, "Control batches".
 *
 * The batch is a pure function of (offset, term, entry data) — no clock, no producer id — so a
 * leader and its followers each build it and every replica holds the same bytes. Entries travel
 * between nodes with the core's data (the JSON), not the batch: the core decodes it on append.
 */
import { CONTROL_TYPE_RAFT_CONF, decodeControlBatch, encodeControlBatch, isControlBatch } from '../../../engine/format/control-batch.js';

export function confChangeBatch(base_offset: number, term: number, entry_data: Buffer): Buffer {
  return encodeControlBatch(base_offset, term, CONTROL_TYPE_RAFT_CONF, entry_data);
}

/** The core's entry data if `batch` stores a membership change, else null (a data batch, another control type). */
export function confChangeOfBatch(batch: Buffer): Buffer | null {
  if (!isControlBatch(batch)) return null;
  const r = decodeControlBatch(batch);
  return r.type === CONTROL_TYPE_RAFT_CONF ? Buffer.from(r.value) : null;
}
