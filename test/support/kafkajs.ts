/**
 * kafkajs's own RecordBatch v2 encoder and decoder, loaded from its package: a real Kafka client's
 * codec to check ours against, in both directions.
 */
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);

interface KRecord {
  offsetDelta: number;
  timestampDelta: number;
  key: Buffer | null;
  value: Buffer | null;
  headers?: Record<string, Buffer>;
}

const { RecordBatch } = require('kafkajs/src/protocol/recordBatch/v0/index.js') as { RecordBatch: (args: Record<string, unknown>) => Promise<{ buffer: Buffer }> };
const Record = require('kafkajs/src/protocol/recordBatch/record/v0/index.js') as (r: KRecord) => unknown;
const Decoder = require('kafkajs/src/protocol/decoder.js') as new (b: Buffer) => unknown;
const decodeBatch = require('kafkajs/src/protocol/recordBatch/v0/decoder.js') as (d: unknown) => Promise<KDecodedBatch>;
const Long = require('kafkajs/src/utils/long.js') as { fromValue(v: number | string): unknown; fromInt(v: number): unknown };
const { Types } = require('kafkajs/src/protocol/message/compression/index.js') as { Types: { None: number; GZIP: number } };

export interface KDecodedBatch {
  firstOffset: string;
  firstTimestamp: string;
  maxTimestamp: string;
  partitionLeaderEpoch: number;
  lastOffsetDelta: number;
  producerId: string;
  producerEpoch: number;
  firstSequence: number;
  records: Array<{ offset: string; timestamp: string; key: Buffer | null; value: Buffer | null; headers: Record<string, Buffer> }>;
}

export async function kafkajsEncode(opts: {
  records: Array<{ key: Buffer | null; value: Buffer | null; timestamp: number; headers?: Record<string, Buffer> }>;
  gzip?: boolean;
  firstOffset?: number;
  partitionLeaderEpoch?: number;
}): Promise<Buffer> {
  const first = opts.records[0]!.timestamp;
  const max = Math.max(...opts.records.map((r) => r.timestamp));
  const records = opts.records.map((r, i) => Record({ offsetDelta: i, timestampDelta: r.timestamp - first, key: r.key, value: r.value, ...(r.headers ? { headers: r.headers } : {}) }));
  const enc = await RecordBatch({
    compression: opts.gzip ? Types.GZIP : Types.None,
    firstOffset: Long.fromValue(opts.firstOffset ?? 0),
    firstTimestamp: first,
    maxTimestamp: max,
    partitionLeaderEpoch: opts.partitionLeaderEpoch ?? 0,
    lastOffsetDelta: opts.records.length - 1,
    records,
  });
  return enc.buffer;
}

export async function kafkajsDecode(batch: Buffer): Promise<KDecodedBatch> {
  return decodeBatch(new Decoder(batch));
}
