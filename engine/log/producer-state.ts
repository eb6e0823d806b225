/**
 * The idempotent producer's per-partition state (docs/raft.md, "Idempotent producer"), Kafka's
 * rules: for each producer id, its epoch and the last `producer_window_batches` batches it wrote
 * (first sequence, last sequence, and where the batch landed: `ref`). Pure: no I/O, no clock.
 *
 * `check` decides what a produced batch is:
 *  - producer id unknown here: new, whatever its sequence (Kafka accepts any sequence from a
 *    producer whose state is gone, e.g. after retention);
 *  - epoch older than the one seen: PRODUCER_FENCED;
 *  - same epoch and the same (first, last) sequence as a remembered batch: a duplicate, answered
 *    with that batch's `ref` (nothing is written);
 *  - same epoch, otherwise first sequence must be last sequence + 1: OUT_OF_ORDER_SEQUENCE;
 *  - newer epoch: must start at sequence 0 (OUT_OF_ORDER_SEQUENCE otherwise).
 * `record` adds a batch that was (or is being) written; `replay` is the same without checks, for
 * batches read back from the log or replicated from a leader (their producer was checked there).
 *
 * `ref` is what the owner needs to answer a duplicate: offsets on a single node, the Raft index
 * and term on a cluster node.
 */
import { limits } from '../base/limits.js';
import { outOfOrderSequence, producerFenced } from '../base/errors.js';
import { F_BASE_SEQUENCE, F_LAST_OFFSET_DELTA, F_PRODUCER_EPOCH, F_PRODUCER_ID } from '../format/record-batch.js';

const INT32_MAX = 2 ** 31 - 1;

/**
 * Producer ids are `node_id × PRODUCER_ID_COUNTER_SPAN + n` (server/rpc/producer-ids.ts): n is a
 * per-node counter, which a rebuilt catalog restarts above what the segments remember (LogStore).
 */
export const PRODUCER_ID_COUNTER_SPAN = 2 ** 40;

/** What a batch header says about its producer. */
export interface ProducerBatch {
  producer_id: number;
  producer_epoch: number;
  first_seq: number;
  last_seq: number;
}

export interface BatchSeq<T> {
  first_seq: number;
  last_seq: number;
  ref: T;
}

export interface ProducerEntry<T> {
  producer_id: number;
  epoch: number;
  /** Oldest first, at most `window` of them, never empty. */
  batches: Array<BatchSeq<T>>;
}

export type SequenceCheck<T> = { kind: 'new' } | { kind: 'duplicate'; ref: T };

/** Kafka's sequence arithmetic: sequences wrap from 2^31 - 1 to 0. */
export function addSequence(seq: number, n: number): number {
  return seq > INT32_MAX - n ? n - (INT32_MAX - seq) - 1 : seq + n;
}

const inSequence = (last_seq: number, next_seq: number): boolean => next_seq === addSequence(last_seq, 1);

/**
 * The producer fields of the batch at `pos`, or null for a batch without an idempotent producer
 * (producerId < 0, or no sequence: Kafka's -1, and control batches).
 */
export function producerBatchOf(buf: Buffer, pos = 0): ProducerBatch | null {
  const producer_id = Number(buf.readBigInt64BE(pos + F_PRODUCER_ID));
  const first_seq = buf.readInt32BE(pos + F_BASE_SEQUENCE);
  if (producer_id < 0 || first_seq < 0) return null;
  return {
    producer_id,
    producer_epoch: buf.readInt16BE(pos + F_PRODUCER_EPOCH),
    first_seq,
    last_seq: addSequence(first_seq, buf.readInt32BE(pos + F_LAST_OFFSET_DELTA)),
  };
}

export class ProducerStateTable<T> {
  /** Insertion order is last-write order: the first key is the least recently written producer. */
  private readonly producers = new Map<number, ProducerEntry<T>>();

  constructor(
    private readonly window: number = limits.producer_window_batches,
    private readonly producers_max: number = limits.producer_ids_per_partition_max,
  ) {}

  get size(): number {
    return this.producers.size;
  }

  check(b: ProducerBatch): SequenceCheck<T> {
    const e = this.producers.get(b.producer_id);
    if (e === undefined) return { kind: 'new' };
    if (b.producer_epoch < e.epoch) throw producerFenced(b.producer_id, b.producer_epoch, e.epoch);
    if (b.producer_epoch > e.epoch) {
      if (b.first_seq !== 0) throw outOfOrderSequence(b.producer_id, b.producer_epoch, b.first_seq, 0);
      return { kind: 'new' };
    }
    for (const s of e.batches) if (s.first_seq === b.first_seq && s.last_seq === b.last_seq) return { kind: 'duplicate', ref: s.ref };
    const last = e.batches[e.batches.length - 1]!.last_seq;
    if (!inSequence(last, b.first_seq)) throw outOfOrderSequence(b.producer_id, b.producer_epoch, b.first_seq, addSequence(last, 1));
    return { kind: 'new' };
  }

  /** Checks, then records a new batch; returns the check's answer (a duplicate is not recorded again). */
  checkAndRecord(b: ProducerBatch, ref: T): SequenceCheck<T> {
    const c = this.check(b);
    if (c.kind === 'new') this.replay(b, ref);
    return c;
  }

  /** Records a batch without checks (read back from the log, or replicated). */
  replay(b: ProducerBatch, ref: T): void {
    let e = this.producers.get(b.producer_id);
    if (e !== undefined) this.producers.delete(b.producer_id); // re-inserted last: most recently written
    if (e === undefined || b.producer_epoch !== e.epoch) e = { producer_id: b.producer_id, epoch: b.producer_epoch, batches: [] };
    e.batches.push({ first_seq: b.first_seq, last_seq: b.last_seq, ref });
    if (e.batches.length > this.window) e.batches.shift();
    this.producers.set(b.producer_id, e);
    if (this.producers.size > this.producers_max) this.producers.delete(this.producers.keys().next().value!);
  }

  /**
   * Forgets every batch whose ref `cut` says is gone (the log was truncated). A producer left
   * without batches is forgotten (so its next batch is accepted at any sequence); one that keeps
   * some keeps a smaller window than a replay would give it: a retry of an evicted batch is then
   * refused as out of order, never written twice. `only`: just these producer ids (the caller
   * knows no other has a batch that is cut), so a hot path does not walk every producer.
   */
  forget(cut: (ref: T) => boolean, only?: Iterable<number>): void {
    const ids = only === undefined ? [...this.producers.keys()] : [...new Set(only)];
    for (const id of ids) {
      const e = this.producers.get(id);
      if (e === undefined) continue;
      const kept = e.batches.filter((s) => !cut(s.ref));
      if (kept.length === 0) this.producers.delete(id);
      else if (kept.length !== e.batches.length) e.batches = kept;
    }
  }

  /** A copy of one producer's entry (undefined if unknown): what `restore` puts back after a failed write. */
  save(producer_id: number): ProducerEntry<T> | undefined {
    const e = this.producers.get(producer_id);
    return e === undefined ? undefined : { ...e, batches: [...e.batches] };
  }

  restore(producer_id: number, e: ProducerEntry<T> | undefined): void {
    if (e === undefined) this.producers.delete(producer_id);
    else this.producers.set(producer_id, e);
  }

  /** Every entry, by producer id (tests compare a live table with one rebuilt from the log). */
  entries(): Array<ProducerEntry<T>> {
    return [...this.producers.values()].sort((a, b) => a.producer_id - b.producer_id);
  }
}
