import { describe, expect, test } from 'vitest';
import { RelaylogClient, type Frame } from '../../../client/index.js';
import { checkBatch, encodeBatch, forEachBatch, forEachRecord } from '../../../engine/index.js';
import { decodeMessage, encodeMessage, encodeRecordsFrame, LogService, messageType } from '../../../server/proto/load.js';
import type { ServerLogger } from '../../../server/rpc/context.js';
import { LogServer } from '../../../server/rpc/log-server.js';
import { frame_buffers, installPrefixedSend } from '../../../server/rpc/prefixed-send.js';
import { tempDir } from '../../support/tmp.js';

/** The replay frames' own encoder (one reused buffer) must give protobufjs's bytes. */
describe('encodeRecordsFrame', () => {
  const frames: Array<Record<string, unknown>> = [
    { records: Buffer.alloc(0), next_offset: 0, high_watermark: 0, log_start_offset: 0 },
    { records: Buffer.from('abc'), next_offset: 127, high_watermark: 128, log_start_offset: 16383 },
    { records: Buffer.alloc(20_000, 7), next_offset: 2 ** 40 + 5, high_watermark: 2 ** 53 - 1, log_start_offset: 2 ** 21 },
    { records: new Uint8Array([1, 2, 3]), next_offset: 1 },
    { records: Buffer.from('x'), next_offset: -1, high_watermark: 3, log_start_offset: 0 },
    { next_offset: 5, high_watermark: 5, log_start_offset: 0 },
  ];
  for (const type of ['FetchResponse', 'SubscribeFrame']) {
    test(`${type}: same bytes as the generic encoder, and they decode back`, () => {
      const T = messageType(type);
      for (const f of frames) {
        const fast = Buffer.from(encodeRecordsFrame(T, f)); // a copy: the next frame reuses the buffer
        expect(fast.equals(encodeMessage(T, f))).toBe(true);
        const { records, ...ints } = decodeMessage(T, fast);
        expect(Buffer.from(records as Uint8Array).equals(Buffer.from((f.records as Uint8Array | undefined) ?? []))).toBe(true);
        expect(ints).toEqual({ next_offset: f.next_offset ?? 0, high_watermark: f.high_watermark ?? 0, log_start_offset: f.log_start_offset ?? 0 });
      }
    });
  }

  test('Fetch and Subscribe responses serialize to the generic encoder\'s bytes', () => {
    const f = { records: Buffer.from('abc'), next_offset: 9, high_watermark: 10, log_start_offset: 0 };
    for (const m of ['Fetch', 'Subscribe']) expect(LogService[m]!.responseSerialize(f)).toEqual(encodeMessage(messageType(m === 'Fetch' ? 'FetchResponse' : 'SubscribeFrame'), f));
  });

  test('a frame larger than the reused buffer gets one of its own, and the buffer stays usable', () => {
    const T = messageType('SubscribeFrame');
    const big = { records: Buffer.alloc(17 * 1024 * 1024, 3), next_offset: 1 };
    const a = encodeRecordsFrame(T, big);
    const small = Buffer.from(encodeRecordsFrame(T, { records: Buffer.from('abc'), next_offset: 2 }));
    expect(a.length).toBe(encodeMessage(T, big).length);
    expect(a[a.length - 5]).toBe(3); // not overwritten by the small frame
    expect(small.equals(encodeMessage(T, { records: Buffer.from('abc'), next_offset: 2 }))).toBe(true);
  });

  /*
   * The reused buffer is safe only because grpc-js copies a serializer's result before anything
   * else runs. Concurrent subscriptions of different data through a real server would see
   * another stream's bytes, or batches failing their CRC, if that ever stopped being true.
   */
  test('concurrent subscriptions through a real server each get their own bytes', async () => {
    const tmp = tempDir('relaylog-frames-');
    const logger: ServerLogger = { debug: () => undefined, info: () => undefined, warn: () => undefined, error: () => undefined };
    const server = await LogServer.start({ store: { dir: tmp.dir, disk_free_floor_bytes: 0 }, listen: '127.0.0.1:0', logger });
    const client = new RelaylogClient(server.address);
    try {
      const topics = ['a', 'b', 'c'];
      for (const [i, t] of topics.entries()) {
        await client.createTopic(t, { partitions: 1, config: { 'flush.messages': '9223372036854775807', 'flush.ms': '1000' } });
        for (let b = 0; b < 40; b++) await client.produce(t, 0, encodeBatch(Array.from({ length: 16 }, () => ({ value: Buffer.alloc(4000, 0x41 + i) }))));
      }
      const read = async (t: string, i: number) => {
        const stream = client.subscribe(t, 0, { position: 'earliest' }, 64 * 1024);
        let n = 0;
        for await (const frame of stream as AsyncIterable<Frame>) {
          forEachBatch(frame.records, (pos, size) => {
            expect(checkBatch(frame.records, pos, size)).toBeNull();
            forEachRecord(frame.records.subarray(pos, pos + size), (r) => {
              expect(r.value!.every((x) => x === 0x41 + i)).toBe(true);
              n++;
            });
          });
          if (n >= 40 * 16) break;
        }
        stream.cancel();
        return n;
      };
      expect(await Promise.all(topics.map(read))).toEqual([640, 640, 640]);
    } finally {
      client.close();
      await server.stop();
      tmp.cleanup();
    }
  });

  /*
   * Subscribe frames go out of pooled buffers without grpc-js's copy (prefixed-send.ts), and a
   * buffer returns to the pool when its write callback runs. Were it returned (or reused) while
   * HTTP/2 still held it, a frame queued behind a slow reader would carry another frame's bytes.
   * Slow and fast readers of different data, many frames in flight, every byte checked.
   */
  test('pooled Subscribe frames: slow and fast readers of different data each get their own bytes', async () => {
    expect(installPrefixedSend()).toBe(true); // the pinned grpc-js has the method this wraps
    const tmp = tempDir('relaylog-frames-');
    const logger: ServerLogger = { debug: () => undefined, info: () => undefined, warn: () => undefined, error: () => undefined };
    const server = await LogServer.start({ store: { dir: tmp.dir, disk_free_floor_bytes: 0 }, listen: '127.0.0.1:0', logger });
    const client = new RelaylogClient(server.address);
    const batches = 64;
    const per = 8;
    try {
      const topics = ['a', 'b'];
      for (const [i, t] of topics.entries()) {
        await client.createTopic(t, { partitions: 1, config: { 'flush.ms': '1000' } });
        for (let b = 0; b < batches; b++) await client.produce(t, 0, encodeBatch(Array.from({ length: per }, (_, k) => ({ value: Buffer.alloc(30_000, (0x41 + i * 16 + b + k) & 0xff) }))));
      }
      const taken = frame_buffers.take(1); // the pool must hand buffers out and take them back
      frame_buffers.give(taken);
      const read = async (t: string, i: number, slow: boolean) => {
        const reader = new RelaylogClient(server.address, { own_connection: true });
        const stream = reader.subscribe(t, 0, { position: 'earliest' }, 64 * 1024);
        let n = 0;
        let frames = 0;
        try {
          for await (const frame of stream as AsyncIterable<Frame>) {
            forEachBatch(frame.records, (pos, size) => {
              expect(checkBatch(frame.records, pos, size)).toBeNull();
              forEachRecord(frame.records.subarray(pos, pos + size), (r) => {
                const b = Math.floor(r.offset / per);
                const k = r.offset % per;
                expect(r.value!.every((x) => x === ((0x41 + i * 16 + b + k) & 0xff))).toBe(true);
                n++;
              });
            });
            // A slow reader lets frames queue in the server's HTTP/2 stream behind it.
            if (slow && ++frames % 4 === 0) await new Promise((r) => setTimeout(r, 5));
            if (n >= batches * per) break;
          }
        } finally {
          stream.cancel();
          reader.close();
        }
        return n;
      };
      const readers = topics.flatMap((t, i) => [read(t, i, true), read(t, i, false), read(t, i, false)]);
      expect(await Promise.all(readers)).toEqual(Array(6).fill(batches * per));
    } finally {
      client.close();
      await server.stop();
      tmp.cleanup();
    }
  }, 60_000);
});
