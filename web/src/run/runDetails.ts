// Pure helpers of the run page (unit-tested in runDetails.test.ts): requested vs used
// resources, live merges into the loaded run, the latest checkpoint, the config tree, which
// actions apply.
import { formatBytes, formatDuration, formatValue } from "../format";
import type { Artifact, MetricSummary, MetricsEventData, Run, RunEventData } from "../types";
import { ACTIVE_STATUSES, RUN_EVENT_FIELDS } from "../types";

type Dict = Record<string, unknown>;

function dict(value: unknown): Dict | null {
  return value !== null && typeof value === "object" && !Array.isArray(value) ? (value as Dict) : null;
}

function num(data: Dict | null, key: string): number | null {
  const v = data?.[key];
  return typeof v === "number" && Number.isFinite(v) ? v : null;
}

function str(data: Dict | null, key: string): string | null {
  const v = data?.[key];
  if (typeof v === "string" && v) return v;
  if (typeof v === "number") return String(v);
  return null;
}

const GIB = 1024 ** 3;

/** Minutes as "2h 00m" (and "90 min" stays readable). */
function minutes(m: number): string {
  return formatDuration(m * 60);
}

export interface ResourceRow {
  label: string;
  requested: string;
  used: string;
  /** A remark on the used value (e.g. "62% of the limit"). */
  note?: string;
}

/**
 * What the run asked Slurm for (`run.slurm.requested`) next to what it got and used (Slurm's
 * accounting after the end, else what the run reports), one row per resource known on either side.
 */
export function resourceRows(run: Run, now = Date.now() / 1000): ResourceRow[] {
  const slurm = dict(run.slurm) ?? {};
  const req = dict(slurm.requested) ?? {};
  const acct = dict(slurm.accounting);
  const rows: ResourceRow[] = [];
  const add = (label: string, requested: string | null, used: string | null, note?: string) => {
    if (requested === null && used === null) return;
    rows.push({ label, requested: requested ?? "—", used: used ?? "—", ...(note ? { note } : {}) });
  };

  add("Partition", str(req, "partition"), str(acct, "partition") ?? run.slurm_partition);

  const nodes = num(req, "nodes");
  add("Nodes", nodes === null ? null : String(nodes), str(acct, "nodes") ?? run.slurm_nodes);

  const perNode = num(req, "ntasks_per_node");
  const ntasks = num(req, "ntasks");
  add(
    "Tasks",
    perNode !== null ? `${perNode} per node` : ntasks !== null ? String(ntasks) : null,
    null,
  );

  const cpt = num(req, "cpus_per_task");
  const tasks = perNode !== null ? perNode * (nodes ?? 1) : ntasks ?? 1;
  let cpuReq: string | null = null;
  if (cpt !== null) cpuReq = tasks > 1 ? `${cpt * tasks} (${tasks} tasks × ${cpt})` : String(cpt);
  const alloc = num(acct, "alloc_cpus");
  const totalCpu = num(acct, "total_cpu_s");
  const elapsedAcct = num(acct, "elapsed_s");
  let cpuUsed: string | null = alloc === null ? null : `${alloc} allocated`;
  let cpuNote: string | undefined;
  if (alloc !== null && totalCpu !== null && elapsedAcct) {
    const avg = totalCpu / elapsedAcct;
    cpuUsed = `${alloc} allocated, ${avg.toFixed(1)} busy on average`;
    cpuNote = `${Math.round((avg / alloc) * 100)}% efficiency`;
  }
  add("CPUs", cpuReq, cpuUsed, cpuNote);

  const gpn = num(req, "gpus_per_node");
  const gpusTotal = num(req, "gpus");
  let gpuReq: string | null = null;
  if (gpn !== null) gpuReq = (nodes ?? 1) > 1 ? `${gpn} per node (${gpn * (nodes ?? 1)})` : String(gpn);
  else if (gpusTotal !== null) gpuReq = String(gpusTotal);
  const gpusUsed = num(acct, "gpus") ?? num(slurm, "gpus");
  add("GPUs", gpuReq, gpusUsed === null ? null : String(gpusUsed));
  add("GPU type", str(req, "gpu_type"), run.gpu_type);

  const memGb = num(req, "mem_gb");
  const memPerCpu = num(req, "mem_per_cpu_gb");
  const memReq = memGb !== null ? `${memGb} GB per node` : memPerCpu !== null ? `${memPerCpu} GB per CPU` : null;
  const rss = num(acct, "max_rss_bytes");
  const reqBytes = num(acct, "req_mem_bytes") ?? (memGb !== null ? memGb * GIB * (nodes ?? 1) : null);
  let memNote: string | undefined;
  if (rss !== null && reqBytes) memNote = `${Math.round((rss / (reqBytes / (nodes ?? 1))) * 100)}% of the request`;
  add("Memory", memReq, rss === null ? null : `peak ${formatBytes(rss)}`, memNote);

  const limit = num(req, "time_limit_min") ?? num(acct, "time_limit_min") ?? num(slurm, "time_limit_min");
  let elapsed = elapsedAcct;
  if (elapsed === null && run.started_at !== null) elapsed = Math.max(0, (run.ended_at ?? now) - run.started_at);
  const timeNote = limit && elapsed !== null ? `${Math.round((elapsed / (limit * 60)) * 100)}% of the limit` : undefined;
  add(
    "Time",
    limit === null ? null : `${minutes(limit)} limit`,
    elapsed === null ? null : `${formatDuration(elapsed)}${run.ended_at === null && elapsedAcct === null ? " so far" : ""}`,
    timeNote,
  );

  add("Account", str(req, "account"), null);
  add("QOS", str(req, "qos"), null);
  return rows;
}

/** Bookkeeping entries of `run.slurm` that say nothing to a reader. */
const HIDDEN_SLURM_KEYS = new Set(["api_key_id"]);

/** The other entries of `run.slurm` (command, workdir, output paths, …) as label/text pairs. */
export function slurmExtras(run: Run): [string, string][] {
  const slurm = dict(run.slurm) ?? {};
  const out: [string, string][] = [];
  for (const [key, value] of Object.entries(slurm)) {
    if (key === "requested" || key === "accounting" || HIDDEN_SLURM_KEYS.has(key)) continue;
    if (value === null || value === undefined || value === "") continue;
    let text: string;
    if (key === "command" && Array.isArray(value)) text = value.map(String).join(" ");
    else text = formatValue(value);
    out.push([key, text]);
  }
  return out;
}

/** Slurm's final accounting record, as label/text pairs (state, exit code, signal, …). */
export function accountingFacts(run: Run): [string, string][] {
  const acct = dict(dict(run.slurm)?.accounting);
  if (!acct) return [];
  const out: [string, string][] = [];
  const state = str(acct, "state");
  if (state) out.push(["Final state", state]);
  const code = num(acct, "exit_code");
  if (code !== null) out.push(["Exit code", String(code)]);
  const signal = num(acct, "signal");
  if (signal) out.push(["Signal", String(signal)]);
  const total = num(acct, "total_cpu_s");
  if (total !== null) out.push(["CPU time", formatDuration(total)]);
  const req = num(acct, "req_mem_bytes");
  if (req !== null) out.push(["Memory allocated", formatBytes(req)]);
  return out;
}

// ------------------------------------------------------------------------- live merges


/** The run with what a live `run` event says about it; other runs' events change nothing. */
export function mergeRunEvent(run: Run, data: RunEventData): Run {
  if (data.run_id !== run.id) return run;
  const next: Run = { ...run };
  let changed = false;
  for (const key of RUN_EVENT_FIELDS) {
    if (!(key in data)) continue;
    const value = data[key];
    if (JSON.stringify(value) !== JSON.stringify(run[key])) {
      (next as unknown as Dict)[key] = value;
      changed = true;
    }
  }
  return changed ? next : run;
}

/** The metric summaries after a live `metrics` event: count, last value and step, min/max widened by the last value. */
export function mergeMetricsEvent(run: Run, data: MetricsEventData): Run {
  if (data.run_id !== run.id) return run;
  const metrics: Record<string, MetricSummary> = { ...run.metrics };
  for (const [key, m] of Object.entries(data.metrics)) {
    metrics[key] = {
      key,
      count: m.count,
      last: m.last,
      last_step: m.last_step,
      last_time: m.last_time,
      min: m.min, // exact: the event carries the stored summary's min and max
      max: m.max,
    };
  }
  return { ...run, metrics };
}

// ------------------------------------------------------------------------- actions

export function isActive(status: string): boolean {
  return ACTIVE_STATUSES.has(status);
}

/** Why cancel cannot apply now, or null when it can. */
export function cancelBlocked(run: Pick<Run, "status" | "slurm_job_id">): string | null {
  if (!isActive(run.status)) return `the run has ended (${run.status})`;
  if (!run.slurm_job_id) return "the run has no Slurm job (it was not launched through Slurm)";
  return null;
}

/** Why requeue cannot apply now, or null when it can. */
export function requeueBlocked(run: Pick<Run, "status" | "slurm_job_id">): string | null {
  if (!run.slurm_job_id) return "the run has no Slurm job (it was not launched through Slurm)";
  if (!isActive(run.status)) return `the run has ended (${run.status})`;
  return null;
}

// ------------------------------------------------------------------------- artifacts

/** The id of the newest checkpoint (latest recorded; the higher step when recorded together). */
export function latestCheckpointId(artifacts: Artifact[]): string | null {
  let best: Artifact | null = null;
  for (const a of artifacts) {
    if (a.kind !== "checkpoint") continue;
    if (
      best === null ||
      a.created_at > best.created_at ||
      (a.created_at === best.created_at && (a.step ?? -1) > (best.step ?? -1))
    )
      best = a;
  }
  return best?.id ?? null;
}

// ------------------------------------------------------------------------- config

export interface TreeRow {
  /** The key path, for React keys. */
  path: string;
  key: string;
  depth: number;
  /** null for a group (an object or list whose entries follow, one level deeper). */
  value: string | null;
  /** A group's size, e.g. "3 keys", "2 items"; an empty group's text is its value. */
  size?: string;
}

/** A nested config as rows of an indented tree; lists of scalars stay on one line. */
export function configRows(config: unknown, depth = 0, prefix = ""): TreeRow[] {
  const rows: TreeRow[] = [];
  const entries: [string, unknown][] = Array.isArray(config)
    ? config.map((v, i) => [String(i), v])
    : Object.entries(dict(config) ?? {});
  for (const [key, value] of entries) {
    const path = prefix ? `${prefix}.${key}` : key;
    const isObject = dict(value) !== null;
    const isNestedList = Array.isArray(value) && value.some((v) => v !== null && typeof v === "object");
    if ((isObject || isNestedList) && Object.keys(value as object).length > 0) {
      const n = Array.isArray(value) ? value.length : Object.keys(value as object).length;
      const size = Array.isArray(value) ? `${n} item${n === 1 ? "" : "s"}` : `${n} key${n === 1 ? "" : "s"}`;
      rows.push({ path, key, depth, value: null, size });
      rows.push(...configRows(value, depth + 1, path));
    } else {
      rows.push({ path, key, depth, value: valueText(value) });
    }
  }
  return rows;
}

/** A config value as text: strings as they are, everything else as JSON. */
export function valueText(value: unknown): string {
  if (typeof value === "string") return value;
  if (value === undefined) return "";
  if (typeof value === "number" && !Number.isFinite(value)) return String(value);
  return JSON.stringify(value);
}

// ------------------------------------------------------------------------- tags

/** A tag typed by the user, trimmed; an error text when it cannot be a tag. */
export function checkTag(text: string, existing: string[]): { tag: string } | { error: string } {
  const tag = text.trim();
  if (!tag) return { error: "a tag cannot be empty" };
  if (tag.length > 200) return { error: "a tag is at most 200 characters" };
  if (existing.includes(tag)) return { error: `the run already has the tag “${tag}”` };
  return { tag };
}
