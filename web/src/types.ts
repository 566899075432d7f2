// The JSON shapes of the REST API the UI reads (see /openapi.json). Numbers the server could
// not send as JSON numbers (NaN, ±Infinity) arrive as strings: see `toNumber` in format.ts.

export type RunStatus =
  | "created"
  | "queued"
  | "running"
  | "requeued"
  | "finished"
  | "failed"
  | "timeout"
  | "cancelled"
  | "oom"
  | "node_fail"
  | "pruned"
  | string;

export type WireFloat = number | string | null;

export interface User {
  id: string;
  username: string;
  is_admin: boolean;
  created_at: number;
}

export interface Project {
  id: string;
  name: string;
  description: string;
  created_at: number;
  owner_id: string | null;
}

export interface Experiment {
  id: string;
  project_id: string;
  name: string;
  description: string;
  created_at: number;
  updated_at: number;
  run_count: number;
  running_count: number;
  queued_count: number;
  last_activity_at: number | null;
}

export interface MetricSummary {
  key: string;
  count: number;
  last: WireFloat;
  last_step: number | null;
  last_time: number | null;
  min: WireFloat;
  max: WireFloat;
}

export interface Run {
  id: string;
  experiment_id: string;
  project_id: string;
  name: string;
  status: RunStatus;
  created_at: number;
  updated_at: number;
  started_at: number | null;
  ended_at: number | null;
  user_id: string | null;
  host: string | null;
  config: Record<string, unknown>;
  summary: Record<string, unknown>;
  tags: string[];
  notes: string;
  exit_code: number | null;
  gpu_type: string | null;
  slurm_job_id: string | null;
  slurm_array_job_id: string | null;
  slurm_array_task_id: number | null;
  slurm_nodes: string | null;
  slurm_partition: string | null;
  slurm_cluster: string | null;
  restart_count: number;
  slurm_state: string | null;
  pending_reason: string | null;
  start_estimate: number | null;
  state_unknown_since: number | null;
  slurm_done: boolean;
  slurm: Record<string, unknown>;
  metrics: Record<string, MetricSummary>;
}

export interface RunPage {
  runs: Run[];
  offset: number;
  limit: number;
  next_offset: number | null;
  total: number | null;
}

export interface Series {
  key: string;
  steps: number[];
  times: number[];
  values: WireFloat[];
  total: number;
  downsampled: boolean;
}

export interface LogLine {
  id: number;
  time: number;
  stream: string;
  host: string | null;
  rank: number | null;
  line: string;
}

export interface Artifact {
  id: string;
  run_id: string;
  name: string;
  path: string;
  kind: string;
  created_at: number;
  size_bytes: number | null;
  sha256: string | null;
  step: number | null;
  stored: boolean;
}

/** A `run` event of /api/v1/events: the fields a runs table shows. */
export interface RunEventData {
  run_id: string;
  status: RunStatus;
  tags: string[];
  experiment_id: string;
  project_id: string;
  name: string;
  user_id: string | null;
  created_at: number;
  started_at: number | null;
  ended_at: number | null;
  updated_at: number;
  exit_code: number | null;
  host: string | null;
  restart_count: number;
  slurm_job_id: string | null;
  slurm_state: string | null;
  pending_reason: string | null;
  start_estimate: number | null;
  state_unknown_since: number | null;
  slurm_done: boolean;
}

/** The fields of a `run` event that update a loaded run (the server's events._RUN_FIELDS). */
export const RUN_EVENT_FIELDS = [
  "status",
  "tags",
  "name",
  "started_at",
  "ended_at",
  "updated_at",
  "exit_code",
  "host",
  "restart_count",
  "slurm_job_id",
  "slurm_state",
  "pending_reason",
  "start_estimate",
  "state_unknown_since",
  "slurm_done",
] as const;

export interface MetricsEventData {
  run_id: string;
  experiment_id: string;
  metrics: Record<
    string,
    { count: number; new: number; last: WireFloat; min: WireFloat; max: WireFloat; last_step: number | null; last_time: number | null }
  >;
}

export interface LogsEventData {
  run_id: string;
  experiment_id: string;
  lines: LogLine[];
  truncated: boolean;
}

export const ACTIVE_STATUSES: ReadonlySet<string> = new Set(["created", "queued", "running", "requeued"]);

// ---- sweeps and pipelines (GET /api/v1/sweeps, /api/v1/pipelines)

export type SweepMethod = "grid" | "random" | "list" | "adaptive";
export type SweepGoal = "minimize" | "maximize";

/** Trials per state; `queued` includes created, `failed` includes timeout, oom, node_fail. */
export interface SweepCounts {
  queued: number;
  running: number;
  finished: number;
  failed: number;
  pruned: number;
  cancelled: number;
}

export interface SweepSummary {
  id: string;
  name: string;
  experiment_id: string;
  project_id: string;
  user_id: string | null;
  method: SweepMethod;
  created_at: number;
  metric: { name: string; goal: SweepGoal } | null;
  concurrency: number | null;
  trial_count: number;
  state: "running" | "finished" | "cancelled";
  counts: SweepCounts;
  best: { run_id: string; index: number; value: WireFloat; params: Record<string, unknown> } | null;
  /** The Slurm array job ids (one per submission or extension). */
  job_ids: string[];
}

export interface SweepParameter {
  name: string;
  kind: "values" | "range";
  values: unknown[] | null;
  low: number | null;
  high: number | null;
  log: boolean;
  integer: boolean;
}

export interface SweepTrial {
  index: number;
  run_id: string;
  name: string;
  status: RunStatus;
  params: Record<string, unknown>;
  /** The metric's last value. */
  value: WireFloat;
  step: number | null;
  slurm_job_id: string | null;
  /** Why it was pruned or failed (one sentence). */
  reason: string | null;
}

export interface SweepDetail extends SweepSummary {
  parameters: SweepParameter[];
  early_stop: { rule: "median" | "halving"; min_step: number; min_trials: number } | null;
  /** Ordered by index. */
  trials: SweepTrial[];
  /** Sorted high to low, sums to 1; null until enough trials finished. */
  importance: { param: string; importance: number }[] | null;
  /** The YAML as submitted. */
  spec: string;
}

export type PipelineStepState = "waiting" | "queued" | "running" | "finished" | "failed" | "cancelled" | "never";

export interface PipelineSummary {
  id: string;
  name: string;
  experiment_id: string;
  project_id: string;
  user_id: string | null;
  created_at: number;
  state: "running" | "finished" | "failed" | "cancelled";
  counts: Partial<Record<PipelineStepState, number>>;
}

export interface PipelineStep {
  name: string;
  run_id: string;
  slurm_job_id: string | null;
  command: string[];
  after: { step: string; when: "ok" | "any" | "notok" }[];
  /** The run's status. */
  status: RunStatus;
  state: PipelineStepState;
  /** e.g. "never runs: train failed and evaluate needs it to succeed (after train:ok)". */
  reason: string | null;
  started_at: number | null;
  ended_at: number | null;
  pending_reason: string | null;
}

export interface PipelineDetail extends PipelineSummary {
  spec: string;
  steps: PipelineStep[];
}
