import { formatBytes, isoOrNull, isoTime, table } from './format.js';
import { archiveStoreFor, openOffline, partitionLayout, type PartitionLayout } from './offline.js';
import type { ArchiveStore } from '../../../engine/tier/archive/archive-store.js';
import { BATCH_HEADER_BYTES, F_BASE_TIMESTAMP } from '../../../engine/format/record-batch.js';

/*
 * `relaylog inspect`: per topic and partition, the segments with their offsets, time range, bytes
 * and tier, and totals. Offline and read-only (data-dir lock, catalog opened read-only, files read
 * directly; a segment the catalog does not vouch for is scanned, never truncated). Offline the
 * memory tier is empty, so every segment is on SSD, in the archive, or both.
 */

export type SegmentTier = 'ssd' | 'archive' | 'ssd+archive';

export interface InspectSegment {
  tier: SegmentTier;
  base_offset: number;
  next_offset: number;
  size_bytes: number;
  /** The first record's timestamp (baseTimestamp of the first batch); null when empty or unknown. */
  first_timestamp: string | null;
  first_timestamp_ms: number | null;
  /** The newest record's timestamp; null when empty. */
  max_timestamp: string | null;
  max_timestamp_ms: number | null;
  state: 'active' | 'sealed' | 'merge leftover';
  /** The local file, when on SSD. */
  path: string | null;
  /** The path inside the archive, when archived. */
  archive_path: string | null;
  /** Anything the next open would do about this segment (rescan, cut a torn tail, refuse). */
  note: string | null;
}

interface Totals {
  segments: number;
  bytes: number;
  ssd_segments: number;
  ssd_bytes: number;
  archive_segments: number;
  archive_bytes: number;
  /** Offsets from log start to log end (records, plus any compaction removed). */
  offsets: number;
}

export interface InspectPartition {
  partition: number;
  log_start_offset: number;
  log_end_offset: number;
  segments: InspectSegment[];
  totals: Totals;
}

export interface InspectTopic {
  name: string;
  config: Record<string, unknown>;
  partitions: InspectPartition[];
  totals: Totals;
}

export interface InspectReport {
  data_dir: string;
  catalog: boolean;
  topics: InspectTopic[];
  totals: Totals;
}

const zero = (): Totals => ({ segments: 0, bytes: 0, ssd_segments: 0, ssd_bytes: 0, archive_segments: 0, archive_bytes: 0, offsets: 0 });

function add(into: Totals, t: Totals): void {
  for (const k of Object.keys(into) as Array<keyof Totals>) into[k] += t[k];
}

async function archivedFirstTimestamp(store: ArchiveStore | null, path: string, size: number): Promise<number | null> {
  if (!store || size < BATCH_HEADER_BYTES) return null;
  const b = await store.read(path, F_BASE_TIMESTAMP, 8);
  return b.length === 8 ? Number(b.readBigInt64BE(0)) : null;
}

/** One partition's segments, oldest first: archive-only ones, then the SSD ones (marked if also archived). */
async function inspectPartition(layout: PartitionLayout, store: ArchiveStore | null, has_catalog: boolean): Promise<InspectPartition> {
  const segments: InspectSegment[] = [];
  const archived = new Map(layout.archived.map((a) => [a.base_offset, a] as const));
  const first_local = layout.local[0]?.base_offset ?? Number.POSITIVE_INFINITY;
  for (const a of layout.archived) {
    if (a.base_offset >= first_local) continue;
    const first = await archivedFirstTimestamp(store, a.path, a.size_bytes);
    segments.push({
      tier: 'archive',
      base_offset: a.base_offset,
      next_offset: a.next_offset,
      size_bytes: a.size_bytes,
      first_timestamp: isoOrNull(first),
      first_timestamp_ms: first,
      max_timestamp: isoOrNull(a.max_timestamp_ms),
      max_timestamp_ms: a.max_timestamp_ms < 0 ? null : a.max_timestamp_ms,
      state: 'sealed',
      path: null,
      archive_path: a.path,
      note: null,
    });
  }
  let covered_to = -1;
  for (const s of layout.local) {
    const a = archived.get(s.base_offset);
    const leftover = s.base_offset < covered_to;
    let note: string | null = null;
    if (s.scan_fault) {
      const torn = s.active && (s.record ? s.scan_fault.position >= s.record.durable_bytes : s.scan_fault.at_tail);
      note = torn
        ? `torn tail: ${s.file_bytes - s.scan_fault.position} byte(s) from byte ${s.scan_fault.position} are cut at the next open`
        : `corrupt at byte ${s.scan_fault.position} (${s.scan_fault.reason}); run relaylog verify`;
    } else if (!s.trusted && s.record !== null) note = 'the catalog does not match the file; the next open rescans it';
    else if (s.record === null && has_catalog) note = 'not in the catalog; the next open scans and indexes it';
    if (leftover) note = 'left over by an interrupted merge; the next open deletes it';
    segments.push({
      tier: a ? 'ssd+archive' : 'ssd',
      base_offset: s.base_offset,
      next_offset: s.next_offset,
      size_bytes: s.file_bytes,
      first_timestamp: isoOrNull(s.first_timestamp_ms),
      first_timestamp_ms: s.first_timestamp_ms < 0 ? null : s.first_timestamp_ms,
      max_timestamp: isoOrNull(s.max_timestamp_ms),
      max_timestamp_ms: s.max_timestamp_ms < 0 ? null : s.max_timestamp_ms,
      state: leftover ? 'merge leftover' : s.active ? 'active' : 'sealed',
      path: s.path,
      archive_path: a?.path ?? null,
      note,
    });
    if (!leftover) covered_to = s.next_offset;
  }
  const totals = zero();
  for (const s of segments) {
    totals.segments++;
    totals.bytes += s.size_bytes;
    if (s.tier !== 'archive') {
      totals.ssd_segments++;
      totals.ssd_bytes += s.size_bytes;
    }
    if (s.tier !== 'ssd') {
      totals.archive_segments++;
      totals.archive_bytes += archived.get(s.base_offset)?.size_bytes ?? s.size_bytes;
    }
  }
  totals.offsets = layout.log_end_offset - layout.log_start_offset;
  return { partition: layout.partition, log_start_offset: layout.log_start_offset, log_end_offset: layout.log_end_offset, segments, totals };
}

export async function runInspect(o: { data: string; topic?: string; archive?: string }): Promise<InspectReport> {
  const store = archiveStoreFor(o.archive);
  const off = await openOffline(o.data, o.topic !== undefined ? { topic: o.topic } : {});
  try {
    const report: InspectReport = { data_dir: o.data, catalog: off.catalog !== null, topics: [], totals: zero() };
    for (const t of off.topics) {
      const topic: InspectTopic = { name: t.name, config: { ...t.config }, partitions: [], totals: zero() };
      for (let p = 0; p < t.config.partitions; p++) {
        const ip = await inspectPartition(await partitionLayout(off, t, p), store, off.catalog !== null);
        topic.partitions.push(ip);
        add(topic.totals, ip.totals);
      }
      add(report.totals, topic.totals);
      report.topics.push(topic);
    }
    return report;
  } finally {
    await off.close();
    await store?.close();
  }
}

const totalsText = (t: Totals) =>
  `${t.segments} segment(s), ${formatBytes(t.bytes)} (SSD: ${t.ssd_segments} segment(s), ${formatBytes(t.ssd_bytes)}; archive: ${t.archive_segments} segment(s), ${formatBytes(t.archive_bytes)})`;

export function inspectText(r: InspectReport): string {
  const out: string[] = [];
  if (!r.catalog) out.push(`note: ${r.data_dir} has no catalog (the next open rebuilds it); every segment was scanned`);
  for (const t of r.topics) {
    const cfg = t.config as { cleanup_policy?: string; segment_bytes?: number };
    out.push(`topic ${t.name} (cleanup.policy=${cfg.cleanup_policy ?? '?'}, segment.bytes=${cfg.segment_bytes ?? '?'}): ${t.partitions.length} partition(s), ${totalsText(t.totals)}`);
    for (const p of t.partitions) {
      out.push(`  partition ${p.partition}: offsets ${p.log_start_offset}..${p.log_end_offset}, ${totalsText(p.totals)}`);
      const rows = [['tier', 'base-offset', 'next-offset', 'bytes', 'first-timestamp', 'max-timestamp', 'state']];
      for (const s of p.segments) {
        rows.push([s.tier, String(s.base_offset), String(s.next_offset), String(s.size_bytes), isoTime(s.first_timestamp_ms), isoTime(s.max_timestamp_ms), s.state + (s.note ? ` (${s.note})` : '')]);
      }
      out.push(table(rows, '    '));
    }
  }
  out.push(`total: ${r.topics.length} topic(s), ${totalsText(r.totals)}`);
  return out.join('\n');
}
