import { expect } from 'vitest';
import { Producer, type ProducerOptions, type RelaylogClient } from '../../client/index.js';
import type { DecodedRecord } from '../../engine/index.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * An idempotent Producer (the default) writing `seq-0, seq-1, ...` without waiting for each
 * acknowledgement (up to max_in_flight batches on the wire), while a test kills servers under it.
 * Bounded by `records_max` and `duration_max_ms`. Remembers each record's acknowledged offset, and
 * the records whose send failed for good.
 */
export class IdempotentLoad {
  readonly acked = new Map<number, number>();
  readonly failed = new Map<number, string>();
  /** The first failure's message, for the summary. */
  private first_failure = '';
  sent = 0;
  private stopping = false;
  readonly producer: Producer;
  private readonly running: Promise<void>;

  constructor(client: RelaylogClient, readonly topic: string, readonly partition: number, opts: { records_max: number; duration_max_ms: number; producer?: Partial<ProducerOptions> }) {
    this.producer = new Producer(client, { topic, partition, linger_ms: 5, max_in_flight: 4, retries: 20, ...opts.producer });
    this.running = this.run(opts.records_max, opts.duration_max_ms);
  }

  private async run(records_max: number, duration_max_ms: number): Promise<void> {
    const until = Date.now() + duration_max_ms;
    for (let seq = 0; !this.stopping && seq < records_max && Date.now() < until; seq++) {
      this.producer.send({ key: 'k', value: `seq-${seq}`, timestamp_ms: 1_700_000_000_000 + seq }).then(
        (offset) => this.acked.set(seq, offset),
        (err: unknown) => {
          this.failed.set(seq, (err as { code?: string }).code ?? String(err));
          this.first_failure ||= `seq-${seq}: ${(err as Error).message}`;
        },
      );
      this.sent = seq + 1;
      if (seq % 10 === 9) {
        await this.producer.ready().catch(() => undefined);
        await sleep(20);
      }
    }
  }

  /** Waits (bounded: 60 s) until `more` further records are acknowledged. */
  async ackedMore(more: number, what: string): Promise<void> {
    const target = this.acked.size + more;
    for (let i = 0; i < 1_200 && this.acked.size < target; i++) await sleep(50);
    if (this.acked.size < target) throw new Error(`gave up waiting for ${what}: ${this.summary()}`);
  }

  summary(): string {
    const codes = new Map<string, number>();
    for (const c of this.failed.values()) codes.set(c, (codes.get(c) ?? 0) + 1);
    return `sent ${this.sent}, acknowledged ${this.acked.size}, failed ${this.failed.size}: ${JSON.stringify([...codes])}${this.first_failure ? `; first: ${this.first_failure}` : ''}`;
  }

  /** Stops sending and waits for every record sent to settle (the Producer retries, bounded by its `retries`). */
  async stop(): Promise<void> {
    this.stopping = true;
    await this.running;
    await this.producer.close().catch(() => undefined);
  }

  /**
   * What the log must hold: no record twice (acknowledged or not), every acknowledged record at
   * its acknowledged offset, nothing that was not sent, and, as long as no batch failed for good,
   * produce order.
   */
  expectExactlyOnce(records: readonly DecodedRecord[]): void {
    const seqs = records.map((r) => r.value!.toString()).filter((v) => v.startsWith('seq-')).map((v) => Number(v.slice(4)));
    const seen = new Set<number>();
    for (const s of seqs) {
      expect(seen.has(s), `seq-${s} is in the log twice`).toBe(false);
      seen.add(s);
      expect(s < this.sent, `seq-${s} was sent`).toBe(true);
    }
    const at = new Map(records.filter((r) => r.value!.toString().startsWith('seq-')).map((r) => [Number(r.value!.toString().slice(4)), r.offset]));
    for (const [seq, offset] of this.acked) expect(at.get(seq), `acknowledged seq-${seq}`).toBe(offset);
    if (this.failed.size === 0) for (let i = 1; i < seqs.length; i++) expect(seqs[i]!, `seq-${seqs[i]} after seq-${seqs[i - 1]}`).toBeGreaterThan(seqs[i - 1]!);
  }
}
