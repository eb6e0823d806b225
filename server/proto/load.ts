import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { ServiceDefinition } from '@grpc/grpc-js';
import protobuf from 'protobufjs';
import { freshPrefixed, markPrefixed, prefixedFrame, request_buffers } from '../rpc/prefixed-send.js';

/**
 * Loads relaylog.proto at runtime with protobufjs and turns each service into a grpc-js
 * ServiceDefinition (what @grpc/proto-loader would do): the one place that knows how messages are
 * (de)serialized. int64 fields come out as JS numbers (offsets and timestamps stay below 2^53; a
 * larger value loses precision and is then refused by range checks), enums as their names, bytes
 * as Buffers that are views into the received message (no copy), and a set oneof names its member
 * in a virtual field (`start: 'offset'`).
 */
// Beside this file when run from source; from dist/server/proto/ the .proto stays in server/proto/.
const PROTO_PATH = [new URL('./relaylog.proto', import.meta.url), new URL('../../../server/proto/relaylog.proto', import.meta.url)]
  .map((u) => fileURLToPath(u))
  .find((p) => existsSync(p));
if (PROTO_PATH === undefined) throw new Error('relaylog.proto not found beside server/proto/load.ts');

export const protoRoot = new protobuf.Root().loadSync(PROTO_PATH, { keepCase: true });
const CONVERT: protobuf.IConversionOptions = { longs: Number, enums: String, defaults: true, oneofs: true };

/**
 * What a request deserializer returns for bytes that are not a valid message: the handler answers
 * INVALID_ARGUMENT (grpc-js would answer INTERNAL if the deserializer threw).
 */
export interface MalformedRequest {
  malformed: string;
}
export const isMalformed = (v: unknown): v is MalformedRequest =>
  typeof v === 'object' && v !== null && typeof (v as { malformed?: unknown }).malformed === 'string' && Object.keys(v).length === 1;

export function messageType(name: string): protobuf.Type {
  return protoRoot.lookupType(`relaylog.v1.${name}`);
}

/** Encodes a plain object (enums by name or number) as message `type`. */
export function encodeMessage(type: protobuf.Type, v: object): Buffer {
  return asBuffer(type.encode(type.fromObject(v)).finish());
}

/** Decodes bytes of message `type` into a plain object (see CONVERT above). Throws on malformed input. */
export function decodeMessage(type: protobuf.Type, b: Uint8Array): Record<string, unknown> {
  return type.toObject(type.decode(b), CONVERT);
}

/**
 * The two replay responses (FetchResponse, SubscribeFrame: `bytes records = 1` and three int64s)
 * encoded without protobufjs's writer, which grows a buffer to fit `records` and then copies it
 * again into the buffer finish() returns: two fresh multi-MiB buffers and two copies per frame.
 * Profiling the 1 KiB-record replay showed that, and the page faults of writing into fresh memory,
 * as about half of the server's CPU (docs/benchmarks.md, "the worst ratio").
 *
 * The frame is written into one scratch buffer reused from frame to frame. That is safe because
 * grpc-js copies what a serializer returns into its own buffer (with the 5-byte gRPC prefix) before
 * serializeMessage() returns, and nothing runs in between (serializers are synchronous): the next
 * frame cannot overwrite bytes still to be sent. Frames larger than SCRATCH_MAX_BYTES get a buffer
 * of their own, so the scratch never holds more than one normal frame's worth of memory.
 *
 * Same wire bytes as encodeMessage (a unit test compares them); anything unusual (a negative or
 * non-integer offset, records not bytes) takes the generic encoder.
 */
export function encodeRecordsFrame(type: protobuf.Type, v: object): Buffer {
  const f = v as { records?: unknown; next_offset?: unknown; high_watermark?: unknown; log_start_offset?: unknown; [FRAME_BUFFER]?: Buffer | null };
  const records = f.records;
  const ints = [f.next_offset, f.high_watermark, f.log_start_offset];
  if (!(records instanceof Uint8Array) || !ints.every((n) => n === undefined || (Number.isSafeInteger(n) && (n as number) >= 0))) return encodeMessage(type, v);
  // proto3: a field at its default (empty bytes, 0) is not written, as protobufjs does.
  let size = records.length > 0 ? 1 + varintSize(records.length) + records.length : 0;
  for (const n of ints) if (n) size += 1 + varintSize(n as number);
  let out: Buffer;
  if (FRAME_BUFFER in f) {
    // A Subscribe frame: its own pooled buffer, with room for grpc-js's prefix (prefixed-send.ts).
    const { message, whole } = prefixedFrame(size);
    out = message;
    f[FRAME_BUFFER] = whole;
  } else if (size > SCRATCH_MAX_BYTES) out = Buffer.allocUnsafe(size);
  else {
    if (scratch.length < size) scratch = Buffer.allocUnsafe(Math.min(SCRATCH_MAX_BYTES, Math.max(size, 2 * scratch.length)));
    out = scratch.subarray(0, size);
  }
  let pos = 0;
  if (records.length > 0) {
    out[pos++] = 0x0a; // field 1, length-delimited
    pos = writeVarint(out, pos, records.length);
    out.set(records, pos);
    pos += records.length;
  }
  ints.forEach((n, i) => {
    if (!n) return;
    out[pos++] = (i + 2) << 3; // fields 2, 3, 4, varint
    pos = writeVarint(out, pos, n as number);
  });
  return out;
}

/**
 * A frame object that carries this key (initially null) is encoded into a pooled buffer with room
 * for the gRPC prefix (prefixed-send.ts), and the key is set to that buffer: its sender gives it
 * back to `frame_buffers` once the frame is written (runSubscription's write callback).
 */
export const FRAME_BUFFER = Symbol('relaylog.frame_buffer');

/** Room for the largest Subscribe frame (16 MiB, server/rpc/limits.ts) and its fields. */
const SCRATCH_MAX_BYTES = 16 * 1024 * 1024 + 64;
let scratch = Buffer.alloc(0);

/** Bytes of `n` (a non-negative safe integer) as a protobuf base-128 varint. */
export function varintSize(n: number): number {
  let size = 1;
  while (n >= 128) {
    n = Math.floor(n / 128);
    size++;
  }
  return size;
}

/** Writes `n` as a varint at `pos`; returns the position after it. */
export function writeVarint(buf: Buffer, pos: number, n: number): number {
  while (n >= 128) {
    buf[pos++] = (n % 128) | 128;
    n = Math.floor(n / 128);
  }
  buf[pos++] = n;
  return pos;
}

/** ProduceRequest's `acks` by name (enums: String above) or number, as the enum defines them. */
const ACKS = new Map<unknown, number>([
  ['ACKS_ALL', 0],
  ['ACKS_LEADER', 1],
  [0, 0],
  [1, 1],
]);

/** Record sets at least this large are encoded with room for the gRPC prefix in front (no second copy). */
const PREFIXED_REQUEST_MIN_BYTES = 16 * 1024;
/**
 * A ProduceRequest (`string topic = 1; uint32 partition = 2; bytes records = 3; Acks acks = 4`),
 * the client's one large request, encoded without protobufjs's writer. Through protobufjs and
 * grpc-js a record set was copied twice, each time into a fresh buffer as large as itself (the
 * writer's, then grpc-js's with the 5-byte gRPC prefix): at 64 KiB records that was a third of
 * the producing client's CPU, page faults on the fresh memory included (docs/benchmarks.md,
 * "Session 9"). Here the record set is copied once, into one buffer that leaves room for the
 * prefix; it is marked (prefixed-send.ts), so a client that installed the client-side wrap frames
 * it in place. That buffer is never reused: grpc-js may hold it for a retry as long as it likes.
 * `into` gives the caller's own buffer of the size asked for instead (a pooled one the client takes
 * back once the server has answered: see PRE_ENCODED).
 *
 * Same wire bytes as encodeMessage (a unit test compares them); anything unusual (a partition that
 * is not a uint32, an unknown acks, records that are not bytes) takes the generic encoder.
 */
export function encodeProduceRequest(type: protobuf.Type, v: object, into?: (size: number) => Buffer): Buffer {
  const r = v as { topic?: unknown; partition?: unknown; records?: unknown; acks?: unknown };
  const topic = r.topic ?? '';
  const partition = r.partition ?? 0;
  const records = r.records ?? EMPTY;
  const acks = ACKS.get(r.acks ?? 0);
  if (typeof topic !== 'string' || !(records instanceof Uint8Array) || acks === undefined || !Number.isInteger(partition) || (partition as number) < 0 || (partition as number) > 0xffffffff) {
    return encodeMessage(type, v);
  }
  const topic_bytes = Buffer.byteLength(topic);
  // Non-ASCII (topic names are ASCII): protobufjs's UTF-8 differs from Buffer's for a lone surrogate.
  if (topic_bytes !== topic.length) return encodeMessage(type, v);
  // proto3: a field at its default ('', 0, empty bytes, ACKS_ALL) is not written, as protobufjs does.
  const size =
    (topic_bytes > 0 ? 1 + varintSize(topic_bytes) + topic_bytes : 0) +
    (partition !== 0 ? 1 + varintSize(partition as number) : 0) +
    (records.length > 0 ? 1 + varintSize(records.length) + records.length : 0) +
    (acks !== 0 ? 2 : 0);
  const out = into !== undefined ? into(size) : records.length >= PREFIXED_REQUEST_MIN_BYTES ? freshPrefixed(size) : Buffer.allocUnsafe(size);
  let pos = 0;
  if (topic_bytes > 0) {
    out[pos++] = 0x0a; // field 1, length-delimited
    pos = writeVarint(out, pos, topic_bytes);
    pos += out.write(topic, pos, 'utf8');
  }
  if (partition !== 0) {
    out[pos++] = 0x10; // field 2, varint
    pos = writeVarint(out, pos, partition as number);
  }
  if (records.length > 0) {
    out[pos++] = 0x1a; // field 3, length-delimited
    pos = writeVarint(out, pos, records.length);
    out.set(records, pos);
    pos += records.length;
  }
  if (acks !== 0) {
    out[pos++] = 0x20; // field 4, varint
    out[pos++] = acks;
  }
  return out;
}
const EMPTY = new Uint8Array(0);

/**
 * A request object that carries this key is already encoded: the serializer sends
 * `message` (a view PREFIX_BYTES into `whole`, marked again for framing in place on every send, as
 * each redirect of a produce sends it once more) instead of encoding the object.
 */
export const PRE_ENCODED = Symbol('relaylog.pre_encoded');
export interface PreEncoded {
  message: Buffer;
  whole: Buffer;
}

/** A ProduceRequest as the client builds it, possibly carrying its encoding. */
export type ProduceRequestObject = { [PRE_ENCODED]?: PreEncoded } & Record<string, unknown>;

/** Record sets from this size on are pre-encoded into pooled buffers (below it, a fresh buffer is cheap). */
const POOLED_REQUEST_MIN_BYTES = 64 * 1024;
const PRODUCE_REQUEST = messageType('ProduceRequest');

/**
 * The client side of a large produce (RelaylogClient.produce, ProducePipeline.send): a request
 * whose record set is 64 KiB or more is encoded once, into a pooled buffer (`request_buffers`:
 * fresh memory costs a page fault per 4 KiB to fill) that the serializer then sends as it is, on
 * every redirect too. Returns that buffer, for the caller to give back to `request_buffers` once
 * the server has answered the request OK (it then had all of it, so nothing, neither grpc-js's
 * retry buffer nor a write still queued, can read the buffer again; after a failure the buffer is
 * left to the GC), or null when the request is left to the serializer.
 */
export function preEncodeProduceRequest(req: ProduceRequestObject): Buffer | null {
  if (!(req.records instanceof Uint8Array) || req.records.length < POOLED_REQUEST_MIN_BYTES) return null;
  let pre: PreEncoded | null = null;
  encodeProduceRequest(PRODUCE_REQUEST, req, (size) => (pre = prefixedFrame(size, request_buffers)).message);
  if (pre === null) return null; // the generic encoder took it (nothing pooled)
  req[PRE_ENCODED] = pre;
  return (pre as PreEncoded).whole;
}

function serializeProduceRequest(type: protobuf.Type, v: object): Buffer {
  const pre = (v as { [PRE_ENCODED]?: PreEncoded })[PRE_ENCODED];
  if (pre === undefined) return encodeProduceRequest(type, v);
  markPrefixed(pre.message, pre.whole);
  return pre.message;
}

const RECORDS_FRAMES = new Set(['FetchResponse', 'SubscribeFrame']);

function decodeRequest(type: protobuf.Type, b: Buffer): unknown {
  try {
    return decodeMessage(type, b);
  } catch (err) {
    return { malformed: `malformed ${type.name}: ${(err as Error).message}` } satisfies MalformedRequest;
  }
}

function definition(service: string): ServiceDefinition {
  const svc = protoRoot.lookupService(`relaylog.v1.${service}`);
  const def: Record<string, unknown> = {};
  for (const m of svc.methodsArray) {
    m.resolve();
    const req = m.resolvedRequestType!;
    const res = m.resolvedResponseType!;
    def[m.name] = {
      path: `/relaylog.v1.${service}/${m.name}`,
      requestStream: !!m.requestStream,
      responseStream: !!m.responseStream,
      requestSerialize: req.name === 'ProduceRequest' ? (v: object) => serializeProduceRequest(req, v) : (v: object) => encodeMessage(req, v),
      requestDeserialize: (b: Buffer) => decodeRequest(req, b),
      responseSerialize: RECORDS_FRAMES.has(res.name) ? (v: object) => encodeRecordsFrame(res, v) : (v: object) => encodeMessage(res, v),
      responseDeserialize: (b: Buffer) => decodeMessage(res, b),
      originalName: m.name,
    };
  }
  return def as unknown as ServiceDefinition;
}

const asBuffer = (u: Uint8Array): Buffer => (Buffer.isBuffer(u) ? u : Buffer.from(u.buffer, u.byteOffset, u.length));

export const AdminService = definition('Admin');
export const LogService = definition('Log');
/** Node-to-node Raft traffic of a cluster (replication/raft/transport). */
export const RaftService = definition('Raft');
