import { EngineError, isEngineError } from '../../engine/base/errors.js';
import { batchBaseOffset, batchLastOffsetDelta, batchMaxTimestamp, forEachBatch } from '../../engine/format/record-batch.js';
import type { LogStore } from '../../engine/log/log-store.js';
import type { PartitionLog } from '../../engine/log/partition-log.js';
import { parseTopicConfig } from '../../engine/log/topic-config.js';
import { Metadata, type ServiceError } from '@grpc/grpc-js';
import { RelaylogClient, type Frame } from '../../client/client.js';
import { fromServiceError } from '../../client/errors.js';
import { decide } from './relay-sync.js';

/**
 * A relay replica's pulling side: discovers the upstream's topics, and per partition keeps a
 * subscription to the upstream that appends every frame's batches byte for byte at their own
 * offsets (PartitionLog.appendReplicated). Decisions (where to start, when to truncate, gaps) come
 * from the pure relay-sync.ts; this class only does the I/O, retries and failover.
 *
 * Upstreams are tried in the order given; after a failover the relay tries the first one again
 * every `failback_ms`. A slow local consumer never slows this pull: consumers read the relay's own
 * store. A slow relay only slows its own subscription at the upstream (HTTP/2 flow control).
 */

export interface RelayLogger {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

export interface RelayOptions {
  store: LogStore;
  upstreams: string[];
  /** Only topics whose name matches (default: all). */
  topics?: RegExp;
  logger: RelayLogger;
  topic_poll_ms?: number;
  retry_backoff_min_ms?: number;
  retry_backoff_max_ms?: number;
  failback_ms?: number;
  max_frame_bytes?: number;
}

export type RelayState = 'connecting' | 'following' | 'waiting' | 'gap' | 'diverged' | 'error';

export interface RelayPartitionStatus {
  upstream: string;
  state: RelayState;
  /** Why the state is what it is (the gap's offsets, the last error...). */
  detail: string;
  upstream_high_watermark: number;
  lag_offsets: number;
  lag_ms: number;
  bytes_in: number;
  truncations: number;
  /** The partition's origin leader as the upstream reports it (HOST:PORT), '' until known. */
  origin_leader: string;
}

/** Keys a relay does not copy: retention, tiering and flushing are the relay's own. */
const OWN_KEYS = /^(retention\.|local\.retention\.|remote\.storage\.|flush\.)/;
/**
 * A relay's copy is re-fetchable from its upstream, so it does not fsync before serving a frame
 * (that would add a disk flush to every hop's latency): it fsyncs once a second. After a power loss
 * it recovers the intact prefix and fetches the rest again, byte-identical.
 */
const RELAY_FSYNC = { policy: 'interval', interval_ms: 1000 } as const;

export class RelayRunner {
  private readonly clients = new Map<string, RelaylogClient>();
  private current = 0;
  private switched_ms = 0;
  private readonly syncs = new Map<string, PartitionSync>();
  private readonly ac = new AbortController();
  private discovery: Promise<void> | null = null;
  readonly topic_poll_ms: number;

  constructor(readonly opts: RelayOptions) {
    if (opts.upstreams.length === 0) throw new EngineError('INVALID_ARGUMENT', 'a relay needs at least one --upstream HOST:PORT');
    this.topic_poll_ms = opts.topic_poll_ms ?? 1000;
  }

  get upstreams(): readonly string[] {
    return this.opts.upstreams;
  }

  /** The upstream every partition pulls from now. */
  get upstream(): string {
    return this.opts.upstreams[this.current]!;
  }

  client(addr: string): RelaylogClient {
    let c = this.clients.get(addr);
    if (!c) {
      c = new RelaylogClient(addr, { deadline_ms: 10_000 });
      this.clients.set(addr, c);
    }
    return c;
  }

  start(): void {
    this.discovery = this.discover();
  }

  status(topic: string, partition: number): RelayPartitionStatus | null {
    return this.syncs.get(`${topic}/${partition}`)?.status ?? null;
  }

  /** A partition could not reach `addr`: move everyone to the next upstream (once per failure). */
  failover(addr: string, why: string): void {
    if (this.upstream !== addr || this.opts.upstreams.length === 1) return;
    this.current = (this.current + 1) % this.opts.upstreams.length;
    this.switched_ms = Date.now();
    this.opts.logger.warn({ from: addr, to: this.upstream, why }, 'relay upstream failed; failing over');
  }

  private async discover(): Promise<void> {
    const signal = this.ac.signal;
    while (!signal.aborted) {
      const addr = this.upstream;
      try {
        if (this.current !== 0 && Date.now() - this.switched_ms >= (this.opts.failback_ms ?? 30_000)) await this.tryFailback();
        for (const t of await this.client(this.upstream).listTopics()) {
          if (this.opts.topics && !this.opts.topics.test(t.name)) continue;
          await this.ensureTopic(t.name, t.config, t.partitions.length, t.created_ms);
          // The origin's leader per partition, as the upstream sees it (a relay passes on its own upstream's).
          for (const p of t.partitions) {
            const s = this.syncs.get(`${t.name}/${p.partition}`);
            if (s && p.leader) s.status.origin_leader = p.leader;
          }
        }
      } catch (err) {
        if (signal.aborted) break;
        if (isConnectionError(err)) this.failover(addr, (err as Error).message);
        else this.opts.logger.warn({ upstream: addr, err: (err as Error).message }, 'relay topic discovery failed');
      }
      await sleep(this.topic_poll_ms, signal);
    }
  }

  private async tryFailback(): Promise<void> {
    const primary = this.opts.upstreams[0]!;
    try {
      await this.client(primary).listTopics();
    } catch {
      this.switched_ms = Date.now();
      return;
    }
    this.opts.logger.info({ from: this.upstream, to: primary }, 'relay primary upstream is back; failing back');
    this.current = 0;
    for (const s of this.syncs.values()) s.reconnect();
  }

  private async ensureTopic(name: string, config: Record<string, string>, partitions: number, created_ms: number): Promise<void> {
    const store = this.opts.store;
    const local = store.listTopics().find((t) => t.name === name);
    if (local && local.created_ms !== created_ms) {
      // Deleted and re-created upstream: this copy belongs to the old topic. Start over.
      this.opts.logger.warn({ topic: name, upstream: this.upstream, local_created_ms: local.created_ms, upstream_created_ms: created_ms }, 'topic was re-created upstream; replacing the relay copy');
      await this.stopTopic(name);
      await store.deleteTopic(name);
    }
    if (!store.listTopics().some((t) => t.name === name)) {
      const copied: Record<string, string> = {};
      for (const [k, v] of Object.entries(config)) if (!OWN_KEYS.test(k)) copied[k] = v;
      await store.createTopic(name, { ...parseTopicConfig(copied), partitions, fsync: RELAY_FSYNC }, { created_ms });
      this.opts.logger.info({ topic: name, partitions, upstream: this.upstream }, 'relay created topic from upstream');
    }
    for (let p = 0; p < partitions; p++) {
      const key = `${name}/${p}`;
      if (!this.syncs.has(key)) {
        const s = new PartitionSync(this, name, p, this.ac.signal);
        this.syncs.set(key, s);
        s.start();
      }
    }
  }

  /** Stops following every partition of `topic` and waits for their loops to end. */
  private async stopTopic(topic: string): Promise<void> {
    const mine = [...this.syncs.entries()].filter(([k]) => k.startsWith(`${topic}/`));
    for (const [k, s] of mine) {
      s.stop();
      this.syncs.delete(k);
    }
    await Promise.allSettled(mine.map(([, s]) => s.done));
  }

  async stop(): Promise<void> {
    this.ac.abort();
    for (const s of this.syncs.values()) s.reconnect();
    await this.discovery;
    await Promise.allSettled([...this.syncs.values()].map((s) => s.done));
    for (const c of this.clients.values()) c.close();
  }
}

class PartitionSync {
  readonly status: RelayPartitionStatus;
  done: Promise<void> = Promise.resolve();
  private stream: { cancel(): void } | null = null;
  private last_logged = '';
  private readonly own = new AbortController();
  private readonly signal: AbortSignal;

  constructor(private readonly runner: RelayRunner, readonly topic: string, readonly partition: number, parent: AbortSignal) {
    this.signal = AbortSignal.any([parent, this.own.signal]);
    this.status = { upstream: runner.upstream, state: 'connecting', detail: '', upstream_high_watermark: 0, lag_offsets: 0, lag_ms: 0, bytes_in: 0, truncations: 0, origin_leader: '' };
  }

  start(): void {
    this.done = this.run();
  }

  /** Ends this partition's loop for good (its topic is going away). */
  stop(): void {
    this.own.abort();
    this.stream?.cancel();
  }

  /** Ends the current subscription; the loop reconnects (to the runner's current upstream). */
  reconnect(): void {
    this.stream?.cancel();
  }

  private set(state: RelayState, detail: string, level: 'info' | 'warn' | 'error' = 'info'): void {
    this.status.state = state;
    this.status.detail = detail;
    const line = `${state}:${detail}`;
    if (line !== this.last_logged && detail !== '') {
      this.last_logged = line;
      this.runner.opts.logger[level]({ topic: this.topic, partition: this.partition, upstream: this.status.upstream, state, detail }, 'relay partition state');
    }
  }

  private async run(): Promise<void> {
    const min = this.runner.opts.retry_backoff_min_ms ?? 100;
    const max = this.runner.opts.retry_backoff_max_ms ?? 5000;
    let backoff = min;
    while (!this.signal.aborted) {
      const addr = this.runner.upstream;
      this.status.upstream = addr;
      try {
        const progressed = await this.syncOnce(this.runner.client(addr));
        if (progressed) backoff = min;
      } catch (err) {
        if (this.signal.aborted) break;
        const msg = (err as Error).message;
        if (isConnectionError(err)) {
          this.set('connecting', `upstream ${addr} unreachable: ${msg}`, 'warn');
          this.runner.failover(addr, msg);
        } else {
          this.set('error', msg, 'error');
        }
      }
      await sleep(backoff, this.signal);
      backoff = Math.min(max, backoff * 2);
    }
  }

  /** One round: reconcile with the upstream, then follow it until the stream ends. True if data moved. */
  private async syncOnce(client: RelaylogClient): Promise<boolean> {
    const p = this.runner.opts.store.partition(this.topic, this.partition);
    for (let round = 0; round < 64; round++) {
      const last_epoch = await p.lastEpoch();
      const up = await client.epochEnd(this.topic, this.partition, last_epoch);
      this.status.upstream_high_watermark = up.high_watermark;
      this.status.lag_offsets = Math.max(0, up.high_watermark - p.logEndOffset);
      const action = decide({ log_start: p.logStartOffset, end: p.logEndOffset, last_epoch }, up);
      switch (action.kind) {
        case 'start_at':
          await p.startAt(action.offset);
          this.set('connecting', `empty; starting at the upstream's log start offset ${action.offset}`);
          continue;
        case 'truncate':
          this.runner.opts.logger.warn({ topic: this.topic, partition: this.partition, from: p.logEndOffset, to: action.to, epoch: last_epoch }, 'relay diverged from upstream; truncating to the common point');
          await p.truncateTo(action.to);
          this.status.truncations++;
          continue;
        case 'gap':
          this.set('gap', `upstream ${client.address} starts at offset ${action.upstream_log_start} but this relay ends at ${action.local_end}: offsets ${action.local_end}..${action.upstream_log_start - 1} are gone upstream (configure a shared --archive on the upstream to serve them)`, 'error');
          return false;
        case 'reset':
          // Everything this relay holds is a tail the upstream lost: drop it and start over there.
          this.runner.opts.logger.warn({ topic: this.topic, partition: this.partition, log_start: p.logStartOffset, end: p.logEndOffset, to: action.to }, 'relay holds only data its upstream lost; emptying it');
          try {
            await p.truncateTo(p.logStartOffset);
            // Already there when the cut fell at the log start (startAt would refuse a relay with archived copies).
            if (p.logEndOffset !== action.to) await p.startAt(action.to);
          } catch (err) {
            this.set('diverged', `logs agree only up to offset ${action.to}, below this relay's log start ${p.logStartOffset}, and the relay cannot empty itself (${(err as Error).message}); delete the relay's copy of the topic to re-sync`, 'error');
            return false;
          }
          this.status.truncations++;
          continue;
        case 'wait':
          this.set('waiting', action.why);
          return false;
        case 'fetch':
          if (action.mark_epoch !== undefined) p.markEpochStart(action.mark_epoch);
          return this.follow(client, p, action.from);
      }
    }
    throw new EngineError('STORAGE_ERROR', `relay ${this.topic}/${this.partition} did not converge with ${client.address} after 64 truncations`);
  }

  /**
   * Follows the upstream from `from` (this relay's log end). Frames are handed to the log as they
   * arrive, without waiting for the previous frame's write: the log's append queue keeps their
   * order and writes the ones that arrive during a write together in its next one (group commit).
   * Waiting for each write before taking the next frame made one slow write (ext4 journal waits
   * of 10-40 ms were seen under other processes' fsyncs) hold back every frame behind it, each then
   * written on its own: a live record's added latency at a hop grew to 40-90 ms in traces. At most
   * FOLLOW_INFLIGHT_BYTES of frames are being written at once; beyond that the loop waits for the
   * oldest, so a slow disk slows this subscription (HTTP/2 flow control), not memory. The first
   * failed append cancels the subscription (an idle upstream would send nothing to wake the loop)
   * and ends it with that error once every started append has settled, so the next round starts
   * from a settled log end.
   */
  private async follow(client: RelaylogClient, p: PartitionLog, from: number): Promise<boolean> {
    this.set('following', '');
    const stream = client.subscribe(this.topic, this.partition, { offset: from }, this.runner.opts.max_frame_bytes ?? 0);
    this.stream = stream;
    const abort = () => stream.cancel();
    this.signal.addEventListener('abort', abort, { once: true });
    let moved = false;
    // Where the next frame must start: the end of what has been handed to the log.
    let expected = from;
    const inflight = new Set<Promise<void>>();
    let inflight_bytes = 0;
    // The first failed append's error (later ones follow from it).
    let failure: { err: unknown } | null = null;
    const throwIfFailed = (): void => {
      if (failure !== null) throw failure.err;
    };
    /** Waits for every started append; then the first failure, if any, is thrown. */
    const settle = async (): Promise<void> => {
      await Promise.all(inflight);
      throwIfFailed();
    };
    try {
      for await (const frame of stream as AsyncIterable<Frame>) {
        throwIfFailed();
        const records = frame.records;
        if (records.length > 0) {
          // Frames start at a batch boundary of ours: our log end is a batch boundary of the upstream's.
          const first = batchBaseOffset(records);
          if (first !== expected) {
            throw new EngineError('OFFSET_MISMATCH', `upstream frame starts at offset ${first}, this relay's log ends at ${expected}`);
          }
          let max_ts = -1;
          let last = -1;
          forEachBatch(records, (pos) => {
            max_ts = Math.max(max_ts, batchMaxTimestamp(records, pos));
            last = batchBaseOffset(records, pos) + batchLastOffsetDelta(records, pos);
          });
          expected = last + 1;
          const bytes = records.length;
          const done: Promise<void> = p.appendReplicated(records)
            .then(
              () => {
                moved = true;
                this.status.bytes_in += bytes;
              },
              (err: unknown) => {
                failure ??= { err };
                // End the subscription now: an idle upstream sends nothing that would wake the loop.
                stream.cancel();
              },
            )
            .finally(() => {
              inflight.delete(done);
              inflight_bytes -= bytes;
            });
          inflight.add(done);
          inflight_bytes += bytes;
          while (inflight_bytes > FOLLOW_INFLIGHT_BYTES && inflight.size > 1) await Promise.race(inflight);
          throwIfFailed();
          this.status.lag_ms = last + 1 >= frame.high_watermark ? 0 : Math.max(0, Date.now() - max_ts);
        }
        this.status.upstream_high_watermark = frame.high_watermark;
        this.status.lag_offsets = Math.max(0, frame.high_watermark - expected);
      }
    } catch (err) {
      await settle();
      if (this.signal.aborted || isCancelled(err)) return moved;
      throw (err as ServiceError).metadata instanceof Metadata ? fromServiceError(err as ServiceError, client.address) : err;
    } finally {
      this.signal.removeEventListener('abort', abort);
      this.stream = null;
    }
    await settle();
    return moved;
  }
}

/** Bytes of upstream frames a partition's follow loop has handed to its log and not yet seen written. */
const FOLLOW_INFLIGHT_BYTES = 32 * 1024 * 1024;

function isConnectionError(err: unknown): boolean {
  if (isEngineError(err)) return err.code === 'CLOSED';
  const code = (err as { code?: unknown }).code;
  return code === 'UNAVAILABLE' || code === 'DEADLINE_EXCEEDED' || code === 14 || code === 4;
}

function isCancelled(err: unknown): boolean {
  const code = (err as { code?: unknown }).code;
  return code === 1 || code === 'CANCELLED';
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const t = setTimeout(done, ms);
    function done() {
      clearTimeout(t);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });
}
