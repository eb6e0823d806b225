/**
 * Control batches: record batches the log writes itself, never a producer (attributes bit 5,
 * Kafka's `isControl`). Kafka uses them for transaction markers and KRaft's voter records; relaylog
 * writes one kind, the Raft membership change (docs/format.md, "Control batches"). Readers that
 * deliver records (our Consumer, Kafka clients) skip control batches; everything that copies
 * batches (followers, relays, Fetch, Subscribe, the Kafka listener) passes them on unchanged.
 *
 * Layout (one record, deterministic from its inputs, so every replica writes the same bytes):
 *
 *   header   baseOffset, batchLength, partitionLeaderEpoch = term, magic 2, crc,
 *            attributes 0x0020 (control, no compression, CreateTime), lastOffsetDelta 0,
 *            baseTimestamp -1, maxTimestamp -1, producerId -1, producerEpoch -1,
 *            baseSequence -1, recordCount 1
 *   record   attributes 0, timestampDelta 0, offsetDelta 0,
 *            key   = int16 version (0) | int16 type          (Kafka's control record key)
 *            value = the type's payload
 *            headers 0
 */
import { invalidBatch } from '../base/errors.js';
import { crc32c } from './crc32c.js';
import { ATTR_CONTROL, CRC_START, F_ATTRIBUTES, F_CRC, F_RECORD_COUNT, decodeRecords, encodeBatch } from './record-batch.js';

/** relaylog's control record type for a Raft membership change ("RC"); Kafka's own types are 0..6. */
export const CONTROL_TYPE_RAFT_CONF = 0x5243;
const CONTROL_KEY_VERSION = 0;
const CONTROL_KEY_BYTES = 4;

export function isControlBatch(batch: Buffer, pos = 0): boolean {
  return (batch.readInt16BE(pos + F_ATTRIBUTES) & ATTR_CONTROL) !== 0;
}

/** A control batch at `base_offset`, stamped with `term`, holding one control record of `type`. */
export function encodeControlBatch(base_offset: number, term: number, type: number, value: Buffer): Buffer {
  const key = Buffer.alloc(CONTROL_KEY_BYTES);
  key.writeInt16BE(CONTROL_KEY_VERSION, 0);
  key.writeInt16BE(type, 2);
  const b = encodeBatch([{ key, value, timestamp_ms: -1 }], { base_offset, partition_leader_epoch: term, timestamp_ms: -1 });
  b.writeInt16BE(ATTR_CONTROL, F_ATTRIBUTES);
  b.writeUInt32BE(crc32c(b.subarray(CRC_START)), F_CRC);
  return b;
}

/** The control record of a control batch (its CRC is the caller's to check): type and payload. */
export function decodeControlBatch(batch: Buffer): { type: number; value: Buffer } {
  if (!isControlBatch(batch)) throw invalidBatch('not a control batch');
  if (batch.readInt32BE(F_RECORD_COUNT) !== 1) throw invalidBatch(`a control batch holds one record, this one ${batch.readInt32BE(F_RECORD_COUNT)}`);
  const [r] = decodeRecords(batch);
  if (r === undefined || r.key === null || r.key.length < CONTROL_KEY_BYTES || r.value === null) throw invalidBatch('control record without its key or value');
  const version = r.key.readInt16BE(0);
  if (version !== CONTROL_KEY_VERSION) throw invalidBatch(`control record key version ${version}, expected ${CONTROL_KEY_VERSION}`);
  return { type: r.key.readInt16BE(2), value: r.value };
}
