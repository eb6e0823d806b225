import { existsSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { join } from 'node:path';
import { unknownTopic } from '../../../engine/base/errors.js';
import type { ArchivedSegment } from '../../../engine/catalog/catalog.js';
import { BATCH_HEADER_BYTES, F_BASE_TIMESTAMP } from '../../../engine/format/record-batch.js';
import { segmentFileName } from '../../../engine/log/segment.js';
import type { SegmentSidecar } from '../../../engine/tier/archive-tier.js';
import type { ArchiveStore } from '../../../engine/tier/archive/archive-store.js';
import { formatBytes, isoOrNull, isoTime, table } from './format.js';
import { archiveStoreFor, openOffline } from './offline.js';
import { Progress } from './progress.js';

/*
 * `relaylog archive list`: the archived segments, from the archive's manifest (its sidecars, with
 * --archive URL: works while a server runs, reads nothing but the archive) or from a data dir's
 * catalog, which records what the node archived (with --data DIR: offline, takes the lock).
 */

export interface ArchiveListEntry {
  topic: string;
  partition: number;
  base_offset: number;
  next_offset: number;
  size_bytes: number;
  /** CRC-32C of the whole segment, as hex (0x...). */
  crc32c: string;
  /** The first record's timestamp (the first batch's baseTimestamp), when it could be read. */
  first_timestamp: string | null;
  first_timestamp_ms: number | null;
  max_timestamp: string | null;
  max_timestamp_ms: number | null;
  uploaded: string | null;
  /** Path inside the archive. */
  path: string;
}

export interface ArchiveListReport {
  source: 'archive' | 'catalog';
  archive_url: string | null;
  data_dir: string | null;
  segments: ArchiveListEntry[];
  totals: { segments: number; bytes: number };
}

function entry(topic: string, partition: number, a: ArchivedSegment, first: number | null): ArchiveListEntry {
  return {
    topic,
    partition,
    base_offset: a.base_offset,
    next_offset: a.next_offset,
    size_bytes: a.size_bytes,
    crc32c: `0x${(a.crc32c >>> 0).toString(16).padStart(8, '0')}`,
    first_timestamp: isoOrNull(first),
    first_timestamp_ms: first,
    max_timestamp: isoOrNull(a.max_timestamp_ms),
    max_timestamp_ms: a.max_timestamp_ms < 0 ? null : a.max_timestamp_ms,
    uploaded: isoOrNull(a.uploaded_ms),
    path: a.path,
  };
}

/** The first batch's baseTimestamp of an archived object (one small ranged read). */
async function firstFromStore(store: ArchiveStore, a: ArchivedSegment): Promise<number | null> {
  if (a.size_bytes < BATCH_HEADER_BYTES) return null;
  const b = await store.read(a.path, F_BASE_TIMESTAMP, 8);
  return b.length === 8 ? Number(b.readBigInt64BE(0)) : null;
}

async function firstFromFile(path: string): Promise<number | null> {
  if (!existsSync(path)) return null;
  const fh = await open(path, 'r');
  try {
    const b = Buffer.alloc(8);
    const { bytesRead } = await fh.read(b, 0, 8, F_BASE_TIMESTAMP);
    return bytesRead === 8 ? Number(b.readBigInt64BE(0)) : null;
  } finally {
    await fh.close();
  }
}

/** From the archive's sidecars: every <topic>/<partition>/<base>.json whose segment is there too. */
async function fromArchive(store: ArchiveStore, topic: string | undefined): Promise<ArchiveListEntry[]> {
  const found: Array<{ topic: string; partition: number; seg: ArchivedSegment }> = [];
  const topics = (await store.list('')).filter((e) => e.type === 'dir' && (topic === undefined || e.name === topic));
  if (topic !== undefined && topics.length === 0) throw unknownTopic(topic);
  for (const t of topics) {
    const parts = (await store.list(t.name)).filter((e) => e.type === 'dir' && /^\d+$/.test(e.name)).map((e) => Number(e.name)).sort((a, b) => a - b);
    for (const p of parts) {
      const files = await store.list(`${t.name}/${p}`);
      const logs = new Set(files.filter((f) => f.type === 'file' && f.name.endsWith('.log')).map((f) => f.name));
      for (const f of files.filter((x) => x.type === 'file' && x.name.endsWith('.json')).sort((a, b) => a.name.localeCompare(b.name))) {
        // A sidecar whose segment is gone was being deleted by retention (the .log goes first).
        if (!logs.has(f.name.replace(/\.json$/, '.log'))) continue;
        const sc = JSON.parse((await store.read(`${t.name}/${p}/${f.name}`, 0, f.size_bytes)).toString()) as SegmentSidecar;
        found.push({ topic: t.name, partition: p, seg: sc.segment });
      }
    }
  }
  const progress = new Progress('archive list', found.length, true, (n) => `${n} segment(s)`);
  const out: ArchiveListEntry[] = [];
  try {
    for (const f of found) {
      out.push(entry(f.topic, f.partition, f.seg, await firstFromStore(store, f.seg)));
      progress.add(1);
    }
  } finally {
    progress.stop();
  }
  return out;
}

export async function runArchiveList(o: { data?: string; archive?: string; topic?: string }): Promise<ArchiveListReport> {
  const store = archiveStoreFor(o.archive);
  try {
    if (store) {
      const segments = await fromArchive(store, o.topic);
      return { source: 'archive', archive_url: store.url, data_dir: null, segments, totals: { segments: segments.length, bytes: segments.reduce((n, s) => n + s.size_bytes, 0) } };
    }
    const off = await openOffline(o.data!, o.topic !== undefined ? { topic: o.topic } : {});
    try {
      const segments: ArchiveListEntry[] = [];
      for (const t of off.topics) {
        for (let p = 0; p < t.config.partitions; p++) {
          for (const a of off.catalog?.listArchived([t.name, p]) ?? []) {
            const local = join(off.dir, 'topics', t.name, String(p), segmentFileName(a.base_offset));
            segments.push(entry(t.name, p, a, await firstFromFile(local)));
          }
        }
      }
      return { source: 'catalog', archive_url: null, data_dir: off.dir, segments, totals: { segments: segments.length, bytes: segments.reduce((n, s) => n + s.size_bytes, 0) } };
    } finally {
      await off.close();
    }
  } finally {
    await store?.close();
  }
}

export function archiveListText(r: ArchiveListReport): string {
  const rows = [['topic', 'partition', 'base-offset', 'next-offset', 'bytes', 'crc32c', 'first-timestamp', 'max-timestamp', 'path']];
  for (const s of r.segments) {
    rows.push([s.topic, String(s.partition), String(s.base_offset), String(s.next_offset), String(s.size_bytes), s.crc32c, isoTime(s.first_timestamp_ms), isoTime(s.max_timestamp_ms), s.path]);
  }
  const from = r.source === 'archive' ? `the manifest of ${r.archive_url}` : `the catalog of ${r.data_dir}`;
  return [table(rows), `${r.totals.segments} archived segment(s), ${formatBytes(r.totals.bytes)} (from ${from})`].join('\n');
}
