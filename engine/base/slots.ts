/**
 * A counting semaphore: at most `max` holders at once, the rest wait in arrival order.
 *
 * The engine uses one per node for reads of segment files. Node runs file I/O on libuv's small
 * thread pool, and a few replaying readers could fill it with multi-MiB reads. An append's write
 * and fdatasync would then queue behind them: the append path must never wait for catch-up reads.
 */
export class Slots {
  private used = 0;
  private readonly waiting: Array<() => void> = [];

  constructor(readonly max: number) {}

  /** Runs `fn` holding one slot. */
  async run<T>(fn: () => Promise<T>): Promise<T> {
    if (this.used >= this.max) await new Promise<void>((resolve) => this.waiting.push(resolve));
    else this.used++;
    try {
      return await fn();
    } finally {
      const next = this.waiting.shift();
      if (next) next(); // the slot passes straight to the next waiter
      else this.used--;
    }
  }
}
