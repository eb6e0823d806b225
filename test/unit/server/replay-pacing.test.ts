/*
 * Replay pacing through a real server (in this process, so that holding this event loop makes the
 * server's run late, as a machine whose cores are busy does): while a producer writes, a catch-up
 * subscriber is paced (the metric counts frames that waited for the rate), still receives every
 * record once and in order, and once the producer stops the limit is lifted.
 */
import { expect, test } from 'vitest';
import { RelaylogClient, type Frame } from '../../../client/index.js';
import { encodeBatch, forEachBatch, forEachRecord } from '../../../engine/index.js';
import type { ServerLogger } from '../../../server/rpc/context.js';
import { LogServer } from '../../../server/rpc/log-server.js';
import { tempDir } from '../../support/tmp.js';

const KiB = 1024;
const RECORDS = 512;
const VALUE = 32 * KiB;
const logger: ServerLogger = { debug: () => undefined, info: () => undefined, warn: () => undefined, error: () => undefined };
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const fill = (i: number) => (i * 29 + 3) & 0xff;

async function metric(server: LogServer, name: string): Promise<number> {
  const text = await server.metrics.registry.getSingleMetricAsString(name);
  const line = text.split('\n').find((l) => l.startsWith(`${name} `));
  const v = line!.split(' ')[1]!;
  return v === '+Inf' ? Infinity : Number(v);
}

test('a catch-up subscriber is paced while a producer writes, loses nothing, and is let go when the producer stops', async () => {
  const tmp = tempDir('relaylog-pacing-');
  const server = await LogServer.start({
    store: { dir: tmp.dir, disk_free_floor_bytes: 0 },
    listen: '127.0.0.1:0',
    logger,
    limits: { replay_pace_lag_ms: 2, replay_pace_period_ms: 20, replay_pace_floor_bytes_per_s: 4096 * KiB, replay_bytes_per_turn: 256 * KiB, replay_small_frame_bytes: 16 * KiB },
  });
  const client = new RelaylogClient(server.address);
  let producing = true;
  let produced = 0;
  try {
    await client.createTopic('rep', { partitions: 1, config: { 'flush.ms': '1000' } });
    await client.createTopic('live', { partitions: 1, config: { 'flush.ms': '1000' } });
    for (let i = 0; i < RECORDS; i += 8) {
      await client.produce('rep', 0, encodeBatch(Array.from({ length: 8 }, (_, k) => ({ value: Buffer.alloc(VALUE, fill(i + k)) }))));
    }
    // The producer: small records, one at a time; and every 20 ms the loop is held for 8 ms.
    const producer = (async () => {
      let held = performance.now();
      const deadline = performance.now() + 30_000;
      while (producing && performance.now() < deadline) {
        await client.produce('live', 0, encodeBatch([{ value: Buffer.alloc(100, 1) }]));
        produced++;
        if (performance.now() - held >= 20) {
          const until = performance.now() + 8;
          while (performance.now() < until);
          held = performance.now();
        }
      }
    })();
    await sleep(100);
    // The catch-up reader: 256 KiB frames, from the start.
    const seen: number[] = [];
    const stream = client.subscribe('rep', 0, { position: 'earliest' }, 256 * KiB);
    const deadline = performance.now() + 30_000;
    for await (const f of stream as AsyncIterable<Frame>) {
      forEachBatch(f.records, (pos, size) =>
        forEachRecord(f.records.subarray(pos, pos + size), (r) => {
          expect(r.value!.length).toBe(VALUE);
          expect(r.value![0]).toBe(fill(r.offset));
          expect(r.value![VALUE - 1]).toBe(fill(r.offset));
          seen.push(r.offset);
        }),
      );
      if (seen.length >= RECORDS || performance.now() > deadline) break;
    }
    stream.cancel();
    const paced_while_producing = await metric(server, 'relaylog_replay_pace_waits_total');
    expect(seen).toEqual(Array.from({ length: RECORDS }, (_, i) => i));
    expect(paced_while_producing).toBeGreaterThan(0);
    expect(produced).toBeGreaterThan(0);
    producing = false;
    await producer;

    // No producer: a second reader is not paced, and the limit is lifted (+Inf).
    const before = await metric(server, 'relaylog_replay_pace_waits_total');
    await sleep(300); // more than QUIET_PERIODS periods of 20 ms without an append
    const again = client.subscribe('rep', 0, { position: 'earliest' }, 256 * KiB);
    let n = 0;
    for await (const f of again as AsyncIterable<Frame>) {
      forEachBatch(f.records, (pos, size) => forEachRecord(f.records.subarray(pos, pos + size), () => void n++));
      if (n >= RECORDS || performance.now() > deadline + 30_000) break;
    }
    again.cancel();
    expect(n).toBe(RECORDS);
    expect(await metric(server, 'relaylog_replay_pace_bytes_per_second')).toBe(Infinity);
    expect(await metric(server, 'relaylog_replay_pace_waits_total')).toBe(before);
  } finally {
    producing = false;
    client.close();
    await server.stop();
    tmp.cleanup();
  }
}, 90_000);
