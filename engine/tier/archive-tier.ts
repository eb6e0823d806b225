import { createReadStream } from 'node:fs';
import { open as openFile, rename, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { closed, corruptSegment } from '../base/errors.js';
import type { Clock } from '../base/clock.js';
import type { ArchivedSegment, Catalog, PartitionKey, SegmentIndexEntries } from '../catalog/catalog.js';
import { crc32c } from '../format/crc32c.js';
import type { RangeSource } from '../log/read-path.js';
import type { TopicInfo } from '../log/types.js';
import { ArchiveCache } from './archive-cache.js';
import type { ArchiveStore } from './archive/archive-store.js';

/**
 * The archive tier: sealed segments uploaded to long-term storage (HDFS via WebHDFS, or a mounted
 * directory) and read back through a bounded on-disk cache.
 *
 * Layout inside the archive store (paths relative to its base):
 *   <topic>/topic.json                              the topic's config (for restore)
 *   <topic>/<partition>/<base offset>.log           the segment, byte-identical to the local file
 *   <topic>/<partition>/<base offset>.json          its sidecar: offsets, size, CRC-32C, index entries
 *
 * Nothing is ever overwritten: a segment is uploaded under a temporary name and renamed (inside the
 * store), then verified by reading it back (size and CRC-32C of the whole file), then its sidecar is
 * written, then the catalog records it. Only after that may the local copy be deleted. A crash at
 * any point leaves either no trace or an upload that the next attempt finds identical and accepts.
 * The sidecars are the archive's manifest: a node with an empty data dir rebuilds its catalog from them.
 */

export interface SegmentSidecar {
  version: 1;
  topic: string;
  partition: number;
  segment: ArchivedSegment;
  index: SegmentIndexEntries;
}

export interface ArchiveTierOptions {
  store: ArchiveStore;
  catalog: Catalog;
  clock: Clock;
  /** Local directory for the read cache (wiped on open). */
  cache_dir: string;
  cache_max_bytes?: number;
  cache_block_bytes?: number;
  read_ahead_blocks?: number;
}

const STREAM_CHUNK_BYTES = 1024 * 1024;

export class ArchiveTier {
  readonly metrics = { uploads: 0, upload_failures: 0, uploaded_bytes: 0, deletes: 0, last_error: '' as string };

  private closed_flag = false;

  private constructor(private readonly opts: ArchiveTierOptions, readonly cache: ArchiveCache) {}

  /** Between the steps of an upload: once closed (or crash-stopped), nothing more happens. */
  private check(): void {
    if (this.closed_flag) throw closed('the archive tier');
  }

  static async open(opts: ArchiveTierOptions): Promise<ArchiveTier> {
    const cache_max_bytes = Math.max(64 * 1024, opts.cache_max_bytes ?? 1024 * 1024 * 1024);
    // A small cache gets small blocks: it must hold a block plus its read-ahead.
    const block_bytes = Math.min(opts.cache_block_bytes ?? 4 * 1024 * 1024, Math.max(16 * 1024, Math.floor(cache_max_bytes / 4)));
    const cache = await ArchiveCache.open(
      {
        dir: opts.cache_dir,
        cache_max_bytes,
        block_bytes,
        read_ahead_blocks: opts.read_ahead_blocks ?? 2,
      },
      (path, position, length) => opts.store.read(path, position, length),
    );
    return new ArchiveTier(opts, cache);
  }

  get url(): string {
    return this.opts.store.url;
  }

  static segmentPath(key: PartitionKey, base_offset: number): string {
    return `${key[0]}/${key[1]}/${String(base_offset).padStart(20, '0')}.log`;
  }

  list(key: PartitionKey): ArchivedSegment[] {
    return this.opts.catalog.listArchived(key);
  }

  private topics_recorded = new Set<string>();

  /** Records the topic's config in the archive once (idempotent). */
  private async putTopic(info: TopicInfo): Promise<void> {
    if (this.topics_recorded.has(info.name)) return;
    const path = `${info.name}/topic.json`;
    if (!(await this.opts.store.stat(path))) await this.putIdempotent(path, Buffer.from(JSON.stringify(info, null, 2)));
    this.topics_recorded.add(info.name);
  }

  async deleteTopic(name: string): Promise<void> {
    this.topics_recorded.delete(name);
    await this.opts.store.delete(`${name}/topic.json`);
  }

  /**
   * Uploads one sealed local segment, verifies it, writes its sidecar and records it in the catalog.
   * Throws (and records nothing) on any failure; the caller retries later.
   */
  async upload(
    topic: TopicInfo,
    key: PartitionKey,
    seg: { path: string; base_offset: number; next_offset: number; size_bytes: number; max_timestamp_ms: number },
  ): Promise<ArchivedSegment> {
    const path = ArchiveTier.segmentPath(key, seg.base_offset);
    try {
      this.check();
      await this.putTopic(topic);
      this.check();
      let local_crc = 0;
      const stream = async function* () {
        for await (const chunk of createReadStream(seg.path, { start: 0, end: seg.size_bytes - 1, highWaterMark: STREAM_CHUNK_BYTES })) {
          const b = chunk as Buffer;
          local_crc = crc32c(b, local_crc);
          yield b;
        }
      };
      const existing = await this.opts.store.stat(path);
      if (!existing) {
        await this.opts.store.put(path, seg.size_bytes === 0 ? Buffer.alloc(0) : stream(), { size_bytes: seg.size_bytes });
      } else {
        for await (const _ of stream()) void _; // compute the local CRC to compare with what is there
      }
      this.check();
      await this.verify(path, seg.size_bytes, local_crc, seg.path);
      this.check();
      const archived: ArchivedSegment = {
        base_offset: seg.base_offset,
        next_offset: seg.next_offset,
        size_bytes: seg.size_bytes,
        crc32c: local_crc,
        max_timestamp_ms: seg.max_timestamp_ms,
        path,
        uploaded_ms: this.opts.clock.now_ms(),
      };
      const sidecar: SegmentSidecar = {
        version: 1,
        topic: key[0],
        partition: key[1],
        segment: archived,
        index: this.opts.catalog.segmentIndexEntries(key, seg.base_offset, seg.next_offset),
      };
      // An earlier attempt may have written the sidecar and died before the catalog recorded it
      // (a kill -9 between the two): the same segment's sidecar is accepted as it is.
      const recorded = (await this.putSidecar(path.replace(/\.log$/, '.json'), sidecar)) ?? archived;
      this.check();
      await this.opts.catalog.putArchived(key, recorded);
      this.metrics.uploads++;
      this.metrics.uploaded_bytes += seg.size_bytes;
      return recorded;
    } catch (err) {
      this.metrics.upload_failures++;
      this.metrics.last_error = `${path}: ${(err as Error).message}`;
      throw err;
    }
  }

  /** Reads the archived file back in full and compares size and CRC-32C with the local copy. */
  private async verify(path: string, size_bytes: number, local_crc: number, local_path: string): Promise<void> {
    const st = await this.opts.store.stat(path);
    if (!st || st.size_bytes !== size_bytes) {
      throw corruptSegment(path, 0, `archived copy of ${local_path} is ${st ? st.size_bytes : 'missing'}, expected ${size_bytes} bytes`);
    }
    let crc = 0;
    for (let pos = 0; pos < size_bytes; pos += STREAM_CHUNK_BYTES * 4) {
      crc = crc32c(await this.opts.store.read(path, pos, Math.min(STREAM_CHUNK_BYTES * 4, size_bytes - pos)), crc);
    }
    if (crc !== local_crc) {
      throw corruptSegment(path, 0, `archived copy of ${local_path} has CRC-32C 0x${crc.toString(16)}, local file 0x${local_crc.toString(16)}`);
    }
  }

  /**
   * Writes a segment's sidecar; if one is there already (an earlier attempt), it must describe the
   * same segment (offsets, size, CRC-32C, path), and its record is returned instead. A sidecar for a
   * different segment at the same path is a conflict and throws.
   */
  private async putSidecar(path: string, sidecar: SegmentSidecar): Promise<ArchivedSegment | null> {
    const data = Buffer.from(JSON.stringify(sidecar));
    try {
      await this.opts.store.put(path, data, { size_bytes: data.length });
      return null;
    } catch (err) {
      const st = await this.opts.store.stat(path).catch(() => null);
      if (!st) throw err;
      let there: SegmentSidecar;
      try {
        there = JSON.parse((await this.opts.store.read(path, 0, st.size_bytes)).toString()) as SegmentSidecar;
      } catch {
        throw err;
      }
      const a = there.segment;
      const b = sidecar.segment;
      const same = a.base_offset === b.base_offset && a.next_offset === b.next_offset && a.size_bytes === b.size_bytes && a.crc32c === b.crc32c && a.path === b.path;
      if (!same) throw corruptSegment(path, 0, `archive sidecar ${path} describes offsets ${a.base_offset}..${a.next_offset} (${a.size_bytes} bytes, CRC-32C 0x${a.crc32c.toString(16)}), not this segment's ${b.base_offset}..${b.next_offset} (${b.size_bytes} bytes, CRC-32C 0x${b.crc32c.toString(16)})`);
      return a;
    }
  }

  private async putIdempotent(path: string, data: Buffer): Promise<void> {
    try {
      await this.opts.store.put(path, data, { size_bytes: data.length });
    } catch (err) {
      // Already there from an earlier attempt: fine if it is the same bytes.
      const st = await this.opts.store.stat(path).catch(() => null);
      if (!st || st.size_bytes !== data.length) throw err;
      const there = await this.opts.store.read(path, 0, data.length);
      if (!there.equals(data)) throw err;
    }
  }

  /** Deletes an archived segment (total retention). The catalog record goes first, then the files. */
  async delete(key: PartitionKey, a: ArchivedSegment): Promise<void> {
    await this.opts.catalog.removeArchived(key, a.base_offset);
    await this.cache.invalidate(a.path);
    await this.opts.store.delete(a.path);
    await this.opts.store.delete(a.path.replace(/\.log$/, '.json'));
    this.metrics.deletes++;
  }

  /**
   * Copies an archived segment to `local_path`: written aside (`.download`), its size and CRC-32C
   * checked against the manifest, fsynced, then renamed into place. The caller fsyncs the directory.
   */
  async download(a: ArchivedSegment, local_path: string): Promise<void> {
    const tmp = `${local_path}.download`;
    const fh = await openFile(tmp, 'w');
    try {
      let crc = 0;
      for (let pos = 0; pos < a.size_bytes; ) {
        const b = await this.opts.store.read(a.path, pos, Math.min(STREAM_CHUNK_BYTES * 4, a.size_bytes - pos));
        if (b.length === 0) throw corruptSegment(`${this.url}/${a.path}`, pos, `archived segment ends at byte ${pos}; the manifest says ${a.size_bytes} bytes`);
        crc = crc32c(b, crc);
        await fh.write(b, 0, b.length, pos);
        pos += b.length;
      }
      if (crc !== a.crc32c) throw corruptSegment(`${this.url}/${a.path}`, 0, `archived segment has CRC-32C 0x${crc.toString(16)}, the manifest says 0x${a.crc32c.toString(16)}`);
      await fh.datasync();
    } catch (err) {
      await fh.close();
      await unlink(tmp).catch(() => undefined);
      throw err;
    }
    await fh.close();
    await rename(tmp, local_path);
  }

  /** A RangeSource reading an archived segment through the cache. */
  source(a: ArchivedSegment): RangeSource {
    return {
      base_offset: a.base_offset,
      size_bytes: a.size_bytes,
      path: `${this.url}/${a.path}`,
      // Archive bytes come over the network or from the cache each time: always CRC-checked.
      verified: null,
      readInto: async (into, position, length) => {
        const b = await this.cache.read(a.path, a.size_bytes, position, length);
        b.copy(into, 0);
        return b.length;
      },
    };
  }

  /**
   * Rebuilds this node's catalog of archived segments (and their index entries) from the archive's
   * sidecars alone. Returns the topics found, with their configs.
   */
  async restoreCatalog(): Promise<TopicInfo[]> {
    const topics: TopicInfo[] = [];
    for (const t of await this.opts.store.list('')) {
      if (t.type !== 'dir') continue;
      const meta = await this.opts.store.stat(`${t.name}/topic.json`);
      if (!meta) continue;
      const info = JSON.parse((await this.opts.store.read(`${t.name}/topic.json`, 0, meta.size_bytes)).toString()) as TopicInfo;
      topics.push(info);
      for (let p = 0; p < info.config.partitions; p++) {
        const key: PartitionKey = [info.name, p];
        const files = await this.opts.store.list(`${info.name}/${p}`).catch(() => []);
        for (const f of files.filter((x) => x.type === 'file' && x.name.endsWith('.json')).sort((a, b) => a.name.localeCompare(b.name))) {
          const body = await this.opts.store.read(join(info.name, String(p), f.name), 0, f.size_bytes);
          const sc = JSON.parse(body.toString()) as SegmentSidecar;
          if (!(await this.opts.store.stat(sc.segment.path))) continue; // sidecar of a deleted segment
          this.opts.catalog.putSegmentIndexEntries(key, sc.segment.base_offset, sc.index);
          await this.opts.catalog.putArchived(key, sc.segment);
        }
      }
    }
    await this.opts.catalog.flush();
    return topics;
  }

  async close(): Promise<void> {
    this.closed_flag = true;
    await this.cache.close();
    await this.opts.store.close();
  }
}
