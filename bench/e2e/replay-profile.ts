/**
 * The small-record replay of bench:compare (scenario 2, 1 KiB records) on its own, or with
 * BENCH_PHASE=produce its durable produce (scenario 1), to profile it and to compare builds of
 * relaylog under the same harness, alternating them round by round:
 *
 *   node dist/bench/e2e/replay-profile.js [--cpu-prof DIR] [BIN ...]
 *
 * BIN: a build's bin/relaylog.js (default: this tree's). Each round starts each build's server
 * (fsync every 1 s, as the Redis comparison), produces BENCH_REPLAY_BYTES (default 1 GiB) of
 * BENCH_RECORD_BYTES (default 1024) records, replays them from the start through the harness's
 * reader (4 MiB frames, every record decoded), and reports MB/s and the server's CPU ms per MB
 * replayed (BENCH_PHASE=produce: produce MB/s and CPU per MB produced; BENCH_FSYNC=always for
 * fsync on every batch). With --cpu-prof the servers run under `node --cpu-prof` and the hottest
 * functions of the measured phase (only its samples) are printed per build.
 */
import { mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseBytesArg } from './bytes.js';
import { RelaylogSystem } from './relaylog.js';
import { produceDataset, replayThroughput } from './scenarios.js';

const RUNS = Math.max(1, Number(process.env.BENCH_RUNS || 3));
const BYTES = parseBytesArg(process.env.BENCH_REPLAY_BYTES || '1GiB');
const RECORD = Number(process.env.BENCH_RECORD_BYTES || 1024);
const PHASE = process.env.BENCH_PHASE === 'produce' ? 'produce' : 'replay';
const FSYNC = process.env.BENCH_FSYNC === 'always' ? 'always' : 'interval';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}
interface Profile {
  nodes: ProfileNode[];
  startTime: number;
  samples: number[];
  timeDeltas: number[];
}

/** Self time per function within [from_us, to_us] of the monotonic clock (the profile's own). */
function hottest(p: Profile, from_us: number, to_us: number, top = 12): string[] {
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const self = new Map<string, number>();
  let total = 0;
  let ts = p.startTime;
  for (let i = 0; i < p.samples.length; i++) {
    ts += p.timeDeltas[i] ?? 0;
    if (ts < from_us || ts > to_us) continue;
    const n = byId.get(p.samples[i]!)!;
    const f = n.callFrame;
    const where = f.url ? `${f.url.replace(/.*node_modules\//, '').replace(/.*\/dist\//, '')}:${f.lineNumber + 1}` : '';
    const k = `${f.functionName || '(anonymous)'} ${where}`.trim();
    const dt = p.timeDeltas[i] ?? 0;
    self.set(k, (self.get(k) ?? 0) + dt);
    total += dt;
  }
  return [...self]
    .sort((a, b) => b[1] - a[1])
    .slice(0, top)
    .map(([k, t]) => `${((100 * t) / total).toFixed(1).padStart(5)}%  ${(t / 1000).toFixed(0).padStart(6)} ms  ${k}`);
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  let prof_dir: string | null = null;
  if (args[0] === '--cpu-prof') {
    prof_dir = resolve(args[1]!);
    args.splice(0, 2);
  }
  const bins = args.length > 0 ? args.map((a) => resolve(a)) : [undefined];
  const count = Math.round(BYTES / RECORD);
  const results = new Map<string, { mb_per_s: number[]; cpu: number[] }>();
  for (let r = 0; r < RUNS; r++) {
    for (const [i, bin] of bins.entries()) {
      const label = bin ?? 'this tree';
      const dir = prof_dir ? join(prof_dir, `build${i}-round${r + 1}`) : null;
      if (dir) mkdirSync(dir, { recursive: true });
      const sys = new RelaylogSystem(FSYNC, { ...(bin ? { bin } : {}), ...(dir ? { node_args: ['--cpu-prof', `--cpu-prof-dir=${dir}`] } : {}) });
      await sys.start();
      let from_us = 0;
      let to_us = 0;
      try {
        await sys.createTopic('replay');
        if (PHASE === 'produce') from_us = Number(process.hrtime.bigint() / 1000n);
        const prod = await produceDataset(sys, 'replay', count, RECORD);
        if (PHASE === 'replay') from_us = Number(process.hrtime.bigint() / 1000n);
        const rep = PHASE === 'produce' ? prod : await replayThroughput(sys, 'replay', count);
        to_us = Number(process.hrtime.bigint() / 1000n);
        const e = results.get(label) ?? { mb_per_s: [], cpu: [] };
        e.mb_per_s.push(rep.mb_per_s);
        e.cpu.push(rep.server_cpu_ms_per_mb);
        results.set(label, e);
        console.log(`round ${r + 1}, ${label}: ${PHASE} ${rep.mb_per_s.toFixed(0)} MB/s, server CPU ${rep.server_cpu_ms_per_mb.toFixed(2)} ms/MB`);
      } finally {
        await sys.stop();
      }
      if (dir) {
        // The server writes its profile as it exits; only the replay's samples are counted.
        const file = readdirSync(dir).find((f) => f.endsWith('.cpuprofile'));
        if (file) console.log(`  hottest (self time) during the ${PHASE}, ${join(dir, file)}:\n    ${hottest(JSON.parse(readFileSync(join(dir, file), 'utf8')) as Profile, from_us, to_us).join('\n    ')}`);
      }
    }
  }
  const med = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  console.log(`\n${PHASE}, fsync ${FSYNC}: ${(BYTES / 1048576).toFixed(0)} MiB of ${RECORD}-byte records, medians of ${RUNS} rounds (min–max):`);
  for (const [label, e] of results) {
    console.log(
      `  ${label}: ${PHASE} ${med(e.mb_per_s).toFixed(0)} MB/s (${Math.min(...e.mb_per_s).toFixed(0)}–${Math.max(...e.mb_per_s).toFixed(0)}), server CPU ${med(e.cpu).toFixed(2)} ms/MB (${Math.min(...e.cpu).toFixed(2)}–${Math.max(...e.cpu).toFixed(2)})`,
    );
  }
}

await main();
process.exit(0);
