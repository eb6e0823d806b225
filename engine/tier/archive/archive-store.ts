import { invalidArgument } from '../../base/errors.js';
import { FileArchiveStore } from './file-store.js';
import { WebHdfsArchiveStore } from './webhdfs-store.js';

/**
 * Long-term storage for sealed segments, behind one narrow interface so that HDFS (WebHDFS) and a
 * mounted directory are interchangeable; test/contract/ runs one suite against every implementation.
 * Paths are relative to the store's base and use "/" separators.
 */
export interface ArchiveStore {
  readonly url: string;
  /**
   * Stores `data` at `path` atomically: written under a temporary name, then renamed, so a partial
   * file is never visible. Refuses to replace an existing file (ARCHIVE_EXISTS). Returns the size
   * and CRC-32C of the bytes sent.
   */
  put(path: string, data: Buffer | AsyncIterable<Buffer>, opts?: { size_bytes?: number }): Promise<{ size_bytes: number; crc32c: number }>;
  stat(path: string): Promise<{ size_bytes: number; modified_ms: number } | null>;
  list(dir: string): Promise<Array<{ name: string; size_bytes: number; type: 'file' | 'dir' }>>;
  /** Range read; fewer bytes only at end of file. */
  read(path: string, offset: number, length: number): Promise<Buffer>;
  /** True if something was deleted. */
  delete(path: string): Promise<boolean>;
  close(): Promise<void>;
}

/** `file:///abs/path` (any mounted file system: HDFS NFS gateway, FUSE, a local dir) or `webhdfs://host:port/path?user=NAME`. */
export function openArchiveStore(url: string): ArchiveStore {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw invalidArgument(`archive location ${JSON.stringify(url)} is not a URL; use file:///path or webhdfs://host:port/path`);
  }
  if (u.protocol === 'file:') return new FileArchiveStore(decodeURIComponent(u.pathname));
  if (u.protocol === 'webhdfs:') return new WebHdfsArchiveStore(url);
  throw invalidArgument(`archive location ${url}: unsupported scheme ${u.protocol} (use file:// or webhdfs://)`);
}
