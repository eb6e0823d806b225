import { createHash } from 'node:crypto';
import { mkdir, readFile, readdir, rm, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { assert } from '../base/assert.js';

/**
 * A bounded on-disk cache of archive blocks, so replaying an archived range reads each byte from
 * the archive once, with read-ahead so a sequential reader rarely waits on the network.
 *
 * The cache is disposable: it is wiped on open and holds no state the log needs.
 */
export interface ArchiveCacheOptions {
  dir: string;
  /** Bytes of blocks kept on disk at most. */
  cache_max_bytes: number;
  /** Size of one cached block (the unit of fetching and of read-ahead). */
  block_bytes: number;
  /** Blocks fetched ahead of a sequential reader. */
  read_ahead_blocks: number;
}

type Fetch = (path: string, position: number, length: number) => Promise<Buffer>;

export class ArchiveCache {
  /** LRU: insertion order of a Map, re-inserted on use. key -> size. */
  private blocks = new Map<string, number>();
  private inflight = new Map<string, Promise<Buffer>>();
  /** The few most recently used blocks stay in memory: sequential reads touch each block several times. */
  private hot = new Map<string, Buffer>();
  private static readonly HOT_BLOCKS = 4;
  private used = 0;
  readonly stats = { hits: 0, misses: 0, fetched_bytes: 0 };

  private constructor(private readonly opts: ArchiveCacheOptions, private readonly fetch: Fetch) {
    assert(opts.block_bytes > 0 && opts.cache_max_bytes >= opts.block_bytes, 'archive cache must hold at least one block');
  }

  static async open(opts: ArchiveCacheOptions, fetch: Fetch): Promise<ArchiveCache> {
    await rm(opts.dir, { recursive: true, force: true });
    await mkdir(opts.dir, { recursive: true });
    return new ArchiveCache(opts, fetch);
  }

  /** Reads [position, position+length) of the archived file `path` whose size is `size_bytes`. */
  async read(path: string, size_bytes: number, position: number, length: number): Promise<Buffer> {
    const B = this.opts.block_bytes;
    const end = Math.min(size_bytes, position + length);
    if (end <= position) return Buffer.alloc(0);
    const first = Math.floor(position / B);
    const last = Math.floor((end - 1) / B);
    const parts: Buffer[] = [];
    for (let k = first; k <= last; k++) {
      const block = await this.block(path, size_bytes, k);
      const lo = k === first ? position - k * B : 0;
      const hi = k === last ? end - k * B : block.length;
      parts.push(block.subarray(lo, hi));
    }
    for (let k = last + 1; k <= last + this.opts.read_ahead_blocks && k * B < size_bytes; k++) {
      void this.block(path, size_bytes, k).catch(() => undefined);
    }
    return parts.length === 1 ? parts[0]! : Buffer.concat(parts);
  }

  private async block(path: string, size_bytes: number, k: number): Promise<Buffer> {
    const key = blockKey(path, k);
    const hot = this.hot.get(key);
    if (hot) {
      this.hot.delete(key);
      this.hot.set(key, hot);
      this.stats.hits++;
      return hot;
    }
    if (this.blocks.has(key)) {
      try {
        const buf = await readFile(join(this.opts.dir, key));
        this.touch(key);
        this.stats.hits++;
        this.keepHot(key, buf);
        return buf;
      } catch {
        this.forget(key); // evicted meanwhile: fetch again
      }
    }
    const pending = this.inflight.get(key);
    if (pending) return pending;
    const B = this.opts.block_bytes;
    const length = Math.min(B, size_bytes - k * B);
    const p = (async () => {
      this.stats.misses++;
      const buf = await this.fetch(path, k * B, length);
      assert(buf.length === length, `archive returned ${buf.length} bytes for a ${length}-byte block of ${path}`);
      this.stats.fetched_bytes += buf.length;
      await writeFile(join(this.opts.dir, key), buf);
      this.blocks.set(key, buf.length);
      this.used += buf.length;
      await this.evict();
      this.keepHot(key, buf);
      return buf;
    })().finally(() => this.inflight.delete(key));
    this.inflight.set(key, p);
    return p;
  }

  private keepHot(key: string, buf: Buffer): void {
    this.hot.set(key, buf);
    while (this.hot.size > ArchiveCache.HOT_BLOCKS) this.hot.delete(this.hot.keys().next().value as string);
  }

  private touch(key: string): void {
    const size = this.blocks.get(key)!;
    this.blocks.delete(key);
    this.blocks.set(key, size);
  }

  private forget(key: string): void {
    this.hot.delete(key);
    const size = this.blocks.get(key);
    if (size === undefined) return;
    this.blocks.delete(key);
    this.used -= size;
  }

  private async evict(): Promise<void> {
    while (this.used > this.opts.cache_max_bytes) {
      const oldest = this.blocks.keys().next().value as string | undefined;
      if (oldest === undefined) break;
      this.forget(oldest);
      await unlink(join(this.opts.dir, oldest)).catch(() => undefined);
    }
  }

  /** Drops every cached block of `path` (the archived file was deleted). */
  async invalidate(path: string): Promise<void> {
    const prefix = blockKey(path, 0).split('.')[0]!;
    for (const key of [...this.blocks.keys()]) {
      if (key.startsWith(prefix)) {
        this.forget(key);
        await unlink(join(this.opts.dir, key)).catch(() => undefined);
      }
    }
  }

  get used_bytes(): number {
    return this.used;
  }

  async close(): Promise<void> {
    await Promise.allSettled([...this.inflight.values()]);
    this.hot.clear();
    for (const key of [...this.blocks.keys()]) this.forget(key);
    for (const f of await readdir(this.opts.dir).catch(() => [])) await unlink(join(this.opts.dir, f)).catch(() => undefined);
  }
}

function blockKey(path: string, k: number): string {
  return `${createHash('sha1').update(path).digest('hex').slice(0, 24)}.${k}`;
}
