import { isControlBatch } from '../../engine/format/control-batch.js';
import { decodeRecords, encodeBatch, forEachBatch, type DecodedRecord, type RecordInput } from '../../engine/index.js';
import { createHash } from 'node:crypto';
import type { PartitionLog } from '../../engine/log/partition-log.js';

/** A batch of `count` records with values `${prefix}-${i}`, all at `timestamp_ms`. */
export function batchOf(count: number, prefix = 'r', timestamp_ms = 1_700_000_000_000, value_bytes = 0): Buffer {
  const records: RecordInput[] = [];
  for (let i = 0; i < count; i++) {
    const v = value_bytes > 0 ? Buffer.alloc(value_bytes, `${prefix}-${i}|`) : `${prefix}-${i}`;
    records.push({ key: `k${i}`, value: v, timestamp_ms });
  }
  return encodeBatch(records, { timestamp_ms });
}

/** The data records of a record set, as a consumer sees them: control batches (Raft membership changes) skipped. */
export function recordsOf(records: Buffer): DecodedRecord[] {
  const out: DecodedRecord[] = [];
  forEachBatch(records, (pos, size) => {
    if (!isControlBatch(records, pos)) out.push(...decodeRecords(records.subarray(pos, pos + size)));
  });
  return out;
}

/** Reads a partition from `from` to its high watermark, returning every record at or after `from`. */
export async function readAll(p: PartitionLog, from = p.logStartOffset, max_bytes = 64 * 1024): Promise<DecodedRecord[]> {
  const out: DecodedRecord[] = [];
  let offset = from;
  while (offset < p.highWatermark) {
    const r = await p.read(offset, max_bytes);
    for (const rec of recordsOf(r.records)) if (rec.offset >= from) out.push(rec);
    offset = r.next_offset;
  }
  return out;
}

/**
 * Records with each key and value replaced by its length and SHA-256, for comparing megabytes of
 * records: vitest's deep equality walks a Buffer index by index (about 3 s per MB), a digest does not.
 */
export function digestRecords(recs: DecodedRecord[]): Array<{ offset: number; timestamp_ms: number; key: string; value: string; headers: number }> {
  const d = (b: Buffer | null) => (b === null ? 'null' : `${b.length}:${createHash('sha256').update(b).digest('hex')}`);
  return recs.map((r) => ({ offset: r.offset, timestamp_ms: r.timestamp_ms, key: d(r.key), value: d(r.value), headers: r.headers.length }));
}
