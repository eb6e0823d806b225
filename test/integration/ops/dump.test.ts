import { gzipSync } from 'node:zlib';
import { join } from 'node:path';
import { compressFrameSync as lz4Frame } from 'lz4-napi';
import { compressSync as snappyCompressSync } from 'snappy';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { BATCH_HEADER_BYTES, CRC_START, Compression, F_ATTRIBUTES, F_BATCH_LENGTH, F_CRC, LOG_OVERHEAD_BYTES, LogStore, crc32c, encodeBatch, type RecordInput } from '../../../engine/index.js';
import { assertFreshBuild, runCli } from '../../support/server-process.js';
import { tempDir } from '../../support/tmp.js';
import { confChangeBatch } from '../../../replication/raft/node/conf-batch.js';

/*
 * `relaylog dump` on a data dir written by the engine: plain batches and batches compressed with
 * each of Kafka's codecs (gzip, snappy, lz4, zstd), records with headers, null and binary keys and
 * values; JSON lines and text; --from-offset inside a compressed batch and --max.
 */

beforeAll(() => assertFreshBuild());

const T0 = Date.parse('2026-11-24T10:00:00Z');

/** `plain` with its records section compressed by `compress` and the codec bits set (CRC recomputed). */
function compressed(plain: Buffer, codec: number, compress: (b: Buffer) => Buffer): Buffer {
  const b = Buffer.concat([plain.subarray(0, BATCH_HEADER_BYTES), compress(plain.subarray(BATCH_HEADER_BYTES))]);
  b.writeInt16BE(codec, F_ATTRIBUTES);
  b.writeInt32BE(b.length - LOG_OVERHEAD_BYTES, F_BATCH_LENGTH);
  b.writeUInt32BE(crc32c(b.subarray(CRC_START)), F_CRC);
  return b;
}

/** A Zstandard frame holding `data` in raw (stored) blocks: valid zstd, and nothing here needs an encoder. */
function zstdRaw(data: Buffer): Buffer {
  const header = Buffer.alloc(9);
  header.writeUInt32LE(0xfd2fb528, 0); // magic
  header[4] = 0xa0; // 4-byte content size, single segment, no checksum, no dictionary
  header.writeUInt32LE(data.length, 5);
  const parts: Buffer[] = [header];
  for (let pos = 0; pos < data.length; ) {
    const n = Math.min(128 * 1024, data.length - pos);
    const block = Buffer.alloc(3);
    block.writeUIntLE((n << 3) | (pos + n >= data.length ? 1 : 0), 0, 3); // raw block, last flag
    parts.push(block, data.subarray(pos, pos + n));
    pos += n;
  }
  return Buffer.concat(parts);
}

const CODECS: Array<[string, number, (b: Buffer) => Buffer]> = [
  ['gzip', Compression.gzip, (b) => gzipSync(b)],
  ['snappy', Compression.snappy, (b) => snappyCompressSync(b) as Buffer],
  ['lz4', Compression.lz4, (b) => lz4Frame(b)],
  ['zstd', Compression.zstd, zstdRaw],
];

interface Dumped {
  offset: number;
  timestamp: string;
  timestamp_ms: number;
  key: { size: number; utf8?: string; hex?: string; truncated: boolean } | null;
  value: { size: number; utf8?: string; hex?: string; truncated: boolean } | null;
  headers: number;
  batch: { base_offset: number; codec: string };
}

describe('relaylog dump', () => {
  const tmp = tempDir('relaylog-ops-dump-');
  const data = join(tmp.dir, 'node');
  afterAll(() => tmp.cleanup());

  const binary = Buffer.from(Array.from({ length: 100 }, (_, i) => (i * 37) & 0xff));
  const first: RecordInput[] = [
    { key: 'plain-0', value: 'hello', timestamp_ms: T0, headers: [{ key: 'h1', value: Buffer.from('x') }, { key: 'h2', value: null }] },
    { key: null, value: null, timestamp_ms: T0 + 1 },
    { key: Buffer.from([0, 1, 2, 255]), value: binary, timestamp_ms: T0 + 2 },
    { key: 'utf', value: 'héllo wörld ✓', timestamp_ms: T0 + 3 },
    { key: 'long', value: 'é'.repeat(100), timestamp_ms: T0 + 4 },
  ];

  beforeAll(async () => {
    const store = await LogStore.open({ dir: data, retention_check_interval_ms: 0, compaction_interval_ms: 0 });
    try {
      await store.createTopic('mixed', { partitions: 2, segment_bytes: 16 * 1024 });
      const p = store.partition('mixed', 1);
      await p.append(encodeBatch(first));
      for (const [i, [name, codec, compress]] of CODECS.entries()) {
        const recs = Array.from({ length: 3 }, (_, j) => ({ key: `${name}-${j}`, value: `${name} value ${j}`, timestamp_ms: T0 + 100 * (i + 1) + j, headers: [{ key: 'codec', value: Buffer.from(name) }] }));
        await p.append(compressed(encodeBatch(recs), codec, compress));
      }
    } finally {
      await store.close();
    }
  });

  test('every codec decodes; keys and values are previewed as text or hex; JSON lines parse', async () => {
    const r = await runCli(['dump', '--data', data, '--topic', 'mixed', '--partition', '1', '--json']);
    expect(r).toMatchObject({ code: 0, stderr: '' });
    const out = r.stdout.trim().split('\n').map((l) => JSON.parse(l) as Dumped);
    expect(out.map((d) => d.offset)).toEqual(Array.from({ length: 5 + 3 * CODECS.length }, (_, i) => i));
    expect(out.slice(0, 5)).toEqual([
      { offset: 0, timestamp: '2026-11-24T10:00:00.000Z', timestamp_ms: T0, key: { size: 7, utf8: 'plain-0', truncated: false }, value: { size: 5, utf8: 'hello', truncated: false }, headers: 2, batch: { base_offset: 0, codec: 'none' } },
      { offset: 1, timestamp: '2026-11-24T10:00:00.001Z', timestamp_ms: T0 + 1, key: null, value: null, headers: 0, batch: { base_offset: 0, codec: 'none' } },
      { offset: 2, timestamp: '2026-11-24T10:00:00.002Z', timestamp_ms: T0 + 2, key: { size: 4, hex: '000102ff', truncated: false }, value: { size: 100, hex: binary.subarray(0, 64).toString('hex'), truncated: true }, headers: 0, batch: { base_offset: 0, codec: 'none' } },
      { offset: 3, timestamp: '2026-11-24T10:00:00.003Z', timestamp_ms: T0 + 3, key: { size: 3, utf8: 'utf', truncated: false }, value: { size: Buffer.byteLength('héllo wörld ✓'), utf8: 'héllo wörld ✓', truncated: false }, headers: 0, batch: { base_offset: 0, codec: 'none' } },
      // 64 bytes of two-byte characters: 32 of them, none cut in half.
      { offset: 4, timestamp: '2026-11-24T10:00:00.004Z', timestamp_ms: T0 + 4, key: { size: 4, utf8: 'long', truncated: false }, value: { size: 200, utf8: 'é'.repeat(32), truncated: true }, headers: 0, batch: { base_offset: 0, codec: 'none' } },
    ]);
    for (const [i, [name]] of CODECS.entries()) {
      const recs = out.slice(5 + 3 * i, 8 + 3 * i);
      expect(recs).toEqual([0, 1, 2].map((j) => ({
        offset: 5 + 3 * i + j,
        timestamp: new Date(T0 + 100 * (i + 1) + j).toISOString(),
        timestamp_ms: T0 + 100 * (i + 1) + j,
        key: { size: `${name}-${j}`.length, utf8: `${name}-${j}`, truncated: false },
        value: { size: `${name} value ${j}`.length, utf8: `${name} value ${j}`, truncated: false },
        headers: 1,
        batch: { base_offset: 5 + 3 * i, codec: name },
      })));
    }
  });

  test('text lines; --from-offset inside a compressed batch and --max; bad partition and offsets are refused in one line', async () => {
    const text = await runCli(['dump', '--data', data, '--topic', 'mixed', '--partition', '1', '--max', '3']);
    expect(text).toMatchObject({ code: 0, stderr: '' });
    expect(text.stdout).toBe(
      [
        'offset=0 timestamp=2026-11-24T10:00:00.000Z key=[7]"plain-0" value=[5]"hello" headers=2',
        'offset=1 timestamp=2026-11-24T10:00:00.001Z key=null value=null headers=0',
        `offset=2 timestamp=2026-11-24T10:00:00.002Z key=[4]hex:000102ff value=[100]hex:${binary.subarray(0, 64).toString('hex')}… headers=0`,
        '',
      ].join('\n'),
    );
    // gzip batch holds offsets 5..7, snappy 8..10: start inside the gzip batch, run into snappy.
    const mid = await runCli(['dump', '--data', data, '--topic', 'mixed', '--partition', '1', '--from-offset', '6', '--max', '3', '--json']);
    expect(mid.stdout.trim().split('\n').map((l) => JSON.parse(l) as Dumped).map((d) => [d.offset, d.batch.codec])).toEqual([[6, 'gzip'], [7, 'gzip'], [8, 'snappy']]);
    // An empty partition dumps nothing; the end offset itself is a valid (empty) start.
    expect(await runCli(['dump', '--data', data, '--topic', 'mixed', '--partition', '0'])).toMatchObject({ code: 0, stdout: '', stderr: '' });
    expect(await runCli(['dump', '--data', data, '--topic', 'mixed', '--partition', '1', '--from-offset', '17'])).toMatchObject({ code: 0, stdout: '' });
    expect(await runCli(['dump', '--data', data, '--topic', 'mixed', '--partition', '2'])).toMatchObject({ code: 1, stderr: 'relaylog: unknown partition 2 of topic "mixed" (it has 2 partition(s): 0..1)\n' });
    expect((await runCli(['dump', '--data', data, '--topic', 'mixed', '--partition', '1', '--from-offset', '18'])).stderr).toMatch(/^relaylog: offset 18 is out of range for mixed\/1: valid offsets are 0\.\.17 /);
    expect(await runCli(['dump', '--data', data, '--topic', 'nope'])).toMatchObject({ code: 1, stderr: 'relaylog: unknown topic "nope"\n' });
    expect((await runCli(['dump', '--data', data])).code).toBe(2); // --topic is required
    expect(await runCli(['dump', '--data', join(tmp.dir, 'missing'), '--topic', 'mixed'])).toMatchObject({ code: 1, stderr: `relaylog: ${join(tmp.dir, 'missing')} is not a relaylog data dir (it has no topics/ directory)\n` });
  });
});

describe('relaylog dump marks control records', () => {
  const tmp = tempDir('relaylog-ops-dump-ctl-');
  afterAll(() => tmp.cleanup());

  test('a Raft membership change (a control batch) is dumped with `control`, data records without', async () => {
    const data = join(tmp.dir, 'node');
    const store = await LogStore.open({ dir: data, retention_check_interval_ms: 0, compaction_interval_ms: 0 });
    try {
      await store.createTopic('members');
      const p = store.partition('members', 0);
      await p.append(encodeBatch([{ key: 'k', value: 'before', timestamp_ms: T0 }]));
      await p.appendReplicated(confChangeBatch(1, 0, Buffer.from('{"type":"remove_node","node_id":3,"voters":[1,2],"learners":[]}')));
      await p.append(encodeBatch([{ key: 'k', value: 'after', timestamp_ms: T0 }]));
    } finally {
      await store.close();
    }
    const text = await runCli(['dump', '--data', data, '--topic', 'members']);
    const lines = text.stdout.trim().split('\n');
    expect(lines).toHaveLength(3);
    expect(lines[0]).toMatch(/^offset=0 .* value=\[6\]"before" headers=0$/);
    expect(lines[1]).toMatch(/^offset=1 .*key=\[4\]hex:00005243 value=\[\d+\]"\{\\"type\\":\\"remove_node\\".* headers=0 control$/);
    expect(lines[2]).toMatch(/^offset=2 .* value=\[5\]"after" headers=0$/);
    const json = (await runCli(['dump', '--data', data, '--topic', 'members', '--json'])).stdout.trim().split('\n').map((l) => JSON.parse(l) as { batch: { control?: boolean } });
    expect(json.map((r) => r.batch.control ?? false)).toEqual([false, true, false]);
  });
});
