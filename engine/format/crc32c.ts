import { crc32c as nativeCrc32c } from '@node-rs/crc32';

/**
 * CRC-32C (Castagnoli), as used by Kafka RecordBatch v2. Backed by @node-rs/crc32 (SIMD / SSE4.2).
 * Check value: crc32c("123456789") = 0xE3069283.
 */
export function crc32c(buf: Uint8Array, initial = 0): number {
  return nativeCrc32c(buf as Buffer, initial) >>> 0;
}
