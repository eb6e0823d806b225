import { open } from 'node:fs/promises';

/** The physical yardstick of the storage benches: a plain sequential read of `paths` with one reused 4 MiB buffer. Returns bytes read. */
export async function rawRead(paths: string[], chunk_bytes = 4 * 1024 * 1024): Promise<number> {
  let total = 0;
  const buf = Buffer.allocUnsafe(chunk_bytes);
  for (const p of paths) {
    const fh = await open(p, 'r');
    try {
      for (let pos = 0; ; ) {
        const { bytesRead } = await fh.read(buf, 0, buf.length, pos);
        if (bytesRead === 0) break;
        pos += bytesRead;
        total += bytesRead;
      }
    } finally {
      await fh.close();
    }
  }
  return total;
}
