import { afterEach, describe, expect, test } from 'vitest';
import { RelaylogClient } from '../../../client/index.js';
import { EngineError } from '../../../engine/base/errors.js';
import { encodeBatch } from '../../../engine/index.js';
import { LogStore } from '../../../engine/log/log-store.js';
import type { PartitionLog } from '../../../engine/log/partition-log.js';
import { RelayRunner } from '../../../replication/relay/relay-runner.js';
import type { ServerLogger } from '../../../server/rpc/context.js';
import { LogServer } from '../../../server/rpc/log-server.js';
import { tempDir } from '../../support/tmp.js';

/*
 * A relay hands upstream frames to its log without waiting for each write (relay-runner.ts,
 * follow): many small live frames must still land in order, byte for byte, and a failed append in
 * the middle of a pipeline must end the subscription with that error, after which the relay
 * resumes from what its log really holds, with no gap and no duplicate.
 */

const quiet: ServerLogger = { debug: () => undefined, info: () => undefined, warn: () => undefined, error: () => undefined };
let cleanup: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanup.splice(0).reverse()) await c();
});

async function until(what: string, cond: () => boolean | Promise<boolean>, ms = 20_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** Every byte of a partition's log from offset 0 to its end. */
async function allBytes(p: PartitionLog): Promise<Buffer> {
  const parts: Buffer[] = [];
  for (let offset = 0; offset < p.highWatermark; ) {
    const r = await p.read(offset, 1024 * 1024);
    parts.push(Buffer.from(r.records));
    offset = r.next_offset;
    r.release();
  }
  return Buffer.concat(parts);
}

/** An origin server with `topic`, and a relay of it in-process over its own store; all stopped after the test. */
async function originAndRelay(topic: string) {
  const up = tempDir('relaylog-up-');
  const down = tempDir('relaylog-relay-');
  cleanup.push(up.cleanup, down.cleanup);
  const origin = await LogServer.start({ store: { dir: up.dir, disk_free_floor_bytes: 0 }, listen: '127.0.0.1:0', logger: quiet });
  cleanup.push(() => origin.stop());
  const producer = new RelaylogClient(origin.address);
  cleanup.push(() => producer.close());
  await producer.createTopic(topic, { partitions: 1 });
  const store = await LogStore.open({ dir: down.dir, disk_free_floor_bytes: 0 });
  cleanup.push(() => store.close());
  const errors: string[] = [];
  const logger = { info: () => undefined, warn: () => undefined, error: (o: object) => errors.push(String((o as { detail?: unknown }).detail)) };
  const relay = new RelayRunner({ store, upstreams: [origin.address], logger, topic_poll_ms: 50, retry_backoff_min_ms: 20, retry_backoff_max_ms: 100 });
  relay.start();
  cleanup.push(() => relay.stop());
  await until('the relay copy of the topic', () => store.listTopics().some((t) => t.name === topic));
  return { producer, relay, errors, p: store.partition(topic, 0) };
}

describe('relay follow pipeline', () => {
  test('small live frames land in order while writes overlap; a failed append mid-pipeline is retried from the log end', async () => {
    const { producer, relay, errors, p } = await originAndRelay('live');

    // The 30th append the relay starts fails, as a write error would; every other goes through.
    const original = p.appendReplicated.bind(p);
    let calls = 0;
    let overlapping = 0;
    let pending = 0;
    p.appendReplicated = (records) => {
      calls++;
      if (calls === 30) return Promise.reject(new EngineError('STORAGE_ERROR', 'injected write failure'));
      if (pending > 0) overlapping++;
      pending++;
      // Each append is seen done 3 ms after the log took it, as on a slow disk: frames that arrive
      // meanwhile must be handed over without waiting (a loop that waits never overlaps).
      return original(records)
        .then(async (r) => {
          await new Promise((res) => setTimeout(res, 3));
          return r;
        })
        .finally(() => pending--);
    };

    // 400 single-record produces, 8 at a time: frames arrive while earlier ones are being written.
    const inflight = new Set<Promise<unknown>>();
    for (let i = 0; i < 400; i++) {
      const v = Buffer.alloc(100 + (i % 50), i % 251);
      v.writeUInt32BE(i, 0);
      const q: Promise<unknown> = producer.produce('live', 0, encodeBatch([{ value: v }])).finally(() => inflight.delete(q));
      inflight.add(q);
      if (inflight.size >= 8) await Promise.race(inflight);
    }
    await Promise.all(inflight);
    // The origin's log as a client sees it.
    const upstreamParts: Buffer[] = [];
    let hw = 0;
    for (let offset = 0; ; ) {
      const f = await producer.fetch('live', 0, offset, 1024 * 1024);
      hw = f.high_watermark;
      if (f.records.length === 0) break;
      upstreamParts.push(Buffer.from(f.records));
      offset = f.next_offset;
    }
    expect(hw).toBe(400);
    await until('the relay to catch up', () => p.highWatermark === hw);

    expect((await allBytes(p)).equals(Buffer.concat(upstreamParts))).toBe(true);
    expect(calls).toBeGreaterThan(30);
    // The injected failure surfaced once, as itself; no offset mismatch or truncation followed it.
    expect(errors.filter((e) => e !== 'undefined')).toEqual(['injected write failure']);
    expect(relay.status('live', 0)!.truncations).toBe(0);
    // Appends overlapped: the loop took frames while earlier ones were still being written.
    expect(overlapping).toBeGreaterThan(10);
  }, 60_000);
});

describe('relay follow pipeline, idle upstream', () => {
  test('a failed append of the last frame before the upstream goes quiet is retried without waiting for more data', async () => {
    const { producer, p } = await originAndRelay('quiet');
    const original = p.appendReplicated.bind(p);
    let calls = 0;
    p.appendReplicated = (records) => (++calls === 1 ? Promise.reject(new EngineError('STORAGE_ERROR', 'injected write failure')) : original(records));
    // One produce, then nothing: the only frame fails to append, and no later frame wakes the loop.
    await producer.produce('quiet', 0, encodeBatch([{ value: 'only' }, { value: 'record' }]));
    await until('the relay to retry and catch up', () => p.highWatermark === 2, 10_000);
    expect(calls).toBeGreaterThanOrEqual(2);
  }, 30_000);
});
