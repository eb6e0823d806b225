import { statfsSync } from 'node:fs';
import type { Clock } from '../base/clock.js';
import { diskFull } from '../base/errors.js';
import { limits } from '../base/limits.js';

/** Bytes available to an unprivileged writer on the file system holding `dir` (statvfs f_bavail * f_bsize). */
export function statfsFreeBytes(dir: string): number {
  const s = statfsSync(dir);
  return s.bavail * s.bsize;
}

/**
 * Keeps appends above the free-space floor. statfs is a syscall, so it runs at most every
 * `disk_check_interval_bytes` written or `disk_check_interval_ms`, and before every roll; once below
 * the floor it runs on every append, so appends resume as soon as space is freed.
 */
export class DiskGuard {
  private bytes_since_check = Infinity;
  private last_check_ms = 0;

  constructor(
    private readonly dir: string,
    private readonly floor_bytes: number,
    private readonly free_bytes: () => number,
    private readonly clock: Clock,
  ) {}

  /** Throws DISK_FULL if writing `incoming_bytes` would go below the floor. */
  check(incoming_bytes: number, rolling: boolean): void {
    const now = this.clock.now_ms();
    const due =
      rolling ||
      this.bytes_since_check + incoming_bytes >= limits.disk_check_interval_bytes ||
      now - this.last_check_ms >= limits.disk_check_interval_ms;
    if (!due) return;
    const free = this.free_bytes();
    if (free - incoming_bytes < this.floor_bytes) {
      this.bytes_since_check = Infinity;
      throw diskFull(this.dir, free, this.floor_bytes);
    }
    this.bytes_since_check = 0;
    this.last_check_ms = now;
  }

  wrote(bytes: number): void {
    this.bytes_since_check += bytes;
  }

  /** The error for an ENOSPC from the file system itself. */
  enospc(): Error {
    let free = -1;
    try {
      free = this.free_bytes();
    } catch {
      // the probe failing too changes nothing about the answer
    }
    return diskFull(this.dir, free, this.floor_bytes);
  }
}
