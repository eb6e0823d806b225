/** "1GiB", "256MiB", "64MB" (read as MiB: powers of 1024 throughout) or a plain number of bytes. */
export function parseBytesArg(s: string): number {
  const m = /^\s*([\d.]+)\s*(k|m|g)?i?b?\s*$/i.exec(s);
  if (!m) throw new Error(`cannot read ${JSON.stringify(s)} as a size (examples: 1GiB, 256MiB, 1048576)`);
  const mult = { k: 1024, m: 1024 ** 2, g: 1024 ** 3 }[(m[2] ?? '').toLowerCase() as 'k' | 'm' | 'g'] ?? 1;
  return Math.round(Number(m[1]) * mult);
}
