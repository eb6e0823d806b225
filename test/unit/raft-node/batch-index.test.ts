import { describe, expect, test } from 'vitest';
import { BatchIndex, BatchLogStorage, decodeSnapshotData, isLazyEntry } from '../../../replication/raft/node/batch-index.js';
import { noopBatch } from '../../../replication/raft/node/noop-batch.js';
import { batchBaseOffset, batchLeaderEpoch, checkBatch, decodeRecords, readBatchHeader } from '../../../engine/index.js';

/*
 * The Raft log of a partition is its segment store: entry i is the i-th batch. BatchIndex maps
 * ordinals to offsets, terms and sizes; BatchLogStorage serves the core from it with lazy entries.
 */

function indexOf(spans: Array<[records: number, term: number, size: number]>, start = 0): BatchIndex {
  const ix = new BatchIndex(start);
  let next = start;
  for (const [n, term, size] of spans) {
    ix.push({ base_offset: next, next_offset: next + n, term, size_bytes: size });
    next += n;
  }
  return ix;
}

describe('BatchIndex', () => {
  test('maps ordinals to offsets, terms and sizes; entry 0 is the log start', () => {
    const ix = indexOf([[1, 1, 61], [10, 1, 500], [3, 2, 200], [1, 4, 61]], 100);
    expect(ix.lastIndex).toBe(4);
    expect(ix.endOffset).toBe(115);
    expect(ix.term(0)).toBe(0);
    expect([1, 2, 3, 4].map((i) => ix.term(i))).toEqual([1, 1, 2, 4]);
    expect(ix.term(5)).toBeUndefined();
    expect(ix.get(2)).toEqual({ base_offset: 101, next_offset: 111, term: 1, size_bytes: 500 });
    expect(ix.nextOffset(0)).toBe(100);
    expect([100, 101, 111, 114, 105, 115].map((o) => ix.indexOfBase(o))).toEqual([1, 2, 3, 4, 0, 0]);
  });

  test('truncation drops a suffix; appends continue from the new end', () => {
    const ix = indexOf([[1, 1, 61], [2, 1, 90], [2, 2, 90]]);
    ix.truncateAfter(1);
    expect(ix.lastIndex).toBe(1);
    expect(ix.endOffset).toBe(1);
    ix.push({ base_offset: 1, next_offset: 6, term: 3, size_bytes: 120 });
    expect(ix.get(2)).toEqual({ base_offset: 1, next_offset: 6, term: 3, size_bytes: 120 });
  });

  test('refuses what would break the log: gaps, empty spans, terms going backwards', () => {
    const ix = indexOf([[2, 2, 90]]);
    expect(() => ix.push({ base_offset: 3, next_offset: 4, term: 2, size_bytes: 61 })).toThrow(/does not continue/);
    expect(() => ix.push({ base_offset: 2, next_offset: 2, term: 2, size_bytes: 61 })).toThrow(/spans no offset/);
    expect(() => ix.push({ base_offset: 2, next_offset: 3, term: 1, size_bytes: 61 })).toThrow(/term goes backwards/);
  });

  test('grows past its initial capacity', () => {
    const ix = new BatchIndex(0);
    for (let i = 0; i < 5_000; i++) ix.push({ base_offset: i * 2, next_offset: i * 2 + 2, term: 1 + Math.floor(i / 1000), size_bytes: 70 + (i % 7) });
    expect(ix.lastIndex).toBe(5_000);
    expect(ix.get(4_321)).toEqual({ base_offset: 8_640, next_offset: 8_642, term: 5, size_bytes: 70 + (4_320 % 7) });
  });
});

describe('BatchLogStorage', () => {
  test('hands out lazy entries of the right size, under the byte budget (at least one)', () => {
    const st = new BatchLogStorage(indexOf([[1, 1, 61], [5, 1, 1_000], [5, 2, 3_000], [1, 2, 61]]));
    expect(st.firstIndex()).toBe(1);
    expect(st.lastIndex()).toBe(4);
    expect(st.term(3)).toBe(2);
    const all = st.entries(1, 5, Number.MAX_SAFE_INTEGER);
    expect(all.map((e) => [e.index, e.term, e.kind, e.data.length])).toEqual([
      [1, 1, 'normal', 61],
      [2, 1, 'normal', 1_000],
      [3, 2, 'normal', 3_000],
      [4, 2, 'normal', 61],
    ]);
    expect(all.every((e) => isLazyEntry(e))).toBe(true);
    expect(st.entries(2, 5, 3_500).map((e) => e.index)).toEqual([2]);
    expect(st.entries(3, 5, 10).map((e) => e.index)).toEqual([3]);
    expect(isLazyEntry({ index: 1, term: 1, kind: 'normal', data: Buffer.alloc(61) })).toBe(false);
    expect(() => st.entries(2, 6, 100)).toThrow(/outside/);
  });
});

describe('noopBatch', () => {
  test('a new leader’s empty entry: a valid, empty, one-offset batch stamped with the term', () => {
    const b = noopBatch(42, 7);
    expect(checkBatch(b)).toBeNull();
    const h = readBatchHeader(b);
    expect(h).toMatchObject({ base_offset: 42, partition_leader_epoch: 7, record_count: 0, last_offset_delta: 0, producer_id: -1, size_bytes: 61 });
    expect(batchBaseOffset(b)).toBe(42);
    expect(batchLeaderEpoch(b)).toBe(7);
    expect(decodeRecords(b)).toEqual([]);
  });
});

describe('BatchIndex after a discarded prefix', () => {
  test('discardThrough keeps indexes, offsets and terms of the rest; the snapshot entry keeps its term', () => {
    const ix = indexOf([[1, 1, 61], [10, 1, 500], [3, 2, 200], [1, 4, 61], [5, 4, 300]], 100);
    ix.setConfChange(2, Buffer.from('c2'));
    ix.setConfChange(4, Buffer.from('c4'));
    ix.discardThrough(3);
    expect([ix.firstIndex, ix.lastIndex, ix.startOffset, ix.endOffset]).toEqual([4, 5, 114, 120]);
    expect(ix.term(3)).toBe(2); // the snapshot's term
    expect(ix.term(2)).toBeUndefined();
    expect(ix.get(5)).toEqual({ base_offset: 115, next_offset: 120, term: 4, size_bytes: 300 });
    expect(ix.nextOffset(3)).toBe(114);
    expect(() => ix.nextOffset(2)).toThrow(/no entry 2/);
    expect(ix.indexOfBase(115)).toBe(5);
    expect(ix.indexOfBase(101)).toBe(0);
    expect(ix.confChange(2)).toBeUndefined();
    expect(ix.lastConfChangeAtOrBelow(5)?.[0]).toBe(4);
    ix.push({ base_offset: 120, next_offset: 121, term: 5, size_bytes: 61 });
    expect([ix.lastIndex, ix.term(6)]).toEqual([6, 5]);
    ix.truncateAfter(3);
    expect([ix.lastIndex, ix.endOffset]).toEqual([3, 114]);
    expect(() => ix.truncateAfter(2)).toThrow();
  });

  test('a new index starts after a stored snapshot; reset empties it at an installed one', () => {
    const ix = new BatchIndex(500, { index: 40, term: 3 });
    expect([ix.firstIndex, ix.lastIndex, ix.term(40), ix.nextOffset(40)]).toEqual([41, 40, 3, 500]);
    expect(() => ix.push({ base_offset: 500, next_offset: 501, term: 2, size_bytes: 61 })).toThrow(/term goes backwards/);
    ix.push({ base_offset: 500, next_offset: 510, term: 3, size_bytes: 400 });
    expect(ix.get(41)).toEqual({ base_offset: 500, next_offset: 510, term: 3, size_bytes: 400 });
    ix.reset(90, 7, 2_000);
    expect([ix.firstIndex, ix.lastIndex, ix.term(90), ix.endOffset]).toEqual([91, 90, 7, 2_000]);
    const storage = new BatchLogStorage(ix);
    storage.snapshot_conf = { voters: [1, 2, 3], learners: [4] };
    const snap = storage.snapshot();
    expect(snap.meta).toEqual({ index: 90, term: 7, conf_state: { voters: [1, 2, 3], learners: [4] } });
    expect(decodeSnapshotData(snap.data)).toBe(2_000);
    expect(storage.firstIndex()).toBe(91);
    expect(() => decodeSnapshotData(Buffer.from('{"next_offset":-1}'))).toThrow(/names no offset/);
  });
});
