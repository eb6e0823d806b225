import { open, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { assert } from '../base/assert.js';
import { readAt } from './segment-scan.js';
import { VerifiedRanges } from './verified-ranges.js';
import type { SegmentRecord } from '../catalog/catalog.js';

export const SEGMENT_SUFFIX = '.log';

/** Segment files are named by base offset, zero-padded to 20 digits so they sort by name (as Kafka's). */
export function segmentFileName(base_offset: number): string {
  return `${String(base_offset).padStart(20, '0')}${SEGMENT_SUFFIX}`;
}

export function parseSegmentFileName(name: string): number | null {
  const m = /^(\d{20})\.log$/.exec(name);
  if (!m) return null;
  const n = Number(m[1]);
  return Number.isSafeInteger(n) ? n : null;
}

/**
 * One segment file and what is known about it. Only committed bytes ([0, size_bytes)) are ever
 * read; the writer appends past size_bytes and moves it when the write (and fsync, if due) is done.
 */
export class Segment {
  size_bytes = 0;
  next_offset: number;
  max_timestamp_ms = -1;
  first_append_ms = 0;
  sealed = false;
  durable_bytes = 0;
  deleted = false;
  /** Byte ranges whose batches passed their CRC check in this process. */
  readonly verified = new VerifiedRanges();
  private fh: FileHandle | null = null;
  private opening: Promise<FileHandle> | null = null;
  private refs = 0;
  last_used = 0;

  constructor(readonly base_offset: number, readonly path: string) {
    this.next_offset = base_offset;
  }

  static at(dir: string, base_offset: number): Segment {
    return new Segment(base_offset, join(dir, segmentFileName(base_offset)));
  }

  get is_open(): boolean {
    return this.fh !== null;
  }

  get in_use(): boolean {
    return this.refs > 0;
  }

  record(clean = false): SegmentRecord {
    return {
      size_bytes: this.size_bytes,
      next_offset: this.next_offset,
      max_timestamp_ms: this.max_timestamp_ms,
      first_append_ms: this.first_append_ms,
      sealed: this.sealed,
      durable_bytes: this.durable_bytes,
      clean,
    };
  }

  /** Opens (or returns) the file handle. Sealed segments are opened read-only. */
  async handle(): Promise<FileHandle> {
    if (this.fh) return this.fh;
    if (!this.opening) {
      this.opening = open(this.path, this.sealed ? 'r' : 'r+').then((fh) => {
        this.fh = fh;
        this.opening = null;
        return fh;
      }, (err) => {
        this.opening = null;
        throw err;
      });
    }
    return this.opening;
  }

  setHandle(fh: FileHandle): void {
    assert(this.fh === null, 'segment already has a handle');
    this.fh = fh;
  }

  /** Runs `fn` with the file handle, keeping the file open (and undeleted on disk) until it returns. */
  async use<T>(now_ms: number, fn: (fh: FileHandle) => Promise<T>): Promise<T> {
    this.refs++;
    this.last_used = now_ms;
    try {
      return await fn(await this.handle());
    } finally {
      this.refs--;
      if (this.refs === 0 && this.deleted) void this.closeHandle();
    }
  }

  async readAt(now_ms: number, position: number, length: number): Promise<Buffer> {
    return this.use(now_ms, (fh) => readAt(fh, position, length));
  }

  /** Reads into a caller-provided buffer; returns bytes read (fewer only at end of file). */
  async readInto(now_ms: number, into: Buffer, position: number, length: number): Promise<number> {
    return this.use(now_ms, async (fh) => {
      let done = 0;
      while (done < length) {
        const { bytesRead } = await fh.read(into, done, length - done, position + done);
        if (bytesRead === 0) break;
        done += bytesRead;
      }
      return done;
    });
  }

  async closeHandle(): Promise<void> {
    const fh = this.fh ?? (this.opening ? await this.opening.catch(() => null) : null);
    this.fh = null;
    if (fh) await fh.close();
  }
}

/**
 * writev until every byte is written. A short write is not an error by itself (a nearly full file
 * system writes what fits); the next write then fails with the real cause, e.g. ENOSPC.
 */
export async function writeAll(fh: FileHandle, buffers: Buffer[], position: number, total: number): Promise<void> {
  let written = 0;
  let bufs = buffers;
  while (written < total) {
    const { bytesWritten } = await fh.writev(bufs, position + written);
    if (bytesWritten === 0) throw Object.assign(new Error('write made no progress'), { code: 'EIO' });
    written += bytesWritten;
    if (written < total) bufs = sliceBuffers(buffers, written);
  }
}

function sliceBuffers(buffers: Buffer[], skip: number): Buffer[] {
  const out: Buffer[] = [];
  for (const b of buffers) {
    if (skip >= b.length) {
      skip -= b.length;
      continue;
    }
    out.push(skip > 0 ? b.subarray(skip) : b);
    skip = 0;
  }
  return out;
}

