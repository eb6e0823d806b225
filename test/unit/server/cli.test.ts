import { Readable } from 'node:stream';
import { describe, expect, test } from 'vitest';
import { parseConfigPairs, parseTime, UsageError } from '../../../server/cli/args.js';
import { formatRecord, startOf } from '../../../server/cli/consume.js';
import { describeText, program } from '../../../server/cli/main.js';
import { lines, splitKey } from '../../../server/cli/produce.js';

/** Parses argv with the real program, capturing what the action would get instead of running it. */
function parse(argv: string[]): { command: string; args: unknown[]; opts: Record<string, unknown> } | { error: string } {
  const cli = program();
  let seen: { command: string; args: unknown[]; opts: Record<string, unknown> } | null = null;
  let err = '';
  const capture = (c: typeof cli) => {
    c.configureOutput({ writeOut: () => undefined, writeErr: (s) => (err += s) });
    for (const sub of c.commands) {
      sub.action((...a: unknown[]) => {
        const cmd = a[a.length - 1] as typeof cli;
        seen = { command: cmd.name(), args: a.slice(0, -2), opts: cmd.opts() };
      });
      capture(sub);
    }
  };
  capture(cli);
  try {
    cli.parse(['node', 'relaylog', ...argv]);
  } catch {
    return { error: err.trim() };
  }
  return seen ?? { error: 'no action' };
}

describe('relaylog argument parsing', () => {
  test('serve: defaults to ./data and 127.0.0.1:7450; port 0 allowed; bad addresses refused', () => {
    expect(parse(['serve'])).toMatchObject({ command: 'serve', opts: { data: './data', listen: '127.0.0.1:7450', logLevel: 'info' } });
    expect(parse(['serve', '--data', '/d', '--listen', '127.0.0.1:0'])).toMatchObject({ opts: { data: '/d', listen: '127.0.0.1:0' } });
    expect(parse(['serve', '--listen', '[::1]:9000'])).toMatchObject({ opts: { listen: '[::1]:9000' } });
    expect(parse(['serve', '--listen', 'nohost'])).toMatchObject({ error: expect.stringMatching(/HOST:PORT/) });
    expect(parse(['serve', '--listen', 'h:70000'])).toMatchObject({ error: expect.stringMatching(/HOST:PORT/) });
  });

  test('topic create / list / describe; --config repeatable; --server on every client command', () => {
    expect(parse(['topic', 'create', 'x', '--partitions', '4', '--config', 'retention.ms=5', '--config', 'segment.bytes=100000', '--server', 'h:1'])).toMatchObject({
      command: 'create',
      args: ['x'],
      opts: { partitions: 4, config: ['retention.ms=5', 'segment.bytes=100000'], server: 'h:1' },
    });
    expect(parse(['topic', 'list'])).toMatchObject({ command: 'list', opts: { server: '127.0.0.1:7450' } });
    expect(parse(['topic', 'describe', 'x', '--json'])).toMatchObject({ command: 'describe', args: ['x'], opts: { json: true } });
    expect(parse(['topic', 'create', 'x', '--partitions', '0'])).toMatchObject({ error: expect.stringMatching(/at least 1/) });
  });

  test('produce and consume options', () => {
    expect(parse(['produce', 't', '--partition', '2', '--key-separator', ':', '--file', 'f.txt'])).toMatchObject({
      command: 'produce',
      args: ['t'],
      opts: { partition: 2, keySeparator: ':', file: 'f.txt', acks: 'all' },
    });
    expect(parse(['consume', 't', '--from-time', '2026-11-24T00:00:00Z', '--max', '10', '--follow', '--format', 'json'])).toMatchObject({
      opts: { fromTime: Date.parse('2026-11-24T00:00:00Z'), max: 10, follow: true, format: 'json' },
    });
    expect(parse(['consume', 't', '--from', 'middle'])).toMatchObject({ error: expect.stringMatching(/earliest or latest/) });
    expect(parse(['consume', 't', '--format', 'xml'])).toMatchObject({ error: expect.stringMatching(/value or json/) });
    expect(parse(['consume', 't', '--partition', '-1'])).toMatchObject({ error: expect.stringMatching(/non-negative/) });
    expect(parse(['consume', 't', '--bogus'])).toMatchObject({ error: expect.stringMatching(/unknown option/) });
  });

  test('errors are one line, prefixed relaylog:', () => {
    const r = parse(['consume']);
    expect(r).toMatchObject({ error: expect.stringMatching(/^relaylog: missing required argument 'topic'$/) });
  });
});

describe('option values', () => {
  test('times: ISO-8601 or epoch ms', () => {
    expect(parseTime('1700000000000')).toBe(1_700_000_000_000);
    expect(parseTime('2026-11-24T10:00:00Z')).toBe(Date.parse('2026-11-24T10:00:00Z'));
    expect(parseTime('2026-11-24')).toBe(Date.parse('2026-11-24'));
    expect(() => parseTime('yesterday')).toThrow(/ISO-8601/);
    expect(() => parseTime('12:00')).toThrow();
  });

  test('config pairs keep "=" in values and refuse pairs without a key', () => {
    expect(parseConfigPairs(['a=1', 'b=x=y'])).toEqual({ a: '1', b: 'x=y' });
    expect(() => parseConfigPairs(['=1'])).toThrow(UsageError);
    expect(() => parseConfigPairs(['novalue'])).toThrow(/key=value/);
  });

  test('consume takes at most one start, earliest by default', () => {
    expect(startOf({ partition: 0, format: 'value' })).toEqual({ position: 'earliest' });
    expect(startOf({ partition: 0, format: 'value', fromOffset: 5 })).toEqual({ offset: 5 });
    expect(startOf({ partition: 0, format: 'value', group: 'g' })).toEqual({ group: 'g' });
    expect(() => startOf({ partition: 0, format: 'value', fromOffset: 5, from: 'latest' })).toThrow(/one of/);
  });

  test('record formats', () => {
    const r = { offset: 7, timestamp_ms: 99, key: Buffer.from('k'), value: Buffer.from('v"1'), headers: [] };
    expect(formatRecord(r, 'value')).toBe('v"1');
    expect(JSON.parse(formatRecord(r, 'json'))).toEqual({ offset: 7, timestamp: 99, key: 'k', value: 'v"1' });
    expect(JSON.parse(formatRecord({ ...r, key: null, value: null }, 'json'))).toMatchObject({ key: null, value: null });
  });

  test('describe as text: one row per partition', () => {
    const text = describeText({
      name: 't',
      created_ms: 0,
      config: { 'retention.ms': '5' },
      partitions: [{ partition: 0, log_start_offset: 0, high_watermark: 10, log_end_offset: 10, memory_bytes: 1, ssd_bytes: 2, archive_bytes: 0, leader: 'h:1', segment_count: 1, archived_segment_count: 0, upstream: '', relay_state: '', relay_detail: '', upstream_high_watermark: 0, lag_offsets: 0, lag_ms: 0, relay_bytes_in: 0 }],
    });
    expect(text.split('\n')).toHaveLength(4);
    expect(text).toMatch(/^0 +0 +10 +10 +2 +1 +0 +h:1$/m);
  });
});

describe('produce input', () => {
  const collect = async (chunks: string[]) => {
    const out: string[] = [];
    for await (const ls of lines(Readable.from(chunks.map((c) => Buffer.from(c))))) out.push(...ls.map((l) => l.toString()));
    return out;
  };

  test('lines split across chunks are joined; CRLF and a missing final newline are handled', async () => {
    expect(await collect(['a\nb', 'c\r\n', '\nd'])).toEqual(['a', 'bc', '', 'd']);
    expect(await collect(['x\n'])).toEqual(['x']);
    expect(await collect([''])).toEqual([]);
    expect(await collect(['lo', 'ng', 'line'])).toEqual(['longline']);
  });

  test('key separator: key before the first separator; no separator means no key', () => {
    const s = splitKey(Buffer.from('user-1::{"a":1}::x'), Buffer.from('::'));
    expect([s.key!.toString(), s.value.toString()]).toEqual(['user-1', '{"a":1}::x']);
    expect(splitKey(Buffer.from('plain'), Buffer.from(':')).key).toBeNull();
  });
});
