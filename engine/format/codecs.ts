import { gunzipSync } from 'node:zlib';
import { decompressFrameSync } from 'lz4-napi';
import { uncompressSync } from 'snappy';
import { decompress as zstdDecompress } from 'fzstd';
import { corruptBatch, invalidBatch } from '../base/errors.js';

/*
 * Decompression of a RecordBatch's records section, for the few places that must look inside a
 * batch (compaction, timestamp lookup inside a batch, `dump`, the CLI consumer). Batches are stored
 * and served compressed exactly as producers sent them; nothing on the fetch path decompresses.
 *
 * Kafka's codecs (attributes bits 0-2) and the framing each uses inside RecordBatch v2:
 *   1 gzip    an RFC 1952 gzip stream                              node:zlib
 *   2 snappy  raw snappy (librdkafka), or xerial "SNAPPY" framing   snappy (napi-rs)
 *             (the Java client and kafka-python): a 16-byte header,
 *             then blocks of [int32 BE length][raw snappy block]
 *   3 lz4     an LZ4 frame (the standard frame format)             lz4-napi
 *   4 zstd    a Zstandard frame                                    fzstd (pure JS, decode only)
 */

const XERIAL_MAGIC = Buffer.from([0x82, 0x53, 0x4e, 0x41, 0x50, 0x50, 0x59, 0x00]);
const XERIAL_HEADER_BYTES = 16;
const CODEC_NAMES = ['none', 'gzip', 'snappy', 'lz4', 'zstd'] as const;

/** Name of a compression codec id (attributes & 7), or `codec N` when Kafka defines none. */
export function codecName(codec: number): string {
  return CODEC_NAMES[codec] ?? `codec ${codec}`;
}

function snappyDecode(body: Buffer): Buffer {
  if (body.length < XERIAL_HEADER_BYTES || !body.subarray(0, XERIAL_MAGIC.length).equals(XERIAL_MAGIC)) return uncompressSync(body) as Buffer;
  const parts: Buffer[] = [];
  let pos = XERIAL_HEADER_BYTES;
  while (pos < body.length) {
    if (pos + 4 > body.length) throw new Error(`xerial block length cut at byte ${pos}`);
    const len = body.readInt32BE(pos);
    pos += 4;
    if (len < 0 || pos + len > body.length) throw new Error(`xerial block of ${len} bytes at byte ${pos - 4} runs past the section (${body.length} bytes)`);
    parts.push(uncompressSync(body.subarray(pos, pos + len)) as Buffer);
    pos += len;
  }
  return Buffer.concat(parts);
}

/**
 * The uncompressed bytes of a records section compressed with `codec`. A section that does not
 * decompress is CORRUPT_BATCH (its CRC matched, so the producer sent it so); an unknown codec id is
 * INVALID_BATCH.
 */
export function decompressSection(codec: number, body: Buffer): Buffer {
  if (codec === 0) return body;
  if (codec < 0 || codec > 4) throw invalidBatch(`compression codec ${codec} is not one Kafka defines (0 none, 1 gzip, 2 snappy, 3 lz4, 4 zstd)`, { codec });
  try {
    switch (codec) {
      case 1:
        return gunzipSync(body);
      case 2:
        return snappyDecode(body);
      case 3:
        return decompressFrameSync(body);
      default: {
        const out = zstdDecompress(body);
        return Buffer.from(out.buffer, out.byteOffset, out.byteLength);
      }
    }
  } catch (err) {
    // The libraries throw plain Errors (zlib's Z_DATA_ERROR, snappy's "Corrupt input"...): report them as what they are.
    throw corruptBatch(`${codecName(codec)} records section does not decompress: ${(err as Error).message}`, { codec });
  }
}
