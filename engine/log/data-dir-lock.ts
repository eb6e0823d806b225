import { closeSync, ftruncateSync, openSync, readFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import fsExt from 'fs-ext';
import { dataDirLocked, storageError } from '../base/errors.js';

/**
 * Exclusive flock(2) on `<dir>/.lock`, held for the life of the process's store. flock locks
 * belong to the open file description, so a second open in the same process conflicts too,
 * and the kernel drops the lock when the process dies (kill -9 included): no stale lock files.
 */
export class DataDirLock {
  private constructor(private fd: number | null, readonly path: string) {}

  static acquire(dir: string): DataDirLock {
    const path = join(dir, '.lock');
    const fd = openSync(path, 'a+');
    try {
      fsExt.flockSync(fd, 'exnb');
    } catch (err) {
      closeSync(fd);
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'EAGAIN' || code === 'EWOULDBLOCK') throw dataDirLocked(dir, readHolderPid(path));
      throw storageError(`locking ${path}`, err);
    }
    // Record the holder so a refused process can name it.
    ftruncateSync(fd, 0);
    writeSync(fd, `${process.pid}\n`, 0);
    return new DataDirLock(fd, path);
  }

  release(): void {
    if (this.fd === null) return;
    const fd = this.fd;
    this.fd = null;
    try {
      ftruncateSync(fd, 0);
      fsExt.flockSync(fd, 'un');
    } finally {
      closeSync(fd);
    }
  }
}

function readHolderPid(path: string): number | null {
  try {
    const pid = Number.parseInt(readFileSync(path, 'utf8').trim(), 10);
    return Number.isSafeInteger(pid) && pid > 0 ? pid : null;
  } catch {
    return null;
  }
}
