import { expect, test } from 'vitest';
import { BufferPool } from '../../../engine/base/buffer-pool.js';

test('buffers are handed out by power-of-two size class and reused once given back', () => {
  const pool = new BufferPool(2);
  const a = pool.take(100_000);
  expect(a.length).toBe(128 * 1024);
  pool.give(a);
  expect(pool.take(70_000)).toBe(a); // same class: the same buffer again
  expect(pool.take(70_000)).not.toBe(a);
});

test('a pool with slack sizes its classes as a power of two plus the slack, so a frame with a small header fits its class', () => {
  const pool = new BufferPool(2, 64);
  const f = pool.take(4 * 1024 * 1024 + 45); // 4 MiB of records, the prefix and fields
  expect(f.length).toBe(4 * 1024 * 1024 + 64);
  pool.give(f);
  expect(pool.take(4 * 1024 * 1024)).toBe(f);
  pool.give(Buffer.alloc(4 * 1024 * 1024)); // not one of its classes: not kept
  expect(pool.take(4 * 1024 * 1024)).not.toHaveLength(4 * 1024 * 1024);
});

test('at most per_class_max buffers are kept per class', () => {
  const pool = new BufferPool(2);
  const bufs = [pool.take(1), pool.take(1), pool.take(1)];
  for (const b of bufs) pool.give(b);
  const again = [pool.take(1), pool.take(1), pool.take(1)];
  expect(again.filter((b) => bufs.includes(b))).toHaveLength(2);
});

test('at most kept_max_bytes are kept over all classes, and a buffer taken again no longer counts', () => {
  const pool = new BufferPool(8, 0, 256 * 1024);
  const big = pool.take(200 * 1024); // 256 KiB class
  const small = [pool.take(1), pool.take(1)]; // 64 KiB each
  pool.give(big);
  expect(pool.kept_bytes).toBe(256 * 1024);
  for (const b of small) pool.give(b); // no room left: dropped
  expect(pool.kept_bytes).toBe(256 * 1024);
  expect(pool.take(1)).not.toBe(small[0]);
  expect(pool.take(200 * 1024)).toBe(big);
  expect(pool.kept_bytes).toBe(0);
  pool.give(small[0]!);
  expect(pool.kept_bytes).toBe(64 * 1024);
});
