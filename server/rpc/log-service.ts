import type { UntypedServiceImplementation } from '@grpc/grpc-js';
import type { LogStore } from '../../engine/log/log-store.js';
import { refuseOnRelay, unary, type ServiceContext } from './context.js';
import { allocateProducerId } from './producer-ids.js';
import { appendRecordSet, producePipeline, produceStream } from './produce-streams.js';
import { parseCommitOffset, parseEpochEnd, parseFetch, parseFetchCommitted, parseListOffsets, parseProduce, type ListOffsetsRequest } from './requests.js';
import { subscribeHandler } from './subscribe.js';

export async function listOffsets(store: LogStore, req: ListOffsetsRequest) {
  const p = store.partition(req.topic, req.partition);
  const q = req.query;
  const offset = q.kind === 'timestamp' ? await p.offsetForTimestamp(q.timestamp_ms) : q.kind === 'latest' ? p.highWatermark : p.logStartOffset;
  return { found: offset !== null, offset: offset ?? -1, log_start_offset: p.logStartOffset, high_watermark: p.highWatermark };
}

export function logService(ctx: ServiceContext): UntypedServiceImplementation {
  return {
    Produce: unary(ctx, 'Produce', (raw) => appendRecordSet(ctx, parseProduce(raw))),
    ProduceStream: produceStream(ctx),
    ProducePipeline: producePipeline(ctx),
    Fetch: unary(ctx, 'Fetch', async (raw, signal) => {
      const req = parseFetch(raw, ctx.limits);
      const p = ctx.store().partition(req.topic, req.partition);
      if (req.offset === p.highWatermark && req.max_wait_ms > 0) await p.waitForData(req.offset, req.max_wait_ms, signal);
      const r = await p.read(req.offset, req.max_bytes);
      ctx.metrics.bytes_out.inc({ rpc: 'fetch' }, r.records.length);
      // The response serializer (encodeRecordsFrame, server/proto/load.ts) copies `records` after
      // this returns, so the pooled buffer is left to the garbage collector rather than released early.
      return { records: r.records, next_offset: r.next_offset, high_watermark: r.high_watermark, log_start_offset: r.log_start_offset };
    }),
    Subscribe: subscribeHandler(ctx),
    ListOffsets: unary(ctx, 'ListOffsets', (raw) => listOffsets(ctx.store(), parseListOffsets(raw))),
    EpochEnd: unary(ctx, 'EpochEnd', (raw) => {
      const req = parseEpochEnd(raw);
      const p = ctx.store().partition(req.topic, req.partition);
      return { ...p.epochEnd(req.epoch), log_start_offset: p.logStartOffset, high_watermark: p.highWatermark };
    }),
    CommitOffset: unary(ctx, 'CommitOffset', async (raw) => {
      const req = parseCommitOffset(raw);
      await ctx.store().commitGroupOffset(req.group, req.topic, req.partition, req.offset, req.metadata);
      return {};
    }),
    InitProducerId: unary(ctx, 'InitProducerId', () => {
      refuseOnRelay(ctx, 'InitProducerId');
      return allocateProducerId(ctx.store().catalog, ctx.node_id);
    }),
    FetchCommitted: unary(ctx, 'FetchCommitted', (raw) => {
      const req = parseFetchCommitted(raw);
      const v = ctx.store().fetchGroupOffset(req.group, req.topic, req.partition);
      return v ? { found: true, offset: v.offset, metadata: v.metadata } : { found: false, offset: -1, metadata: '' };
    }),
  };
}
