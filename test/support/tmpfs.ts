import { execFileSync } from 'node:child_process';
import { closeSync, mkdirSync, mkdtempSync, openSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/*
 * Small tmpfs file systems for tests that need a real ENOSPC: `mount -t tmpfs` needs root (or
 * CAP_SYS_ADMIN); `tmpfsUnavailable()` says why it cannot be used here, so a test can skip.
 */

const run = (cmd: string, args: string[]) => execFileSync(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'], timeout: 10_000 });

/** Mounts a tmpfs of `size_bytes` at `dir` (created if missing). */
export function mountTmpfs(dir: string, size_bytes: number): void {
  mkdirSync(dir, { recursive: true });
  run('mount', ['-t', 'tmpfs', '-o', `size=${size_bytes},mode=0755`, 'tmpfs', dir]);
}

/** Unmounts `dir` (lazily if something still holds it open); false if it was not mounted. */
export function unmountTmpfs(dir: string): boolean {
  try {
    run('umount', [dir]);
    return true;
  } catch {
    try {
      run('umount', ['-l', dir]);
      return true;
    } catch {
      return false;
    }
  }
}

/** null when a tmpfs can be mounted here, else why not (checked by mounting one for a moment). */
export function tmpfsUnavailable(): string | null {
  const dir = mkdtempSync(join(tmpdir(), 'relaylog-tmpfs-probe-'));
  try {
    mountTmpfs(dir, 1024 * 1024);
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    const stderr = (err as { stderr?: Buffer }).stderr?.toString().trim();
    return `mount -t tmpfs is not permitted here (needs root or CAP_SYS_ADMIN): ${stderr || (err as Error).message}`;
  }
  unmountTmpfs(dir);
  rmSync(dir, { recursive: true, force: true });
  return null;
}

/**
 * Writes `path` until its file system is full (ENOSPC): whole MiB, then single pages. Returns the
 * bytes written. Bounded by `max_bytes` (a file system that never fills is an error).
 */
export function fillFileSystem(path: string, max_bytes: number): number {
  const fd = openSync(path, 'w');
  let written = 0;
  try {
    for (const chunk of [Buffer.alloc(1024 * 1024, 0xee), Buffer.alloc(4096, 0xee)]) {
      while (written < max_bytes) {
        try {
          const n = writeSync(fd, chunk);
          written += n;
          if (n < chunk.length) break; // what fitted; the next write fails
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code === 'ENOSPC') break;
          throw err;
        }
      }
    }
  } finally {
    closeSync(fd);
  }
  if (written >= max_bytes) throw new Error(`${path}: wrote ${written} bytes without filling the file system`);
  return written;
}
