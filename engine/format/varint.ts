/**
 * Zig-zag varints as Kafka records use them (protobuf-style, little-endian base-128 groups).
 * Values are JS numbers: exact for -2^52 <= v < 2^53 (the zig-zag image 2|v|-1 of a more negative
 * value no longer fits a double), which covers every timestamp delta and length.
 */

export function zigzagSize(value: number): number {
  let v = value >= 0 ? value * 2 : -value * 2 - 1;
  let n = 1;
  while (v >= 128) {
    v = Math.floor(v / 128);
    n++;
  }
  return n;
}

export function writeZigzag(buf: Buffer, pos: number, value: number): number {
  let v = value >= 0 ? value * 2 : -value * 2 - 1;
  while (v >= 128) {
    buf[pos++] = (v % 128) | 0x80;
    v = Math.floor(v / 128);
  }
  buf[pos++] = v;
  return pos;
}

/** Reads a zig-zag varint at `pos`; returns the value and stores the next position in `next.pos`. Throws RangeError if truncated. */
export function readZigzag(buf: Uint8Array, pos: number, next: { pos: number }): number {
  let result = 0;
  let mul = 1;
  for (let i = 0; i < 10; i++) {
    if (pos >= buf.length) throw new RangeError('varint runs past the end of the buffer');
    const b = buf[pos++]!;
    result += (b & 0x7f) * mul;
    if ((b & 0x80) === 0) {
      next.pos = pos;
      // zig-zag decode without 32-bit truncation
      return result % 2 === 0 ? result / 2 : -(result + 1) / 2;
    }
    mul *= 128;
  }
  throw new RangeError('varint longer than 10 bytes');
}
