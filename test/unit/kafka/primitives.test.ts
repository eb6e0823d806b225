import { describe, expect, test } from 'vitest';
import { isMalformed, type MalformedCode } from '../../../server/kafka/errors.js';
import { Decoder } from '../../../server/kafka/protocol/decoder.js';
import { Encoder } from '../../../server/kafka/protocol/encoder.js';
import { hex } from './hex.js';
import { FrameReader, decodeRequestHeader, requestFrame, responseFrame } from '../../../server/kafka/protocol/frame.js';


function malformedCode(fn: () => unknown): MalformedCode | 'no error' | 'other error' {
  try {
    fn();
    return 'no error';
  } catch (err) {
    return isMalformed(err) ? err.code : 'other error';
  }
}

describe('primitive types (Kafka protocol guide, "Protocol Primitive Types")', () => {
  test('encodes each type big-endian with the documented length prefixes', () => {
    const e = new Encoder().int8(-1).bool(true).int16(0x1234).int32(-2).int64(2 ** 40 + 5).string('hé').nullableString(null).bytes(Buffer.from([9])).nullableBytes(null).array([1, 2], (e, v) => e.int16(v)).nullableArray(null, () => undefined);
    expect(e.toBuffer()).toEqual(hex(`
      ff                          # int8 -1
      01                          # boolean true
      1234                        # int16
      fffffffe                    # int32 -2
      0000010000000005            # int64 2^40 + 5
      0003 68c3a9                 # string "hé": 3 UTF-8 bytes
      ffff                        # nullable string: null
      00000001 09                 # bytes
      ffffffff                    # nullable bytes: null
      00000002 0001 0002          # array of two int16
      ffffffff                    # nullable array: null
    `));
  });

  test('decodes what it encodes, and views bytes without copying', () => {
    const buf = hex('ff 01 1234 fffffffe 0000010000000005 0003 68c3a9 ffff 00000001 09 ffffffff 00000002 0001 0002 ffffffff');
    const d = new Decoder(buf);
    expect([d.int8(), d.bool(), d.int16(), d.int32(), d.int64(), d.string(), d.nullableString()]).toEqual([-1, true, 0x1234, -2, 2 ** 40 + 5, 'hé', null]);
    const b = d.bytes();
    expect(b.buffer).toBe(buf.buffer);
    expect([b, d.nullableBytes(), d.array((d) => d.int16()), d.nullableArray((d) => d.int8())]).toEqual([Buffer.from([9]), null, [1, 2], null]);
    expect(() => d.end('test')).not.toThrow();
  });

  test('int64 beyond 2^53 decodes to a number (handlers refuse such offsets), and negative values keep their sign', () => {
    expect(new Decoder(hex('7fffffffffffffff')).int64()).toBe(2 ** 63);
    expect(new Decoder(hex('fffffffffffffffe')).int64()).toBe(-2);
  });

  test('every out-of-bounds read is a MalformedRequestError with a code, never a RangeError', () => {
    expect(malformedCode(() => new Decoder(hex('00')).int16())).toBe('TRUNCATED');
    expect(malformedCode(() => new Decoder(hex('0005 6162')).string())).toBe('TRUNCATED');
    expect(malformedCode(() => new Decoder(hex('ffff')).string())).toBe('BAD_LENGTH');
    expect(malformedCode(() => new Decoder(hex('fffe')).nullableString())).toBe('BAD_LENGTH');
    expect(malformedCode(() => new Decoder(hex('ffffffff')).bytes())).toBe('BAD_LENGTH');
    expect(malformedCode(() => new Decoder(hex('80000000')).nullableBytes())).toBe('BAD_LENGTH');
    expect(malformedCode(() => new Decoder(hex('ffffffff')).array((d) => d.int8()))).toBe('BAD_LENGTH');
    expect(malformedCode(() => new Decoder(hex('fffffffe')).nullableArray((d) => d.int8()))).toBe('BAD_LENGTH');
    // More elements than bytes left: refused before any allocation.
    expect(malformedCode(() => new Decoder(hex('7fffffff 00')).array((d) => d.int8()))).toBe('ARRAY_TOO_LONG');
    expect(malformedCode(() => new Decoder(hex('00000003 000000'), 2).array((d) => d.int8()))).toBe('ARRAY_TOO_LONG');
    expect(malformedCode(() => new Decoder(hex('00 01')).end('x'))).toBe('TRAILING_BYTES');
  });

  test('large blobs are referenced by the encoder, not copied', () => {
    const big = Buffer.alloc(100_000, 7);
    const chunks = new Encoder().int32(1).nullableBytes(big).int8(2).chunks();
    expect(chunks.some((c) => c === big)).toBe(true);
    expect(Buffer.concat(chunks).length).toBe(4 + 4 + 100_000 + 1);
  });
});

describe('framing', () => {
  test('request and response frames: size prefix, header v1 / v0, body', () => {
    const body = new Encoder().int32(0x0a0b0c0d);
    expect(Buffer.concat(requestFrame({ api_key: 3, api_version: 1, correlation_id: 9, client_id: 'c' }, body))).toEqual(hex(`
      0000000f      # size: 15 bytes follow
      0003 0001     # api key 3 (Metadata), version 1
      00000009      # correlation id
      0001 63       # client id "c"
      0a0b0c0d      # body
    `));
    expect(Buffer.concat(responseFrame(9, new Encoder().int16(0)))).toEqual(hex('00000006 00000009 0000'));
    expect(decodeRequestHeader(new Decoder(hex('0012 0002 00000007 ffff')))).toEqual({ api_key: 18, api_version: 2, correlation_id: 7, client_id: null });
  });

  test('FrameReader reassembles frames split anywhere and splits frames that arrive together', () => {
    const f = (n: number) => Buffer.concat(requestFrame({ api_key: 18, api_version: 0, correlation_id: n, client_id: 'x'.repeat(n) }, new Encoder()));
    const stream = Buffer.concat([f(1), f(2), f(30), f(4)]);
    for (const step of [1, 2, 3, 7, 13, stream.length]) {
      const r = new FrameReader(1024);
      const got: number[] = [];
      for (let i = 0; i < stream.length; i += step) {
        r.push(stream.subarray(i, i + step));
        for (let fr = r.next(); fr !== null; fr = r.next()) got.push(decodeRequestHeader(new Decoder(fr)).correlation_id);
      }
      expect(got).toEqual([1, 2, 30, 4]);
      expect(r.bufferedBytes).toBe(0);
    }
  });

  test('FrameReader refuses a size prefix out of range before buffering the frame', () => {
    const r = new FrameReader(100);
    r.push(hex('00000065'));
    expect(malformedCode(() => r.next())).toBe('FRAME_TOO_LARGE');
    const s = new FrameReader(100);
    s.push(hex('00000009'));
    expect(malformedCode(() => s.next())).toBe('BAD_FRAME_SIZE');
    const n = new FrameReader(100);
    n.push(hex('ffffffff'));
    expect(malformedCode(() => n.next())).toBe('BAD_FRAME_SIZE');
  });
});
