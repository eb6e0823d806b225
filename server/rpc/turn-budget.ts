/**
 * How much catch-up replay one turn of the event loop may send.
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
 * Small frames (at most `small_frame_bytes`, a live tail's) never wait: they count towards the
 * turn but are sent at once, so following the tail adds no latency.
 */
export class TurnBudget {
  private used = 0;
  private armed = false;
  private readonly waiting: Array<{ bytes: number; go: () => void }> = [];
  /** Frames that had to wait for a later turn (a metric for tests and operators). */
  deferred = 0;

  constructor(
    readonly bytes_per_turn: number,
    readonly small_frame_bytes: number,
  ) {}

  /** null: send now. Otherwise resolves in a later turn, when the frame may be sent. */
  take(bytes: number): Promise<void> | null {
    if (bytes <= this.small_frame_bytes || (this.waiting.length === 0 && (this.used === 0 || this.used + bytes <= this.bytes_per_turn))) {
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

  private arm(): void {
    if (this.armed) return;
    this.armed = true;
    setImmediate(this.turn);
  }

  /** A new turn: the budget is whole again; waiting frames go in order while it lasts. */
  private readonly turn = (): void => {
    this.armed = false;
    this.used = 0;
    while (this.waiting.length > 0) {
      const next = this.waiting[0]!;
      if (this.used > 0 && this.used + next.bytes > this.bytes_per_turn) break;
      this.waiting.shift();
      this.used += next.bytes;
      next.go();
    }
    if (this.used > 0) this.arm(); // the next turn starts from a whole budget again
  };
}
