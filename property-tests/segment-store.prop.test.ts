/**
 * Model-based property test of the segment store (issue 3, Tests): random sequences of appends
 * (sequential, or concurrent so group commit batches them), reads by offset and by timestamp,
 * rolls, retention, index rebuilds, clean close/reopen and crashes (store.abandon(), i.e. kill -9:
 * no fsync, no clean-close record) followed by damage to the active segment's non-durable bytes
 * and sometimes by deleting the LMDB catalog, checked against an in-memory model after every step.
 *
 * Invariants (checked after every step):
 *  - offsets are dense and monotonic: reading from the log start to the high watermark, each read's
 *    first batch starts exactly where the previous read ended, batches inside a read are contiguous;
 *  - every batch returned by any read passes checkBatch (framing, magic, CRC) and is byte-identical
 *    to what was appended (the log only stamps baseOffset and leader epoch), record by record;
 *  - under fsync=always every acknowledged batch survives every crash; under fsync=never/interval
 *    the recovered log is exactly the sound prefix of the damaged active segment (a prefix of the
 *    model) and appends continue densely after it;
 *  - offsetForTimestamp(T) is the first live offset whose record timestamp is >= T, or null;
 *  - logStartOffset moves only by retention, exactly as the retention rule says;
 *  - the segment layout (contiguous, file named by base offset, sizes, max timestamps, sealed and
 *    durable marks) and the sparse offset/time indexes in LMDB agree with the model.
 *
 * Replay a failure exactly: SEED=<seed> npx vitest run property-tests/segment-store.prop.test.ts
 * (NUM_RUNS=<n> changes the number of sequences; FC_PATH=<path> replays one shrunk counterexample.)
 * Two inputs are not under the seed: when an in-flight append's write completes relative to the
 * simulated kill (crash.wait > 0) and real-time interval fsyncs; the assertions adapt to what
 * actually happened, so a replay runs the same commands but may take a different, equally checked, path.
 */
import { appendFileSync, closeSync, existsSync, openSync, readFileSync, readSync, readdirSync, rmSync, statSync, truncateSync, writeSync } from 'node:fs';
import { dirname, join } from 'node:path';
import fc from 'fast-check';
import { afterAll, test } from 'vitest';
import {
  BATCH_HEADER_BYTES,
  LOG_OVERHEAD_BYTES,
  LogStore,
  ManualClock,
  batchBaseOffset,
  batchLastOffsetDelta,
  checkBatch,
  decodeRecords,
  encodeBatch,
  isEngineError,
  limits,
  stampBatch,
  type AppendResult,
  type FsyncPolicy,
  type ReadResult,
  type PartitionLog,
  type RecordInput,
} from '../engine/index.js';
import { tempDir } from '../test/support/tmp.js';
import { LogModel, walkSegment, type ModelBatch, type ModelRecord, type WalkResult } from './support/segment-store-model.js';

const FILE = 'property-tests/segment-store.prop.test.ts';
const seed = Number(process.env.SEED ?? Date.now() % 2 ** 31);
const numRuns = Number(process.env.NUM_RUNS ?? 120); // log-crash-model covers the same ground too; keep npm test lean
const fcPath = process.env.FC_PATH;
const TOPIC = 't';
const T0 = 1_700_000_000_000;

// ------------------------------------------------------------------------------------------ commands

type TsSpec = { mode: 'near'; d: number } | { mode: 'far'; d: number } | { mode: 'abs'; t: number };
interface RecSpec {
  size: number;
  ts: TsSpec;
  key: 'none' | 'empty' | 'id';
  null_value: boolean;
  headers: number;
}
interface CallSpec {
  batches: RecSpec[][];
  as: 'buffers' | 'concat';
  epoch: number;
}
interface ReadSpec {
  at: number;
  max_bytes: number;
}
type FlipTarget = 'any' | 'header' | 'length';
type Damage =
  | { kind: 'truncate'; at: number }
  | { kind: 'flip'; at: number; pick: number; target: FlipTarget; mask: number }
  | { kind: 'garbage'; len: number; seed: number }
  | { kind: 'zeros'; len: number }
  | { kind: 'torn'; recs: RecSpec[]; whole: boolean; frac: number };

type Cmd =
  | { t: 'append'; calls: CallSpec[]; concurrent: boolean; read_during: ReadSpec | null; roll_during: boolean; advance_ms: number }
  | { t: 'read'; at: number; max_bytes: number; oob: 'none' | 'below' | 'above' }
  | { t: 'time'; mode: 'record' | 'below' | 'above' | 'random'; pick: number; delta: number; rnd: number }
  | { t: 'roll' }
  | { t: 'retention'; advance_ms: number; read_during: ReadSpec | null }
  | { t: 'rebuild' }
  | { t: 'reopen'; drop_catalog: boolean; inflight: RecSpec[][] }
  | { t: 'crash'; inflight: RecSpec[][]; during: 'none' | 'roll' | 'retention' | 'retention-cut' | 'flush'; wait: number; damage: Damage[]; drop_catalog: boolean };

interface SeqConfig {
  segment_bytes: number;
  segment_ms: number;
  retention_bytes: number;
  retention_ms: number;
  memory_tier_bytes: number;
  /** max_bytes of the reads that walk the whole log after every step. */
  scan_bytes: number;
}

const unit = fc.double({ min: 0, max: 1, noNaN: true, maxExcluded: true });

const tsArb: fc.Arbitrary<TsSpec> = fc.oneof(
  { weight: 6, arbitrary: fc.record({ mode: fc.constant('near' as const), d: fc.integer({ min: -50, max: 50 }) }) },
  { weight: 3, arbitrary: fc.record({ mode: fc.constant('far' as const), d: fc.integer({ min: -120_000, max: 120_000 }) }) },
  { weight: 1, arbitrary: fc.record({ mode: fc.constant('abs' as const), t: fc.integer({ min: 0, max: 5_000 }) }) },
);

const recArb: fc.Arbitrary<RecSpec> = fc.record({
  size: fc.oneof(
    { weight: 12, arbitrary: fc.integer({ min: 0, max: 64 }) },
    { weight: 6, arbitrary: fc.integer({ min: 65, max: 1024 }) },
    { weight: 2, arbitrary: fc.integer({ min: 1025, max: 8192 }) },
  ),
  ts: tsArb,
  key: fc.constantFrom('none' as const, 'empty' as const, 'id' as const),
  null_value: fc.integer({ min: 0, max: 19 }).map((n) => n === 0),
  headers: fc.oneof({ weight: 8, arbitrary: fc.constant(0) }, { weight: 2, arbitrary: fc.integer({ min: 1, max: 2 }) }),
});

const batchArb = fc.array(recArb, { minLength: 1, maxLength: 4 });

const callArb: fc.Arbitrary<CallSpec> = fc.record({
  batches: fc.array(batchArb, { minLength: 1, maxLength: 3 }),
  as: fc.constantFrom('buffers' as const, 'concat' as const),
  epoch: fc.integer({ min: 0, max: 3 }),
});

const readSpecArb: fc.Arbitrary<ReadSpec> = fc.record({
  at: unit,
  max_bytes: fc.oneof(fc.integer({ min: 1, max: 1024 }), fc.integer({ min: 1025, max: 96 * 1024 })),
});

const damageArb: fc.Arbitrary<Damage> = fc.oneof(
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('truncate' as const), at: unit }) },
  {
    weight: 4,
    arbitrary: fc.record({
      kind: fc.constant('flip' as const),
      at: unit,
      pick: unit,
      target: fc.constantFrom<FlipTarget>('any', 'any', 'header', 'length'),
      mask: fc.integer({ min: 1, max: 255 }),
    }),
  },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('garbage' as const), len: fc.integer({ min: 1, max: 3000 }), seed: fc.integer() }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('zeros' as const), len: fc.integer({ min: 1, max: 4096 }) }) },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('torn' as const), recs: batchArb, whole: fc.boolean(), frac: unit }) },
);

const cmdArb: fc.Arbitrary<Cmd> = fc.oneof(
  {
    weight: 10,
    arbitrary: fc.record({
      t: fc.constant('append' as const),
      calls: fc.array(callArb, { minLength: 1, maxLength: 4 }),
      concurrent: fc.boolean(),
      read_during: fc.option(readSpecArb, { nil: null }),
      roll_during: fc.integer({ min: 0, max: 4 }).map((n) => n === 0),
      advance_ms: fc.oneof({ weight: 3, arbitrary: fc.constant(0) }, { weight: 6, arbitrary: fc.integer({ min: 1, max: 3_000 }) }, { weight: 1, arbitrary: fc.integer({ min: 3_001, max: 200_000 }) }),
    }),
  },
  {
    weight: 4,
    arbitrary: fc.record({
      t: fc.constant('read' as const),
      at: unit,
      max_bytes: fc.oneof(fc.integer({ min: 1, max: 1024 }), fc.integer({ min: 1025, max: 96 * 1024 })),
      oob: fc.constantFrom('none' as const, 'none' as const, 'none' as const, 'none' as const, 'below' as const, 'above' as const),
    }),
  },
  {
    weight: 3,
    arbitrary: fc.record({
      t: fc.constant('time' as const),
      mode: fc.constantFrom('record' as const, 'record' as const, 'below' as const, 'above' as const, 'random' as const),
      pick: unit,
      delta: fc.integer({ min: -2, max: 2 }),
      rnd: fc.integer({ min: 0, max: 10_000 }),
    }),
  },
  { weight: 1, arbitrary: fc.constant({ t: 'roll' as const }) },
  {
    weight: 2,
    arbitrary: fc.record({ t: fc.constant('retention' as const), advance_ms: fc.integer({ min: 0, max: 150_000 }), read_during: fc.option(readSpecArb, { nil: null }) }),
  },
  { weight: 1, arbitrary: fc.constant({ t: 'rebuild' as const }) },
  {
    weight: 1,
    arbitrary: fc.record({
      t: fc.constant('reopen' as const),
      drop_catalog: fc.integer({ min: 0, max: 3 }).map((n) => n === 0),
      inflight: fc.array(batchArb, { maxLength: 2 }),
    }),
  },
  {
    weight: 3,
    arbitrary: fc.record({
      t: fc.constant('crash' as const),
      inflight: fc.array(batchArb, { maxLength: 3 }),
      during: fc.constantFrom('none' as const, 'none' as const, 'none' as const, 'roll' as const, 'retention' as const, 'retention-cut' as const, 'flush' as const),
      wait: fc.oneof({ weight: 3, arbitrary: fc.constant(0) }, { weight: 1, arbitrary: fc.integer({ min: 1, max: 4 }) }),
      damage: fc.array(damageArb, { maxLength: 3 }),
      drop_catalog: fc.integer({ min: 0, max: 2 }).map((n) => n === 0),
    }),
  },
);

const configArb: fc.Arbitrary<SeqConfig> = fc.record({
  segment_bytes: fc.oneof(fc.integer({ min: 14 * 1024, max: 24 * 1024 }), fc.integer({ min: 24 * 1024, max: 64 * 1024 })),
  segment_ms: fc.oneof(fc.constant(7 * 24 * 3600 * 1000), fc.integer({ min: 2_000, max: 60_000 })),
  retention_bytes: fc.oneof(fc.constant(-1), fc.integer({ min: 0, max: 200 * 1024 })),
  retention_ms: fc.oneof(fc.constant(-1), fc.integer({ min: 1_000, max: 300_000 })),
  memory_tier_bytes: fc.constantFrom(0, 8 * 1024, 64 * 1024, 16 * 1024 * 1024),
  scan_bytes: fc.oneof({ weight: 1, arbitrary: fc.integer({ min: 1, max: 2048 }) }, { weight: 3, arbitrary: fc.integer({ min: 2049, max: 256 * 1024 }) }),
});

const weakFsyncArb: fc.Arbitrary<FsyncPolicy> = fc.oneof(
  fc.constant({ policy: 'never' as const }),
  fc.integer({ min: 1, max: 40 }).map((interval_ms): FsyncPolicy => ({ policy: 'interval', interval_ms })),
);

// ------------------------------------------------------------------------------------------ harness

/** What the sequences exercised; printed with STATS=1 (to tune the generators). */
const stats: Record<string, number> = {};
const count = (k: string, n = 1) => void (stats[k] = (stats[k] ?? 0) + n);

class InvariantError extends Error {
  override name = 'InvariantError';
}
function fail(msg: string): never {
  throw new InvariantError(msg);
}
function eq<T>(actual: T, expected: T, what: string): void {
  if (actual !== expected) fail(`${what}: got ${String(actual)}, expected ${String(expected)}`);
}
const errText = (e: unknown) => (e instanceof Error ? `${e.name}: ${e.message}` : String(e));

interface Built {
  /** Handed to the engine, which takes ownership and stamps it in place. */
  buf: Buffer;
  /** Our own copy, as produced. */
  pristine: Buffer;
  records: Array<Omit<ModelRecord, 'offset'>>;
}

interface Flip {
  position: number;
  mask: number;
}

class Harness {
  store: LogStore | null = null;
  readonly model = new LogModel();
  readonly clock = new ManualClock(T0);
  private n = 0;
  step_no = 0;

  constructor(readonly dir: string, readonly cfg: SeqConfig, readonly fsync: FsyncPolicy) {}

  async open(): Promise<void> {
    this.store = await LogStore.open({
      dir: this.dir,
      clock: this.clock,
      disk_free_floor_bytes: 0,
      retention_check_interval_ms: 0,
      memory_tier_bytes: this.cfg.memory_tier_bytes,
    });
  }

  get p(): PartitionLog {
    if (!this.store) fail('store is not open');
    return this.store.partition(TOPIC, 0);
  }

  async shutdown(): Promise<void> {
    const s = this.store;
    this.store = null;
    if (!s) return;
    await s.close().catch(async () => {
      await s.abandon().catch(() => undefined);
    });
  }

  build(specs: RecSpec[]): Built {
    const now = this.clock.now_ms();
    const records = specs.map((s) => {
      const id = this.n++;
      const ts = s.ts.mode === 'abs' ? s.ts.t : now + s.ts.d;
      let value: Buffer | null = null;
      if (!s.null_value) {
        value = Buffer.alloc(s.size, id & 0xff);
        if (s.size >= 4) value.writeUInt32BE(id >>> 0, 0);
      }
      const key = s.key === 'none' ? null : s.key === 'empty' ? Buffer.alloc(0) : Buffer.from(`k${id}`);
      const headers = Array.from({ length: s.headers }, (_, i) => ({ key: `h${i}`, value: i === 1 ? null : Buffer.from(`hv${id}`) }));
      return { ts, key, value, headers };
    });
    const inputs: RecordInput[] = records.map((r) => ({ key: r.key, value: r.value, timestamp_ms: r.ts, headers: r.headers }));
    const buf = encodeBatch(inputs, { timestamp_ms: records[0]!.ts });
    return { buf, pristine: Buffer.from(buf), records };
  }
}

function modelBatch(b: Built, base: number, epoch: number): ModelBatch {
  const bytes = Buffer.from(b.pristine);
  stampBatch(bytes, 0, base, epoch);
  return { base, next: base + b.records.length, bytes, records: b.records.map((r, i) => ({ ...r, offset: base + i })) };
}

// ------------------------------------------------------------------------------------------ checks

function sameBuf(a: Buffer | null, b: Buffer | null): boolean {
  return a === null || b === null ? a === b : a.equals(b);
}

function describeBatch(b: Buffer): string {
  return `base ${batchBaseOffset(b)}, ${b.length} bytes, lastOffsetDelta ${batchLastOffsetDelta(b)}`;
}

/**
 * Checks a record set returned by a read: every batch passes checkBatch, the first covers `offset`
 * (starts exactly at it when `exact`), later ones follow densely, and each batch is byte-identical
 * to the model's and decodes to the model's records. Returns one past the last offset returned.
 */
function verifyRecordSet(model: LogModel, rs: Buffer, offset: number, exact: boolean, what: string): { next: number; first_size: number } {
  let pos = 0;
  let next = -1;
  let first_size = 0;
  while (pos < rs.length) {
    if (rs.length - pos < BATCH_HEADER_BYTES) fail(`${what}: ${rs.length - pos} trailing bytes at ${pos} are not a batch`);
    const size = rs.readInt32BE(pos + 8) + LOG_OVERHEAD_BYTES;
    if (size < BATCH_HEADER_BYTES || pos + size > rs.length) fail(`${what}: malformed batch chain at byte ${pos} (size ${size} of ${rs.length})`);
    const problem = checkBatch(rs, pos, size);
    if (problem !== null) fail(`${what}: returned batch at byte ${pos} fails its CRC/framing check: ${problem}`);
    const bytes = rs.subarray(pos, pos + size);
    const base = batchBaseOffset(bytes);
    const last = base + batchLastOffsetDelta(bytes);
    if (next === -1) {
      if (exact ? base !== offset : !(base <= offset && offset <= last)) {
        fail(`${what}: first batch ${base}..${last} does not ${exact ? 'start at' : 'cover'} the requested offset ${offset}`);
      }
      first_size = size;
    } else if (base !== next) {
      fail(`${what}: offsets not dense: batch at ${base} follows one ending at ${next - 1}`);
    }
    const mb = model.batchAt(base);
    if (!mb || mb.base !== base) fail(`${what}: returned a batch at ${base} but the model has no batch starting there`);
    if (!bytes.equals(mb.bytes)) fail(`${what}: batch at ${base} differs from what was appended (read ${describeBatch(bytes)}, model ${describeBatch(mb.bytes)})`);
    const recs = decodeRecords(bytes);
    if (recs.length !== mb.records.length) fail(`${what}: batch at ${base} decodes to ${recs.length} records, model has ${mb.records.length}`);
    recs.forEach((r, i) => {
      const m = mb.records[i]!;
      const ok =
        r.offset === m.offset &&
        r.timestamp_ms === m.ts &&
        sameBuf(r.key, m.key) &&
        sameBuf(r.value, m.value) &&
        r.headers.length === m.headers.length &&
        r.headers.every((hd, j) => hd.key === m.headers[j]!.key && sameBuf(hd.value, m.headers[j]!.value));
      if (!ok) fail(`${what}: record ${r.offset} (ts ${r.timestamp_ms}) differs from the model's record ${m.offset} (ts ${m.ts})`);
    });
    next = last + 1;
    pos += size;
  }
  return { next, first_size };
}

/** The segment layout agrees with the model: contiguous, named by base offset, sizes, timestamps, marks. */
function checkLayout(h: Harness): void {
  const p = h.p;
  const m = h.model;
  const segs = p.segmentInfo();
  if (segs.length === 0) fail('partition has no segments');
  eq(segs[0]!.base_offset, m.log_start, 'first segment base offset = log start offset');
  let expected_base = m.log_start;
  let sealing = 0;
  segs.forEach((s, i) => {
    const last = i === segs.length - 1;
    const what = `segment ${s.base_offset}`;
    eq(s.base_offset, expected_base, `${what}: segments are contiguous`);
    // All but the last are sealed; except that under fsync=never|interval a roll seals the old
    // segment in the background (PartitionLog.syncRolled), oldest first: the segments still being
    // sealed are the newest before the active one.
    if (last) eq(s.sealed, false, `${what}: the active segment is not sealed`);
    else if (!s.sealed) {
      if (h.fsync.policy === 'always') fail(`${what}: under fsync=always every rolled segment is sealed at once`);
      sealing++;
    } else if (sealing > 0) fail(`${what}: sealed after an older segment that is still being sealed`);
    if (!s.path.endsWith(`${String(s.base_offset).padStart(20, '0')}.log`)) fail(`${what}: file ${s.path} is not named by its base offset`);
    const bs = m.batchesIn(s.base_offset, s.next_offset);
    const covered = bs.length === 0 ? s.next_offset === s.base_offset : bs[0]!.base === s.base_offset && bs.at(-1)!.next === s.next_offset;
    if (!covered) fail(`${what}: range ${s.base_offset}..${s.next_offset} does not align with the model's batches`);
    let bytes = 0;
    for (const b of bs) bytes += b.bytes.length;
    eq(s.size_bytes, bytes, `${what}: size_bytes = bytes of its batches`);
    eq(statSync(s.path).size, s.size_bytes, `${what}: file size`);
    eq(s.max_timestamp_ms, m.maxTs(s.base_offset, s.next_offset), `${what}: max_timestamp_ms`);
    if (s.durable_bytes > s.size_bytes) fail(`${what}: durable_bytes ${s.durable_bytes} > size_bytes ${s.size_bytes}`);
    if (s.sealed) eq(s.durable_bytes, s.size_bytes, `${what}: a sealed segment is durable`);
    if (last && h.fsync.policy === 'always') eq(s.durable_bytes, s.size_bytes, `${what}: under fsync=always the active segment is durable`);
    expected_base = s.next_offset;
  });
  eq(expected_base, m.hw, 'last segment ends at the high watermark');
  const files = readdirSync(dirname(segs[0]!.path)).filter((f) => f.endsWith('.log'));
  eq(files.length, segs.length, 'segment files on disk (deleted segments are gone)');
}

/** Reads the whole log from the log start to the high watermark, in max_bytes pieces. */
async function readThrough(h: Harness): Promise<void> {
  const p = h.p;
  const m = h.model;
  const max_bytes = h.cfg.scan_bytes;
  let offset = m.log_start;
  while (offset < m.hw) {
    const r = await p.read(offset, max_bytes);
    try {
      eq(r.high_watermark, m.hw, 'read: high_watermark');
      eq(r.log_start_offset, m.log_start, 'read: log_start_offset');
      if (r.records.length === 0) fail(`read(${offset}) below the high watermark ${m.hw} returned nothing`);
      const v = verifyRecordSet(m, r.records, offset, true, `read(${offset}, ${max_bytes})`);
      if (r.records.length > Math.max(max_bytes, v.first_size)) fail(`read(${offset}, ${max_bytes}) returned ${r.records.length} bytes`);
      eq(r.next_offset, v.next, `read(${offset}): next_offset`);
      offset = r.next_offset; // the next read must continue exactly here
    } finally {
      r.release();
    }
  }
  eq(offset, m.hw, 'reading the whole log ends at the high watermark');
  const end = await p.read(m.hw, 1);
  eq(end.records.length, 0, 'read at the high watermark returns nothing');
  eq(end.next_offset, m.hw, 'read at the high watermark: next_offset');
}

/**
 * The sparse offset index is exactly what the indexing rule gives for the model's layout (an entry
 * for each segment's first batch, then for the first batch >= index_interval_bytes past the previous
 * entry), and every time-index entry is sound: it names an indexed batch, offsets grow with the key,
 * and the key is >= every live timestamp up to the end of that batch (so starting a timestamp search
 * there never skips a match).
 */
async function checkIndexes(h: Harness): Promise<void> {
  const cat = h.store!.catalog;
  // The catalog hands index entries to LMDB in groups: flush() hands over the held ones too.
  await cat.flush();
  await Promise.all([cat.oindex.committed, cat.tindex.committed, cat.segments.committed]);
  const m = h.model;
  const expected: string[] = [];
  const entries = new Map<number, string>();
  for (const s of h.p.segmentInfo()) {
    let pos = 0;
    let last_entry = -1;
    for (const b of m.batchesIn(s.base_offset, s.next_offset)) {
      if (last_entry === -1 || pos - last_entry >= limits.index_interval_bytes) {
        expected.push(`${b.base}->${s.base_offset}@${pos}`);
        entries.set(b.base, `${s.base_offset}@${pos}`);
        last_entry = pos;
      }
      pos += b.bytes.length;
    }
  }
  const actual: string[] = [];
  for (const { key, value } of cat.oindex.getRange({ start: [TOPIC, 0, -1], end: [TOPIC, 0, 2 ** 53] })) {
    actual.push(`${key[2]}->${value[0]}@${value[1]}`);
  }
  if (actual.join(' ') !== expected.join(' ')) {
    fail(`offset index differs from the indexing rule:\n  actual   ${actual.join(' ')}\n  expected ${expected.join(' ')}`);
  }
  let prev = -1;
  for (const { key, value } of cat.tindex.getRange({ start: [TOPIC, 0, -(2 ** 53)], end: [TOPIC, 0, 2 ** 53] })) {
    const k = key[2] as number;
    const [o, sb, pos] = value;
    if (entries.get(o) !== `${sb}@${pos}`) fail(`time index entry ${k} -> ${o} (${sb}@${pos}) names no offset-index entry`);
    if (o <= prev) fail(`time index: offsets do not grow with the key (${o} after ${prev})`);
    const b = m.batchAt(o)!;
    const max = m.maxTs(m.log_start, b.next);
    if (k < max) fail(`time index entry ${k} -> ${o} is below a live timestamp ${max} at or before that batch`);
    prev = o;
  }
}

async function checkTimestamp(h: Harness, ts: number, what: string): Promise<void> {
  const want = h.model.offsetForTimestamp(ts);
  const got = await h.p.offsetForTimestamp(ts);
  if (got !== want) fail(`${what}: offsetForTimestamp(${ts}) = ${got}, the model says ${want}`);
}

async function checkAll(h: Harness): Promise<void> {
  const p = h.p;
  eq(p.logStartOffset, h.model.log_start, 'logStartOffset (moves only by retention)');
  eq(p.highWatermark, h.model.hw, 'high watermark');
  eq(p.logEndOffset, h.model.hw, 'log end offset');
  checkLayout(h);
  await readThrough(h);
  await checkIndexes(h);
  const live = h.model.liveRecords();
  if (live.length > 0) {
    const r = live[(h.step_no * 7919) % live.length]!;
    await checkTimestamp(h, r.ts, 'probe');
    await checkTimestamp(h, r.ts + 1, 'probe');
  }
}

// ------------------------------------------------------------------------------------------ steps

function isCode(e: unknown, code: string): boolean {
  return isEngineError(e) && e.code === code;
}

async function doAppend(h: Harness, c: Extract<Cmd, { t: 'append' }>): Promise<void> {
  h.clock.advance(c.advance_ms);
  const p = h.p;
  const max = p.config.max_message_bytes;
  const calls = c.calls.map((call) => {
    const built = call.batches.map((specs) => h.build(specs));
    const input: Buffer | Buffer[] = call.as === 'concat' ? Buffer.concat(built.map((b) => b.buf)) : built.length === 1 ? built[0]!.buf : built.map((b) => b.buf);
    return { call, built, input, too_large: built.some((b) => b.buf.length > max) };
  });
  type Outcome = { ok: true; r: AppendResult } | { ok: false; e: unknown };
  const settle = (x: (typeof calls)[number]): Promise<Outcome> =>
    p.append(x.input, { leader_epoch: x.call.epoch }).then(
      (r) => ({ ok: true, r }),
      (e: unknown) => ({ ok: false, e }),
    );
  let during: { offset: number; hw: number; max_bytes: number; result: Promise<Awaited<ReturnType<PartitionLog['read']>>> } | null = null;
  let outcomes: Outcome[];
  if (c.concurrent) {
    const pending = calls.map(settle);
    const rolled = c.roll_during ? h.p.roll().then(() => null, (e: unknown) => e) : null;
    if (c.read_during) {
      const m = h.model;
      const offset = Math.min(m.hw, m.log_start + Math.floor(c.read_during.at * (m.hw - m.log_start + 1)));
      during = { offset, hw: m.hw, max_bytes: c.read_during.max_bytes, result: p.read(offset, c.read_during.max_bytes) };
    }
    outcomes = await Promise.all(pending);
    const roll_error = await rolled;
    if (roll_error) fail(`roll during concurrent appends failed: ${errText(roll_error)}`);
    if (c.roll_during) count('append.roll_during');
  } else {
    outcomes = [];
    for (const x of calls) outcomes.push(await settle(x));
  }
  // Accept in issue order: group commit must keep it, so each success starts at the model's end.
  calls.forEach((x, i) => {
    const o = outcomes[i]!;
    if (x.too_large) {
      count('append.too_large');
      if (o.ok || !isCode(o.e, 'BATCH_TOO_LARGE')) fail(`append ${i}: a batch over max.message.bytes=${max} must fail with BATCH_TOO_LARGE, got ${o.ok ? 'success' : errText(o.e)}`);
      return;
    }
    if (!o.ok) fail(`append ${i} failed: ${errText(o.e)}`);
    eq(o.r.base_offset, h.model.hw, `append ${i}: base_offset (dense, in issue order)`);
    let base = h.model.hw;
    for (const b of x.built) {
      const mb = modelBatch(b, base, x.call.epoch);
      h.model.push(mb);
      base = mb.next;
    }
    eq(o.r.last_offset, base - 1, `append ${i}: last_offset`);
    count('append.batches', x.built.length);
  });
  if (during) {
    const r = await during.result;
    try {
      if (during.offset === during.hw) eq(r.records.length, 0, 'read at the high watermark during appends');
      else verifyRecordSet(h.model, r.records, during.offset, false, `read(${during.offset}) during appends`);
      if (r.high_watermark < during.hw || r.high_watermark > h.model.hw) fail(`read during appends saw high watermark ${r.high_watermark}`);
    } finally {
      r.release();
    }
  }
}

async function doRead(h: Harness, c: Extract<Cmd, { t: 'read' }>): Promise<void> {
  const m = h.model;
  if (c.oob !== 'none') {
    const offset = c.oob === 'above' ? m.hw + 1 + Math.floor(c.at * 100) : m.log_start - 1 - Math.floor(c.at * 100);
    const got = await h.p.read(offset, c.max_bytes).then(
      (r) => (r.release(), 'success'),
      (e: unknown) => (isCode(e, 'OFFSET_OUT_OF_RANGE') ? 'ok' : errText(e)),
    );
    if (got !== 'ok') fail(`read(${offset}) outside [${m.log_start}, ${m.hw}] must fail with OFFSET_OUT_OF_RANGE, got ${got}`);
    return;
  }
  const offset = Math.min(m.hw, m.log_start + Math.floor(c.at * (m.hw - m.log_start + 1)));
  const r = await h.p.read(offset, c.max_bytes);
  try {
    if (offset === m.hw) {
      eq(r.records.length, 0, 'read at the high watermark');
      return;
    }
    const v = verifyRecordSet(m, r.records, offset, false, `read(${offset}, ${c.max_bytes})`);
    if (r.records.length > Math.max(c.max_bytes, v.first_size)) fail(`read(${offset}, ${c.max_bytes}) returned ${r.records.length} bytes`);
    eq(r.next_offset, v.next, `read(${offset}): next_offset`);
  } finally {
    r.release();
  }
}

async function doTime(h: Harness, c: Extract<Cmd, { t: 'time' }>): Promise<void> {
  const live = h.model.liveRecords();
  let ts: number;
  if (live.length === 0) ts = h.clock.now_ms() + c.delta;
  else {
    let lo = Infinity;
    let hi = -Infinity;
    for (const r of live) {
      lo = Math.min(lo, r.ts);
      hi = Math.max(hi, r.ts);
    }
    if (c.mode === 'record') ts = live[Math.floor(c.pick * live.length)]!.ts + c.delta;
    else if (c.mode === 'below') ts = lo - c.rnd;
    else if (c.mode === 'above') ts = hi + 1 + c.rnd;
    else ts = lo + Math.floor(c.pick * (hi - lo + 2));
  }
  await checkTimestamp(h, ts, 'time step');
}

async function doRoll(h: Harness): Promise<void> {
  const before = h.p.segmentInfo();
  await h.p.roll();
  const after = h.p.segmentInfo();
  const had_data = before.at(-1)!.size_bytes > 0;
  eq(after.length, before.length + (had_data ? 1 : 0), 'roll: segment count');
  if (had_data) eq(after.at(-1)!.base_offset, h.model.hw, 'roll: the new segment starts at the log end');
  // An explicit roll returns once every segment it (or an earlier roll) left behind is sealed.
  for (const s of after.slice(0, -1)) if (!s.sealed || s.durable_bytes !== s.size_bytes) fail(`roll: segment ${s.base_offset} is not sealed and durable after roll()`);
}

/** The retention rule, restated: oldest sealed segments go while the rest still meets retention.bytes, or while they are older than retention.ms (by their newest record). */
function retentionCount(h: Harness, segs: ReadonlyArray<{ base_offset: number; next_offset: number; size_bytes: number }>, now: number): number {
  const { retention_bytes, retention_ms } = h.cfg;
  let total = 0;
  for (const s of segs) total += s.size_bytes;
  let n = 0;
  for (const s of segs.slice(0, -1)) {
    const max_ts = h.model.maxTs(s.base_offset, s.next_offset);
    const over = retention_bytes >= 0 && total - s.size_bytes >= retention_bytes;
    const expired = retention_ms >= 0 && max_ts >= 0 && max_ts < now - retention_ms;
    if (!over && !expired) break;
    total -= s.size_bytes;
    n++;
  }
  return n;
}

async function doRetention(h: Harness, c: Extract<Cmd, { t: 'retention' }>): Promise<void> {
  h.clock.advance(c.advance_ms);
  const segs = h.p.segmentInfo();
  const now = h.clock.now_ms();
  const { retention_bytes, retention_ms } = h.cfg;
  const n = retentionCount(h, segs, now);
  let during: { offset: number; result: Promise<{ r: ReadResult | null; e: unknown }> } | null = null;
  if (c.read_during) {
    const m = h.model;
    const offset = Math.min(m.hw, m.log_start + Math.floor(c.read_during.at * (m.hw - m.log_start + 1)));
    during = { offset, result: h.p.read(offset, c.read_during.max_bytes).then((r) => ({ r, e: null }), (e: unknown) => ({ r: null, e })) };
  }
  const deleted = await h.store!.applyRetention();
  if (during) {
    // A read that started before retention deleted its segment still returns what it asked for.
    const { r, e } = await during.result;
    if (!r) fail(`read(${during.offset}) racing retention failed: ${errText(e)}`);
    try {
      if (during.offset === h.model.hw) eq(r.records.length, 0, 'read at the high watermark racing retention');
      else verifyRecordSet(h.model, r.records, during.offset, false, `read(${during.offset}) racing retention`);
    } finally {
      r.release();
    }
    if (n > 0) count('retention.read_during_delete');
  }
  count('retention.deleted', n);
  eq(deleted, n, `retention (bytes ${retention_bytes}, ms ${retention_ms}, now ${now}): segments deleted`);
  for (const s of segs.slice(0, n)) if (existsSync(s.path)) fail(`retention: ${s.path} still exists`);
  h.model.retainFrom(segs[n]!.base_offset);
}

async function doRebuild(h: Harness): Promise<void> {
  await h.p.rebuildIndexes();
}

async function doReopen(h: Harness, c: Extract<Cmd, { t: 'reopen' }>): Promise<void> {
  const s = h.store!;
  const p = h.p;
  const node_epoch = s.node_epoch; // appends without a leader_epoch are stamped with the node's
  // Appends issued just before close(): close waits for them, so all succeed and survive.
  const built = c.inflight.map((specs) => h.build(specs));
  const pending = built.map((b) => p.append(b.buf).then((r) => ({ r, e: null }), (e: unknown) => ({ r: null, e })));
  h.store = null;
  await s.close();
  const outcomes = await Promise.all(pending);
  outcomes.forEach(({ r, e }, i) => {
    const too_large = built[i]!.buf.length > p.config.max_message_bytes;
    if (too_large) {
      if (!isCode(e, 'BATCH_TOO_LARGE')) fail(`append before close: expected BATCH_TOO_LARGE, got ${r ? 'success' : errText(e)}`);
      return;
    }
    if (!r) fail(`append issued before close() failed: ${errText(e)}`);
    eq(r.base_offset, h.model.hw, 'append issued before close(): base_offset');
    h.model.push(modelBatch(built[i]!, r.base_offset, node_epoch));
    count('reopen.inflight');
  });
  if (c.drop_catalog) rmSync(join(h.dir, 'catalog'), { recursive: true, force: true });
  await h.open();
  eq(h.p.recovered_truncated_bytes, 0, 'clean reopen truncates nothing');
}

interface Inflight {
  built: Built;
  epoch: number;
  state: 'pending' | 'ok' | 'err';
  r: AppendResult | null;
  /** Why it failed, for the failure message. */
  err?: unknown;
  acked: boolean;
  done: Promise<void>;
}

/** A sound batch (framing, magic, CRC) starting anywhere after `from`: then a fault at `from` is not a torn tail. */
function soundBatchAfter(bytes: Buffer, from: number): number {
  for (let p = from + 1; p + BATCH_HEADER_BYTES <= bytes.length; p++) {
    if (bytes[p + 16] !== 2) continue;
    const size = bytes.readInt32BE(p + 8) + LOG_OVERHEAD_BYTES;
    if (size < BATCH_HEADER_BYTES || p + size > bytes.length) continue;
    if (checkBatch(bytes, p, size) === null) return p;
  }
  return -1;
}

function garbage(len: number, seed: number): Buffer {
  const b = Buffer.allocUnsafe(len);
  let x = seed | 0 || 0x9e3779b9;
  for (let i = 0; i < len; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    b[i] = x & 0xff;
  }
  return b;
}

async function doCrash(h: Harness, c: Extract<Cmd, { t: 'crash' }>): Promise<void> {
  const p = h.p;
  const m = h.model;
  // Appends in flight when the process dies. With wait > 0 some may be written (even acknowledged) first.
  const inflight: Inflight[] = c.inflight.map((specs, i) => {
    const built = h.build(specs);
    const f: Inflight = { built, epoch: i % 2, state: 'pending', r: null, acked: false, done: Promise.resolve() };
    f.done = p.append(built.buf, { leader_epoch: f.epoch }).then(
      (r) => {
        f.state = 'ok';
        f.r = r;
      },
      (e: unknown) => {
        f.state = 'err';
        f.err = e;
      },
    );
    return f;
  });
  // Maintenance under way when the process dies.
  const during: Promise<unknown> =
    c.during === 'roll' ? p.roll().catch((e: unknown) => e) : c.during === 'flush' ? p.flush().catch((e: unknown) => e) : c.during === 'retention' ? h.store!.applyRetention().catch((e: unknown) => e) : Promise.resolve();
  for (let i = 0; i < c.wait; i++) await new Promise<void>((resolve) => setImmediate(resolve));
  // Acknowledged before the kill: part of the model from now on, must survive under fsync=always.
  let seen_pending = false;
  for (const f of inflight) {
    if (f.state === 'pending') seen_pending = true;
    if (f.state !== 'ok') continue;
    if (seen_pending) fail('an append was acknowledged before an earlier one (group commit must keep issue order)');
    f.acked = true;
    count('crash.inflight_acked');
    eq(f.r!.base_offset, m.hw, 'in-flight append acknowledged before the crash: base_offset');
    m.push(modelBatch(f.built, m.hw, f.epoch));
  }
  const acked_hw = m.hw;

  // The durable position is taken before the kill, as the brief says; abandon() lets a write that
  // is already under way finish (and fsync, and record itself), so it is read again afterwards.
  const before = p.segmentInfo();
  await h.store!.abandon();
  h.store = null;
  await Promise.all(inflight.map((f) => f.done));
  await during;
  const after = p.segmentInfo();
  // Retention that was under way may have deleted segments (files first, then the catalog records).
  if (after[0]!.base_offset !== m.log_start) {
    if (c.during !== 'retention') fail(`the log start moved from ${m.log_start} to ${after[0]!.base_offset} without retention`);
    m.retainFrom(after[0]!.base_offset);
    count('crash.retention_during');
  }
  const active = after.at(-1)!;
  const before_active = before.at(-1)!;
  if (before_active.path === active.path && active.durable_bytes < before_active.durable_bytes) fail('durable position went back during abandon()');

  // A batch over max.message.bytes is refused on its own, before it is queued: it fails with
  // BATCH_TOO_LARGE whatever else happens, and says nothing about the appends issued after it.
  const too_large = inflight.map((f) => f.built.buf.length > p.config.max_message_bytes);
  inflight.forEach((f, i) => {
    if (too_large[i] && !(f.state === 'err' && isCode(f.err, 'BATCH_TOO_LARGE'))) {
      fail(`in-flight #${i} is over max.message.bytes=${p.config.max_message_bytes}: expected BATCH_TOO_LARGE, got ${f.state === 'ok' ? 'success' : errText(f.err)}`);
    }
    if (!too_large[i] && f.state === 'err' && isCode(f.err, 'BATCH_TOO_LARGE')) fail(`in-flight #${i} fits max.message.bytes but failed with ${errText(f.err)}`);
    if (too_large[i]) count('crash.inflight_too_large');
  });
  // Appends that completed after the kill are unacknowledged but on disk: a prefix, whole, in order.
  const late = inflight.filter((f) => !f.acked && f.state === 'ok');
  const first_err = inflight.findIndex((f, i) => f.state === 'err' && !too_large[i]);
  if (first_err !== -1 && inflight.slice(first_err).some((f) => f.state === 'ok' && !f.acked)) {
    fail(`an in-flight append completed after a later-issued one failed (in-flight #${first_err} failed with ${errText(inflight[first_err]!.err)}; states ${inflight.map((f) => f.state).join(',')})`);
  }
  const candidates = new Map<number, ModelBatch>();
  let next = m.hw;
  for (const f of late) {
    eq(f.r!.base_offset, next, 'in-flight append written during the crash: base_offset');
    count('crash.inflight_late');
    const mb = modelBatch(f.built, next, f.epoch);
    candidates.set(mb.base, mb);
    next = mb.next;
  }
  // Before any damage the files hold exactly the model plus those late appends.
  const active_layout: Map<number, { mb: ModelBatch; size: number }> = new Map();
  for (const s of after) {
    const bytes = readFileSync(s.path);
    const w = walkSegment(bytes, s.base_offset);
    if (w.fault) fail(`after abandon(), segment ${s.base_offset} is unsound at byte ${w.fault.position}: ${w.fault.reason}`);
    eq(w.next, s.next_offset, `after abandon(), segment ${s.base_offset}: next offset on disk`);
    eq(bytes.length, s.size_bytes, `after abandon(), segment ${s.base_offset}: file size`);
    for (const wb of w.batches) {
      const mb = wb.base < m.hw ? m.batchAt(wb.base) : candidates.get(wb.base);
      if (!mb || mb.base !== wb.base) fail(`after abandon(), segment ${s.base_offset} holds a batch at ${wb.base} that was never appended`);
      if (!bytes.subarray(wb.position, wb.position + wb.size).equals(mb.bytes)) fail(`after abandon(), the batch at ${wb.base} on disk differs from what was appended`);
      if (s === active) active_layout.set(wb.position, { mb, size: wb.size });
    }
  }
  eq(active.next_offset, next, 'after abandon(), the log ends after the late appends');
  if (c.during === 'retention-cut' && after.length > 1 && retentionCount(h, after, h.clock.now_ms()) > 0) {
    // Retention chose the oldest segment and the process died right after unlinking its file,
    // before the catalog heard of it (its record and index entries are still there).
    rmSync(after[0]!.path);
    m.retainFrom(after[1]!.base_offset);
    count('crash.retention_cut');
  }

  // Damage the active segment, only at or after its durable position.
  const path = active.path;
  const floor = active.durable_bytes;
  const flips: Flip[] = [];
  const applied: string[] = [];
  // Torn writes that reached the disk in part. Bytes appended after one (zeros, or the start of
  // the next torn write) can complete it by coincidence: then the disk really holds that batch.
  const torn_partial = new Map<number, ModelBatch>();
  let size = statSync(path).size;
  for (const d of c.damage) {
    switch (d.kind) {
      case 'truncate': {
        const at = floor + Math.floor(d.at * (size - floor + 1));
        if (at >= size) break;
        truncateSync(path, at);
        size = at;
        for (const [pos, e] of active_layout) if (pos + e.size > at) active_layout.delete(pos);
        for (let i = flips.length - 1; i >= 0; i--) if (flips[i]!.position >= at) flips.splice(i, 1);
        applied.push(`truncate@${at}`);
        break;
      }
      case 'flip': {
        let at = -1;
        if (d.target === 'any') {
          if (size > floor) at = floor + Math.floor(d.at * (size - floor));
        } else {
          const starts = walkSegment(readFileSync(path), active.base_offset).batches.map((b) => b.position).filter((q) => q >= floor);
          if (starts.length > 0) {
            const start = starts[Math.floor(d.pick * starts.length)]!;
            at = start + (d.target === 'length' ? 8 + Math.floor(d.at * 4) : Math.floor(d.at * BATCH_HEADER_BYTES));
          }
        }
        if (at < floor || at >= size) break;
        const fd = openSync(path, 'r+');
        try {
          const one = Buffer.alloc(1);
          readSync(fd, one, 0, 1, at);
          one[0] = one[0]! ^ d.mask;
          writeSync(fd, one, 0, 1, at);
        } finally {
          closeSync(fd);
        }
        flips.push({ position: at, mask: d.mask });
        applied.push(`flip@${at}^0x${d.mask.toString(16)}`);
        break;
      }
      case 'garbage':
        appendFileSync(path, garbage(d.len, d.seed));
        applied.push(`garbage@${size}+${d.len}`);
        size += d.len;
        break;
      case 'zeros':
        appendFileSync(path, Buffer.alloc(d.len));
        applied.push(`zeros@${size}+${d.len}`);
        size += d.len;
        break;
      case 'torn': {
        // An unacknowledged write of the next batch that reached the disk whole or in part.
        const tbase = walkSegment(readFileSync(path), active.base_offset).next;
        const mb = modelBatch(h.build(d.recs), tbase, 0);
        const keep = d.whole ? mb.bytes.length : Math.max(1, Math.floor(d.frac * mb.bytes.length));
        appendFileSync(path, mb.bytes.subarray(0, keep));
        if (keep === mb.bytes.length) active_layout.set(size, { mb, size: keep });
        else torn_partial.set(size, mb);
        applied.push(`torn@${size}:${tbase}+${keep}/${mb.bytes.length}`);
        size += keep;
        break;
      }
    }
  }
  if (c.drop_catalog) {
    rmSync(join(h.dir, 'catalog'), { recursive: true, force: true });
    applied.push('drop-catalog');
  }
  const story = `crash [${applied.join(', ') || 'no damage'}], active segment ${active.base_offset} durable ${floor}, file ${size} bytes`;

  // The oracle: recovery keeps exactly the sound prefix of the active segment. Without a catalog
  // the engine cannot know the durable position, so a fault that some sound batch follows is not a
  // torn tail: open must refuse, naming the file and byte, and nothing may be truncated.
  const damaged = readFileSync(path);
  const w: WalkResult = walkSegment(damaged, active.base_offset);
  const refuse = c.drop_catalog && w.fault !== null && soundBatchAfter(damaged, w.fault.position) !== -1;
  count(refuse ? 'crash.refused' : w.fault ? 'crash.torn_tail' : 'crash.clean_tail');
  if (c.drop_catalog) count('crash.drop_catalog');
  if (w.next < m.hw) count('crash.lost_acked_offsets(weak fsync)', m.hw - w.next);
  if (refuse) {
    const got = await h.open().then(
      () => 'opened',
      (e: unknown) => e,
    );
    if (got === 'opened') {
      const hw = h.p.highWatermark;
      fail(`${story}: without a catalog, a fault at byte ${w.fault!.position} (${w.fault!.reason}) followed by a sound batch at byte ${soundBatchAfter(damaged, w.fault!.position)} must refuse to open; it opened with high watermark ${hw} (sound prefix ends at ${w.next}), truncating ${h.p.recovered_truncated_bytes} bytes`);
    }
    if (!isCode(got, 'CORRUPT_SEGMENT')) fail(`${story}: expected CORRUPT_SEGMENT, got ${errText(got)}`);
    const details = (got as { details: Record<string, unknown> }).details;
    eq(details.file, path, `${story}: CORRUPT_SEGMENT names the file`);
    eq(details.position, w.fault!.position, `${story}: CORRUPT_SEGMENT names the byte`);
    if (!/verify/.test((got as Error).message)) fail(`${story}: CORRUPT_SEGMENT should point to verify: ${(got as Error).message}`);
    eq(statSync(path).size, size, `${story}: a refused open truncates nothing`);
    // What an operator does after `relaylog verify`: cut the file at the fault, then open.
    truncateSync(path, w.fault!.position);
    size = w.fault!.position;
  }
  const expected_truncated = size - w.end;
  try {
    await h.open();
  } catch (e) {
    fail(`${story}: reopening after the crash failed: ${errText(e)}`);
  }
  const q = h.p;
  if (q.recovered_truncated_bytes > 0) count('crash.truncated');
  if (h.fsync.policy === 'always' && q.highWatermark < acked_hw) {
    fail(`${story}: acknowledged offsets below ${acked_hw} were lost under fsync=always (high watermark ${q.highWatermark})`);
  }
  if (w.next < acked_hw && h.fsync.policy === 'always') fail(`${story}: test bug: damage reached acknowledged bytes`);
  eq(q.highWatermark, w.next, `${story}: high watermark after recovery = end of the sound prefix`);
  eq(q.recovered_truncated_bytes, expected_truncated, `${story}: bytes truncated by recovery`);
  eq(q.logStartOffset, m.log_start, `${story}: log start offset (crashes never move it)`);

  // The model becomes: everything before the active segment, then the surviving batches.
  m.cutTo(Math.min(active.base_offset, m.hw));
  // Late appends that landed in a segment sealed (fsynced) while the crash was under way.
  while (m.hw < active.base_offset) {
    const mb = candidates.get(m.hw);
    if (!mb) fail(`${story}: test bug: no late append at ${m.hw}`);
    m.push(mb);
  }
  for (const wb of w.batches) {
    let e = active_layout.get(wb.position);
    const partial = torn_partial.get(wb.position);
    if (!e && partial && partial.bytes.length === wb.size && partial.bytes.equals(damaged.subarray(wb.position, wb.position + wb.size))) {
      count('crash.torn_completed_by_later_bytes');
      e = { mb: partial, size: wb.size };
    }
    if (!e || e.size !== wb.size) fail(`${story}: test bug: a sound batch at byte ${wb.position} that was never written there`);
    const bytes = Buffer.from(e.mb.bytes);
    // Only the leader epoch (outside the CRC, like the offset) can be flipped without detection.
    for (const f of flips) if (f.position >= wb.position && f.position < wb.position + wb.size) bytes[f.position - wb.position] = bytes[f.position - wb.position]! ^ f.mask;
    if (!bytes.equals(damaged.subarray(wb.position, wb.position + wb.size))) fail(`${story}: test bug: model bytes of batch ${wb.base}`);
    m.push({ ...e.mb, bytes });
  }
}

async function step(h: Harness, c: Cmd): Promise<void> {
  count(`step.${c.t}`);
  switch (c.t) {
    case 'append':
      return doAppend(h, c);
    case 'read':
      return doRead(h, c);
    case 'time':
      return doTime(h, c);
    case 'roll':
      return doRoll(h);
    case 'retention':
      return doRetention(h, c);
    case 'rebuild':
      return doRebuild(h);
    case 'reopen':
      return doReopen(h, c);
    case 'crash':
      return doCrash(h, c);
  }
}

async function runSequence(cfg: SeqConfig, fsync: FsyncPolicy, cmds: Cmd[]): Promise<void> {
  const { dir, cleanup } = tempDir('relaylog-segprop-');
  const h = new Harness(dir, cfg, fsync);
  try {
    await h.open();
    await h.store!.createTopic(TOPIC, {
      segment_bytes: cfg.segment_bytes,
      segment_ms: cfg.segment_ms,
      retention_bytes: cfg.retention_bytes,
      retention_ms: cfg.retention_ms,
      fsync,
    });
    await checkAll(h);
    for (const c of cmds) {
      count('steps');
      h.step_no++;
      try {
        const t0 = performance.now();
        await step(h, c);
        const t1 = performance.now();
        await checkAll(h);
        count(`ms.${c.t}`, Math.round(t1 - t0));
        count('ms.checkAll', Math.round(performance.now() - t1));
      } catch (e) {
        if (e instanceof Error) e.message = `step ${h.step_no} (${c.t}): ${e.message}`;
        throw e;
      }
    }
    count('sequences');
    count('segments.final', h.p.segmentInfo().length);
    count('offsets.final', h.model.hw);
    count('reads.memory', h.p.io.memory_reads);
    count('reads.disk', h.p.io.disk_reads);
  } finally {
    await h.shutdown().catch(() => undefined);
    cleanup();
  }
}

async function assertProperty<Ts extends [unknown, ...unknown[]]>(prop: fc.IAsyncProperty<Ts>, runs: number): Promise<void> {
  try {
    await fc.assert(prop, {
      seed,
      numRuns: runs,
      ...(fcPath !== undefined ? { path: fcPath } : {}),
      // One sequence that hangs fails instead of stalling the suite.
      timeout: 60_000,
      // Bounds shrinking (a failure is then reported shrunk as far as it got); a run that is merely
      // slow fails too rather than silently doing fewer sequences than asked.
      interruptAfterTimeLimit: 240_000,
      markInterruptAsFailure: true,
    });
  } catch (e) {
    if (e instanceof Error) e.message = `Replay with: SEED=${seed} npx vitest run ${FILE}\n${e.message}`;
    throw e;
  }
}

if (process.env.STATS) afterAll(() => console.info(JSON.stringify(stats, null, 1)));
console.info(`[${FILE}] seed ${seed} (replay: SEED=${seed} npx vitest run ${FILE})`);

test('segment store vs model, fsync=always: every acknowledged batch survives every crash', async () => {
  await assertProperty(
    fc.asyncProperty(configArb, fc.array(cmdArb, { minLength: 1, maxLength: 40, size: 'max' }), (cfg, cmds) => runSequence(cfg, { policy: 'always' }, cmds)),
    numRuns,
  );
}, 300_000);

test('segment store vs model, fsync=never|interval: after a crash the log is the sound prefix and appends continue densely', async () => {
  await assertProperty(
    fc.asyncProperty(configArb, weakFsyncArb, fc.array(cmdArb, { minLength: 1, maxLength: 40, size: 'max' }), (cfg, fsync, cmds) => runSequence(cfg, fsync, cmds)),
    Math.max(1, Math.round(numRuns * 0.3)),
  );
}, 300_000);
