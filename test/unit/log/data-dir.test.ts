import { execFileSync, spawn } from 'node:child_process';
import { mkdirSync, readFileSync, rmdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, expect, test } from 'vitest';
import { LogStore, ManualClock, encodeBatch, limits } from '../../../engine/index.js';
import { batchOf, readAll } from '../../support/batches.js';
import { tempDir } from '../../support/tmp.js';

let dir: string;
let cleanup: () => void;
beforeEach(() => ({ dir, cleanup } = tempDir()));
afterEach(() => cleanup());

const repo = fileURLToPath(new URL('../../..', import.meta.url));

describe('data-dir lock', () => {
  test('a second open in the same process fails at once, naming the dir and the holder pid', async () => {
    const s = await LogStore.open({ dir, disk_free_floor_bytes: 0 });
    try {
      const err = await LogStore.open({ dir }).catch((e: unknown) => e);
      expect(err).toMatchObject({ code: 'DATA_DIR_LOCKED', name: 'DataDirLockedError', details: { dir, holder_pid: process.pid } });
      expect((err as Error).message).toContain(dir);
      expect((err as Error).message).toContain(`pid ${process.pid}`);
    } finally {
      await s.close();
    }
    // Released on close: the dir opens again.
    const again = await LogStore.open({ dir, disk_free_floor_bytes: 0 });
    await again.close();
  });

  test('another process is refused while we hold the dir, and gets it once we exit', async () => {
    const s = await LogStore.open({ dir, disk_free_floor_bytes: 0 });
    const script = `import('${join(repo, 'dist/engine/index.js')}').then(async (m) => {
      try { const s = await m.LogStore.open({ dir: process.argv[1], disk_free_floor_bytes: 0 }); await s.close(); console.log('OPENED'); }
      catch (e) { console.log(e.code + ' ' + e.message); }
    })`;
    const run = () => execFileSync(process.execPath, ['--input-type=module', '-e', script, dir], { encoding: 'utf8', timeout: 20_000 });
    expect(run()).toMatch(new RegExp(`^DATA_DIR_LOCKED data dir .* is in use by another relaylog process \\(pid ${process.pid}\\)`));
    await s.close();
    expect(run().trim()).toBe('OPENED');
  });

  test('a holder killed with SIGKILL leaves no stale lock', async () => {
    const script = `import('${join(repo, 'dist/engine/index.js')}').then(async (m) => {
      await m.LogStore.open({ dir: process.argv[1], disk_free_floor_bytes: 0 }); console.log('HELD'); setInterval(() => {}, 1000);
    })`;
    const child = spawn(process.execPath, ['--input-type=module', '-e', script, dir], { stdio: ['ignore', 'pipe', 'inherit'] });
    // Listened for from the start: a child that died early would otherwise be waited for forever.
    const exited = new Promise((r) => child.once('exit', r));
    try {
      await new Promise<void>((resolve, reject) => {
        const t = setTimeout(() => reject(new Error('child never held the lock')), 20_000);
        child.stdout.on('data', (d: Buffer) => d.toString().includes('HELD') && (clearTimeout(t), resolve()));
      });
      await expect(LogStore.open({ dir })).rejects.toMatchObject({ code: 'DATA_DIR_LOCKED', details: { holder_pid: child.pid } });
    } finally {
      child.kill('SIGKILL');
      await exited;
    }
    const s = await LogStore.open({ dir, disk_free_floor_bytes: 0 });
    expect(readFileSync(join(dir, '.lock'), 'utf8').trim()).toBe(String(process.pid));
    await s.close();
  });
});

describe('disk floor', () => {
  test('below the floor appends fail with DiskFullError, nothing written changes, and appends resume once space is freed', async () => {
    let free = 10 * 1024 * 1024 * 1024;
    const clock = new ManualClock();
    const s = await LogStore.open({ dir, clock, disk_free_floor_bytes: 1024 * 1024, free_bytes: () => free });
    try {
      await s.createTopic('t');
      const p = s.partition('t', 0);
      await p.append(batchOf(5, 'before'));
      const size = p.stats().size_bytes;
      free = 512 * 1024;
      // Free space is probed at most every disk_check_interval_ms (or _bytes) to keep statfs off the hot path.
      clock.advance(limits.disk_check_interval_ms);
      const err = await p.append(batchOf(5, 'refused')).catch((e: unknown) => e);
      expect(err).toMatchObject({ code: 'DISK_FULL', name: 'DiskFullError', retriable: true });
      expect((err as Error).message).toMatch(/524288 bytes free .* below the floor of 1048576 bytes/);
      expect(p.stats().size_bytes).toBe(size);
      expect(p.highWatermark).toBe(5);
      await expect(p.append(batchOf(1, 'still-refused'))).rejects.toMatchObject({ code: 'DISK_FULL' });
      free = 10 * 1024 * 1024 * 1024;
      expect(await p.append(batchOf(5, 'after'))).toEqual({ base_offset: 5, last_offset: 9 });
      expect((await readAll(p)).map((r) => r.value!.toString())).toEqual([
        ...Array.from({ length: 5 }, (_, i) => `before-${i}`),
        ...Array.from({ length: 5 }, (_, i) => `after-${i}`),
      ]);
    } finally {
      await s.close();
    }
  });

  test('on a real, size-limited tmpfs: ENOSPC and the floor both give DISK_FULL without damage', async (ctx) => {
    const mnt = join(dir, 'mnt');
    mkdirSync(mnt);
    try {
      execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=4m', 'tmpfs', mnt], { stdio: 'ignore' });
    } catch {
      ctx.skip(); // needs root (CI runs as root); the injected-probe test above covers the logic
      return;
    }
    let s: LogStore | null = null;
    try {
      // Floor 0: the file system itself runs out (ENOSPC from write).
      s = await LogStore.open({ dir: mnt, disk_free_floor_bytes: 0 });
      await s.createTopic('t', { segment_bytes: 16 * 1024 * 1024 });
      let p = s.partition('t', 0);
      const big = () => encodeBatch([{ value: Buffer.alloc(256 * 1024, 7) }]);
      let acked = 0;
      let err: unknown = null;
      for (let i = 0; i < 64 && err === null; i++) {
        await p.append(big()).then(() => acked++, (e: unknown) => (err = e));
      }
      expect(err).toMatchObject({ code: 'DISK_FULL' });
      expect(acked).toBeGreaterThan(0);
      const size = p.stats().size_bytes;
      expect(statSync(p.segmentInfo()[0]!.path).size).toBe(size); // the failed write left nothing behind
      await s.close();
      s = await LogStore.open({ dir: mnt, disk_free_floor_bytes: 0 });
      p = s.partition('t', 0);
      expect(p.highWatermark).toBe(acked);
      expect((await readAll(p, 0, 1 << 20)).length).toBe(acked);
    } finally {
      await s?.close();
      execFileSync('umount', [mnt]);
      rmdirSync(mnt);
    }
  });
});

describe('bad input gets a named error and changes nothing', () => {
  test('oversized, wrong magic, bad CRC, inconsistent counts, unknown topic/partition', async () => {
    const s = await LogStore.open({ dir, disk_free_floor_bytes: 0 });
    try {
      await s.createTopic('t', { max_message_bytes: 4096 });
      const p = s.partition('t', 0);
      await p.append(batchOf(2));
      const before = { ...p.stats() };
      const cases: Array<[Buffer, string]> = [];
      cases.push([batchOf(1, 'x', 1, 5000), 'BATCH_TOO_LARGE']);
      const magic = batchOf(1);
      magic[16] = 1;
      cases.push([magic, 'INVALID_BATCH']);
      const crc = batchOf(1);
      crc[crc.length - 1] = crc[crc.length - 1]! ^ 0x01;
      cases.push([crc, 'CORRUPT_BATCH']);
      cases.push([batchOf(1).subarray(0, 40), 'INVALID_BATCH']);
      cases.push([Buffer.alloc(0), 'INVALID_BATCH']);
      // a valid batch followed by a corrupt one: all or nothing
      cases.push([Buffer.concat([batchOf(1), crc]), 'CORRUPT_BATCH']);
      for (const [buf, code] of cases) {
        await expect(p.append(buf)).rejects.toMatchObject({ code });
      }
      expect(p.stats()).toEqual(before);
      await expect(p.read(-5, 100)).rejects.toMatchObject({ code: 'OFFSET_OUT_OF_RANGE' });
      await expect(p.read(1e6, 100)).rejects.toMatchObject({ code: 'OFFSET_OUT_OF_RANGE' });
      expect(() => s.partition('nope', 0)).toThrow(expect.objectContaining({ code: 'UNKNOWN_TOPIC' }));
      expect(() => s.partition('t', 1)).toThrow(expect.objectContaining({ code: 'UNKNOWN_PARTITION' }));
      expect(() => s.partition('t', -1)).toThrow(expect.objectContaining({ code: 'UNKNOWN_PARTITION' }));
      await expect(s.createTopic('bad/name')).rejects.toMatchObject({ code: 'INVALID_TOPIC' });
      await expect(s.createTopic('t')).rejects.toMatchObject({ code: 'TOPIC_EXISTS' });
      await expect(s.createTopic('u', { partitions: 0 })).rejects.toMatchObject({ code: 'INVALID_CONFIG' });
      expect((await readAll(p)).length).toBe(2);
    } finally {
      await s.close();
    }
  });

  test('concurrent creates of one name: exactly one wins, the others get TOPIC_EXISTS, and the topic is whole', async () => {
    const s = await LogStore.open({ dir, disk_free_floor_bytes: 0 });
    try {
      const results = await Promise.allSettled(Array.from({ length: 6 }, (_, i) => s.createTopic('race', { partitions: 1 + (i % 3) })));
      const won = results.filter((r) => r.status === 'fulfilled');
      expect(won).toHaveLength(1);
      for (const r of results) if (r.status === 'rejected') expect(r.reason).toMatchObject({ code: 'TOPIC_EXISTS' });
      const partitions = (won[0] as PromiseFulfilledResult<{ config: { partitions: number } }>).value.config.partitions;
      expect(s.topic('race').config.partitions).toBe(partitions);
      await s.partition('race', partitions - 1).append(batchOf(2, 'after-race'));
    } finally {
      await s.close();
    }
    // And it reopens as that one topic.
    const again = await LogStore.open({ dir, disk_free_floor_bytes: 0 });
    try {
      expect(again.listTopics().map((t) => t.name)).toEqual(['race']);
      const p = again.partition('race', again.topic('race').config.partitions - 1);
      expect((await readAll(p)).length).toBe(2);
    } finally {
      await again.close();
    }
  });

  test('appends after close are refused with CLOSED; close is idempotent and waits for in-flight appends', async () => {
    const s = await LogStore.open({ dir, disk_free_floor_bytes: 0 });
    await s.createTopic('t');
    const p = s.partition('t', 0);
    const inflight = Array.from({ length: 20 }, (_, i) => p.append(batchOf(3, `f${i}`)));
    const closing = s.close();
    await expect(p.append(batchOf(1))).rejects.toMatchObject({ code: 'CLOSED' });
    await Promise.all([closing, s.close()]);
    const acked = (await Promise.all(inflight)).length;
    expect(acked).toBe(20);
    const s2 = await LogStore.open({ dir, disk_free_floor_bytes: 0 });
    expect(s2.partition('t', 0).highWatermark).toBe(60);
    await s2.close();
  });
});
