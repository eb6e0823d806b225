/**
 * Model-based test of the idempotent producer on the segment store: random producers send
 * batches (some in the same group commit), retry recent ones out of order (inside and outside the
 * window of 5), skip sequences, bump their epoch, while the engine rolls segments, reopens and
 * crashes (sometimes losing its LMDB catalog, so the state is rebuilt from the segments alone).
 * After every step: every batch is stored exactly once, and a retry is answered with the offsets
 * its batch got the first time.
 *
 * Replay a failure exactly: SEED=<seed printed on failure> npx vitest run property-tests/idempotent-producer.prop.test.ts
 */
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { expect, test } from 'vitest';
import { LogStore, ManualClock, encodeBatch, type AppendResult } from '../engine/index.js';
import { limits } from '../engine/base/limits.js';
import { readAll } from '../test/support/batches.js';
import { tempDir } from '../test/support/tmp.js';

const seed = Number(process.env.SEED ?? Date.now() % 2 ** 31);
const PRODUCERS = 3;
const WINDOW = limits.producer_window_batches;

type Cmd =
  | { t: 'send'; producers: number[]; counts: number[] }
  | { t: 'retry'; producer: number; back: number; with_new: boolean }
  | { t: 'gap'; producer: number; skip: number }
  | { t: 'bump'; producer: number }
  | { t: 'roll' }
  | { t: 'reopen' }
  | { t: 'crash'; drop_catalog: boolean };

const producer = fc.integer({ min: 0, max: PRODUCERS - 1 });
const cmd: fc.Arbitrary<Cmd> = fc.oneof(
  { weight: 6, arbitrary: fc.record({ t: fc.constant('send' as const), producers: fc.array(producer, { minLength: 1, maxLength: 4 }), counts: fc.array(fc.integer({ min: 1, max: 5 }), { minLength: 4, maxLength: 4 }) }) },
  { weight: 5, arbitrary: fc.record({ t: fc.constant('retry' as const), producer, back: fc.integer({ min: 0, max: WINDOW + 2 }), with_new: fc.boolean() }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('gap' as const), producer, skip: fc.integer({ min: 1, max: 3 }) }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('bump' as const), producer }) },
  { weight: 1, arbitrary: fc.constant({ t: 'roll' as const }) },
  { weight: 1, arbitrary: fc.constant({ t: 'reopen' as const }) },
  { weight: 2, arbitrary: fc.record({ t: fc.constant('crash' as const), drop_catalog: fc.boolean() }) },
);

interface SentBatch {
  epoch: number;
  seq: number;
  values: string[];
  result: AppendResult;
}

/** What each producer sent and what the log must hold: every accepted batch once, in offset order. */
class Model {
  readonly sent: SentBatch[][] = Array.from({ length: PRODUCERS }, () => []);
  readonly epoch: number[] = Array.from({ length: PRODUCERS }, () => 0);
  readonly next_seq: number[] = Array.from({ length: PRODUCERS }, () => 0);
  /** Values at each offset. */
  readonly log: string[] = [];

  bytes(p: number, epoch: number, seq: number, values: string[]): Buffer {
    return encodeBatch(values.map((v) => ({ value: v, timestamp_ms: 1 })), { producer_id: 1000 + p, producer_epoch: epoch, base_sequence: seq });
  }
}

class Harness {
  store!: LogStore;
  readonly m = new Model();
  private readonly clock = new ManualClock(1_700_000_000_000);
  constructor(readonly dir: string) {}

  async open(): Promise<void> {
    this.store = await LogStore.open({ dir: this.dir, clock: this.clock, disk_free_floor_bytes: 0, retention_check_interval_ms: 0, memory_tier_bytes: 8 * 1024 });
  }
  get p() {
    return this.store.partition('t', 0);
  }

  /** A new batch of producer p (its next sequence), not sent yet. */
  next(p: number, count: number): { bytes: Buffer; batch: Omit<SentBatch, 'result'> } {
    const epoch = this.m.epoch[p]!;
    const seq = this.m.next_seq[p]!;
    const values = Array.from({ length: count }, (_, i) => `p${p}e${epoch}s${seq + i}`);
    this.m.next_seq[p] = seq + count;
    return { bytes: this.m.bytes(p, epoch, seq, values), batch: { epoch, seq, values } };
  }

  accept(p: number, batch: Omit<SentBatch, 'result'>, result: AppendResult): void {
    expect(result.base_offset).toBe(this.m.log.length);
    expect(result.last_offset).toBe(this.m.log.length + batch.values.length - 1);
    this.m.log.push(...batch.values);
    this.m.sent[p]!.push({ ...batch, result });
  }

  async check(): Promise<void> {
    expect(this.p.logEndOffset).toBe(this.m.log.length);
    expect((await readAll(this.p)).map((r) => r.value!.toString())).toEqual(this.m.log);
  }
}

async function step(h: Harness, c: Cmd): Promise<void> {
  const m = h.m;
  switch (c.t) {
    case 'send': {
      // Several producers' batches at once: one group commit, offsets in issue order.
      const batches = c.producers.map((p, i) => ({ p, ...h.next(p, c.counts[i]!) }));
      const results = await Promise.all(batches.map((b) => h.p.append(b.bytes)));
      batches.forEach((b, i) => h.accept(b.p, b.batch, results[i]!));
      break;
    }
    case 'retry': {
      const sent = m.sent[c.producer]!;
      const current = sent.filter((b) => b.epoch === m.epoch[c.producer]);
      const target = current[current.length - 1 - c.back];
      if (target === undefined) return;
      const again = () => h.p.append(m.bytes(c.producer, target.epoch, target.seq, target.values));
      const fresh = c.with_new ? h.next(c.producer, 1) : null;
      if (c.back < WINDOW) {
        // Inside the window: the original offsets, nothing written; a new batch in the same group still lands.
        const [r, r2, n] = await Promise.all([again(), again(), fresh ? h.p.append(fresh.bytes) : null]);
        expect(r).toEqual(target.result);
        expect(r2).toEqual(target.result);
        if (fresh && n) h.accept(c.producer, fresh.batch, n);
      } else {
        // Out of the window: refused as out of order, never written twice.
        await expect(again()).rejects.toMatchObject({ code: 'OUT_OF_ORDER_SEQUENCE' });
        if (fresh) h.accept(c.producer, fresh.batch, await h.p.append(fresh.bytes));
      }
      break;
    }
    case 'gap': {
      if (m.sent[c.producer]!.length === 0) return; // an unknown producer may start anywhere
      const epoch = m.epoch[c.producer]!;
      const seq = m.next_seq[c.producer]! + c.skip;
      await expect(h.p.append(m.bytes(c.producer, epoch, seq, ['gap']))).rejects.toMatchObject({ code: 'OUT_OF_ORDER_SEQUENCE' });
      break;
    }
    case 'bump': {
      const old = m.sent[c.producer]!.at(-1);
      m.epoch[c.producer]! += 1;
      m.next_seq[c.producer] = 0;
      const { bytes, batch } = h.next(c.producer, 1);
      h.accept(c.producer, batch, await h.p.append(bytes));
      // The old epoch is fenced now, its retries too.
      if (old) await expect(h.p.append(m.bytes(c.producer, old.epoch, old.seq, old.values))).rejects.toMatchObject({ code: 'PRODUCER_FENCED' });
      break;
    }
    case 'roll':
      await h.p.roll();
      break;
    case 'reopen':
    case 'crash': {
      const before = h.p.producerState()!.entries();
      if (c.t === 'reopen') await h.store.close();
      else await h.store.abandon();
      if (c.t === 'crash' && c.drop_catalog) rmSync(join(h.dir, 'catalog'), { recursive: true, force: true });
      await h.open();
      // Rebuilt from the segments (and the snapshot, when the catalog survived): the same state.
      expect(h.p.producerState()!.entries()).toEqual(before);
      break;
    }
  }
  await h.check();
}

test('idempotent producers vs model: every batch stored once, retries answered with the original offsets, across crashes', async () => {
  await fc.assert(
    fc.asyncProperty(fc.array(cmd, { minLength: 1, maxLength: 30 }), async (cmds) => {
      const { dir, cleanup } = tempDir('relaylog-prop-idem-');
      const h = new Harness(dir);
      try {
        await h.open();
        await h.store.createTopic('t', { segment_bytes: 16 * 1024 });
        for (const c of cmds) await step(h, c);
      } finally {
        await h.store?.close().catch(() => undefined);
        cleanup();
      }
    }),
    { seed, numRuns: 120, endOnFailure: true },
  );
}, 300_000);
