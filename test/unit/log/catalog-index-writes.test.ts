import { afterEach, beforeEach, expect, test } from 'vitest';
import { Catalog, type PartitionKey } from '../../../engine/catalog/catalog.js';
import { tempDir } from '../../support/tmp.js';

// Sparse index entries reach LMDB in groups (engine/catalog/catalog.ts, putOffsetEntry). These
// check that grouping loses nothing and that a drop removes entries in every state: still held by
// the catalog, handed to LMDB but not committed, or committed.

let dir: string;
let cleanup: () => void;
beforeEach(() => ({ dir, cleanup } = tempDir('relaylog-catalog-')));
afterEach(() => cleanup());

const P: PartitionKey = ['t', 0];
const entries = (c: Catalog, from: number, n: number) => {
  for (let i = from; i < from + n; i++) {
    c.putOffsetEntry(P, i, 0, i * 4096);
    c.putTimeEntry(P, 1000 + i, i, 0, i * 4096);
  }
};
const indexed = (c: Catalog, n: number) => Array.from({ length: n }, (_, i) => c.offsetFloor(P, 0, i)?.offset ?? null);

test('entries held back for grouping are all in LMDB after flush, and after a close and reopen', async () => {
  let c = Catalog.open(dir);
  entries(c, 0, 10); // fewer than a group: held
  await c.flush();
  expect(indexed(c, 10)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  entries(c, 10, 5);
  await c.close();
  c = Catalog.open(dir);
  try {
    expect(indexed(c, 15)).toEqual(Array.from({ length: 15 }, (_, i) => i));
    expect(c.timeFloor(P, 1015)?.offset).toBe(14);
  } finally {
    await c.close();
  }
});

test('a drop removes entries handed to LMDB but not yet committed (LMDB commits the drop first)', async () => {
  const c = Catalog.open(dir);
  try {
    for (let round = 0; round < 20; round++) {
      entries(c, 0, 200); // several full groups: handed to LMDB asynchronously as they fill
      c.dropIndexRange(P, { from_offset: 0 });
      await c.flush();
      expect(indexed(c, 200).filter((x) => x !== null)).toEqual([]);
      expect(c.timeFloor(P, 10_000)).toBeNull();
    }
  } finally {
    await c.close();
  }
});

test('a truncation keeps entries below it and drops the rest, held or in flight', async () => {
  const c = Catalog.open(dir);
  try {
    entries(c, 0, 150);
    c.dropIndexRange(P, { from_offset: 100 });
    entries(c, 100, 3); // the log continues after the truncation point
    await c.flush();
    expect(indexed(c, 150)).toEqual(Array.from({ length: 150 }, (_, i) => Math.min(i, 102)));
    expect(c.timeFloor(P, 10_000)?.offset).toBe(102);
  } finally {
    await c.close();
  }
});

test('dropping a rewritten segment index removes its in-flight entries, not the ones put after', async () => {
  const c = Catalog.open(dir);
  try {
    entries(c, 0, 130);
    c.dropSegmentIndex(P, 0, 130);
    c.putOffsetEntry(P, 0, 0, 0); // the rewritten segment's new entry
    await c.flush();
    expect(indexed(c, 130).filter((x) => x !== null && x !== 0)).toEqual([]);
    expect(c.offsetFloor(P, 0, 5)).toEqual({ offset: 0, position: 0 });
  } finally {
    await c.close();
  }
});
