/**
 * Long-poll waiters for one partition: each waits until the high watermark passes its offset.
 * Woken in one pass when the watermark moves; every waiter has its own timeout, so the set is
 * bounded by the number of open requests and nothing polls.
 */
interface Waiter {
  offset: number;
  done: (ok: boolean) => void;
}

export class Waiters {
  private waiting = new Set<Waiter>();

  get size(): number {
    return this.waiting.size;
  }

  wait(offset: number, timeout_ms: number, signal?: AbortSignal): Promise<boolean> {
    if (signal?.aborted) return Promise.resolve(false);
    return new Promise<boolean>((resolve) => {
      const finish = (ok: boolean) => {
        if (!this.waiting.delete(w)) return;
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        resolve(ok);
      };
      const w: Waiter = { offset, done: finish };
      const onAbort = () => finish(false);
      const timer = setTimeout(() => finish(false), Math.max(0, timeout_ms));
      signal?.addEventListener('abort', onAbort, { once: true });
      this.waiting.add(w);
    });
  }

  wake(high_watermark: number): void {
    for (const w of [...this.waiting]) if (high_watermark > w.offset) w.done(true);
  }

  closeAll(): void {
    for (const w of [...this.waiting]) w.done(false);
  }
}
