import { closed, invalidArgument, isEngineError } from '../engine/base/errors.js';
import { encodeBatch, type BatchOptions, type RecordInput } from '../engine/format/record-batch.js';
import { BufferPool } from '../engine/base/buffer-pool.js';
import { limits } from '../engine/base/limits.js';
import { addSequence } from '../engine/log/producer-state.js';
import type { ProduceResult, RelaylogClient } from './client.js';
import type { ProducePipeline } from './pipeline.js';
import { RpcError, isRetriable } from './errors.js';

export interface ProducerOptions {
  topic: string;
  partition?: number;
  /** Wait up to this long for more records before sending a batch (default 5). */
  linger_ms?: number;
  /** Send a batch once its records reach about this many bytes (default 1 MiB; keep it under the topic's max.message.bytes). */
  batch_bytes?: number;
  /** Batches sent and not yet acknowledged, at most (default 4; 1 keeps order even across retries). */
  max_in_flight?: number;
  /** `ready()` waits while records waiting or in flight exceed this many bytes (default 64 MiB). */
  buffer_max_bytes?: number;
  /**
   * Idempotent producer (default true with a RelaylogClient; a bare SendBatch function cannot be):
   * a producer id from the server, and a sequence per batch, so a retried batch is stored once.
   */
  idempotent?: boolean;
  /** Retries of a retriable failure (UNAVAILABLE, DISK_FULL ...), with exponential backoff (default 5; 10 when idempotent). */
  retries?: number;
  /** First retry delay; doubles per attempt, capped at 5 s (default 50). */
  retry_backoff_ms?: number;
  acks?: 'all' | 'leader';
}

/** The client-side send function, so tests can drive a Producer without a server. */
export type SendBatch = (topic: string, partition: number, records: Buffer, acks: 'all' | 'leader') => Promise<Pick<ProduceResult, 'base_offset'>>;

interface Pending {
  /** The record's index in its batch. */
  index: number;
  resolve: (offset: number) => void;
  reject: (err: unknown) => void;
}
interface Batch {
  records: RecordInput[];
  waiting: Pending[];
  bytes: number;
  /** Idempotent producer: the session it was stamped in and its first sequence, set when it is first sent. */
  session?: Session;
  seq?: number;
  /** Position in the session's send order. */
  no?: number;
}

/** An idempotent producer's id and its sequence counter; a new one after a batch failed for good. */
interface Session {
  id: Promise<{ producer_id: number; producer_epoch: number }>;
  next_seq: number;
  next_no: number;
  /** Batches of this session sent and not yet settled, by `no`. */
  inflight: Set<number>;
  /** Its first batch was acknowledged: the partition knows the producer id. */
  started: boolean;
  /** Batches (by `no`) that failed at least once and are not settled yet. */
  retrying: Set<number>;
}

const RECORD_OVERHEAD_BYTES = 24;
/**
 * Encoded batches of Producers that send on their own pipeline, shared by the process's
 * producers: a batch is encoded into one of these (fresh multi-MiB buffers cost a page fault per
 * 4 KiB to fill) and given back once the server acknowledged it, when nothing can send it again.
 * At most 64 MiB is kept.
 */
const batch_buffers = new BufferPool(16, 0, 64 * 1024 * 1024);
const sizeOf = (v: Buffer | string | null | undefined): number => (v == null ? 0 : v.length);

/**
 * Batches records into RecordBatch v2 (encodeBatch) and sends them in order on one
 * ProducePipeline stream, at most `max_in_flight` batches unacknowledged. `send()` resolves with
 * the record's offset once its batch is acknowledged (durable per the topic's fsync policy).
 * Without failures, records land in send order.
 *
 * Idempotent (the default with a client): the Producer gets a producer id (InitProducerId) and
 * stamps it, epoch and a sequence into every batch; a failure that may hide an append (UNAVAILABLE,
 * a deadline, CLOSED, NOT_LEADER) is retried with the same bytes, and the partition answers a
 * batch it already has with its original offsets, so nothing is stored twice. A batch that meets
 * OUT_OF_ORDER_SEQUENCE while an earlier one of it is still being retried waits for that one
 * (retried too). A batch that fails for good starts a new producer id for the batches after it.
 * Not idempotent: a retried batch may land twice; set max_in_flight = 1 to keep order across retries.
 */
export class Producer {
  private readonly o: Required<Omit<ProducerOptions, 'topic'>> & { topic: string };
  private readonly send_batch: SendBatch;
  private readonly pipeline: ProducePipeline | null;
  private open: Batch | null = null;
  private timer: NodeJS.Timeout | null = null;
  private readonly sealed: Batch[] = [];
  private inflight = 0;
  private buffered = 0;
  private failure: unknown = null;
  private closing = false;
  private idle_waiters: Array<() => void> = [];
  private room_waiters: Array<() => void> = [];
  private readonly init_producer_id: (() => Promise<{ producer_id: number; producer_epoch: number }>) | null;
  private session: Session | null = null;

  constructor(client: RelaylogClient | SendBatch, opts: ProducerOptions) {
    // Kafka's rule: idempotence is on unless asked off, or max_in_flight is set above what a
    // partition remembers (then it is off, unless asked on explicitly: an error below).
    const idempotent = opts.idempotent ?? (typeof client !== 'function' && (opts.max_in_flight ?? 4) <= limits.producer_window_batches);
    this.o = { partition: 0, linger_ms: 5, batch_bytes: 1024 * 1024, max_in_flight: 4, buffer_max_bytes: 64 * 1024 * 1024, retries: idempotent ? 10 : 5, retry_backoff_ms: 50, acks: 'all', ...opts, idempotent };
    if (!(this.o.max_in_flight >= 1) || !(this.o.batch_bytes >= 1)) throw invalidArgument('max_in_flight and batch_bytes must be >= 1');
    if (idempotent && this.o.max_in_flight > limits.producer_window_batches) {
      throw invalidArgument(`an idempotent Producer keeps at most ${limits.producer_window_batches} batches in flight (the batches a partition remembers per producer); max_in_flight is ${this.o.max_in_flight}`);
    }
    if (idempotent && typeof client === 'function') throw invalidArgument('an idempotent Producer needs a RelaylogClient (for its producer id); pass idempotent: false with a send function');
    this.init_producer_id = typeof client === 'function' ? null : () => client.initProducerId();
    this.pipeline = typeof client === 'function' ? null : client.producePipeline();
    const pipeline = this.pipeline;
    this.send_batch = pipeline === null ? (client as SendBatch) : (t, p, r, a) => pipeline.send(t, p, r, a);
  }

  /** Bytes of records waiting or in flight. */
  get buffered_bytes(): number {
    return this.buffered;
  }

  /**
   * Queues a record; resolves with its offset once acknowledged. Records without a timestamp get
   * the time of this call. The promise is already handled, so ignoring it is safe: failures also
   * surface from ready(), flush() and close().
   */
  send(record: RecordInput): Promise<number> {
    if (this.closing) return Promise.reject(closed('producer'));
    const b = this.add(record.timestamp_ms === undefined ? { ...record, timestamp_ms: Date.now() } : record);
    const index = b.records.length - 1;
    const done = new Promise<number>((resolve, reject) => b.waiting.push({ index, resolve, reject }));
    done.catch(() => undefined);
    this.sealIfFull(b);
    return done;
  }

  /**
   * Queues a record without a promise of its own (the fast path for bulk loads: a million records
   * cost a million fewer promises). Failures surface from ready(), flush() and close(). The record
   * is kept as given, so give it a timestamp_ms (else it gets the batch's send time).
   */
  push(record: RecordInput): void {
    if (this.closing) throw closed('producer');
    this.sealIfFull(this.add(record));
  }

  private add(record: RecordInput): Batch {
    const size = sizeOf(record.key) + sizeOf(record.value) + RECORD_OVERHEAD_BYTES;
    if (this.open && this.open.bytes + size > this.o.batch_bytes) this.seal();
    const b = (this.open ??= { records: [], waiting: [], bytes: 0 });
    b.records.push(record);
    b.bytes += size;
    this.buffered += size;
    return b;
  }

  private sealIfFull(b: Batch): void {
    if (b.bytes >= this.o.batch_bytes) this.seal();
    else this.timer ??= setTimeout(() => this.seal(), this.o.linger_ms);
  }

  /**
   * Resolves once fewer than `buffer_max_bytes` are waiting or in flight; rejects with the first
   * failure since the last flush, so a fast loop that awaits it stops at the first refused batch.
   */
  async ready(): Promise<void> {
    if (this.failure === null && this.buffered >= this.o.buffer_max_bytes) await new Promise<void>((resolve) => this.room_waiters.push(resolve));
    if (this.failure !== null) throw this.failure;
  }

  /** Sends what is waiting; resolves when everything sent so far is acknowledged, rejects with the first failure since the last flush. */
  async flush(): Promise<void> {
    this.seal();
    if (this.inflight > 0 || this.sealed.length > 0) await new Promise<void>((resolve) => this.idle_waiters.push(resolve));
    const failure = this.failure;
    this.failure = null;
    if (failure) throw failure;
  }

  /** Flushes, then refuses further sends and ends the pipeline stream. */
  async close(): Promise<void> {
    this.closing = true;
    try {
      await this.flush();
    } finally {
      this.pipeline?.end();
    }
  }

  private seal(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    const b = this.open;
    this.open = null;
    if (!b) return;
    this.sealed.push(b);
    this.pump();
  }

  private pump(): void {
    while (this.inflight < this.o.max_in_flight && this.sealed.length > 0) {
      // A producer id's first batch goes alone: a partition accepts any sequence from a producer it
      // does not know yet, so a second batch overtaking a lost first one would be taken as a start.
      if (this.o.idempotent && this.session !== null && !this.session.started && this.session.inflight.size > 0) break;
      // Nor does anything new while a batch is being retried: a retry must stay within the last
      // producer_window_batches batches the partition remembers, or a batch stored under a lost
      // answer would no longer be recognised (Kafka's producer holds a partition back the same way).
      if (this.session !== null && this.session.retrying.size > 0) break;
      const b = this.sealed.shift()!;
      this.inflight++;
      if (this.o.idempotent) this.assignSequence(b);
      void this.sendWithRetry(b).then(() => this.settled(b));
    }
  }

  private settled(b: Batch): void {
    this.inflight--;
    this.buffered -= b.bytes;
    this.pump();
    if (this.buffered < this.o.buffer_max_bytes) for (const w of this.room_waiters.splice(0)) w();
    if (this.inflight === 0 && this.sealed.length === 0) for (const w of this.idle_waiters.splice(0)) w();
  }

  /** In send order (pump is synchronous): the batch's session and first sequence. */
  private assignSequence(b: Batch): void {
    if (this.session === null) {
      const id = this.init_producer_id!();
      id.catch(() => undefined);
      this.session = { id, next_seq: 0, next_no: 0, inflight: new Set(), started: false, retrying: new Set() };
    }
    const s = this.session;
    b.session = s;
    b.seq = s.next_seq;
    b.no = s.next_no++;
    s.next_seq = addSequence(s.next_seq, b.records.length);
    s.inflight.add(b.no);
  }

  /** `into`: where to encode (a pooled buffer), see sendWithRetry. */
  private async encode(b: Batch, into?: BatchOptions['into']): Promise<Buffer> {
    if (b.session === undefined) return encodeBatch(b.records, into ? { into } : {});
    const s = b.session;
    const asked = s.id;
    let id: { producer_id: number; producer_epoch: number };
    try {
      id = await asked;
    } catch (err) {
      // Nothing of this session left without an id: the next attempt asks again.
      if (s.id === asked) {
        s.id = this.init_producer_id!();
        s.id.catch(() => undefined);
      }
      throw err;
    }
    const { producer_id, producer_epoch } = id;
    return encodeBatch(b.records, { producer_id, producer_epoch, base_sequence: b.seq!, ...(into ? { into } : {}) });
  }

  /** True when a batch sent before `b` in its session is not acknowledged yet. */
  private behindAnother(b: Batch): boolean {
    if (b.session === undefined) return false;
    for (const no of b.session.inflight) if (no < b.no!) return true;
    return false;
  }

  /**
   * Worth another attempt: retriable errors, and for an idempotent producer every ambiguous one.
   * `behind`: an earlier batch was unacknowledged when this attempt left.
   */
  private retriable(b: Batch, err: unknown, behind: boolean): boolean {
    if (isRetriable(err)) return true;
    if (b.session === undefined) return false;
    // The answer was lost: the batch may be stored; the same bytes again are answered with its offsets.
    if (err instanceof RpcError && (err.code === 'DEADLINE_EXCEEDED' || err.code === 'CANCELLED')) return true;
    // A batch ahead of this one was still being retried: this one follows once it lands (it may
    // have landed meanwhile, so the question is whether one was pending when this attempt left).
    return isEngineError(err, 'OUT_OF_ORDER_SEQUENCE') && (behind || this.behindAnother(b));
  }

  private async sendWithRetry(b: Batch): Promise<void> {
    let batch: Buffer | null = null;
    // On the Producer's own pipeline the batch is encoded into a pooled buffer, given back once
    // acknowledged (the server then had all of it; no retry can send it again). After a failure it
    // is left to the GC. A caller's send function might keep the bytes: it gets a fresh buffer.
    let whole: Buffer | null = null;
    const into = this.pipeline === null ? undefined : (size: number) => (whole = batch_buffers.take(size)).subarray(0, size);
    for (let attempt = 0; ; attempt++) {
      let behind = false;
      try {
        // Encoded once (after the producer id arrives): every retry sends the same bytes.
        batch ??= await this.encode(b, into);
        behind = this.behindAnother(b);
        const r = await this.send_batch(this.o.topic, this.o.partition, batch, this.o.acks);
        if (whole !== null) batch_buffers.give(whole);
        if (b.session !== undefined) {
          b.session.inflight.delete(b.no!);
          b.session.retrying.delete(b.no!);
          b.session.started = true;
        }
        for (const w of b.waiting) w.resolve(r.base_offset + w.index);
        return;
      } catch (err) {
        if (!this.retriable(b, err, behind) || attempt >= this.o.retries) {
          if (b.session !== undefined) {
            b.session.inflight.delete(b.no!);
            b.session.retrying.delete(b.no!);
            // Its sequence is a gap now: the batches after it go with a new producer id.
            if (this.session === b.session) this.session = null;
          }
          return this.fail(b, err);
        }
        b.session?.retrying.add(b.no!);
        await new Promise((r) => setTimeout(r, Math.min(5_000, this.o.retry_backoff_ms * 2 ** attempt)));
      }
    }
  }

  private fail(b: Batch, err: unknown): void {
    this.failure ??= err;
    for (const w of b.waiting) w.reject(err);
    for (const w of this.room_waiters.splice(0)) w();
  }
}
