/**
 * RaftFrame (server/proto/relaylog.proto) encoded by hand, straight from the core's messages, into
 * one buffer of exactly the right size with 5 bytes of room in front for the gRPC message prefix.
 *
 * protobufjs's encoder grows its buffer by doubling (each step a fresh allocation and a copy) and
 * copies once more when it finishes, and grpc-js then copies the message again behind its prefix:
 * for a frame of 8 MiB of record batches that was most of a leader's time per append in profiles
 * (fresh memory costs a page fault per 4 KiB). Here the entries' bytes are copied once, and
 * `prefixed-send.ts` lets grpc-js send the buffer without its copy.
 *
 * The receiver decodes with protobufjs as before; `test/unit/raft-node/frame-codec.test.ts` checks
 * that both encoders give frames it decodes to the same messages.
 */
import { varintSize, writeVarint } from '../../../server/proto/load.js';
import { markPrefixed } from '../../../server/rpc/prefixed-send.js';
import type { Message } from '../core/types.js';
import type { PartitionMessage } from './codec.js';

const WIRE_TYPE: Record<Message['type'], number> = {
  vote: 0,
  pre_vote: 1,
  vote_response: 2,
  pre_vote_response: 3,
  append: 4,
  append_response: 5,
  heartbeat: 6,
  heartbeat_response: 7,
  timeout_now: 8,
  snapshot: 9,
};

const PREFIX_BYTES = 5;
const VARINT = 0;
const LEN = 2;


const tagSize = (field: number): number => varintSize(field * 8);

/** A field with a varint value, written only when non-zero (proto3 leaves defaults out). */
const uintField = (field: number, v: number): number => (v === 0 ? 0 : tagSize(field) + varintSize(v));
const lenField = (field: number, len: number): number => tagSize(field) + varintSize(len) + len;

class Out {
  pos: number;
  constructor(
    readonly buf: Buffer,
    start: number,
  ) {
    this.pos = start;
  }
  varint(v: number): void {
    this.pos = writeVarint(this.buf, this.pos, v);
  }
  tag(field: number, wire: number): void {
    this.varint(field * 8 + wire);
  }
  uint(field: number, v: number): void {
    if (v === 0) return;
    this.tag(field, VARINT);
    this.varint(v);
  }
  bool(field: number, v: boolean): void {
    if (!v) return;
    this.tag(field, VARINT);
    this.buf[this.pos++] = 1;
  }
  bytes(field: number, b: Uint8Array): void {
    this.tag(field, LEN);
    this.varint(b.length);
    this.buf.set(b, this.pos);
    this.pos += b.length;
  }
  string(field: number, s: string, len: number): void {
    this.tag(field, LEN);
    this.varint(len);
    this.pos += this.buf.write(s, this.pos, 'utf8');
  }
}

function checkUint(v: number, what: string): number {
  if (!Number.isSafeInteger(v) || v < 0) throw new RangeError(`raft frame: ${what} ${v} is not a non-negative safe integer`);
  return v;
}

/** A uint32 field (node ids, partition). */
function checkU32(v: number, what: string): number {
  if (!Number.isInteger(v) || v < 0 || v > 0xffffffff) throw new RangeError(`raft frame: ${what} ${v} is not a uint32`);
  return v;
}

/** Size of a RaftEntry's body. */
function entrySize(index: number, term: number, conf: boolean, data_len: number): number {
  return uintField(1, index) + uintField(2, term) + (conf ? 2 : 0) + lenField(4, data_len);
}

function packedSize(ids: readonly number[]): number {
  let n = 0;
  for (const id of ids) n += varintSize(checkU32(id, 'node id'));
  return n;
}

/** Size of a RaftMessage's body. */
function messageSize(pm: PartitionMessage, topic_len: number): number {
  const m = pm.message;
  let n = lenField(1, topic_len) + uintField(2, checkU32(pm.partition, 'partition')) + uintField(3, checkUint(pm.topic_created_ms, 'topic_created_ms'));
  n += uintField(4, WIRE_TYPE[m.type]) + uintField(5, checkU32(m.from, 'from')) + uintField(6, checkU32(m.to, 'to')) + uintField(7, checkUint(m.term, 'term'));
  switch (m.type) {
    case 'vote':
    case 'pre_vote':
      n += uintField(8, checkUint(m.last_log_index, 'last_log_index')) + uintField(9, checkUint(m.last_log_term, 'last_log_term')) + (m.transfer ? 2 : 0);
      break;
    case 'vote_response':
    case 'pre_vote_response':
      n += m.granted ? 2 : 0;
      break;
    case 'append':
      n += uintField(12, checkUint(m.prev_log_index, 'prev_log_index')) + uintField(13, checkUint(m.prev_log_term, 'prev_log_term')) + uintField(15, checkUint(m.commit, 'commit'));
      for (const e of m.entries) n += lenField(14, entrySize(checkUint(e.index, 'entry index'), checkUint(e.term, 'entry term'), e.kind === 'conf_change', e.data.length));
      break;
    case 'append_response':
      n += (m.success ? 3 : 0) + uintField(17, checkUint(m.match_index, 'match_index')) + uintField(18, checkUint(m.reject_index, 'reject_index'));
      n += uintField(19, checkUint(m.hint_index, 'hint_index')) + uintField(20, checkUint(m.hint_term, 'hint_term'));
      break;
    case 'heartbeat':
      n += uintField(15, checkUint(m.commit, 'commit'));
      break;
    case 'snapshot': {
      const s = m.snapshot;
      n += uintField(21, checkUint(s.meta.index, 'snapshot index')) + uintField(22, checkUint(s.meta.term, 'snapshot term'));
      const v = packedSize(s.meta.conf_state.voters);
      const l = packedSize(s.meta.conf_state.learners);
      if (v > 0) n += lenField(23, v);
      if (l > 0) n += lenField(24, l);
      n += lenField(25, s.data.length);
      break;
    }
    case 'heartbeat_response':
    case 'timeout_now':
      break;
  }
  return n;
}

function writeMessage(o: Out, pm: PartitionMessage, topic_len: number): void {
  const m = pm.message;
  o.string(1, pm.topic, topic_len);
  o.uint(2, pm.partition);
  o.uint(3, pm.topic_created_ms);
  o.uint(4, WIRE_TYPE[m.type]);
  o.uint(5, m.from);
  o.uint(6, m.to);
  o.uint(7, m.term);
  switch (m.type) {
    case 'vote':
    case 'pre_vote':
      o.uint(8, m.last_log_index);
      o.uint(9, m.last_log_term);
      o.bool(10, m.transfer);
      break;
    case 'vote_response':
    case 'pre_vote_response':
      o.bool(11, m.granted);
      break;
    case 'append':
      o.uint(12, m.prev_log_index);
      o.uint(13, m.prev_log_term);
      for (const e of m.entries) {
        const conf = e.kind === 'conf_change';
        o.tag(14, LEN);
        o.varint(entrySize(e.index, e.term, conf, e.data.length));
        o.uint(1, e.index);
        o.uint(2, e.term);
        o.bool(3, conf);
        o.bytes(4, e.data);
      }
      o.uint(15, m.commit);
      break;
    case 'append_response':
      o.bool(16, m.success);
      o.uint(17, m.match_index);
      o.uint(18, m.reject_index);
      o.uint(19, m.hint_index);
      o.uint(20, m.hint_term);
      break;
    case 'heartbeat':
      o.uint(15, m.commit);
      break;
    case 'snapshot': {
      const s = m.snapshot;
      o.uint(21, s.meta.index);
      o.uint(22, s.meta.term);
      for (const [field, ids] of [
        [23, s.meta.conf_state.voters],
        [24, s.meta.conf_state.learners],
      ] as const) {
        if (ids.length === 0) continue;
        o.tag(field, LEN);
        o.varint(packedSize(ids));
        for (const id of ids) o.varint(id);
      }
      o.bytes(25, s.data);
      break;
    }
    case 'heartbeat_response':
    case 'timeout_now':
      break;
  }
}

/**
 * One RaftFrame holding `messages`, from node `from` to node `to`: returns the encoded message, a
 * view that starts 5 bytes into its buffer (the room for the gRPC prefix). `alloc` gives that
 * buffer (at least the size asked for; a pool's buffer may be longer); by default a fresh one.
 */
export function encodeRaftFrame(from: number, to: number, messages: readonly PartitionMessage[], alloc: (size: number) => Buffer = Buffer.allocUnsafe): Buffer {
  const topic_lens = messages.map((pm) => Buffer.byteLength(pm.topic, 'utf8'));
  const sizes = messages.map((pm, i) => messageSize(pm, topic_lens[i]!));
  let size = uintField(1, checkU32(from, 'from')) + uintField(2, checkU32(to, 'to'));
  for (const s of sizes) size += lenField(3, s);
  const whole = alloc(PREFIX_BYTES + size).subarray(0, PREFIX_BYTES + size);
  const o = new Out(whole, PREFIX_BYTES);
  o.uint(1, from);
  o.uint(2, to);
  for (let i = 0; i < messages.length; i++) {
    o.tag(3, LEN);
    o.varint(sizes[i]!);
    const start = o.pos;
    writeMessage(o, messages[i]!, topic_lens[i]!);
    if (o.pos - start !== sizes[i]) throw new Error(`raft frame: message ${i} took ${o.pos - start} bytes, ${sizes[i]} were computed`);
  }
  if (o.pos !== whole.length) throw new Error(`raft frame: ${o.pos} bytes written, ${whole.length} allocated`);
  const message = whole.subarray(PREFIX_BYTES);
  markPrefixed(message, whole);
  return message;
}
