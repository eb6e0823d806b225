import { createRequire } from 'node:module';
import { BufferPool } from '../../engine/base/buffer-pool.js';

/**
 * Subscribe frames sent without grpc-js's copy.
 *
 * grpc-js (1.14) serializes a server's message and then copies it into a fresh buffer with the
 * 5-byte gRPC message prefix (BaseServerInterceptingCall.serializeMessage). For a 4 MiB replay
 * frame that fresh buffer costs a page fault per 4 KiB: measured here, 2.2 ms per 4 MiB frame
 * against 0.2 ms into reused memory, on the one event loop that also takes produce requests.
 *
 * So a Subscribe frame is encoded into a pooled buffer that leaves 5 bytes of room in front
 * (`prefixedFrame`), and grpc-js's serializeMessage is wrapped: a message with that room gets its
 * prefix written in place and is sent as it is. The buffer goes back to the pool in the write
 * callback, which grpc-js calls once the HTTP/2 stream has written it (frame_buffers below).
 * Any other message takes grpc-js's own path (a prefix and a copy), byte for byte as before.
 *
 * This reaches into a grpc-js internal (as flow-control.ts does). If this grpc-js has no such
 * method, nothing is wrapped, `installPrefixedSend()` returns false and frames are copied by
 * grpc-js as usual: correct, only slower. A unit test checks the wrap is in place for the grpc-js
 * this package pins.
 */

/** Where a prefixed message's whole buffer is (the message is a view 5 bytes into it). */
const PREFIXED = new WeakMap<Uint8Array, Buffer>();
const PREFIX_BYTES = 5;
const WRAPPED = Symbol('relaylog.prefixed_send');

/**
 * Pooled buffers for Subscribe frames (distinct from the read pool: these live until sent). A
 * frame's buffer is its records plus at most 64 bytes (prefix and fields); 16 per size class cover
 * eight catch-up readers with two frames each in flight. Kept buffers are memory the process
 * holds after a burst of replays: at most 16 per size class in use.
 */
export const frame_buffers = new BufferPool(16, 64);

/**
 * Large produce requests' buffers (client side: RelaylogClient.produce and ProducePipeline),
 * shared by the process's clients: 16 per size class covers a producer with 8 large requests in
 * flight twice over. A buffer returns here once the server answered its request OK. At most
 * 64 MiB is kept after a burst of large produces.
 */
export const request_buffers = new BufferPool(16, 64, 64 * 1024 * 1024);

/**
 * A message buffer of `size` bytes with room for the gRPC prefix in front, from `pool`. Returns
 * the message view (to be filled and returned by the serializer) and the whole buffer (to be
 * given back to `pool` once sent).
 */
export function prefixedFrame(size: number, pool: BufferPool = frame_buffers): { message: Buffer; whole: Buffer } {
  const whole = pool.take(size + PREFIX_BYTES);
  const message = whole.subarray(PREFIX_BYTES, PREFIX_BYTES + size);
  PREFIXED.set(message, whole);
  return { message, whole };
}

/**
 * Marks `message`, a view starting PREFIX_BYTES into `whole`, as sendable in place by either wrap
 * (a Raft frame: replication/raft/transport/frame-codec.ts). Whoever owns `whole` decides when it
 * may be reused: on the client side only once the write's callback has run on a channel without
 * grpc-js's retry buffer (a buffered message's callback runs before it is sent), as the Raft
 * transport's channels are (grpc-transport.ts, frame_pool).
 */
export function markPrefixed(message: Buffer, whole: Buffer): void {
  if (message.buffer === whole.buffer && message.byteOffset - whole.byteOffset === PREFIX_BYTES) PREFIXED.set(message, whole);
}

/**
 * A fresh message buffer of `size` bytes with room for the gRPC prefix in front, marked so that
 * either wrap frames it in place. Not pooled: whoever sends it may keep it as long as it likes
 * (a client's grpc-js holds a message for retries).
 */
export function freshPrefixed(size: number): Buffer {
  const whole = Buffer.allocUnsafe(PREFIX_BYTES + size);
  const message = whole.subarray(PREFIX_BYTES);
  PREFIXED.set(message, whole);
  return message;
}

/** Writes the gRPC message prefix (not compressed, length) into the first 5 bytes of `out`. */
function writePrefix(out: Buffer, length: number): Buffer {
  out.writeUInt8(0, 0); // not compressed
  out.writeUInt32BE(length, 1);
  return out;
}

/** `message` with its prefix written in front, in place, if it was marked; else null. */
function inPlace(message: Uint8Array): Buffer | null {
  const whole = PREFIXED.get(message);
  if (whole === undefined || message.byteOffset - whole.byteOffset !== PREFIX_BYTES) return null;
  PREFIXED.delete(message);
  return writePrefix(whole.subarray(0, PREFIX_BYTES + message.byteLength), message.byteLength);
}

type Method = (this: unknown, ...args: never[]) => unknown;

/**
 * Replaces method `name` of the prototype `find()` returns by `wrap(original)`, once per process
 * (a second call finds the mark and does nothing). False, with nothing wrapped, if this grpc-js has
 * no such prototype or method.
 */
function wrapOnce(find: (require: NodeJS.Require) => object | undefined, name: string, wrap: (original: Method) => Method): boolean {
  let proto: Record<string, unknown> | undefined;
  try {
    proto = find(createRequire(import.meta.url)) as Record<string, unknown> | undefined;
  } catch {
    return false;
  }
  const original = proto?.[name];
  if (proto === undefined || typeof original !== 'function') return false;
  if ((original as { [WRAPPED]?: boolean })[WRAPPED]) return true;
  const wrapped = wrap(original as Method);
  Object.defineProperty(wrapped, WRAPPED, { value: true });
  proto[name] = wrapped;
  return true;
}

let client_installed: boolean | null = null;

/**
 * Wraps grpc-js's client-side framing (the identity "compression" handler's writeMessage) once per
 * process, so that a marked message is framed in place instead of copied behind a fresh prefix.
 * Returns false (and wraps nothing: messages are copied as usual) if this grpc-js has no such method.
 */
export function installClientPrefixedSend(): boolean {
  client_installed ??= wrapOnce(
    (require) => {
      const { CompressionFilter } = require('@grpc/grpc-js/build/src/compression-filter.js') as { CompressionFilter?: new (o: object, s: object) => { sendCompression?: object } };
      const handler = CompressionFilter === undefined ? undefined : new CompressionFilter({}, {}).sendCompression;
      return handler === undefined ? undefined : (Object.getPrototypeOf(handler) as object);
    },
    'writeMessage',
    (original) =>
      function (this: unknown, message: Buffer, compress: boolean): Promise<Buffer> {
        const out = compress ? null : inPlace(message);
        return out !== null ? Promise.resolve(out) : (original as (this: unknown, m: Buffer, c: boolean) => Promise<Buffer>).call(this, message, compress);
      } as Method,
  );
  return client_installed;
}

interface SerializingCall {
  handler: { serialize(value: unknown): Buffer };
}

let installed: boolean | null = null;

/** Wraps grpc-js's server-side serializeMessage once per process; true if it is wrapped. */
export function installPrefixedSend(): boolean {
  installed ??= wrapOnce(
    (require) => (require('@grpc/grpc-js/build/src/server-interceptors.js') as { BaseServerInterceptingCall?: { prototype: object } }).BaseServerInterceptingCall?.prototype,
    'serializeMessage',
    () =>
      function (this: SerializingCall, value: unknown): Buffer {
        const message = this.handler.serialize(value);
        const framed = inPlace(message);
        if (framed !== null) return framed;
        // grpc-js's own: a fresh buffer with the prefix, the message copied after it.
        const out = Buffer.allocUnsafe(message.byteLength + PREFIX_BYTES);
        message.copy(out, PREFIX_BYTES);
        return writePrefix(out, message.byteLength);
      } as Method,
  );
  return installed;
}
