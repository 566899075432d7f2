// Pure logic of the runs table (unit-tested in runsQuery.test.ts): the table's state in the URL
// query, the API query it becomes, columns, cell values, and live events merged into a page.
import type { Query } from "../api";
import { flatten } from "../format";
import type { MetricsEventData, MetricSummary, Run, RunEventData, WireFloat } from "../types";
import { RUN_EVENT_FIELDS } from "../types";

// ---------------------------------------------------------------- state in the URL query

export const STATUSES = [
  "created",
  "queued",
  "running",
  "requeued",
  "finished",
  "failed",
  "timeout",
  "cancelled",
  "oom",
  "node_fail",
] as const;

export const ACTIVE = ["created", "queued", "running", "requeued"];

export type SortOrder = "asc" | "desc";

export const PAGE_SIZES = [50, 100, 200] as const;
export const DEFAULT_LIMIT = 50;
export const DEFAULT_SORT = "created_at";
export const DEFAULT_ORDER: SortOrder = "desc";
export const COMPARE_CAP = 20;

/** A range filter of the UI: `field >= min` and/or `field <= max` (min/max as typed, "" = open). */
export interface RangeFilter {
  field: string;
  min: string;
  max: string;
}

export interface TableState {
  statuses: string[]; // none = any status
  tag: string;
  user: string; // a user id
  name: string; // substring of the run name
  ranges: RangeFilter[];
  advanced: string[]; // raw `<field><op><value>` expressions
  sort: string; // a server sort field: created_at, name, params.x, metrics.k.stat, ...
  order: SortOrder;
  limit: number;
  offset: number;
  compare: string[]; // run ids, at most COMPARE_CAP
}

export const EMPTY_STATE: TableState = {
  statuses: [],
  tag: "",
  user: "",
  name: "",
  ranges: [],
  advanced: [],
  sort: DEFAULT_SORT,
  order: DEFAULT_ORDER,
  limit: DEFAULT_LIMIT,
  offset: 0,
  compare: [],
};

/** The URL query names this table owns (everything else in the query is left alone). */
export const QUERY_NAMES = ["status", "tag", "user", "name", "range", "filter", "sort", "order", "limit", "offset", "compare"];

// The server's own filter grammar (runyard/server/query.py): the field cannot hold an operator.
const FILTER_RE = /^\s*([^<>=!~\s][^<>=!~]*?)\s*(<=|>=|!=|=|<|>|~)\s*([\s\S]*?)\s*$/;

export interface Expression {
  field: string;
  op: string;
  value: string;
}

export function parseExpression(expr: string): Expression | null {
  const m = FILTER_RE.exec(expr);
  return m ? { field: m[1], op: m[2], value: m[3] } : null;
}

function csv(value: string | null): string[] {
  if (!value) return [];
  return [...new Set(value.split(",").map((s) => s.trim()).filter(Boolean))];
}

function intParam(value: string | null, fallback: number): number {
  if (value === null || !/^\d+$/.test(value)) return fallback;
  return Number(value);
}

/** `range` expressions (`params.lr>=0.01`, `params.lr<=0.1`) grouped back into range filters. */
export function parseRanges(exprs: string[]): RangeFilter[] {
  const out: RangeFilter[] = [];
  for (const expr of exprs) {
    const e = parseExpression(expr);
    if (!e || (e.op !== ">=" && e.op !== "<=") || e.value === "") continue;
    let range = out.find((r) => r.field === e.field);
    if (!range) {
      range = { field: e.field, min: "", max: "" };
      out.push(range);
    }
    if (e.op === ">=") range.min = e.value;
    else range.max = e.value;
  }
  return out;
}

/** The filter expressions of one range: `>=` for min, `<=` for max, none when both are open. */
export function rangeExpressions(range: RangeFilter): string[] {
  const out: string[] = [];
  const min = range.min.trim();
  const max = range.max.trim();
  if (!range.field) return out;
  if (min !== "") out.push(`${range.field}>=${min}`);
  if (max !== "") out.push(`${range.field}<=${max}`);
  return out;
}

/** Advanced filter text: expressions separated by `;` or new lines. */
export function splitAdvanced(text: string): string[] {
  return text
    .split(/[;\n]/)
    .map((s) => s.trim())
    .filter(Boolean);
}

export function parseState(query: URLSearchParams): TableState {
  const known = new Set<string>(STATUSES);
  const order = query.get("order");
  const limit = intParam(query.get("limit"), DEFAULT_LIMIT);
  return {
    statuses: csv(query.get("status")).filter((s) => known.has(s)),
    tag: query.get("tag") ?? "",
    user: query.get("user") ?? "",
    name: query.get("name") ?? "",
    ranges: parseRanges(query.getAll("range")),
    advanced: query.getAll("filter").map((s) => s.trim()).filter(Boolean),
    sort: query.get("sort") || DEFAULT_SORT,
    order: order === "asc" || order === "desc" ? order : DEFAULT_ORDER,
    limit: (PAGE_SIZES as readonly number[]).includes(limit) ? limit : DEFAULT_LIMIT,
    offset: intParam(query.get("offset"), 0),
    compare: csv(query.get("compare")).slice(0, COMPARE_CAP),
  };
}

/** The state as URL query parameters (defaults left out), keeping `base`'s other parameters. */
export function writeState(state: TableState, base?: URLSearchParams): URLSearchParams {
  const q = new URLSearchParams(base);
  for (const name of QUERY_NAMES) q.delete(name);
  const set = (name: string, value: string) => {
    if (value) q.set(name, value);
  };
  set("status", STATUSES.filter((s) => state.statuses.includes(s)).join(","));
  set("tag", state.tag);
  set("user", state.user);
  set("name", state.name);
  for (const r of state.ranges) for (const e of rangeExpressions(r)) q.append("range", e);
  for (const e of state.advanced) q.append("filter", e);
  if (state.sort !== DEFAULT_SORT || state.order !== DEFAULT_ORDER) {
    q.set("sort", state.sort);
    q.set("order", state.order);
  }
  if (state.limit !== DEFAULT_LIMIT) q.set("limit", String(state.limit));
  if (state.offset > 0) q.set("offset", String(state.offset));
  set("compare", state.compare.slice(0, COMPARE_CAP).join(","));
  return q;
}

/** A text value quoted so that the server compares it as text ("1e3" stays "1e3"). */
export function quoteText(value: string): string {
  return `"${value}"`;
}

/** Status choices as filters. The server ANDs filters, so several statuses become `!=` the others. */
export function statusExpressions(statuses: string[]): string[] {
  const chosen = STATUSES.filter((s) => statuses.includes(s));
  if (chosen.length === 0 || chosen.length === STATUSES.length) return [];
  if (chosen.length === 1) return [`status=${chosen[0]}`];
  return STATUSES.filter((s) => !chosen.includes(s)).map((s) => `status!=${s}`);
}

/** Every filter expression the state sends to the server. */
export function filterExpressions(state: TableState): string[] {
  const out = statusExpressions(state.statuses);
  if (state.tag) out.push(`tags=${quoteText(state.tag)}`);
  if (state.user) out.push(`user_id=${quoteText(state.user)}`);
  if (state.name.trim()) out.push(`name~${quoteText(state.name.trim())}`);
  for (const r of state.ranges) out.push(...rangeExpressions(r));
  out.push(...state.advanced);
  return out;
}

export function hasFilters(state: TableState): boolean {
  return filterExpressions(state).length > 0;
}

export function clearFilters(state: TableState): TableState {
  return { ...state, statuses: [], tag: "", user: "", name: "", ranges: [], advanced: [], offset: 0 };
}

/** The query of GET /api/v1/experiments/{id}/runs. `metricKeys` empty: no summaries at all. */
export function apiQuery(state: TableState, metricKeys: string[]): Query {
  return {
    filter: filterExpressions(state),
    sort: state.sort,
    order: state.order,
    limit: state.limit,
    offset: state.offset,
    // "," asks for no metric keys (an empty value would be dropped and mean "all of them")
    metrics: metricKeys.length ? metricKeys.join(",") : ",",
    total: true,
  };
}

/** The order a sort starts with: newest first for times, ascending for the rest. */
export function defaultOrderFor(sort: string): SortOrder {
  return ["created_at", "updated_at", "started_at", "ended_at"].includes(sort) ? "desc" : "asc";
}

/** Clicking a sortable header: the same field flips the order, another starts with its default. */
export function toggleSort(state: TableState, sort: string): TableState {
  const order: SortOrder = state.sort === sort ? (state.order === "asc" ? "desc" : "asc") : defaultOrderFor(sort);
  return { ...state, sort, order, offset: 0 };
}

// ---------------------------------------------------------------- paging

const INTEGER = new Intl.NumberFormat("en-US");

export function formatCount(n: number): string {
  return INTEGER.format(n);
}

/** "1–50 of 100,000" (or "101–150" while the total is unknown, "0 runs" when empty). */
export function pageText(offset: number, count: number, total: number | null): string {
  if (count === 0) return total ? `0 of ${formatCount(total)}` : "0 runs";
  const range = `${formatCount(offset + 1)}–${formatCount(offset + count)}`;
  return total === null ? range : `${range} of ${formatCount(total)}`;
}

export function prevOffset(offset: number, limit: number): number {
  return Math.max(0, offset - limit);
}

/** The offset of the last page (page-aligned). */
export function lastOffset(total: number, limit: number): number {
  return total > 0 ? Math.floor((total - 1) / limit) * limit : 0;
}

// ---------------------------------------------------------------- columns

export type Stat = "last" | "min" | "max";
export const STATS: Stat[] = ["last", "min", "max"];

export interface BuiltinColumn {
  id: string;
  label: string;
  sort: string | null; // the server sort field, when the server can sort by it
  numeric?: boolean;
  default: boolean;
}

/** Columns of every run (besides the always-shown select, status and name). */
export const BUILTINS: BuiltinColumn[] = [
  { id: "user", label: "User", sort: "user_id", default: true },
  { id: "slurm", label: "Slurm job", sort: "slurm_job_id", default: true },
  { id: "nodes", label: "Nodes", sort: "slurm_nodes", default: true },
  { id: "gpus", label: "GPUs", sort: null, numeric: true, default: true },
  { id: "duration", label: "Duration", sort: "duration", numeric: true, default: true },
  { id: "created", label: "Created", sort: "created_at", default: true },
  { id: "started", label: "Started", sort: "started_at", default: false },
  { id: "ended", label: "Ended", sort: "ended_at", default: false },
  { id: "tags", label: "Tags", sort: null, default: false },
  { id: "partition", label: "Partition", sort: "slurm_partition", default: false },
  { id: "host", label: "Host", sort: "host", default: false },
];

const BUILTIN_BY_ID = new Map(BUILTINS.map((b) => [b.id, b]));

export type Column =
  | { kind: "builtin"; id: string; builtin: BuiltinColumn }
  | { kind: "param"; id: string; key: string }
  | { kind: "metric"; id: string; key: string; stat: Stat };

export const paramColumnId = (key: string) => `params.${key}`;
export const metricColumnId = (key: string, stat: Stat) => `metrics.${key}.${stat}`;

export function parseColumn(id: string): Column | null {
  const builtin = BUILTIN_BY_ID.get(id);
  if (builtin) return { kind: "builtin", id, builtin };
  if (id.startsWith("params.") && id.length > 7) return { kind: "param", id, key: id.slice(7) };
  if (id.startsWith("metrics.")) {
    const rest = id.slice(8);
    const dot = rest.lastIndexOf(".");
    const stat = rest.slice(dot + 1) as Stat;
    if (dot > 0 && STATS.includes(stat)) return { kind: "metric", id, key: rest.slice(0, dot), stat };
  }
  return null;
}

/** Known column ids only, each once. */
export function sanitizeColumns(ids: unknown): string[] {
  if (!Array.isArray(ids)) return [];
  const out: string[] = [];
  for (const id of ids) if (typeof id === "string" && parseColumn(id) && !out.includes(id)) out.push(id);
  return out;
}

/** The server sort field of a column (null: not sortable there). */
export function columnSort(col: Column): string | null {
  if (col.kind === "builtin") return col.builtin.sort;
  return col.id;
}

export function columnLabel(col: Column): string {
  if (col.kind === "builtin") return col.builtin.label;
  if (col.kind === "param") return col.key;
  return `${col.key} (${col.stat})`;
}

export interface ExperimentKeys {
  params: string[];
  metrics: string[];
  tags: string[];
  sampled_runs: number;
}

/** Defaults: the usual run columns, the first 3 params, the first 2 non-`sys/` metrics' last values. */
export function defaultColumns(keys: Pick<ExperimentKeys, "params" | "metrics"> | null | undefined): string[] {
  const out = BUILTINS.filter((b) => b.default).map((b) => b.id);
  if (!keys) return out;
  out.push(...keys.params.slice(0, 3).map(paramColumnId));
  out.push(
    ...keys.metrics
      .filter((k) => !k.startsWith("sys/"))
      .slice(0, 2)
      .map((k) => metricColumnId(k, "last")),
  );
  return out;
}

/** Builtins in their fixed order, then params and metrics in the order they were picked. */
export function orderColumns(ids: string[]): string[] {
  const set = new Set(ids);
  const builtins = BUILTINS.filter((b) => set.has(b.id)).map((b) => b.id);
  return [...builtins, ...ids.filter((id) => !BUILTIN_BY_ID.has(id))];
}

export function toggleColumn(ids: string[], id: string, on: boolean): string[] {
  const without = ids.filter((x) => x !== id);
  return orderColumns(on ? [...without, id] : without);
}

/** The metric keys the shown columns need (for `metrics=`). */
export function metricKeysOf(ids: string[]): string[] {
  const keys: string[] = [];
  for (const id of ids) {
    const col = parseColumn(id);
    if (col?.kind === "metric" && !keys.includes(col.key)) keys.push(col.key);
  }
  return keys;
}

export const columnsStorageKey = (experimentId: string) => `runyard:runs-columns:${experimentId}`;

interface StorageLike {
  getItem(key: string): string | null;
  setItem(key: string, value: string): void;
  removeItem(key: string): void;
}

/** The saved columns of an experiment; null when none are saved (or unreadable). */
export function loadColumns(storage: StorageLike | undefined, experimentId: string): string[] | null {
  try {
    const raw = storage?.getItem(columnsStorageKey(experimentId));
    if (!raw) return null;
    const parsed = JSON.parse(raw);
    return orderColumns(sanitizeColumns(parsed?.columns));
  } catch {
    return null;
  }
}

export function saveColumns(storage: StorageLike | undefined, experimentId: string, ids: string[] | null): void {
  try {
    if (ids === null) storage?.removeItem(columnsStorageKey(experimentId));
    else storage?.setItem(columnsStorageKey(experimentId), JSON.stringify({ v: 1, columns: ids }));
  } catch {
    // storage full or blocked: the choice lasts for this page only
  }
}

// ---------------------------------------------------------------- cell values

const flatCache = new WeakMap<object, Record<string, unknown>>();

/** A param of a run: a dotted key of its flattened config (flattened once per run object). */
export function paramValue(run: Pick<Run, "config">, key: string): unknown {
  const config = run.config ?? {};
  let flat = flatCache.get(config);
  if (!flat) {
    flat = flatten(config);
    flatCache.set(config, flat);
  }
  return flat[key];
}

export function metricValue(run: Pick<Run, "metrics">, key: string, stat: Stat | "count"): WireFloat | number {
  const summary = run.metrics?.[key];
  if (!summary) return null;
  return summary[stat] ?? null;
}

function positiveInt(value: unknown): number | null {
  const n = typeof value === "string" && value.trim() !== "" ? Number(value) : value;
  return typeof n === "number" && Number.isFinite(n) && n >= 0 ? n : null;
}

/** GPUs of a run: requested gpus_per_node × nodes (1 when unset), else requested gpus, else slurm.gpus. */
export function gpuCount(run: Pick<Run, "slurm">): number | null {
  const slurm = (run.slurm ?? {}) as Record<string, unknown>;
  const requested = (slurm.requested && typeof slurm.requested === "object" ? slurm.requested : {}) as Record<string, unknown>;
  const perNode = positiveInt(requested.gpus_per_node);
  if (perNode !== null) return perNode * (positiveInt(requested.nodes) || 1);
  const total = positiveInt(requested.gpus);
  if (total !== null) return total;
  return positiveInt(slurm.gpus);
}

/** "1234", or "1200_7" for a task of an array job. */
export function slurmJobLabel(
  run: Pick<Run, "slurm_job_id" | "slurm_array_job_id" | "slurm_array_task_id">,
): string {
  if (run.slurm_array_task_id !== null && run.slurm_array_task_id !== undefined) {
    const job = run.slurm_array_job_id ?? run.slurm_job_id;
    if (job) return `${job}_${run.slurm_array_task_id}`;
  }
  return run.slurm_job_id ?? "";
}

// ---------------------------------------------------------------- live events


/** `run` events merged into a page: matching rows are replaced by updated copies (older events,
 * by updated_at, are ignored); the same array comes back when nothing on the page changed. */
export function mergeRunEvents(rows: Run[], events: RunEventData[]): Run[] {
  if (!events.length) return rows;
  const latest = new Map<string, RunEventData>();
  for (const e of events) {
    const prev = latest.get(e.run_id);
    if (!prev || e.updated_at >= prev.updated_at) latest.set(e.run_id, e);
  }
  let changed = false;
  const out = rows.map((row) => {
    const e = latest.get(row.id);
    if (!e || e.updated_at < row.updated_at) return row;
    const next: Record<string, unknown> = { ...row };
    for (const f of RUN_EVENT_FIELDS) if (f in e) next[f] = e[f];
    changed = true;
    return next as unknown as Run;
  });
  return changed ? out : rows;
}

/** `metrics` events merged into a page, for the shown metric keys only: last, count, step and time
 * (min and max too when the event brought a single new point: then they are exact). */
export function mergeMetricsEvents(rows: Run[], events: MetricsEventData[], keys: ReadonlySet<string>): Run[] {
  if (!events.length || !keys.size) return rows;
  const byRun = new Map<string, MetricsEventData[]>();
  for (const e of events) {
    const list = byRun.get(e.run_id);
    if (list) list.push(e);
    else byRun.set(e.run_id, [e]);
  }
  let changed = false;
  const out = rows.map((row) => {
    const list = byRun.get(row.id);
    if (!list) return row;
    let metrics: Record<string, MetricSummary> | null = null;
    for (const e of list) {
      for (const [key, m] of Object.entries(e.metrics)) {
        if (!keys.has(key)) continue;
        const old = (metrics ?? row.metrics)?.[key];
        if (old && old.count > m.count) continue; // an older event
        metrics = metrics ?? { ...row.metrics };
        metrics[key] = {
          key,
          count: m.count,
          last: m.last,
          last_step: m.last_step,
          last_time: m.last_time,
          min: m.min, // the event carries the stored summary's exact min and max
          max: m.max,
        };
      }
    }
    if (!metrics) return row;
    changed = true;
    return { ...row, metrics };
  });
  return changed ? out : rows;
}
