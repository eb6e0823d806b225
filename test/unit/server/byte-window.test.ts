import { expect, test } from 'vitest';
import { ByteWindow } from '../../../server/rpc/byte-window.js';

test('room() waits while max_bytes are in flight and resumes when bytes are done', async () => {
  const w = new ByteWindow(100);
  const ac = new AbortController();
  w.add(60);
  await w.room(ac.signal); // below the bound: at once
  w.add(60);
  let resumed = false;
  const waiting = w.room(ac.signal).then(() => (resumed = true));
  await new Promise((r) => setTimeout(r, 10));
  expect(resumed).toBe(false);
  w.done(10); // 110: still full
  await new Promise((r) => setTimeout(r, 10));
  expect(resumed).toBe(false);
  w.done(60);
  await waiting;
  expect(w.inflight_bytes).toBe(50);
});

test('room() returns on abort', async () => {
  const w = new ByteWindow(1);
  w.add(5);
  const ac = new AbortController();
  const waiting = w.room(ac.signal);
  ac.abort();
  await waiting;
  expect(w.inflight_bytes).toBe(5);
});
