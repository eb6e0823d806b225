import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = fileURLToPath(new URL('../../', import.meta.url));
export const BIN = join(ROOT, 'bin/relaylog.js');

/** Newest mtime under `dir` of files ending in .ts or .proto. */
function newestSource(dir: string): number {
  let newest = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) newest = Math.max(newest, newestSource(p));
    else if (/\.(ts|proto)$/.test(e.name)) newest = Math.max(newest, statSync(p).mtimeMs);
  }
  return newest;
}

/**
 * The process tests run dist/ (bin/relaylog.js imports it): `npm test` builds it first (pretest).
 * When run directly (npx vitest run test/integration/server), a stale build would test old code,
 * so refuse with the fix rather than pass or fail misleadingly.
 */
export function assertFreshBuild(): void {
  const main = join(ROOT, 'dist/server/cli/main.js');
  if (!existsSync(main)) throw new Error('dist/ is missing: run `npm run build` (npm test does it in pretest)');
  const built = statSync(main).mtimeMs;
  const src = Math.max(...['server', 'client', 'engine'].map((d) => newestSource(join(ROOT, d))));
  if (src > built) throw new Error('dist/ is older than the sources: run `npm run build` (npm test does it in pretest)');
}

export interface ServerProcess {
  readonly child: ChildProcess;
  readonly address: string;
  /** Everything written to stderr so far (pino JSON lines). */
  stderr(): string;
  /** Everything written to stdout so far. */
  stdout(): string;
  /** Sends `signal` and resolves with the exit code; SIGKILLs after `timeout_ms`. */
  stop(signal?: NodeJS.Signals, timeout_ms?: number): Promise<number | null>;
}

/** Runs `relaylog <args>` to completion; kills it after `timeout_ms`. */
export function runCli(args: string[], opts: { stdin?: string; timeout_ms?: number } = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], { cwd: ROOT, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeout_ms ?? 30_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
    child.stdin.end(opts.stdin ?? '');
  });
}

/**
 * Starts `relaylog serve --data <dir> --listen 127.0.0.1:0` and resolves once it printed its
 * address; rejects (with its stderr) if it exits first or takes longer than `timeout_ms`.
 */
export function startServer(dir: string, opts: { timeout_ms?: number; extra_args?: string[]; command?: 'serve' | 'relay'; listen?: string } = {}): Promise<ServerProcess> {
  const child = spawn(process.execPath, [BIN, opts.command ?? 'serve', '--data', dir, '--listen', opts.listen ?? '127.0.0.1:0', ...(opts.extra_args ?? [])], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const stop = async (signal: NodeJS.Signals = 'SIGTERM', timeout_ms = 15_000): Promise<number | null> => {
    if (child.exitCode !== null || child.signalCode !== null) return child.exitCode;
    child.kill(signal);
    const timer = setTimeout(() => child.kill('SIGKILL'), timeout_ms);
    const code = await exited;
    clearTimeout(timer);
    return code;
  };
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`server did not start within ${opts.timeout_ms ?? 15_000} ms: ${stderr}`));
    }, opts.timeout_ms ?? 15_000);
    child.stdout!.on('data', (d: Buffer) => {
      stdout += d.toString();
      const m = /relaylog listening on (\S+)\n/.exec(stdout);
      if (m) {
        clearTimeout(timer);
        resolve({ child, address: m[1]!, stderr: () => stderr, stdout: () => stdout, stop });
      }
    });
    void exited.then((code) => {
      clearTimeout(timer);
      reject(Object.assign(new Error(`server exited with ${code} before listening: ${stderr.trim()}`), { code, stderr }));
    });
  });
}
