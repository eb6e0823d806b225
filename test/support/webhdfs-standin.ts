import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { randomBytes } from 'node:crypto';
import { closeSync, existsSync, mkdirSync, openSync, readSync, readdirSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';

/**
 * A protocol-level stand-in for HDFS's WebHDFS REST API, for tests (no JVM or HDFS can run here).
 * It serves the documented HTTP behaviour over a local directory: a NameNode port that answers
 * metadata operations and 307-redirects CREATE and OPEN to a separate DataNode port (with a
 * one-time token), the FileStatus / FileStatuses / boolean / RemoteException JSON shapes and status
 * codes, `overwrite`, `offset`/`length`, `user.name` (unknown users get 401 SecurityException,
 * read-only prefixes 403 AccessControlException), and injectable faults.
 *
 * Not covered: Kerberos/delegation tokens, APPEND/CONCAT/TRUNCATE, permissions beyond the two
 * rules above, replication and block placement, quotas, snapshots, and HDFS's exact error texts.
 */

export type FaultKind = 'status_500' | 'status_503' | 'reset' | 'truncate' | 'delay';
export interface Fault {
  /** Which requests: an op name (CREATE, OPEN, ...) and the port that serves it. */
  op: string;
  at: 'namenode' | 'datanode';
  kind: FaultKind;
  /** How many matching requests to hit (then the fault is spent). Infinity: all of them. */
  times: number;
  delay_ms?: number;
}

export interface StandinOptions {
  root_dir: string;
  users?: string[];
  /** Paths (under the root) nobody may write. */
  read_only?: string[];
}

export interface WebHdfsStandin {
  /** webhdfs://127.0.0.1:PORT/base?user=NAME */
  url(base?: string, user?: string): string;
  readonly namenode_port: number;
  readonly datanode_port: number;
  /** Every request seen: port, method, op, path. */
  readonly log: Array<{ at: 'namenode' | 'datanode'; method: string; op: string; path: string }>;
  inject(f: Fault): void;
  clearFaults(): void;
  close(): Promise<void>;
}

export async function startWebHdfsStandin(o: StandinOptions): Promise<WebHdfsStandin> {
  mkdirSync(o.root_dir, { recursive: true });
  const users = new Set(o.users ?? ['relaylog']);
  const faults: Fault[] = [];
  const log: WebHdfsStandin['log'] = [];
  const tokens = new Map<string, { op: string; path: string; overwrite: boolean; offset: number; length: number | null }>();
  const local = (p: string) => join(o.root_dir, p);

  const send = (res: ServerResponse, status: number, body: unknown) => {
    const text = JSON.stringify(body);
    res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
    res.end(text);
  };
  const remote = (res: ServerResponse, status: number, exception: string, javaClass: string, message: string) =>
    send(res, status, { RemoteException: { exception, javaClassName: javaClass, message } });
  const notFound = (res: ServerResponse, p: string) => remote(res, 404, 'FileNotFoundException', 'java.io.FileNotFoundException', `File does not exist: ${p}`);

  const fileStatus = (p: string, suffix: string) => {
    const st = statSync(local(p));
    return {
      accessTime: Math.floor(st.atimeMs),
      blockSize: st.isFile() ? 134217728 : 0,
      group: 'supergroup',
      length: st.isFile() ? st.size : 0,
      modificationTime: Math.floor(st.mtimeMs),
      owner: 'relaylog',
      pathSuffix: suffix,
      permission: st.isFile() ? '644' : '755',
      replication: st.isFile() ? 3 : 0,
      type: st.isFile() ? 'FILE' : 'DIRECTORY',
    };
  };

  /** Applies a matching fault; true when the response was taken over by it. */
  async function fault(at: 'namenode' | 'datanode', op: string, req: IncomingMessage, res: ServerResponse, body?: Buffer): Promise<boolean> {
    const f = faults.find((x) => x.at === at && x.op === op && x.times > 0);
    if (!f) return false;
    f.times--;
    switch (f.kind) {
      case 'delay':
        await new Promise((r) => setTimeout(r, f.delay_ms ?? 200));
        return false;
      case 'status_500':
        remote(res, 500, 'RuntimeException', 'java.lang.RuntimeException', 'injected failure');
        return true;
      case 'status_503':
        res.writeHead(503, { 'content-length': 0 }).end();
        return true;
      case 'reset':
        req.socket.destroy();
        return true;
      case 'truncate': {
        // Promise more than is sent, then cut the connection.
        const b = body ?? Buffer.from('{"boolean":true}');
        res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': b.length + 10 });
        res.write(b.subarray(0, Math.floor(b.length / 2)));
        setTimeout(() => req.socket.destroy(), 5);
        return true;
      }
    }
  }

  const readBody = (req: IncomingMessage) =>
    new Promise<Buffer>((resolve, reject) => {
      const parts: Buffer[] = [];
      req.on('data', (c: Buffer) => parts.push(c));
      req.on('end', () => resolve(Buffer.concat(parts)));
      req.on('error', reject);
    });

  const parse = (req: IncomingMessage) => {
    const u = new URL(req.url ?? '/', 'http://x');
    if (!u.pathname.startsWith('/webhdfs/v1')) return null;
    const path = decodeURIComponent(u.pathname.slice('/webhdfs/v1'.length)) || '/';
    return { u, path, op: (u.searchParams.get('op') ?? '').toUpperCase() };
  };

  const nn: Server = createServer((req, res) => {
    void (async () => {
      const q = parse(req);
      if (!q) return remote(res, 404, 'IllegalArgumentException', 'java.lang.IllegalArgumentException', 'not a WebHDFS path');
      const { u, path, op } = q;
      log.push({ at: 'namenode', method: req.method ?? '', op, path });
      await readBody(req);
      if (await fault('namenode', op, req, res)) return;
      const user = u.searchParams.get('user.name');
      if (!user || !users.has(user)) return remote(res, 401, 'SecurityException', 'java.lang.SecurityException', `Failed to obtain user group information: ${user ?? '(none)'}`);
      const writing = ['CREATE', 'MKDIRS', 'RENAME', 'DELETE'].includes(op);
      if (writing && (o.read_only ?? []).some((r) => path.startsWith(r))) {
        return remote(res, 403, 'AccessControlException', 'org.apache.hadoop.security.AccessControlException', `Permission denied: user=${user}, access=WRITE, inode="${path}"`);
      }
      const method = req.method;
      if (method === 'PUT' && op === 'MKDIRS') {
        if (existsSync(local(path)) && statSync(local(path)).isFile()) return remote(res, 403, 'FileAlreadyExistsException', 'org.apache.hadoop.fs.FileAlreadyExistsException', `Path is not a directory: ${path}`);
        mkdirSync(local(path), { recursive: true });
        return send(res, 200, { boolean: true });
      }
      if (method === 'PUT' && op === 'CREATE') {
        const overwrite = u.searchParams.get('overwrite') === 'true';
        if (!overwrite && existsSync(local(path))) return remote(res, 403, 'FileAlreadyExistsException', 'org.apache.hadoop.fs.FileAlreadyExistsException', `${path} for client 127.0.0.1 already exists`);
        const token = randomBytes(8).toString('hex');
        tokens.set(token, { op, path, overwrite, offset: 0, length: null });
        res.writeHead(307, { location: `http://127.0.0.1:${dnPort}/webhdfs/v1${encodeURI(path)}?op=CREATE&token=${token}&overwrite=${overwrite}`, 'content-length': 0 });
        return res.end();
      }
      if (method === 'GET' && op === 'OPEN') {
        if (!existsSync(local(path)) || !statSync(local(path)).isFile()) return notFound(res, path);
        const offset = Number(u.searchParams.get('offset') ?? 0);
        const length = u.searchParams.has('length') ? Number(u.searchParams.get('length')) : null;
        if (!(offset >= 0) || (length !== null && !(length >= 0))) return remote(res, 400, 'IllegalArgumentException', 'java.lang.IllegalArgumentException', 'Invalid value for offset or length');
        const token = randomBytes(8).toString('hex');
        tokens.set(token, { op, path, overwrite: false, offset, length });
        res.writeHead(307, { location: `http://127.0.0.1:${dnPort}/webhdfs/v1${encodeURI(path)}?op=OPEN&token=${token}&offset=${offset}`, 'content-length': 0 });
        return res.end();
      }
      if (method === 'GET' && op === 'GETFILESTATUS') {
        if (!existsSync(local(path))) return notFound(res, path);
        return send(res, 200, { FileStatus: fileStatus(path, '') });
      }
      if (method === 'GET' && op === 'LISTSTATUS') {
        if (!existsSync(local(path))) return notFound(res, path);
        if (statSync(local(path)).isFile()) return send(res, 200, { FileStatuses: { FileStatus: [fileStatus(path, '')] } });
        const names = readdirSync(local(path)).sort();
        return send(res, 200, { FileStatuses: { FileStatus: names.map((n) => fileStatus(`${path}/${n}`, n)) } });
      }
      if (method === 'PUT' && op === 'RENAME') {
        const dest = u.searchParams.get('destination');
        if (!dest || !dest.startsWith('/')) return remote(res, 400, 'IllegalArgumentException', 'java.lang.IllegalArgumentException', 'Invalid value for destination');
        if (!existsSync(local(path)) || existsSync(local(dest))) return send(res, 200, { boolean: false });
        mkdirSync(dirname(local(dest)), { recursive: true });
        renameSync(local(path), local(dest));
        return send(res, 200, { boolean: true });
      }
      if (method === 'DELETE' && op === 'DELETE') {
        if (!existsSync(local(path))) return send(res, 200, { boolean: false });
        const recursive = u.searchParams.get('recursive') === 'true';
        if (statSync(local(path)).isDirectory() && !recursive && readdirSync(local(path)).length > 0) {
          return remote(res, 403, 'PathIsNotEmptyDirectoryException', 'org.apache.hadoop.fs.PathIsNotEmptyDirectoryException', `${path} is non empty': Directory is not empty`);
        }
        rmSync(local(path), { recursive: true, force: true });
        return send(res, 200, { boolean: true });
      }
      return remote(res, 400, 'UnsupportedOperationException', 'java.lang.UnsupportedOperationException', `${op} is not supported`);
    })().catch((err: unknown) => {
      if (!res.headersSent) remote(res, 500, 'RuntimeException', 'java.lang.RuntimeException', String((err as Error).message));
    });
  });

  const dn: Server = createServer((req, res) => {
    void (async () => {
      const q = parse(req);
      if (!q) return remote(res, 404, 'IllegalArgumentException', 'java.lang.IllegalArgumentException', 'not a WebHDFS path');
      const { u, op, path } = q;
      log.push({ at: 'datanode', method: req.method ?? '', op, path });
      const body = await readBody(req);
      const t = tokens.get(u.searchParams.get('token') ?? '');
      if (!t || t.path !== path || t.op !== op) return remote(res, 403, 'InvalidToken', 'org.apache.hadoop.security.token.SecretManager$InvalidToken', 'token is not valid for this request');
      tokens.delete(u.searchParams.get('token')!);
      if (op === 'CREATE') {
        if (await fault('datanode', op, req, res)) return;
        if (!t.overwrite && existsSync(local(path))) return remote(res, 403, 'FileAlreadyExistsException', 'org.apache.hadoop.fs.FileAlreadyExistsException', `${path} already exists`);
        mkdirSync(dirname(local(path)), { recursive: true });
        writeFileSync(local(path), body);
        res.writeHead(201, { location: `webhdfs://127.0.0.1:${nnPort}${path}`, 'content-length': 0 });
        return res.end();
      }
      if (op === 'OPEN') {
        if (!existsSync(local(path))) return notFound(res, path);
        // Only the asked range is read (a DataNode streams the blocks it holds).
        const size = statSync(local(path)).size;
        const start = Math.min(t.offset, size);
        const end = t.length === null ? size : Math.min(size, t.offset + t.length);
        const slice = Buffer.allocUnsafe(end - start);
        const fd = openSync(local(path), 'r');
        try {
          for (let done = 0; done < slice.length; ) {
            const n = readSync(fd, slice, done, slice.length - done, start + done);
            if (n === 0) break;
            done += n;
          }
        } finally {
          closeSync(fd);
        }
        if (await fault('datanode', op, req, res, slice)) return;
        res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': slice.length });
        return res.end(slice);
      }
      return remote(res, 400, 'UnsupportedOperationException', 'java.lang.UnsupportedOperationException', `${op} is not served by this DataNode`);
    })().catch((err: unknown) => {
      if (!res.headersSent) remote(res, 500, 'RuntimeException', 'java.lang.RuntimeException', String((err as Error).message));
    });
  });

  const listen = (s: Server) => new Promise<number>((resolve) => s.listen(0, '127.0.0.1', () => resolve((s.address() as { port: number }).port)));
  const nnPort = await listen(nn);
  const dnPort = await listen(dn);
  const close = (s: Server) =>
    new Promise<void>((resolve) => {
      s.closeAllConnections();
      s.close(() => resolve());
    });

  return {
    url: (base = '/relaylog', user = [...users][0]!) => `webhdfs://127.0.0.1:${nnPort}${base}?user=${encodeURIComponent(user)}`,
    namenode_port: nnPort,
    datanode_port: dnPort,
    log,
    inject: (f) => void faults.push({ ...f }),
    clearFaults: () => void faults.splice(0),
    close: async () => {
      await close(nn);
      await close(dn);
    },
  };
}
