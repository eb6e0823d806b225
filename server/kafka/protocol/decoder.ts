import { malformed } from '../errors.js';
import { kafkaLimits } from '../limits.js';

/*
 * Kafka's classic (non-flexible) primitive types, big-endian (Kafka protocol guide, "Protocol
 * Primitive Types"):
 *
 *   INT8 / INT16 / INT32 / INT64   signed, fixed width
 *   BOOLEAN                        INT8, 0 = false, anything else true
 *   STRING                         INT16 length N >= 0, then N bytes of UTF-8
 *   NULLABLE_STRING                INT16 length N, -1 = null
 *   BYTES                          INT32 length N >= 0, then N bytes
 *   NULLABLE_BYTES / RECORDS       INT32 length N, -1 = null
 *   ARRAY                          INT32 count N, -1 = null (only where nullable), then N elements
 *
 * Every read is bounds-checked: a field that runs past the frame, a negative length or an array
 * longer than the bytes left could hold is a MalformedRequestError (the connection is closed),
 * never an out-of-range read or a huge allocation.
 */
export class Decoder {
  private pos = 0;

  constructor(private readonly buf: Buffer, private readonly array_length_max: number = kafkaLimits.array_length_max) {}

  get offset(): number {
    return this.pos;
  }

  get remaining(): number {
    return this.buf.length - this.pos;
  }

  private need(n: number, what: string): void {
    if (this.buf.length - this.pos < n) {
      throw malformed('TRUNCATED', `${what} needs ${n} bytes at position ${this.pos}, only ${this.buf.length - this.pos} left`, { position: this.pos });
    }
  }

  int8(): number {
    this.need(1, 'int8');
    return this.buf.readInt8(this.pos++);
  }

  bool(): boolean {
    return this.int8() !== 0;
  }

  int16(): number {
    this.need(2, 'int16');
    const v = this.buf.readInt16BE(this.pos);
    this.pos += 2;
    return v;
  }

  int32(): number {
    this.need(4, 'int32');
    const v = this.buf.readInt32BE(this.pos);
    this.pos += 4;
    return v;
  }

  /** INT64 as a number: exact within ±2^53, which every real offset and timestamp is; beyond, handlers refuse the value. */
  int64(): number {
    this.need(8, 'int64');
    const v = this.buf.readBigInt64BE(this.pos);
    this.pos += 8;
    return Number(v);
  }

  nullableString(): string | null {
    const n = this.int16();
    if (n === -1) return null;
    if (n < 0) throw malformed('BAD_LENGTH', `string length ${n} at position ${this.pos - 2}`, { position: this.pos - 2 });
    this.need(n, 'string');
    const s = this.buf.toString('utf8', this.pos, this.pos + n);
    this.pos += n;
    return s;
  }

  string(): string {
    const at = this.pos;
    const s = this.nullableString();
    if (s === null) throw malformed('BAD_LENGTH', `null where a string is required at position ${at}`, { position: at });
    return s;
  }

  /** NULLABLE_BYTES as a view into the frame (no copy): it lives as long as the frame does. */
  nullableBytes(): Buffer | null {
    const n = this.int32();
    if (n === -1) return null;
    if (n < 0) throw malformed('BAD_LENGTH', `bytes length ${n} at position ${this.pos - 4}`, { position: this.pos - 4 });
    this.need(n, 'bytes');
    const b = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return b;
  }

  bytes(): Buffer {
    const at = this.pos;
    const b = this.nullableBytes();
    if (b === null) throw malformed('BAD_LENGTH', `null where bytes are required at position ${at}`, { position: at });
    return b;
  }

  nullableArray<T>(element: (d: Decoder) => T): T[] | null {
    const at = this.pos;
    const n = this.int32();
    if (n === -1) return null;
    if (n < 0) throw malformed('BAD_LENGTH', `array length ${n} at position ${at}`, { position: at });
    // Every element of every array in the APIs served is at least one byte long.
    if (n > this.remaining || n > this.array_length_max) {
      throw malformed('ARRAY_TOO_LONG', `array of ${n} elements at position ${at}, but only ${this.remaining} bytes left (limit ${this.array_length_max} elements)`, { position: at, length: n });
    }
    const out: T[] = [];
    for (let i = 0; i < n; i++) out.push(element(this));
    return out;
  }

  array<T>(element: (d: Decoder) => T): T[] {
    const at = this.pos;
    const a = this.nullableArray(element);
    if (a === null) throw malformed('BAD_LENGTH', `null where an array is required at position ${at}`, { position: at });
    return a;
  }

  int32Array(): number[] {
    return this.array((d) => d.int32());
  }

  /** Every request body must be consumed exactly: bytes left over mean we read a different layout than was sent. */
  end(what: string): void {
    if (this.remaining !== 0) throw malformed('TRAILING_BYTES', `${this.remaining} bytes left over after ${what}`, { remaining: this.remaining });
  }
}
