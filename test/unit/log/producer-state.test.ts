import { describe, expect, test } from 'vitest';
import { EngineError, encodeBatch } from '../../../engine/index.js';
import { ProducerStateTable, addSequence, producerBatchOf, type ProducerBatch } from '../../../engine/log/producer-state.js';

const pb = (producer_id: number, first_seq: number, count = 1, producer_epoch = 0): ProducerBatch => ({
  producer_id,
  producer_epoch,
  first_seq,
  last_seq: addSequence(first_seq, count - 1),
});

const codeOf = (fn: () => unknown): string => {
  try {
    fn();
  } catch (err) {
    return err instanceof EngineError ? err.code : `not an EngineError: ${String(err)}`;
  }
  return 'no error';
};

describe('producer state (Kafka idempotent producer rules)', () => {
  test('reads the producer fields of a batch header; producerId -1 and kafkajs\'s 0/0 defaults mean none', () => {
    const b = encodeBatch([{ value: 'a' }, { value: 'b' }, { value: 'c' }], { producer_id: 2 ** 40 + 7, producer_epoch: 3, base_sequence: 10 });
    expect(producerBatchOf(b)).toEqual({ producer_id: 2 ** 40 + 7, producer_epoch: 3, first_seq: 10, last_seq: 12 });
    expect(producerBatchOf(encodeBatch([{ value: 'a' }]))).toBeNull();
    expect(producerBatchOf(encodeBatch([{ value: 'a' }], { producer_id: -1, producer_epoch: 0, base_sequence: 0 }))).toBeNull();
  });

  test('sequences wrap from 2^31 - 1 to 0', () => {
    expect(addSequence(2 ** 31 - 1, 1)).toBe(0);
    expect(addSequence(2 ** 31 - 2, 3)).toBe(1);
    const t = new ProducerStateTable<number>();
    t.replay(pb(1, 2 ** 31 - 2, 2), 0);
    expect(t.check(pb(1, 0, 5))).toEqual({ kind: 'new' });
  });

  test('an unknown producer is accepted at any sequence; then the next batch must follow', () => {
    const t = new ProducerStateTable<number>();
    expect(t.checkAndRecord(pb(1, 40, 2), 100)).toEqual({ kind: 'new' });
    expect(t.checkAndRecord(pb(1, 42, 3), 102)).toEqual({ kind: 'new' });
    expect(codeOf(() => t.check(pb(1, 46)))).toBe('OUT_OF_ORDER_SEQUENCE'); // 45 is missing
    expect(codeOf(() => t.check(pb(1, 41)))).toBe('OUT_OF_ORDER_SEQUENCE'); // overlaps, not an exact retry
    expect(t.check(pb(1, 45))).toEqual({ kind: 'new' });
  });

  test('an exact retry of a remembered batch is a duplicate answered with where it landed', () => {
    const t = new ProducerStateTable<string>();
    t.checkAndRecord(pb(9, 0, 2), 'a');
    t.checkAndRecord(pb(9, 2, 2), 'b');
    expect(t.checkAndRecord(pb(9, 0, 2), 'again')).toEqual({ kind: 'duplicate', ref: 'a' });
    expect(t.checkAndRecord(pb(9, 2, 2), 'again')).toEqual({ kind: 'duplicate', ref: 'b' });
    expect(t.entries()[0]!.batches.map((s) => s.ref)).toEqual(['a', 'b']); // duplicates are not recorded
  });

  test('only the last `window` batches are remembered: an older retry is out of order, never a second write', () => {
    const t = new ProducerStateTable<number>(5);
    for (let i = 0; i < 7; i++) t.checkAndRecord(pb(1, i), i);
    expect(t.entries()[0]!.batches.map((s) => s.first_seq)).toEqual([2, 3, 4, 5, 6]);
    expect(t.check(pb(1, 2))).toEqual({ kind: 'duplicate', ref: 2 });
    expect(codeOf(() => t.check(pb(1, 1)))).toBe('OUT_OF_ORDER_SEQUENCE');
  });

  test('epochs: an older one is fenced, a newer one starts again at sequence 0 and forgets the old batches', () => {
    const t = new ProducerStateTable<number>();
    t.checkAndRecord(pb(1, 0, 1, 2), 0);
    expect(codeOf(() => t.check(pb(1, 1, 1, 1)))).toBe('PRODUCER_FENCED');
    expect(codeOf(() => t.check(pb(1, 5, 1, 3)))).toBe('OUT_OF_ORDER_SEQUENCE');
    expect(t.checkAndRecord(pb(1, 0, 1, 3), 1)).toEqual({ kind: 'new' });
    expect(t.entries()).toEqual([{ producer_id: 1, epoch: 3, batches: [{ first_seq: 0, last_seq: 0, ref: 1 }] }]);
    expect(codeOf(() => t.check(pb(1, 1, 1, 2)))).toBe('PRODUCER_FENCED');
  });

  test('producer ids beyond the limit: the least recently written is forgotten', () => {
    const t = new ProducerStateTable<number>(5, 2);
    t.replay(pb(1, 0), 0);
    t.replay(pb(2, 0), 1);
    t.replay(pb(1, 1), 2); // 1 is now the most recent
    t.replay(pb(3, 0), 3);
    expect(t.entries().map((e) => e.producer_id)).toEqual([1, 3]);
  });

  test('forget drops truncated batches; a producer left with none is unknown again', () => {
    const t = new ProducerStateTable<number>();
    t.replay(pb(1, 0), 10);
    t.replay(pb(1, 1), 11);
    t.replay(pb(2, 0), 12);
    t.forget((offset) => offset >= 11);
    expect(t.entries()).toEqual([{ producer_id: 1, epoch: 0, batches: [{ first_seq: 0, last_seq: 0, ref: 10 }] }]);
    expect(t.check(pb(1, 1))).toEqual({ kind: 'new' }); // the cut batch may be written again
    expect(t.check(pb(2, 17))).toEqual({ kind: 'new' });
  });

  test('forget limited to some producers leaves the others alone', () => {
    const t = new ProducerStateTable<number>();
    t.replay(pb(1, 0), 10);
    t.replay(pb(2, 0), 11);
    t.forget((offset) => offset >= 10, [2]);
    expect(t.entries().map((e) => e.producer_id)).toEqual([1]);
  });

  test('save / restore puts a producer back as it was (a failed write)', () => {
    const t = new ProducerStateTable<number>();
    t.replay(pb(1, 0), 0);
    const before = t.save(1);
    const unknown = t.save(2);
    t.checkAndRecord(pb(1, 1), 1);
    t.checkAndRecord(pb(2, 0), 2);
    t.restore(1, before);
    t.restore(2, unknown);
    expect(t.entries()).toEqual([{ producer_id: 1, epoch: 0, batches: [{ first_seq: 0, last_seq: 0, ref: 0 }] }]);
  });

  test('replaying the accepted batches in log order gives the same table as the live one', () => {
    const live = new ProducerStateTable<number>(5);
    const log: Array<[ProducerBatch, number]> = [];
    let offset = 0;
    const seq = new Map<number, number>();
    // Three producers interleaved, with retries of recent batches and an epoch bump.
    for (let i = 0; i < 60; i++) {
      const id = i % 3;
      const epoch = i >= 30 && id === 0 ? 1 : 0;
      if (i === 30) seq.set(0, 0);
      const first = seq.get(id) ?? 0;
      const b = pb(id, first, 1 + (i % 4), epoch);
      const c = live.checkAndRecord(b, offset);
      expect(c.kind).toBe('new');
      log.push([b, offset]);
      offset += 1 + (i % 4);
      seq.set(id, addSequence(b.last_seq, 1));
      if (i % 5 === 4) expect(live.check(log[log.length - 2]![0]).kind).toBe('duplicate');
    }
    const rebuilt = new ProducerStateTable<number>(5);
    for (const [b, o] of log) rebuilt.replay(b, o);
    expect(rebuilt.entries()).toEqual(live.entries());
  });
});
