import { setMaxListeners } from 'node:events';
import type { PartitionLog } from '../../../engine/log/partition-log.js';
import { KafkaCode } from '../errors.js';
import { fetch, type FetchPartitionResponse, type FetchRequest, type FetchResponse } from '../protocol/fetch.js';
import type { KafkaContext, RequestContext } from '../context.js';
import { codeFor, route } from './handler.js';
import { hideRaftControlBatches } from '../control-batches.js';

const READ_COMMITTED = 1;
/** Fetch sessions (KIP-227) are not kept: session id 0 in a response tells the client none was created. */
const NO_SESSION = 0;

interface PartitionRead {
  response: FetchPartitionResponse;
  log: PartitionLog | null;
  fetch_offset: number;
  release: () => void;
}

/**
 * Serves stored batches as they are (compressed ones included; nothing is decoded). Reads go
 * partition by partition until `max_bytes` is spent; the first batch found is returned whole
 * however large (KIP-74), so a consumer always progresses. With fewer than `min_bytes` the request
 * long-polls on the partitions' high watermarks for up to `max_wait_ms` and reads once more.
 * last_stable_offset is the high watermark (no transactions), and the isolation level only
 * changes whether aborted_transactions is null or empty, as Kafka does.
 */
async function handleFetch(ctx: KafkaContext, rc: RequestContext, version: number, req: FetchRequest): Promise<FetchResponse> {
  if (req.session_id !== NO_SESSION) return { throttle_time_ms: 0, error_code: KafkaCode.FETCH_SESSION_ID_NOT_FOUND, session_id: NO_SESSION, responses: [] };
  const budget_bytes = Math.min(req.max_bytes > 0 ? req.max_bytes : ctx.limits.fetch_response_max_bytes, ctx.limits.fetch_response_max_bytes);
  let reads = await readAll(ctx, rc, req, budget_bytes);
  const got_bytes = reads.reduce((n, r) => n + (r.response.records?.length ?? 0), 0);
  const wait_ms = Math.min(Math.max(req.max_wait_ms, 0), ctx.limits.fetch_wait_max_ms);
  if (got_bytes < Math.max(req.min_bytes, 1) && wait_ms > 0 && !rc.signal.aborted) {
    if (await waitForAny(reads, wait_ms, rc.signal)) {
      for (const r of reads) r.release();
      reads = await readAll(ctx, rc, req, budget_bytes);
    }
  }
  for (const r of reads) rc.afterSent(r.release);
  const responses: FetchResponse['responses'] = [];
  let i = 0;
  for (const t of req.topics) responses.push({ topic: t.topic, partitions: t.partitions.map(() => reads[i++]!.response) });
  return { throttle_time_ms: 0, error_code: KafkaCode.NONE, session_id: NO_SESSION, responses };
}

async function readAll(ctx: KafkaContext, rc: RequestContext, req: FetchRequest, budget_bytes: number): Promise<PartitionRead[]> {
  const out: PartitionRead[] = [];
  let left_bytes = budget_bytes;
  for (const t of req.topics) {
    for (const p of t.partitions) {
      const response: FetchPartitionResponse = {
        partition_index: p.partition,
        error_code: KafkaCode.NONE,
        high_watermark: -1,
        last_stable_offset: -1,
        log_start_offset: -1,
        aborted_transactions: req.isolation_level === READ_COMMITTED ? [] : null,
        preferred_read_replica: -1,
        records: Buffer.alloc(0),
      };
      const read: PartitionRead = { response, log: null, fetch_offset: p.fetch_offset, release: () => undefined };
      out.push(read);
      try {
        const log = ctx.store.partition(t.topic, p.partition);
        read.log = log;
        const hw = log.highWatermark;
        response.high_watermark = hw;
        response.last_stable_offset = hw;
        response.log_start_offset = log.logStartOffset;
        // Past the budget (or a zero partition budget) a partition still reports its watermarks.
        if (left_bytes <= 0 || p.partition_max_bytes <= 0) continue;
        const r = await log.read(p.fetch_offset, Math.min(p.partition_max_bytes, left_bytes));
        read.release = r.release;
        response.records = hideRaftControlBatches(r.records);
        response.high_watermark = r.high_watermark;
        response.last_stable_offset = r.high_watermark;
        response.log_start_offset = r.log_start_offset;
        left_bytes -= r.records.length;
      } catch (err) {
        response.error_code = codeFor(ctx, rc, err, { api: 'Fetch', topic: t.topic, partition: p.partition, offset: p.fetch_offset });
        read.log = null;
      }
    }
  }
  return out;
}

/** Resolves true once any readable partition has data past its fetch offset, false after `wait_ms` or on abort. */
async function waitForAny(reads: PartitionRead[], wait_ms: number, signal: AbortSignal): Promise<boolean> {
  const waiting = reads.filter((r) => r.log !== null && r.response.error_code === KafkaCode.NONE);
  if (waiting.length === 0) {
    // Nothing to wait on (unknown topics, bad offsets): still honour max_wait_ms, as Kafka does, so
    // a client polling a topic that does not exist yet does not spin.
    await new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(timer);
        signal.removeEventListener('abort', done);
        resolve();
      };
      const timer = setTimeout(done, wait_ms);
      signal.addEventListener('abort', done, { once: true });
    });
    return false;
  }
  const done = new AbortController();
  setMaxListeners(0, done.signal);
  const stop = () => done.abort();
  signal.addEventListener('abort', stop, { once: true });
  try {
    const woke = await Promise.race(waiting.map((r) => r.log!.waitForData(r.fetch_offset, wait_ms, done.signal)));
    return woke;
  } finally {
    done.abort();
    signal.removeEventListener('abort', stop);
  }
}

export const fetchRoute = route(fetch, handleFetch);
