import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { RelaylogClient } from '../../../client/index.js';
import { encodeBatch } from '../../../engine/index.js';
import { assertFreshBuild, runCli, startServer, type ServerProcess } from '../../support/server-process.js';
import { tempDir } from '../../support/tmp.js';

/* The `relaylog` command against a real server process: output, exit codes, one-line errors. */

const tmp = tempDir('relaylog-cli-');
let server: ServerProcess;
let s: string[];

beforeAll(async () => {
  assertFreshBuild();
  server = await startServer(join(tmp.dir, 'data'));
  s = ['--server', server.address];
});
afterAll(async () => {
  expect(await server?.stop()).toBe(0);
  tmp.cleanup();
});

test('topic create, list and describe', async () => {
  expect(await runCli(['topic', 'create', 'lines', '--partitions', '2', '--config', 'retention.ms=86400000', ...s])).toMatchObject({
    code: 0,
    stdout: 'created topic lines with 2 partition(s)\n',
  });
  expect((await runCli(['topic', 'list', ...s])).stdout).toBe('lines\t2\n');
  const d = await runCli(['topic', 'describe', 'lines', ...s]);
  expect(d.stdout).toMatch(/retention\.ms=86400000/);
  expect(d.stdout).toMatch(new RegExp(`^1 +0 +0 +0 +0 +0 +0 +${server.address.replace(/\./g, '\\.')}$`, 'm'));
  const j = JSON.parse((await runCli(['topic', 'describe', 'lines', '--json', ...s])).stdout) as { partitions: unknown[] };
  expect(j.partitions).toHaveLength(2);
});

test('produce from a file and from stdin with keys; consume as values and as JSON', async () => {
  const file = join(tmp.dir, 'in.txt');
  writeFileSync(file, Array.from({ length: 20_000 }, (_, i) => `line ${i}`).join('\n'));
  const p = await runCli(['produce', 'lines', '--file', file, ...s]);
  expect(p).toMatchObject({ code: 0, stderr: 'produced 20000 record(s) to lines/0\n' });
  const all = await runCli(['consume', 'lines', ...s]);
  expect(all.code).toBe(0);
  expect(all.stdout).toBe(Array.from({ length: 20_000 }, (_, i) => `line ${i}\n`).join(''));
  expect((await runCli(['consume', 'lines', '--from-offset', '19998', ...s])).stdout).toBe('line 19998\nline 19999\n');
  expect((await runCli(['consume', 'lines', '--from', 'latest', ...s])).stdout).toBe('');
  expect((await runCli(['consume', 'lines', '--max', '2', ...s])).stdout).toBe('line 0\nline 1\n');

  expect((await runCli(['produce', 'lines', '--partition', '1', '--key-separator', ':', ...s], { stdin: 'a:1\nb:2:x\nnokey\n' })).code).toBe(0);
  const json = (await runCli(['consume', 'lines', '--partition', '1', '--format', 'json', ...s])).stdout.trim().split('\n').map((l) => JSON.parse(l) as object);
  expect(json).toMatchObject([
    { offset: 0, key: 'a', value: '1' },
    { offset: 1, key: 'b', value: '2:x' },
    { offset: 2, key: null, value: 'nokey' },
  ]);
});

test('consume --from-time starts at the first record with timestamp >= T (ISO-8601 or epoch ms)', async () => {
  const c = new RelaylogClient(server.address);
  await c.createTopic('timed');
  const at = (iso: string) => Date.parse(iso);
  const records = ['2026-01-01T00:00:00Z', '2026-01-01T00:00:01Z', '2026-01-01T00:00:01Z', '2026-01-01T00:00:02Z'].map((t, i) => ({ value: `r${i}`, timestamp_ms: at(t) }));
  await c.produce('timed', 0, encodeBatch(records));
  c.close();
  expect((await runCli(['consume', 'timed', '--from-time', '2026-01-01T00:00:01Z', ...s])).stdout).toBe('r1\nr2\nr3\n');
  expect((await runCli(['consume', 'timed', '--from-time', String(at('2026-01-01T00:00:01Z') + 1), ...s])).stdout).toBe('r3\n');
  expect((await runCli(['consume', 'timed', '--from-time', '2026-01-01T00:00:03Z', ...s])).stdout).toBe('');
});

test('consume --group resumes where the last run stopped', async () => {
  const first = await runCli(['consume', 'lines', '--group', 'g', '--max', '3', ...s]);
  expect(first.stdout).toBe('line 0\nline 1\nline 2\n');
  const second = await runCli(['consume', 'lines', '--group', 'g', '--max', '2', ...s]);
  expect(second.stdout).toBe('line 3\nline 4\n');
});

test('failures exit 1 and usage mistakes exit 2, each with one line on stderr', async () => {
  const cases: Array<[string[], number, RegExp]> = [
    [['topic', 'create', 'lines', ...s], 1, /^relaylog: topic "lines" already exists$/],
    [['topic', 'create', 'x', '--config', 'nope=1', ...s], 1, /^relaylog: invalid config nope: unknown config key/],
    [['consume', 'missing', ...s], 1, /^relaylog: unknown topic "missing"$/],
    [['consume', 'lines', '--from-offset', '999999', ...s], 1, /^relaylog: offset 999999 is out of range .* valid offsets are 0\.\.20000/],
    [['topic', 'list', '--server', '127.0.0.1:1'], 1, /^relaylog: cannot reach relaylog server at 127\.0\.0\.1:1/],
    [['consume', 'lines', '--from', 'latest', '--group', 'g', ...s], 2, /^relaylog: give one of/],
    [['produce', 'lines', '--key', 'k', '--key-separator', ':', ...s], 2, /^relaylog: give --key or --key-separator/],
    [['consume', 'lines', '--bogus'], 2, /^relaylog: unknown option '--bogus'$/],
    [['consume', 'lines', '--from-time', 'soon'], 2, /^relaylog: .*ISO-8601/],
  ];
  const results = await Promise.all(cases.map(([args]) => runCli(args)));
  for (const [i, [args, code, message]] of cases.entries()) {
    const r = results[i]!;
    expect({ args, code: r.code }).toEqual({ args, code });
    expect(r.stderr.split('\n').filter(Boolean)).toHaveLength(1);
    expect(r.stderr.trim()).toMatch(message);
  }
  const help = await runCli(['consume', '--help']);
  expect(help.code).toBe(0);
  expect(help.stdout).toMatch(/--from-time <time>/);
});
