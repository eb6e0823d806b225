import { existsSync, statSync } from 'node:fs';
import { open, readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { EngineError, storageError, unknownTopic } from '../../../engine/base/errors.js';
import { Catalog, type ArchivedSegment, type SegmentRecord } from '../../../engine/catalog/catalog.js';
import { DataDirLock } from '../../../engine/log/data-dir-lock.js';
import { scanSegment } from '../../../engine/log/segment-scan.js';
import { parseSegmentFileName, segmentFileName } from '../../../engine/log/segment.js';
import type { TopicInfo } from '../../../engine/log/types.js';
import { BATCH_HEADER_BYTES, F_BASE_TIMESTAMP } from '../../../engine/format/record-batch.js';
import { openArchiveStore, type ArchiveStore } from '../../../engine/tier/archive/archive-store.js';

/*
 * Offline, read-only access to a data dir for `verify`, `inspect`, `dump` and `archive list`:
 * the data-dir lock (so no server writes while we read, and we refuse while one runs), the LMDB
 * catalog opened read-only, topic configs and segment files read directly. Nothing here writes to
 * the data dir or runs recovery: a segment the catalog does not vouch for is scanned (read-only),
 * never truncated.
 */

export interface OfflineDir {
  readonly dir: string;
  /** null when the data dir has no catalog (it is rebuilt at the next open). */
  readonly catalog: Catalog | null;
  /** Topics with a topic.json, by name. */
  readonly topics: TopicInfo[];
  /** Releases the catalog and the lock. Idempotent. */
  close(): Promise<void>;
}

/** The one-line refusal for a path that is not a data dir (nothing is created there). */
export function notADataDir(dir: string): EngineError {
  return new EngineError('INVALID_ARGUMENT', `${dir} is not a relaylog data dir (it has no topics/ directory)`, { dir });
}

/**
 * Takes the data-dir lock (refused with DATA_DIR_LOCKED, naming the holder's pid, while a server or
 * another command holds it) and opens the catalog read-only.
 */
export async function openOffline(dir: string, opts: { topic?: string } = {}): Promise<OfflineDir> {
  if (!existsSync(join(dir, 'topics')) || !statSync(join(dir, 'topics')).isDirectory()) throw notADataDir(dir);
  const lock = DataDirLock.acquire(dir);
  let catalog: Catalog | null = null;
  try {
    catalog = Catalog.openReadOnly(join(dir, 'catalog'));
    const topics: TopicInfo[] = [];
    for (const name of (await readdir(join(dir, 'topics'))).sort()) {
      if (opts.topic !== undefined && name !== opts.topic) continue;
      const file = join(dir, 'topics', name, 'topic.json');
      try {
        topics.push(JSON.parse(await readFile(file, 'utf8')) as TopicInfo);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') continue; // half-created or half-deleted, as the store skips it
        throw storageError(`reading ${file}`, err);
      }
    }
    if (opts.topic !== undefined && topics.length === 0) throw unknownTopic(opts.topic);
    let closed = false;
    const cat = catalog;
    return {
      dir,
      catalog: cat,
      topics,
      close: async () => {
        if (closed) return;
        closed = true;
        try {
          await cat?.close();
        } finally {
          lock.release();
        }
      },
    };
  } catch (err) {
    await catalog?.close().catch(() => undefined);
    lock.release();
    throw err;
  }
}

/** A segment file on the SSD tier and what is established about it (from the catalog, or a read-only scan). */
export interface LocalSegment {
  base_offset: number;
  path: string;
  /** Bytes in the file. */
  file_bytes: number;
  /** The catalog's record, if any. */
  record: SegmentRecord | null;
  /** The last (active) segment of its partition. */
  active: boolean;
  /** The catalog's record describes the file exactly (what the next open would trust without a scan). */
  trusted: boolean;
  /** Bytes of whole sound batches from the start (= file_bytes unless a scan stopped early). */
  size_bytes: number;
  next_offset: number;
  /** The first record's timestamp (the first batch's baseTimestamp), -1 when empty. */
  first_timestamp_ms: number;
  max_timestamp_ms: number;
  /** Set when a read-only scan stopped before the end of the file. */
  scan_fault: { position: number; reason: string; at_tail: boolean } | null;
}

export interface PartitionLayout {
  topic: string;
  partition: number;
  dir: string;
  local: LocalSegment[];
  /** Segments the catalog records as archived, oldest first (some may still be local too). */
  archived: ArchivedSegment[];
  /** Catalog records whose file is missing (retention interrupted, or damage). */
  missing_files: number[];
  log_start_offset: number;
  log_end_offset: number;
}

/** Segment files of a partition dir, by base offset (no stat). */
export async function segmentFiles(dir: string): Promise<number[]> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw storageError(`listing ${dir}`, err);
  }
  return names.map(parseSegmentFileName).filter((b): b is number => b !== null).sort((a, b) => a - b);
}

async function firstTimestamp(path: string, size: number): Promise<number> {
  if (size < BATCH_HEADER_BYTES) return -1;
  const fh = await open(path, 'r');
  try {
    const b = Buffer.alloc(8);
    await fh.read(b, 0, 8, F_BASE_TIMESTAMP);
    return Number(b.readBigInt64BE(0));
  } finally {
    await fh.close();
  }
}

/**
 * The partition's layout as the next open would see it, without opening it: segments the catalog
 * vouches for (right size; sealed, or the active one after a clean close) are taken from the
 * catalog; any other is scanned read-only up to its first fault.
 */
export async function partitionLayout(off: OfflineDir, topic: TopicInfo, partition: number): Promise<PartitionLayout> {
  const dir = join(off.dir, 'topics', topic.name, String(partition));
  const key = [topic.name, partition] as const;
  const bases = await segmentFiles(dir);
  const records = new Map((off.catalog?.listSegments(key) ?? []).map((s) => [s.base_offset, s.record] as const));
  const local: LocalSegment[] = [];
  for (const [i, base] of bases.entries()) {
    const path = join(dir, segmentFileName(base));
    const file_bytes = (await stat(path)).size;
    const record = records.get(base) ?? null;
    const active = i === bases.length - 1;
    const trusted = record !== null && record.size_bytes === file_bytes && (active ? record.clean : record.sealed);
    const seg: LocalSegment = { base_offset: base, path, file_bytes, record, active, trusted, size_bytes: file_bytes, next_offset: base, first_timestamp_ms: -1, max_timestamp_ms: -1, scan_fault: null };
    if (trusted) {
      seg.next_offset = record.next_offset;
      seg.max_timestamp_ms = record.max_timestamp_ms;
    } else {
      const fh = await open(path, 'r');
      try {
        const r = await scanSegment(fh, file_bytes, { expected_offset: base });
        seg.size_bytes = r.end_position;
        seg.next_offset = r.next_offset;
        seg.max_timestamp_ms = r.max_timestamp_ms;
        seg.scan_fault = r.fault;
      } finally {
        await fh.close();
      }
    }
    seg.first_timestamp_ms = await firstTimestamp(path, seg.size_bytes);
    local.push(seg);
  }
  const archived = off.catalog?.listArchived(key) ?? [];
  const missing_files = [...records.keys()].filter((b) => !bases.includes(b));
  const first_local = local[0]?.base_offset;
  const first_archived = archived[0]?.base_offset;
  const log_start_offset = first_archived !== undefined && (first_local === undefined || first_archived < first_local) ? first_archived : (first_local ?? 0);
  const log_end_offset = local.at(-1)?.next_offset ?? archived.at(-1)?.next_offset ?? 0;
  return { topic: topic.name, partition, dir, local, archived, missing_files, log_start_offset, log_end_offset };
}

/** Archived segments whose local copy is gone (they are read from the archive only). */
export function archiveOnly(layout: PartitionLayout): ArchivedSegment[] {
  const first_local = layout.local[0]?.base_offset ?? Number.POSITIVE_INFINITY;
  return layout.archived.filter((a) => a.base_offset < first_local);
}

/** Opens `--archive URL`, or returns null without one. */
export function archiveStoreFor(url: string | undefined): ArchiveStore | null {
  return url === undefined ? null : openArchiveStore(url);
}
