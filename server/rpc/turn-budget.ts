import { ReplayPacer, type PacerOptions } from './replay-pacer.js';

/** The event-loop delay sampler's timer interval, ms. */
const LAG_TICK_MS = 5;
/** Control periods without a catch-up frame after which the control loop and its sampler stop. */
const IDLE_PERIODS = 10;

/**
 * How much catch-up replay one turn of the event loop may send, and how fast.
 *
 * A server has one event loop for everything: produce requests, acks, live tails and catch-up
 * replays. A replay reader that drains its stream as fast as the server fills it would otherwise
 * have its frames encoded and written back to back in microtasks, and eight of them kept a
 * producer's acks waiting for seconds (docs/benchmarks.md, "Producer ack latency while 8 readers
 * replay"). Here every large frame asks for room first: at most `bytes_per_turn` of them go out
 * per turn (at least one frame, however large), and the rest wait for a later turn — after the
 * loop has polled its sockets, so produce requests that arrived meanwhile are taken first. On an
 * otherwise idle server a turn is short and the replays lose next to nothing.
 *
 * While producers write, catch-up frames are also paced (replay-pacer.ts): when the event loop
 * runs late, the replays' rate is cut so that appends get the loop (and the cores) back; a token
 * bucket of `bytes_per_turn` enforces it. With pacing off (`lag_target_ms` 0) or no appends, only
 * the per-turn budget applies.
 *
 * Small frames (at most `small_frame_bytes`, a live tail's) never wait: they count towards the
 * turn but are sent at once, so following the tail adds no latency.
 */
export class TurnBudget {
  private used = 0;
  private armed = false;
  private readonly waiting: Array<{ bytes: number; go: () => void }> = [];
  /** Frames that had to wait for a later turn (a metric for tests and operators). */
  deferred = 0;
  /** Times a frame had to wait for the pacing rate (a metric for tests and operators). */
  paced = 0;

  private readonly pacer: ReplayPacer | null;
  /** Token bucket for catch-up bytes: may go one frame into debt; refilled at pacer.rate. */
  private tokens = 0;
  private refilled = 0;
  private refill_timer: NodeJS.Timeout | null = null;
  /** The control loop, running while catch-up frames flow. */
  private control: NodeJS.Timeout | null = null;
  /** The event-loop delay sampler: a timer every LAG_TICK_MS, and the most it fired late in this period. */
  private sampler: NodeJS.Timeout | null = null;
  private last_tick = 0;
  private lag_max_ms = 0;
  private closed = false;
  private appends = 0;
  private replayed = 0;
  private idle_periods = 0;

  constructor(
    readonly bytes_per_turn: number,
    readonly small_frame_bytes: number,
    pacing?: PacerOptions,
  ) {
    if (pacing && !(pacing.floor_bytes_per_s > 0 && pacing.period_ms > 0 && pacing.lag_target_ms >= 0)) {
      throw new RangeError(`replay pacing needs a floor and a period above 0 and a lag target of 0 or more, got ${JSON.stringify(pacing)}`);
    }
    this.pacer = pacing && pacing.lag_target_ms > 0 ? new ReplayPacer(pacing) : null;
  }

  /** True while the control loop and its event-loop delay sampler run (catch-up frames flowing recently). */
  get sampling(): boolean {
    return this.control !== null;
  }

  /** Catch-up bytes per second allowed now (Infinity: no limit). */
  get rate(): number {
    return this.pacer?.rate ?? Infinity;
  }

  /** A record set was appended (a produce request): catch-up replay is paced while these arrive. */
  noteAppend(): void {
    this.appends++;
  }

  /** null: send now. Otherwise resolves in a later turn, when the frame may be sent. After close(), always null. */
  take(bytes: number): Promise<void> | null {
    if (this.closed) return null;
    if (bytes <= this.small_frame_bytes) {
      this.used += bytes;
      this.arm();
      return null;
    }
    this.startControl();
    if (this.waiting.length === 0 && (this.used === 0 || this.used + bytes <= this.bytes_per_turn) && this.admit(bytes)) {
      this.used += bytes;
      this.arm();
      return null;
    }
    this.deferred++;
    return new Promise<void>((resolve) => {
      this.waiting.push({ bytes, go: resolve });
      this.arm();
    });
  }

  /** Frames waiting for a turn. */
  get queued(): number {
    return this.waiting.length;
  }

  /** Stops the control loop and any refill timer (server stop); waiting frames are let go. */
  close(): void {
    this.closed = true;
    this.stopControl();
    if (this.refill_timer) clearTimeout(this.refill_timer);
    this.refill_timer = null;
    for (const w of this.waiting.splice(0)) w.go();
  }

  /** Takes `bytes` of catch-up tokens if the bucket is not in debt (always, with no limit). */
  private admit(bytes: number): boolean {
    const rate = this.rate;
    if (rate === Infinity) {
      this.replayed += bytes;
      return true;
    }
    const now = performance.now();
    this.tokens = Math.min(this.bytes_per_turn, this.tokens + ((now - this.refilled) * rate) / 1000);
    this.refilled = now;
    if (this.tokens < 0) return false;
    this.tokens -= bytes;
    this.replayed += bytes;
    return true;
  }

  private arm(): void {
    if (this.armed) return;
    this.armed = true;
    setImmediate(this.turn);
  }

  /** A new turn: the budget is whole again; waiting frames go in order while it lasts (and the rate allows). */
  private readonly turn = (): void => {
    this.armed = false;
    this.used = 0;
    while (this.waiting.length > 0) {
      const next = this.waiting[0]!;
      if (this.used > 0 && this.used + next.bytes > this.bytes_per_turn) break;
      if (!this.admit(next.bytes)) {
        this.paced++;
        this.awaitTokens();
        return;
      }
      this.waiting.shift();
      this.used += next.bytes;
      next.go();
    }
    if (this.used > 0) this.arm(); // the next turn starts from a whole budget again
  };

  /** Runs a turn once the bucket is out of debt. */
  private awaitTokens(): void {
    if (this.refill_timer) return;
    const ms = Math.max(1, Math.ceil((-this.tokens * 1000) / this.rate));
    this.refill_timer = setTimeout(() => {
      this.refill_timer = null;
      this.turn();
    }, ms);
  }

  private startControl(): void {
    if (!this.pacer || this.control) return;
    this.appends = 0;
    this.replayed = 0;
    this.idle_periods = 0;
    this.lag_max_ms = 0;
    this.last_tick = performance.now();
    this.sampler = setInterval(this.tick, LAG_TICK_MS);
    this.sampler.unref();
    this.control = setInterval(this.period, this.pacer.o.period_ms);
    this.control.unref();
  }

  private stopControl(): void {
    if (this.control) clearInterval(this.control);
    if (this.sampler) clearInterval(this.sampler);
    this.control = null;
    this.sampler = null;
  }

  /** The sampler's timer: how much later than LAG_TICK_MS after the previous tick it fired is how late the event loop ran. */
  private readonly tick = (): void => {
    const now = performance.now();
    this.lag_max_ms = Math.max(this.lag_max_ms, now - this.last_tick - LAG_TICK_MS);
    this.last_tick = now;
  };

  /** One control period: the pacer sets the next rate from what this one saw. */
  private readonly period = (): void => {
    // The loop may also have run late since the sampler's last tick (this callback itself is late then).
    this.tick();
    const sample = { lag_max_ms: Math.max(0, this.lag_max_ms), appends: this.appends, replayed_bytes: this.replayed, waiting: this.waiting.length > 0 };
    this.lag_max_ms = 0;
    this.appends = 0;
    this.replayed = 0;
    const before = this.rate;
    const rate = this.pacer!.step(sample);
    if (rate < before) {
      // A cut starts from an empty bucket, so it takes effect at once.
      this.tokens = Math.min(this.tokens, 0);
      this.refilled = performance.now();
    } else if (rate === Infinity && this.refill_timer) {
      // The limit is lifted: frames waiting for tokens go at the next turn.
      clearTimeout(this.refill_timer);
      this.refill_timer = null;
      this.arm();
    }
    // No catch-up frame for a while: stop sampling until the next one.
    this.idle_periods = sample.replayed_bytes === 0 && !sample.waiting ? this.idle_periods + 1 : 0;
    if (this.idle_periods >= IDLE_PERIODS) this.stopControl();
  };
}
