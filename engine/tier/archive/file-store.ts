import { randomBytes } from 'node:crypto';
import { mkdir, open, readdir, rename, rm, stat, unlink } from 'node:fs/promises';
import { basename, dirname, join, normalize } from 'node:path';
import { EngineError, invalidArgument, storageError } from '../../base/errors.js';
import { crc32c } from '../../format/crc32c.js';
import type { ArchiveStore } from './archive-store.js';

/**
 * ArchiveStore over a mounted directory. Uploads go to `<name>.tmp-<random>` in the same
 * directory, are fsynced, renamed into place (link-free, so an existing file is never replaced:
 * the rename is refused when the target exists) and the directory is fsynced.
 */
export class FileArchiveStore implements ArchiveStore {
  readonly url: string;

  constructor(private readonly base: string) {
    this.url = `file://${base}`;
  }

  private abs(path: string): string {
    const p = normalize(path).replace(/^\/+/, '');
    if (p.startsWith('..')) throw invalidArgument(`archive path ${JSON.stringify(path)} leaves the archive`);
    return join(this.base, p);
  }

  async put(path: string, data: Buffer | AsyncIterable<Buffer>): Promise<{ size_bytes: number; crc32c: number }> {
    const target = this.abs(path);
    await mkdir(dirname(target), { recursive: true });
    if (await exists(target)) throw archiveExists(this.url, path);
    await this.removeStaleTemps(target);
    const tmp = `${target}.tmp-${randomBytes(6).toString('hex')}`;
    const fh = await open(tmp, 'wx');
    let size = 0;
    let crc = 0;
    try {
      for await (const chunk of Buffer.isBuffer(data) ? [data] : data) {
        await fh.write(chunk, 0, chunk.length, size);
        crc = crc32c(chunk, crc);
        size += chunk.length;
      }
      await fh.sync();
    } catch (err) {
      await fh.close().catch(() => undefined);
      await unlink(tmp).catch(() => undefined);
      throw storageError(`writing ${tmp}`, err);
    }
    await fh.close();
    if (await exists(target)) {
      await unlink(tmp);
      throw archiveExists(this.url, path);
    }
    await rename(tmp, target);
    const dir = await open(dirname(target), 'r');
    await dir.sync().finally(() => dir.close());
    return { size_bytes: size, crc32c: crc };
  }

  /** Temp files for this target left by an upload that never finished (a crash, a kill -9). */
  private async removeStaleTemps(target: string): Promise<void> {
    const prefix = `${basename(target)}.tmp-`;
    for (const name of await readdir(dirname(target)).catch(() => [] as string[])) {
      if (name.startsWith(prefix)) await unlink(join(dirname(target), name)).catch(() => undefined);
    }
  }

  async stat(path: string): Promise<{ size_bytes: number; modified_ms: number } | null> {
    try {
      const s = await stat(this.abs(path));
      return s.isFile() ? { size_bytes: s.size, modified_ms: s.mtimeMs } : null;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw storageError(`stat ${path}`, err);
    }
  }

  async list(dir: string): Promise<Array<{ name: string; size_bytes: number; type: 'file' | 'dir' }>> {
    const abs = this.abs(dir);
    const out: Array<{ name: string; size_bytes: number; type: 'file' | 'dir' }> = [];
    let names: string[];
    try {
      names = await readdir(abs);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw storageError(`listing ${dir}`, err);
    }
    for (const name of names.sort()) {
      if (name.includes('.tmp-')) continue; // an upload in progress or abandoned: not visible
      const s = await stat(join(abs, name)).catch(() => null);
      if (s) out.push({ name, size_bytes: s.isFile() ? s.size : 0, type: s.isDirectory() ? 'dir' : 'file' });
    }
    return out;
  }

  async read(path: string, offset: number, length: number): Promise<Buffer> {
    const fh = await open(this.abs(path), 'r').catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') throw new EngineError('ARCHIVE_NOT_FOUND', `archive file ${this.url}/${path} does not exist`, { path });
      throw storageError(`opening ${path}`, err);
    });
    try {
      const buf = Buffer.allocUnsafe(length);
      let done = 0;
      while (done < length) {
        const { bytesRead } = await fh.read(buf, done, length - done, offset + done);
        if (bytesRead === 0) break;
        done += bytesRead;
      }
      return buf.subarray(0, done);
    } finally {
      await fh.close();
    }
  }

  async delete(path: string): Promise<boolean> {
    const abs = this.abs(path);
    if (!(await exists(abs))) return false;
    await rm(abs, { recursive: true, force: true });
    return true;
  }

  async close(): Promise<void> {
    // nothing held open between calls
  }
}

async function exists(p: string): Promise<boolean> {
  return stat(p).then(() => true, () => false);
}

function archiveExists(url: string, path: string): EngineError {
  return new EngineError('ARCHIVE_EXISTS', `archive file ${url}/${path} already exists; relaylog never overwrites archived data`, { path });
}
