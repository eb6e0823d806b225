import { readdirSync, statSync, truncateSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { Consumer, Producer, RelaylogClient } from '../../../client/index.js';
import { encodeBatch, forEachBatch, type DecodedRecord } from '../../../engine/index.js';
import { digestRecords } from '../../support/batches.js';
import { assertFreshBuild, startServer, type ServerProcess } from '../../support/server-process.js';
import { tempDir } from '../../support/tmp.js';

/*
 * Cascading relays as real processes on loopback (issue 7): an origin, a chain origin -> r1 -> r2
 * -> r3 and a fan-out r1 -> r2b. A producer writes continuously while consumers read at several
 * levels; r2, then r1, then the origin are killed with SIGKILL and restarted on the same address
 * mid-stream.
 * At the end every level holds the same bytes at the same offsets and every consumer read every
 * record once, in order.
 */

const N = 6000;
const T0 = Math.floor(Date.now() / 1000) * 1000 - 3600_000;
const valueOf = (i: number) => `record-${i}-`.padEnd(200, String.fromCharCode(97 + (i % 26)));

function expected(n: number) {
  const recs: DecodedRecord[] = [];
  for (let i = 0; i < n; i++) recs.push({ offset: i, timestamp_ms: T0 + i, key: Buffer.from(`k${i % 13}`), value: Buffer.from(valueOf(i)), headers: [] });
  return digestRecords(recs);
}

async function consumeAll(address: string, n: number): Promise<ReturnType<typeof digestRecords>> {
  const client = new RelaylogClient(address);
  const c = new Consumer(client, { topic: 'stream', from: { offset: 0 }, end_offset: n, retries: 50, retry_backoff_ms: 100 });
  const out: DecodedRecord[] = [];
  try {
    for await (const r of c) out.push({ ...r, key: r.key && Buffer.from(r.key), value: r.value && Buffer.from(r.value) });
  } finally {
    c.close();
    client.close();
  }
  return digestRecords(out);
}

async function rawLog(address: string, end: number): Promise<Buffer> {
  const client = new RelaylogClient(address);
  const parts: Buffer[] = [];
  try {
    for (let o = 0; o < end; ) {
      const r = await client.fetch('stream', 0, o, 1 << 20);
      parts.push(Buffer.from(r.records));
      o = r.next_offset;
    }
  } finally {
    client.close();
  }
  return Buffer.concat(parts);
}

/** Polls (bounded) until `address` reports the partition's high watermark at `hw`. */
async function caughtUp(address: string, hw: number, timeout_ms = 30_000): Promise<void> {
  const client = new RelaylogClient(address, { deadline_ms: 2000 });
  const until = Date.now() + timeout_ms;
  let last = -1;
  try {
    while (Date.now() < until) {
      try {
        last = (await client.describeTopic('stream')).partitions[0]!.high_watermark;
        if (last === hw) return;
      } catch {
        // not up yet, or the topic not discovered yet
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  } finally {
    client.close();
  }
  throw new Error(`${address} stuck at high watermark ${last}, expected ${hw}`);
}

beforeAll(() => assertFreshBuild());

describe('a chain and a tree of relays', () => {
  const tmp = tempDir('relaylog-relay-');
  const procs: Record<string, ServerProcess> = {};
  const relay = (name: string, upstream: string, listen?: string) =>
    startServer(join(tmp.dir, name), { command: 'relay', extra_args: ['--upstream', upstream], ...(listen ? { listen } : {}) }).then((p) => (procs[name] = p));

  afterAll(async () => {
    for (const p of Object.values(procs)) await p.stop('SIGKILL');
    tmp.cleanup();
  });

  test('every level ends with the same bytes at the same offsets, through SIGKILLs of two relays and the origin mid-stream', async () => {
    const origin = (procs.origin = await startServer(join(tmp.dir, 'origin')));
    const oc = new RelaylogClient(origin.address);
    await oc.createTopic('stream', { config: { 'segment.bytes': String(256 * 1024) } });
    const r1 = await relay('r1', origin.address);
    const r2 = await relay('r2', r1.address);
    const r3 = await relay('r3', r2.address);
    const r2b = await relay('r2b', r1.address);

    // Relays discover the topic on their own (polling their upstream's topic list).
    for (const p of [r1, r2, r3, r2b]) await caughtUp(p.address, 0);
    // Consumers following live at the origin, the end of the chain and the fan-out leaf.
    const live = [origin, r3, r2b].map((p) => consumeAll(p.address, N).then((v) => ({ v }), (err: unknown) => ({ err })));

    const producer = new Producer(oc, { topic: 'stream', partition: 0, batch_bytes: 16 * 1024, linger_ms: 2 });
    for (let i = 0; i < N; i++) {
      producer.push({ key: `k${i % 13}`, value: valueOf(i), timestamp_ms: T0 + i });
      if (i % 500 === 499) {
        await producer.ready();
        await new Promise((r) => setTimeout(r, 20));
      }
      if (i === 2000) {
        await procs.r2!.stop('SIGKILL');
        await relay('r2', r1.address, r2.address);
      }
      if (i === 4000) {
        await procs.r1!.stop('SIGKILL');
        await relay('r1', origin.address, r1.address);
      }
      if (i === 5000) {
        // The origin too, once everything sent so far is acknowledged (fsync=always: all of it
        // survives); relays and consumers reconnect to it on the same address.
        await producer.flush();
        await procs.origin!.stop('SIGKILL');
        procs.origin = await startServer(join(tmp.dir, 'origin'), { listen: origin.address });
      }
    }
    await producer.close();
    expect((await oc.describeTopic('stream')).partitions[0]!.high_watermark).toBe(N);

    for (const name of ['r1', 'r2', 'r3', 'r2b']) await caughtUp(procs[name]!.address, N);
    const want = expected(N);
    for (const got of await Promise.all(live)) expect(got).toEqual({ v: want });
    for (const name of ['r1', 'r2']) expect(await consumeAll(procs[name]!.address, N)).toEqual(want);

    // Byte-identical at identical offsets, epochs and CRCs included.
    const bytes = await rawLog(origin.address, N);
    let batches = 0;
    forEachBatch(bytes, () => batches++);
    expect(batches).toBeGreaterThan(10);
    for (const name of ['r1', 'r2', 'r3', 'r2b']) expect((await rawLog(procs[name]!.address, N)).equals(bytes)).toBe(true);

    // Each relay names its upstream and is caught up.
    const rc = new RelaylogClient(procs.r3!.address);
    const d = (await rc.describeTopic('stream')).partitions[0]!;
    expect(d).toMatchObject({ upstream: r2.address, relay_state: 'following', lag_offsets: 0, high_watermark: N });
    expect(d.relay_bytes_in).toBeGreaterThan(0);
    // A relay is read-only, and says where to write instead.
    expect(d.leader).toBe(origin.address); // three hops down, it still knows where produce goes
    await expect(rc.produce('stream', 0, encodeBatch([{ value: 'x' }]))).rejects.toMatchObject({ code: 'READ_ONLY_REPLICA', message: expect.stringContaining(`origin leader ${origin.address}`) });
    await expect(rc.createTopic('other')).rejects.toMatchObject({ code: 'READ_ONLY_REPLICA' });
    rc.close();

    // Topics created upstream appear downstream without manual steps.
    await oc.createTopic('later', { partitions: 2 });
    const until = Date.now() + 15_000;
    let names: string[] = [];
    const c3 = new RelaylogClient(procs.r3!.address);
    while (Date.now() < until && !names.includes('later')) {
      names = (await c3.listTopics()).map((t) => t.name);
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(names).toContain('later');
    expect((await c3.describeTopic('later')).partitions).toHaveLength(2);
    c3.close();
    oc.close();
  });

  test('a relay that copied a tail the origin lost in a crash truncates to the common point and follows the new data', async () => {
    const odir = join(tmp.dir, 'origin2');
    let origin = (procs.origin2 = await startServer(odir));
    let oc = new RelaylogClient(origin.address);
    // fsync=never (Kafka's default flush settings): an acknowledged tail can be lost in a crash.
    await oc.createTopic('stream', { config: { 'flush.messages': '9223372036854775807' } });
    const r = await relay('rx', origin.address);
    const batch = (from: number, n: number) => encodeBatch(Array.from({ length: n }, (_, i) => ({ key: `k${(from + i) % 13}`, value: valueOf(from + i), timestamp_ms: T0 + from + i })));
    for (let i = 0; i < 10; i++) await oc.produce('stream', 0, batch(i * 10, 10));
    await caughtUp(r.address, 100);
    // The origin dies and comes back without its last three batches (as after a power loss under
    // fsync=never): cut them from its segment file while it is down.
    await origin.stop('SIGKILL');
    oc.close();
    const segdir = join(odir, 'topics', 'stream', '0');
    const seg = join(segdir, readdirSync(segdir).filter((f) => f.endsWith('.log')).sort().pop()!);
    const bytes = await rawLog(r.address, 100);
    const sizes: number[] = [];
    forEachBatch(bytes, (_pos, size) => sizes.push(size));
    truncateSync(seg, statSync(seg).size - sizes.slice(-3).reduce((a, b) => a + b, 0));
    origin = procs.origin2 = await startServer(odir, { listen: origin.address });
    oc = new RelaylogClient(origin.address);
    expect((await oc.describeTopic('stream')).partitions[0]!.high_watermark).toBe(70);
    // The relay notices at once (the origin marked its new epoch at offset 70) ...
    await caughtUp(r.address, 70);
    // ... and follows what the origin writes next, in the new epoch, byte for byte.
    for (let i = 0; i < 5; i++) await oc.produce('stream', 0, batch(1000 + i * 10, 10));
    await caughtUp(r.address, 120);
    expect((await rawLog(r.address, 120)).equals(await rawLog(origin.address, 120))).toBe(true);
    const rc = new RelaylogClient(r.address);
    const d = (await rc.describeTopic('stream')).partitions[0]!;
    expect(d).toMatchObject({ relay_state: 'following', lag_offsets: 0 });
    rc.close();
    oc.close();
  });
});
