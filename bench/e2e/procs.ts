import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';

/**
 * How relaylog's server processes are started in the benchmarks: as `npm start` starts one
 * (docs/operations.md). glibc's malloc asks for transparent huge pages (BENCH_RELAYLOG_PLAIN_MALLOC=1:
 * without), V8 collects garbage on the main thread only (`--single-threaded-gc`;
 * BENCH_RELAYLOG_PARALLEL_GC=1: with V8's helper threads, Node's default) and starts with a
 * 128 MB old generation (`--initial-old-space-size=128`; BENCH_RELAYLOG_DEFAULT_HEAP=1: without).
 */
export const SERVER_ENV: Record<string, string> = process.env.BENCH_RELAYLOG_PLAIN_MALLOC === '1' ? {} : { GLIBC_TUNABLES: 'glibc.malloc.hugetlb=1' };
export const SERVER_NODE_ARGS: readonly string[] = [
  ...(process.env.BENCH_RELAYLOG_PARALLEL_GC === '1' ? [] : ['--single-threaded-gc']),
  ...(process.env.BENCH_RELAYLOG_DEFAULT_HEAP === '1' ? [] : ['--initial-old-space-size=128']),
];

/** A free TCP port on 127.0.0.1 (bind to 0, read it, close). */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

/** Starts a process and resolves once a line of its output matches `ready` (bounded by timeout_ms). */
export async function startProcess(cmd: string, args: string[], ready: RegExp, timeout_ms = 20_000, env: Record<string, string> = {}): Promise<{ child: ChildProcess; line: string }> {
  const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
  return new Promise((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${cmd} did not become ready within ${timeout_ms} ms; output:\n${out.slice(-2000)}`));
    }, timeout_ms);
    const onData = (d: Buffer) => {
      out += d.toString();
      for (const line of out.split('\n')) {
        if (ready.test(line)) {
          clearTimeout(timer);
          child.stdout?.off('data', onData);
          child.stderr?.off('data', onData);
          child.stdout?.resume();
          child.stderr?.resume();
          resolve({ child, line });
          return;
        }
      }
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`${cmd} exited with ${code} before it was ready; output:\n${out.slice(-2000)}`));
    });
  });
}

export async function stopProcess(child: ChildProcess | null, timeout_ms = 10_000): Promise<void> {
  if (!child || child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  child.kill('SIGTERM');
  const t = setTimeout(() => child.kill('SIGKILL'), timeout_ms);
  await exited;
  clearTimeout(t);
}

/** User+system CPU ms of a running process, from /proc (Linux). */
export function processCpuMs(pid: number | undefined): number {
  if (!pid) return 0;
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    const ticks = Number(fields[11]) + Number(fields[12]); // utime, stime (fields 14, 15 of stat)
    return (ticks * 1000) / 100; // CLK_TCK is 100 on Linux
  } catch {
    return 0;
  }
}

/** True if `cmd` is on the PATH (a peer's server binary). */
export function haveCommand(cmd: string): boolean {
  try {
    execFileSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}
