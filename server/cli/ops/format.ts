/* Text formatting shared by the offline ops commands (verify, inspect, dump, archive list). */

/** 1536 -> "1.5 KiB"; exact byte counts stay in the JSON output. */
export function formatBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let u = 0;
  while (Math.abs(v) >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return u === 0 ? `${v} B` : `${v.toFixed(1)} ${units[u]}`;
}

/** Epoch milliseconds as ISO-8601 (UTC), or "-" for none (-1 or null) or a value no Date can hold. */
export function isoTime(ms: number | null): string {
  if (ms === null || ms < 0) return '-';
  const d = new Date(ms);
  return Number.isNaN(d.getTime()) ? String(ms) : d.toISOString();
}

/** ISO-8601 or null, for JSON. */
export const isoOrNull = (ms: number | null): string | null => (ms === null || ms < 0 || Number.isNaN(new Date(ms).getTime()) ? null : new Date(ms).toISOString());

/** Rows of cells as left-aligned columns separated by two spaces, first row the header. */
export function table(rows: string[][], indent = ''): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  return rows.map((r) => indent + r.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd()).join('\n');
}

export const PREVIEW_BYTES = 64;

/**
 * The first PREVIEW_BYTES of a key or value: as text when those bytes are UTF-8 without control
 * characters (tab, CR and LF allowed), else as hex.
 */
export interface Preview {
  size: number;
  utf8?: string;
  hex?: string;
  truncated: boolean;
}

const decoder = new TextDecoder('utf-8', { fatal: true });

export function preview(b: Buffer | null): Preview | null {
  if (b === null) return null;
  const head = b.subarray(0, PREVIEW_BYTES);
  const truncated = b.length > head.length;
  // A multi-byte character cut at the preview's end is dropped, not counted against the text.
  for (let cut = 0; cut <= (truncated ? 3 : 0) && cut < head.length; cut++) {
    const text = tryUtf8(head.subarray(0, head.length - cut));
    if (text !== null) return { size: b.length, utf8: text, truncated };
  }
  if (head.length === 0) return { size: 0, utf8: '', truncated: false };
  return { size: b.length, hex: head.toString('hex'), truncated };
}

function tryUtf8(b: Buffer): string | null {
  let s: string;
  try {
    s = decoder.decode(b);
  } catch {
    return null;
  }
  // eslint-disable-next-line no-control-regex
  return /[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f]/.test(s) ? null : s;
}

/** `"text"…` or `hex:0a0b…`, with the full size: `[1024]"abc"…`. */
export function previewText(p: Preview | null): string {
  if (p === null) return 'null';
  const body = p.utf8 !== undefined ? JSON.stringify(p.utf8) : `hex:${p.hex}`;
  return `[${p.size}]${body}${p.truncated ? '…' : ''}`;
}
