/**
 * Bytes handed to a stream and not yet written to its socket, with a wait for room. One per
 * subscriber: the subscription does not read the log while the window is full, so a slow
 * consumer costs the server at most `max_bytes` (plus one frame) of memory.
 */
export class ByteWindow {
  private inflight = 0;
  private wake: (() => void) | null = null;

  constructor(readonly max_bytes: number) {}

  get inflight_bytes(): number {
    return this.inflight;
  }

  add(bytes: number): void {
    this.inflight += bytes;
  }

  done(bytes: number): void {
    this.inflight -= bytes;
    if (this.inflight < this.max_bytes) this.wake?.();
  }

  /** Resolves once fewer than `max_bytes` are in flight, or when `signal` aborts. */
  room(signal: AbortSignal): Promise<void> {
    if (this.inflight < this.max_bytes || signal.aborted) return Promise.resolve();
    return new Promise((resolve) => {
      const finish = () => {
        this.wake = null;
        signal.removeEventListener('abort', finish);
        resolve();
      };
      this.wake = finish;
      signal.addEventListener('abort', finish, { once: true });
    });
  }
}
