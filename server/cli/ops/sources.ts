import { open, type FileHandle } from 'node:fs/promises';
import type { SequentialSource } from '../../../engine/log/segment-verify.js';
import type { ArchiveStore } from '../../../engine/tier/archive/archive-store.js';

/** Reads ranges of one segment, wherever it lives (a local file, an archived object). */
export interface SegmentReader extends SequentialSource {
  /** Named in reports and errors: the file path, or the archive URL of the object. */
  readonly name: string;
  /** Reads [position, position + length) into a new buffer (fewer bytes only at the end). */
  read(position: number, length: number): Promise<Buffer>;
  close(): Promise<void>;
}

export async function fileReader(path: string, size_bytes: number): Promise<SegmentReader> {
  const fh: FileHandle = await open(path, 'r');
  return {
    name: path,
    size_bytes,
    read: async (position, length) => {
      const buf = Buffer.allocUnsafe(length);
      return buf.subarray(0, await readFully(fh, buf, 0, position, length));
    },
    readInto: (into, offset, position, length) => readFully(fh, into, offset, position, length),
    close: () => fh.close(),
  };
}

/** An archived segment read straight from the store (ranged reads; no cache, nothing written locally). */
export function archiveReader(store: ArchiveStore, path: string, size_bytes: number): SegmentReader {
  return {
    name: `${store.url}/${path}`,
    size_bytes,
    read: (position, length) => store.read(path, position, Math.min(length, size_bytes - position)),
    readInto: async (into, offset, position, length) => {
      const b = await store.read(path, position, Math.min(length, size_bytes - position));
      b.copy(into, offset);
      return b.length;
    },
    close: async () => undefined,
  };
}

async function readFully(fh: FileHandle, into: Buffer, offset: number, position: number, length: number): Promise<number> {
  let done = 0;
  while (done < length) {
    const { bytesRead } = await fh.read(into, offset + done, length - done, position + done);
    if (bytesRead === 0) break;
    done += bytesRead;
  }
  return done;
}
