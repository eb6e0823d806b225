import { invalidArgument } from '../../engine/base/errors.js';

/** Splits HOST:PORT (IPv6 as [::1]:PORT); throws INVALID_ARGUMENT when it is not one. */
export function parseListen(listen: string): { host: string; port: number } {
  const m = /^(\[[0-9a-fA-F:.]+\]|[^:[\]]+):(\d{1,5})$/.exec(listen);
  const port = m ? Number(m[2]) : NaN;
  if (!m || port > 65535) throw invalidArgument(`listen address must be HOST:PORT (port 0..65535; IPv6 as [::1]:PORT), got ${JSON.stringify(listen)}`);
  return { host: m[1]!, port };
}
