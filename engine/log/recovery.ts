import { open, readdir, stat, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { corruptSegment, storageError } from '../base/errors.js';
import type { Catalog, PartitionKey, SegmentRecord } from '../catalog/catalog.js';
import { Indexer } from './indexer.js';
import { scanSegment } from './segment-scan.js';
import { Segment, parseSegmentFileName } from './segment.js';

/**
 * Opening a partition: reconcile its segment files (the source of truth) with the LMDB catalog.
 *
 * - Sealed segments the catalog knows at the right size are trusted as they are; any other sealed
 *   segment is scanned in full (CRC + offset continuity) and re-indexed. A fault in a sealed
 *   segment is corruption: open fails naming the file and byte.
 * - The active (last) segment is trusted only after a clean close. Otherwise it is scanned in full:
 *   a fault at or after the catalog's `durable_bytes` (bytes known fsynced) is a torn tail and is
 *   truncated; a fault before it is corruption. Without a catalog record, only a fault that nothing
 *   sound follows (it runs to EOF, or only zeros follow) counts as a torn tail.
 * - A rolled segment whose fdatasync had not finished (fsync=interval|never roll in the background:
 *   its record is not sealed) is judged as the active one, provided no later segment holds anything
 *   recorded durable (a segment is recorded durable only after every segment before it is sealed).
 *   A torn tail in it ends the log there: it is cut, and the later segments, written after the
 *   torn point and never made durable, are deleted.
 */

export interface RecoveredPartition {
  segments: Segment[];
  /** Bytes cut from a torn tail (0 when the log was clean). */
  truncated_bytes: number;
  /** Segment files deleted because an interrupted merge had already copied them into the segment before. */
  merged_leftovers: number;
}

export async function recoverPartition(dir: string, key: PartitionKey, catalog: Catalog, indexer: Indexer): Promise<RecoveredPartition> {
  const files = await readdir(dir);
  // A compaction that stopped before its rename leaves the new copy aside: the original still holds.
  // So does a copy from the archive (`relaylog restore --ssd-from-...`) that stopped before its rename.
  for (const f of files) if (f.endsWith('.log.compact') || f.endsWith('.log.download')) await unlink(join(dir, f)).catch(() => undefined);
  const names = files.map((n) => parseSegmentFileName(n)).filter((b): b is number => b !== null);
  names.sort((a, b) => a - b);
  const records = new Map(catalog.listSegments(key).map((s) => [s.base_offset, s.record] as const));
  // A listed segment whose file is missing past the first file is damage, unless an interrupted
  // merge had already deleted it (checked once the files are scanned, below).
  const missing = names.length > 0 ? [...records.keys()].filter((base) => base > names[0]! && !names.includes(base)) : [];
  for (const base of records.keys()) {
    // A record without a file below the first file was being deleted by retention when the process stopped.
    if (!names.includes(base) && !missing.includes(base)) void catalog.removeSegment(key, base);
  }

  const segments: Segment[] = [];
  let truncated_bytes = 0;
  let merged_leftovers = 0;
  /** Where a torn tail in a rolled, unsynced segment ended the log (later files deleted), or -1. */
  let cut_at = -1;
  for (let i = 0; i < names.length; i++) {
    const seg = Segment.at(dir, names[i]!);
    const prev = segments[segments.length - 1];
    if (prev && prev.next_offset !== seg.base_offset) {
      throw corruptSegment(seg.path, 0, `segment starts at offset ${seg.base_offset} but the previous one ends at ${prev.next_offset - 1}`);
    }
    const is_last = i === names.length - 1;
    const rec = records.get(seg.base_offset);
    const size = (await stat(seg.path)).size;
    if (rec && trusted(rec, size, is_last)) {
      adopt(seg, rec);
      indexer.running_max_ts = Math.max(indexer.running_max_ts, rec.max_timestamp_ms);
      if (is_last) {
        const floor = catalog.offsetFloor(key, seg.base_offset, Math.max(seg.base_offset, seg.next_offset - 1));
        indexer.resumeAt(seg.base_offset, floor ? floor.position : -1);
      }
    } else {
      const later = names.slice(i + 1);
      // Nothing after this segment was ever recorded durable: a tail torn in it may end the log.
      const may_end = !is_last && rec !== undefined && !rec.sealed && later.every((b) => !records.get(b)?.sealed && (records.get(b)?.durable_bytes ?? 0) === 0);
      const r = await rescan(seg, size, is_last, rec, key, catalog, indexer, later, may_end);
      truncated_bytes += r.truncated;
      if (r.ends_log) {
        for (const base of later) {
          truncated_bytes += (await stat(segmentPath(dir, base))).size;
          await unlink(segmentPath(dir, base));
          void catalog.removeSegment(key, base);
        }
        catalog.dropIndexRange(key, { from_offset: seg.next_offset });
        catalog.dropEpochsFrom(key, seg.next_offset);
        await syncDir(dir);
        cut_at = seg.next_offset;
        segments.push(seg);
        void catalog.putSegment(key, seg.base_offset, seg.record(false));
        break;
      }
    }
    seg.sealed = !is_last;
    if (seg.sealed) seg.durable_bytes = seg.size_bytes;
    segments.push(seg);
    void catalog.putSegment(key, seg.base_offset, seg.record(false));
    if (!is_last && seg.next_offset > names[i + 1]!) {
      // A merge of small compacted segments renamed its output over this one and stopped before
      // deleting the files it replaced. Those files are copies of what this one now holds, so they
      // go; but only if this segment ends exactly where a later file begins (a merge takes whole
      // segments): anything else is not a merge, and is refused.
      const k = names.indexOf(seg.next_offset, i + 2);
      if (k < 0) {
        throw corruptSegment(seg.path, seg.size_bytes, `the segment runs to offset ${seg.next_offset - 1}, past the start of the next segment (${names[i + 1]}), and does not end where a later segment begins`);
      }
      for (const base of names.slice(i + 1, k)) {
        await unlink(segmentPath(dir, base));
        void catalog.removeSegment(key, base);
        catalog.dropSegmentIndex(key, base, Number.MAX_SAFE_INTEGER);
      }
      await syncDir(dir);
      merged_leftovers += k - i - 1;
      i = k - 1;
    }
  }
  for (const base of missing) {
    if (cut_at >= 0 && base >= cut_at) {
      void catalog.removeSegment(key, base); // past the end of a log cut at a torn tail
      continue;
    }
    if (!segments.some((seg) => seg.base_offset < base && base < seg.next_offset)) throw missingSegment(dir, base);
    void catalog.removeSegment(key, base);
    catalog.dropSegmentIndex(key, base, Number.MAX_SAFE_INTEGER);
    merged_leftovers++;
  }
  return { segments, truncated_bytes, merged_leftovers };
}

function trusted(rec: SegmentRecord, size: number, is_last: boolean): boolean {
  if (rec.size_bytes !== size) return false;
  return is_last ? rec.clean : rec.sealed;
}

function adopt(seg: Segment, rec: SegmentRecord): void {
  seg.size_bytes = rec.size_bytes;
  seg.next_offset = rec.next_offset;
  seg.max_timestamp_ms = rec.max_timestamp_ms;
  seg.first_append_ms = rec.first_append_ms;
  seg.durable_bytes = rec.durable_bytes;
}

/** Scans a segment, re-indexes it, truncates a torn tail; returns bytes truncated. */
async function rescan(
  seg: Segment,
  size: number,
  is_last: boolean,
  rec: SegmentRecord | undefined,
  key: PartitionKey,
  catalog: Catalog,
  indexer: Indexer,
  /** Base offsets of the later segment files (this one must end at one of them), empty for the last. */
  later_bases: number[],
  /** A rolled segment whose seal never became durable, with nothing durable after it: a torn tail ends the log here. */
  may_end = false,
): Promise<{ truncated: number; ends_log: boolean }> {
  const durable = rec?.durable_bytes ?? 0;
  // A sealed segment smaller than recorded is either damage or a compacted replacement whose
  // catalog update a crash cut off (the record may even predate the roll that sealed it): it is
  // accepted only if it scans sound to exactly where the next segment begins (compaction keeps
  // every offset range; damage cannot end on that offset).
  const maybe_compacted = later_bases.length > 0 && size < durable;
  if (size < durable && !maybe_compacted) {
    throw corruptSegment(seg.path, size, `the file is ${size} bytes but ${durable} bytes were fsynced to it`);
  }
  if (is_last) catalog.dropIndexRange(key, { from_offset: seg.base_offset });
  else catalog.dropSegmentIndex(key, seg.base_offset, rec?.next_offset ?? Number.MAX_SAFE_INTEGER);
  const fh = await open(seg.path, 'r+');
  try {
    // A compacted replacement in the middle of the log is re-indexed on its own (running max from
    // the segments before it, epochs untouched), as compaction itself does.
    const ix = maybe_compacted ? new Indexer(catalog, key, indexer.running_max_ts, 'segment') : indexer;
    const result = await scanSegment(fh, size, {
      expected_offset: seg.base_offset,
      on_batch: (b) => ix.onBatch(seg.base_offset, b.position, b.base_offset, b.max_timestamp_ms, b.leader_epoch),
    });
    if (ix !== indexer) indexer.running_max_ts = Math.max(indexer.running_max_ts, ix.running_max_ts);
    let truncated = 0;
    let ends_log = false;
    if (maybe_compacted && (result.fault || !later_bases.includes(result.next_offset))) {
      throw corruptSegment(seg.path, result.fault?.position ?? size, `the file is ${size} bytes but ${durable} bytes were fsynced to it, and it is not a compacted copy of the same offsets`);
    }
    if (result.fault) {
      const f = result.fault;
      const torn = (is_last || may_end) && (rec ? f.position >= durable : f.at_tail);
      if (!torn) {
        const where = is_last ? 'before the durable tail of the active segment' : 'in a sealed segment';
        throw corruptSegment(seg.path, f.position, `${f.reason} (${where})`);
      }
      truncated = size - f.position;
      ends_log = !is_last;
      await fh.truncate(f.position);
      await fh.datasync();
    } else if (may_end && result.next_offset < later_bases[0]!) {
      ends_log = true; // the power loss cut it at a batch boundary: sound, but short of the next file
    }
    // What the catalog did not know durable is made durable before it is recorded so (below): a
    // rolled segment whose background fdatasync a process crash cut off is only in the page cache.
    if (!result.fault && !(rec?.sealed || (rec?.durable_bytes ?? 0) >= result.end_position)) await fh.datasync();
    seg.size_bytes = result.end_position;
    seg.next_offset = result.next_offset;
    seg.max_timestamp_ms = result.max_timestamp_ms;
    seg.first_append_ms = rec?.first_append_ms ?? 0;
    seg.durable_bytes = result.end_position;
    seg.verified.add(0, result.end_position); // every batch was just CRC-checked
    return { truncated, ends_log };
  } catch (err) {
    if ((err as { code?: string }).code === 'CORRUPT_SEGMENT') throw err;
    throw storageError(`recovering ${seg.path}`, err);
  } finally {
    await fh.close();
  }
}

function segmentPath(dir: string, base: number): string {
  return `${dir}/${String(base).padStart(20, '0')}.log`;
}

function missingSegment(dir: string, base: number) {
  return corruptSegment(segmentPath(dir, base), 0, 'the catalog lists this segment but the file is missing');
}

/** fsyncs a directory, making renames and unlinks in it durable. */
export async function syncDir(dir: string): Promise<void> {
  const fh = await open(dir, 'r');
  await fh.sync().finally(() => fh.close());
}
