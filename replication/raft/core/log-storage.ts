/**
 * The stable part of a Raft log, as the core sees it: read-only. The caller writes to it (after a
 * Ready) and the core only reads. Any store that knows the term of each entry can serve: the
 * segment store's record batches carry their Raft term in the header.
 *
 * Indexes are 1-based. An empty log has firstIndex() = 1 and lastIndex() = 0. A store that has
 * discarded a prefix (compaction) has firstIndex() > 1 and must still answer term(firstIndex() - 1).
 */
import { assert } from '../../../engine/base/assert.js';
import type { Entry, HardState } from './types.js';
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
}

/** In-memory LogStorage for tests and the simulator; also keeps the hard state as a disk would. */
export class MemoryLogStorage implements LogStorage {
  private log: Entry[] = [];
  hard_state: HardState = { term: 0, vote: 0, commit: 0 };

  constructor(entries: readonly Entry[] = []) {
    if (entries.length > 0) this.append(entries);
  }

  firstIndex(): number {
    return 1;
  }

  lastIndex(): number {
    return this.log.length;
  }

  term(index: number): number | undefined {
    if (index === 0) return 0;
    return this.log[index - 1]?.term;
  }

  entries(lo: number, hi: number, max_bytes: number): Entry[] {
    assert(lo >= 1 && lo <= hi && hi <= this.log.length + 1, `entries [${lo}, ${hi}) outside [1, ${this.log.length + 1})`);
    const out: Entry[] = [];
    let size_bytes = 0;
    for (let i = lo; i < hi; i++) {
      const e = this.log[i - 1]!;
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
    assert(first.index >= 1 && first.index <= this.log.length + 1, `append at ${first.index} leaves a gap after ${this.log.length}`);
    this.log.length = first.index - 1;
    for (const e of entries) {
      assert(e.index === this.log.length + 1, `entries not contiguous at ${e.index}`);
      const prev_term = this.log[this.log.length - 1]?.term ?? 0;
      assert(e.term >= prev_term, `term goes backwards at ${e.index}: ${e.term} < ${prev_term}`);
      this.log.push(e);
    }
  }

  setHardState(hs: HardState): void {
    assert(hs.commit <= this.log.length, `hard state commit ${hs.commit} beyond stored log ${this.log.length}`);
    this.hard_state = hs;
  }

  /** Drops entries after `last_index` (a torn tail after a crash). */
  truncateAfter(last_index: number): void {
    assert(last_index >= this.hard_state.commit, 'a torn tail never loses committed-and-persisted entries');
    if (last_index < this.log.length) this.log.length = last_index;
  }

  /** The whole stored log (tests and the simulator). */
  all(): readonly Entry[] {
    return this.log;
  }
}
