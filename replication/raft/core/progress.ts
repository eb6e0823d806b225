/**
 * What a leader knows about one follower's log (thesis §3.5 / etcd's Progress):
 *  - probe:     we do not know where the follower's log matches ours; send one append at a time
 *               and back off on rejection;
 *  - replicate: the follower is in sync; stream appends optimistically, at most
 *               `inflight_appends_max` unacknowledged at once.
 */
import { assert } from '../../../engine/base/assert.js';

export type ProgressState = 'probe' | 'replicate';

export class Progress {
  match = 0;
  next: number;
  state: ProgressState = 'probe';
  /** probe: an append is outstanding; wait for its answer (or the next heartbeat response). */
  probe_sent = false;
  /** Heard from since the last check-quorum round. */
  recent_active = false;
  /** replicate: last index of each unacknowledged append, ascending. */
  private inflight: number[] = [];

  constructor(
    next: number,
    public is_learner: boolean,
    private readonly inflight_appends_max: number,
  ) {
    assert(next >= 1, 'next index starts at 1');
    assert(inflight_appends_max >= 1, 'inflight_appends_max must be at least 1');
    this.next = next;
  }

  becomeProbe(): void {
    this.state = 'probe';
    this.probe_sent = false;
    this.inflight = [];
    this.next = this.match + 1;
  }

  becomeReplicate(): void {
    this.state = 'replicate';
    this.probe_sent = false;
    this.inflight = [];
    this.next = this.match + 1;
  }

  isPaused(): boolean {
    return this.state === 'probe' ? this.probe_sent : this.inflight.length >= this.inflight_appends_max;
  }

  /** An append ending at `last_index` (carrying `count` entries) went out. */
  sent(last_index: number, count: number): void {
    if (this.state === 'probe') {
      this.probe_sent = true;
      return;
    }
    if (count === 0) return;
    assert(last_index >= this.next, `sent through ${last_index} but next is ${this.next}`);
    this.inflight.push(last_index);
    this.next = last_index + 1;
  }

  /** A success up to `n`; false if it tells us nothing new (a stale or duplicate reply). */
  maybeUpdate(n: number): boolean {
    if (n <= this.match) return false;
    this.match = n;
    if (this.next <= n) this.next = n + 1;
    this.probe_sent = false;
    while (this.inflight.length > 0 && this.inflight[0]! <= n) this.inflight.shift();
    return true;
  }

  /**
   * A rejection of the append whose prev_log_index was `rejected`; `hint_next` is where the hint
   * says to try next. False if the reply is stale.
   */
  maybeDecrTo(rejected: number, hint_next: number): boolean {
    if (this.state === 'replicate') {
      // Everything up to match is known good; a rejection above it means the follower lost or
      // never got something we streamed.
      if (rejected <= this.match) return false;
      this.becomeProbe();
      return true;
    }
    if (this.next - 1 !== rejected) return false;
    this.next = Math.max(Math.min(rejected, hint_next), this.match + 1);
    this.probe_sent = false;
    return true;
  }

  /** A heartbeat response proves the follower is alive: let one more append through. */
  onHeartbeatResponse(): void {
    this.probe_sent = false;
    if (this.state === 'replicate' && this.inflight.length >= this.inflight_appends_max) this.inflight.shift();
  }
}
