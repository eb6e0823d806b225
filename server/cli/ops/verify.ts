import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { ArchivedSegment, Catalog, PartitionKey, SegmentRecord } from '../../../engine/catalog/catalog.js';
import { segmentFileName } from '../../../engine/log/segment.js';
import { walkSegment, type SegmentWalk, type WalkedBatch } from '../../../engine/log/segment-verify.js';
import type { TopicInfo } from '../../../engine/log/types.js';
import type { SegmentSidecar } from '../../../engine/tier/archive-tier.js';
import type { ArchiveStore } from '../../../engine/tier/archive/archive-store.js';
import { formatBytes } from './format.js';
import { archiveStoreFor, openOffline, segmentFiles, type OfflineDir } from './offline.js';
import { Progress } from './progress.js';
import { archiveReader, fileReader, type SegmentReader } from './sources.js';

/*
 * `relaylog verify`: re-reads every batch of every segment, on the SSD tier and in the archive, and
 * reports every fault it finds (it does not stop at the first). Offline and read-only: it holds the
 * data-dir lock, opens the catalog read-only, and never truncates or rewrites anything.
 *
 * Checked, per partition:
 *  - every SSD segment file: framing, magic, CRC-32C and record count of every batch; offsets
 *    contiguous from the file's name through the file and across files; the catalog's record of the
 *    segment (a record the next open would trust must match the file); the sparse offset and time
 *    index entries (each must point at the start of the batch it names; time keys must cover the
 *    batches up to them). Damage in the active segment past its last fsync is a torn tail, which the
 *    next open cuts: reported as a note, not a fault, exactly as recovery would judge it (so is one
 *    in a rolled segment whose background fsync never finished, with nothing durable after it).
 *  - every archived segment (with --archive URL): its sidecar (the archive's manifest) against the
 *    catalog, the object's size and the CRC-32C of its whole content against the manifest, then
 *    every batch as above; and the archived segments' offsets are contiguous up to the SSD tier.
 */

export type Tier = 'ssd' | 'archive';
export type FaultKind = 'batch' | 'continuity' | 'catalog' | 'index' | 'manifest' | 'missing';

export interface VerifyFault {
  tier: Tier;
  kind: FaultKind;
  topic: string;
  partition: number;
  /** The segment file (or archive URL of the object) the fault is in. */
  file: string;
  /** Byte position in that file, when the fault has one. */
  position: number | null;
  /** The offset at that position (the one continuity expects there), when known. */
  offset: number | null;
  reason: string;
}

export interface VerifyNote {
  tier: Tier;
  topic: string;
  partition: number;
  file: string;
  message: string;
}

interface TierTotals {
  segments: number;
  bytes: number;
  batches: number;
  records: number;
}

export interface VerifyReport {
  data_dir: string;
  archive_url: string | null;
  /** No fault anywhere (notes do not count). */
  clean: boolean;
  topics: number;
  partitions: number;
  ssd: TierTotals;
  archive: TierTotals & { not_checked: number };
  faults: VerifyFault[];
  /** Faults found but not listed (more than 1000 in one segment). */
  faults_not_listed: number;
  notes: VerifyNote[];
  elapsed_ms: number;
}

export interface VerifyOptions {
  data: string;
  topic?: string;
  archive?: string;
  /** Show a progress bar on stderr when it is a terminal (the CLI); false for library use. */
  progress?: boolean;
}

interface IndexEntry {
  offset: number;
  position: number;
  /** Time-index key (running max timestamp) at this batch, -1 when it has none. */
  rmts: number;
}

/** Every index entry of a partition, by segment base offset, each list in offset order. */
function indexEntries(catalog: Catalog, key: PartitionKey): Map<number, IndexEntry[]> {
  const MAX = 2 ** 53;
  const rmts = new Map<number, number>();
  for (const { key: k, value } of catalog.tindex.getRange({ start: [key[0], key[1], -MAX], end: [key[0], key[1], MAX] })) rmts.set(value[0], k[2] as number);
  const out = new Map<number, IndexEntry[]>();
  for (const { key: k, value } of catalog.oindex.getRange({ start: [key[0], key[1], -1], end: [key[0], key[1], MAX] })) {
    const offset = k[2] as number;
    let list = out.get(value[0]);
    if (!list) out.set(value[0], (list = []));
    list.push({ offset, position: value[1], rmts: rmts.get(offset) ?? -1 });
  }
  return out;
}

/**
 * Checks a segment's index entries against its batches as the walk meets them: each entry must sit
 * at the start of a sound batch with the entry's offset (entries inside bytes already reported as
 * damaged are not judged again), and each time key must be at least the running maximum timestamp
 * of the batches up to it (the engine's own key may be larger: it remembers deleted segments too).
 */
class IndexCheck {
  private j = 0;
  private last_end = 0;
  private last_start = -1;
  private last_key = -1;

  constructor(
    private readonly entries: IndexEntry[],
    private readonly fault: (position: number, offset: number, reason: string) => void,
    public running_max_ts: number,
  ) {}

  onBatch(b: WalkedBatch): void {
    if (b.max_timestamp_ms > this.running_max_ts) this.running_max_ts = b.max_timestamp_ms;
    this.skipBefore(b.position);
    const e = this.entries[this.j];
    if (e && e.position === b.position) {
      if (e.offset !== b.base_offset) this.fault(e.position, e.offset, `offset index entry for offset ${e.offset} points at byte ${e.position}, where the batch with base offset ${b.base_offset} starts`);
      else if (e.rmts >= 0) {
        if (e.rmts < this.running_max_ts) this.fault(e.position, e.offset, `time index key ${e.rmts} for offset ${e.offset} is below the newest timestamp ${this.running_max_ts} of the batches up to it`);
        else if (e.rmts < this.last_key) this.fault(e.position, e.offset, `time index keys go backwards at offset ${e.offset} (${e.rmts} after ${this.last_key})`);
        this.last_key = Math.max(this.last_key, e.rmts);
      }
      this.j++;
    }
    this.last_start = b.position;
    this.last_end = b.position + b.size_bytes;
  }

  /** Entries before `position`: inside the previous sound batch is a fault; in damaged bytes, already reported. */
  private skipBefore(position: number): void {
    for (; this.j < this.entries.length && this.entries[this.j]!.position < position; this.j++) {
      const e = this.entries[this.j]!;
      if (e.position > this.last_start && e.position < this.last_end) {
        this.fault(e.position, e.offset, `offset index entry for offset ${e.offset} points at byte ${e.position}, inside the batch that starts at byte ${this.last_start}`);
      }
    }
  }

  /** After the walk: entries inside the last batch are faults; past the end of the file too, if `past_end_is_fault`. */
  finish(file_bytes: number, past_end_is_fault: boolean): void {
    this.skipBefore(this.last_end);
    for (; this.j < this.entries.length; this.j++) {
      const e = this.entries[this.j]!;
      if (e.position >= file_bytes && past_end_is_fault) this.fault(e.position, e.offset, `offset index entry for offset ${e.offset} points at byte ${e.position}, past the end of the segment (${file_bytes} bytes)`);
    }
  }
}

const sidecarPath = (a: ArchivedSegment) => a.path.replace(/\.log$/, '.json');

interface PartitionPlan {
  topic: TopicInfo;
  partition: number;
  key: PartitionKey;
  dir: string;
  local: Array<{ base_offset: number; path: string; file_bytes: number; record: SegmentRecord | null }>;
  records: Map<number, SegmentRecord>;
  archived: ArchivedSegment[];
}

export async function runVerify(o: VerifyOptions): Promise<VerifyReport> {
  const started = performance.now();
  const store = archiveStoreFor(o.archive);
  const off = await openOffline(o.data, o.topic !== undefined ? { topic: o.topic } : {});
  try {
    return await verifyDir(off, store, o, started);
  } finally {
    await off.close();
    await store?.close();
  }
}

async function verifyDir(off: OfflineDir, store: ArchiveStore | null, o: VerifyOptions, started: number): Promise<VerifyReport> {
  const report: VerifyReport = {
    data_dir: off.dir,
    archive_url: store?.url ?? null,
    clean: true,
    topics: off.topics.length,
    partitions: 0,
    ssd: { segments: 0, bytes: 0, batches: 0, records: 0 },
    archive: { segments: 0, bytes: 0, batches: 0, records: 0, not_checked: 0 },
    faults: [],
    faults_not_listed: 0,
    notes: [],
    elapsed_ms: 0,
  };
  // Plan first (file sizes, catalog records), so the progress bar knows the total.
  const plans: PartitionPlan[] = [];
  let total = 0;
  for (const topic of off.topics) {
    for (let p = 0; p < topic.config.partitions; p++) {
      const key: PartitionKey = [topic.name, p];
      const dir = join(off.dir, 'topics', topic.name, String(p));
      const records = new Map((off.catalog?.listSegments(key) ?? []).map((s) => [s.base_offset, s.record] as const));
      const local = [];
      for (const base of await segmentFiles(dir)) {
        const path = join(dir, segmentFileName(base));
        const file_bytes = (await stat(path)).size;
        local.push({ base_offset: base, path, file_bytes, record: records.get(base) ?? null });
        total += file_bytes;
      }
      const archived = off.catalog?.listArchived(key) ?? [];
      if (store) for (const a of archived) total += a.size_bytes;
      plans.push({ topic, partition: p, key, dir, local, records, archived });
    }
  }
  const progress = new Progress('verify', total, o.progress ?? false);
  try {
    for (const plan of plans) {
      report.partitions++;
      await verifyPartition(plan, off.catalog, store, report, progress);
    }
  } finally {
    progress.stop();
  }
  report.clean = report.faults.length === 0 && report.faults_not_listed === 0;
  report.elapsed_ms = Math.round(performance.now() - started);
  return report;
}

async function verifyPartition(plan: PartitionPlan, catalog: Catalog | null, store: ArchiveStore | null, report: VerifyReport, progress: Progress): Promise<void> {
  const { topic, partition, key, local, archived } = plan;
  const t = topic.name;
  const fault = (f: Omit<VerifyFault, 'topic' | 'partition'>) => report.faults.push({ tier: f.tier, kind: f.kind, topic: t, partition, file: f.file, position: f.position, offset: f.offset, reason: f.reason });
  const note = (tier: Tier, file: string, message: string) => report.notes.push({ tier, topic: t, partition, file, message });
  const entries = catalog ? indexEntries(catalog, key) : new Map<number, IndexEntry[]>();
  const first_local = local[0]?.base_offset;

  // ---------------------------------------------------------------- archive tier
  const archive_only = archived.filter((a) => first_local === undefined || a.base_offset < first_local);
  const archUrl = (a: ArchivedSegment) => (store ? `${store.url}/${a.path}` : a.path);
  for (let i = 1; i < archived.length; i++) {
    const prev = archived[i - 1]!;
    const a = archived[i]!;
    if (a.base_offset !== prev.next_offset) {
      fault({ tier: 'archive', kind: 'continuity', file: archUrl(a), position: 0, offset: prev.next_offset, reason: `archived segment starts at offset ${a.base_offset} but the archived one before it ends at ${prev.next_offset - 1}` });
    }
  }
  const last_archive_only = archive_only.at(-1);
  if (last_archive_only && first_local !== undefined && last_archive_only.next_offset !== first_local) {
    fault({ tier: 'ssd', kind: 'continuity', file: local[0]!.path, position: 0, offset: last_archive_only.next_offset, reason: `the first SSD segment starts at offset ${first_local} but the archive ends at ${last_archive_only.next_offset - 1}` });
  }
  if (store) {
    let running = -1;
    for (const a of archived) {
      const only = archive_only.includes(a);
      running = await verifyArchived(a, store, only ? (entries.get(a.base_offset) ?? []) : [], running, fault, report, progress);
    }
  } else if (archived.length > 0) {
    report.archive.not_checked += archived.length;
    note('archive', `${t}/${partition}`, `${archived.length} archived segment(s) (${archive_only.length} of them no longer on SSD) not checked: give --archive URL to check them`);
  }

  // ---------------------------------------------------------------- SSD tier
  let running_max_ts = -1;
  /** The segment the files so far add up to: where the next file must begin. */
  let prev: { path: string; next_offset: number | null; ends_damaged: boolean } | null = null;
  const covered: Array<[number, number]> = [];
  /** Where a torn tail in a rolled, never-sealed segment ends the log (the next open deletes what follows). */
  let log_ends: { path: string } | null = null;
  for (const [i, seg] of local.entries()) {
    const active = i === local.length - 1;
    const rec = seg.record;
    if (log_ends !== null) {
      note('ssd', seg.path, `written after the torn tail of ${log_ends.path} and never made durable; the next open deletes it`);
      report.ssd.segments++;
      report.ssd.bytes += seg.file_bytes;
      continue;
    }
    // A rolled segment whose background fdatasync never completed (its record is not sealed), with
    // nothing recorded durable after it: recovery judges it like the active segment.
    const later = local.slice(i + 1);
    const may_end = !active && rec !== null && !rec.sealed && later.every((s) => !s.record?.sealed && (s.record?.durable_bytes ?? 0) === 0);
    // A merge of small compacted segments that stopped before deleting the files it copied leaves
    // them behind a segment that already runs past them (the next open deletes them).
    const leftover = prev !== null && prev.next_offset !== null && !prev.ends_damaged && seg.base_offset < prev.next_offset && local.some((s) => s.base_offset === prev!.next_offset);
    if (leftover) note('ssd', seg.path, `left over by an interrupted merge: ${prev!.path} already holds offsets up to ${prev!.next_offset! - 1}; the next open deletes this file`);
    else if (prev && prev.next_offset !== null && !prev.ends_damaged && seg.base_offset !== prev.next_offset) {
      fault({ tier: 'ssd', kind: 'continuity', file: seg.path, position: 0, offset: prev.next_offset, reason: `segment starts at offset ${seg.base_offset} but the previous one ends at ${prev.next_offset - 1}` });
    }
    const index_faults: VerifyFault[] = [];
    const check = new IndexCheck(entries.get(seg.base_offset) ?? [], (position, offset, reason) => index_faults.push({ tier: 'ssd', kind: 'index', topic: t, partition, file: seg.path, position, offset, reason }), running_max_ts);
    const reader = await fileReader(seg.path, seg.file_bytes);
    let walk: SegmentWalk;
    try {
      walk = await walkSegment(reader, { expected_offset: seg.base_offset, on_batch: (b) => check.onBatch(b), on_read: (n) => progress.add(n), whole_crc: false });
    } finally {
      await reader.close();
    }
    if (!leftover) running_max_ts = check.running_max_ts;
    report.ssd.segments++;
    report.ssd.bytes += seg.file_bytes;
    report.ssd.batches += walk.batches;
    report.ssd.records += walk.records;
    report.faults_not_listed += walk.faults_not_listed;

    // Damage in the active segment at or past its last fsync (or, without a catalog record, damage
    // that nothing sound follows) is a torn tail: the next open cuts it. Recovery's own rule.
    const torn_at = active || may_end ? walk.faults.findIndex((f) => (rec ? f.position >= rec.durable_bytes : f.at_tail)) : -1;
    const corrupt = torn_at >= 0 ? walk.faults.slice(0, torn_at) : walk.faults;
    for (const f of corrupt) {
      fault({ tier: 'ssd', kind: f.reason.includes('contiguous') ? 'continuity' : 'batch', file: seg.path, position: f.position, offset: f.offset, reason: `${f.reason}${f.skipped_bytes > 0 ? `; ${f.skipped_bytes} byte(s) up to the next sound batch` : ''}` });
    }
    if (torn_at >= 0) {
      const f = walk.faults[torn_at]!;
      note('ssd', seg.path, `torn tail: ${seg.file_bytes - f.position} byte(s) from byte ${f.position} were never acknowledged as durable (${f.reason}); the next open cuts them${active ? '' : ` and deletes the ${later.length} later segment(s)`}`);
      if (!active) log_ends = { path: seg.path };
    } else if (may_end && walk.faults.length === 0 && walk.next_offset !== null && walk.next_offset < later[0]!.base_offset) {
      note('ssd', seg.path, `ends at offset ${walk.next_offset - 1}, short of the next segment (its background fsync never finished); the next open ends the log here and deletes the ${later.length} later segment(s)`);
      log_ends = { path: seg.path };
    }
    check.finish(seg.file_bytes, !active);
    for (const f of index_faults) report.faults.push(f);

    // The catalog's record of the segment.
    if (catalog) {
      const trusted = rec !== null && rec.size_bytes === seg.file_bytes && (active ? rec.clean : rec.sealed);
      if (rec === null) note('ssd', seg.path, 'the catalog has no record of this segment; the next open scans and indexes it');
      else if (!trusted) {
        note('ssd', seg.path, active ? `the active segment was not closed cleanly (catalog: ${rec.size_bytes} bytes, file: ${seg.file_bytes}); the next open rescans it` : `the catalog records ${rec.size_bytes} bytes${rec.sealed ? '' : ', not sealed'}, the file has ${seg.file_bytes}; the next open rescans it`);
      } else if (walk.faults.length === 0) {
        if (walk.next_offset !== null && rec.next_offset !== walk.next_offset) {
          fault({ tier: 'ssd', kind: 'catalog', file: seg.path, position: walk.sound_end_position, offset: rec.next_offset, reason: `the catalog records next offset ${rec.next_offset}, the file's batches end at ${walk.next_offset - 1}` });
        }
        if (walk.max_timestamp_ms > rec.max_timestamp_ms) {
          fault({ tier: 'ssd', kind: 'catalog', file: seg.path, position: null, offset: null, reason: `the catalog records max timestamp ${rec.max_timestamp_ms}, below the file's ${walk.max_timestamp_ms} (time-based retention would judge it too old)` });
        }
      }
    }
    const next_offset = walk.batches > 0 ? walk.next_offset : seg.base_offset;
    if (next_offset !== null) covered.push([seg.base_offset, next_offset]);
    if (!leftover) {
      const last_fault = walk.faults.at(-1);
      prev = { path: seg.path, next_offset, ends_damaged: last_fault !== undefined && last_fault.at_tail };
    }
  }

  // Catalog records without a file: below the first file, retention was interrupted; inside a
  // segment's offsets, an interrupted merge deleted it; anywhere else it is missing.
  for (const base of plan.records.keys()) {
    if (local.some((s) => s.base_offset === base)) continue;
    const path = join(plan.dir, segmentFileName(base));
    if (first_local === undefined || base < first_local) note('ssd', path, 'the catalog lists this segment below the first file (retention was interrupted); the next open drops the record');
    else if (covered.some(([lo, hi]) => lo < base && base < hi)) note('ssd', path, 'the catalog lists this segment, whose offsets another segment holds now (an interrupted merge); the next open drops the record');
    else fault({ tier: 'ssd', kind: 'missing', file: path, position: 0, offset: base, reason: 'the catalog lists this segment but the file is missing' });
  }
}

/** Checks one archived segment: manifest (sidecar) against the catalog, size, whole CRC-32C, batches. Returns the running max timestamp. */
async function verifyArchived(
  a: ArchivedSegment,
  store: ArchiveStore,
  entries: IndexEntry[],
  running_max_ts: number,
  fault: (f: Omit<VerifyFault, 'topic' | 'partition'>) => void,
  report: VerifyReport,
  progress: Progress,
): Promise<number> {
  const file = `${store.url}/${a.path}`;
  const manifest = (reason: string, position: number | null = 0) => fault({ tier: 'archive', kind: 'manifest', file, position, offset: a.base_offset, reason });
  report.archive.segments++;
  const side = await store.stat(sidecarPath(a));
  if (!side) manifest(`its sidecar ${store.url}/${sidecarPath(a)} (the archive's manifest entry) is missing`, null);
  else {
    let sc: SegmentSidecar | null = null;
    try {
      sc = JSON.parse((await store.read(sidecarPath(a), 0, side.size_bytes)).toString()) as SegmentSidecar;
    } catch (err) {
      manifest(`its sidecar ${store.url}/${sidecarPath(a)} does not parse: ${(err as Error).message}`, null);
    }
    const s = sc?.segment;
    if (s) {
      const diffs = (['base_offset', 'next_offset', 'size_bytes', 'crc32c', 'path'] as const).filter((k) => s[k] !== a[k]).map((k) => `${k} ${JSON.stringify(s[k])} (catalog: ${JSON.stringify(a[k])})`);
      if (diffs.length > 0) manifest(`its sidecar disagrees with the catalog: ${diffs.join(', ')}`, null);
    }
  }
  const st = await store.stat(a.path);
  if (!st) {
    fault({ tier: 'archive', kind: 'missing', file, position: null, offset: a.base_offset, reason: 'the catalog and manifest list this archived segment but the archive has no such file' });
    progress.add(a.size_bytes);
    return running_max_ts;
  }
  if (st.size_bytes !== a.size_bytes) manifest(`the archived file is ${st.size_bytes} bytes, the manifest says ${a.size_bytes}`, Math.min(st.size_bytes, a.size_bytes));
  const faults: VerifyFault[] = [];
  const check = new IndexCheck(entries, (position, offset, reason) => faults.push({ tier: 'archive', kind: 'index', topic: '', partition: 0, file, position, offset, reason }), running_max_ts);
  const reader: SegmentReader = archiveReader(store, a.path, st.size_bytes);
  const walk = await walkSegment(reader, { expected_offset: a.base_offset, on_batch: (b) => check.onBatch(b), on_read: (n) => progress.add(n) });
  if (st.size_bytes < a.size_bytes) progress.add(a.size_bytes - st.size_bytes);
  report.archive.bytes += st.size_bytes;
  report.archive.batches += walk.batches;
  report.archive.records += walk.records;
  report.faults_not_listed += walk.faults_not_listed;
  if (walk.crc32c !== a.crc32c) manifest(`the CRC-32C of the archived file is 0x${walk.crc32c.toString(16)}, the manifest says 0x${a.crc32c.toString(16)}`);
  for (const f of walk.faults) {
    fault({ tier: 'archive', kind: f.reason.includes('contiguous') ? 'continuity' : 'batch', file, position: f.position, offset: f.offset, reason: `${f.reason}${f.skipped_bytes > 0 ? `; ${f.skipped_bytes} byte(s) up to the next sound batch` : ''}` });
  }
  if (walk.faults.length === 0 && walk.next_offset !== a.next_offset) {
    manifest(`the archived batches end at offset ${(walk.next_offset ?? a.base_offset) - 1}, the manifest says next offset ${a.next_offset}`, walk.sound_end_position);
  }
  check.finish(st.size_bytes, true);
  for (const f of faults) fault({ tier: f.tier, kind: f.kind, file: f.file, position: f.position, offset: f.offset, reason: f.reason });
  return check.running_max_ts;
}

/** The report as text: one line per fault and per note, then a summary line. */
export function verifyText(r: VerifyReport): string {
  const lines: string[] = [];
  for (const f of r.faults) lines.push(`FAULT ${f.tier} ${f.topic}/${f.partition} ${f.file} byte ${f.position ?? '-'} offset ${f.offset ?? '-'}: ${f.reason}`);
  if (r.faults_not_listed > 0) lines.push(`FAULT ... and ${r.faults_not_listed} more fault(s) not listed`);
  for (const n of r.notes) lines.push(`note ${n.tier} ${n.topic}/${n.partition} ${n.file}: ${n.message}`);
  const archive = r.archive.segments > 0 || r.archive.not_checked > 0 ? `, ${r.archive.segments} archived segment(s) (${formatBytes(r.archive.bytes)}, ${r.archive.batches} batches)${r.archive.not_checked > 0 ? `, ${r.archive.not_checked} archived segment(s) not checked (no --archive)` : ''}` : '';
  const n = r.faults.length + r.faults_not_listed;
  lines.push(
    `verify ${r.data_dir}: ${r.topics} topic(s), ${r.partitions} partition(s), ${r.ssd.segments} SSD segment(s) (${formatBytes(r.ssd.bytes)}, ${r.ssd.batches} batches)${archive}: ` +
      (r.clean ? 'clean' : `${n} fault(s)`),
  );
  return lines.join('\n');
}
