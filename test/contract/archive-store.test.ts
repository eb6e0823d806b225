import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, test } from 'vitest';
import { crc32c } from '../../engine/format/crc32c.js';
import type { ArchiveStore } from '../../engine/tier/archive/archive-store.js';
import { FileArchiveStore } from '../../engine/tier/archive/file-store.js';
import { WebHdfsArchiveStore } from '../../engine/tier/archive/webhdfs-store.js';
import { tempDir } from '../support/tmp.js';
import { startWebHdfsStandin, type WebHdfsStandin } from '../support/webhdfs-standin.js';

/*
 * The ArchiveStore contract: every backend passes the same suite. WebHDFS runs against the
 * protocol stand-in (test/support/webhdfs-standin.ts), not a real HDFS; see docs/archive.md.
 */

interface Backend {
  name: string;
  open(dir: string): Promise<{ store: ArchiveStore; close(): Promise<void> }>;
}

const backends: Backend[] = [
  {
    name: 'file://',
    open: async (dir) => {
      const store = new FileArchiveStore(join(dir, 'archive'));
      return { store, close: () => store.close() };
    },
  },
  {
    name: 'webhdfs:// (stand-in)',
    open: async (dir) => {
      const s: WebHdfsStandin = await startWebHdfsStandin({ root_dir: join(dir, 'hdfs') });
      const store = new WebHdfsArchiveStore(s.url('/data/relaylog'), { backoff_base_ms: 5, backoff_max_ms: 20 });
      return {
        store,
        close: async () => {
          await store.close();
          await s.close();
        },
      };
    },
  },
];

async function* chunks(buf: Buffer, size: number): AsyncIterable<Buffer> {
  for (let i = 0; i < buf.length; i += size) yield buf.subarray(i, i + size);
}

describe.each(backends)('ArchiveStore contract: $name', (backend) => {
  let tmp: ReturnType<typeof tempDir>;
  let h: Awaited<ReturnType<Backend['open']>>;
  beforeEach(async () => {
    tmp = tempDir('relaylog-contract-');
    h = await backend.open(tmp.dir);
  });
  afterEach(async () => {
    await h.close();
    tmp.cleanup();
  });

  test('put then stat, list and ranged reads; a streamed put equals a buffered one', async () => {
    const data = Buffer.alloc(300_000);
    for (let i = 0; i < data.length; i++) data[i] = (i * 31) & 0xff;
    expect(await h.store.put('t/0/00000000000000000000.log', data)).toEqual({ size_bytes: data.length, crc32c: crc32c(data) });
    expect(await h.store.put('t/0/00000000000000001000.log', chunks(data, 65_536))).toEqual({ size_bytes: data.length, crc32c: crc32c(data) });
    expect((await h.store.stat('t/0/00000000000000000000.log'))!.size_bytes).toBe(data.length);
    expect(await h.store.stat('t/0/missing.log')).toBeNull();
    expect(await h.store.stat('t/0')).toBeNull(); // a directory is not a file
    expect(await h.store.list('t/0')).toEqual([
      { name: '00000000000000000000.log', size_bytes: data.length, type: 'file' },
      { name: '00000000000000001000.log', size_bytes: data.length, type: 'file' },
    ]);
    expect(await h.store.list('')).toEqual([{ name: 't', size_bytes: 0, type: 'dir' }]);
    expect(await h.store.list('nothing/here')).toEqual([]);
    expect((await h.store.read('t/0/00000000000000000000.log', 12_345, 1000)).equals(data.subarray(12_345, 13_345))).toBe(true);
    expect((await h.store.read('t/0/00000000000000001000.log', 0, data.length)).equals(data)).toBe(true);
    // Fewer bytes only at the end of the file; none past it.
    expect((await h.store.read('t/0/00000000000000000000.log', data.length - 10, 100)).equals(data.subarray(data.length - 10))).toBe(true);
    expect((await h.store.read('t/0/00000000000000000000.log', data.length, 100)).length).toBe(0);
  });

  test('put never replaces an existing file', async () => {
    await h.store.put('a/x', Buffer.from('first'));
    await expect(h.store.put('a/x', Buffer.from('second'))).rejects.toMatchObject({ code: 'ARCHIVE_EXISTS' });
    expect((await h.store.read('a/x', 0, 100)).toString()).toBe('first');
  });

  test('delete removes files and directories and says whether anything was there', async () => {
    await h.store.put('d/1', Buffer.from('1'));
    await h.store.put('d/2', Buffer.from('2'));
    expect(await h.store.delete('d/1')).toBe(true);
    expect(await h.store.delete('d/1')).toBe(false);
    expect(await h.store.list('d')).toEqual([{ name: '2', size_bytes: 1, type: 'file' }]);
    expect(await h.store.delete('d')).toBe(true);
    expect(await h.store.list('d')).toEqual([]);
  });

  test('paths that leave the archive are refused', async () => {
    await expect(h.store.put('../escape', Buffer.from('x'))).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    await expect(h.store.put('a/../../escape', Buffer.from('x'))).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
  });

  test('concurrent puts of different files all land, none partially visible', async () => {
    const files = Array.from({ length: 12 }, (_, i) => [`c/${String(i).padStart(3, '0')}`, Buffer.alloc(20_000 + i, i)] as const);
    await Promise.all(files.map(([p, d]) => h.store.put(p, d)));
    const listed = await h.store.list('c');
    expect(listed.map((f) => [f.name, f.size_bytes])).toEqual(files.map(([p, d]) => [p.slice(2), d.length]));
  });

  test('reading a missing file fails with ARCHIVE_NOT_FOUND', async () => {
    await expect(h.store.read('nope/x', 0, 10)).rejects.toMatchObject({ code: 'ARCHIVE_NOT_FOUND' });
  });
});
