/**
 * Zig-zag varints (Kafka ByteUtils.writeVarint / writeVarlong). Known encodings are written out by
 * hand; everything else is compared with the independent BigInt implementation in
 * test/golden/reference-batch.ts, which uses Kafka's literal `(n << 1) ^ (n >> 63)`.
 */
import { describe, expect, test } from 'vitest';
import { readZigzag, writeZigzag, zigzagSize } from '../../../engine/format/varint.js';
import { refVarint } from '../../golden/reference-batch.js';

const enc = (v: number): string => {
  const b = Buffer.alloc(16);
  return b.subarray(0, writeZigzag(b, 0, v)).toString('hex');
};

const dec = (hexBytes: string): { value: number; pos: number } => {
  const next = { pos: -1 };
  const value = readZigzag(Buffer.from(hexBytes, 'hex'), 0, next);
  return { value, pos: next.pos };
};

describe('known encodings', () => {
  test.each([
    [0, '00'],
    [-1, '01'],
    [1, '02'],
    [-2, '03'],
    [2, '04'],
    [63, '7e'],
    [-64, '7f'],
    [64, '8001'],
    [-65, '8101'],
    [127, 'fe01'],
    [128, '8002'],
    [150, 'ac02'],
    [300, 'd804'],
    [8191, 'fe7f'],
    [-8192, 'ff7f'],
    [8192, '808001'],
    [-8193, '818001'],
    [2 ** 31 - 1, 'feffffff0f'],
    [-(2 ** 31), 'ffffffff0f'],
    [2 ** 31, '8080808010'],
    [2 ** 50, '8080808080808004'],
    [-(2 ** 50), 'ffffffffffffff03'],
  ])('%d <-> %s', (value, hex) => {
    expect(enc(value)).toBe(hex);
    expect(Buffer.from(refVarint(value)).toString('hex')).toBe(hex);
    expect(dec(hex)).toEqual({ value, pos: hex.length / 2 });
    expect(zigzagSize(value)).toBe(hex.length / 2);
  });
});

describe('round trips and sizes', () => {
  // Every width boundary up to 8 bytes: the largest and smallest value of each width and one past.
  const boundaries: number[] = [];
  for (let k = 1; k <= 7; k++) {
    const lim = 2 ** (7 * k - 1);
    boundaries.push(lim - 1, lim, -lim, -lim - 1);
  }
  const timestamps = [1_700_000_000_000, -1_700_000_000_000, 2 ** 41 + 12_345, 2 ** 50 - 1, -(2 ** 50) + 1, 2 ** 52, -(2 ** 52), 2 ** 53 - 1];

  test.each([...boundaries, ...timestamps])('%d: read(write(v)) = v, size as claimed, bytes as Kafka writes them', (v) => {
    const buf = Buffer.alloc(16);
    const end = writeZigzag(buf, 0, v);
    expect(end).toBe(zigzagSize(v));
    expect(buf.subarray(0, end).toString('hex')).toBe(Buffer.from(refVarint(v)).toString('hex'));
    const next = { pos: 0 };
    expect(readZigzag(buf, 0, next)).toBe(v);
    expect(next.pos).toBe(end);
  });

  test('width steps exactly at ±2^(7k-1)', () => {
    for (let k = 1; k <= 7; k++) {
      const lim = 2 ** (7 * k - 1);
      expect(zigzagSize(lim - 1)).toBe(k);
      expect(zigzagSize(-lim)).toBe(k);
      expect(zigzagSize(lim)).toBe(k + 1);
      expect(zigzagSize(-lim - 1)).toBe(k + 1);
    }
  });

  test('writes at an offset, touches nothing else, and reads back from the middle of a buffer', () => {
    const buf = Buffer.alloc(32, 0xaa);
    let pos = 5;
    const values = [0, -1, 300, -(2 ** 31), 2 ** 50];
    for (const v of values) pos = writeZigzag(buf, pos, v);
    expect(buf.subarray(0, 5).equals(Buffer.alloc(5, 0xaa))).toBe(true);
    expect(buf.subarray(pos).equals(Buffer.alloc(32 - pos, 0xaa))).toBe(true);
    const next = { pos: 5 };
    const back = values.map(() => readZigzag(buf, next.pos, next));
    expect(back).toEqual(values);
    expect(next.pos).toBe(pos);
  });

  test('reads from a plain Uint8Array', () => {
    const next = { pos: 0 };
    expect(readZigzag(new Uint8Array([0x00, 0xac, 0x02]), 1, next)).toBe(150);
    expect(next.pos).toBe(3);
  });

  test('a non-minimal (padded) encoding still decodes, as in Kafka', () => {
    expect(dec('8000')).toEqual({ value: 0, pos: 2 });
    expect(dec('818000')).toEqual({ value: -1, pos: 3 });
  });
});

describe('malformed input', () => {
  test('an empty buffer, or a position at its end, is a RangeError', () => {
    expect(() => readZigzag(Buffer.alloc(0), 0, { pos: 0 })).toThrow(RangeError);
    expect(() => readZigzag(Buffer.from([0x02]), 1, { pos: 0 })).toThrow(RangeError);
  });

  test('a varint cut off mid-way is a RangeError and does not move `next`', () => {
    for (const bad of ['80', '8080', 'ffffffff', 'ffffffffffffffffff']) {
      const next = { pos: 123 };
      expect(() => readZigzag(Buffer.from(bad, 'hex'), 0, next), bad).toThrow(/past the end/);
      expect(next.pos).toBe(123);
    }
  });

  test('more than 10 bytes is a RangeError; 10 bytes is the most a varlong may take', () => {
    expect(() => readZigzag(Buffer.alloc(11, 0x80), 0, { pos: 0 })).toThrow(/longer than 10 bytes/);
    expect(() => readZigzag(Buffer.from('8080808080808080808001', 'hex'), 0, { pos: 0 })).toThrow(/longer than 10 bytes/);
    const next = { pos: 0 };
    expect(typeof readZigzag(Buffer.from('80808080808080808001', 'hex'), 0, next)).toBe('number');
    expect(next.pos).toBe(10);
  });
});
