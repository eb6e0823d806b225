import { malformed } from '../errors.js';
import { Decoder } from './decoder.js';
import { Encoder } from './encoder.js';

/*
 * Framing (Kafka protocol guide, "Common Request and Response Structure"):
 *
 *   RequestOrResponse => Size Message
 *     Size            INT32   bytes that follow (not counting these 4)
 *
 * Request header v1 (every non-flexible request; v2 adds tagged fields, used only by flexible
 * versions, which are not served except ApiVersions v3+ — answered by key, version and correlation
 * id alone, so its tagged fields are never parsed):
 *
 *   request_api_key      INT16
 *   request_api_version  INT16
 *   correlation_id       INT32
 *   client_id            NULLABLE_STRING
 *
 * Response header v0:
 *
 *   correlation_id       INT32
 *
 * A request is at least 10 bytes (the header with a null client id).
 */
export const SIZE_PREFIX_BYTES = 4;
export const REQUEST_HEADER_MIN_BYTES = 10;

export interface RequestHeader {
  api_key: number;
  api_version: number;
  correlation_id: number;
  client_id: string | null;
}

export function decodeRequestHeader(d: Decoder): RequestHeader {
  return { api_key: d.int16(), api_version: d.int16(), correlation_id: d.int32(), client_id: d.nullableString() };
}

export function encodeRequestHeader(e: Encoder, h: RequestHeader): void {
  e.int16(h.api_key).int16(h.api_version).int32(h.correlation_id).nullableString(h.client_id);
}

/** A whole frame as chunks ready for the socket: size prefix, header, then the body's chunks. */
export function frameChunks(header: (e: Encoder) => void, body: Encoder): Buffer[] {
  const head = new Encoder();
  const body_chunks = body.chunks();
  let size = 0;
  for (const c of body_chunks) size += c.length;
  const h = new Encoder();
  header(h);
  const header_bytes = h.toBuffer();
  head.int32(header_bytes.length + size).raw(header_bytes);
  return [head.toBuffer(), ...body_chunks];
}

export function responseFrame(correlation_id: number, body: Encoder): Buffer[] {
  return frameChunks((e) => e.int32(correlation_id), body);
}

export function requestFrame(h: RequestHeader, body: Encoder): Buffer[] {
  return frameChunks((e) => encodeRequestHeader(e, h), body);
}

/**
 * Cuts a byte stream into frames. Holds at most one partial frame (bounded by
 * `frame_size_max_bytes`) plus whatever the socket last delivered; a size prefix out of range is
 * a MalformedRequestError before a byte of the frame is buffered.
 */
export class FrameReader {
  private chunks: Buffer[] = [];
  private buffered_bytes = 0;
  private expected = -1;

  constructor(private readonly frame_size_max_bytes: number, private readonly frame_size_min_bytes = REQUEST_HEADER_MIN_BYTES) {}

  get bufferedBytes(): number {
    return this.buffered_bytes;
  }

  push(chunk: Buffer): void {
    if (chunk.length === 0) return;
    this.chunks.push(chunk);
    this.buffered_bytes += chunk.length;
  }

  /** The next whole frame (without its size prefix), or null until more bytes arrive. */
  next(): Buffer | null {
    if (this.expected < 0) {
      if (this.buffered_bytes < SIZE_PREFIX_BYTES) return null;
      const size = this.take(SIZE_PREFIX_BYTES).readInt32BE(0);
      if (size > this.frame_size_max_bytes) throw malformed('FRAME_TOO_LARGE', `frame of ${size} bytes exceeds frame_size_max_bytes=${this.frame_size_max_bytes}`, { size_bytes: size });
      if (size < this.frame_size_min_bytes) throw malformed('BAD_FRAME_SIZE', `frame size ${size} is below the ${this.frame_size_min_bytes} bytes of a header`, { size_bytes: size });
      this.expected = size;
    }
    if (this.buffered_bytes < this.expected) return null;
    const frame = this.take(this.expected);
    this.expected = -1;
    return frame;
  }

  private take(n: number): Buffer {
    const first = this.chunks[0]!;
    let out: Buffer;
    if (first.length >= n) {
      out = first.subarray(0, n);
      if (first.length === n) this.chunks.shift();
      else this.chunks[0] = first.subarray(n);
    } else {
      out = Buffer.allocUnsafe(n);
      let filled = 0;
      while (filled < n) {
        const c = this.chunks[0]!;
        const k = Math.min(c.length, n - filled);
        c.copy(out, filled, 0, k);
        filled += k;
        if (k === c.length) this.chunks.shift();
        else this.chunks[0] = c.subarray(k);
      }
    }
    this.buffered_bytes -= n;
    return out;
  }
}
