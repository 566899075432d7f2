// The cluster view's shapes (GET /api/v1/cluster) and the pure logic of the cluster page:
// node state classes, allocation percentages, per-partition totals, queue order, reasons.
// Unit-tested in cluster.test.ts.

export interface ClusterNode {
  name: string;
  state: string;
  cpus_alloc: number;
  cpus_total: number;
  gpus_used: number;
  gpus_total: number;
  memory_alloc_mb: number;
  memory_total_mb: number;
  partitions: string[];
  reason: string | null;
}

export interface ClusterPartition {
  name: string;
  state: string;
  default: boolean;
  max_time_min: number | null;
  default_time_min: number | null;
  nodes: string | null;
  total_nodes: number;
  total_cpus: number;
  gpus: number;
  memory_mb: number | null;
}

export interface QueueRow {
  id: string;
  job_id: number;
  array_job_id: number | null;
  array_task_id: number | null;
  name: string;
  user: string | null;
  state: string;
  reason: string | null;
  partition: string | null;
  nodes: string | null;
  gpus_per_node: number;
  time_limit_min: number | null;
  submit_time: number | null;
  start_time: number | null;
  start_estimate: number | null;
  restart_count: number;
  run_id: string | null;
  run_ids: string[];
}

export interface ExperimentGpuHours {
  experiment_id: string;
  experiment: string | null;
  project_id: string;
  runs: number;
  gpu_hours: number;
  my_gpu_hours: number;
}

export interface ClusterView {
  executor: string;
  taken_at: number;
  nodes: ClusterNode[];
  partitions: ClusterPartition[];
  queue: QueueRow[];
  mine: QueueRow[];
  gpu_hours: { experiments: ExperimentGpuHours[]; scanned_runs: number; truncated: boolean };
  errors: Record<string, string>;
}

// --------------------------------------------------------------------------- nodes

export type NodeKind = "idle" | "mixed" | "allocated" | "down" | "drain" | "other";

export interface NodeStateInfo {
  kind: NodeKind;
  /** Plain words for the state, e.g. "idle", "partly allocated", "drained". */
  label: string;
  /** Whether new jobs can start on the node. */
  usable: boolean;
}

/** Slurm's node state ("idle", "MIXED", "down*", "idle+drain", "drained", "allocated+completing")
 * in one of a few classes, with a label in plain words. */
export function nodeState(state: string | null | undefined): NodeStateInfo {
  const s = (state ?? "").trim().toLowerCase();
  if (s.includes("drain")) {
    const busy = s.includes("mix") || s.includes("alloc") || s.includes("draining");
    return { kind: "drain", label: busy ? "draining" : "drained", usable: false };
  }
  if (s.includes("down") || s.includes("fail") || s.includes("not_respond") || s.includes("no_respond") || s.endsWith("*")) {
    return { kind: "down", label: "down", usable: false };
  }
  if (s.startsWith("mix")) return { kind: "mixed", label: "partly allocated", usable: true };
  if (s.startsWith("alloc") || s.startsWith("completing")) return { kind: "allocated", label: "fully allocated", usable: true };
  if (s.startsWith("idle")) return { kind: "idle", label: "idle", usable: true };
  return { kind: "other", label: s || "unknown", usable: !s.includes("maint") && !s.includes("reserved") && !s.includes("future") };
}

/** used/total as a whole percentage in 0..100 (0 when the total is 0). */
export function percent(used: number, total: number): number {
  if (!Number.isFinite(used) || !Number.isFinite(total) || total <= 0) return 0;
  return Math.max(0, Math.min(100, Math.round((used / total) * 100)));
}

export interface NodeAllocation {
  cpuPct: number;
  gpuPct: number;
  memPct: number;
  cpusIdle: number;
  gpusIdle: number;
}

export function nodeAllocation(node: ClusterNode): NodeAllocation {
  return {
    cpuPct: percent(node.cpus_alloc, node.cpus_total),
    gpuPct: percent(node.gpus_used, node.gpus_total),
    memPct: percent(node.memory_alloc_mb, node.memory_total_mb),
    cpusIdle: Math.max(0, node.cpus_total - node.cpus_alloc),
    gpusIdle: Math.max(0, node.gpus_total - node.gpus_used),
  };
}

/** Nodes sorted by name with numbers in order (n2 before n10). */
export function sortNodes(nodes: ClusterNode[]): ClusterNode[] {
  const collator = new Intl.Collator(undefined, { numeric: true });
  return [...nodes].sort((a, b) => collator.compare(a.name, b.name));
}

/** Megabytes (Slurm's, 1024 per GB) as "3.9 GB" / "512 MB". */
export function formatMemMb(mb: number | null | undefined): string {
  if (mb === null || mb === undefined || !Number.isFinite(mb)) return "";
  if (mb < 1024) return `${Math.round(mb)} MB`;
  const gb = mb / 1024;
  return `${gb < 10 ? gb.toFixed(1).replace(/\.0$/, "") : Math.round(gb)} GB`;
}

// --------------------------------------------------------------------------- partitions

export interface PartitionSummary {
  partition: ClusterPartition;
  up: boolean;
  nodeCount: number;
  cpusTotal: number;
  cpusIdle: number;
  gpusTotal: number;
  gpusIdle: number;
  /** Nodes of the partition that cannot take jobs (down, drained). */
  unusableNodes: number;
}

/** Totals and what is idle now, from the nodes that belong to the partition (usable ones only
 * count as idle); falls back to the partition's own totals when no node lists it. */
export function summarizePartition(partition: ClusterPartition, nodes: ClusterNode[]): PartitionSummary {
  const members = nodes.filter((n) => n.partitions.includes(partition.name));
  const up = partition.state.toUpperCase() === "UP";
  if (members.length === 0) {
    return {
      partition,
      up,
      nodeCount: partition.total_nodes,
      cpusTotal: partition.total_cpus,
      cpusIdle: 0,
      gpusTotal: partition.gpus,
      gpusIdle: 0,
      unusableNodes: 0,
    };
  }
  let cpusTotal = 0;
  let cpusIdle = 0;
  let gpusTotal = 0;
  let gpusIdle = 0;
  let unusable = 0;
  for (const node of members) {
    const usable = nodeState(node.state).usable;
    const alloc = nodeAllocation(node);
    cpusTotal += node.cpus_total;
    gpusTotal += node.gpus_total;
    if (usable && up) {
      cpusIdle += alloc.cpusIdle;
      gpusIdle += alloc.gpusIdle;
    }
    if (!usable) unusable++;
  }
  return { partition, up, nodeCount: members.length, cpusTotal, cpusIdle, gpusTotal, gpusIdle, unusableNodes: unusable };
}

// --------------------------------------------------------------------------- the queue

const RUNNING_STATES = new Set(["RUNNING", "CONFIGURING", "COMPLETING", "SUSPENDED", "STAGE_OUT", "RESIZING", "SIGNALING", "STOPPED"]);

export type QueueGroup = "pending" | "running" | "ended";

export function queueGroup(row: Pick<QueueRow, "state">): QueueGroup {
  const state = row.state.toUpperCase();
  if (state === "PENDING" || state === "REQUEUED" || state === "REQUEUE_HOLD" || state === "REQUEUE_FED") return "pending";
  if (RUNNING_STATES.has(state)) return "running";
  return "ended";
}

const GROUP_ORDER: Record<QueueGroup, number> = { pending: 0, running: 1, ended: 2 };

/** An array task's job (its array's id) or the job itself: tasks of one array stay together. */
const base = (row: QueueRow) => row.array_job_id ?? row.job_id;

/** Pending first (those with a start estimate first, soonest first; then by submit time),
 * then running (longest running first), then jobs that have just ended (newest first); the
 * tasks of one array in task order. */
export function sortQueue(rows: QueueRow[]): QueueRow[] {
  const key = (n: number | null | undefined) => (n === null || n === undefined ? Number.POSITIVE_INFINITY : n);
  return [...rows].sort((a, b) => {
    const ga = queueGroup(a);
    const gb = queueGroup(b);
    if (ga !== gb) return GROUP_ORDER[ga] - GROUP_ORDER[gb];
    if (ga === "pending") {
      const ea = key(a.start_estimate);
      const eb = key(b.start_estimate);
      if (ea !== eb) return ea < eb ? -1 : 1;
      const sa = key(a.submit_time);
      const sb = key(b.submit_time);
      if (sa !== sb) return sa < sb ? -1 : 1;
    } else if (ga === "running") {
      const sa = key(a.start_time);
      const sb = key(b.start_time);
      if (sa !== sb) return sa < sb ? -1 : 1;
    } else {
      if (base(a) !== base(b)) return base(b) - base(a);
    }
    if (base(a) !== base(b)) return base(a) - base(b);
    return (a.array_task_id ?? -1) - (b.array_task_id ?? -1);
  });
}

export function queueCounts(rows: QueueRow[]): Record<QueueGroup, number> {
  const counts: Record<QueueGroup, number> = { pending: 0, running: 0, ended: 0 };
  for (const row of rows) counts[queueGroup(row)]++;
  return counts;
}

const REASONS: Record<string, string> = {
  Resources: "waiting for free resources",
  Priority: "jobs with higher priority go first",
  Dependency: "waiting for the jobs it depends on",
  DependencyNeverSatisfied: "its dependency can never be met: cancel it",
  JobHeldUser: "held by its user (scontrol release)",
  JobHeldAdmin: "held by an administrator",
  BeginTime: "its start time has not come yet",
  ReqNodeNotAvail: "the nodes it needs are not available",
  PartitionTimeLimit: "its time limit is over the partition's maximum",
  PartitionNodeLimit: "it asks for more nodes than the partition allows",
  PartitionDown: "the partition is down",
  PartitionInactive: "the partition is inactive",
  NodeDown: "a node it needs is down",
  JobArrayTaskLimit: "the array's limit of tasks at once (%) is reached",
  QOSMaxGRESPerUser: "your QOS limit of GPUs is reached",
  QOSMaxCpuPerUserLimit: "your QOS limit of CPUs is reached",
  QOSMaxJobsPerUserLimit: "your QOS limit of running jobs is reached",
  AssocGrpGRES: "your account's GPU limit is reached",
  AssocGrpCpuLimit: "your account's CPU limit is reached",
  AssocMaxJobsLimit: "your account's limit of running jobs is reached",
  BadConstraints: "its constraints cannot be met by any node",
  Reservation: "waiting for a reservation",
  Licenses: "waiting for licenses",
  Cleaning: "being cleaned up after a requeue",
  None: "not looked at by the scheduler yet",
};

/** A pending reason in plain words (the Slurm code stays visible next to it). */
export function explainReason(reason: string | null | undefined): string {
  if (!reason) return "";
  return REASONS[reason] ?? "";
}

/** Minutes as "10 min", "1 h 30 min", "2 d", null as "no limit". */
export function formatLimit(minutes: number | null | undefined): string {
  if (minutes === null || minutes === undefined) return "no limit";
  const d = Math.floor(minutes / 1440);
  const h = Math.floor((minutes % 1440) / 60);
  const m = minutes % 60;
  const parts: string[] = [];
  if (d) parts.push(`${d} d`);
  if (h) parts.push(`${h} h`);
  if (m || parts.length === 0) parts.push(`${m} min`);
  return parts.join(" ");
}

/** Seconds a running job has run (null before it starts). */
export function elapsedSeconds(row: Pick<QueueRow, "start_time" | "state">, now = Date.now() / 1000): number | null {
  if (row.start_time === null || row.start_time === undefined) return null;
  if (queueGroup(row) === "pending") return null;
  return Math.max(0, now - row.start_time);
}

/** Fraction 0..1 of the time limit a running job has used (null without a limit). */
export function timeUsedFraction(row: Pick<QueueRow, "start_time" | "state" | "time_limit_min">, now = Date.now() / 1000): number | null {
  const elapsed = elapsedSeconds(row, now);
  if (elapsed === null || !row.time_limit_min) return null;
  return Math.min(1, elapsed / (row.time_limit_min * 60));
}

// --------------------------------------------------------------------------- refresh

/** Calls `fn` at most once per `ms`: the first call runs at once, later ones are folded into
 * one trailing call. `cancel` drops a pending trailing call. */
export function throttle(fn: () => void, ms: number, clock: () => number = Date.now) {
  let last = -Infinity;
  let timer: ReturnType<typeof setTimeout> | null = null;
  const run = () => {
    timer = null;
    last = clock();
    fn();
  };
  const call = () => {
    if (timer !== null) return;
    const wait = last + ms - clock();
    if (wait <= 0) run();
    else timer = setTimeout(run, wait);
  };
  call.cancel = () => {
    if (timer !== null) clearTimeout(timer);
    timer = null;
  };
  return call;
}

/** "just now", "3 s ago", "2 min ago" for the age of the data. */
export function updatedAgo(receivedAtMs: number, nowMs: number): string {
  const s = Math.max(0, Math.round((nowMs - receivedAtMs) / 1000));
  if (s < 2) return "updated just now";
  if (s < 90) return `updated ${s} s ago`;
  return `updated ${Math.round(s / 60)} min ago`;
}
