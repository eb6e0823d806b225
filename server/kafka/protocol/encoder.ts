/*
 * Writes Kafka's classic primitive types (see decoder.ts for the table). Small fields go into one
 * growing buffer; large byte blobs (record sets) are kept as references and emitted as separate
 * chunks, so a Fetch response hands the log's read buffers to the socket without copying them.
 */
const INLINE_MAX_BYTES = 4096;

export class Encoder {
  private buf = Buffer.allocUnsafe(256);
  private pos = 0;
  private readonly done: Buffer[] = [];
  private done_bytes = 0;

  get size(): number {
    return this.done_bytes + this.pos;
  }

  private ensure(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    const next = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.pos + n));
    this.buf.copy(next, 0, 0, this.pos);
    this.buf = next;
  }

  int8(v: number): this {
    this.ensure(1);
    this.buf.writeInt8(v, this.pos++);
    return this;
  }

  bool(v: boolean): this {
    return this.int8(v ? 1 : 0);
  }

  int16(v: number): this {
    this.ensure(2);
    this.buf.writeInt16BE(v, this.pos);
    this.pos += 2;
    return this;
  }

  int32(v: number): this {
    this.ensure(4);
    this.buf.writeInt32BE(v, this.pos);
    this.pos += 4;
    return this;
  }

  int64(v: number): this {
    this.ensure(8);
    this.buf.writeBigInt64BE(BigInt(Math.trunc(v)), this.pos);
    this.pos += 8;
    return this;
  }

  nullableString(s: string | null): this {
    if (s === null) return this.int16(-1);
    const n = Buffer.byteLength(s, 'utf8');
    this.int16(n);
    this.ensure(n);
    this.pos += this.buf.write(s, this.pos, 'utf8');
    return this;
  }

  string(s: string): this {
    return this.nullableString(s);
  }

  nullableBytes(b: Buffer | null): this {
    if (b === null) return this.int32(-1);
    this.int32(b.length);
    return this.raw(b);
  }

  bytes(b: Buffer): this {
    return this.nullableBytes(b);
  }

  /** Appends bytes as they are; blobs above a few KiB are referenced, not copied. */
  raw(b: Buffer): this {
    if (b.length <= INLINE_MAX_BYTES) {
      this.ensure(b.length);
      b.copy(this.buf, this.pos);
      this.pos += b.length;
      return this;
    }
    this.flushInline();
    this.done.push(b);
    this.done_bytes += b.length;
    return this;
  }

  nullableArray<T>(items: readonly T[] | null, element: (e: Encoder, item: T) => void): this {
    if (items === null) return this.int32(-1);
    this.int32(items.length);
    for (const it of items) element(this, it);
    return this;
  }

  array<T>(items: readonly T[], element: (e: Encoder, item: T) => void): this {
    return this.nullableArray(items, element);
  }

  int32Array(items: readonly number[]): this {
    return this.array(items, (e, v) => e.int32(v));
  }

  private flushInline(): void {
    if (this.pos === 0) return;
    this.done.push(this.buf.subarray(0, this.pos));
    this.done_bytes += this.pos;
    this.buf = Buffer.allocUnsafe(256);
    this.pos = 0;
  }

  /** The encoded bytes as chunks in order (the encoder must not be used afterwards). */
  chunks(): Buffer[] {
    this.flushInline();
    return this.done;
  }

  toBuffer(): Buffer {
    return Buffer.concat(this.chunks());
  }
}
