// Pure data work behind the charts (unit-tested in series.test.ts): wire series → numbers,
// x-axis transforms, EMA smoothing, log-safe values, aligning runs with different steps onto
// one x array for uPlot, zoom ranges, live appends, run colours and system-metric groups.
import { toNumber } from "../format";
import type { Series } from "../types";

/** One metric of one run, as numbers, ordered by step (as the server sends it). */
export interface RawSeries {
  steps: number[];
  times: number[];
  /** NaN for "NaN" (and for anything unreadable); ±Infinity stay. */
  values: number[];
}

export const EMPTY_SERIES: RawSeries = { steps: [], times: [], values: [] };

export function parseSeries(s: Pick<Series, "steps" | "times" | "values">): RawSeries {
  const n = s.values.length;
  const values = new Array<number>(n);
  for (let i = 0; i < n; i++) {
    const v = s.values[i];
    values[i] = typeof v === "number" ? v : (toNumber(v) ?? Number.NaN);
  }
  return { steps: s.steps, times: s.times, values };
}

// ---------------------------------------------------------------------------------------------
// x axis

/** step: the step; wall: POSIX time; relative: seconds since the series' first point;
 *  steptime: the step read as POSIX seconds (system metrics). */
export type XMode = "step" | "wall" | "relative" | "steptime";

export const X_MODE_LABELS: Record<Exclude<XMode, "steptime">, string> = {
  step: "Step",
  wall: "Wall time",
  relative: "Relative time",
};

/** Whether the x axis shows dates (uPlot's time scale, seconds). */
export function isTimeAxis(mode: XMode): boolean {
  return mode === "wall" || mode === "steptime";
}

/** The x value of every point. `t0` (relative mode) is the run's first time; default: the
 *  series' own first time. */
export function xValues(s: RawSeries, mode: XMode, t0?: number): number[] {
  switch (mode) {
    case "step":
    case "steptime":
      return s.steps;
    case "wall":
      return s.times;
    case "relative": {
      const origin = t0 ?? (s.times.length ? s.times[0] : 0);
      const out = new Array<number>(s.times.length);
      for (let i = 0; i < s.times.length; i++) out[i] = s.times[i] - origin;
      return out;
    }
  }
}

// ---------------------------------------------------------------------------------------------
// y values

/** What uPlot draws: non-finite values (and, on a log scale, values ≤ 0) become null = a gap. */
export function plotValues(values: ArrayLike<number | null>, log: boolean): (number | null)[] {
  const n = values.length;
  const out = new Array<number | null>(n);
  for (let i = 0; i < n; i++) {
    const v = values[i];
    out[i] = v === null || !Number.isFinite(v) || (log && v <= 0) ? null : v;
  }
  return out;
}

/** Exponential moving average with TensorBoard's debiasing (the first points are not pulled
 *  towards 0). `weight` in [0, 1): 0 is no smoothing. Non-finite points (and, on a log scale,
 *  points ≤ 0) neither enter the average nor get a value: they stay gaps (null). */
export function ema(values: ArrayLike<number>, weight: number, log = false): (number | null)[] {
  const n = values.length;
  const out = new Array<number | null>(n);
  const w = Math.min(Math.max(weight, 0), 0.999);
  let last = 0;
  let count = 0;
  for (let i = 0; i < n; i++) {
    const v = values[i];
    if (!Number.isFinite(v) || (log && v <= 0)) {
      out[i] = null;
      continue;
    }
    if (w === 0) {
      out[i] = v;
      continue;
    }
    // on a log scale the average is taken of log10(v), so a curve spanning decades smooths well
    const x = log ? Math.log10(v) : v;
    last = last * w + (1 - w) * x;
    count++;
    const smoothed = last / (1 - Math.pow(w, count));
    out[i] = log ? Math.pow(10, smoothed) : smoothed;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// alignment

export interface Table {
  /** x of each point; need not be sorted (wall time of a requeued run goes back). */
  x: ArrayLike<number>;
  /** Columns of y values, each as long as x. */
  ys: ArrayLike<number | null>[];
}

export interface Aligned {
  x: number[];
  /** Every table's columns in order; `undefined` where a table has no point at that x (uPlot
   *  draws the line across it and the cursor snaps to the nearest point), `null` a real gap. */
  ys: (number | null | undefined)[][];
}

function isSorted(x: ArrayLike<number>): boolean {
  for (let i = 1; i < x.length; i++) if (!(x[i] >= x[i - 1])) return false;
  return true;
}

function sameX(a: ArrayLike<number>, b: ArrayLike<number>): boolean {
  if (a === b) return true;
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** Put tables with different x onto the union of their x (sorted, distinct): O(N log N) for
 *  the union and O(N) per column, where uPlot.join hashes every value. A table with several
 *  points at one x keeps the last. Points with a non-finite x are dropped. */
export function alignTables(tables: Table[]): Aligned {
  if (tables.length === 0) return { x: [], ys: [] };
  // sort each table by x where needed (stable: equal x keep their order, the last one wins)
  const sorted = tables.map((t) => {
    const finite = Array.prototype.every.call(t.x, Number.isFinite) as boolean;
    if (finite && isSorted(t.x)) return t;
    const order: number[] = [];
    for (let i = 0; i < t.x.length; i++) if (Number.isFinite(t.x[i])) order.push(i);
    order.sort((a, b) => t.x[a] - t.x[b] || a - b);
    return {
      x: order.map((i) => t.x[i]),
      ys: t.ys.map((col) => order.map((i) => col[i])),
    };
  });

  let union: number[];
  const first = sorted[0].x;
  if (sorted.every((t) => sameX(t.x, first)) && strictlyIncreasing(first)) {
    union = Array.from(first);
    // the cheap case: every run logged the same steps
    const ys: (number | null | undefined)[][] = [];
    for (const t of sorted) for (const col of t.ys) ys.push(Array.from(col));
    return { x: union, ys };
  }
  let total = 0;
  for (const t of sorted) total += t.x.length;
  const all = new Float64Array(total);
  let o = 0;
  for (const t of sorted) for (let i = 0; i < t.x.length; i++) all[o++] = t.x[i];
  all.sort();
  union = [];
  for (let i = 0; i < all.length; i++) if (i === 0 || all[i] !== all[i - 1]) union.push(all[i]);

  const n = union.length;
  const ys: (number | null | undefined)[][] = [];
  for (const t of sorted) {
    // holey arrays: a hole reads as undefined, and leaving them is the cheapest fill
    const cols = t.ys.map(() => new Array<number | null | undefined>(n));
    let j = 0;
    for (let i = 0; i < t.x.length; i++) {
      const x = t.x[i];
      while (union[j] < x) j++;
      for (let c = 0; c < cols.length; c++) cols[c][j] = t.ys[c][i];
    }
    ys.push(...cols);
  }
  return { x: union, ys };
}

function strictlyIncreasing(x: ArrayLike<number>): boolean {
  for (let i = 1; i < x.length; i++) if (!(x[i] > x[i - 1])) return false;
  return true;
}

/** Points that are drawn (not gaps) in some columns. */
export function countPoints(cols: ArrayLike<number | null | undefined>[]): number {
  let n = 0;
  for (const col of cols) for (let i = 0; i < col.length; i++) if (col[i] != null) n++;
  return n;
}

// ---------------------------------------------------------------------------------------------
// zoom and live

/** The steps to fetch so a zoom to x in [xmin, xmax] is drawn edge to edge: the steps of the
 *  points inside plus one point on each side (x ascending with the index, as steps and almost
 *  always times are). null when the series has no point near the range. */
export function stepRange(xs: ArrayLike<number>, steps: ArrayLike<number>, xmin: number, xmax: number): [number, number] | null {
  const n = xs.length;
  if (n === 0 || xmax < xmin) return null;
  let lo = 0;
  while (lo < n && !(xs[lo] >= xmin)) lo++;
  let hi = n - 1;
  while (hi >= 0 && !(xs[hi] <= xmax)) hi--;
  if (lo === n || hi < 0) return null; // every point is left (or right) of the window
  // lo > hi: no point inside, the segment between hi and lo crosses the window
  const a = Math.max(0, Math.min(lo, hi + 1) - 1);
  const b = Math.min(n - 1, Math.max(hi, lo - 1) + 1);
  const s0 = Math.min(steps[a], steps[b]);
  const s1 = Math.max(steps[a], steps[b]);
  return [Math.max(0, Math.floor(s0)), Math.max(0, Math.ceil(s1))];
}

/** The last step of a series, or -1 when it is empty. */
export function lastStep(s: RawSeries): number {
  return s.steps.length ? s.steps[s.steps.length - 1] : -1;
}

/** New points (fetched with step_min = last step + 1) added at the end; points at or before
 *  the last step already shown are dropped (they were shown, or belong to a refetch). */
export function appendSeries(old: RawSeries, add: RawSeries): RawSeries {
  const last = lastStep(old);
  let start = 0;
  while (start < add.steps.length && add.steps[start] <= last) start++;
  if (start >= add.steps.length) return old;
  return {
    steps: old.steps.concat(add.steps.slice(start)),
    times: old.times.concat(add.times.slice(start)),
    values: old.values.concat(add.values.slice(start)),
  };
}

// ---------------------------------------------------------------------------------------------
// colours

/** 12 colours with a contrast of at least 3:1 on both themes' backgrounds (tested). */
export const PALETTE = [
  "#1f77b4",
  "#e8590c",
  "#2f9e44",
  "#d6336c",
  "#7048e8",
  "#0c8599",
  "#a87b00",
  "#9c6644",
  "#be4bdb",
  "#5c7cfa",
  "#868e96",
  "#e03131",
];

/** Dash patterns for the 13th run on (the colours repeat). */
const DASHES: (number[] | undefined)[] = [undefined, [6, 3], [2, 3], [8, 3, 2, 3]];

export interface RunStyle {
  color: string;
  dash?: number[];
}

export function styleForSlot(slot: number): RunStyle {
  return { color: PALETTE[slot % PALETTE.length], dash: DASHES[Math.floor(slot / PALETTE.length) % DASHES.length] };
}

/** A slot (colour) per id that stays with the id while it remains: ids kept from `previous`
 *  keep their slot, new ids take the lowest free slots in order. */
export function assignSlots(ids: readonly string[], previous: ReadonlyMap<string, number> = new Map()): Map<string, number> {
  const out = new Map<string, number>();
  const used = new Set<number>();
  for (const id of ids) {
    const slot = previous.get(id);
    if (slot !== undefined && !used.has(slot) && !out.has(id)) {
      out.set(id, slot);
      used.add(slot);
    }
  }
  let next = 0;
  for (const id of ids) {
    if (out.has(id)) continue;
    while (used.has(next)) next++;
    out.set(id, next);
    used.add(next);
  }
  return out;
}

/** WCAG relative luminance of "#rrggbb". */
export function luminance(hex: string): number {
  const n = parseInt(hex.slice(1), 16);
  const c = [(n >> 16) & 255, (n >> 8) & 255, n & 255].map((v) => {
    const s = v / 255;
    return s <= 0.03928 ? s / 12.92 : ((s + 0.055) / 1.055) ** 2.4;
  });
  return 0.2126 * c[0] + 0.7152 * c[1] + 0.0722 * c[2];
}

export function contrast(a: string, b: string): number {
  const [hi, lo] = [luminance(a), luminance(b)].sort((x, y) => y - x);
  return (hi + 0.05) / (lo + 0.05);
}

/** "#rrggbb" with an alpha. */
export function withAlpha(hex: string, alpha: number): string {
  const a = Math.round(Math.min(Math.max(alpha, 0), 1) * 255)
    .toString(16)
    .padStart(2, "0");
  return `${hex}${a}`;
}

// ---------------------------------------------------------------------------------------------
// keys

/** The metric keys to chart: the union of the runs' keys without system metrics, sorted. */
export function chartKeys(keyLists: Iterable<Iterable<string>>): string[] {
  const all = new Set<string>();
  for (const keys of keyLists) for (const k of keys) if (!k.startsWith("sys/")) all.add(k);
  return [...all].sort();
}

/** Keys containing every word of `query` (case-insensitive). */
export function filterKeys(keys: readonly string[], query: string): string[] {
  const words = query.toLowerCase().split(/\s+/).filter(Boolean);
  if (!words.length) return [...keys];
  return keys.filter((k) => {
    const low = k.toLowerCase();
    return words.every((w) => low.includes(w));
  });
}

/** "gpu2" before "gpu10". */
export function naturalCompare(a: string, b: string): number {
  return a.localeCompare(b, undefined, { numeric: true, sensitivity: "base" });
}

export interface SystemSeriesSpec {
  key: string;
  label: string;
  /** "{host}/gpu{i}" or "{host}/r{rank}": one colour per device in every chart. */
  device: string;
  /** A second line of the device (memory total, PCIe tx): drawn dashed. */
  dash?: boolean;
}

export interface SystemGroup {
  id: string;
  title: string;
  unit: string;
  series: SystemSeriesSpec[];
}

const SYSTEM_GROUPS: { id: string; title: string; unit: string; fields: Record<string, string> }[] = [
  { id: "gpu-util", title: "GPU utilisation (%)", unit: "%", fields: { util_pct: "" } },
  { id: "gpu-mem", title: "GPU memory (MB)", unit: "MB", fields: { mem_mb: "", mem_total_mb: " total" } },
  { id: "gpu-power", title: "GPU power (W)", unit: "W", fields: { power_w: "" } },
  { id: "gpu-pcie", title: "PCIe (MB/s)", unit: "MB/s", fields: { pcie_rx_mbps: " rx", pcie_tx_mbps: " tx" } },
  { id: "cpu", title: "CPU (%)", unit: "%", fields: { cpu_pct: "" } },
  { id: "rss", title: "RSS (MB)", unit: "MB", fields: { rss_mb: "" } },
];

const SYS_RE = /^sys\/([^/]+)\/((?:gpu|r)\d+)\/([^/]+)$/;

/** Group system-metric keys (sys/{host}/gpu{i}/util_pct, sys/{host}/r{rank}/cpu_pct, ...) into
 *  charts, one line per host/GPU or host/rank; groups without keys are left out. A key of
 *  another shape gets a chart of its own field name. */
export function groupSystemKeys(keys: readonly string[]): SystemGroup[] {
  const groups = new Map<string, SystemGroup>();
  const extra = new Map<string, SystemGroup>();
  for (const key of keys) {
    if (!key.startsWith("sys/")) continue;
    const m = SYS_RE.exec(key);
    const def = m ? SYSTEM_GROUPS.find((g) => m[3] in g.fields) : undefined;
    if (m && def) {
      const group = groups.get(def.id) ?? { id: def.id, title: def.title, unit: def.unit, series: [] };
      groups.set(def.id, group);
      const suffix = def.fields[m[3]];
      const device = `${m[1]}/${m[2]}`;
      const dash = m[3] === "mem_total_mb" || m[3] === "pcie_tx_mbps" || undefined;
      group.series.push({ key, label: `${device}${suffix}`, device, dash });
    } else {
      const parts = key.split("/");
      const field = parts[parts.length - 1];
      const group = extra.get(field) ?? { id: `other-${field}`, title: field, unit: "", series: [] };
      extra.set(field, group);
      const device = parts.slice(1, -1).join("/") || key;
      group.series.push({ key, label: device, device });
    }
  }
  const out: SystemGroup[] = [];
  for (const def of SYSTEM_GROUPS) {
    const g = groups.get(def.id);
    if (g) out.push(g);
  }
  out.push(...[...extra.values()].sort((a, b) => naturalCompare(a.title, b.title)));
  for (const g of out) g.series.sort((a, b) => naturalCompare(a.label, b.label));
  return out;
}

/** Every device of the groups, in natural order: its index is its colour slot. */
export function systemDevices(groups: readonly SystemGroup[]): string[] {
  const all = new Set<string>();
  for (const g of groups) for (const s of g.series) all.add(s.device);
  return [...all].sort(naturalCompare);
}

// ---------------------------------------------------------------------------------------------
// axis text

/** Seconds as a short duration for the relative-time axis: "0", "45s", "12m", "1h 30m", "2d 4h". */
export function formatSecondsShort(seconds: number): string {
  if (!Number.isFinite(seconds)) return "";
  const neg = seconds < 0;
  let s = Math.round(Math.abs(seconds));
  let text: string;
  if (s === 0) text = "0";
  else if (s < 60) text = `${s}s`;
  else if (s < 3600) {
    const m = Math.floor(s / 60);
    s %= 60;
    text = s ? `${m}m ${s}s` : `${m}m`;
  } else if (s < 86400) {
    const h = Math.floor(s / 3600);
    const m = Math.floor((s % 3600) / 60);
    text = m ? `${h}h ${m}m` : `${h}h`;
  } else {
    const d = Math.floor(s / 86400);
    const h = Math.floor((s % 86400) / 3600);
    text = h ? `${d}d ${h}h` : `${d}d`;
  }
  return neg ? `−${text}` : text;
}

/** Tick increments (seconds) for the relative-time axis. */
export const DURATION_INCRS = [
  1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400, 172800, 604800,
  1209600, 2592000,
];
