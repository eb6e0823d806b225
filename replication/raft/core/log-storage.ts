/**
 * The stable part of a Raft log, as the core sees it: read-only. The caller writes to it (after a
 * Ready) and the core only reads. Any store that knows the term of each entry can serve: the
 * segment store's record batches carry their Raft term in the header.
 *
 * Indexes are 1-based. An empty log has firstIndex() = 1 and lastIndex() = 0. A store that has
 * discarded a prefix (compaction, or an installed snapshot) has firstIndex() > 1, must still answer
 * term(firstIndex() - 1), and hands out the snapshot that stands in for the prefix.
 */
import { assert } from '../../../engine/base/assert.js';
import type { ConfState, Entry, HardState, Snapshot } from './types.js';
import { entrySizeBytes } from './types.js';

export interface LogStorage {
  firstIndex(): number;
  lastIndex(): number;
  /** Term of entry `index` for firstIndex()-1 <= index <= lastIndex(); undefined outside (0 for index 0). */
  term(index: number): number | undefined;
  /**
   * Entries [lo, hi), lo >= firstIndex(), hi <= lastIndex() + 1, stopping before the total payload
   * would exceed `max_bytes` but always returning at least one entry when lo < hi.
   */
  entries(lo: number, hi: number, max_bytes: number): Entry[];
  /** The snapshot covering [1, firstIndex() - 1] (index 0 while nothing has been discarded). */
  snapshot(): Snapshot;
}

/** The snapshot of a store that has discarded nothing. */
export function emptySnapshot(conf_state: ConfState = { voters: [], learners: [] }): Snapshot {
  return { meta: { index: 0, term: 0, conf_state }, data: Buffer.alloc(0) };
}

/** In-memory LogStorage for tests and the simulator; also keeps the hard state as a disk would. */
export class MemoryLogStorage implements LogStorage {
  /** Entries snap.meta.index + 1 .. lastIndex(). */
  private log: Entry[] = [];
  private snap: Snapshot = emptySnapshot();
  hard_state: HardState = { term: 0, vote: 0, commit: 0 };

  constructor(entries: readonly Entry[] = []) {
    if (entries.length > 0) this.append(entries);
  }

  private get base(): number {
    return this.snap.meta.index;
  }

  firstIndex(): number {
    return this.base + 1;
  }

  lastIndex(): number {
    return this.base + this.log.length;
  }

  term(index: number): number | undefined {
    if (index === this.base) return this.snap.meta.term;
    if (index < this.base) return undefined;
    return this.log[index - this.base - 1]?.term;
  }

  snapshot(): Snapshot {
    return this.snap;
  }

  entries(lo: number, hi: number, max_bytes: number): Entry[] {
    assert(lo >= this.firstIndex() && lo <= hi && hi <= this.lastIndex() + 1, `entries [${lo}, ${hi}) outside [${this.firstIndex()}, ${this.lastIndex() + 1})`);
    const out: Entry[] = [];
    let size_bytes = 0;
    for (let i = lo; i < hi; i++) {
      const e = this.log[i - this.base - 1]!;
      size_bytes += entrySizeBytes(e);
      if (out.length > 0 && size_bytes > max_bytes) break;
      out.push(e);
    }
    return out;
  }

  /** Deletes every entry at or after entries[0].index, then appends: what a caller does with a Ready. */
  append(entries: readonly Entry[]): void {
    const first = entries[0];
    if (first === undefined) return;
    assert(first.index > this.base && first.index <= this.lastIndex() + 1, `append at ${first.index} outside (${this.base}, ${this.lastIndex() + 1}]`);
    this.log.length = first.index - this.base - 1;
    for (const e of entries) {
      assert(e.index === this.lastIndex() + 1, `entries not contiguous at ${e.index}`);
      const prev_term = this.term(this.lastIndex())!;
      assert(e.term >= prev_term, `term goes backwards at ${e.index}: ${e.term} < ${prev_term}`);
      this.log.push(e);
    }
  }

  setHardState(hs: HardState): void {
    assert(hs.commit <= this.lastIndex(), `hard state commit ${hs.commit} beyond stored log ${this.lastIndex()}`);
    this.hard_state = hs;
  }

  /** Drops entries after `last_index` (a torn tail after a crash). */
  truncateAfter(last_index: number): void {
    assert(last_index >= this.hard_state.commit, 'a torn tail never loses committed-and-persisted entries');
    if (last_index < this.lastIndex()) this.log.length = Math.max(0, last_index - this.base);
  }

  /**
   * Discards entries up to `index` (the caller has applied them; `conf_state` is the membership in
   * effect there), keeping a snapshot in their place.
   */
  compact(index: number, conf_state: ConfState, data: Buffer = Buffer.alloc(0)): void {
    assert(index > this.base && index <= this.lastIndex(), `compact to ${index} outside (${this.base}, ${this.lastIndex()}]`);
    const term = this.term(index)!;
    this.log = this.log.slice(index - this.base);
    this.snap = { meta: { index, term, conf_state }, data };
  }

  /** Installs a snapshot from a Ready: the whole log goes; the store starts after it. */
  applySnapshot(snap: Snapshot): void {
    assert(snap.meta.index > this.base, `snapshot at ${snap.meta.index} is not newer than ${this.base}`);
    this.log = [];
    this.snap = snap;
  }

  /** The whole stored log after the snapshot (tests and the simulator). */
  all(): readonly Entry[] {
    return this.log;
  }
}
