import { Server, ServerCredentials, type ServerReadableStream, type sendUnaryData } from '@grpc/grpc-js';
import { afterEach, describe, expect, test } from 'vitest';
import type { Message } from '../../../replication/raft/core/types.js';
import { decodeRaftMessage, type PartitionMessage } from '../../../replication/raft/transport/codec.js';
import { RaftTransport } from '../../../replication/raft/transport/grpc-transport.js';
import { RaftService } from '../../../server/proto/load.js';

/*
 * The transport encodes large frames into pooled buffers and gives each back in its write's
 * callback (grpc-transport.ts, frame_pool). If grpc-js called that callback before the bytes were
 * on the socket, the next frame would overwrite a frame still queued and the peer would receive
 * the wrong bytes. Here a real transport sends appends of 256 KiB entries, each filled with its
 * own sequence number, to a real gRPC server on 127.0.0.1, in bursts larger than the pool and the
 * HTTP/2 window, so buffers are reused while earlier frames are still queued; every entry must
 * arrive with its own bytes.
 */

const COUNT = 240;
const silent = { info: () => undefined, warn: () => undefined };

function append(seq: number, ENTRY_BYTES: number): PartitionMessage {
  const data = Buffer.alloc(ENTRY_BYTES, seq & 0xff);
  data.writeUInt32BE(seq, 0);
  data.writeUInt32BE(seq, ENTRY_BYTES - 4);
  const message: Message = { type: 'append', from: 1, to: 2, term: 1, prev_log_index: seq, prev_log_term: 1, commit: 0, entries: [{ index: seq + 1, term: 1, kind: 'normal', data }] };
  return { topic: 't', partition: 0, topic_created_ms: 1, message };
}

let cleanup: Array<() => void> = [];
afterEach(() => {
  for (const c of cleanup.splice(0)) c();
});

describe('RaftTransport pooled frames', () => {
  // 1 MiB frames of 256 KiB entries; and frames of one 96 KiB entry, small enough that grpc-js
  // would keep them in its retry buffer (and call back early) if the channel allowed it.
  test.each([
    { entry: 256 * 1024, frame_max: 1024 * 1024 },
    { entry: 96 * 1024, frame_max: 128 * 1024 },
  ])('every entry arrives with its own bytes while pooled buffers are reused ($entry B entries, frames <= $frame_max B)', async ({ entry: ENTRY_BYTES, frame_max }) => {
    const received = new Map<number, Buffer>();
    let bad = 0;
    let resolveAll!: () => void;
    const all = new Promise<void>((r) => (resolveAll = r));
    const server = new Server({ 'grpc.max_receive_message_length': 65 * 1024 * 1024 });
    server.addService(RaftService, {
      Step: (call: ServerReadableStream<unknown, object>, cb: sendUnaryData<object>) => {
        call.on('data', (frame: { messages?: unknown[] }) => {
          for (const raw of frame.messages ?? []) {
            const pm = decodeRaftMessage(raw);
            if (pm === null || pm.message.type !== 'append') {
              bad++;
              continue;
            }
            for (const e of pm.message.entries) received.set(e.index - 1, Buffer.from(e.data));
          }
          if (received.size >= COUNT) resolveAll();
        });
        call.on('end', () => cb(null, {}));
        call.on('error', () => undefined);
      },
      CreateTopicReplica: (_c: unknown, cb: sendUnaryData<object>) => cb(null, {}),
      DeleteTopicReplica: (_c: unknown, cb: sendUnaryData<object>) => cb(null, {}),
      ListTopicReplicas: (_c: unknown, cb: sendUnaryData<object>) => cb(null, { topics: [] }),
    });
    const port = await new Promise<number>((resolve, reject) => server.bindAsync('127.0.0.1:0', ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))));
    cleanup.push(() => server.forceShutdown());
    const transport = new RaftTransport({
      node_id: 1,
      peers: new Map([
        [1, '127.0.0.1:1'],
        [2, `127.0.0.1:${port}`],
      ]),
      logger: silent,
      reconnect_ms: 0,
      peer_queue_max_bytes: 1024 * 1024 * 1024,
      frame_max_bytes: frame_max,
    });
    cleanup.push(() => transport.close());
    // Bursts of 60 entries (6-15 MiB, 15-60 frames) per turn: more than the pool keeps and than
    // the stream's window, so later frames reuse buffers of earlier ones.
    for (let seq = 0; seq < COUNT; seq++) {
      transport.send(append(seq, ENTRY_BYTES));
      if (seq % 60 === 59) await new Promise((r) => setImmediate(r));
    }
    await Promise.race([all, new Promise((_, reject) => setTimeout(() => reject(new Error(`only ${received.size} of ${COUNT} entries arrived`)), 20_000))]);
    expect(bad).toBe(0);
    expect(transport.dropped).toBe(0);
    for (let seq = 0; seq < COUNT; seq++) {
      const got = received.get(seq)!;
      expect(got.length).toBe(ENTRY_BYTES);
      const want = append(seq, ENTRY_BYTES).message as unknown as { entries: Array<{ data: Buffer }> };
      if (!got.equals(want.entries[0]!.data)) throw new Error(`entry ${seq} arrived with another frame's bytes (first word ${got.readUInt32BE(0)}, last ${got.readUInt32BE(ENTRY_BYTES - 4)})`);
    }
  }, 30_000);
});
