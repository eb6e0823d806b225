import { Agent, request, type IncomingMessage } from 'node:http';
import { randomBytes } from 'node:crypto';
import { EngineError, invalidArgument, type ErrorCode } from '../../base/errors.js';
import { crc32c } from '../../format/crc32c.js';
import type { ArchiveStore } from './archive-store.js';

/**
 * ArchiveStore over HDFS through the WebHDFS REST API (the HTTP API every NameNode serves), with
 * simple authentication (`user.name`). Operations used, as the Hadoop WebHDFS documentation
 * specifies them (all under http://HOST:PORT/webhdfs/v1/<path>?op=...&user.name=U):
 *
 *   MKDIRS         PUT                    -> 200 {"boolean": true}
 *   CREATE         PUT (no body)          -> 307, Location: a DataNode URL; PUT the bytes there -> 201
 *   RENAME         PUT &destination=/abs  -> 200 {"boolean": true|false} (false: source missing or target exists)
 *   GETFILESTATUS  GET                    -> 200 {"FileStatus": {length, modificationTime, type, ...}}
 *   LISTSTATUS     GET                    -> 200 {"FileStatuses": {"FileStatus": [{pathSuffix, ...}]}}
 *   OPEN           GET &offset&length     -> 307 to a DataNode; GET there -> 200, the bytes
 *   DELETE         DELETE &recursive=true -> 200 {"boolean": true|false}
 *
 * Errors arrive as {"RemoteException": {exception, javaClassName, message}} and become named
 * errors (ARCHIVE_NOT_FOUND, ARCHIVE_EXISTS, ARCHIVE_PERMISSION_DENIED, ...). Timeouts, 5xx, resets,
 * refused connections and short bodies are ARCHIVE_UNAVAILABLE and are retried with capped,
 * jittered exponential backoff, a bounded number of times.
 *
 * put() never makes a partial file visible: the bytes go to `<name>.tmp-<random>` in the same
 * directory (CREATE overwrite=true: the temporary name is ours alone), their length is checked
 * with GETFILESTATUS, and RENAME moves them into place; HDFS's RENAME never replaces an existing
 * file, so an existing target is reported as ARCHIVE_EXISTS.
 */

export interface WebHdfsOptions {
  /** One request's deadline, including its body. */
  request_timeout_ms?: number;
  /** Attempts per operation (the first included) before ARCHIVE_UNAVAILABLE. */
  attempts_max?: number;
  backoff_base_ms?: number;
  backoff_max_ms?: number;
  /** Sockets kept per host (NameNode and each DataNode). */
  sockets_max?: number;
  /** Largest put() accepted: a streamed upload is buffered so that a retry can resend it. */
  upload_max_bytes?: number;
}

const DEFAULTS: Required<WebHdfsOptions> = {
  request_timeout_ms: 30_000,
  attempts_max: 6,
  backoff_base_ms: 100,
  backoff_max_ms: 5_000,
  sockets_max: 16,
  upload_max_bytes: 2 * 1024 * 1024 * 1024,
};

interface HttpResult {
  status: number;
  headers: IncomingMessage['headers'];
  body: Buffer;
}

/** A failure worth retrying (the network, the server's 5xx, a body cut short). */
class Transient extends Error {}

export class WebHdfsArchiveStore implements ArchiveStore {
  readonly url: string;
  private readonly base_path: string;
  private readonly namenode: string;
  private readonly user: string;
  private readonly o: Required<WebHdfsOptions>;
  private readonly agent: Agent;
  /** Attempts per operation kind, for tests and metrics. */
  readonly stats = { requests: 0, retries: 0 };

  constructor(url: string, opts: WebHdfsOptions = {}) {
    const u = new URL(url);
    if (u.protocol !== 'webhdfs:') throw invalidArgument(`not a webhdfs:// URL: ${url}`);
    if (!u.port) throw invalidArgument(`webhdfs URL ${url} needs the NameNode's HTTP port (webhdfs://host:9870/path)`);
    this.namenode = `http://${u.host}`;
    this.base_path = decodeURIComponent(u.pathname).replace(/\/+$/, '') || '';
    this.user = u.searchParams.get('user') ?? u.username ?? '';
    if (!this.user) throw invalidArgument(`webhdfs URL ${url} needs ?user=NAME (simple authentication)`);
    this.url = `webhdfs://${u.host}${this.base_path}?user=${encodeURIComponent(this.user)}`;
    this.o = { ...DEFAULTS, ...opts };
    this.agent = new Agent({ keepAlive: true, maxSockets: this.o.sockets_max });
  }

  /** Absolute HDFS path of an archive-relative path; refuses paths that leave the base. */
  private abs(path: string): string {
    const parts: string[] = [];
    for (const p of path.split('/')) {
      if (p === '' || p === '.') continue;
      if (p === '..') throw invalidArgument(`archive path ${JSON.stringify(path)} leaves the archive`);
      parts.push(p);
    }
    return `${this.base_path}/${parts.join('/')}`.replace(/\/+$/, '') || '/';
  }

  private opUrl(abs: string, op: string, params: Record<string, string | number | boolean> = {}): string {
    const q = new URLSearchParams({ op, 'user.name': this.user });
    for (const [k, v] of Object.entries(params)) q.set(k, String(v));
    return `${this.namenode}/webhdfs/v1${abs.split('/').map(encodeURIComponent).join('/')}?${q}`;
  }

  // ------------------------------------------------------------------ ArchiveStore

  async put(path: string, data: Buffer | AsyncIterable<Buffer>): Promise<{ size_bytes: number; crc32c: number }> {
    const target = this.abs(path);
    const bytes = Buffer.isBuffer(data) ? data : await collect(data, this.o.upload_max_bytes, path);
    const dir = target.slice(0, target.lastIndexOf('/')) || '/';
    const name = target.slice(dir.length + 1);
    await this.retry('MKDIRS', dir, async () => this.expectBoolean(await this.http('PUT', this.opUrl(dir, 'MKDIRS')), 'MKDIRS', dir));
    if (await this.statAbs(target)) throw exists(this.url, path);
    await this.removeStaleTemps(dir, name);
    const tmp = `${target}.tmp-${randomBytes(6).toString('hex')}`;
    try {
      await this.retry('CREATE', tmp, () => this.create(tmp, bytes));
      const st = await this.statAbs(tmp);
      if (!st || st.size_bytes !== bytes.length) throw new EngineError('ARCHIVE_PROTOCOL_ERROR', `WebHDFS CREATE ${tmp}: the NameNode reports ${st ? st.size_bytes : 'no file'}, ${bytes.length} bytes were sent`);
      const renamed = await this.retry('RENAME', tmp, async () => this.expectBoolean(await this.http('PUT', this.opUrl(tmp, 'RENAME', { destination: target })), 'RENAME', tmp));
      if (!renamed) {
        // RENAME answers false when the target exists or the source is gone. A retried RENAME whose
        // first attempt did succeed finds its source gone and the target there, at our length.
        const there = await this.statAbs(target);
        const src = await this.statAbs(tmp);
        if (!(there && !src && there.size_bytes === bytes.length)) throw exists(this.url, path);
      }
    } catch (err) {
      await this.http('DELETE', this.opUrl(tmp, 'DELETE', { recursive: false })).catch(() => undefined);
      throw err;
    }
    return { size_bytes: bytes.length, crc32c: crc32c(bytes) };
  }

  /** Two-step CREATE: the NameNode redirects (307) to a DataNode, which takes the bytes (201). */
  private async create(abs: string, bytes: Buffer): Promise<void> {
    const nn = await this.http('PUT', this.opUrl(abs, 'CREATE', { overwrite: true }));
    const location = this.redirect(nn, 'CREATE', abs);
    const dn = await this.http('PUT', location, bytes);
    if (dn.status !== 201) this.fail(dn, 'CREATE', abs);
  }

  async stat(path: string): Promise<{ size_bytes: number; modified_ms: number } | null> {
    const st = await this.statAbs(this.abs(path));
    return st && st.type === 'FILE' ? { size_bytes: st.size_bytes, modified_ms: st.modified_ms } : null;
  }

  private async statAbs(abs: string): Promise<{ size_bytes: number; modified_ms: number; type: string } | null> {
    return this.retry('GETFILESTATUS', abs, async () => {
      const r = await this.http('GET', this.opUrl(abs, 'GETFILESTATUS'));
      if (r.status === 404) return null;
      if (r.status !== 200) this.fail(r, 'GETFILESTATUS', abs);
      const fs = (json(r, 'GETFILESTATUS', abs) as { FileStatus?: { length?: unknown; modificationTime?: unknown; type?: unknown } }).FileStatus;
      if (!fs || typeof fs.length !== 'number' || typeof fs.type !== 'string') throw protocol('GETFILESTATUS', abs, 'no FileStatus in the answer');
      return { size_bytes: fs.length, modified_ms: typeof fs.modificationTime === 'number' ? fs.modificationTime : 0, type: fs.type };
    });
  }

  async list(dir: string): Promise<Array<{ name: string; size_bytes: number; type: 'file' | 'dir' }>> {
    const abs = this.abs(dir);
    return this.retry('LISTSTATUS', abs, async () => {
      const r = await this.http('GET', this.opUrl(abs, 'LISTSTATUS'));
      if (r.status === 404) return [];
      if (r.status !== 200) this.fail(r, 'LISTSTATUS', abs);
      const list = (json(r, 'LISTSTATUS', abs) as { FileStatuses?: { FileStatus?: unknown } }).FileStatuses?.FileStatus;
      if (!Array.isArray(list)) throw protocol('LISTSTATUS', abs, 'no FileStatuses.FileStatus array in the answer');
      return (list as Array<{ pathSuffix: string; length: number; type: string }>)
        .filter((f) => !f.pathSuffix.includes('.tmp-')) // uploads in progress or abandoned are not visible
        .map((f) => ({ name: f.pathSuffix, size_bytes: f.type === 'FILE' ? f.length : 0, type: f.type === 'DIRECTORY' ? ('dir' as const) : ('file' as const) }))
        .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    });
  }

  async read(path: string, offset: number, length: number): Promise<Buffer> {
    const abs = this.abs(path);
    if (length === 0) return Buffer.alloc(0);
    return this.retry('OPEN', abs, async () => {
      const nn = await this.http('GET', this.opUrl(abs, 'OPEN', { offset, length }));
      const dn = await this.http('GET', this.redirect(nn, 'OPEN', abs));
      if (dn.status !== 200) this.fail(dn, 'OPEN', abs);
      if (dn.body.length > length) throw protocol('OPEN', abs, `asked for ${length} bytes, got ${dn.body.length}`);
      if (dn.body.length < length) {
        // Fewer bytes are right only at the end of the file.
        const st = await this.statAbs(abs);
        if (!st || offset + dn.body.length !== Math.min(st.size_bytes, offset + length)) {
          throw new Transient(`OPEN ${abs}: ${dn.body.length} of ${length} bytes at offset ${offset}, file is ${st?.size_bytes ?? '?'} bytes`);
        }
      }
      return dn.body;
    });
  }

  async delete(path: string): Promise<boolean> {
    const abs = this.abs(path);
    return this.retry('DELETE', abs, async () => {
      const r = await this.http('DELETE', this.opUrl(abs, 'DELETE', { recursive: true }));
      if (r.status === 404) return false;
      return this.expectBoolean(r, 'DELETE', abs);
    });
  }

  async close(): Promise<void> {
    this.agent.destroy();
  }

  // ------------------------------------------------------------------ helpers

  /** Temp files for this target left by an upload that never finished (a crash, a kill -9). */
  private async removeStaleTemps(dir: string, name: string): Promise<void> {
    const r = await this.http('GET', this.opUrl(dir, 'LISTSTATUS')).catch(() => null);
    if (!r || r.status !== 200) return;
    const list = ((json(r, 'LISTSTATUS', dir) as { FileStatuses?: { FileStatus?: Array<{ pathSuffix: string }> } }).FileStatuses?.FileStatus ?? []);
    for (const f of list) {
      if (f.pathSuffix.startsWith(`${name}.tmp-`)) await this.http('DELETE', this.opUrl(`${dir}/${f.pathSuffix}`, 'DELETE', { recursive: false })).catch(() => undefined);
    }
  }

  private redirect(r: HttpResult, op: string, abs: string): string {
    if (r.status !== 307 && r.status !== 302 && r.status !== 303) this.fail(r, op, abs);
    const loc = r.headers.location;
    if (!loc) throw protocol(op, abs, `a ${r.status} redirect without a Location header`);
    return loc;
  }

  private expectBoolean(r: HttpResult, op: string, abs: string): boolean {
    if (r.status !== 200) this.fail(r, op, abs);
    const b = (json(r, op, abs) as { boolean?: unknown }).boolean;
    if (typeof b !== 'boolean') throw protocol(op, abs, 'no {"boolean": ...} in the answer');
    return b;
  }

  /** Turns a non-success answer into the named error (5xx: transient, retried). */
  private fail(r: HttpResult, op: string, abs: string): never {
    if (r.status >= 500) throw new Transient(`${op} ${abs}: HTTP ${r.status} ${remoteMessage(r)}`);
    const ex = remoteException(r);
    const what = `WebHDFS ${op} ${abs}: ${ex ? `${ex.exception}: ${ex.message}` : `HTTP ${r.status}`}`;
    const code: ErrorCode =
      ex?.exception === 'FileNotFoundException' || r.status === 404
        ? 'ARCHIVE_NOT_FOUND'
        : ex?.exception === 'FileAlreadyExistsException'
          ? 'ARCHIVE_EXISTS'
          : ex?.exception === 'AccessControlException' || ex?.exception === 'SecurityException' || r.status === 401 || r.status === 403
            ? 'ARCHIVE_PERMISSION_DENIED'
            : 'ARCHIVE_PROTOCOL_ERROR';
    throw new EngineError(code, what, { op, path: abs, status: r.status, exception: ex?.exception ?? null });
  }

  /** Runs `fn` with retries on transient failures: capped exponential backoff with full jitter. */
  private async retry<T>(op: string, abs: string, fn: () => Promise<T>): Promise<T> {
    let last: Error | null = null;
    for (let attempt = 1; attempt <= this.o.attempts_max; attempt++) {
      try {
        return await fn();
      } catch (err) {
        if (!(err instanceof Transient)) throw err;
        last = err;
        if (attempt === this.o.attempts_max) break;
        this.stats.retries++;
        const cap = Math.min(this.o.backoff_max_ms, this.o.backoff_base_ms * 2 ** (attempt - 1));
        await new Promise((r) => setTimeout(r, Math.random() * cap));
      }
    }
    throw new EngineError('ARCHIVE_UNAVAILABLE', `WebHDFS ${op} ${abs} failed after ${this.o.attempts_max} attempts: ${last?.message}`, { op, path: abs, attempts: this.o.attempts_max });
  }

  /** One HTTP exchange; network failures, timeouts and short bodies are Transient. */
  private http(method: string, url: string, body?: Buffer): Promise<HttpResult> {
    this.stats.requests++;
    return new Promise((resolve, reject) => {
      const req = request(url, { method, agent: this.agent, headers: body ? { 'content-type': 'application/octet-stream', 'content-length': body.length } : { 'content-length': 0 } }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('aborted', () => reject(new Transient(`${method} ${url}: response aborted`)));
        res.on('error', (e) => reject(new Transient(`${method} ${url}: ${e.message}`)));
        res.on('end', () => {
          const buf = Buffer.concat(chunks);
          const declared = res.headers['content-length'];
          if (declared !== undefined && Number(declared) !== buf.length) {
            reject(new Transient(`${method} ${url}: body of ${buf.length} bytes, Content-Length said ${declared}`));
            return;
          }
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body: buf });
        });
      });
      req.setTimeout(this.o.request_timeout_ms, () => req.destroy(new Transient(`${method} ${url}: no answer within ${this.o.request_timeout_ms} ms`)));
      req.on('error', (e) => reject(e instanceof Transient ? e : new Transient(`${method} ${url}: ${(e as NodeJS.ErrnoException).code ?? e.message}`)));
      req.end(body);
    });
  }
}

function json(r: HttpResult, op: string, abs: string): unknown {
  try {
    return JSON.parse(r.body.toString('utf8'));
  } catch {
    throw protocol(op, abs, `expected JSON, got ${JSON.stringify(r.body.subarray(0, 80).toString('utf8'))}`);
  }
}

function remoteException(r: HttpResult): { exception: string; message: string } | null {
  try {
    const e = (JSON.parse(r.body.toString('utf8')) as { RemoteException?: { exception?: string; message?: string } }).RemoteException;
    return e && typeof e.exception === 'string' ? { exception: e.exception, message: e.message ?? '' } : null;
  } catch {
    return null;
  }
}

const remoteMessage = (r: HttpResult) => {
  const e = remoteException(r);
  return e ? `${e.exception}: ${e.message}` : '';
};

const protocol = (op: string, abs: string, why: string) => new EngineError('ARCHIVE_PROTOCOL_ERROR', `WebHDFS ${op} ${abs}: ${why}`, { op, path: abs });
const exists = (url: string, path: string) => new EngineError('ARCHIVE_EXISTS', `archive file ${url}/${path} already exists; relaylog never overwrites archived data`, { path });

async function collect(data: AsyncIterable<Buffer>, max: number, path: string): Promise<Buffer> {
  const parts: Buffer[] = [];
  let n = 0;
  for await (const c of data) {
    n += c.length;
    if (n > max) throw new EngineError('LIMIT_EXCEEDED', `archive upload of ${path} is over upload_max_bytes (${max})`, { limit: 'upload_max_bytes' });
    parts.push(c);
  }
  return Buffer.concat(parts);
}
