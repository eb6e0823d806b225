/**
 * The log as the core sees it: the stable entries in a read-only LogStorage plus an in-memory
 * "unstable" tail of entries not yet handed to the caller for persisting (or handed out in the
 * Ready being persisted now). The unstable tail may replace a suffix of storage (after a conflict);
 * such a replaced suffix is invisible here and deleted by the caller when it persists the tail.
 */
import { assert } from '../../../engine/base/assert.js';
import type { LogStorage } from './log-storage.js';
import type { Entry, Snapshot } from './types.js';
import { entrySizeBytes } from './types.js';

export interface MaybeAppendResult {
  /** Index of the last entry of the request, now known to match the leader. */
  readonly last_new_index: number;
  /** Entries actually written (the suffix from the first conflict or new index), possibly empty. */
  readonly appended: readonly Entry[];
}

export class RaftLog {
  private unstable: Entry[] = [];
  /** Index of unstable[0]; everything below it is read from storage. */
  private unstable_offset: number;
  /**
   * A snapshot received from the leader and not yet installed by the caller (it is in the Ready
   * being carried out, or the next one): it replaces the whole stored log, which is invisible now.
   */
  private unstable_snapshot: Snapshot | null = null;
  /** The unstable snapshot has been handed out in a Ready. */
  private snapshot_in_ready = false;
  committed: number;
  applied: number;

  constructor(
    readonly storage: LogStorage,
    committed: number,
    applied: number,
  ) {
    this.unstable_offset = storage.lastIndex() + 1;
    assert(committed <= storage.lastIndex(), `commit ${committed} beyond stored log ${storage.lastIndex()}`);
    assert(applied <= committed, `applied ${applied} beyond commit ${committed}`);
    // Everything a stored snapshot covers was committed, and the caller restored it on start (a
    // crash may have come between installing a snapshot and storing the hard state that follows).
    const snapshot_index = storage.firstIndex() - 1;
    this.committed = Math.max(committed, snapshot_index);
    this.applied = Math.max(applied, snapshot_index);
  }

  firstIndex(): number {
    if (this.unstable_snapshot !== null) return this.unstable_snapshot.meta.index + 1;
    return this.storage.firstIndex();
  }

  /** The snapshot standing in for entries before firstIndex(). */
  snapshot(): Snapshot {
    return this.unstable_snapshot ?? this.storage.snapshot();
  }

  lastIndex(): number {
    return this.unstable_offset + this.unstable.length - 1;
  }

  /** The last index that is durable and still part of this log. */
  stableLastIndex(): number {
    return this.unstable_offset - 1;
  }

  term(index: number): number | undefined {
    if (index >= this.unstable_offset) return this.unstable[index - this.unstable_offset]?.term;
    const snap = this.unstable_snapshot;
    if (snap !== null) return index === snap.meta.index ? snap.meta.term : undefined;
    return this.storage.term(index);
  }

  lastTerm(): number {
    const t = this.term(this.lastIndex());
    assert(t !== undefined, `no term for last index ${this.lastIndex()}`);
    return t;
  }

  matchTerm(index: number, term: number): boolean {
    return this.term(index) === term;
  }

  /** §5.4.1: a candidate's log is at least as up to date as ours. */
  isUpToDate(last_index: number, last_term: number): boolean {
    const my_term = this.lastTerm();
    return last_term > my_term || (last_term === my_term && last_index >= this.lastIndex());
  }

  /** Leader-side append of new entries at the end of the log. */
  append(entries: readonly Entry[]): void {
    const first = entries[0];
    if (first === undefined) return;
    assert(first.index === this.lastIndex() + 1, `leader append at ${first.index}, last is ${this.lastIndex()}`);
    this.truncateAndAppend(entries);
  }

  /**
   * Follower-side append (§5.3): if our entry at prev_index has prev_term, drop any conflicting
   * suffix and append what is new. Returns null when prev does not match.
   */
  maybeAppend(prev_index: number, prev_term: number, commit: number, entries: readonly Entry[]): MaybeAppendResult | null {
    if (!this.matchTerm(prev_index, prev_term)) return null;
    const last_new_index = prev_index + entries.length;
    const conflict = this.findConflict(entries);
    let appended: readonly Entry[] = [];
    if (conflict !== 0) {
      assert(conflict > this.committed, `entry ${conflict} conflicts with committed ${this.committed}`);
      appended = entries.slice(conflict - prev_index - 1);
      this.truncateAndAppend(appended);
    }
    this.commitTo(Math.min(commit, last_new_index));
    return { last_new_index, appended };
  }

  /** Index of the first entry that is new or whose term differs from ours; 0 if all match. */
  private findConflict(entries: readonly Entry[]): number {
    for (const e of entries) {
      if (!this.matchTerm(e.index, e.term)) return e.index;
    }
    return 0;
  }

  /**
   * The largest index <= `index` whose term is <= `term` (or the first index we cannot see), with
   * its term. Both sides of the fast backoff use it.
   */
  findConflictByTerm(index: number, term: number): { index: number; term: number } {
    let i = Math.min(index, this.lastIndex());
    for (;;) {
      const t = this.term(i);
      if (t === undefined) return { index: i, term: 0 };
      if (t <= term || i === 0) return { index: i, term: t };
      i--;
    }
  }

  private truncateAndAppend(entries: readonly Entry[]): void {
    const first = entries[0]!.index;
    assert(first > this.committed, `truncating at ${first} would drop committed ${this.committed}`);
    assert(first <= this.lastIndex() + 1, `append at ${first} leaves a gap after ${this.lastIndex()}`);
    if (first <= this.unstable_offset) {
      this.unstable = entries.slice();
      this.unstable_offset = first;
    } else {
      this.unstable = this.unstable.slice(0, first - this.unstable_offset).concat(entries);
    }
    this.assertContiguous(this.unstable, this.unstable_offset);
  }

  /**
   * Follower: replace the whole log with a snapshot from the leader (§7). Everything it covers is
   * committed and, once the caller has installed it, applied.
   */
  restore(snap: Snapshot): void {
    assert(snap.meta.index > this.committed, `snapshot at ${snap.meta.index} is not beyond commit ${this.committed}`);
    this.unstable_snapshot = snap;
    this.snapshot_in_ready = false;
    this.unstable = [];
    this.unstable_offset = snap.meta.index + 1;
    this.committed = snap.meta.index;
    this.applied = snap.meta.index;
  }

  /** The snapshot to install in the next Ready, if any (and not already handed out). */
  snapshotToInstall(): Snapshot | undefined {
    if (this.unstable_snapshot === null || this.snapshot_in_ready) return undefined;
    this.snapshot_in_ready = true;
    return this.unstable_snapshot;
  }

  hasSnapshotToInstall(): boolean {
    return this.unstable_snapshot !== null && !this.snapshot_in_ready;
  }

  /** The caller has installed `snap`: the store now starts after it. */
  stableSnapTo(snap: Snapshot): void {
    assert(this.storage.firstIndex() === snap.meta.index + 1 && this.storage.term(snap.meta.index) === snap.meta.term, `storage does not start after snapshot ${snap.meta.index}@${snap.meta.term}`);
    if (this.unstable_snapshot === snap) {
      this.unstable_snapshot = null;
      this.snapshot_in_ready = false;
    }
  }

  commitTo(index: number): void {
    if (index <= this.committed) return;
    assert(index <= this.lastIndex(), `commit ${index} beyond last index ${this.lastIndex()}`);
    this.committed = index;
  }

  /** Entries [lo, hi) under a byte budget (at least one entry when lo < hi). */
  slice(lo: number, hi: number, max_bytes: number): Entry[] {
    assert(lo >= this.firstIndex() && hi <= this.lastIndex() + 1, `slice [${lo}, ${hi}) outside the log`);
    if (lo >= hi) return [];
    let out: Entry[] = [];
    if (lo < this.unstable_offset) {
      const stored_hi = Math.min(hi, this.unstable_offset);
      out = this.storage.entries(lo, stored_hi, max_bytes);
      this.assertContiguous(out, lo);
      if (out.length < stored_hi - lo) return out;
    }
    let size_bytes = out.reduce((n, e) => n + entrySizeBytes(e), 0);
    for (let i = Math.max(lo, this.unstable_offset); i < hi; i++) {
      const e = this.unstable[i - this.unstable_offset]!;
      size_bytes += entrySizeBytes(e);
      if (out.length > 0 && size_bytes > max_bytes) break;
      out.push(e);
    }
    return out;
  }

  /** Pair assertion with the writer side: a read returns contiguous entries from where it was asked. */
  private assertContiguous(entries: readonly Entry[], first_index: number): void {
    for (let i = 0; i < entries.length; i++) {
      assert(entries[i]!.index === first_index + i, `entry ${entries[i]!.index} where ${first_index + i} was expected`);
    }
  }

  unstableEntries(): readonly Entry[] {
    return this.unstable.slice();
  }

  hasUnstable(): boolean {
    return this.unstable.length > 0;
  }

  /** The caller has persisted the unstable tail through (index, term): check it, then forget it. */
  stableTo(index: number, term: number): void {
    assert(index === this.lastIndex() && this.term(index) === term, `stableTo(${index}, ${term}) does not end the unstable tail`);
    assert(this.storage.lastIndex() === index && this.storage.term(index) === term, `storage does not hold ${index}@${term} after persisting`);
    this.unstable = [];
    this.unstable_offset = index + 1;
  }

  hasNextCommitted(): boolean {
    return this.committed > this.applied;
  }

  nextCommitted(max_bytes: number): Entry[] {
    if (this.committed <= this.applied) return [];
    return this.slice(this.applied + 1, this.committed + 1, max_bytes);
  }

  appliedTo(index: number): void {
    assert(index > this.applied && index <= this.committed, `applied ${index} outside (${this.applied}, ${this.committed}]`);
    this.applied = index;
  }
}
