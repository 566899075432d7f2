// Pure logic of the sweep page (unit-tested in sweeps.test.ts): the axes of the parallel-
// coordinates plot (linear, log and categorical), the colour scale by metric value, top-k
// selection, progress counts, picking the line under the pointer, brushing, live merges.
import { formatNumber, formatValue, toNumber } from "../format";
import type { MetricsEventData, RunStatus, SweepCounts, SweepDetail, SweepGoal, SweepParameter, SweepTrial, WireFloat } from "../types";

// ---------------------------------------------------------------------------------------------
// axes

export type AxisKind = "linear" | "log" | "categorical";

export interface Axis {
  /** The parameter name, or the metric name for the metric axis. */
  key: string;
  kind: AxisKind;
  /** The metric's axis (the last one). */
  metric: boolean;
  /** linear: the domain; log: the domain's log10. Unused for categorical axes. */
  min: number;
  max: number;
  integer: boolean;
  /** categorical: the category keys (see categoryKey) in axis order, bottom to top. */
  categories: string[];
  /** categorical: the text of each category. */
  labels: string[];
}

/** A value's identity on a categorical axis (1 and "1" differ; objects by their JSON). */
export function categoryKey(value: unknown): string {
  if (value === undefined) return "undefined";
  return JSON.stringify(value) ?? String(value);
}

function isNum(v: unknown): v is number {
  return typeof v === "number" && Number.isFinite(v);
}

function compareValues(a: unknown, b: unknown): number {
  if (isNum(a) && isNum(b)) return a - b;
  if (isNum(a)) return -1;
  if (isNum(b)) return 1;
  return formatValue(a).localeCompare(formatValue(b), undefined, { numeric: true });
}

function categorical(key: string, values: unknown[], keepOrder: boolean): Axis {
  const seen = new Map<string, unknown>();
  for (const v of values) if (v !== undefined && !seen.has(categoryKey(v))) seen.set(categoryKey(v), v);
  let entries = [...seen.entries()];
  // numbers read bottom to top in ascending order even when the spec lists them otherwise
  if (!keepOrder || entries.every(([, v]) => isNum(v))) entries = entries.sort((a, b) => compareValues(a[1], b[1]));
  return {
    key,
    kind: "categorical",
    metric: false,
    min: 0,
    max: Math.max(0, entries.length - 1),
    integer: false,
    categories: entries.map(([k]) => k),
    labels: entries.map(([, v]) => formatValue(v) || String(v)),
  };
}

function numericDomain(lo: number, hi: number): [number, number] {
  if (lo < hi) return [lo, hi];
  const pad = lo === 0 ? 1 : Math.abs(lo) * 0.1;
  return [lo - pad, hi + pad];
}

/** The axis of one parameter: log for log ranges, linear for other ranges and for numbers
 *  without a spec, categorical (evenly spaced) for lists of values and anything not numeric.
 *  `seen` are the trials' values, which widen the spec's range if they fall outside it. */
export function paramAxis(name: string, param: SweepParameter | undefined, seen: unknown[]): Axis {
  const present = seen.filter((v) => v !== undefined && v !== null);
  if (param?.kind === "values") return categorical(name, [...(param.values ?? []), ...present], true);
  const numbers = present.filter(isNum);
  if (param?.kind !== "range" && (numbers.length !== present.length || numbers.length === 0))
    return categorical(name, present, false);
  if (numbers.length !== present.length) return categorical(name, present, false); // a range with text in it
  const integer = param?.integer ?? numbers.every((n) => Number.isInteger(n));
  if (param?.log) {
    const positive = numbers.filter((n) => n > 0);
    const lo = Math.min(...[param.low, ...positive].filter((n): n is number => n !== null && n > 0));
    const hi = Math.max(...[param.high, ...positive].filter((n): n is number => n !== null && n > 0));
    if (Number.isFinite(lo) && Number.isFinite(hi)) {
      const [a, b] = numericDomain(Math.log10(lo), Math.log10(hi));
      return { key: name, kind: "log", metric: false, min: a, max: b, integer, categories: [], labels: [] };
    }
  }
  const bounds = [param?.low, param?.high, ...numbers].filter((n): n is number => typeof n === "number" && Number.isFinite(n));
  if (!bounds.length) return categorical(name, present, false);
  const [a, b] = numericDomain(Math.min(...bounds), Math.max(...bounds));
  return { key: name, kind: "linear", metric: false, min: a, max: b, integer, categories: [], labels: [] };
}

/** The metric's axis over the values that exist: log when they are all positive and span
 *  three orders of magnitude or more, else linear. */
export function metricAxis(name: string, values: number[]): Axis {
  const finite = values.filter((v) => Number.isFinite(v));
  const base = { key: name, metric: true, integer: false, categories: [], labels: [] };
  if (!finite.length) return { ...base, kind: "linear", min: 0, max: 1 };
  const lo = Math.min(...finite);
  const hi = Math.max(...finite);
  if (lo > 0 && hi / lo >= 1000) {
    const [a, b] = numericDomain(Math.log10(lo), Math.log10(hi));
    return { ...base, kind: "log", min: a, max: b };
  }
  const [a, b] = numericDomain(lo, hi);
  return { ...base, kind: "linear", min: a, max: b };
}

/** A value's place on the axis: 0 at the bottom, 1 at the top; null when it has none (a
 *  missing value, text on a numeric axis, zero or less on a log axis). */
export function position(axis: Axis, value: unknown): number | null {
  if (axis.kind === "categorical") {
    if (value === undefined) return null;
    const i = axis.categories.indexOf(categoryKey(value));
    if (i < 0) return null;
    return axis.categories.length === 1 ? 0.5 : i / (axis.categories.length - 1);
  }
  const n = typeof value === "number" ? value : typeof value === "string" ? toNumber(value) : null;
  if (n === null || !Number.isFinite(n)) return null;
  let v = n;
  if (axis.kind === "log") {
    if (n <= 0) return null;
    v = Math.log10(n);
  }
  return (v - axis.min) / (axis.max - axis.min);
}

export interface Tick {
  pos: number;
  label: string;
}

function niceStep(span: number, count: number): number {
  const raw = span / Math.max(1, count);
  const mag = 10 ** Math.floor(Math.log10(raw));
  const norm = raw / mag;
  const nice = norm <= 1 ? 1 : norm <= 2 ? 2 : norm <= 5 ? 5 : 10;
  return nice * mag;
}

/** Tick marks: every category; powers of ten on log axes (with 2 and 5 when the axis spans
 *  less than two decades); round steps on linear ones (whole numbers for integer parameters). */
export function ticks(axis: Axis, count = 5): Tick[] {
  if (axis.kind === "categorical") {
    const n = axis.labels.length;
    return axis.labels.map((label, i) => ({ pos: n === 1 ? 0.5 : i / (n - 1), label }));
  }
  const eps = 1e-9 * Math.max(1, Math.abs(axis.max - axis.min));
  if (axis.kind === "log") {
    const out: Tick[] = [];
    const decades = axis.max - axis.min;
    const mults = decades < 2 ? [1, 2, 5] : [1];
    const stride = decades > 8 ? Math.ceil(decades / 6) : 1;
    for (let e = Math.floor(axis.min); e <= Math.ceil(axis.max); e += stride)
      for (const m of mults) {
        const v = m * 10 ** e;
        const p = (Math.log10(v) - axis.min) / (axis.max - axis.min);
        if (p >= -eps && p <= 1 + eps) out.push({ pos: Math.min(1, Math.max(0, p)), label: formatNumber(Number(v.toPrecision(6))) });
      }
    if (out.length >= 2) return out;
    return [axis.min, axis.max].map((lv, i) => ({ pos: i, label: formatNumber(Number((10 ** lv).toPrecision(3))) }));
  }
  let step = niceStep(axis.max - axis.min, count);
  if (axis.integer) step = Math.max(1, Math.round(step));
  const out: Tick[] = [];
  const first = Math.ceil((axis.min - eps) / step);
  for (let i = first; i * step <= axis.max + eps && out.length < 50; i++) {
    const v = Number((i * step).toPrecision(12));
    out.push({ pos: Math.min(1, Math.max(0, (v - axis.min) / (axis.max - axis.min))), label: formatNumber(v) });
  }
  return out;
}

/** A trial's metric value as a finite number, or null (none yet, NaN, ±∞). */
export function trialValue(trial: { value: WireFloat }): number | null {
  const n = toNumber(trial.value);
  return n !== null && Number.isFinite(n) ? n : null;
}

/** The names of the parameters in plot order: the spec's first, then any other the trials have. */
export function paramNames(detail: Pick<SweepDetail, "parameters" | "trials">): string[] {
  const names = detail.parameters.map((p) => p.name);
  const known = new Set(names);
  for (const t of detail.trials)
    for (const k of Object.keys(t.params ?? {}))
      if (!known.has(k)) {
        known.add(k);
        names.push(k);
      }
  return names;
}

/** One axis per parameter, then the metric's axis (when the sweep has a metric). */
export function buildAxes(detail: Pick<SweepDetail, "parameters" | "trials" | "metric">): Axis[] {
  const byName = new Map(detail.parameters.map((p) => [p.name, p]));
  const axes = paramNames(detail).map((name) =>
    paramAxis(
      name,
      byName.get(name),
      detail.trials.map((t) => t.params?.[name]),
    ),
  );
  if (detail.metric) {
    const values = detail.trials.map(trialValue).filter((v): v is number => v !== null);
    axes.push(metricAxis(detail.metric.name, values));
  }
  return axes;
}

// ---------------------------------------------------------------------------------------------
// colour by metric

/** How good a value is: 1 the best of the axis, 0 the worst (the axis position, flipped when
 *  smaller is better). */
export function goodness(axis: Axis, value: number | null, goal: SweepGoal): number | null {
  if (value === null) return null;
  const p = position(axis, value);
  if (p === null) return null;
  const clamped = Math.min(1, Math.max(0, p));
  return goal === "minimize" ? 1 - clamped : clamped;
}

/** The colour ramp, worst to best: a pale slate to a saturated red-orange. Readable on both
 *  themes' backgrounds; the opacity rises with it (better = stronger). */
export const RAMP = ["#9aabbf", "#6c8fd6", "#4263eb", "#7e3fd8", "#d6336c", "#e8590c"];

function hexToRgb(hex: string): [number, number, number] {
  const n = parseInt(hex.slice(1), 16);
  return [(n >> 16) & 255, (n >> 8) & 255, n & 255];
}

/** The ramp's colour at t in [0, 1], as "#rrggbb". */
export function rampColor(t: number): string {
  const x = Math.min(1, Math.max(0, Number.isFinite(t) ? t : 0)) * (RAMP.length - 1);
  const i = Math.min(RAMP.length - 2, Math.floor(x));
  const f = x - i;
  const a = hexToRgb(RAMP[i]);
  const b = hexToRgb(RAMP[i + 1]);
  return `#${a
    .map((c, k) => Math.round(c + (b[k] - c) * f)
      .toString(16)
      .padStart(2, "0"))
    .join("")}`;
}

/** Line opacity for goodness t: 0.35 for the worst, 1 for the best. */
export function rampOpacity(t: number): number {
  return 0.35 + 0.65 * Math.min(1, Math.max(0, t));
}

/** CSS linear-gradient of the ramp (for the legend). */
export function rampGradient(direction = "to right"): string {
  return `linear-gradient(${direction}, ${RAMP.map((c, i) => `${c} ${Math.round((i / (RAMP.length - 1)) * 100)}%`).join(", ")})`;
}

// ---------------------------------------------------------------------------------------------
// top-k, best, counts

export const TOP_K_CHOICES = [3, 5, 10] as const;

/** The k trials with the best values (ties: the lower index first); trials without a value are
 *  left out. */
export function topK<T extends Pick<SweepTrial, "index" | "value">>(trials: readonly T[], k: number, goal: SweepGoal): T[] {
  const sign = goal === "minimize" ? 1 : -1;
  return trials
    .map((t) => ({ t, v: trialValue(t) }))
    .filter((x): x is { t: T; v: number } => x.v !== null)
    .sort((a, b) => sign * (a.v - b.v) || a.t.index - b.t.index)
    .slice(0, Math.max(0, k))
    .map((x) => x.t);
}

export type CountKey = keyof SweepCounts;

/** Which count a run status adds to (as the server counts: created is queued; timeout, oom and
 *  node_fail are failed). */
export function statusGroup(status: RunStatus): CountKey {
  switch (status) {
    case "running":
      return "running";
    case "finished":
      return "finished";
    case "pruned":
      return "pruned";
    case "cancelled":
      return "cancelled";
    case "failed":
    case "timeout":
    case "oom":
    case "node_fail":
      return "failed";
    default:
      return "queued"; // created, queued, requeued, and any status not known here
  }
}

export function countsFromTrials(trials: readonly Pick<SweepTrial, "status">[]): SweepCounts {
  const out: SweepCounts = { queued: 0, running: 0, finished: 0, failed: 0, pruned: 0, cancelled: 0 };
  for (const t of trials) out[statusGroup(t.status)]++;
  return out;
}

export interface ProgressSegment {
  key: CountKey;
  label: string;
  count: number;
  /** Of the total, 0..1. */
  fraction: number;
}

export interface Progress {
  total: number;
  /** Trials that ended: finished, failed, pruned, cancelled. */
  done: number;
  fraction: number;
  counts: SweepCounts;
  /** Bar segments, ended ones first; zero counts left out. */
  segments: ProgressSegment[];
}

const SEGMENTS: [CountKey, string][] = [
  ["finished", "finished"],
  ["pruned", "pruned"],
  ["failed", "failed"],
  ["cancelled", "cancelled"],
  ["running", "running"],
  ["queued", "queued"],
];

/** Progress of a sweep: `total` is the trial count, or more when the counts add up to more. */
export function progress(counts: Partial<SweepCounts> | null | undefined, trialCount: number): Progress {
  const c: SweepCounts = { queued: 0, running: 0, finished: 0, failed: 0, pruned: 0, cancelled: 0 };
  for (const [k] of SEGMENTS) c[k] = Math.max(0, Number(counts?.[k] ?? 0) || 0);
  const sum = SEGMENTS.reduce((s, [k]) => s + c[k], 0);
  const total = Math.max(trialCount || 0, sum);
  const done = c.finished + c.failed + c.pruned + c.cancelled;
  return {
    total,
    done,
    fraction: total ? done / total : 0,
    counts: c,
    segments: SEGMENTS.filter(([k]) => c[k] > 0).map(([key, label]) => ({ key, label, count: c[key], fraction: total ? c[key] / total : 0 })),
  };
}

/** "12 trials · 7 done · 2 running · 1 queued · 1 failed · 2 pruned". */
export function progressText(p: Progress): string {
  const parts = [`${p.total} ${p.total === 1 ? "trial" : "trials"}`, `${p.done} done`];
  for (const key of ["running", "queued", "failed", "pruned", "cancelled"] as const)
    if (p.counts[key] || key === "running" || key === "queued") parts.push(`${p.counts[key]} ${key}`);
  return parts.join(" · ");
}

/** The importance ranking to show, or why there is none. */
export function importanceView(
  importance: SweepDetail["importance"],
  finished: number,
  needed = 3,
): { rows: { param: string; importance: number; share: number }[]; note: string | null } {
  if (!importance || !importance.length) {
    const note =
      finished < needed
        ? `Needs ${needed} finished trials (${finished} so far).`
        : "Not computed yet: the server has no ranking for this sweep.";
    return { rows: [], note };
  }
  const top = Math.max(...importance.map((r) => r.importance), 0);
  return {
    rows: importance.map((r) => ({ param: r.param, importance: r.importance, share: top > 0 ? r.importance / top : 0 })),
    note: null,
  };
}

/** "lr=0.01, batch_size=64". */
export function paramsText(params: Record<string, unknown> | null | undefined, names?: readonly string[]): string {
  if (!params) return "";
  const keys = names ? names.filter((n) => n in params) : Object.keys(params);
  return keys.map((k) => `${k}=${formatValue(params[k])}`).join(", ");
}

// ---------------------------------------------------------------------------------------------
// live

/** A `metrics` event applied to the sweep: the trial of that run gets the metric's last value
 *  and step. The same object when nothing changed. */
export function mergeMetrics(detail: SweepDetail, event: MetricsEventData): SweepDetail {
  const name = detail.metric?.name;
  if (!name) return detail;
  const info = event.metrics[name];
  if (!info) return detail;
  let changed = false;
  const trials = detail.trials.map((t) => {
    if (t.run_id !== event.run_id) return t;
    if (t.step !== null && info.last_step !== null && info.last_step < t.step) return t; // older than shown
    if (t.value === info.last && t.step === info.last_step) return t;
    changed = true;
    return { ...t, value: info.last, step: info.last_step };
  });
  return changed ? { ...detail, trials } : detail;
}

/** A run's new status applied to its trial (counts follow); the same object when not a trial. */
export function mergeStatus(detail: SweepDetail, runId: string, status: RunStatus): SweepDetail {
  const i = detail.trials.findIndex((t) => t.run_id === runId);
  if (i < 0 || detail.trials[i].status === status) return detail;
  const trials = detail.trials.slice();
  trials[i] = { ...trials[i], status };
  const counts = countsFromTrials(trials);
  // the last trial ended: the sweep has too (as the server will say in the refetch)
  const ended = detail.state === "running" && counts.queued + counts.running === 0;
  return { ...detail, trials, counts, state: ended ? "finished" : detail.state };
}

// ---------------------------------------------------------------------------------------------
// geometry: lines, picking, brushing

export interface Point {
  x: number;
  y: number;
}

/** A trial's polyline: one point per axis where it has a place (a metric point only with a
 *  value). `ys` maps an axis position (0..1) to a pixel row. */
export function linePoints(axes: readonly Axis[], xs: readonly number[], trial: Pick<SweepTrial, "params" | "value">, ys: (pos: number) => number): Point[] {
  const out: Point[] = [];
  axes.forEach((axis, i) => {
    const p = axis.metric ? (trialValue(trial) === null ? null : position(axis, trialValue(trial))) : position(axis, trial.params?.[axis.key]);
    if (p !== null) out.push({ x: xs[i], y: ys(p) });
  });
  return out;
}

/** Distance from p to the segment a-b. */
export function segmentDistance(p: Point, a: Point, b: Point): number {
  const dx = b.x - a.x;
  const dy = b.y - a.y;
  const len2 = dx * dx + dy * dy;
  const t = len2 === 0 ? 0 : Math.min(1, Math.max(0, ((p.x - a.x) * dx + (p.y - a.y) * dy) / len2));
  return Math.hypot(p.x - (a.x + t * dx), p.y - (a.y + t * dy));
}

/** The id of the line nearest to p within `maxDist` pixels (later lines win ties: they are
 *  drawn on top), or null. */
export function nearestLine<K>(lines: readonly { id: K; points: readonly Point[] }[], p: Point, maxDist = 6): K | null {
  let best: K | null = null;
  let bestD = maxDist;
  for (const line of lines) {
    const pts = line.points;
    let d = Infinity;
    if (pts.length === 1) d = Math.hypot(p.x - pts[0].x, p.y - pts[0].y);
    for (let i = 1; i < pts.length; i++) {
      // skip segments far off in x (cheap test first)
      if (p.x < Math.min(pts[i - 1].x, pts[i].x) - maxDist || p.x > Math.max(pts[i - 1].x, pts[i].x) + maxDist) continue;
      d = Math.min(d, segmentDistance(p, pts[i - 1], pts[i]));
    }
    if (d <= bestD) {
      bestD = d;
      best = line.id;
    }
  }
  return best;
}

/** A brush: the band [lo, hi] of axis positions (0..1) that passes. */
export type Brushes = Record<string, [number, number]>;

/** Whether a trial passes every brush (a trial with no place on a brushed axis does not). */
export function passesBrushes(axes: readonly Axis[], trial: Pick<SweepTrial, "params" | "value">, brushes: Brushes): boolean {
  for (const axis of axes) {
    const b = brushes[axis.key + (axis.metric ? "\u0000metric" : "")];
    if (!b) continue;
    const p = axis.metric ? (trialValue(trial) === null ? null : position(axis, trialValue(trial))) : position(axis, trial.params?.[axis.key]);
    if (p === null || p < Math.min(b[0], b[1]) - 1e-9 || p > Math.max(b[0], b[1]) + 1e-9) return false;
  }
  return true;
}

/** The key of an axis in `Brushes` (the metric may share a name with a parameter). */
export function brushKey(axis: Pick<Axis, "key" | "metric">): string {
  return axis.key + (axis.metric ? "\u0000metric" : "");
}

/** Evenly spaced x of n axes between left and right. */
export function axisXs(n: number, left: number, right: number): number[] {
  if (n <= 0) return [];
  if (n === 1) return [(left + right) / 2];
  return Array.from({ length: n }, (_, i) => left + ((right - left) * i) / (n - 1));
}
