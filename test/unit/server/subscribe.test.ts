import { ServerMetrics } from '../../../server/metrics.js';
import { EventEmitter } from 'node:events';
import { afterEach, beforeEach, expect, test } from 'vitest';
import { encodeBatch, LogStore } from '../../../engine/index.js';
import type { ServiceContext } from '../../../server/rpc/context.js';
import { serverLimits } from '../../../server/rpc/limits.js';
import type { SubscribeRequest } from '../../../server/rpc/requests.js';
import { runSubscription } from '../../../server/rpc/subscribe.js';
import { TurnBudget } from '../../../server/rpc/turn-budget.js';
import { tempDir } from '../../support/tmp.js';

/** A server stream whose socket we control: write() callbacks run only when `flush()` says so. */
class FakeCall extends EventEmitter {
  readonly request = {};
  cancelled = false;
  full = false;
  readonly pending: Array<() => void> = [];
  frames = 0;
  write(_frame: { records: Buffer }, cb: () => void): boolean {
    this.frames++;
    this.pending.push(cb);
    return !this.full;
  }
  flush(): void {
    for (const cb of this.pending.splice(0)) cb();
  }
}

const tick = (ms: number) => new Promise((r) => setTimeout(r, ms));
let tmp: ReturnType<typeof tempDir>;
let store: LogStore;
let ac: AbortController;

function context(over: Partial<typeof serverLimits>): ServiceContext {
  const limits = { ...serverLimits, subscribe_poll_ms: 50, ...over };
  return {
    limits,
    replay_turns: new TurnBudget(limits.replay_bytes_per_turn, limits.replay_small_frame_bytes),
    logger: { debug: () => undefined, info: () => undefined, warn: () => undefined, error: () => undefined },
    stopping: new AbortController().signal,
    address: () => 'test',
    node_id: 0,
    relay: null,
    metrics: new ServerMetrics(() => null, () => null),
    store: () => store,
    track: (w) => w,
  };
}
const req = (over: Partial<SubscribeRequest> = {}): SubscribeRequest => ({ topic: 't', partition: 0, start: { kind: 'earliest' }, max_frame_bytes: 8 * 1024, ...over });

beforeEach(async () => {
  tmp = tempDir('relaylog-sub-');
  store = await LogStore.open({ dir: tmp.dir, disk_free_floor_bytes: 0, retention_check_interval_ms: 0 });
  await store.createTopic('t', { fsync: { policy: 'never' } });
  // 256 batches of ~4 KiB: 1 MiB of log.
  const p = store.partition('t', 0);
  for (let i = 0; i < 256; i++) await p.append(encodeBatch([{ value: Buffer.alloc(4000, i) }]));
  ac = new AbortController();
});
afterEach(async () => {
  ac.abort();
  await store.close();
  tmp.cleanup();
});

test('bytes in flight per subscriber are bounded: the log is not read while the socket has not taken them', async () => {
  const call = new FakeCall();
  const done = runSubscription(context({ subscribe_inflight_max_bytes: 32 * 1024 }), call as never, req(), ac.signal);
  await tick(100);
  // 32 KiB window, frames of two ~4 KiB batches: 4 frames fill it (the last one may overshoot).
  expect(call.frames).toBeGreaterThanOrEqual(3);
  expect(call.frames).toBeLessThanOrEqual(5);
  const before = call.frames;
  await tick(100);
  expect(call.frames).toBe(before);
  for (let i = 0; i < 200 && call.frames < 128; i++) {
    call.flush();
    await tick(1);
  }
  expect(call.frames).toBe(128); // 256 batches, two per 8 KiB frame
  ac.abort();
  await done;
});

test("while write() reports a full stream, the subscription waits for 'drain'", async () => {
  const call = new FakeCall();
  call.full = true;
  const done = runSubscription(context({}), call as never, req(), ac.signal);
  await tick(100);
  expect(call.frames).toBe(1);
  call.full = false;
  call.emit('drain');
  await tick(100);
  expect(call.frames).toBe(128);
  ac.abort();
  await done;
});

test('at the tail it waits on the high watermark without reading; new data is sent at once', async () => {
  const call = new FakeCall();
  const p = store.partition('t', 0);
  let reads = 0;
  const read = p.read.bind(p);
  p.read = (o: number, m: number) => (reads++, read(o, m));
  const done = runSubscription(context({}), call as never, req({ start: { kind: 'latest' } }), ac.signal);
  await tick(300); // six poll periods
  expect(reads).toBe(0);
  expect(call.frames).toBe(0);
  await p.append(encodeBatch([{ value: 'new' }]));
  await tick(20);
  expect(reads).toBe(1);
  expect(call.frames).toBe(1);
  ac.abort();
  await done;
});

test('a topic deleted under a subscriber ends it with UNKNOWN_TOPIC', async () => {
  const call = new FakeCall();
  const done = runSubscription(context({}), call as never, req({ start: { kind: 'latest' } }), ac.signal).then(
    () => null,
    (e: unknown) => e,
  );
  await tick(20);
  await store.deleteTopic('t');
  expect(await done).toMatchObject({ code: 'UNKNOWN_TOPIC' });
});

test('a start outside [log start, high watermark] is refused with both bounds', async () => {
  await expect(runSubscription(context({}), new FakeCall() as never, req({ start: { kind: 'offset', offset: 999 } }), ac.signal)).rejects.toMatchObject({
    code: 'OFFSET_OUT_OF_RANGE',
    message: expect.stringMatching(/0\.\.256/),
  });
  const group = runSubscription(context({}), new FakeCall() as never, req({ start: { kind: 'group', group: 'g' } }), ac.signal);
  await tick(20);
  ac.abort(); // no commit: earliest, then streaming
  await group;
});

test('catch-up subscribers share a budget per event-loop turn: frames beyond it wait for a later turn', async () => {
  // Frames of two ~4 KiB batches; a turn takes 16 KiB of them (two frames), whatever the number of subscribers.
  const ctx = context({ replay_bytes_per_turn: 16 * 1024, replay_small_frame_bytes: 0 });
  const calls = Array.from({ length: 4 }, () => new FakeCall());
  const done = calls.map((c) => runSubscription(ctx, c as never, req(), ac.signal));
  // Sockets that take every frame at once: only the turn budget limits the pace.
  const flusher = setInterval(() => calls.forEach((c) => c.flush()), 1);
  const per_turn: number[] = [];
  let last = 0;
  const total = () => calls.reduce((n, c) => n + c.frames, 0);
  const deadline = performance.now() + 20_000;
  for (let turns = 0; turns < 1_000_000 && total() < 4 * 128 && performance.now() < deadline; turns++) {
    await new Promise((r) => setImmediate(r));
    per_turn.push(total() - last);
    last = total();
  }
  clearInterval(flusher);
  expect(total()).toBe(4 * 128); // everything was sent
  expect(Math.max(...per_turn)).toBeLessThanOrEqual(2);
  expect(ctx.replay_turns.deferred).toBeGreaterThan(0);
  ac.abort();
  await Promise.all(done);
});

test('small frames (a live tail\'s) never wait for a turn', async () => {
  const ctx = context({ replay_bytes_per_turn: 1, replay_small_frame_bytes: 64 * 1024 });
  const call = new FakeCall();
  const flusher = setInterval(() => call.flush(), 1);
  const done = runSubscription(ctx, call as never, req(), ac.signal);
  for (let i = 0; i < 2000 && call.frames < 128; i++) await tick(1);
  clearInterval(flusher);
  expect(call.frames).toBe(128);
  expect(ctx.replay_turns.deferred).toBe(0);
  ac.abort();
  await done;
});

test('a large frame is written only once the previous one has gone to the socket (none waits in the stream\'s buffer)', async () => {
  const call = new FakeCall();
  const done = runSubscription(context({ replay_small_frame_bytes: 0 }), call as never, req(), ac.signal);
  await tick(100);
  expect(call.frames).toBe(1); // the window (8 MiB) would allow many more; the first is not yet sent
  for (let i = 1; i <= 5; i++) {
    call.flush();
    await tick(20);
    expect(call.frames).toBe(i + 1);
    expect(call.pending).toHaveLength(1);
  }
  ac.abort();
  await done;
});
