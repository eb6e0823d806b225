import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { Redis } from 'ioredis';
import { freePort, processCpuMs, startProcess, stopProcess } from './procs.js';
import type { LogSystem } from './system.js';

const PIPELINE_RECORDS = 256;
const READ_COUNT = 512;

/** Redis Streams (redis-server, AOF appendfsync everysec), driven by ioredis with pipelining. */
export class RedisStreamsSystem implements LogSystem {
  readonly name = 'Redis Streams (AOF everysec)';
  readonly durability = 'acked in memory, AOF fsynced every second: survives a process crash, loses up to ~1 s on a power loss';
  private child: ChildProcess | null = null;
  private r: Redis | null = null;
  private dir = '';
  private port = 0;

  async start(): Promise<void> {
    this.dir = mkdtempSync(join(tmpdir(), 'bench-redis-'));
    this.port = await freePort();
    ({ child: this.child } = await startProcess(
      'redis-server',
      ['--port', String(this.port), '--bind', '127.0.0.1', '--dir', this.dir, '--appendonly', 'yes', '--appendfsync', 'everysec', '--save', '', '--protected-mode', 'no'],
      /Ready to accept connections/,
    ));
    this.r = new Redis({ port: this.port, host: '127.0.0.1', lazyConnect: false });
  }

  async stop(): Promise<void> {
    this.r?.disconnect();
    await stopProcess(this.child);
    rmSync(this.dir, { recursive: true, force: true });
  }

  async createTopic(topic: string): Promise<void> {
    await this.r!.del(topic);
  }

  async produceBulk(topic: string, count: number, value: Buffer): Promise<void> {
    for (let sent = 0; sent < count; sent += PIPELINE_RECORDS) {
      const p = this.r!.pipeline();
      for (let i = 0; i < Math.min(PIPELINE_RECORDS, count - sent); i++) p.xadd(topic, '*', 'v', value);
      await p.exec();
    }
  }

  async produceOne(topic: string, value: Buffer): Promise<void> {
    await this.r!.xadd(topic, '*', 'v', value);
  }

  async replay(topic: string, count: number): Promise<number> {
    return this.range(topic, '-', count);
  }

  /** Stream IDs are the server's clock in ms: XRANGE from `<timestamp_ms>-0`. */
  async replayFrom(topic: string, timestamp_ms: number, count: number): Promise<number> {
    return this.range(topic, `${timestamp_ms}-0`, count);
  }

  /** A reader on its own connection (as every reader in this harness has). */
  private async range(topic: string, start: string, count: number): Promise<number> {
    const reader = new Redis({ port: this.port, host: '127.0.0.1' });
    let bytes = 0;
    let n = 0;
    let from = start;
    try {
      while (n < count) {
        const rows = await reader.xrangeBuffer(topic, from, '+', 'COUNT', Math.min(READ_COUNT, count - n));
        if (rows.length === 0) throw new Error(`${topic}: the stream ended after ${n} of ${count} records`);
        for (const [, fields] of rows) {
          bytes += fields[1]!.length;
          n++;
        }
        from = `(${rows[rows.length - 1]![0].toString()}`;
      }
    } finally {
      reader.disconnect();
    }
    return bytes;
  }

  /** Its own connection (XREAD BLOCK holds one), from the last ID as of this call. */
  async tail(topic: string, onValue: (value: Buffer) => void): Promise<() => Promise<void>> {
    const reader = new Redis({ port: this.port, host: '127.0.0.1' });
    const last_row = await reader.xrevrangeBuffer(topic, '+', '-', 'COUNT', 1);
    let last = last_row[0] ? last_row[0][0].toString() : '0-0';
    let stopped = false;
    const loop = (async () => {
      while (!stopped) {
        const res = await reader.xreadBuffer('COUNT', READ_COUNT, 'BLOCK', 100, 'STREAMS', topic, last).catch(() => null);
        if (!res) continue;
        for (const [, rows] of res) {
          for (const [id, fields] of rows) {
            onValue(fields[1]!);
            last = id.toString();
          }
        }
      }
    })();
    return async () => {
      stopped = true;
      await loop;
      reader.disconnect();
    };
  }

  serverCpuMs(): number {
    return processCpuMs(this.child?.pid);
  }
}
