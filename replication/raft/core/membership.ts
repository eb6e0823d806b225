/**
 * The membership in effect on this node: the latest conf_change entry in its log, or the
 * bootstrap configuration if there is none. Keeps the history of changes above the commit index
 * so that truncating the log can undo a change (a change takes effect when appended).
 */
import { assert } from '../../../engine/base/assert.js';
import { assertValidConfState, decodeConfChangeEntry, isSingleServerChange } from './conf-change.js';
import type { ConfState, Entry, NodeId } from './types.js';

interface Point {
  /** Index of the conf_change entry (or of the bootstrap point). */
  readonly index: number;
  readonly conf: ConfState;
  readonly from_log: boolean;
}

export class Membership {
  /** Ascending by index; [0] is the newest point at or below the commit index (or the bootstrap). */
  private points: Point[];

  constructor(bootstrap: ConfState, bootstrap_index: number) {
    assertValidConfState(bootstrap);
    this.points = [{ index: bootstrap_index, conf: bootstrap, from_log: false }];
  }

  current(): ConfState {
    return this.points[this.points.length - 1]!.conf;
  }

  /** Index of the newest change in the log (0 or the bootstrap index if none). */
  lastChangeIndex(): number {
    return this.points[this.points.length - 1]!.index;
  }

  isVoter(id: NodeId): boolean {
    return this.current().voters.includes(id);
  }

  isLearner(id: NodeId): boolean {
    return this.current().learners.includes(id);
  }

  isMember(id: NodeId): boolean {
    return this.isVoter(id) || this.isLearner(id);
  }

  /** Entries were written at entries[0].index (replacing anything from there on). True if membership changed. */
  onAppend(entries: readonly Entry[]): boolean {
    const first = entries[0];
    if (first === undefined) return false;
    const before = this.current();
    this.truncateFrom(first.index);
    for (const e of entries) {
      if (e.kind !== 'conf_change') continue;
      const prev = this.points[this.points.length - 1]!;
      const { conf_state } = decodeConfChangeEntry(e.data);
      // Pair assertion with the leader's check: one voter at a time. A node that joined with an
      // empty bootstrap learns the full membership from its first change, so skip that one.
      assert(!prev.from_log || isSingleServerChange(prev.conf, conf_state), `entry ${e.index} changes more than one voter`);
      this.points.push({ index: e.index, conf: conf_state, from_log: true });
    }
    return this.current() !== before;
  }

  private truncateFrom(index: number): void {
    while (this.points.length > 1 && this.points[this.points.length - 1]!.index >= index) this.points.pop();
    assert(this.points[this.points.length - 1]!.index < index, `truncating at ${index} would undo a committed membership change`);
  }

  /** A snapshot from the leader replaced the whole log: its membership is the one point left. */
  restore(conf: ConfState, index: number): void {
    assertValidConfState(conf);
    this.points = [{ index, conf, from_log: true }];
  }

  /** Forget points that can never be undone (at or below the commit index), keeping the newest of them. */
  compact(committed: number): void {
    while (this.points.length > 1 && this.points[1]!.index <= committed) this.points.shift();
  }
}
