import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { isEngineError, type EngineError } from '../../../engine/base/errors.js';
import { Catalog } from '../../../engine/catalog/catalog.js';
import { fillFileSystem, mountTmpfs, tmpfsUnavailable, unmountTmpfs } from '../../support/tmpfs.js';
import { tempDir } from '../../support/tmp.js';

/*
 * The LMDB catalog on a file system that fills up (a real ENOSPC, on a small tmpfs; skipped where
 * mounting one is refused). lmdb-js rejects every write of a failed commit and, separately, its
 * own `commitError` promise; an unhandled one ends the process (Node's default), which is how a
 * Raft follower with a full disk died in test/integration/raft/disk-full.test.ts. The catalog
 * must turn the failure into DISK_FULL for those who wait, report it for writes nobody waits for,
 * and work again once space is freed.
 */

const unavailable = tmpfsUnavailable();
if (unavailable !== null) console.warn(`catalog-disk-full.test.ts skipped: ${unavailable}`);

describe.skipIf(unavailable !== null)('the catalog on a full file system', () => {
  const tmp = tempDir('relaylog-catalog-full-');
  const unhandled: unknown[] = [];
  const onUnhandled = (reason: unknown) => void unhandled.push(reason);

  beforeAll(() => {
    mountTmpfs(tmp.dir, 2 * 1024 * 1024);
    process.on('unhandledRejection', onUnhandled);
  });

  afterAll(() => {
    process.off('unhandledRejection', onUnhandled);
    unmountTmpfs(tmp.dir);
    tmp.cleanup();
  });

  test('writes fail with DISK_FULL, nothing is left unhandled, and writes work again once space is freed', async () => {
    const catalog = Catalog.open(join(tmp.dir, 'catalog'));
    const reported: EngineError[] = [];
    catalog.onWriteError = (err) => reported.push(err);
    const key = ['t', 0] as const;
    try {
      await catalog.putRaftState(key, { term: 1, vote: 1, commit: 5 });
      const filler = join(tmp.dir, 'filler');
      fillFileSystem(filler, 8 * 1024 * 1024);

      // Writes nobody waits for: index entries (enough to need new pages), and segment records over
      // several event turns (lmdb-js's event-turn batching left a promise of its own unhandled).
      for (let i = 0; i < 3_000; i++) catalog.putOffsetEntry(key, i * 10, 0, i * 100);
      for (let i = 0; i < 20; i++) {
        void catalog.putSegment(key, i, { size_bytes: 1, next_offset: i + 1, max_timestamp_ms: 0, first_append_ms: 0, sealed: false, durable_bytes: 1, clean: false });
        await new Promise((r) => setImmediate(r));
      }
      // A write the caller waits for (a Raft vote must be durable before it is sent).
      const err = await catalog.putRaftState(key, { term: 2, vote: 3, commit: 5 }).then(() => null, (e: unknown) => e);
      expect(isEngineError(err, 'DISK_FULL'), `putRaftState on a full disk: ${String(err)}`).toBe(true);
      expect((err as EngineError).retriable).toBe(true);
      await new Promise((r) => setTimeout(r, 50)); // let every rejection of the failed commits surface
      expect(reported.length, 'failures of writes nobody waited for are reported').toBeGreaterThan(0);
      expect(reported.every((e) => isEngineError(e, 'DISK_FULL'))).toBe(true);
      expect(unhandled, 'unhandled rejections').toEqual([]);
      // What was committed before is still there.
      expect(catalog.getRaftState(key)).toEqual({ term: 1, vote: 1, commit: 5 });

      rmSync(filler);
      await catalog.putRaftState(key, { term: 2, vote: 3, commit: 5 });
      expect(catalog.getRaftState(key)).toEqual({ term: 2, vote: 3, commit: 5 });
    } finally {
      await catalog.close().catch(() => undefined);
    }
    expect(unhandled, 'unhandled rejections').toEqual([]);
  });
});
