/** A small line chart as standalone SVG text (axes, ticks, one polyline per series, a legend). */
export interface ChartSpec {
  title: string;
  x_label: string;
  y_label: string;
  series: Array<{ name: string; points: Array<[number, number]> }>;
}

const COLORS = ['#d62728', '#1f77b4', '#2ca02c', '#9467bd'];
const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

function ticks(max: number, count = 5): number[] {
  const raw = max / count;
  const mag = 10 ** Math.floor(Math.log10(raw || 1));
  const step = [1, 2, 5, 10].map((m) => m * mag).find((s) => s >= raw) ?? raw;
  const out: number[] = [];
  for (let v = 0; v <= max + 1e-9; v += step) out.push(Number(v.toPrecision(6)));
  return out;
}

export function lineChartSvg(spec: ChartSpec): string {
  const W = 640;
  const H = 400;
  const L = 70;
  const R = 20;
  const T = 40;
  const B = 60;
  const xs = spec.series.flatMap((s) => s.points.map((p) => p[0]));
  const ys = spec.series.flatMap((s) => s.points.map((p) => p[1]));
  const x_max = Math.max(...xs, 1);
  const y_ticks = ticks(Math.max(...ys, 1) * 1.1);
  const y_max = y_ticks[y_ticks.length - 1]!;
  const px = (x: number) => L + (x / x_max) * (W - L - R);
  const py = (y: number) => H - B - (y / y_max) * (H - T - B);
  const parts: string[] = [];
  parts.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" font-family="sans-serif" font-size="12">`);
  parts.push(`<rect width="${W}" height="${H}" fill="white"/>`);
  parts.push(`<text x="${W / 2}" y="22" text-anchor="middle" font-size="15">${esc(spec.title)}</text>`);
  for (const y of y_ticks) {
    parts.push(`<line x1="${L}" x2="${W - R}" y1="${py(y)}" y2="${py(y)}" stroke="#ddd"/>`);
    parts.push(`<text x="${L - 6}" y="${py(y) + 4}" text-anchor="end">${y}</text>`);
  }
  for (const x of [...new Set(xs)].sort((a, b) => a - b)) {
    parts.push(`<text x="${px(x)}" y="${H - B + 18}" text-anchor="middle">${x}</text>`);
  }
  parts.push(`<line x1="${L}" x2="${W - R}" y1="${H - B}" y2="${H - B}" stroke="black"/>`);
  parts.push(`<line x1="${L}" x2="${L}" y1="${T}" y2="${H - B}" stroke="black"/>`);
  parts.push(`<text x="${(L + W - R) / 2}" y="${H - 18}" text-anchor="middle">${esc(spec.x_label)}</text>`);
  parts.push(`<text x="18" y="${(T + H - B) / 2}" text-anchor="middle" transform="rotate(-90 18 ${(T + H - B) / 2})">${esc(spec.y_label)}</text>`);
  spec.series.forEach((s, i) => {
    const color = COLORS[i % COLORS.length]!;
    parts.push(`<polyline fill="none" stroke="${color}" stroke-width="2" points="${s.points.map(([x, y]) => `${px(x).toFixed(1)},${py(y).toFixed(1)}`).join(' ')}"/>`);
    for (const [x, y] of s.points) parts.push(`<circle cx="${px(x).toFixed(1)}" cy="${py(y).toFixed(1)}" r="3" fill="${color}"/>`);
    parts.push(`<rect x="${L + 12}" y="${T + 8 + i * 18}" width="12" height="3" fill="${color}"/>`);
    parts.push(`<text x="${L + 30}" y="${T + 13 + i * 18}">${esc(s.name)}</text>`);
  });
  parts.push('</svg>');
  return parts.join('\n') + '\n';
}

/**
 * Grouped bars as standalone SVG text: one group per category (x axis), one bar per series in each
 * group with a whisker from `min` to `max` (the spread of the runs), values printed above the bars.
 * `log: true` draws the y axis in powers of ten (latencies spanning 0.1 ms to seconds).
 */
export interface BarChartSpec {
  title: string;
  subtitle?: string;
  y_label: string;
  categories: string[];
  series: Array<{ name: string; values: Array<{ median: number; min: number; max: number } | null>; dashed?: boolean }>;
  log?: boolean;
}

const BAR_COLORS = ['#d62728', '#ff7f0e', '#1f77b4', '#2ca02c', '#9467bd', '#8c564b'];
const LIMIT_COLOR = '#7f7f7f';

function fmtValue(v: number): string {
  if (v >= 100) return Math.round(v).toLocaleString('en-US');
  if (v >= 10) return v.toFixed(1);
  if (v >= 1) return v.toFixed(2);
  return v.toPrecision(2);
}

export function barChartSvg(spec: BarChartSpec): string {
  const group_w = Math.max(90, 22 * spec.series.length + 24);
  const L = 70;
  const R = 20;
  const T = 54 + 16 * Math.ceil(spec.series.length / 3);
  const B = 58;
  const W = Math.max(720, L + R + group_w * spec.categories.length);
  const H = T + 300 + B;
  const vals = spec.series.flatMap((s) => s.values.filter((v): v is NonNullable<typeof v> => v !== null && v.max > 0));
  const top = Math.max(...vals.map((v) => v.max), 1e-9);
  let py: (y: number) => number;
  let y_ticks: number[];
  if (spec.log) {
    const lo = Math.floor(Math.log10(Math.min(...vals.map((v) => Math.max(v.min, 1e-6)), top)));
    const hi = Math.ceil(Math.log10(top * 2.5)); // room for the value written above the tallest bar
    y_ticks = Array.from({ length: hi - lo + 1 }, (_, i) => Number((10 ** (lo + i)).toPrecision(6)));
    py = (y) => H - B - ((Math.log10(Math.max(y, 10 ** lo)) - lo) / (hi - lo || 1)) * (H - T - B);
  } else {
    // Room for the value written above the tallest bar; the axis ends on a whole step above it.
    y_ticks = ticks(top * 1.3);
    const step = y_ticks.length > 1 ? y_ticks[1]! - y_ticks[0]! : top * 1.3;
    while (y_ticks[y_ticks.length - 1]! < top * 1.3) y_ticks.push(Number((y_ticks[y_ticks.length - 1]! + step).toPrecision(6)));
    const y_max = y_ticks[y_ticks.length - 1]!;
    py = (y) => H - B - (y / y_max) * (H - T - B);
  }
  const parts: string[] = [];
  parts.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" font-family="sans-serif" font-size="12">`);
  parts.push(`<rect width="${W}" height="${H}" fill="white"/>`);
  parts.push(`<text x="${W / 2}" y="20" text-anchor="middle" font-size="15">${esc(spec.title)}</text>`);
  if (spec.subtitle) parts.push(`<text x="${W / 2}" y="37" text-anchor="middle" font-size="11" fill="#555">${esc(spec.subtitle)}</text>`);
  for (const y of y_ticks) {
    parts.push(`<line x1="${L}" x2="${W - R}" y1="${py(y).toFixed(1)}" y2="${py(y).toFixed(1)}" stroke="#ddd"/>`);
    parts.push(`<text x="${L - 6}" y="${(py(y) + 4).toFixed(1)}" text-anchor="end">${y.toLocaleString('en-US')}</text>`);
  }
  parts.push(`<line x1="${L}" x2="${W - R}" y1="${H - B}" y2="${H - B}" stroke="black"/>`);
  parts.push(`<line x1="${L}" x2="${L}" y1="${T}" y2="${H - B}" stroke="black"/>`);
  parts.push(`<text x="18" y="${(T + H - B) / 2}" text-anchor="middle" transform="rotate(-90 18 ${(T + H - B) / 2})">${esc(spec.y_label)}</text>`);
  const gw = (W - L - R) / spec.categories.length;
  const bw = Math.min(20, (gw - 16) / spec.series.length);
  spec.categories.forEach((c, ci) => {
    const gx = L + ci * gw;
    parts.push(`<text x="${(gx + gw / 2).toFixed(1)}" y="${H - B + 18}" text-anchor="middle">${esc(c)}</text>`);
    spec.series.forEach((s, si) => {
      const v = s.values[ci];
      const x = gx + (gw - bw * spec.series.length) / 2 + si * bw;
      const color = s.dashed ? LIMIT_COLOR : BAR_COLORS[si % BAR_COLORS.length]!;
      if (!v) {
        parts.push(`<text x="${(x + bw / 2).toFixed(1)}" y="${H - B - 4}" text-anchor="middle" font-size="10" fill="${color}">n/a</text>`);
        return;
      }
      const y0 = H - B;
      const y1 = py(v.median);
      const fill = s.dashed ? `fill="white" stroke="${color}" stroke-dasharray="4 2"` : `fill="${color}"`;
      parts.push(`<rect x="${(x + 1).toFixed(1)}" y="${y1.toFixed(1)}" width="${(bw - 2).toFixed(1)}" height="${Math.max(0, y0 - y1).toFixed(1)}" ${fill}/>`);
      if (v.max > v.min) {
        const cx = (x + bw / 2).toFixed(1);
        parts.push(`<line x1="${cx}" x2="${cx}" y1="${py(v.max).toFixed(1)}" y2="${py(v.min).toFixed(1)}" stroke="black"/>`);
        for (const e of [v.min, v.max]) parts.push(`<line x1="${(x + bw / 2 - 3).toFixed(1)}" x2="${(x + bw / 2 + 3).toFixed(1)}" y1="${py(e).toFixed(1)}" y2="${py(e).toFixed(1)}" stroke="black"/>`);
      }
      // The median, written upwards from just above the bar (or its whisker).
      const tx = (x + bw / 2 + 3).toFixed(1);
      const ty = (Math.min(py(v.max), y1) - 3).toFixed(1);
      parts.push(`<text x="${tx}" y="${ty}" font-size="9" transform="rotate(-90 ${tx} ${ty})">${fmtValue(v.median)}</text>`);
    });
  });
  spec.series.forEach((s, i) => {
    const lx = L + 8 + (i % 3) * ((W - L - R) / 3);
    const ly = 48 + Math.floor(i / 3) * 16;
    const color = s.dashed ? LIMIT_COLOR : BAR_COLORS[i % BAR_COLORS.length]!;
    const fill = s.dashed ? `fill="white" stroke="${color}" stroke-dasharray="3 2"` : `fill="${color}"`;
    parts.push(`<rect x="${lx}" y="${ly}" width="12" height="10" ${fill}/>`);
    parts.push(`<text x="${lx + 16}" y="${ly + 9}">${esc(s.name)}</text>`);
  });
  parts.push(`<text x="${W - R}" y="${H - 8}" text-anchor="end" font-size="10" fill="#555">bars: median of the runs; whiskers: min–max${spec.log ? '; log scale' : ''}</text>`);
  parts.push('</svg>');
  return parts.join('\n') + '\n';
}
