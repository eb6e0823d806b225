/**
 * Turns an end-to-end results file (bench/results/<date>-e2e.json, written by run.ts) into the
 * Markdown tables (bench/results/<date>-e2e.md) and one SVG chart per scenario
 * (docs/img/compare-*.svg). run.ts calls it at the end of a run; it also runs on its own to
 * re-render a saved run without measuring again:
 *
 *   node dist/bench/e2e/report.js bench/results/2026-11-25-e2e.json [chart dir, default docs/img]
 *   node dist/bench/e2e/report.js bench/results/2026-11-25-e2e.json --doc    (the condensed tables of docs/benchmarks.md)
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { barChartSvg, type BarChartSpec } from './svg-chart.js';

/** Per-round values (null: that round did not produce the figure). */
export type Values = Array<number | null>;

export interface Report {
  date: string;
  runs: number;
  params: {
    replay_bytes: number;
    sizes: Array<{ label: string; bytes: number }>;
    latency: Record<string, { rate_per_s: number; duration_ms: number }>;
    warmup_ms: number;
    fanout: { subscribers: number[]; duration_ms: number; rate_per_s: Record<string, number> };
    ack_under_replay: { readers: number; replay_bytes: number; rate_per_s: number; duration_ms: number };
    scenario_max_ms: number;
  };
  machine: Record<string, string | number>;
  limits: Record<string, Values>;
  systems: Array<{ key: string; name: string; short: string; durability: string; figures: Record<string, Values> }>;
  failures: Array<{ system: string; round: number; scenario: string; error: string }>;
}

export interface Stat {
  median: number;
  min: number;
  max: number;
  n: number;
}

export function stat(values: Values | undefined): Stat | null {
  const s = (values ?? []).filter((v): v is number => v !== null && Number.isFinite(v)).sort((a, b) => a - b);
  if (s.length === 0) return null;
  const mid = s.length / 2;
  const median = s.length % 2 ? s[Math.floor(mid)]! : (s[mid - 1]! + s[mid]!) / 2;
  return { median, min: s[0]!, max: s[s.length - 1]!, n: s.length };
}

const KIB = (label: string) => (label === '1k' ? '1 KiB' : label === '64k' ? '64 KiB' : label);

interface FigureMeta {
  label: string;
  unit: string;
  lower_better: boolean;
  /** The limit this figure is compared with (a key of report.limits), if any. */
  limit: string | null;
}

/** What each figure key means, its unit and the physical limit it is held against. */
export function figureMeta(key: string): FigureMeta {
  let m: RegExpMatchArray | null;
  if ((m = /^produce_(\w+?)_(mb_per_s|records_per_s|server_cpu_ms_per_mb)$/.exec(key))) {
    const [, sz, what] = m;
    if (what === 'mb_per_s') return { label: `produce ${KIB(sz!)}, MB/s`, unit: 'MB/s', lower_better: false, limit: 'disk_write_mb_per_s' };
    if (what === 'records_per_s') return { label: `produce ${KIB(sz!)}, records/s`, unit: 'records/s', lower_better: false, limit: null };
    return { label: `produce ${KIB(sz!)}, server CPU ms per MB`, unit: 'ms/MB', lower_better: true, limit: null };
  }
  if ((m = /^replay_(start|mid)_(\w+?)_(mb_per_s|server_cpu_ms_per_mb)$/.exec(key))) {
    const [, from, sz, what] = m;
    const where = from === 'start' ? 'from the start' : 'from a timestamp in the middle';
    if (what === 'mb_per_s') return { label: `replay ${KIB(sz!)} ${where}, MB/s`, unit: 'MB/s', lower_better: false, limit: 'tcp_mb_per_s' };
    return { label: `replay ${KIB(sz!)} ${where}, server CPU ms per MB`, unit: 'ms/MB', lower_better: true, limit: null };
  }
  if ((m = /^latency_(\w+?)_(p50|p99|p999)_ms$/.exec(key))) {
    const [, sz, p] = m;
    return { label: `produce→consume ${KIB(sz!)} ${p === 'p999' ? 'p99.9' : p!}, ms`, unit: 'ms', lower_better: true, limit: `tcp_latency_${sz}_${p}_ms` };
  }
  if ((m = /^latency_(\w+?)_delivered$/.exec(key))) return { label: `produce→consume ${KIB(m[1]!)}, fraction delivered`, unit: '', lower_better: false, limit: null };
  if ((m = /^ack_(1k|64k)_(p50|p99)_ms$/.exec(key))) return { label: `produce ack ${KIB(m[1]!)} at the fixed rate ${m[2]}, ms`, unit: 'ms', lower_better: true, limit: `tcp_latency_${m[1]}_${m[2]}_ms` };
  if ((m = /^fanout(\d+)_(\w+?)_(egress_mb_per_s|lag_p50_ms|lag_p99_ms|worst_sub_p99_ms|delivered)$/.exec(key))) {
    const [, n, sz, what] = m;
    const head = `fan-out ${KIB(sz!)} to ${n}`;
    if (what === 'egress_mb_per_s') return { label: `${head}: total egress, MB/s`, unit: 'MB/s', lower_better: false, limit: 'tcp_mb_per_s' };
    if (what === 'lag_p50_ms') return { label: `${head}: lag p50 (all subscribers), ms`, unit: 'ms', lower_better: true, limit: `tcp_latency_${sz}_p50_ms` };
    if (what === 'lag_p99_ms') return { label: `${head}: lag p99 (all subscribers), ms`, unit: 'ms', lower_better: true, limit: `tcp_latency_${sz}_p99_ms` };
    if (what === 'worst_sub_p99_ms') return { label: `${head}: worst subscriber's lag p99, ms`, unit: 'ms', lower_better: true, limit: `tcp_latency_${sz}_p99_ms` };
    return { label: `${head}: fraction delivered`, unit: '', lower_better: false, limit: null };
  }
  if ((m = /^ack_under_replay(\d+)_(p50|p99)_ms$/.exec(key))) return { label: `produce ack ${m[2]} while ${m[1]} readers replay, ms`, unit: 'ms', lower_better: true, limit: `tcp_latency_1k_${m[2]}_ms` };
  return { label: key, unit: '', lower_better: false, limit: null };
}

const LIMIT_LABELS: Record<string, string> = {
  disk_write_mb_per_s: 'raw disk write, 1 MiB writes, one fdatasync at the end, MB/s',
  disk_write_sync_mb_per_s: 'raw disk write, fdatasync after every 1 MiB, MB/s',
  disk_read_mb_per_s: 'raw disk read, 1 MiB reads, page cache warm, MB/s',
  tcp_mb_per_s: 'loopback TCP, one connection between two processes, MB/s',
};
function limitLabel(key: string): string {
  const m = /^tcp_latency_(\w+?)_(p50|p99|p999)_ms$/.exec(key);
  if (m) return `loopback TCP one-way latency over 2 hops (via a forwarding process), ${KIB(m[1]!)} ${m[2] === 'p999' ? 'p99.9' : m[2]}, ms`;
  return LIMIT_LABELS[key] ?? key;
}

function fmt(v: number): string {
  const a = Math.abs(v);
  if (a >= 1000) return Math.round(v).toLocaleString('en-US');
  if (a >= 100) return v.toFixed(0);
  if (a >= 10) return v.toFixed(1);
  if (a >= 1) return v.toFixed(2);
  return v.toPrecision(2);
}
const fmtStat = (s: Stat | null, runs: number) => (s ? `${fmt(s.median)} (${fmt(s.min)}–${fmt(s.max)})${s.n < runs ? ` n=${s.n}` : ''}` : '—');
const ratio = (a: Stat | null, b: Stat | null) => (a && b && b.median !== 0 ? `${(a.median / b.median).toFixed(2)}×` : '—');

const SECTIONS: Array<{ title: string; test: RegExp; note: string }> = [
  { title: '(1) Durable produce throughput', test: /^produce_/, note: 'Each system as fast as its client allows (relaylog ~1 MiB batches, 8 in flight; Redis pipelines of 256 XADD; JetStream 512 publishes in flight). Limit: raw sequential disk write.' },
  { title: '(2) Replay from the start and from a timestamp in the middle', test: /^replay_/, note: 'The data set produced in (1), read back by one reader. Limit: loopback TCP (the replays come from memory or the page cache; raw disk read is in the limits table).' },
  { title: '(3) Produce→consume latency at a fixed rate, one live consumer', test: /^(latency|ack)_(1k|64k)_/, note: 'HDR histograms; limit: the same records at the same rate over two loopback TCP hops through a forwarding process. Latency ratios: above 1× is slower.' },
  { title: '(4) Live fan-out: one producer at a fixed rate, N subscribers', test: /^fanout/, note: 'Egress: payload bytes delivered to all subscribers from the first send to the last delivery. Lag: produce→consume latency of every delivery. Limits: loopback TCP throughput; latency floor measured at the (3) rate.' },
  { title: 'Producer ack latency while readers replay', test: /^ack_under_replay/, note: '' },
];

export function renderMarkdown(r: Report): string {
  const relaylogs = r.systems.filter((s) => s.key.startsWith('relaylog'));
  const peers = r.systems.filter((s) => !s.key.startsWith('relaylog'));
  const lines: string[] = [];
  lines.push(`# relaylog vs peers, ${r.date}`, '');
  lines.push(`Rounds: ${r.runs}; every figure is the median of the rounds (min–max; n=… when a round is missing). Data set per record size: ${fmt(r.params.replay_bytes / 1048576)} MiB.`);
  lines.push(`Machine: ${Object.entries(r.machine).map(([k, v]) => `${k} ${v}`).join(', ')}.`, '');
  lines.push('## Physical limits (measured at the start of every round)', '', '| limit | median (min–max) |', '|---|---|');
  for (const [k, v] of Object.entries(r.limits)) lines.push(`| ${limitLabel(k)} | ${fmtStat(stat(v), r.runs)} |`);
  lines.push('');
  const keys = [...new Set(r.systems.flatMap((s) => Object.keys(s.figures)))];
  const ratioHeads = relaylogs.flatMap((rl) => [...peers.map((p) => `${rl.short} ÷ ${p.short}`), `${rl.short} ÷ limit`]);
  for (const sec of SECTIONS) {
    const rows = keys.filter((k) => sec.test.test(k));
    if (rows.length === 0) continue;
    lines.push(`## ${sec.title}`, '');
    if (sec.note) lines.push(sec.note, '');
    lines.push(`| figure | ${r.systems.map((s) => s.short).join(' | ')} | limit | ${ratioHeads.join(' | ')} |`);
    lines.push(`|---|${r.systems.map(() => '---|').join('')}---|${ratioHeads.map(() => '---|').join('')}`);
    for (const k of rows) {
      const meta = figureMeta(k);
      const lim = meta.limit ? stat(r.limits[meta.limit]) : null;
      const cells = r.systems.map((s) => fmtStat(stat(s.figures[k]), r.runs));
      const ratios = relaylogs.flatMap((rl) => {
        const a = stat(rl.figures[k]);
        return [...peers.map((p) => ratio(a, stat(p.figures[k]))), lim ? ratio(a, lim) : '—'];
      });
      lines.push(`| ${meta.label} | ${cells.join(' | ')} | ${lim ? fmt(lim.median) : '—'} | ${ratios.join(' | ')} |`);
    }
    lines.push('');
  }
  lines.push('## Durability of an acknowledged produce', '');
  for (const s of r.systems) lines.push(`- ${s.short} (${s.name}): ${s.durability}`);
  if (r.failures.length > 0) {
    lines.push('', '## Failures (the figures of these rounds are missing)', '');
    for (const f of r.failures) lines.push(`- round ${f.round + 1}, ${f.system}, ${f.scenario}: ${f.error.replace(/\s+/g, ' ').slice(0, 600)}`);
  }
  return lines.join('\n') + '\n';
}

/**
 * The same figures as renderMarkdown, condensed for docs/benchmarks.md: one table per scenario,
 * each relaylog ratio cell holding both variants ("fsync 1 s / fsync=always").
 */
export function renderDocTables(r: Report): string {
  const rl = ['relaylog-interval', 'relaylog'].map((k) => r.systems.find((s) => s.key === k)).filter((s): s is Report['systems'][number] => s !== undefined);
  const peers = r.systems.filter((s) => !s.key.startsWith('relaylog'));
  const cols = [...rl, ...peers];
  const lines: string[] = [];
  const keys = [...new Set(r.systems.flatMap((s) => Object.keys(s.figures)))];
  const both = (f: (s: Report['systems'][number]) => string) => rl.map(f).join(' / ');
  for (const sec of SECTIONS) {
    const rows = keys.filter((k) => sec.test.test(k) && !/delivered$/.test(k));
    if (rows.length === 0) continue;
    lines.push(`**${sec.title}**`, '');
    lines.push(`| figure | ${cols.map((s) => s.short).join(' | ')} | limit | ${peers.map((p) => `÷ ${p.short}`).join(' | ')} | ÷ limit |`);
    lines.push(`|---|${cols.map(() => '---|').join('')}---|${peers.map(() => '---|').join('')}---|`);
    for (const k of rows) {
      const meta = figureMeta(k);
      const lim = meta.limit ? stat(r.limits[meta.limit]) : null;
      const cells = cols.map((s) => fmtStat(stat(s.figures[k]), r.runs));
      const ratios = peers.map((p) => both((s) => ratio(stat(s.figures[k]), stat(p.figures[k]))));
      lines.push(`| ${meta.label} | ${cells.join(' | ')} | ${lim ? fmt(lim.median) : '—'} | ${ratios.join(' | ')} | ${lim ? both((s) => ratio(stat(s.figures[k]), lim)) : '—'} |`);
    }
    lines.push('');
  }
  return lines.join('\n');
}

type Series = BarChartSpec['series'][number];
const toBar = (s: Stat | null) => (s ? { median: s.median, min: s.min, max: s.max } : null);

/** One chart per scenario, named compare-<scenario>.svg. */
export function renderCharts(r: Report): Record<string, string> {
  const sizes = r.params.sizes.map((s) => s.label);
  const sub = `${r.date.slice(0, 10)}, ${fmt(r.params.replay_bytes / 1048576)} MiB per data set, medians of ${r.runs} rounds, 2 shared cores`;
  const sys = (keys: string[]): Series[] => r.systems.map((s) => ({ name: s.short, values: keys.map((k) => toBar(stat(s.figures[k]))) }));
  const lim = (name: string, keys: string[]): Series => ({ name, dashed: true, values: keys.map((k) => toBar(stat(r.limits[k]))) });
  const charts: Record<string, string> = {};

  charts['compare-produce.svg'] = barChartSvg({
    title: '(1) Durable produce throughput',
    subtitle: sub,
    y_label: 'MB/s (log scale)',
    log: true,
    categories: sizes.map((s) => `${KIB(s)} records`),
    series: [...sys(sizes.map((s) => `produce_${s}_mb_per_s`)), lim('raw disk write (limit)', sizes.map(() => 'disk_write_mb_per_s'))],
  });

  const replayKeys = sizes.flatMap((s) => [`replay_start_${s}_mb_per_s`, `replay_mid_${s}_mb_per_s`]);
  charts['compare-replay.svg'] = barChartSvg({
    title: '(2) Replay from the start / from a timestamp in the middle',
    subtitle: sub,
    y_label: 'MB/s',
    categories: sizes.flatMap((s) => [`${KIB(s)}, start`, `${KIB(s)}, mid time`]),
    series: [...sys(replayKeys), lim('loopback TCP (limit)', replayKeys.map(() => 'tcp_mb_per_s'))],
  });

  const pcts = ['p50', 'p99', 'p999'];
  const latKeys = sizes.flatMap((s) => pcts.map((p) => `latency_${s}_${p}_ms`));
  const rates = sizes.map((s) => `${KIB(s)} at ${r.params.latency[s]?.rate_per_s}/s`).join(', ');
  charts['compare-latency.svg'] = barChartSvg({
    title: `(3) Produce→consume latency, fixed rate (${rates})`,
    subtitle: sub,
    y_label: 'ms (log scale)',
    log: true,
    categories: sizes.flatMap((s) => pcts.map((p) => `${KIB(s)} ${p === 'p999' ? 'p99.9' : p}`)),
    series: [...sys(latKeys), lim('loopback TCP, 2 hops (floor)', sizes.flatMap((s) => pcts.map((p) => `tcp_latency_${s}_${p}_ms`)))],
  });

  const fan = sizes.flatMap((s) => r.params.fanout.subscribers.map((n) => ({ s, n })));
  const offered: Series = {
    name: 'offered: N × produce rate',
    dashed: true,
    values: fan.map(({ s, n }) => {
      const size = r.params.sizes.find((x) => x.label === s)!.bytes;
      const v = ((r.params.fanout.rate_per_s[s] ?? 0) * size * n) / 1048576;
      return { median: v, min: v, max: v };
    }),
  };
  const fanRates = sizes.map((s) => `${KIB(s)} at ${r.params.fanout.rate_per_s[s]}/s`).join(', ');
  charts['compare-fanout.svg'] = barChartSvg({
    title: `(4) Live fan-out: total egress (${fanRates})`,
    subtitle: sub,
    y_label: 'MB/s delivered to all subscribers',
    categories: fan.map(({ s, n }) => `${KIB(s)} × ${n}`),
    series: [...sys(fan.map(({ s, n }) => `fanout${n}_${s}_egress_mb_per_s`)), offered],
  });
  charts['compare-fanout-lag.svg'] = barChartSvg({
    title: `(4) Live fan-out: per-subscriber lag (${fanRates})`,
    subtitle: sub,
    y_label: 'ms (log scale)',
    log: true,
    categories: fan.flatMap(({ s, n }) => [`${s}×${n} p50`, `${s}×${n} p99`]),
    series: sys(fan.flatMap(({ s, n }) => [`fanout${n}_${s}_lag_p50_ms`, `fanout${n}_${s}_lag_p99_ms`])),
  });

  const limKeys = ['disk_write_mb_per_s', 'disk_write_sync_mb_per_s', 'disk_read_mb_per_s', 'tcp_mb_per_s'];
  charts['compare-limits.svg'] = barChartSvg({
    title: '(6) Physical limits, measured in every round of the same run',
    subtitle: sub,
    y_label: 'MB/s (log scale)',
    log: true,
    categories: ['disk write', 'disk write, sync/MiB', 'disk read (warm)', 'loopback TCP'],
    series: [{ name: 'median of rounds (min–max)', values: limKeys.map((k) => toBar(stat(r.limits[k]))) }],
  });
  return charts;
}

/** Writes <json>.md beside the results file and the charts into `chart_dir`. */
export function writeReport(r: Report, json_file: string, chart_dir: string): string {
  const md = renderMarkdown(r);
  writeFileSync(json_file.replace(/\.json$/, '.md'), md);
  mkdirSync(chart_dir, { recursive: true });
  for (const [name, svg] of Object.entries(renderCharts(r))) writeFileSync(join(chart_dir, name), svg);
  return md;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const file = process.argv[2];
  if (!file) {
    console.error('usage: node dist/bench/e2e/report.js bench/results/<date>-e2e.json [chart dir]');
    process.exit(2);
  }
  const report = JSON.parse(readFileSync(file, 'utf8')) as Report;
  if (process.argv[3] === '--doc') console.log(renderDocTables(report));
  else console.log(writeReport(report, file, process.argv[3] ?? 'docs/img'));
}
