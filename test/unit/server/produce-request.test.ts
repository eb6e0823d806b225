import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import { Producer, RelaylogClient } from '../../../client/index.js';
import { checkBatch, encodeBatch, forEachBatch, forEachRecord } from '../../../engine/index.js';
import { decodeMessage, encodeMessage, encodeProduceRequest, LogService, messageType, PRE_ENCODED } from '../../../server/proto/load.js';
import type { ServerLogger } from '../../../server/rpc/context.js';
import { LogServer } from '../../../server/rpc/log-server.js';
import { installClientPrefixedSend } from '../../../server/rpc/prefixed-send.js';
import { tempDir } from '../../support/tmp.js';

const T = messageType('ProduceRequest');

/** The client's own ProduceRequest encoder must give protobufjs's bytes. */
describe('encodeProduceRequest', () => {
  const request = fc.record(
    {
      topic: fc.oneof(fc.string({ maxLength: 40 }), fc.string({ unit: 'grapheme', maxLength: 20 }), fc.string({ unit: 'binary', maxLength: 20 })),
      partition: fc.oneof(fc.constantFrom(0, 1, 127, 128, 16_383, 16_384, 2 ** 31, 2 ** 32 - 1), fc.nat()),
      records: fc.oneof(fc.constant(0), fc.nat(300), fc.constantFrom(16 * 1024 - 1, 16 * 1024, 70_000)).map((n) => Buffer.alloc(n, n & 0xff)),
      acks: fc.constantFrom('ACKS_ALL', 'ACKS_LEADER', 0, 1),
    },
    { requiredKeys: [] },
  );

  test('same bytes as the generic encoder, with or without a buffer of the caller, and they decode back', () => {
    fc.assert(
      fc.property(request, (r) => {
        const generic = encodeMessage(T, r);
        const own = encodeProduceRequest(T, r);
        expect(own.equals(generic)).toBe(true);
        let asked = -1;
        const into = encodeProduceRequest(T, r, (size) => Buffer.alloc((asked = size) + 3, 0xee).subarray(3));
        // A non-ASCII topic (never a valid one) takes the generic encoder, which has no `into`.
        if (/^[\x00-\x7f]*$/.test(r.topic ?? '')) expect(asked).toBe(generic.length);
        else expect(asked).toBe(-1);
        expect(into.equals(generic)).toBe(true);
        const back = decodeMessage(T, own);
        expect(back.topic).toBe(r.topic ?? '');
        expect(back.partition).toBe(r.partition ?? 0);
        expect(Buffer.from(back.records as Uint8Array).equals(r.records ?? Buffer.alloc(0))).toBe(true);
        expect(back.acks).toBe(r.acks === 1 || r.acks === 'ACKS_LEADER' ? 'ACKS_LEADER' : 'ACKS_ALL');
      }),
      { numRuns: 300 },
    );
  });

  test('anything unusual takes the generic encoder', () => {
    for (const r of [{ topic: 't', partition: -1 }, { topic: 't', partition: 1.5 }, { topic: 't', acks: 'ACKS_SOME' }, { topic: 't', records: 'not bytes' }]) {
      let threw_generic: unknown = null;
      let generic: Buffer | null = null;
      try {
        generic = encodeMessage(T, r);
      } catch (err) {
        threw_generic = err;
      }
      if (threw_generic !== null) expect(() => encodeProduceRequest(T, r)).toThrow();
      else expect(encodeProduceRequest(T, r).equals(generic!)).toBe(true);
    }
  });

  test('a pre-encoded request is sent as it is', () => {
    const r = { topic: 't', partition: 3, records: Buffer.alloc(100_000, 9), acks: 'ACKS_ALL' };
    const whole = Buffer.alloc(5 + encodeMessage(T, r).length);
    const message = encodeProduceRequest(T, r, () => whole.subarray(5));
    const sent = LogService.Produce!.requestSerialize({ ...r, records: Buffer.alloc(0), [PRE_ENCODED]: { message, whole } });
    expect(sent).toBe(message);
    expect(Buffer.from(sent).equals(encodeMessage(T, r))).toBe(true);
  });
});

/*
 * Large produce requests are encoded into pooled buffers, taken back once the server answered OK,
 * and framed in place (no grpc-js copy). Were a buffer taken back (and refilled by the next
 * request) while grpc-js or HTTP/2 could still send it, a request in flight would carry another
 * one's bytes: the server would refuse it (CRC) or store the wrong records. Many large requests of
 * different content in flight at once, on one connection, some refused, then every byte read back.
 */
describe('large produce requests through a real server', () => {
  test('every record set arrives as it was sent, while pooled buffers are reused', async () => {
    expect(installClientPrefixedSend()).toBe(true); // the pinned grpc-js has the method this wraps
    const tmp = tempDir('relaylog-produce-req-');
    const logger: ServerLogger = { debug: () => undefined, info: () => undefined, warn: () => undefined, error: () => undefined };
    const server = await LogServer.start({ store: { dir: tmp.dir, disk_free_floor_bytes: 0 }, listen: '127.0.0.1:0', logger });
    const client = new RelaylogClient(server.address);
    const sets = 96;
    const per = 4;
    const fill = (s: number, k: number) => (s * 7 + k * 31 + 1) & 0xff;
    try {
      await client.createTopic('big', { partitions: 1, config: { 'flush.ms': '1000' } });
      const inflight: Promise<unknown>[] = [];
      const refused: Promise<unknown>[] = [];
      for (let s = 0; s < sets; s++) {
        const records = encodeBatch(Array.from({ length: per }, (_, k) => ({ value: Buffer.alloc(40_000 + s, fill(s, k)) })));
        // One request in flight after another would not reuse a buffer; 12 at once do, round after round.
        inflight.push(client.produce('big', 0, records));
        if (s % 16 === 5) refused.push(client.produce('no-such-topic', 0, records).then(() => 'accepted', (err: Error) => err.message));
        if (inflight.length >= 12) await inflight.shift();
      }
      await Promise.all(inflight);
      for (const r of await Promise.all(refused)) expect(r).toMatch(/no-such-topic/);

      let n = 0;
      let offset = 0;
      while (n < sets * per) {
        const res = await client.fetch('big', 0, offset, 8 * 1024 * 1024);
        forEachBatch(res.records, (pos, size) => {
          expect(checkBatch(res.records, pos, size)).toBeNull();
          forEachRecord(res.records.subarray(pos, pos + size), (r) => {
            const s = Math.floor(r.offset / per);
            expect(r.value!.length).toBe(40_000 + s);
            expect(r.value!.every((x) => x === fill(s, r.offset % per))).toBe(true);
            n++;
          });
        });
        offset = res.next_offset;
      }
      expect(n).toBe(sets * per);
    } finally {
      client.close();
      await server.stop();
      tmp.cleanup();
    }
  }, 60_000);

  /*
   * The Producer encodes batches into pooled buffers and its pipeline encodes large requests into
   * pooled ones too, each given back once the server acknowledged it. Two producers at once (one
   * idempotent, one not), batches of a few hundred KiB up to 1 MiB, several in flight: every
   * record read back must be the one sent, in order.
   */
  test('Producers on pipelines: every record arrives as it was sent, while pooled buffers are reused', async () => {
    const tmp = tempDir('relaylog-produce-req-');
    const logger: ServerLogger = { debug: () => undefined, info: () => undefined, warn: () => undefined, error: () => undefined };
    const server = await LogServer.start({ store: { dir: tmp.dir, disk_free_floor_bytes: 0 }, listen: '127.0.0.1:0', logger });
    const client = new RelaylogClient(server.address);
    const count = 300;
    const size = (i: number) => 20_000 + ((i * 7919) % 50_000);
    const fill = (t: number, i: number) => (t * 101 + i * 13 + 1) & 0xff;
    try {
      const topics = ['p0', 'p1'];
      for (const t of topics) await client.createTopic(t, { partitions: 1, config: { 'flush.ms': '1000' } });
      await Promise.all(
        topics.map(async (topic, t) => {
          const producer = new Producer(client, { topic, idempotent: t === 0, batch_bytes: (t + 1) * 400_000, max_in_flight: 4, linger_ms: 1 });
          const acks: Promise<number>[] = [];
          for (let i = 0; i < count; i++) {
            await producer.ready();
            acks.push(producer.send({ value: Buffer.alloc(size(i), fill(t, i)) }));
          }
          expect(await Promise.all(acks)).toEqual(acks.map((_, i) => i));
          await producer.close();
        }),
      );
      for (const [t, topic] of topics.entries()) {
        let n = 0;
        let offset = 0;
        while (n < count) {
          const res = await client.fetch(topic, 0, offset, 8 * 1024 * 1024);
          forEachBatch(res.records, (pos, sz) => {
            expect(checkBatch(res.records, pos, sz)).toBeNull();
            forEachRecord(res.records.subarray(pos, pos + sz), (r) => {
              expect(r.value!.length).toBe(size(r.offset));
              expect(r.value!.every((x) => x === fill(t, r.offset))).toBe(true);
              n++;
            });
          });
          offset = res.next_offset;
        }
        expect(n).toBe(count);
      }
    } finally {
      client.close();
      await server.stop();
      tmp.cleanup();
    }
  }, 60_000);
});
