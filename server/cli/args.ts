import { InvalidArgumentError } from 'commander';
import { parseListen } from '../rpc/listen-address.js';

/*
 * Option parsers for the relaylog CLI: pure, each throwing InvalidArgumentError (commander then
 * prints one line and exits 2).
 */

/** A usage mistake found after parsing (conflicting options): one line on stderr, exit 2. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}

export const nonNegativeInt = (what: string) => (v: string): number => {
  const n = /^\d+$/.test(v.trim()) ? Number(v) : NaN;
  if (!Number.isSafeInteger(n)) throw new InvalidArgumentError(`${what} must be a non-negative integer, got ${JSON.stringify(v)}`);
  return n;
};

export const positiveInt = (what: string) => (v: string): number => {
  const n = nonNegativeInt(what)(v);
  if (n === 0) throw new InvalidArgumentError(`${what} must be at least 1`);
  return n;
};

/** Repeatable option: collects every value. */
export const collect = (v: string, prev: string[]): string[] => [...prev, v];

/** `key=value` pairs (Kafka config names) into a map; the value may contain '='. */
export function parseConfigPairs(pairs: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const p of pairs) {
    const i = p.indexOf('=');
    if (i <= 0) throw new UsageError(`--config takes key=value, got ${JSON.stringify(p)}`);
    out[p.slice(0, i).trim()] = p.slice(i + 1).trim();
  }
  return out;
}

/** ISO-8601 (2026-11-24T10:00:00Z, 2026-11-24) or epoch milliseconds. */
export function parseTime(v: string): number {
  if (/^\d+$/.test(v.trim())) {
    const n = Number(v);
    if (Number.isSafeInteger(n)) return n;
  }
  if (/^\d{4}-\d{2}-\d{2}/.test(v.trim())) {
    const t = Date.parse(v);
    if (!Number.isNaN(t)) return t;
  }
  throw new InvalidArgumentError(`${JSON.stringify(v)} is neither ISO-8601 (2026-11-24T10:00:00Z) nor epoch milliseconds`);
}

/** HOST:PORT, IPv6 as [::1]:PORT. */
export function parseAddress(v: string): string {
  try {
    parseListen(v);
  } catch (err) {
    throw new InvalidArgumentError((err as Error).message);
  }
  return v;
}

export function parseFormat(v: string): 'value' | 'json' {
  if (v !== 'value' && v !== 'json') throw new InvalidArgumentError(`must be value or json, got ${JSON.stringify(v)}`);
  return v;
}

export function parseFrom(v: string): 'earliest' | 'latest' {
  if (v !== 'earliest' && v !== 'latest') throw new InvalidArgumentError(`must be earliest or latest, got ${JSON.stringify(v)}`);
  return v;
}
