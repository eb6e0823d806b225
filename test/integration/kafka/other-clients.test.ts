import { spawn, spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, expect, test } from 'vitest';
import { COMPRESSION_MASK, encodeBatch, forEachBatch, readBatchHeader } from '../../../engine/index.js';
import { readAll } from '../../support/batches.js';
import { KafkaHarness } from './harness.js';
import { confChangeBatch } from '../../../replication/raft/node/conf-batch.js';

/*
 * The same scenarios with the other clients the issue names, each skipped (with the reason) when
 * its Debian package is missing:
 *   kcat (librdkafka 2.0)                          apt-get install -y kcat
 *   kafka-python 2.0       via /usr/bin/python3    apt-get install -y python3-kafka
 *   confluent-kafka-python via /usr/bin/python3    apt-get install -y python3-confluent-kafka
 * Produce N records with acks=1 and acks=all; consume from an explicit offset; from a timestamp;
 * a consumer group commits, the listener restarts, the group resumes; and records produced by each
 * client are read identically by every other client and by the engine (PartitionLog.read, what
 * the gRPC consumer serves).
 */

const PYTHON = '/usr/bin/python3';
const CLIENTS_DIR = fileURLToPath(new URL('./clients/', import.meta.url));
const RUN_MAX_MS = 20_000;
const CODEC_NAMES = ['none', 'gzip', 'snappy', 'lz4', 'zstd'];
const T0 = 1_700_000_000_000;

interface Rec {
  offset: number;
  key: string | null;
  value: string | null;
  timestamp: number;
}

interface ClientAdapter {
  name: string;
  /** null when usable, else why the tests are skipped. */
  missing: string | null;
  compressions: string[];
  produce(broker: string, a: { topic: string; partition: number; acks: 1 | -1; compression?: string; records: Array<{ key: string; value: string }> }): Promise<void>;
  consume(broker: string, a: { topic: string; partition: number; offset: number; count: number }): Promise<Rec[]>;
  offsetForTime(broker: string, a: { topic: string; partition: number; timestamp: number }): Promise<number>;
  group(broker: string, a: { topic: string; group: string; count: number }): Promise<Rec[]>;
}

/** Runs a process without blocking the event loop (the listener lives in this process). */
function run(cmd: string, args: string[], input = ''): Promise<string> {
  return new Promise((resolve, reject) => {
    const p = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    p.stdout.on('data', (d: Buffer) => (out += d.toString()));
    p.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const timer = setTimeout(() => p.kill('SIGKILL'), RUN_MAX_MS);
    p.on('error', reject);
    p.on('close', (code) => {
      clearTimeout(timer);
      if (code === 0) resolve(out);
      else reject(new Error(`${cmd} ${args.join(' ')} exited with ${code}:\n${err.slice(-2000)}`));
    });
    p.stdin.end(input);
  });
}

function probe(cmd: string, args: string[], what: string, install: string): string | null {
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: 10_000 });
  return r.status === 0 ? null : `${what} is not installed (apt-get install -y ${install})`;
}

interface KcatJson {
  offset: number;
  ts: number;
  key: string | null;
  payload: string | null;
}
const kcatRecs = (out: string): Rec[] =>
  out
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as KcatJson)
    .map((m) => ({ offset: m.offset, key: m.key, value: m.payload, timestamp: m.ts }));

const kcat: ClientAdapter = {
  name: 'kcat',
  missing: probe('kcat', ['-V'], 'kcat', 'kcat'),
  compressions: ['gzip', 'snappy', 'lz4', 'zstd'],
  async produce(b, a) {
    const input = a.records.map((r) => `${r.key}\t${r.value}\n`).join('');
    await run('kcat', ['-b', b, '-P', '-t', a.topic, '-p', String(a.partition), '-K', '\t', '-X', `acks=${a.acks === -1 ? 'all' : '1'}`, ...(a.compression ? ['-z', a.compression] : [])], input);
  },
  async consume(b, a) {
    return kcatRecs(await run('kcat', ['-b', b, '-C', '-t', a.topic, '-p', String(a.partition), '-o', String(a.offset), '-c', String(a.count), '-e', '-J']));
  },
  async offsetForTime(b, a) {
    const [first] = kcatRecs(await run('kcat', ['-b', b, '-C', '-t', a.topic, '-p', String(a.partition), '-o', `s@${a.timestamp}`, '-c', '1', '-e', '-J']));
    return first?.offset ?? -1;
  },
  async group(b, a) {
    return kcatRecs(await run('kcat', ['-b', b, '-G', a.group, '-X', 'auto.offset.reset=earliest', '-X', 'fetch.wait.max.ms=100', '-e', '-J', a.topic]));
  },
};

const rec = (r: Rec): Rec => ({ offset: r.offset, key: r.key, value: r.value, timestamp: r.timestamp });

function pythonAdapter(name: string, module: string, script: string, install: string, compressions: string[]): ClientAdapter {
  const call = async (b: string, command: string, args: unknown) => JSON.parse(await run(PYTHON, [`${CLIENTS_DIR}${script}`, b, command, JSON.stringify(args)])) as unknown;
  return {
    name,
    missing: probe(PYTHON, ['-c', `import ${module}`], `${name} (${PYTHON})`, install),
    compressions,
    produce: async (b, a) => void (await call(b, 'produce', { ...a, acks: a.acks === -1 ? 'all' : 1 })),
    consume: async (b, a) => ((await call(b, 'consume', a)) as Rec[]).map(rec),
    offsetForTime: async (b, a) => ((await call(b, 'offset_for_time', a)) as { offset: number } | null)?.offset ?? -1,
    group: async (b, a) => ((await call(b, 'group', a)) as Rec[]).map(rec),
  };
}

// kafka-python compresses gzip with the standard library and the others with extra modules
// (its snappy uses the xerial framing, which librdkafka does not).
const kafkaPython = pythonAdapter('kafka-python', 'kafka, snappy, lz4.frame, zstandard', 'kafka_python_client.py', 'python3-kafka python3-snappy python3-lz4 python3-zstandard', ['gzip', 'snappy', 'lz4', 'zstd']);
const confluent = pythonAdapter('confluent-kafka', 'confluent_kafka', 'confluent_client.py', 'python3-confluent-kafka', ['gzip', 'snappy', 'lz4', 'zstd']);
const CLIENTS = [kcat, kafkaPython, confluent];

// CI (.ci/run) installs every client and sets RELAYLOG_REQUIRE_KAFKA_CLIENTS: there a missing one fails.
const required = process.env.RELAYLOG_REQUIRE_KAFKA_CLIENTS === '1';
for (const c of CLIENTS) if (c.missing) console.warn(`${required ? 'REQUIRED but missing' : 'skipping'} ${c.name} tests: ${c.missing}`);
test.runIf(required)('every Kafka client the issue names is installed (RELAYLOG_REQUIRE_KAFKA_CLIENTS=1)', () => {
  expect(CLIENTS.filter((c) => c.missing !== null).map((c) => `${c.name}: ${c.missing}`)).toEqual([]);
});

const strip = (r: { offset: number; key: Buffer | null; value: Buffer | null; timestamp_ms: number }): Rec => ({ offset: r.offset, key: r.key?.toString() ?? null, value: r.value?.toString() ?? null, timestamp: r.timestamp_ms });

/** 30 records appended through the engine, one second apart. */
async function seed(h: KafkaHarness, topic: string): Promise<Rec[]> {
  await h.store.createTopic(topic);
  const records = Array.from({ length: 30 }, (_, i) => ({ key: `k${i}`, value: `seeded-${i}`, timestamp_ms: T0 + i * 1000 }));
  await h.store.partition(topic, 0).append(encodeBatch(records.slice(0, 12), { timestamp_ms: T0 }));
  await h.store.partition(topic, 0).append(encodeBatch(records.slice(12), { timestamp_ms: T0 }));
  return records.map((r, i) => ({ offset: i, key: r.key, value: r.value, timestamp: r.timestamp_ms }));
}

for (const client of CLIENTS) {
  describe.skipIf(client.missing !== null)(`${client.name} against the Kafka listener`, () => {
    let h: KafkaHarness;
    beforeEach(async () => {
      h = await new KafkaHarness().start();
    });
    afterEach(async () => {
      await h.stop();
    });

    test('produces N records with acks=1 and acks=all, plain and compressed; stored as sent and read back', async () => {
      await h.store.createTopic('produced');
      const batch = (tag: string) => Array.from({ length: 10 }, (_, i) => ({ key: `${tag}-k${i}`, value: `${tag}-${i}-${'z'.repeat(200)}` }));
      const sent: Array<{ key: string; value: string }> = [];
      const codecs: string[] = [];
      for (const [acks, compression] of [[1, undefined], [-1, undefined], ...client.compressions.map((c) => [-1, c] as const)] as Array<[1 | -1, string | undefined]>) {
        const records = batch(`${acks}-${compression ?? 'none'}`);
        await client.produce(h.broker, { topic: 'produced', partition: 0, acks, records, ...(compression ? { compression } : {}) });
        sent.push(...records);
        codecs.push(compression ?? 'none');
      }
      // Batches are stored as they arrived: one codec per produce, in order.
      const r = await h.store.partition('produced', 0).read(0, 1 << 24);
      const stored: string[] = [];
      forEachBatch(r.records, (pos) => stored.push(CODEC_NAMES[readBatchHeader(r.records, pos).attributes & COMPRESSION_MASK]!));
      r.release();
      const runs = (xs: string[]) => xs.filter((x, i) => i === 0 || xs[i - 1] !== x);
      expect(runs(stored)).toEqual(runs(codecs));
      // The engine decodes every codec the client sent (as compaction, dump and timestamp lookups must).
      const decoded = (await readAll(h.store.partition('produced', 0), 0)).map(strip);
      expect(decoded.map((x) => [x.offset, x.key, x.value])).toEqual(sent.map((x, i) => [i, x.key, x.value]));
      // The client reads back everything it sent, whatever the codec.
      const back = await client.consume(h.broker, { topic: 'produced', partition: 0, offset: 0, count: sent.length });
      expect(back.map((x) => [x.offset, x.key, x.value])).toEqual(sent.map((x, i) => [i, x.key, x.value]));
    });

    test('skips a Raft membership change (a control batch of relaylog\'s type, docs/format.md) in the log', async () => {
      await h.store.createTopic('members');
      const p = h.store.partition('members', 0);
      await p.append(encodeBatch([{ key: 'k0', value: 'before-0', timestamp_ms: T0 }], { timestamp_ms: T0 }));
      await p.appendReplicated(confChangeBatch(1, 0, Buffer.from('{"type":"add_learner","node_id":4,"voters":[1,2,3],"learners":[4]}')));
      await p.append(encodeBatch([{ key: 'k2', value: 'after-2', timestamp_ms: T0 + 2000 }], { timestamp_ms: T0 + 2000 }));
      // In offset order: a control record handed over as a message would come second.
      const got = await client.consume(h.broker, { topic: 'members', partition: 0, offset: 0, count: 2 });
      expect(got.map((r) => [r.offset, r.value])).toEqual([[0, 'before-0'], [2, 'after-2']]);
    });

    test('consumes from an explicit offset', async () => {
      const seeded = await seed(h, 'seeded');
      expect(await client.consume(h.broker, { topic: 'seeded', partition: 0, offset: 7, count: 23 })).toEqual(seeded.slice(7));
    });

    test('consumes from a timestamp', async () => {
      const seeded = await seed(h, 'seeded');
      const offset = await client.offsetForTime(h.broker, { topic: 'seeded', partition: 0, timestamp: T0 + 14_500 });
      expect(offset).toBe(15);
      expect(await client.consume(h.broker, { topic: 'seeded', partition: 0, offset, count: 15 })).toEqual(seeded.slice(15));
    });

    test('a consumer group commits; after a listener and store restart it resumes from the committed offset', async () => {
      const seeded = await seed(h, 'grouped');
      expect(await client.group(h.broker, { topic: 'grouped', group: `${client.name}-group`, count: 30 })).toEqual(seeded);
      expect(h.store.fetchGroupOffset(`${client.name}-group`, 'grouped', 0)).toMatchObject({ offset: 30 });
      await h.restart();
      await h.store.partition('grouped', 0).append(encodeBatch([0, 1, 2].map((i) => ({ key: `late${i}`, value: `late-${i}`, timestamp_ms: T0 + 99_000 + i })), { timestamp_ms: T0 }));
      const resumed = await client.group(h.broker, { topic: 'grouped', group: `${client.name}-group`, count: 3 });
      expect(resumed.map((r) => [r.offset, r.value])).toEqual([[30, 'late-0'], [31, 'late-1'], [32, 'late-2']]);
      expect(h.store.fetchGroupOffset(`${client.name}-group`, 'grouped', 0)).toMatchObject({ offset: 33 });
    });
  });
}

const available = CLIENTS.filter((c) => c.missing === null);

describe.skipIf(available.length === 0)('records produced by each client are read identically by every client and by the engine', () => {
  let h: KafkaHarness;
  beforeEach(async () => {
    h = await new KafkaHarness().start();
  });
  afterEach(async () => {
    await h.stop();
  });

  test(`clients: ${available.map((c) => c.name).join(', ') || 'none installed'} (and kafkajs through the engine's own batches)`, async () => {
    await h.store.createTopic('mixed');
    // One batch the engine wrote, as gRPC producers do.
    await h.store.partition('mixed', 0).append(encodeBatch([{ key: 'grpc', value: 'from-grpc', timestamp_ms: T0 }], { timestamp_ms: T0 }));
    for (const c of available) await c.produce(h.broker, { topic: 'mixed', partition: 0, acks: -1, records: [0, 1, 2].map((i) => ({ key: `${c.name}-${i}`, value: `from-${c.name}-${i}` })) });
    const engine = (await readAll(h.store.partition('mixed', 0))).map(strip);
    expect(engine).toHaveLength(1 + 3 * available.length);
    for (const c of available) expect(await c.consume(h.broker, { topic: 'mixed', partition: 0, offset: 0, count: engine.length }), c.name).toEqual(engine);
  });
});
