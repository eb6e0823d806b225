import { createRequire } from 'node:module';
import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import type { Entry, Message } from '../../../replication/raft/core/types.js';
import { decodeRaftMessage, type PartitionMessage } from '../../../replication/raft/transport/codec.js';
import { encodeRaftFrame } from '../../../replication/raft/transport/frame-codec.js';
import { decodeMessage, messageType } from '../../../server/proto/load.js';
import { installClientPrefixedSend } from '../../../server/rpc/prefixed-send.js';

/*
 * The hand-written RaftFrame encoder (frame-codec.ts) against the receiver's protobufjs decoder:
 * every message of every type, with values up to 2^53 - 1, arrives as it was sent.
 */

const frame = messageType('RaftFrame');
const big = fc.oneof(fc.nat({ max: 300 }), fc.nat(), fc.maxSafeNat());
const id = fc.integer({ min: 1, max: 2 ** 32 - 1 });
const bytes = fc.uint8Array({ maxLength: 300 }).map((u) => Buffer.from(u));
const entry: fc.Arbitrary<Entry> = fc.record({ index: big, term: big, kind: fc.constantFrom('normal' as const, 'conf_change' as const), data: bytes });
const base = { from: id, to: id, term: big };
const conf = fc.record({ voters: fc.array(id, { maxLength: 5 }), learners: fc.array(id, { maxLength: 3 }) });

const message: fc.Arbitrary<Message> = fc.oneof(
  fc.record({ type: fc.constantFrom('vote' as const, 'pre_vote' as const), ...base, last_log_index: big, last_log_term: big, transfer: fc.boolean() }),
  fc.record({ type: fc.constantFrom('vote_response' as const, 'pre_vote_response' as const), ...base, granted: fc.boolean() }),
  fc.record({ type: fc.constant('append' as const), ...base, prev_log_index: big, prev_log_term: big, commit: big, entries: fc.array(entry, { maxLength: 4 }) }),
  fc.record({ type: fc.constant('append_response' as const), ...base, success: fc.boolean(), match_index: big, reject_index: big, hint_index: big, hint_term: big }),
  fc.record({ type: fc.constant('heartbeat' as const), ...base, commit: big }),
  fc.record({ type: fc.constantFrom('heartbeat_response' as const, 'timeout_now' as const), ...base }),
  fc.record({ type: fc.constant('snapshot' as const), ...base, snapshot: fc.record({ meta: fc.record({ index: big, term: big, conf_state: conf }), data: bytes }) }),
);

const partitionMessage: fc.Arbitrary<PartitionMessage> = fc.record({
  topic: fc.string({ minLength: 1, maxLength: 40, unit: 'grapheme' }),
  partition: fc.nat({ max: 10_000 }),
  topic_created_ms: fc.oneof(fc.constant(0), big),
  message,
});

describe('RaftFrame encoder', () => {
  test('protobufjs decodes every frame to the messages that were encoded', () => {
    fc.assert(
      fc.property(id, id, fc.array(partitionMessage, { maxLength: 6 }), (from, to, pms) => {
        const encoded = encodeRaftFrame(from, to, pms);
        const raw = decodeMessage(frame, encoded);
        expect([raw.from, raw.to]).toEqual([from, to]);
        const got = (raw.messages as unknown[]).map((m) => decodeRaftMessage(m));
        expect(got).toEqual(pms);
      }),
      { numRuns: 300 },
    );
  });

  test('the frame leaves 5 bytes in front for the gRPC prefix, and grpc-js frames it there without a copy', async () => {
    expect(installClientPrefixedSend()).toBe(true);
    const require = createRequire(import.meta.url);
    const { CompressionFilter } = require('@grpc/grpc-js/build/src/compression-filter.js') as { CompressionFilter: new (o: object, s: object) => { sendCompression: { writeMessage(m: Buffer, c: boolean): Promise<Buffer> } } };
    const handler = new CompressionFilter({}, {}).sendCompression;
    const m = encodeRaftFrame(1, 2, [{ topic: 't', partition: 0, topic_created_ms: 5, message: { type: 'heartbeat', from: 1, to: 2, term: 3, commit: 4 } }]);
    const out = await handler.writeMessage(m, false);
    expect(out.buffer).toBe(m.buffer);
    expect(out.byteOffset).toBe(m.byteOffset - 5);
    expect([out[0], out.readUInt32BE(1)]).toEqual([0, m.length]);
    expect(out.subarray(5).equals(m)).toBe(true);
    // Any other message is framed by grpc-js as before: a fresh buffer, the bytes copied.
    const plain = Buffer.from([1, 2, 3]);
    const copied = await handler.writeMessage(plain, false);
    expect(copied.buffer === plain.buffer && copied.byteOffset === plain.byteOffset - 5).toBe(false);
    expect([...copied]).toEqual([0, 0, 0, 0, 3, 1, 2, 3]);
  });

  test('a value that is not a non-negative safe integer is refused, not sent wrong', () => {
    const bad = { topic: 't', partition: 0, topic_created_ms: 1, message: { type: 'heartbeat' as const, from: 1, to: 2, term: -1, commit: 0 } };
    expect(() => encodeRaftFrame(1, 2, [bad])).toThrow(/term -1/);
  });
});
