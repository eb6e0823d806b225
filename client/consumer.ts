import { isControlBatch } from '../engine/format/control-batch.js';
import { decodeRecords, forEachBatch, type DecodedRecord } from '../engine/format/record-batch.js';
import type { Frame, RelaylogClient, StartPosition } from './client.js';
import { isRetriable } from './errors.js';

export interface ConsumerOptions {
  topic: string;
  partition?: number;
  /** Where to start: an offset, a time (first record with timestamp >= it), earliest/latest, or a group's committed offset (earliest if none). */
  from: StartPosition;
  /** Stop (end the iteration) on reaching this offset, exclusive; default: follow the tail forever. */
  end_offset?: number;
  /** Frame size asked of the server (0 = the server's default, 1 MiB). */
  max_frame_bytes?: number;
  /** Re-subscriptions after a retriable failure (server restart, lost connection) before giving up (default 5). */
  retries?: number;
  retry_backoff_ms?: number;
}

/**
 * The records of one partition as an async iterator, from a start position, following the tail.
 * Frames arrive as raw batches and are decoded one batch at a time as the iteration reaches them
 * (keys and values are views into the frame, not copies). Records before the start are skipped
 * (reads are batch-granular). After a retriable failure it re-subscribes from the next record.
 * `commit(group)` stores the position; `close()` ends the iteration.
 */
export class Consumer implements AsyncIterable<DecodedRecord> {
  private position = -1;
  private stream: ReturnType<RelaylogClient['subscribe']> | null = null;
  private closed = false;
  private readonly partition: number;

  constructor(private readonly client: RelaylogClient, private readonly o: ConsumerOptions) {
    this.partition = o.partition ?? 0;
  }

  /** The offset after the last record yielded (what `commit()` stores); -1 before the first. */
  get next_offset(): number {
    return this.position;
  }

  async *[Symbol.asyncIterator](): AsyncIterator<DecodedRecord> {
    for await (const records of this.decoded()) {
      for (const r of records) {
        this.position = r.offset + 1;
        yield r;
      }
    }
  }

  /**
   * The same records a frame at a time (one array per frame), for callers that work in bulk. The
   * position moves past a chunk when the caller comes back for the next one.
   */
  async *chunks(): AsyncGenerator<DecodedRecord[]> {
    for await (const records of this.decoded()) {
      yield records;
      this.position = records[records.length - 1]!.offset + 1;
    }
  }

  /** Each frame's records at or after the position and before end_offset; never an empty array. */
  private async *decoded(): AsyncGenerator<DecodedRecord[]> {
    for await (const frame of this.subscription(false)) {
      const from = this.position;
      const out: DecodedRecord[] = [];
      let at_end = false;
      for (const batch of batchesOf(frame.records)) {
        // Control batches are the log's own (Raft membership changes): no records for a consumer.
        if (isControlBatch(batch)) continue;
        for (const r of decodeRecords(batch)) {
          if (r.offset < from) continue;
          if (this.o.end_offset !== undefined && r.offset >= this.o.end_offset) at_end = true;
          else out.push(r);
        }
      }
      if (out.length > 0) yield out;
      if (at_end) return;
    }
  }

  /**
   * Raw frames (whole batches, the first possibly starting before the position), for callers that
   * forward bytes rather than records. Advances the position by frame, not by record.
   */
  frames(): AsyncGenerator<Frame> {
    return this.subscription(true);
  }

  /** Frames from the position, re-subscribing after retriable failures; `by_frame` moves the position per frame. */
  private async *subscription(by_frame: boolean): AsyncGenerator<Frame> {
    if (this.position < 0) this.position = await this.resolveStart();
    let attempt = 0;
    // An empty range ends at once; a start past end_offset still goes to the server, which
    // refuses one past the high watermark (OFFSET_OUT_OF_RANGE) rather than returning nothing.
    if (this.position === this.o.end_offset) return;
    for (let first = true; !this.closed && (first || !this.reachedEnd()); first = false) {
      this.stream = this.client.subscribe(this.o.topic, this.partition, { offset: this.position }, this.o.max_frame_bytes ?? 0);
      try {
        for await (const frame of this.stream as AsyncIterable<Frame>) {
          attempt = 0;
          yield frame;
          if (by_frame && this.position < frame.next_offset) this.position = frame.next_offset;
          if (this.reachedEnd()) return;
        }
        return; // the server ended the stream cleanly
      } catch (err) {
        if (this.closed) return; // cancelled by close()
        const e = this.client.streamError(err);
        if (!isRetriable(e) || attempt >= (this.o.retries ?? 5)) throw e;
        await new Promise((r) => setTimeout(r, Math.min(5_000, (this.o.retry_backoff_ms ?? 100) * 2 ** attempt++)));
      } finally {
        this.stream.cancel();
      }
    }
  }

  private reachedEnd(): boolean {
    return this.o.end_offset !== undefined && this.position >= this.o.end_offset;
  }

  private async resolveStart(): Promise<number> {
    const f = this.o.from;
    if ('offset' in f) return f.offset;
    if ('group' in f) {
      const c = await this.client.fetchCommitted(f.group, this.o.topic, this.partition);
      if (c) return c.offset;
      return (await this.client.listOffsets(this.o.topic, this.partition, { position: 'earliest' })).log_start_offset;
    }
    const r = await this.client.listOffsets(this.o.topic, this.partition, 'timestamp_ms' in f ? { timestamp_ms: f.timestamp_ms } : { position: f.position });
    return r.offset ?? r.high_watermark;
  }

  /** Stores the position (or `offset`) as the group's committed offset; durable when it resolves. */
  async commit(group: string, offset = this.position): Promise<void> {
    await this.client.commitOffset(group, this.o.topic, this.partition, offset);
  }

  /** Ends the iteration (the subscription is cancelled). */
  close(): void {
    this.closed = true;
    this.stream?.cancel();
  }
}

/** The batches of a frame, as views. */
export function batchesOf(records: Buffer): Buffer[] {
  const out: Buffer[] = [];
  forEachBatch(records, (pos, size) => out.push(records.subarray(pos, pos + size)));
  return out;
}
