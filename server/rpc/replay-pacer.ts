/**
 * How fast catch-up replay may go while producers are writing: a pure controller, driven once per
 * control period by what the server observed in it (turn-budget.ts feeds it and enforces the rate).
 *
 * Why: a server's appends and its catch-up replays share one event loop and, on a small machine,
 * the same cores as the readers that consume the replay. Eight readers replaying as fast as the
 * server sends (700 MB/s here) kept every core busy; the server's event loop then waited for a core
 * 30-40 ms in every 100 ms, and a producer's acks waited with it (docs/benchmarks.md, "Replay
 * yields to appends"). Catch-up readers are bulk work; a producer's ack is not. So, while appends
 * arrive and catch-up frames flow, the controller watches the longest event-loop delay of each
 * period and:
 *   - above `lag_target_ms` in a period in which appends arrived: halves the catch-up rate (from
 *     what actually flowed), never below `floor_bytes_per_s`, so every reader still makes progress;
 *   - at or below it, or in a period without an append: raises the rate by `floor_bytes_per_s`
 *     per period (additive increase, multiplicative decrease, as TCP probes for bandwidth), and
 *     lifts the limit altogether once it is 4× what the readers take and no frame is waiting for
 *     it (it no longer binds). A late loop in a period without an append delayed no append, and
 *     it is often the replay's own work: a replay that started right after producers stopped was
 *     cut for it (0.4 GB/s instead of 1 GB/s for its first second);
 *   - with no append for `QUIET_PERIODS` periods, or no catch-up frame sent or waiting: no limit.
 * Replay with no producer writing is never slowed, and a live tail's small frames are never paced.
 */
export interface PacerOptions {
  /** The event-loop delay (the longest in a period, ms) above which catch-up replay is slowed while appends arrive. 0: never. */
  lag_target_ms: number;
  /** The slowest catch-up replay is paced to, over all subscribers, bytes per second. */
  floor_bytes_per_s: number;
  /** One control period, ms. */
  period_ms: number;
}

/** What the server observed in one control period. */
export interface PeriodSample {
  /** The longest event-loop delay seen, ms. */
  lag_max_ms: number;
  /** Record sets appended (produce requests). */
  appends: number;
  /** Catch-up (large-frame) bytes sent. */
  replayed_bytes: number;
  /** Catch-up frames are waiting for the rate at the period's end (replay goes on, however little was sent). */
  waiting: boolean;
}

export const DECREASE = 0.5;
/** The limit is lifted once it is this many times what flowed: it no longer binds. */
export const UNBOUND_FACTOR = 4;
/** Producers count as writing until this many periods in a row have seen no append (a sparse producer is still one). */
export const QUIET_PERIODS = 10;

export class ReplayPacer {
  /** Catch-up bytes per second allowed now; Infinity: no limit. */
  rate = Infinity;

  /** Periods in a row without an append. */
  private quiet = QUIET_PERIODS;

  constructor(readonly o: PacerOptions) {}

  /** One control period: returns the rate for the next one. */
  step(s: PeriodSample): number {
    this.quiet = s.appends > 0 ? 0 : this.quiet + 1;
    if (this.o.lag_target_ms <= 0 || this.quiet >= QUIET_PERIODS || (s.replayed_bytes === 0 && !s.waiting)) return (this.rate = Infinity);
    const flowed = (s.replayed_bytes * 1000) / this.o.period_ms;
    if (s.lag_max_ms > this.o.lag_target_ms && s.appends > 0) {
      this.rate = Math.max(this.o.floor_bytes_per_s, Math.min(this.rate, flowed) * DECREASE);
    } else if (Number.isFinite(this.rate)) {
      this.rate += this.o.floor_bytes_per_s;
      // Frames still waiting for the rate: it binds, however little went out in this period.
      if (!s.waiting && this.rate > UNBOUND_FACTOR * flowed) this.rate = Infinity;
    }
    return this.rate;
  }
}
