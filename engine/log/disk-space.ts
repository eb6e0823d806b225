import { statfsSync } from 'node:fs';

/** Bytes available to an unprivileged writer on the file system holding `dir` (statvfs f_bavail * f_bsize). */
export function statfsFreeBytes(dir: string): number {
  const s = statfsSync(dir);
  return s.bavail * s.bsize;
}
