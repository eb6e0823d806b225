import { corruptSegment, offsetOutOfRange, unknownPartition } from '../../../engine/base/errors.js';
import { codecName } from '../../../engine/format/codecs.js';
import { COMPRESSION_MASK, F_ATTRIBUTES, LOG_OVERHEAD_BYTES, batchBaseOffset, batchLastOffsetDelta, batchSizeAt, checkBatch, forEachRecord } from '../../../engine/format/record-batch.js';
import type { ArchiveStore } from '../../../engine/tier/archive/archive-store.js';
import { isoTime, preview, previewText, type Preview } from './format.js';
import { archiveOnly, archiveStoreFor, openOffline, partitionLayout } from './offline.js';
import { archiveReader, fileReader, type SegmentReader } from './sources.js';
import { isControlBatch } from '../../../engine/format/control-batch.js';

/*
 * `relaylog dump`: the records of one partition from an offset, through every tier (archived
 * segments are read from --archive URL, SSD segments from their files), decoded whatever their
 * compression. Offline and read-only, like verify and inspect. Every batch's CRC-32C is checked
 * before its records are decoded; a bad one stops the dump with CORRUPT_SEGMENT (file and byte).
 */

export interface DumpOptions {
  data: string;
  topic: string;
  partition: number;
  fromOffset?: number;
  max?: number;
  archive?: string;
}

export interface DumpedRecord {
  offset: number;
  timestamp: string;
  timestamp_ms: number;
  key: Preview | null;
  value: Preview | null;
  headers: number;
  /** `control`: a control batch's record (a Raft membership change, docs/format.md), not data. */
  batch: { base_offset: number; codec: string; control?: true };
}

const READ_BYTES = 1024 * 1024;

/** `offset=… timestamp=… key=… value=… headers=…`, one line per record. */
export function dumpLine(r: DumpedRecord): string {
  return `offset=${r.offset} timestamp=${isoTime(r.timestamp_ms)} key=${previewText(r.key)} value=${previewText(r.value)} headers=${r.headers}${r.batch.control ? ' control' : ''}`;
}

/**
 * Calls `emit` for each record from `fromOffset` (default: the log start) up to `max` records or the
 * end of the log; `emit` returning false stops early. Returns the number of records emitted.
 */
export async function runDump(o: DumpOptions, emit: (r: DumpedRecord) => Promise<boolean>): Promise<number> {
  const store = archiveStoreFor(o.archive);
  const off = await openOffline(o.data, { topic: o.topic });
  try {
    const t = off.topics[0]!;
    if (o.partition >= t.config.partitions) throw unknownPartition(t.name, o.partition, t.config.partitions);
    const layout = await partitionLayout(off, t, o.partition);
    const start = layout.log_start_offset;
    const end = layout.log_end_offset;
    let cursor = o.fromOffset ?? start;
    if (cursor < start || cursor > end) throw offsetOutOfRange(cursor, start, end, `${t.name}/${o.partition}`);
    const max = o.max ?? Number.POSITIVE_INFINITY;
    let n = 0;
    // Oldest first: segments only the archive holds, then the SSD segments (skipping files an
    // interrupted merge left behind, whose offsets the segment before them already holds).
    const segments: Array<{ base_offset: number; next_offset: number; size_bytes: number; open: () => Promise<SegmentReader> }> = [];
    for (const a of archiveOnly(layout)) {
      segments.push({ base_offset: a.base_offset, next_offset: a.next_offset, size_bytes: a.size_bytes, open: async () => archiveReader(needStore(store, layout.topic, o.partition, a.base_offset, a.next_offset), a.path, a.size_bytes) });
    }
    for (const s of layout.local) {
      if (segments.length > 0 && s.base_offset < segments.at(-1)!.next_offset) continue;
      segments.push({ base_offset: s.base_offset, next_offset: s.next_offset, size_bytes: s.size_bytes, open: () => fileReader(s.path, s.size_bytes) });
    }
    for (const seg of segments) {
      if (n >= max || cursor >= end) break;
      if (seg.next_offset <= cursor || seg.size_bytes === 0) continue;
      const floor = seg.base_offset < cursor ? off.catalog?.offsetFloor([t.name, o.partition], seg.base_offset, cursor) : null;
      const reader = await seg.open();
      try {
        let stop = false;
        await walkFrom(reader, floor ?? { offset: seg.base_offset, position: 0 }, seg.base_offset, async (batch) => {
          const last = batchBaseOffset(batch) + batchLastOffsetDelta(batch);
          if (last < cursor) return true;
          const codec = codecName(batch.readInt16BE(F_ATTRIBUTES) & COMPRESSION_MASK);
          const base_offset = batchBaseOffset(batch);
          const control = isControlBatch(batch) ? { control: true as const } : {};
          const recs: DumpedRecord[] = [];
          forEachRecord(batch, (r) => {
            if (r.offset < cursor) return true;
            recs.push({ offset: r.offset, timestamp: isoTime(r.timestamp_ms), timestamp_ms: r.timestamp_ms, key: preview(r.key), value: preview(r.value), headers: r.headers.length, batch: { base_offset, codec, ...control } });
            return recs.length + n < max;
          });
          for (const r of recs) {
            n++;
            if (!(await emit(r))) {
              stop = true;
              return false;
            }
          }
          cursor = last + 1;
          return n < max && cursor < end;
        });
        if (stop) break;
      } finally {
        await reader.close();
      }
    }
    return n;
  } finally {
    await off.close();
    await store?.close();
  }
}

function needStore(store: ArchiveStore | null, topic: string, partition: number, from: number, to: number): ArchiveStore {
  if (store) return store;
  throw new Error(`offsets ${from}..${to - 1} of ${topic}/${partition} are only in the archive tier; give --archive URL (the archive the server runs with) to read them`);
}

/**
 * Calls `fn` with each whole batch of `reader` from the index entry `floor` (the batch with base
 * offset floor.offset starts at floor.position; if it does not, the entry is stale and the walk
 * starts at the beginning), each CRC-checked. `fn` returning false stops.
 */
async function walkFrom(reader: SegmentReader, floor: { offset: number; position: number }, segment_base: number, fn: (batch: Buffer) => Promise<boolean>): Promise<void> {
  let pos = floor.position;
  let chunk = await reader.read(pos, Math.min(READ_BYTES, reader.size_bytes - pos));
  if (pos > 0 && (chunk.length < LOG_OVERHEAD_BYTES || batchBaseOffset(chunk, 0) !== floor.offset)) return walkFrom(reader, { offset: segment_base, position: 0 }, segment_base, fn);
  let off = 0;
  while (pos + off < reader.size_bytes) {
    let size = batchSizeAt(chunk, off);
    if (size < 0 || off + size > chunk.length) {
      // The next batch runs past this chunk: read again from it.
      pos += off;
      off = 0;
      const want = Math.min(reader.size_bytes - pos, Math.max(READ_BYTES, LOG_OVERHEAD_BYTES));
      chunk = await reader.read(pos, want);
      size = batchSizeAt(chunk, 0);
      if (size > chunk.length && size <= reader.size_bytes - pos) chunk = await reader.read(pos, size);
    }
    const problem = size < 0 ? 'the segment ends inside a batch header' : checkBatch(chunk, off, Math.min(size, chunk.length - off));
    if (problem !== null) throw corruptSegment(reader.name, pos + off, problem);
    if (!(await fn(chunk.subarray(off, off + size)))) return;
    off += size;
  }
}
