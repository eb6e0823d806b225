/**
 * CRC-32C (Castagnoli) — the checksum of every RecordBatch v2. Checked against published vectors
 * and against an independent bit-by-bit implementation (test/golden/reference-batch.ts).
 */
import { describe, expect, test } from 'vitest';
import { crc32c } from '../../../engine/format/crc32c.js';
import { refCrc32c } from '../../golden/reference-batch.js';

const hex = (s: string) => Buffer.from(s.replace(/\s+/g, ''), 'hex');

/** Deterministic bytes (xorshift32), so failures reproduce. */
function bytes(n: number, seed: number): Buffer {
  const b = Buffer.alloc(n);
  let x = seed | 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    b[i] = x & 0xff;
  }
  return b;
}

describe('CRC-32C published vectors', () => {
  test('check value: crc32c("123456789") = 0xE3069283', () => {
    expect(crc32c(Buffer.from('123456789'))).toBe(0xe3069283);
    // ... and not the IEEE CRC-32 check value (0xCBF43926): the polynomial really is Castagnoli's
    expect(crc32c(Buffer.from('123456789'))).not.toBe(0xcbf43926);
  });

  // RFC 3720 (iSCSI) appendix B.4. The RFC prints the CRC bytes as sent (least significant first).
  test.each([
    ['32 bytes of zeros', Buffer.alloc(32, 0x00), 0x8a9136aa],
    ['32 bytes of 0xFF', Buffer.alloc(32, 0xff), 0x62a8ab43],
    ['32 ascending bytes 0x00..0x1F', Buffer.from(Array.from({ length: 32 }, (_, i) => i)), 0x46dd794e],
    ['32 descending bytes 0x1F..0x00', Buffer.from(Array.from({ length: 32 }, (_, i) => 31 - i)), 0x113fdb5c],
    [
      'an iSCSI SCSI Read(10) command PDU',
      hex('01c00000 00000000 00000000 00000000 14000000 00000400 00000014 00000018 28000000 00000000 02000000 00000000'),
      0xd9963a56,
    ],
  ])('RFC 3720 B.4: %s', (name, data, expected) => {
    expect(data.length).toBe(name.startsWith('an iSCSI') ? 48 : 32);
    expect(crc32c(data)).toBe(expected);
    expect(refCrc32c(data)).toBe(expected); // the reference agrees with the RFC too
  });

  test('other well-known values', () => {
    expect(crc32c(Buffer.alloc(0))).toBe(0);
    expect(crc32c(Buffer.from('a'))).toBe(0xc1d04330);
    expect(crc32c(Buffer.from('The quick brown fox jumps over the lazy dog'))).toBe(0x22620404);
  });
});

describe('CRC-32C behaviour', () => {
  test('always an unsigned 32-bit integer', () => {
    for (let n = 0; n < 64; n++) {
      const c = crc32c(bytes(n, n + 1));
      expect(Number.isInteger(c)).toBe(true);
      expect(c).toBeGreaterThanOrEqual(0);
      expect(c).toBeLessThanOrEqual(0xffffffff);
    }
  });

  test('agrees with the bit-by-bit reference for every length 0..300 and a few large inputs', () => {
    for (let n = 0; n <= 300; n++) {
      const b = bytes(n, 0x9e3779b9 ^ n);
      expect(crc32c(b), `length ${n}`).toBe(refCrc32c(b));
    }
    for (const n of [4096, 65_537]) {
      const b = bytes(n, n);
      expect(crc32c(b)).toBe(refCrc32c(b));
    }
  });

  test('unaligned views (subarrays at odd offsets) checksum only their own bytes', () => {
    const big = bytes(200, 42);
    for (const [start, end] of [
      [1, 2],
      [3, 40],
      [7, 199],
      [13, 13],
    ] as const) {
      expect(crc32c(big.subarray(start, end))).toBe(refCrc32c(big, start, end));
    }
  });

  test('a plain Uint8Array is accepted like a Buffer', () => {
    const u = new Uint8Array([0x31, 0x32, 0x33, 0x34, 0x35, 0x36, 0x37, 0x38, 0x39]);
    expect(crc32c(u)).toBe(0xe3069283);
    expect(crc32c(u.subarray(2, 6))).toBe(crc32c(Buffer.from('3456')));
  });

  test('incremental: crc(a ++ b) = crc(b, initial = crc(a)) at every split point', () => {
    const all = bytes(97, 7);
    for (let cut = 0; cut <= all.length; cut++) {
      expect(crc32c(all.subarray(cut), crc32c(all.subarray(0, cut)))).toBe(crc32c(all));
    }
  });

  test('every single-bit error in a 256-byte message changes the CRC', () => {
    const msg = bytes(256, 99);
    const good = crc32c(msg);
    for (let i = 0; i < msg.length; i++) {
      for (let bit = 0; bit < 8; bit++) {
        msg[i] = msg[i]! ^ (1 << bit);
        expect(crc32c(msg)).not.toBe(good);
        msg[i] = msg[i]! ^ (1 << bit);
      }
    }
    expect(crc32c(msg)).toBe(good);
  });
});
