/**
 * A deliberately naive, independent Kafka RecordBatch v2 builder, written from the published layout
 * (https://kafka.apache.org/documentation/#recordbatch and Kafka's DefaultRecordBatch.java /
 * DefaultRecord.java), NOT from engine/format. It imports nothing from the engine, so a bug shared
 * with our encoder would have to be made twice, differently:
 *
 *   - bytes are pushed one at a time into a plain number[] (no Buffer.write* helpers);
 *   - varints use Kafka's literal formula on 64-bit BigInts, `(n << 1) ^ (n >> 63)`, then
 *     7-bit groups least-significant first (ByteUtils.writeVarlong), where the engine uses float
 *     arithmetic on JS numbers;
 *   - CRC-32C is computed bit by bit from the reflected Castagnoli polynomial 0x82F63B78 (no table,
 *     no native code), where the engine uses @node-rs/crc32.
 */

export interface RefHeader {
  key: string;
  value: Uint8Array | null;
}

export interface RefRecord {
  key: Uint8Array | null;
  value: Uint8Array | null;
  timestamp: bigint;
  headers?: readonly RefHeader[];
  /** Defaults to the record's index (a freshly produced batch). */
  offsetDelta?: number;
}

export interface RefBatch {
  baseOffset?: bigint;
  partitionLeaderEpoch?: number;
  attributes?: number;
  producerId?: bigint;
  producerEpoch?: number;
  baseSequence?: number;
  /** Defaults to the first record's timestamp, as Kafka's MemoryRecordsBuilder does. */
  baseTimestamp?: bigint;
  /** Defaults to the largest record timestamp. */
  maxTimestamp?: bigint;
  /** Defaults to records.length - 1. */
  lastOffsetDelta?: number;
  records: readonly RefRecord[];
  /**
   * Replaces the records section by this function of the uncompressed one (e.g. zlib.gzipSync);
   * pair it with the matching compression bits in `attributes`.
   */
  compress?: (records: Uint8Array) => Uint8Array;
}

// ---------------------------------------------------------------- big-endian fixed-width integers

function pushIntBE(out: number[], value: bigint, bytes: number): void {
  const mod = 1n << BigInt(bytes * 8);
  let v = ((value % mod) + mod) % mod; // two's complement
  const tmp: number[] = [];
  for (let i = 0; i < bytes; i++) {
    tmp.push(Number(v & 0xffn));
    v >>= 8n;
  }
  for (let i = bytes - 1; i >= 0; i--) out.push(tmp[i]!);
}

// ---------------------------------------------------------------- varints (Kafka ByteUtils.writeVarlong)

/** Zig-zag varint bytes of a signed 64-bit value. */
export function refVarint(value: bigint | number): number[] {
  const n = BigInt.asIntN(64, BigInt(value));
  let zz = BigInt.asUintN(64, (n << 1n) ^ (n >> 63n));
  const out: number[] = [];
  while ((zz & ~0x7fn) !== 0n) {
    out.push(Number((zz & 0x7fn) | 0x80n));
    zz >>= 7n;
  }
  out.push(Number(zz));
  return out;
}

function pushBytes(out: number[], b: Uint8Array | null): void {
  if (b === null) {
    out.push(...refVarint(-1));
    return;
  }
  out.push(...refVarint(b.length));
  for (const x of b) out.push(x);
}

const utf8 = (s: string): Uint8Array => new TextEncoder().encode(s);

// ---------------------------------------------------------------- CRC-32C, bit by bit

export function refCrc32c(data: Uint8Array, start = 0, end = data.length): number {
  let crc = 0xffffffff;
  for (let i = start; i < end; i++) {
    crc ^= data[i]!;
    for (let k = 0; k < 8; k++) crc = crc & 1 ? (crc >>> 1) ^ 0x82f63b78 : crc >>> 1;
  }
  return (crc ^ 0xffffffff) >>> 0;
}

// ---------------------------------------------------------------- the batch

/** One record as DefaultRecord.writeTo lays it out: length varint, then the body. */
export function refRecord(r: RefRecord, index: number, baseTimestamp: bigint): number[] {
  const body: number[] = [];
  body.push(0); // attributes: int8, unused
  body.push(...refVarint(r.timestamp - baseTimestamp)); // timestampDelta: varlong
  body.push(...refVarint(r.offsetDelta ?? index)); // offsetDelta: varint
  pushBytes(body, r.key);
  pushBytes(body, r.value);
  const headers = r.headers ?? [];
  body.push(...refVarint(headers.length));
  for (const h of headers) {
    pushBytes(body, utf8(h.key));
    pushBytes(body, h.value);
  }
  return [...refVarint(body.length), ...body];
}

export function refBatch(b: RefBatch): Buffer {
  const first = b.records[0];
  if (first === undefined) throw new Error('refBatch needs a record');
  const baseTimestamp = b.baseTimestamp ?? first.timestamp;
  let maxTimestamp = first.timestamp;
  for (const r of b.records) if (r.timestamp > maxTimestamp) maxTimestamp = r.timestamp;
  if (b.maxTimestamp !== undefined) maxTimestamp = b.maxTimestamp;

  let records: number[] = [];
  b.records.forEach((r, i) => records.push(...refRecord(r, i, baseTimestamp)));
  if (b.compress) records = [...b.compress(Uint8Array.from(records))];

  // Everything the CRC covers: attributes .. records.
  const covered: number[] = [];
  pushIntBE(covered, BigInt(b.attributes ?? 0), 2);
  pushIntBE(covered, BigInt(b.lastOffsetDelta ?? b.records.length - 1), 4);
  pushIntBE(covered, baseTimestamp, 8);
  pushIntBE(covered, maxTimestamp, 8);
  pushIntBE(covered, b.producerId ?? -1n, 8);
  pushIntBE(covered, BigInt(b.producerEpoch ?? -1), 2);
  pushIntBE(covered, BigInt(b.baseSequence ?? -1), 4);
  pushIntBE(covered, BigInt(b.records.length), 4);
  covered.push(...records);
  const crc = refCrc32c(Uint8Array.from(covered));

  const out: number[] = [];
  pushIntBE(out, b.baseOffset ?? 0n, 8); // baseOffset
  pushIntBE(out, BigInt(4 + 1 + 4 + covered.length), 4); // batchLength: epoch + magic + crc + covered
  pushIntBE(out, BigInt(b.partitionLeaderEpoch ?? 0), 4); // partitionLeaderEpoch
  out.push(2); // magic
  pushIntBE(out, BigInt(crc), 4); // crc (uint32)
  out.push(...covered);
  return Buffer.from(out);
}

/** A hex fixture file's bytes; whitespace and `#` comment lines are ignored. */
export function parseHex(text: string): Buffer {
  const hex = text
    .split('\n')
    .filter((l) => !l.trimStart().startsWith('#'))
    .join('')
    .replace(/\s+/g, '');
  if (!/^(?:[0-9a-f]{2})*$/i.test(hex)) throw new Error('fixture is not hex');
  return Buffer.from(hex, 'hex');
}
