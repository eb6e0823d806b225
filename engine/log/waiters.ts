/**
 * Long-poll waiters for one partition: each waits until the high watermark passes its offset.
 * Woken in one pass when the watermark moves; every waiter has its own deadline, so the set is
 * bounded by the number of open requests and nothing polls.
 *
 * A live tail waits once per record it follows, so a wait is kept cheap: no timer and no abort
 * listener of its own. One timer per partition is armed for the earliest deadline (unref'd: a
 * waiter never keeps a process alive by itself), and each abort signal gets one listener, the
 * first time it is used here, that ends all its waits (a Kafka fetch waits on several partitions
 * with one signal). With a timer and a listener per wait, a tail subscriber allocated about 800
 * bytes per record here; with many subscribers that was a good part of the server's young garbage.
 */
interface Waiter {
  offset: number;
  /** performance.now() at which it gives up. */
  deadline: number;
  signal: AbortSignal | undefined;
  resolve: (ok: boolean) => void;
}

/** A timer may fire up to this much before a deadline (libuv's clock has whole milliseconds). */
const DEADLINE_SLACK_MS = 1;

export class Waiters {
  private waiting = new Set<Waiter>();
  /** Per abort signal, its waiters here (the signal's one listener ends them). */
  private by_signal = new WeakMap<AbortSignal, Set<Waiter>>();
  private timer: NodeJS.Timeout | null = null;
  private timer_at = Infinity;

  get size(): number {
    return this.waiting.size;
  }

  wait(offset: number, timeout_ms: number, signal?: AbortSignal): Promise<boolean> {
    if (signal?.aborted) return Promise.resolve(false);
    return new Promise<boolean>((resolve) => {
      const w: Waiter = { offset, deadline: performance.now() + Math.max(0, timeout_ms), signal, resolve };
      this.waiting.add(w);
      if (signal !== undefined) this.signalSet(signal).add(w);
      if (w.deadline < this.timer_at) this.arm(w.deadline);
    });
  }

  wake(high_watermark: number): void {
    if (this.waiting.size === 0) return;
    for (const w of [...this.waiting]) if (high_watermark > w.offset) this.finish(w, true);
  }

  closeAll(): void {
    for (const w of [...this.waiting]) this.finish(w, false);
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    this.timer_at = Infinity;
  }

  private finish(w: Waiter, ok: boolean): void {
    if (!this.waiting.delete(w)) return;
    if (w.signal !== undefined) this.by_signal.get(w.signal)?.delete(w);
    w.resolve(ok);
  }

  private signalSet(signal: AbortSignal): Set<Waiter> {
    let set = this.by_signal.get(signal);
    if (set === undefined) {
      const mine = new Set<Waiter>();
      set = mine;
      this.by_signal.set(signal, mine);
      signal.addEventListener('abort', () => {
        for (const w of [...mine]) this.finish(w, false);
      }, { once: true });
    }
    return set;
  }

  private arm(deadline: number): void {
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer_at = deadline;
    this.timer = setTimeout(this.expire, Math.max(0, deadline - performance.now()));
    this.timer.unref();
  }

  /** The timer: ends the waits whose deadline has come, and re-arms for the next one. */
  private readonly expire = (): void => {
    this.timer = null;
    this.timer_at = Infinity;
    const now = performance.now() + DEADLINE_SLACK_MS;
    let next = Infinity;
    for (const w of [...this.waiting]) {
      if (w.deadline <= now) this.finish(w, false);
      else if (w.deadline < next) next = w.deadline;
    }
    if (next < Infinity) this.arm(next);
  };
}
