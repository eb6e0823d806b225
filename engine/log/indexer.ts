import { limits } from '../base/limits.js';
import type { Catalog, PartitionKey } from '../catalog/catalog.js';

/**
 * The one rule for sparse index entries, shared by the append path and by rebuilds from segment
 * files, so a rebuilt index equals the one written live: an offset entry (and a time entry keyed by
 * the partition's running max timestamp) for the first batch of each segment and then for the
 * first batch at least `index_interval_bytes` after the previous entry.
 */
export class Indexer {
  private last_entry_position = -1;
  private last_entry_segment = -1;
  private continued = false;
  /** Newest leader epoch recorded for this partition (-1: none yet). */
  private last_epoch = -1;

  constructor(
    private readonly catalog: Catalog,
    private readonly key: PartitionKey,
    /** Running max of record timestamps over the whole partition so far. */
    public running_max_ts = -1,
    /**
     * `segment`: re-index one segment in the middle of the log (after compaction) — neither continue
     * from the index's last key nor touch epoch starts, which such a rewrite does not move.
     */
    mode: 'append' | 'segment' = 'append',
  ) {
    if (mode === 'segment') {
      this.continued = true;
      this.record_epochs = false;
    }
  }
  private record_epochs = true;

  /** Continue indexing a segment whose entries up to `position` already exist (-1: it has none yet). */
  resumeAt(segment_base: number, position: number): void {
    // A segment without entries (empty, or cut back to empty) must index its next batch as its first.
    this.last_entry_segment = position < 0 ? -1 : segment_base;
    this.last_entry_position = position;
  }

  /**
   * Also records where each leader epoch starts (the first batch stamped with it), for divergence
   * checks by followers and relays (`PartitionLog.epochEnd`).
   */
  onBatch(segment_base: number, position: number, batch_base: number, max_ts: number, leader_epoch = 0): void {
    if (!this.continued) {
      const epochs = this.catalog.listEpochs(this.key);
      this.last_epoch = epochs.length > 0 ? epochs[epochs.length - 1]!.epoch : -1;
      // Time-index keys must grow with offsets (dropIndexRange relies on it). Entries already in the
      // index may carry a running max from segments that retention has deleted since, which the
      // segments left cannot reproduce: continue from the largest key there is.
      this.continued = true;
      const last = this.catalog.lastTimeKey(this.key);
      if (last !== null && last > this.running_max_ts) this.running_max_ts = last;
    }
    if (this.record_epochs && leader_epoch > this.last_epoch) {
      this.catalog.putEpochStart(this.key, leader_epoch, batch_base);
      this.last_epoch = leader_epoch;
    }
    if (max_ts > this.running_max_ts) this.running_max_ts = max_ts;
    const due =
      segment_base !== this.last_entry_segment ||
      position - this.last_entry_position >= limits.index_interval_bytes;
    if (!due) return;
    this.last_entry_segment = segment_base;
    this.last_entry_position = position;
    this.catalog.putOffsetEntry(this.key, batch_base, segment_base, position);
    this.catalog.putTimeEntry(this.key, this.running_max_ts, batch_base, segment_base, position);
  }
}
