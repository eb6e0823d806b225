import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, test } from 'vitest';
import { LogStore, ManualClock, encodeBatch } from '../../../engine/index.js';
import { readAll } from '../../support/batches.js';
import { tempDir } from '../../support/tmp.js';

const clock = new ManualClock(1_700_000_000_000);
let dir: string;
let cleanup: () => void;
let store: LogStore;

const open = () => LogStore.open({ dir, clock, disk_free_floor_bytes: 0, retention_check_interval_ms: 0 });
/** A fresh copy each time: the log stamps offsets into the buffer it is given, as a retry over the wire would not see. */
const batch = (producer_id: number, base_sequence: number, count: number, producer_epoch = 0) =>
  encodeBatch(
    Array.from({ length: count }, (_, i) => ({ value: `p${producer_id}-s${base_sequence + i}`, key: 'k'.repeat(600), timestamp_ms: 1_700_000_000_000 })),
    { producer_id, producer_epoch, base_sequence },
  );

beforeEach(async () => {
  ({ dir, cleanup } = tempDir());
  store = await open();
  await store.createTopic('t', { segment_bytes: 16384 });
});
afterEach(async () => {
  await store.close();
  cleanup();
});

describe('idempotent append on a single node', () => {
  test('a retried batch is answered with its original offsets and written once', async () => {
    const p = store.partition('t', 0);
    const a = await p.append(batch(5, 0, 3));
    const b = await p.append(batch(5, 3, 2));
    expect(await p.append(batch(5, 0, 3))).toEqual(a);
    expect(await p.append(batch(5, 3, 2))).toEqual(b);
    expect(p.logEndOffset).toBe(5);
    expect((await readAll(p)).map((r) => r.value!.toString())).toEqual(['p5-s0', 'p5-s1', 'p5-s2', 'p5-s3', 'p5-s4']);
  });

  test('a retry in the same group commit as its original is still written once', async () => {
    const p = store.partition('t', 0);
    const [a, b, c] = await Promise.all([p.append(batch(5, 0, 2)), p.append(batch(5, 0, 2)), p.append(batch(6, 0, 1))]);
    expect(b).toEqual(a);
    expect(c).toEqual({ base_offset: 2, last_offset: 2 });
    expect(p.logEndOffset).toBe(3);
  });

  test('a gap is OUT_OF_ORDER_SEQUENCE, an older epoch PRODUCER_FENCED; neither writes anything', async () => {
    const p = store.partition('t', 0);
    await p.append(batch(5, 0, 2, 1));
    await expect(p.append(batch(5, 3, 1, 1))).rejects.toMatchObject({ code: 'OUT_OF_ORDER_SEQUENCE' });
    await expect(p.append(batch(5, 2, 1, 0))).rejects.toMatchObject({ code: 'PRODUCER_FENCED' });
    expect(p.logEndOffset).toBe(2);
    expect(await p.append(batch(5, 2, 1, 1))).toEqual({ base_offset: 2, last_offset: 2 });
  });

  test('an idempotent batch must come alone in its produce', async () => {
    const p = store.partition('t', 0);
    await expect(p.append(Buffer.concat([batch(5, 0, 1), batch(5, 1, 1)]))).rejects.toMatchObject({ code: 'INVALID_BATCH' });
  });

  test('batches without a producer id are never deduplicated', async () => {
    const p = store.partition('t', 0);
    const plain = () => encodeBatch([{ value: 'x', timestamp_ms: 1 }]);
    await p.append(plain());
    await p.append(plain());
    expect(p.logEndOffset).toBe(2);
  });

  test('after a restart the state is rebuilt from the segments: equal to the live one, and a retry is still recognised', async () => {
    let p = store.partition('t', 0);
    const acked = [];
    for (let i = 0; i < 40; i++) acked.push(await p.append(batch(i % 4, Math.floor(i / 4) * 3, 3)));
    expect(p.segmentInfo().length).toBeGreaterThan(3); // the state spans several segments
    const live = p.producerState()!.entries();
    expect((await p.rebuiltProducerState()).entries()).toEqual(live);
    await store.close();
    store = await open();
    p = store.partition('t', 0);
    expect(p.producerState()!.entries()).toEqual(live);
    expect(await p.append(batch(3, 27, 3))).toEqual(acked[39]);
    expect(await p.append(batch(2, 27, 3))).toEqual(acked[38]);
    expect(await p.append(batch(2, 24, 3))).toEqual(acked[34]);
    await expect(p.append(batch(3, 31, 1))).rejects.toMatchObject({ code: 'OUT_OF_ORDER_SEQUENCE' });
    expect(p.logEndOffset).toBe(120);
  });

  test('the rebuild reads only the newest segments: a producer seen only further back is unknown', async () => {
    const p = store.partition('t', 0);
    await p.append(batch(1, 0, 1));
    for (let i = 0; i < 30; i++) await p.append(batch(2, i * 3, 3));
    const small = await p.rebuiltProducerState(1); // the active segment alone
    expect(small.entries().map((e) => e.producer_id)).toEqual([2]);
    const full = await p.rebuiltProducerState(1 << 30);
    expect(full.entries()).toEqual(p.producerState()!.entries());
  });

  test('after a crash (no clean close) the state is the snapshot of the last roll plus the batches after it', async () => {
    let p = store.partition('t', 0);
    const acked = [];
    for (let i = 0; i < 40; i++) acked.push(await p.append(batch(i % 4, Math.floor(i / 4) * 3, 3)));
    const live = p.producerState()!.entries();
    await store.abandon();
    store = await open();
    p = store.partition('t', 0);
    expect(p.producerState()!.entries()).toEqual(live);
    expect(await p.append(batch(0, 27, 3))).toEqual(acked[36]);
    expect(p.logEndOffset).toBe(120);
  });

  test('a truncation forgets the cut batches, and a crash after it does not bring them back from an older snapshot', async () => {
    let p = store.partition('t', 0);
    for (let i = 0; i < 20; i++) await p.append(batch(1, i * 3, 3));
    const rolled_at = p.segmentInfo().at(-1)!.base_offset; // the last roll wrote a snapshot valid at this offset
    expect(rolled_at).toBeGreaterThan(12);
    await p.truncateTo(12); // batches 4.. of producer 1 are gone; the active segment is now the one holding offset 12
    // Small batches of another producer bring the log end past the old snapshot's offset without a roll.
    const small = (seq: number) => encodeBatch([{ value: `q${seq}`, timestamp_ms: 1 }], { producer_id: 2, producer_epoch: 0, base_sequence: seq });
    for (let i = 0; p.logEndOffset <= rolled_at + 1; i++) await p.append(small(i));
    const live = p.producerState()!.entries();
    // Producer 1's remembered batches (its last 5) were all cut: it is unknown again.
    expect(live.map((e) => e.producer_id)).toEqual([2]);
    await store.abandon();
    store = await open();
    p = store.partition('t', 0);
    expect(p.producerState()!.entries()).toEqual(live);
    // Producer 1's cut batch is new again; written once.
    const end = p.logEndOffset;
    expect(await p.append(batch(1, 12, 3))).toEqual({ base_offset: end, last_offset: end + 2 });
    expect(await p.append(batch(1, 12, 3))).toEqual({ base_offset: end, last_offset: end + 2 });
  });

  test('a catalog rebuilt from the segments restarts the producer id counter above every id they remember', async () => {
    const p = store.partition('t', 0);
    await p.append(batch(5, 0, 1));
    await p.append(batch(2 ** 40 * 3 + 17, 0, 1)); // node 3's 17th id
    expect(store.catalog.allocateProducerId()).toBe(0); // the counter itself knows nothing of batches
    await store.close();
    rmSync(join(dir, 'catalog'), { recursive: true, force: true });
    store = await open();
    expect(store.catalog.allocateProducerId()).toBe(18);
  });
});
