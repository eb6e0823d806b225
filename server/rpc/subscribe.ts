import type { ServerWritableStream } from '@grpc/grpc-js';
import { EngineError, limitExceeded, offsetOutOfRange } from '../../engine/base/errors.js';
import type { LogStore } from '../../engine/log/log-store.js';
import type { PartitionLog } from '../../engine/log/partition-log.js';
import { FRAME_BUFFER } from '../proto/load.js';
import { ByteWindow } from './byte-window.js';
import { frame_buffers } from './prefixed-send.js';
import { reportUnexpected, type ServiceContext } from './context.js';
import { parseSubscribe, type SubscribeRequest } from './requests.js';
import { shuttingDown, toServiceError } from './status.js';

type Call = ServerWritableStream<unknown, unknown>;

/** Resolves a Subscribe start to an offset within [log start, high watermark]. */
export async function startOffset(store: LogStore, p: PartitionLog, req: SubscribeRequest): Promise<number> {
  const s = req.start;
  let offset: number;
  if (s.kind === 'offset') offset = s.offset;
  else if (s.kind === 'timestamp') offset = (await p.offsetForTimestamp(s.timestamp_ms)) ?? p.highWatermark;
  else if (s.kind === 'latest') offset = p.highWatermark;
  else if (s.kind === 'earliest') offset = p.logStartOffset;
  else offset = store.fetchGroupOffset(s.group, req.topic, req.partition)?.offset ?? p.logStartOffset;
  const where = `${req.topic}/${req.partition}${s.kind === 'group' ? ` (committed offset of group ${JSON.stringify(s.group)})` : ''}`;
  if (offset < p.logStartOffset || offset > p.highWatermark) throw offsetOutOfRange(offset, p.logStartOffset, p.highWatermark, where);
  return offset;
}

/**
 * Streams whole batches from the start offset, then follows the tail with long polls (no busy
 * loop). Backpressure: the log is not read while the stream reports it is full (write() returned
 * false, until 'drain') nor while `subscribe_inflight_max_bytes` are written but not yet handed to
 * the socket. Frames larger than `replay_small_frame_bytes` share `replay_bytes_per_turn` per
 * event-loop turn with every other subscriber's (turn-budget.ts), so catch-up replays leave
 * each turn to produce requests too. Returns when `signal` aborts (cancel or server stop); throws if the partition goes.
 */
export async function runSubscription(ctx: ServiceContext, call: Call, req: SubscribeRequest, signal: AbortSignal): Promise<void> {
  const store = ctx.store();
  const p = store.partition(req.topic, req.partition);
  let offset = await startOffset(store, p, req);
  const window = new ByteWindow(ctx.limits.subscribe_inflight_max_bytes);
  // The write callback of the last frame not yet handed to the socket (null: none outstanding).
  let unsent: Promise<void> | null = null;
  while (!signal.aborted) {
    if (offset >= p.highWatermark) {
      const got = await p.waitForData(offset, ctx.limits.subscribe_poll_ms, signal);
      // A deleted (or deleted and re-created) topic or a closing store: end with its error
      // rather than polling a partition that will never grow.
      if (!got && !signal.aborted && ctx.store().partition(req.topic, req.partition) !== p) {
        throw new EngineError('UNKNOWN_TOPIC', `topic ${JSON.stringify(req.topic)} was deleted and re-created while subscribed; subscribe again`);
      }
      continue;
    }
    await window.room(signal);
    if (signal.aborted) break;
    const r = await p.read(offset, req.max_frame_bytes);
    const size = r.records.length;
    const large = size > ctx.limits.replay_small_frame_bytes;
    // A large (catch-up) frame is written only once the previous one has gone to the socket: a
    // frame written while another is pending waits in the stream's buffer and is serialized (its
    // bytes copied) later, in that write's completion callback, outside the turn budget — several
    // of them back to back stalled the event loop for 100-200 ms in profiles.
    if (large && unsent !== null) {
      await untilAborted(unsent, signal);
      if (signal.aborted) {
        r.release();
        break;
      }
    }
    // A large frame waits for room in this turn of the event loop (turn-budget.ts).
    const turn = ctx.replay_turns.take(size);
    if (turn !== null) {
      await turn;
      if (signal.aborted) {
        r.release();
        break;
      }
    }
    ctx.metrics.bytes_out.inc({ rpc: 'subscribe' }, size);
    window.add(size);
    const frame = { records: r.records, next_offset: r.next_offset, high_watermark: r.high_watermark, log_start_offset: r.log_start_offset, [FRAME_BUFFER]: null as Buffer | null };
    // The callback runs once the frame is serialized (into a pooled buffer, the records copied) and
    // that buffer is written to the HTTP/2 stream: then its bytes leave the window, and the pooled
    // read buffer and the frame's buffer can go back.
    let written!: () => void;
    const done = new Promise<void>((resolve) => (written = resolve));
    unsent = done;
    const writable = call.write(frame, () => {
      window.done(size);
      r.release();
      const sent = frame[FRAME_BUFFER];
      if (sent) frame_buffers.give(sent);
      if (unsent === done) unsent = null;
      written();
    });
    offset = r.next_offset;
    if (!writable) await drained(call, signal);
  }
}

/** Resolves when `p` does or `signal` aborts, whichever is first. */
function untilAborted(p: Promise<void>, signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      signal.removeEventListener('abort', done);
      resolve();
    };
    signal.addEventListener('abort', done, { once: true });
    void p.then(done);
  });
}

function drained(call: Call, signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      call.off('drain', done);
      signal.removeEventListener('abort', done);
      resolve();
    };
    call.once('drain', done);
    signal.addEventListener('abort', done, { once: true });
  });
}

/** Ends a server stream with an error status (grpc-js sends the status carried by an 'error' event). */
function fail(call: Call, err: unknown): void {
  call.emit('error', toServiceError(err));
}

export function subscribeHandler(ctx: ServiceContext) {
  let active = 0;
  return (call: Call): void => {
    if (ctx.stopping.aborted) return fail(call, shuttingDown(ctx.address()));
    if (active >= ctx.limits.subscribers_max) return fail(call, limitExceeded('subscribers_max', active + 1, ctx.limits.subscribers_max));
    active++;
    const ac = new AbortController();
    const abort = () => ac.abort();
    call.once('cancelled', abort);
    ctx.stopping.addEventListener('abort', abort, { once: true });
    (async () => runSubscription(ctx, call, parseSubscribe(call.request, ctx.limits), ac.signal))()
      .then(
        () => {
          if (call.cancelled) return;
          if (ctx.stopping.aborted) fail(call, shuttingDown(ctx.address()));
          else call.end();
        },
        (err: unknown) => {
          reportUnexpected(ctx, 'Subscribe', err);
          if (!call.cancelled) fail(call, ctx.stopping.aborted ? shuttingDown(ctx.address()) : err);
        },
      )
      .finally(() => {
        active--;
        ctx.stopping.removeEventListener('abort', abort);
        call.off('cancelled', abort);
      });
  };
}
