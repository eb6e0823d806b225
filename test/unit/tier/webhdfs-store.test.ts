import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, test } from 'vitest';
import { WebHdfsArchiveStore } from '../../../engine/tier/archive/webhdfs-store.js';
import { tempDir } from '../../support/tmp.js';
import { startWebHdfsStandin, type FaultKind, type WebHdfsStandin } from '../../support/webhdfs-standin.js';

/* The WebHDFS client's protocol behaviour against the stand-in: redirects, errors, retries. */

let tmp: ReturnType<typeof tempDir>;
let hdfs: WebHdfsStandin;
const fast = { backoff_base_ms: 5, backoff_max_ms: 20, request_timeout_ms: 2_000 };

beforeEach(async () => {
  tmp = tempDir('relaylog-webhdfs-');
  hdfs = await startWebHdfsStandin({ root_dir: join(tmp.dir, 'hdfs'), users: ['relaylog', 'reader'], read_only: ['/frozen'] });
});
afterEach(async () => {
  await hdfs.close();
  tmp.cleanup();
});

describe('WebHDFS client', () => {
  test('CREATE and OPEN go to the NameNode, which redirects the bytes to the DataNode; user.name is sent', async () => {
    const s = new WebHdfsArchiveStore(hdfs.url('/base'), fast);
    try {
      const data = Buffer.alloc(100_000, 7);
      await s.put('t/0/seg.log', data);
      expect((await s.read('t/0/seg.log', 1000, 5000)).equals(data.subarray(1000, 6000))).toBe(true);
      const ops = hdfs.log.map((l) => `${l.at}:${l.op}`);
      expect(ops).toContain('namenode:CREATE');
      expect(ops).toContain('datanode:CREATE');
      expect(ops).toContain('namenode:RENAME');
      expect(ops).toContain('namenode:OPEN');
      expect(ops).toContain('datanode:OPEN');
      // The bytes went to the DataNode under a temporary name, then were renamed into place.
      const create = hdfs.log.find((l) => l.at === 'datanode' && l.op === 'CREATE')!;
      expect(create.path).toMatch(/^\/base\/t\/0\/seg\.log\.tmp-[0-9a-f]{12}$/);
    } finally {
      await s.close();
    }
  });

  test('RemoteExceptions become named errors', async () => {
    const s = new WebHdfsArchiveStore(hdfs.url('/frozen'), fast);
    const stranger = new WebHdfsArchiveStore(hdfs.url('/base', 'mallory'), fast);
    try {
      await expect(s.put('x', Buffer.from('x'))).rejects.toMatchObject({ code: 'ARCHIVE_PERMISSION_DENIED', message: expect.stringMatching(/AccessControlException/) });
      await expect(stranger.stat('x')).rejects.toMatchObject({ code: 'ARCHIVE_PERMISSION_DENIED', message: expect.stringMatching(/SecurityException/) });
      const ok = new WebHdfsArchiveStore(hdfs.url('/base'), fast);
      await expect(ok.read('missing', 0, 10)).rejects.toMatchObject({ code: 'ARCHIVE_NOT_FOUND', message: expect.stringMatching(/FileNotFoundException/) });
      await ok.close();
    } finally {
      await s.close();
      await stranger.close();
    }
  });

  test.each<[string, 'namenode' | 'datanode', FaultKind]>([
    ['CREATE', 'namenode', 'status_500'],
    ['CREATE', 'datanode', 'reset'],
    ['CREATE', 'datanode', 'status_503'],
    ['RENAME', 'namenode', 'reset'],
    ['OPEN', 'datanode', 'truncate'],
    ['OPEN', 'namenode', 'status_503'],
    ['GETFILESTATUS', 'namenode', 'reset'],
    ['OPEN', 'datanode', 'delay'],
  ])('transient %s fault at the %s (%s) is retried and the bytes arrive intact', async (op, at, kind) => {
    const s = new WebHdfsArchiveStore(hdfs.url('/base'), fast);
    try {
      const data = Buffer.alloc(50_000);
      for (let i = 0; i < data.length; i++) data[i] = i & 0xff;
      hdfs.inject({ op, at, kind, times: 2, delay_ms: 50 });
      await s.put('f', data);
      expect((await s.read('f', 0, data.length)).equals(data)).toBe(true);
      expect((await s.list('')).map((f) => f.name)).toEqual(['f']); // no temp file left visible
      if (kind !== 'delay') expect(s.stats.retries).toBeGreaterThan(0);
    } finally {
      await s.close();
    }
  });

  test('a permanently failing archive gives ARCHIVE_UNAVAILABLE after a bounded number of attempts', async () => {
    const s = new WebHdfsArchiveStore(hdfs.url('/base'), { ...fast, attempts_max: 4 });
    try {
      hdfs.inject({ op: 'GETFILESTATUS', at: 'namenode', kind: 'status_500', times: Infinity });
      const t = Date.now();
      await expect(s.stat('anything')).rejects.toMatchObject({ code: 'ARCHIVE_UNAVAILABLE', retriable: true, message: expect.stringMatching(/failed after 4 attempts: .*HTTP 500/) });
      expect(Date.now() - t).toBeLessThan(5_000);
      expect(hdfs.log.filter((l) => l.op === 'GETFILESTATUS')).toHaveLength(4);
    } finally {
      await s.close();
    }
  });

  test('a NameNode that is not there is ARCHIVE_UNAVAILABLE, not a crash', async () => {
    const port = hdfs.namenode_port;
    await hdfs.close();
    const s = new WebHdfsArchiveStore(`webhdfs://127.0.0.1:${port}/base?user=relaylog`, { ...fast, attempts_max: 2 });
    try {
      await expect(s.list('')).rejects.toMatchObject({ code: 'ARCHIVE_UNAVAILABLE', message: expect.stringMatching(/ECONNREFUSED/) });
    } finally {
      await s.close();
      hdfs = await startWebHdfsStandin({ root_dir: join(tmp.dir, 'hdfs2') }); // for afterEach
    }
  });

  test('URLs without a port or user are refused with the fix', () => {
    expect(() => new WebHdfsArchiveStore('webhdfs://nn/base?user=x')).toThrow(/needs the NameNode's HTTP port/);
    expect(() => new WebHdfsArchiveStore('webhdfs://nn:9870/base')).toThrow(/needs \?user=NAME/);
  });
});
