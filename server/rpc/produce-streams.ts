import type { sendUnaryData, ServerDuplexStream, ServerReadableStream } from '@grpc/grpc-js';
import { F_RECORD_COUNT, forEachBatch } from '../../engine/format/record-batch.js';
import type { AppendResult } from '../../engine/log/types.js';
import { refuseOnRelay, reportUnexpected, type ServiceContext } from './context.js';
import { parseProduce, type ProduceRequest } from './requests.js';
import { shuttingDown, toServiceError } from './status.js';

/** Base offset of each batch of an appended record set: offsets are contiguous from `base_offset`. */
export function batchBaseOffsets(records: Buffer, base_offset: number): number[] {
  const out: number[] = [];
  let next = base_offset;
  forEachBatch(records, (pos) => {
    out.push(next);
    next += records.readInt32BE(pos + F_RECORD_COUNT);
  });
  return out;
}

interface Appended {
  base_offset: number;
  last_offset: number;
  batch_base_offsets: number[];
}

/**
 * Appends one request's record set (a single node acknowledges `leader` and `all` alike; a cluster
 * node per acks). A refusal (relay, unknown topic, stopping) is thrown synchronously. Not an async
 * function: on the produce path every record set's promises and frames are garbage to collect.
 */
export function appendRecordSet(ctx: ServiceContext, req: ProduceRequest): Promise<Appended> {
  refuseOnRelay(ctx, 'produce', req);
  ctx.replay_turns.noteAppend();
  return ctx
    .store()
    .partition(req.topic, req.partition)
    .append(req.records, { acks: req.acks })
    .then((r: AppendResult) => {
      ctx.metrics.bytes_in.inc(req.records.length);
      return { base_offset: r.base_offset, last_offset: r.last_offset, batch_base_offsets: batchBaseOffsets(req.records, r.base_offset) };
    });
}

/**
 * The shared half of both produce streams: each message is appended as it arrives, so appends
 * are queued in stream order (append() enqueues synchronously). Reading pauses while more than
 * `produce_stream_inflight_max_bytes` are appended but unacknowledged; HTTP/2 flow control then
 * holds the client back.
 */
function appendInOrder(ctx: ServiceContext, call: ServerReadableStream<unknown, unknown> | ServerDuplexStream<unknown, unknown>, method: string) {
  let inflight_bytes = 0;
  return (raw: unknown): Promise<Appended> => {
    let size = 0;
    let appended: Promise<Appended>;
    try {
      if (ctx.stopping.aborted) throw shuttingDown(ctx.address());
      const req = parseProduce(raw);
      size = req.records.length;
      appended = appendRecordSet(ctx, req);
    } catch (err) {
      appended = Promise.reject(err);
    }
    const work = ctx.track(appended);
    inflight_bytes += size;
    if (inflight_bytes > ctx.limits.produce_stream_inflight_max_bytes) call.pause();
    const settle = () => {
      inflight_bytes -= size;
      if (call.isPaused() && inflight_bytes <= ctx.limits.produce_stream_inflight_max_bytes) call.resume();
    };
    work.then(settle, (err: unknown) => {
      settle();
      reportUnexpected(ctx, method, err);
    });
    return work;
  };
}

/**
 * ProduceStream (client streaming): one answer when the client ends the stream. The first failure
 * ends the call once every set before it has settled; later sets are ignored.
 */
export function produceStream(ctx: ServiceContext) {
  return (call: ServerReadableStream<unknown, unknown>, callback: sendUnaryData<unknown>): void => {
    const append = appendInOrder(ctx, call, 'ProduceStream');
    let first = -1;
    let last = -1;
    let sets = 0;
    let failed: unknown = null;
    let ended = false;
    let answered = false;
    const pending = new Set<Promise<unknown>>();
    const answer = () => {
      if (answered || pending.size > 0 || !(ended || failed)) return;
      answered = true;
      if (failed) callback(toServiceError(failed), null);
      else callback(null, { record_sets: sets, first_offset: first, last_offset: last });
    };
    call.on('data', (raw: unknown) => {
      if (failed) return;
      const p = append(raw).then(
        (r) => {
          if (first === -1) first = r.base_offset;
          last = Math.max(last, r.last_offset);
          sets++;
        },
        (err: unknown) => void (failed ??= err),
      );
      pending.add(p);
      void p.then(() => {
        pending.delete(p);
        answer();
      });
    });
    call.on('end', () => {
      ended = true;
      answer();
    });
    // A stopping server answers once what it took has settled, rather than wait for the client.
    onStop(ctx, call, () => {
      failed ??= shuttingDown(ctx.address());
      answer();
    });
    // A cancelled stream has nobody to answer; appends already queued complete on their own.
    call.on('error', () => undefined);
  };
}

/** Runs `fn` when the server begins to stop, while `call` is open. */
function onStop(ctx: ServiceContext, call: NodeJS.EventEmitter, fn: () => void): void {
  if (ctx.stopping.aborted) return fn();
  ctx.stopping.addEventListener('abort', fn, { once: true });
  const forget = () => ctx.stopping.removeEventListener('abort', fn);
  for (const event of ['close', 'finish', 'cancelled']) call.once(event, forget);
}

/**
 * ProducePipeline (bidirectional): one ProduceResponse per record set, written in request order
 * whatever order the appends finish in. The first failure ends the call with its status.
 */
export function producePipeline(ctx: ServiceContext) {
  return (call: ServerDuplexStream<unknown, unknown>): void => {
    const append = appendInOrder(ctx, call, 'ProducePipeline');
    let answered: Promise<void> = Promise.resolve();
    let failed = false;
    const fail = (err: unknown) => {
      if (failed) return;
      failed = true;
      if (!call.cancelled) call.emit('error', toServiceError(err));
    };
    call.on('data', (raw: unknown) => {
      if (failed) return;
      const result = append(raw);
      result.catch(() => undefined);
      answered = answered.then(async () => {
        if (failed) return;
        try {
          call.write(await result);
        } catch (err) {
          fail(err);
        }
      });
    });
    call.on('end', () => void answered.then(() => !failed && !call.cancelled && call.end()));
    // An idle producer's pipeline would hold a stopping server open: answer what was taken, then end it.
    onStop(ctx, call, () => void answered.then(() => fail(shuttingDown(ctx.address()))));
    call.on('error', () => undefined);
  };
}
