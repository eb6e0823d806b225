import type { PartitionLog } from '../../../engine/log/partition-log.js';
import { forEachBatch, forEachRecord } from '../../../engine/format/record-batch.js';
import { KafkaCode } from '../errors.js';
import { EARLIEST_TIMESTAMP, LATEST_TIMESTAMP, listOffsets, type ListOffsetsPartitionResponse, type ListOffsetsRequest, type ListOffsetsResponse } from '../protocol/list-offsets.js';
import type { KafkaContext, RequestContext } from '../context.js';
import { codeFor, route } from './handler.js';

/**
 * -1 → the high watermark (the last stable offset too: there are no transactions), -2 → the log
 * start offset, any other timestamp → the first offset whose record timestamp is ≥ it
 * (PartitionLog.offsetForTimestamp, the same answer as the gRPC API), or offset -1 when none is.
 */
async function handleListOffsets(ctx: KafkaContext, rc: RequestContext, _version: number, req: ListOffsetsRequest): Promise<ListOffsetsResponse> {
  const topics: ListOffsetsResponse['topics'] = [];
  for (const t of req.topics) {
    const partitions: ListOffsetsPartitionResponse[] = [];
    for (const p of t.partitions) {
      const answer = (error_code: number, offset = -1, timestamp = -1) => partitions.push({ partition_index: p.partition_index, error_code, timestamp, offset });
      try {
        const log = ctx.store.partition(t.name, p.partition_index);
        if (p.timestamp === LATEST_TIMESTAMP) answer(KafkaCode.NONE, log.highWatermark);
        else if (p.timestamp === EARLIEST_TIMESTAMP) answer(KafkaCode.NONE, log.logStartOffset);
        else {
          const offset = await log.offsetForTimestamp(p.timestamp);
          if (offset === null) answer(KafkaCode.NONE);
          else answer(KafkaCode.NONE, offset, await timestampAt(log, offset, p.timestamp));
        }
      } catch (err) {
        answer(codeFor(ctx, rc, err, { api: 'ListOffsets', topic: t.name, partition: p.partition_index, timestamp: p.timestamp }));
      }
    }
    topics.push({ name: t.name, partitions });
  }
  return { throttle_time_ms: 0, topics };
}

/**
 * The timestamp of the record at `offset`, which Kafka returns beside it (compressed batches are
 * decompressed to find it). A batch whose section does not decompress falls back to the timestamp
 * asked for, which the record's is at least.
 */
async function timestampAt(log: PartitionLog, offset: number, asked_ms: number): Promise<number> {
  const r = await log.read(offset, 1);
  try {
    let found = asked_ms;
    forEachBatch(r.records, (pos, size) => {
      forEachRecord(r.records.subarray(pos, pos + size), (rec) => {
        if (rec.offset !== offset) return true;
        found = rec.timestamp_ms;
        return false;
      });
    });
    return found;
  } catch {
    return asked_ms;
  } finally {
    r.release();
  }
}

export const listOffsetsRoute = route(listOffsets, handleListOffsets);
