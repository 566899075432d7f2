// The pure logic of the launch form (POST /api/v1/launch): a shell-like argv splitter (the
// argv goes to the server as a list and is never run by a shell), time limits, array specs,
// the parameter sweep helper, warnings against the cluster's partitions and nodes, the request
// body, server errors mapped to fields, and a form pre-filled from an earlier run.
// Unit-tested in launchForm.test.ts.
import type { ClusterNode, ClusterPartition } from "../cluster/cluster";

// --------------------------------------------------------------------------- argv

export type Parsed<T> = { ok: true; value: T } | { ok: false; error: string };

/** Split a command line into argv the way a POSIX shell splits words, without expanding
 * anything: whitespace separates; '…' is literal; "…" is literal except \" and \\ (and \$, \`,
 * a backslash before a newline); outside quotes a backslash keeps the next character. */
export function splitArgs(text: string): Parsed<string[]> {
  const argv: string[] = [];
  let word = "";
  let inWord = false;
  let i = 0;
  const chars = Array.from(text); // code points: unicode stays whole
  while (i < chars.length) {
    const c = chars[i];
    if (c === "'") {
      const start = i;
      inWord = true;
      i++;
      while (i < chars.length && chars[i] !== "'") word += chars[i++];
      if (i >= chars.length) return { ok: false, error: `unterminated single quote (') at character ${start + 1}` };
      i++;
    } else if (c === '"') {
      const start = i;
      inWord = true;
      i++;
      while (i < chars.length && chars[i] !== '"') {
        if (chars[i] === "\\" && i + 1 < chars.length && ['"', "\\", "$", "`", "\n"].includes(chars[i + 1])) {
          if (chars[i + 1] !== "\n") word += chars[i + 1];
          i += 2;
        } else {
          word += chars[i++];
        }
      }
      if (i >= chars.length) return { ok: false, error: `unterminated double quote (") at character ${start + 1}` };
      i++;
    } else if (c === "\\") {
      if (i + 1 >= chars.length) return { ok: false, error: "the command ends with a lone backslash (\\)" };
      if (chars[i + 1] !== "\n") {
        word += chars[i + 1];
        inWord = true;
      }
      i += 2;
    } else if (/\s/u.test(c)) {
      if (inWord) argv.push(word);
      word = "";
      inWord = false;
      i++;
    } else {
      word += c;
      inWord = true;
      i++;
    }
  }
  if (inWord) argv.push(word);
  return { ok: true, value: argv };
}

const SAFE_WORD = /^[\p{L}\p{N}_@%+=:,./-]+$/u;

/** One argument quoted so that `splitArgs` gives it back unchanged. */
export function quoteArg(arg: string): string {
  if (arg !== "" && SAFE_WORD.test(arg)) return arg;
  return `'${arg.replace(/'/g, `'\\''`)}'`;
}

/** argv as one command line; `splitArgs(joinArgs(argv))` is argv again. */
export function joinArgs(argv: readonly string[]): string {
  return argv.map(quoteArg).join(" ");
}

// --------------------------------------------------------------------------- time limits

/** Minutes as Slurm writes times: "30:00" is M:S in Slurm, so we write "0:30:00", "1:30:00",
 * "1-00:00:00". */
export function slurmTime(minutes: number): string {
  const d = Math.floor(minutes / 1440);
  const h = Math.floor((minutes % 1440) / 60);
  const m = minutes % 60;
  const hm = `${String(m).padStart(2, "0")}:00`;
  return d ? `${d}-${String(h).padStart(2, "0")}:${hm}` : `${h}:${hm}`;
}

/** Minutes in plain words: "1 h 30 min", "2 d 4 h". */
export function minutesInWords(minutes: number): string {
  const d = Math.floor(minutes / 1440);
  const h = Math.floor((minutes % 1440) / 60);
  const m = minutes % 60;
  const parts: string[] = [];
  if (d) parts.push(`${d} d`);
  if (h) parts.push(`${h} h`);
  if (m || parts.length === 0) parts.push(`${m} min`);
  return parts.join(" ");
}

const UNIT_MIN: Record<string, number> = { d: 1440, h: 60, m: 1, min: 1, s: 1 / 60 };

/** A time limit in whole minutes (seconds round up, as Slurm does); empty text is null (the
 * partition's default). Accepts minutes ("90"), Slurm times (M:S, H:M:S, D-H, D-H:M,
 * D-H:M:S) and units ("2h", "90m", "1d 12h", "1h30m", "45s"). */
export function parseTimeLimit(text: string): Parsed<number | null> {
  const value = text.trim().toLowerCase();
  if (!value) return { ok: true, value: null };
  const rule = `"${text.trim()}" is not a time: write minutes (90), H:MM:SS (1:30:00), D-HH:MM:SS (1-00:00:00) or 2h, 90m, 1d 12h`;
  let seconds: number;
  if (/^\d+$/.test(value)) {
    seconds = Number(value) * 60;
  } else if (/^(\d+\s*(d|h|min|m|s)\s*)+$/.test(value)) {
    seconds = 0;
    for (const m of value.matchAll(/(\d+)\s*(d|h|min|m|s)/g)) seconds += Number(m[1]) * UNIT_MIN[m[2]] * 60;
  } else {
    let days = 0;
    let rest = value;
    const dash = /^(\d+)-(.+)$/.exec(value);
    if (dash) {
      days = Number(dash[1]);
      rest = dash[2];
    } else if (value.includes("-")) {
      return { ok: false, error: rule };
    }
    const parts = rest.split(":");
    if (parts.length < 1 || parts.length > 3 || !parts.every((p) => /^\d+$/.test(p))) return { ok: false, error: rule };
    const n = parts.map(Number);
    let h = 0;
    let m = 0;
    let s = 0;
    if (dash) [h, m = 0, s = 0] = n;
    else if (n.length === 3) [h, m, s] = n;
    else if (n.length === 2) [m, s] = n;
    else return { ok: false, error: rule };
    seconds = ((days * 24 + h) * 60 + m) * 60 + s;
  }
  const minutes = Math.ceil(seconds / 60);
  if (minutes < 1) return { ok: false, error: "the time limit must be at least 1 minute" };
  if (minutes > 10_000_000) return { ok: false, error: "the time limit is too long (at most 10,000,000 minutes)" };
  return { ok: true, value: minutes };
}

// --------------------------------------------------------------------------- arrays

export const MAX_ARRAY_TASKS = 10_000;
const MAX_ARRAY_TASK_ID = 4_000_000;

export interface ArrayInfo {
  taskIds: number[];
  throttle: number | null;
}

/** "0-9", "0-9%2", "1,3,5-7", "0-10:2": the task ids (sorted, unique) and the throttle, with
 * the server's rules. */
export function parseArraySpec(text: string): Parsed<ArrayInfo> {
  let spec = text.trim();
  const rule = `"${spec}" is not an array spec: write 0-9, 0-9%2, 1,3,5-7 or 0-10:2`;
  let throttle: number | null = null;
  if (spec.includes("%")) {
    const [head, limit] = [spec.slice(0, spec.indexOf("%")), spec.slice(spec.indexOf("%") + 1)];
    if (!/^\d+$/.test(limit) || Number(limit) < 1) return { ok: false, error: "the %K after the tasks must be a whole number ≥ 1" };
    throttle = Number(limit);
    spec = head;
  }
  if (!spec) return { ok: false, error: rule };
  const ids = new Set<number>();
  for (const part of spec.split(",")) {
    const m = /^(\d+)(?:-(\d+)(?::(\d+))?)?$/.exec(part.trim());
    if (!m) return { ok: false, error: rule };
    const first = Number(m[1]);
    const last = m[2] !== undefined ? Number(m[2]) : first;
    const step = m[3] !== undefined ? Number(m[3]) : 1;
    if (last < first) return { ok: false, error: `the range ${part.trim()} ends before it starts` };
    if (step < 1) return { ok: false, error: `the step in ${part.trim()} must be ≥ 1` };
    if (last > MAX_ARRAY_TASK_ID) return { ok: false, error: `task ids must be ≤ ${MAX_ARRAY_TASK_ID}` };
    if (Math.floor((last - first) / step) + 1 + ids.size > MAX_ARRAY_TASKS) {
      return { ok: false, error: `at most ${MAX_ARRAY_TASKS.toLocaleString("en")} tasks per array` };
    }
    for (let t = first; t <= last; t += step) ids.add(t);
  }
  return { ok: true, value: { taskIds: [...ids].sort((a, b) => a - b), throttle } };
}

/** "10 tasks (0–9), at most 2 at once". */
export function arrayPreview(info: ArrayInfo): string {
  const n = info.taskIds.length;
  const ids = info.taskIds;
  let which: string;
  const contiguous = ids.length > 1 && ids[ids.length - 1] - ids[0] === ids.length - 1;
  if (n === 1) which = `task ${ids[0]}`;
  else if (contiguous) which = `${ids[0]}–${ids[n - 1]}`;
  else if (n <= 6) which = ids.join(", ");
  else which = `${ids.slice(0, 3).join(", ")}, …, ${ids[n - 1]}`;
  const head = n === 1 ? `1 task (${which})` : `${n} tasks (${which})`;
  if (info.throttle === null) return `${head}, all may run at once`;
  return `${head}, at most ${info.throttle} at once`;
}

// --------------------------------------------------------------------------- sweep

/** A grid has at most this many trials (the server's limit: one Slurm array). */
export const MAX_SWEEP_TRIALS = 10_000;
const PARAM_RE = /^[A-Za-z_][A-Za-z0-9_.-]{0,99}$/;

/** What a sweep parameter may take (the server refuses null, lists and mappings). */
export type ParamValue = string | number | boolean;

export interface Sweep {
  keys: string[];
  grid: Record<string, ParamValue[]>;
  /** Every combination, in the server's order: trial i takes tasks[i]; the last key varies fastest. */
  tasks: Record<string, ParamValue>[];
}

function sweepValue(text: string): Parsed<ParamValue> {
  const t = text.trim();
  if (/^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/.test(t)) {
    const n = Number(t);
    if (!Number.isFinite(n)) return { ok: false, error: `${t} is too large a number` };
    return { ok: true, value: n };
  }
  if (t === "true" || t === "false") return { ok: true, value: t === "true" };
  if (t === "null") return { ok: false, error: 'null is not a parameter value (write "null" for the text)' };
  if (t.startsWith('"')) {
    try {
      const v: unknown = JSON.parse(t);
      if (typeof v === "string") return { ok: true, value: v };
    } catch {
      // not a JSON string: kept as written
    }
  }
  return { ok: true, value: t };
}

function splitValues(text: string): Parsed<string[]> {
  const out: string[] = [];
  let cur = "";
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === '"' && text[i - 1] !== "\\") quoted = !quoted;
    if (c === "," && !quoted) {
      out.push(cur);
      cur = "";
    } else cur += c;
  }
  if (quoted) return { ok: false, error: "a quoted value is not closed" };
  out.push(cur);
  return { ok: true, value: out };
}

function showValue(v: ParamValue): string {
  return typeof v === "string" ? JSON.stringify(v) : String(v);
}

/** Lines "key = v1, v2, v3" (numbers, true/false and "quoted strings" keep their JSON type;
 * other words are strings) into the grid of every combination, with the server's rules
 * (parameter names, no duplicate values, at most MAX_SWEEP_TRIALS). Empty text: null. */
export function parseSweep(text: string): Parsed<Sweep | null> {
  const grid: Record<string, ParamValue[]> = {};
  const keys: string[] = [];
  const lines = text.split("\n");
  for (let n = 0; n < lines.length; n++) {
    const line = lines[n].trim();
    if (!line || line.startsWith("#")) continue;
    const eq = line.indexOf("=");
    if (eq < 0) return { ok: false, error: `line ${n + 1}: write key = value, value, … (got "${line}")` };
    const key = line.slice(0, eq).trim();
    if (!PARAM_RE.test(key)) {
      return { ok: false, error: `line ${n + 1}: "${key}" is not a parameter name (a letter or _, then letters, digits, _ . -; at most 100)` };
    }
    if (key in grid) return { ok: false, error: `line ${n + 1}: ${key} is given twice` };
    const parts = splitValues(line.slice(eq + 1));
    if (!parts.ok) return { ok: false, error: `line ${n + 1}: ${parts.error}` };
    const words = parts.value.map((v) => v.trim()).filter((v) => v !== "");
    if (words.length === 0) return { ok: false, error: `line ${n + 1}: ${key} has no values` };
    const values: ParamValue[] = [];
    const seen = new Set<string>();
    for (const word of words) {
      const v = sweepValue(word);
      if (!v.ok) return { ok: false, error: `line ${n + 1}: ${v.error}` };
      const id = `${typeof v.value}:${String(v.value)}`;
      if (seen.has(id)) return { ok: false, error: `line ${n + 1}: ${key} lists ${showValue(v.value)} twice` };
      seen.add(id);
      values.push(v.value);
    }
    grid[key] = values;
    keys.push(key);
  }
  if (keys.length === 0) return { ok: true, value: null };
  let total = 1;
  for (const k of keys) total *= grid[k].length;
  if (total > MAX_SWEEP_TRIALS) {
    const shape = keys.map((k) => grid[k].length).join(" × ");
    return {
      ok: false,
      error: `${shape} = ${total.toLocaleString("en")} combinations: a grid has at most ${MAX_SWEEP_TRIALS.toLocaleString("en")}`,
    };
  }
  let tasks: Record<string, ParamValue>[] = [{}];
  for (const k of keys) {
    const next: Record<string, ParamValue>[] = [];
    for (const t of tasks) for (const v of grid[k]) next.push({ ...t, [k]: v });
    tasks = next;
  }
  return { ok: true, value: { keys, grid, tasks } };
}

/** The sweep's lines again, from a grid. */
export function sweepText(grid: Record<string, ParamValue[]>): string {
  return Object.entries(grid)
    .map(([k, values]) => {
      const words = values.map((v) => {
        if (typeof v !== "string") return String(v);
        const back = sweepValue(v);
        return /[",]/.test(v) || v.trim() !== v || !back.ok || back.value !== v ? JSON.stringify(v) : v;
      });
      return `${k} = ${words.join(", ")}`;
    })
    .join("\n");
}

/** True when the command holds a {name} placeholder for one of the parameters: the server then
 * puts each value there (args: template) instead of appending --name=value. */
export function usesPlaceholders(command: readonly string[], keys: readonly string[]): boolean {
  return command.some((item) => {
    const plain = item.replace(/\{\{|\}\}/g, "");
    return keys.some((k) => plain.includes(`{${k}}`));
  });
}

/** A parameter value as the server writes it on the command line: strings as they are,
 * true/false, whole numbers as digits, other numbers as Python's repr (0.001, 1e-05). */
export function formatParam(v: ParamValue): string {
  if (typeof v === "string") return v;
  if (typeof v === "boolean") return v ? "true" : "false";
  if (Number.isInteger(v) && Math.abs(v) < 1e21) return String(v);
  const [mantissa, exp] = v.toExponential().split("e");
  const e = Number(exp);
  if (e >= -4 && e < 16) return String(v); // JS and Python agree on fixed notation here
  return `${mantissa}e${e < 0 ? "-" : "+"}${String(Math.abs(e)).padStart(2, "0")}`;
}

/** The argv of one trial, as the server builds it (docs/sweeps.md "How parameters reach the
 * command"): --name=value appended in parameter order, or {name} placeholders filled. */
export function trialArgv(command: readonly string[], keys: readonly string[], params: Record<string, ParamValue>): string[] {
  if (usesPlaceholders(command, keys)) {
    return command.map((item) =>
      item.replace(/\{\{|\}\}|\{([^{}]*)\}/g, (m, name: string | undefined) =>
        m === "{{" ? "{" : m === "}}" ? "}" : name !== undefined && name in params ? formatParam(params[name]) : m,
      ),
    );
  }
  return [...command, ...keys.map((k) => `--${k}=${formatParam(params[k])}`)];
}

export type Goal = "minimize" | "maximize";

/** The sweep spec POST /api/v1/sweeps reads (docs/sweeps.md), for a grid built from the form. */
export interface SweepSpec {
  name: string;
  project: string;
  experiment: string;
  command: string[];
  workdir: string;
  output_dir?: string;
  method: "grid";
  parameters: Record<string, ParamValue[]>;
  concurrency?: number;
  metric?: { name: string; goal: Goal };
  resources?: LaunchResources;
  env?: Record<string, string>;
  tags?: string[];
  requeue?: boolean;
  max_restarts?: number;
}

/** The body of POST /api/v1/sweeps. */
export interface SweepRequest {
  spec: string;
  source: string;
  base_dir: string;
}

export const SWEEP_SOURCE = "launch form";

/** A default sweep name from the command: the script's name ("train" for python train.py
 * --lr 1), else the program's, with "-sweep"; only the characters a Slurm job name allows. */
export function defaultSweepName(command: readonly string[]): string {
  const base = (w: string) => w.replace(/\/+$/, "").split("/").pop() ?? "";
  const script = command.slice(1).find((w) => !w.startsWith("-") && /\.[A-Za-z0-9]+$/.test(base(w)));
  let stem = script ? base(script).replace(/\.[A-Za-z0-9]+$/, "") : base(command[0] ?? "");
  stem = stem.replace(/[^A-Za-z0-9_.+:@=-]+/g, "-").replace(/^-+|-+$/g, "");
  return `${(stem || "grid").slice(0, 58)}-sweep`;
}

/** The spec object of a grid sweep from a checked launch body and the parsed sweep lines. */
export function sweepSpec(
  body: LaunchBody,
  sweep: Sweep,
  options: { concurrency?: number | null; metric?: { name: string; goal: Goal } | null } = {},
): SweepSpec {
  const command = body.command ?? [];
  const spec: SweepSpec = {
    name: body.name ?? defaultSweepName(command),
    project: body.project,
    experiment: body.experiment,
    command: [...command],
    workdir: body.workdir,
    method: "grid",
    parameters: Object.fromEntries(sweep.keys.map((k) => [k, [...sweep.grid[k]]])),
  };
  if (body.output_dir) spec.output_dir = body.output_dir;
  if (options.concurrency != null) spec.concurrency = options.concurrency;
  if (options.metric) spec.metric = { ...options.metric };
  if (Object.keys(body.resources).length) spec.resources = { ...body.resources };
  if (Object.keys(body.env).length) spec.env = { ...body.env };
  if (body.tags.length) spec.tags = [...body.tags];
  spec.requeue = body.requeue;
  spec.max_restarts = body.max_restarts;
  return spec;
}

/** The spec as YAML text: JSON (JSON is YAML), with the characters a YAML reader refuses raw
 * (C1 controls, U+FFFE/U+FFFF) written as \u escapes. Everything outside strings is ASCII. */
export function specText(spec: SweepSpec): string {
  return JSON.stringify(spec).replace(/[\u007f-\u009f\ufffe\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`);
}

export function sweepRequest(spec: SweepSpec): SweepRequest {
  return { spec: specText(spec), source: SWEEP_SOURCE, base_dir: spec.workdir };
}

// --------------------------------------------------------------------------- other fields

const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
export const RESERVED_ENV = new Set([
  "RUNYARD_API_KEY",
  "RUNYARD_URL",
  "RUNYARD_RUN_ID",
  "RUNYARD_ARRAY_BASE_ID",
  "RUNYARD_REQUEUE",
  "RUNYARD_MAX_RESTARTS",
  "RUNYARD_SWEEP_ID",
  "TRACKER_API",
  "TRACKER_API_KEY",
]);

/** KEY=VALUE lines (blank lines and # comments skipped; the value is kept as written). */
export function parseEnv(text: string): Parsed<Record<string, string>> {
  const env: Record<string, string> = {};
  const lines = text.split("\n");
  for (let n = 0; n < lines.length; n++) {
    const line = lines[n].replace(/\r$/, "");
    if (!line.trim() || line.trim().startsWith("#")) continue;
    const eq = line.indexOf("=");
    if (eq < 0) return { ok: false, error: `line ${n + 1}: write KEY=VALUE (got "${line.trim()}")` };
    const key = line.slice(0, eq).trim();
    if (!ENV_NAME.test(key)) return { ok: false, error: `line ${n + 1}: "${key}" is not a variable name (letters, digits, _)` };
    if (RESERVED_ENV.has(key)) return { ok: false, error: `line ${n + 1}: ${key} is set by the launch itself` };
    if (key in env) return { ok: false, error: `line ${n + 1}: ${key} is given twice` };
    env[key] = line.slice(eq + 1);
  }
  return { ok: true, value: env };
}

export function parseConfig(text: string): Parsed<Record<string, unknown>> {
  if (!text.trim()) return { ok: true, value: {} };
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    return { ok: false, error: `not valid JSON: ${(err as Error).message}` };
  }
  if (value === null || typeof value !== "object" || Array.isArray(value)) {
    return { ok: false, error: 'the config must be a JSON object, e.g. {"lr": 0.01}' };
  }
  return { ok: true, value: value as Record<string, unknown> };
}

export function parseTags(text: string): Parsed<string[]> {
  const tags: string[] = [];
  for (const raw of text.split(",")) {
    const tag = raw.trim();
    if (!tag) continue;
    if (tag.length > 200) return { ok: false, error: "a tag has at most 200 characters" };
    if (!tags.includes(tag)) tags.push(tag);
  }
  if (tags.length > 100) return { ok: false, error: "at most 100 tags" };
  return { ok: true, value: tags };
}

const AFTER_RE = /^[A-Za-z0-9_.-]{1,64}(:(ok|any|notok))?$/;

/** Run ids or Slurm job ids, optionally :ok (default), :any or :notok; commas or spaces between. */
export function parseAfter(text: string): Parsed<string[]> {
  const items = text.split(/[\s,]+/).filter(Boolean);
  for (const item of items) {
    if (!AFTER_RE.test(item)) return { ok: false, error: `"${item}" is not RUN_ID or JOB_ID, optionally with :ok, :any or :notok` };
  }
  if (items.length > 100) return { ok: false, error: "at most 100 dependencies" };
  return { ok: true, value: items };
}

function parseInt_(text: string, min: number, max: number, what: string): Parsed<number | null> {
  const t = text.trim();
  if (!t) return { ok: true, value: null };
  if (!/^\d+$/.test(t)) return { ok: false, error: `${what} must be a whole number` };
  const n = Number(t);
  if (n < min) return { ok: false, error: `${what} must be at least ${min}` };
  if (n > max) return { ok: false, error: `${what} must be at most ${max.toLocaleString("en")}` };
  return { ok: true, value: n };
}

function parseMem(text: string): Parsed<number | null> {
  const t = text.trim().replace(/\s*gb?$/i, "");
  if (!t) return { ok: true, value: null };
  if (!/^\d+(\.\d+)?$|^\.\d+$/.test(t)) return { ok: false, error: "memory must be a number of GB, e.g. 16 or 0.5" };
  const n = Number(t);
  if (!(n > 0)) return { ok: false, error: "memory must be more than 0 GB" };
  if (n > 1_000_000) return { ok: false, error: "memory must be at most 1,000,000 GB" };
  return { ok: true, value: n };
}

const NAME_RE = /^[A-Za-z0-9_.+:@=-]{1,64}$/;

// --------------------------------------------------------------------------- the form

export type Mode = "command" | "script";

export interface LaunchForm {
  project: string;
  experiment: string;
  name: string;
  mode: Mode;
  command: string;
  script: string;
  partition: string;
  nodes: string;
  ntasksPerNode: string;
  gpusPerNode: string;
  cpusPerTask: string;
  memGb: string;
  time: string;
  array: string;
  sweep: string;
  sweepThrottle: string;
  sweepMetric: string;
  sweepGoal: Goal;
  after: string;
  requeue: boolean;
  maxRestarts: string;
  env: string;
  config: string;
  tags: string;
  workdir: string;
  outputDir: string;
  account: string;
  qos: string;
  signalBeforeEnd: string;
}

export type FieldKey = keyof LaunchForm;

export function emptyForm(workdir = ""): LaunchForm {
  return {
    project: "",
    experiment: "",
    name: "",
    mode: "command",
    command: "",
    script: "",
    partition: "",
    nodes: "",
    ntasksPerNode: "",
    gpusPerNode: "",
    cpusPerTask: "",
    memGb: "",
    time: "",
    array: "",
    sweep: "",
    sweepThrottle: "",
    sweepMetric: "",
    sweepGoal: "minimize",
    after: "",
    requeue: true,
    maxRestarts: "5",
    env: "",
    config: "",
    tags: "",
    workdir,
    outputDir: "",
    account: "",
    qos: "",
    signalBeforeEnd: "",
  };
}

export interface LaunchResources {
  partition?: string;
  nodes?: number;
  ntasks_per_node?: number;
  cpus_per_task?: number;
  gpus_per_node?: number;
  mem_gb?: number;
  time_limit_min?: number;
  account?: string;
  qos?: string;
}

export interface LaunchBody {
  project: string;
  experiment: string;
  name?: string;
  command?: string[];
  script?: string;
  resources: LaunchResources;
  array?: string;
  after: string[];
  requeue: boolean;
  max_restarts: number;
  signal_before_end_s?: number;
  env: Record<string, string>;
  workdir: string;
  output_dir?: string;
  config: Record<string, unknown>;
  tags: string[];
}

export interface Built {
  /** POST /api/v1/launch (no sweep). */
  body: LaunchBody | null;
  /** POST /api/v1/sweeps (a sweep is given): the spec object; send sweepRequest(sweep). */
  sweep: SweepSpec | null;
  errors: Partial<Record<FieldKey, string>>;
}

/** The request (a plain launch body, or a sweep spec when the sweep lines hold a parameter), or
 * the errors by field (nothing is sent while there are errors). */
export function buildBody(form: LaunchForm): Built {
  const errors: Partial<Record<FieldKey, string>> = {};
  const take = <T>(field: FieldKey, parsed: Parsed<T>): T | undefined => {
    if (parsed.ok) return parsed.value;
    errors[field] = parsed.error;
    return undefined;
  };
  const project = form.project.trim();
  const experiment = form.experiment.trim();
  if (!project) errors.project = "give a project (created if it does not exist)";
  else if (project.length > 200) errors.project = "at most 200 characters";
  if (!experiment) errors.experiment = "give an experiment (created if it does not exist)";
  else if (experiment.length > 200) errors.experiment = "at most 200 characters";
  const name = form.name.trim();
  if (name && !NAME_RE.test(name)) errors.name = "1–64 letters, digits and _ . + : @ = - (no spaces)";

  let command: string[] | undefined;
  let script: string | undefined;
  if (form.mode === "command") {
    command = take("command", splitArgs(form.command));
    if (command && command.length === 0) {
      errors.command = "give the command to run, e.g. python train.py --lr 0.01";
      command = undefined;
    } else if (command && command[0] === "") {
      errors.command = "the program (the first word) cannot be empty";
    } else if (command && command.some((a) => a.includes("\u0000"))) {
      errors.command = "arguments cannot contain NUL characters";
    }
  } else {
    script = form.script;
    if (!script.trim()) errors.script = "paste the sbatch script (its #SBATCH lines are kept)";
    else if (new TextEncoder().encode(script).length > 1024 * 1024) errors.script = "the script is over 1 MB";
  }

  const resources: LaunchResources = {};
  const partition = form.partition.trim();
  if (partition) resources.partition = partition;
  const nodes = take("nodes", parseInt_(form.nodes, 1, 100_000, "nodes"));
  if (nodes != null) resources.nodes = nodes;
  const tasks = take("ntasksPerNode", parseInt_(form.ntasksPerNode, 1, 100_000, "tasks per node"));
  if (tasks != null) resources.ntasks_per_node = tasks;
  const cpus = take("cpusPerTask", parseInt_(form.cpusPerTask, 1, 100_000, "CPUs per task"));
  if (cpus != null) resources.cpus_per_task = cpus;
  const gpus = take("gpusPerNode", parseInt_(form.gpusPerNode, 0, 1024, "GPUs per node"));
  if (gpus != null) resources.gpus_per_node = gpus;
  const mem = take("memGb", parseMem(form.memGb));
  if (mem != null) resources.mem_gb = mem;
  const time = take("time", parseTimeLimit(form.time));
  if (time != null) resources.time_limit_min = time;
  if (form.account.trim()) resources.account = form.account.trim();
  if (form.qos.trim()) resources.qos = form.qos.trim();

  const sweep = take("sweep", parseSweep(form.sweep));
  let array: string | undefined;
  let concurrency: number | null | undefined;
  let metric: { name: string; goal: Goal } | null = null;
  if (sweep) {
    if (form.mode === "script") errors.sweep = "a sweep runs a command, not a script: switch to Command or clear the sweep";
    concurrency = take("sweepThrottle", parseInt_(form.sweepThrottle, 1, MAX_SWEEP_TRIALS, "tasks at once"));
    const metricName = form.sweepMetric.trim();
    if (metricName.length > 250) errors.sweepMetric = "at most 250 characters";
    else if (/[\u0000-\u001f\u007f-\u009f]/.test(metricName)) errors.sweepMetric = "no control characters";
    else if (metricName) metric = { name: metricName, goal: form.sweepGoal === "maximize" ? "maximize" : "minimize" };
    if (form.array.trim()) errors.array = "a sweep is one array itself: clear this field or the sweep";
    if (form.after.trim()) errors.after = "a sweep cannot wait for other jobs: clear this field or the sweep";
    if (form.config.trim()) errors.config = "a sweep's trials get their parameters as their config: clear this field (fixed values can go in the command)";
    if (form.signalBeforeEnd.trim()) errors.signalBeforeEnd = "not available for a sweep: clear this field or the sweep";
  } else if (form.array.trim()) {
    if (take("array", parseArraySpec(form.array))) array = form.array.trim();
  }

  const after = take("after", parseAfter(form.after)) ?? [];
  const maxRestarts = take("maxRestarts", parseInt_(form.maxRestarts, 0, 1000, "most restarts"));
  const signal = take("signalBeforeEnd", parseInt_(form.signalBeforeEnd, 0, 65535, "seconds before the end"));
  const env = take("env", parseEnv(form.env)) ?? {};
  const config = take("config", parseConfig(form.config)) ?? {};
  const tags = take("tags", parseTags(form.tags)) ?? [];

  const workdir = form.workdir.trim();
  if (!workdir) errors.workdir = "give the directory the job runs in (absolute, on the server)";
  else if (!workdir.startsWith("/")) errors.workdir = "the working directory must be an absolute path (starting with /)";
  const outputDir = form.outputDir.trim();

  if (Object.keys(errors).length > 0) return { body: null, sweep: null, errors };
  const body: LaunchBody = {
    project,
    experiment,
    resources,
    after,
    requeue: form.requeue,
    max_restarts: maxRestarts ?? 5,
    env,
    workdir,
    config,
    tags,
  };
  if (name) body.name = name;
  if (command) body.command = command;
  if (script !== undefined) body.script = script;
  if (array) body.array = array;
  if (signal != null) body.signal_before_end_s = signal;
  if (outputDir) body.output_dir = outputDir;
  if (sweep) return { body: null, sweep: sweepSpec(body, sweep, { concurrency, metric }), errors };
  return { body, sweep: null, errors };
}

/** The form field a server error names ("resources.gpus_per_node", "after[0]", "workdir"). */
export function fieldForServerError(field: string | null | undefined, mode: Mode): FieldKey | null {
  if (!field) return null;
  const f = field.replace(/^body\./, "");
  const base = f.replace(/\[\d+\]$/, "").replace(/\[.*$/, "");
  const map: Record<string, FieldKey> = {
    project: "project",
    experiment: "experiment",
    name: "name",
    command: mode === "script" ? "script" : "command",
    script: "script",
    "resources.partition": "partition",
    "resources.nodes": "nodes",
    "resources.ntasks_per_node": "ntasksPerNode",
    "resources.cpus_per_task": "cpusPerTask",
    "resources.gpus_per_node": "gpusPerNode",
    "resources.mem_gb": "memGb",
    "resources.time_limit_min": "time",
    "resources.account": "account",
    "resources.qos": "qos",
    resources: "partition",
    array: "array",
    after: "after",
    dependency: "after",
    requeue: "requeue",
    max_restarts: "maxRestarts",
    signal_before_end_s: "signalBeforeEnd",
    env: "env",
    workdir: "workdir",
    output_dir: "outputDir",
    config: "config",
    tags: "tags",
  };
  return map[base] ?? map[f.split(".")[0]] ?? null;
}

/** The form field a sweep spec error names ("parameters.lr[1]", "concurrency", "env.X",
 * "command[0]", "resources.partition"); the sweep's own keys first, then as for a launch. */
export function fieldForSweepError(field: string | null | undefined): FieldKey | null {
  if (!field) return null;
  const f = field.replace(/^body\./, "");
  const head = f.split(/[.[]/)[0];
  const own: Record<string, FieldKey> = {
    parameters: "sweep",
    method: "sweep",
    concurrency: "sweepThrottle",
    metric: "sweepMetric",
    base_dir: "workdir",
    spec: "sweep",
  };
  if (head in own) return own[head];
  if (head === "resources" && f.startsWith("resources.mem")) return "memGb";
  if (head === "resources" && f.startsWith("resources.time")) return "time";
  return fieldForServerError(f, "command");
}

/** A sweep spec error's message without the "launch form line N: " prefix (the spec is made by
 * the form: its lines mean nothing to the user). */
export function sweepErrorText(message: string): string {
  return message.replace(new RegExp(`^${SWEEP_SOURCE} line \\d+: `), "");
}

// --------------------------------------------------------------------------- warnings

export interface Warning {
  field: FieldKey;
  message: string;
}

/** The partition a job lands in: the one named, else the cluster's default. */
export function effectivePartition(name: string, partitions: ClusterPartition[]): ClusterPartition | null {
  const n = name.trim();
  if (n) return partitions.find((p) => p.name === n) ?? null;
  return partitions.find((p) => p.default) ?? null;
}

function memGb(mb: number): string {
  const gb = mb / 1024;
  return `${Number.isInteger(gb) ? gb : gb.toFixed(1)} GB`;
}

/** Requests the partition cannot meet, as plain sentences next to their fields. These are
 * warnings: Slurm has the last word (limits can change, QOS may allow more), so the form still
 * submits. */
export function resourceWarnings(form: LaunchForm, partitions: ClusterPartition[], nodes: ClusterNode[]): Warning[] {
  const warnings: Warning[] = [];
  if (partitions.length === 0) return warnings;
  const named = form.partition.trim();
  const part = effectivePartition(named, partitions);
  if (!part) {
    if (named) warnings.push({ field: "partition", message: `There is no partition "${named}" on this cluster: sbatch will refuse the job.` });
    return warnings;
  }
  const label = named ? `the ${part.name} partition` : `the default partition (${part.name})`;
  const Label = label[0].toUpperCase() + label.slice(1);
  if (part.state.toUpperCase() !== "UP") {
    warnings.push({ field: "partition", message: `${Label} is ${part.state.toLowerCase()}: the job will wait until it is up again.` });
  }
  const members = nodes.filter((n) => n.partitions.includes(part.name));
  const num = (t: string) => (/^\d+(\.\d+)?$/.test(t.trim()) ? Number(t.trim()) : null);
  const gpus = num(form.gpusPerNode);
  const cpus = num(form.cpusPerTask);
  const tasks = num(form.ntasksPerNode) ?? 1;
  const mem = num(form.memGb.replace(/\s*gb?$/i, ""));
  const nodeCount = num(form.nodes);
  const time = parseTimeLimit(form.time);

  if (members.length > 0) {
    const maxGpus = Math.max(...members.map((n) => n.gpus_total));
    const maxCpus = Math.max(...members.map((n) => n.cpus_total));
    const maxMem = Math.max(...members.map((n) => n.memory_total_mb));
    if (gpus !== null && gpus > maxGpus) {
      warnings.push({
        field: "gpusPerNode",
        message:
          maxGpus === 0
            ? `${Label} has no GPUs: the job would never start.`
            : `No node of ${label} has ${gpus} GPUs (the most is ${maxGpus}): the job would never start.`,
      });
    }
    const cpusNeeded = (cpus ?? 1) * tasks;
    if (cpusNeeded > maxCpus) {
      const what = tasks > 1 ? `${cpusNeeded} CPUs (${tasks} tasks × ${cpus ?? 1})` : `${cpusNeeded} CPUs`;
      warnings.push({
        field: cpus !== null && cpus > maxCpus ? "cpusPerTask" : tasks > 1 ? "ntasksPerNode" : "cpusPerTask",
        message: `No node of ${label} has ${what} (the most is ${maxCpus}).`,
      });
    }
    if (mem !== null && mem * 1024 > maxMem) {
      warnings.push({
        field: "memGb",
        message: `No node of ${label} has ${mem} GB of memory (the most is ${memGb(maxMem)}).`,
      });
    }
    const fits = members.filter(
      (n) =>
        (gpus === null || n.gpus_total >= gpus) &&
        n.cpus_total >= cpusNeeded &&
        (mem === null || n.memory_total_mb >= mem * 1024),
    );
    const need = nodeCount ?? 1;
    if (nodeCount !== null && nodeCount > members.length) {
      warnings.push({ field: "nodes", message: `${Label} has ${members.length} node${members.length === 1 ? "" : "s"}; the job asks for ${nodeCount}.` });
    } else if (fits.length > 0 && fits.length < need) {
      warnings.push({
        field: "nodes",
        message: `Only ${fits.length} node${fits.length === 1 ? "" : "s"} of ${label} can hold what one node asks for; the job asks for ${need}.`,
      });
    }
  } else if (nodeCount !== null && part.total_nodes > 0 && nodeCount > part.total_nodes) {
    warnings.push({ field: "nodes", message: `${Label} has ${part.total_nodes} nodes; the job asks for ${nodeCount}.` });
  }
  if (time.ok && time.value !== null && part.max_time_min !== null && time.value > part.max_time_min) {
    warnings.push({
      field: "time",
      message: `${minutesInWords(time.value)} is over the ${minutesInWords(part.max_time_min)} maximum of ${label}: the job would wait forever (PartitionTimeLimit).`,
    });
  }
  return warnings;
}

// --------------------------------------------------------------------------- relaunch

/** What the launch form reads from GET /api/v1/runs/{id}. */
export interface RunForPrefill {
  name: string;
  config: Record<string, unknown>;
  tags: string[];
  slurm: Record<string, unknown>;
  slurm_partition?: string | null;
}

function str(v: unknown): string {
  return v === null || v === undefined ? "" : String(v);
}

/** The form filled from an earlier run (a launched one knows its command, resources, workdir).
 * The run name of an array task ("train[3]") loses its task suffix. */
export function prefillFromRun(
  run: RunForPrefill,
  names: { project: string; experiment: string },
  fallbackWorkdir = "",
): { form: LaunchForm; notes: string[] } {
  const form = emptyForm(fallbackWorkdir);
  const notes: string[] = [];
  const slurm = run.slurm ?? {};
  form.project = names.project;
  form.experiment = names.experiment;
  const name = run.name.replace(/\[\d+\]$/, "");
  form.name = NAME_RE.test(name) ? name : "";
  const command = slurm.command;
  if (Array.isArray(command) && command.every((a) => typeof a === "string")) {
    form.mode = "command";
    form.command = joinArgs(command as string[]);
  } else if (typeof slurm.script_path === "string" && slurm.script_path) {
    form.mode = "script";
    notes.push(`This run was launched from a script, saved on the server at ${slurm.script_path}: paste its text below.`);
  } else {
    notes.push("This run was not launched through Runyard: its command is unknown, give it below.");
  }
  const req = (slurm.requested ?? {}) as Record<string, unknown>;
  form.partition = str(req.partition ?? run.slurm_partition ?? "");
  form.nodes = str(req.nodes);
  form.ntasksPerNode = str(req.ntasks_per_node);
  form.cpusPerTask = str(req.cpus_per_task);
  form.gpusPerNode = str(req.gpus_per_node ?? (typeof req.gpus === "number" && (req.nodes ?? 1) === 1 ? req.gpus : ""));
  form.memGb = str(req.mem_gb);
  form.time = typeof req.time_limit_min === "number" ? slurmTime(req.time_limit_min) : "";
  form.account = str(req.account);
  form.qos = str(req.qos);
  if (typeof slurm.workdir === "string" && slurm.workdir) form.workdir = slurm.workdir;
  if (typeof slurm.requeue === "boolean") form.requeue = slurm.requeue;
  const config = { ...(run.config ?? {}) };
  const sweep = slurm.sweep as { id?: unknown; index?: unknown } | undefined;
  if (sweep && typeof sweep === "object" && typeof sweep.id === "string") {
    // a sweep's trial: its command already holds its parameters; relaunch it alone
    const which = typeof sweep.index === "number" ? `trial ${sweep.index}` : "a trial";
    notes.push(
      `This run was ${which} of sweep ${sweep.id.slice(0, 8)}: this relaunches that one trial as a plain job, its parameters already in the command and the config.`,
    );
  } else if (typeof slurm.array === "string" && slurm.array) {
    form.array = slurm.array;
  }
  form.config = Object.keys(config).length ? JSON.stringify(config, null, 2) : "";
  form.tags = (run.tags ?? []).join(", ");
  return { form, notes };
}
