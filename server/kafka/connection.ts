import type { Socket } from 'node:net';
import { setMaxListeners } from 'node:events';
import type { AdvertisedNode, KafkaContext, RequestContext } from './context.js';
import { isMalformed, KafkaCode } from './errors.js';
import { apiVersionsResponse } from './handlers/api-versions.js';
import type { AnyRoute } from './handlers/routes.js';
import { ApiKey, type ApiCodec } from './protocol/api.js';
import { apiVersions } from './protocol/api-versions.js';
import { Encoder } from './protocol/encoder.js';
import { FrameReader, responseFrame, type RequestHeader } from './protocol/frame.js';
import { decodeRequestFrame } from './request.js';

interface Reply {
  chunks: Buffer[];
  /** Gives the response's borrowed buffers back; idempotent. */
  release: () => void;
}

/**
 * One client connection. Frames are decoded strictly in arrival order and served one after
 * another (consecutive produces overlap, see dispatch); responses are written strictly in that
 * order, which is Kafka's per-connection ordering and what pipelining clients rely on. At most
 * `inflight_requests_max` requests are between "read" and "answered": past that the socket is not
 * read, so a fast client gets backpressure rather than an unbounded queue. A malformed request
 * closes the connection with a log line.
 */
export class KafkaConnection {
  private readonly frames: FrameReader;
  private readonly queue: Array<Promise<Reply | null>> = [];
  private readonly abort = new AbortController();
  private readonly unreleased = new Set<() => void>();
  private readonly idle_waiters: Array<() => void> = [];
  /** Settles once every request read so far has been served. */
  private barrier: Promise<unknown> = Promise.resolve();
  /** When the last request read was a Produce: the barrier it started behind (a following Produce starts behind it too). */
  private produce_gate: Promise<unknown> | null = null;
  private pumping = false;
  private paused = false;
  private draining = false;
  /** Set when the connection is being torn down for a malformed request or a bug: nothing more is read from it. */
  private broken = false;
  private closed = false;
  readonly remote: string;

  constructor(
    private readonly socket: Socket,
    private readonly ctx: KafkaContext,
    private readonly node: AdvertisedNode,
    private readonly on_close: (c: KafkaConnection) => void,
  ) {
    setMaxListeners(0, this.abort.signal);
    this.remote = `${socket.remoteAddress ?? '?'}:${socket.remotePort ?? '?'}`;
    this.frames = new FrameReader(ctx.limits.frame_size_max_bytes);
    socket.setNoDelay(true);
    socket.setTimeout(ctx.limits.connection_idle_max_ms);
    socket.on('timeout', () => {
      ctx.logger.info({ remote: this.remote, idle_max_ms: ctx.limits.connection_idle_max_ms }, 'kafka: closing idle connection');
      socket.destroy();
    });
    socket.on('data', (chunk: Buffer) => {
      if (this.broken) return;
      this.frames.push(chunk);
      this.readFrames();
    });
    socket.on('error', (err) => ctx.logger.debug({ remote: this.remote, err: err.message }, 'kafka: connection error'));
    socket.on('close', () => this.onClosed());
    ctx.logger.debug({ remote: this.remote }, 'kafka: connection opened');
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /**
   * Stops reading requests, lets those already read be answered (long polls were ended by the
   * listener's stop signal), then closes; after `drain_max_ms` it closes anyway.
   */
  async shutdown(drain_max_ms: number): Promise<void> {
    this.draining = true;
    this.abort.abort();
    if (!this.closed && (this.queue.length > 0 || this.pumping)) {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([new Promise<void>((resolve) => this.idle_waiters.push(resolve)), new Promise<void>((resolve) => (timer = setTimeout(resolve, drain_max_ms)))]);
      clearTimeout(timer);
    }
    if (this.closed) return;
    const gone = new Promise<void>((resolve) => this.socket.once('close', () => resolve()));
    this.socket.end();
    // A client that never reads its last responses does not hold the listener open.
    const force = setTimeout(() => this.socket.destroy(), Math.max(drain_max_ms, 1));
    await gone;
    clearTimeout(force);
  }

  private readFrames(): void {
    try {
      while (!this.closed && !this.broken && !this.draining && this.queue.length < this.ctx.limits.inflight_requests_max) {
        const frame = this.frames.next();
        if (frame === null) break;
        this.dispatch(frame);
      }
    } catch (err) {
      this.fail(err);
      return;
    }
    if (this.broken) return;
    const full = this.queue.length >= this.ctx.limits.inflight_requests_max || this.draining;
    if (full && !this.paused) this.socket.pause();
    else if (!full && this.paused) this.socket.resume();
    this.paused = full;
    void this.pump();
  }

  /** Decodes one frame synchronously (so decoding errors surface in order) and queues its answer. */
  private dispatch(frame: Buffer): void {
    const r = decodeRequestFrame(frame, this.ctx.limits.array_length_max);
    if (r.kind === 'api_versions_fallback') {
      // KIP-511: a newer ApiVersions than we speak is answered in the v0 layout with error 35 and
      // our table, so the client retries with a version we serve.
      this.queue.push(Promise.resolve(this.reply(r.header.correlation_id, apiVersions, 0, apiVersionsResponse(KafkaCode.UNSUPPORTED_VERSION), [])));
      return;
    }
    // Requests take effect one after another, as on a Kafka broker (a read sees every write sent
    // before it on this connection), except that consecutive Produce requests overlap: each one's
    // appends are enqueued as it starts, in order, so they share group commits instead of each
    // waiting for the previous one's fsync.
    const is_produce = r.header.api_key === ApiKey.Produce;
    const start_after = is_produce && this.produce_gate !== null ? this.produce_gate : this.barrier;
    const done = start_after.then(() => this.serve(r.header, r.route, r.req));
    this.produce_gate = is_produce ? start_after : null;
    this.barrier = Promise.all([this.barrier, done]);
    this.queue.push(done);
  }

  private async serve(header: RequestHeader, route: AnyRoute, req: unknown): Promise<Reply | null> {
    const after: Array<() => void> = [];
    const rc: RequestContext = {
      header,
      node: this.node,
      remote: this.remote,
      signal: this.abort.signal,
      afterSent: (fn) => (this.closed ? fn() : after.push(fn)),
    };
    try {
      const res: unknown = await route.handle(this.ctx, rc, header.api_version, req);
      if (res === null || this.closed) {
        for (const fn of after) fn();
        return null;
      }
      return this.reply(header.correlation_id, route.codec, header.api_version, res, after);
    } catch (err) {
      for (const fn of after) fn();
      this.ctx.logger.error({ remote: this.remote, client: header.client_id, api_key: header.api_key, api_version: header.api_version, err: (err as Error)?.stack ?? String(err) }, 'kafka: request failed unexpectedly; closing the connection');
      this.broken = true;
      this.socket.destroy();
      return null;
    }
  }

  private reply<Res>(correlation_id: number, codec: ApiCodec<unknown, Res>, version: number, res: Res, after: Array<() => void>): Reply {
    const body = new Encoder();
    codec.encodeResponse(body, version, res);
    let released = false;
    const release = () => {
      if (released) return;
      released = true;
      this.unreleased.delete(release);
      for (const fn of after) fn();
    };
    this.unreleased.add(release);
    return { chunks: responseFrame(correlation_id, body), release };
  }

  /** Writes answers in request order as each becomes ready. */
  private async pump(): Promise<void> {
    if (this.pumping) return;
    this.pumping = true;
    try {
      while (this.queue.length > 0 && !this.closed && !this.broken) {
        const reply = await this.queue[0]!;
        this.queue.shift();
        if (reply) this.write(reply);
        if (this.socket.writableLength > this.ctx.limits.socket_backlog_max_bytes) await this.drained();
        this.readFrames();
      }
    } finally {
      this.pumping = false;
    }
    if (this.queue.length === 0) for (const resolve of this.idle_waiters.splice(0)) resolve();
  }

  private write(reply: Reply): void {
    if (this.closed) return reply.release();
    this.socket.cork();
    reply.chunks.forEach((c, i) => this.socket.write(c, i === reply.chunks.length - 1 ? () => reply.release() : undefined));
    this.socket.uncork();
  }

  private drained(): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        this.socket.off('drain', done);
        this.socket.off('close', done);
        resolve();
      };
      this.socket.on('drain', done);
      this.socket.on('close', done);
    });
  }

  private fail(err: unknown): void {
    if (isMalformed(err)) {
      this.ctx.logger.warn({ remote: this.remote, code: err.code, err: err.message, ...err.details }, 'kafka: malformed request; closing the connection');
    } else {
      this.ctx.logger.error({ remote: this.remote, err: (err as Error)?.stack ?? String(err) }, 'kafka: unexpected error reading a request; closing the connection');
    }
    this.broken = true;
    this.socket.destroy();
  }

  private onClosed(): void {
    if (this.closed) return;
    this.closed = true;
    this.ctx.logger.debug({ remote: this.remote, unanswered: this.queue.length }, 'kafka: connection closed');
    this.abort.abort();
    for (const release of [...this.unreleased]) release();
    for (const resolve of this.idle_waiters.splice(0)) resolve();
    this.on_close(this);
  }
}
