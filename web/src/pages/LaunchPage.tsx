// "Start experiment": launch a command (argv, no shell) or an sbatch script through the server
// (POST /api/v1/launch), with resources in plain words, warnings against the partition's
// limits and arrays; a grid of parameters becomes a sweep (POST /api/v1/sweeps, one trial per
// combination) and the page goes to it. /launch?from=RUN_ID relaunches a run with edits.
import { useEffect, useMemo, useState, type FormEvent } from "react";

import { api, ApiError } from "../api";
import type { ClusterView } from "../cluster/cluster";
import { ErrorMessage, errorText, Loading, useAsync } from "../components/common";
import { Field, fieldProps, type FieldState } from "../launch/Field";
import "../launch/launch.css";
import {
  arrayPreview,
  buildBody,
  effectivePartition,
  emptyForm,
  fieldForServerError,
  fieldForSweepError,
  joinArgs,
  minutesInWords,
  parseArraySpec,
  parseSweep,
  parseTimeLimit,
  prefillFromRun,
  resourceWarnings,
  slurmTime,
  splitArgs,
  sweepErrorText,
  sweepRequest,
  trialArgv,
  usesPlaceholders,
  type FieldKey,
  type Goal,
  type LaunchForm,
} from "../launch/launchForm";
import { ArgvPreview, ModeSwitch, SweepTable } from "../launch/parts";
import { Link, navigate, useRoute } from "../router";
import type { Experiment, Project, Run } from "../types";

const WORKDIR_KEY = "runyard-launch-workdir";

interface LaunchOut {
  job_id: string;
  executor: string;
  run_ids: string[];
  array_task_ids: number[] | null;
}

interface SweepOut {
  id: string;
  name: string;
  trial_count: number;
  job_id: string;
  run_ids: string[];
}

function savedWorkdir(): string {
  try {
    return localStorage.getItem(WORKDIR_KEY) ?? "";
  } catch {
    return "";
  }
}

const LABELS: Record<FieldKey, string> = {
  project: "Project",
  experiment: "Experiment",
  name: "Run name",
  mode: "What to run",
  command: "Command",
  script: "sbatch script",
  partition: "Partition",
  nodes: "Nodes",
  ntasksPerNode: "Tasks per node",
  gpusPerNode: "GPUs per node",
  cpusPerTask: "CPUs per task",
  memGb: "Memory (GB)",
  time: "Time limit",
  array: "Array",
  sweep: "Sweep parameters",
  sweepThrottle: "Tasks at once",
  sweepMetric: "Metric to optimise",
  sweepGoal: "Goal",
  after: "Start after",
  requeue: "Requeue",
  maxRestarts: "Most restarts",
  env: "Environment",
  config: "Config (JSON)",
  tags: "Tags",
  workdir: "Working directory",
  outputDir: "Output directory",
  account: "Account",
  qos: "QOS",
  signalBeforeEnd: "Warning signal before the end (s)",
};

const ORDER: FieldKey[] = [
  "project",
  "experiment",
  "name",
  "command",
  "script",
  "workdir",
  "partition",
  "nodes",
  "gpusPerNode",
  "cpusPerTask",
  "memGb",
  "time",
  "array",
  "sweep",
  "sweepThrottle",
  "sweepMetric",
  "sweepGoal",
  "after",
  "requeue",
  "env",
  "config",
  "tags",
  "account",
  "qos",
  "ntasksPerNode",
  "outputDir",
  "signalBeforeEnd",
  "maxRestarts",
];

const ADVANCED = new Set<FieldKey>(["account", "qos", "ntasksPerNode", "outputDir", "signalBeforeEnd", "maxRestarts"]);

const fid = (key: FieldKey) => `lf-${key}`;

function formatGbFromMb(mb: number): string {
  const gb = mb / 1024;
  return `${Number.isInteger(gb) ? gb : gb.toFixed(1)} GB`;
}

export function LaunchPage() {
  const route = useRoute();
  const from = route.query.get("from");
  const qProject = route.query.get("project");
  const qExperiment = route.query.get("experiment");

  const [form, setForm] = useState<LaunchForm>(() => ({
    ...emptyForm(savedWorkdir()),
    project: qProject ?? "",
    experiment: qExperiment ?? "",
  }));
  const [touched, setTouched] = useState<Set<FieldKey>>(() => new Set());
  const [submitted, setSubmitted] = useState(false);
  const [serverErrors, setServerErrors] = useState<Partial<Record<FieldKey, string>>>({});
  const [submitError, setSubmitError] = useState<unknown>(null);
  const [serverField, setServerField] = useState<FieldKey | null>(null);
  const [submitting, setSubmitting] = useState(false);
  const [advancedOpen, setAdvancedOpen] = useState(false);
  const [notes, setNotes] = useState<string[]>([]);

  const cluster = useAsync((signal) => api.get<ClusterView>("/api/v1/cluster", undefined, signal), []);
  const projects = useAsync((signal) => api.get<Project[]>("/api/v1/projects", undefined, signal), []);
  const experiments = useAsync((signal) => api.get<Experiment[]>("/api/v1/experiments", undefined, signal), []);

  const prefill = useAsync(
    async (signal) => {
      if (!from) return null;
      const run = await api.get<Run>(`/api/v1/runs/${encodeURIComponent(from)}`, undefined, signal);
      const [experiment, project] = await Promise.all([
        api.get<Experiment>(`/api/v1/experiments/${encodeURIComponent(run.experiment_id)}`, undefined, signal),
        api.get<Project>(`/api/v1/projects/${encodeURIComponent(run.project_id)}`, undefined, signal),
      ]);
      return { run, ...prefillFromRun(run, { project: project.name, experiment: experiment.name }, savedWorkdir()) };
    },
    [from],
  );
  useEffect(() => {
    if (!prefill.data) return;
    setForm(prefill.data.form);
    setNotes(prefill.data.notes);
    const f = prefill.data.form;
    if (f.account || f.qos || (f.ntasksPerNode && f.ntasksPerNode !== "1") || f.outputDir) setAdvancedOpen(true);
  }, [prefill.data]);

  const set = <K extends FieldKey>(key: K, value: LaunchForm[K]) => {
    setForm((f) => ({ ...f, [key]: value }));
    setServerErrors((e) => {
      if (!(key in e)) return e;
      const next = { ...e };
      delete next[key];
      return next;
    });
  };
  const touch = (key: FieldKey) => setTouched((t) => (t.has(key) ? t : new Set(t).add(key)));

  const built = useMemo(() => buildBody(form), [form]);
  const partitions = cluster.data?.partitions ?? [];
  const nodes = cluster.data?.nodes ?? [];
  const warnings = useMemo(() => resourceWarnings(form, partitions, nodes), [form, partitions, nodes]);
  const warningsBy = useMemo(() => {
    const by: Partial<Record<FieldKey, string[]>> = {};
    for (const w of warnings) (by[w.field] ??= []).push(w.message);
    return by;
  }, [warnings]);

  const showError = (key: FieldKey) => {
    const value = form[key];
    return submitted || touched.has(key) || (typeof value === "string" && value.trim() !== "");
  };
  const state = (key: FieldKey, hint?: FieldState["hint"]): FieldState => ({
    error: serverErrors[key] ?? (showError(key) ? built.errors[key] : undefined),
    warnings: warningsBy[key],
    hint,
  });
  const text = (key: FieldKey, extra: Record<string, unknown> = {}) => ({
    ...fieldProps(fid(key), state(key)),
    value: form[key] as string,
    onChange: (e: { target: { value: string } }) => set(key, e.target.value as never),
    onBlur: () => touch(key),
    ...extra,
  });

  // ---------------------------------------------------------------- derived previews
  const argv = splitArgs(form.command);
  const time = parseTimeLimit(form.time);
  const array = form.array.trim() ? parseArraySpec(form.array) : null;
  const sweep = parseSweep(form.sweep);
  const sweepTrials = sweep.ok && sweep.value ? sweep.value.tasks.length : 0;
  const part = effectivePartition(form.partition, partitions);
  const defaultPartition = partitions.find((p) => p.default) ?? null;
  const partNodes = part ? nodes.filter((n) => n.partitions.includes(part.name)) : [];
  const projectId = projects.data?.find((p) => p.name === form.project.trim())?.id;
  const experimentOptions = (experiments.data ?? []).filter((e) => projectId && e.project_id === projectId);

  const clusterProblem = cluster.error;
  const noExecutor = clusterProblem instanceof ApiError && clusterProblem.status === 503;

  // ---------------------------------------------------------------- submit
  const focusField = (key: FieldKey) => {
    if (ADVANCED.has(key)) setAdvancedOpen(true);
    setTimeout(() => document.getElementById(fid(key))?.focus(), 0);
  };

  const onSubmit = async (e: FormEvent) => {
    e.preventDefault();
    setSubmitted(true);
    setSubmitError(null);
    setServerField(null);
    if (!built.body && !built.sweep) {
      const first = ORDER.find((k) => built.errors[k]);
      if (first) focusField(first);
      return;
    }
    const rememberWorkdir = (workdir: string) => {
      try {
        localStorage.setItem(WORKDIR_KEY, workdir);
      } catch {
        // storage may be off: nothing to remember then
      }
    };
    setSubmitting(true);
    setServerErrors({});
    if (built.sweep) {
      const spec = built.sweep;
      try {
        const out = await api.post<SweepOut>("/api/v1/sweeps", sweepRequest(spec));
        rememberWorkdir(spec.workdir);
        navigate(`/sweeps/${encodeURIComponent(out.id)}`);
      } catch (err) {
        if (err instanceof ApiError) {
          const key = fieldForSweepError(err.field);
          if (key) {
            setServerErrors({ [key]: sweepErrorText(err.message) });
            setServerField(key);
            focusField(key);
          }
        }
        setSubmitError(err);
      } finally {
        setSubmitting(false);
      }
      return;
    }
    const body = built.body!;
    try {
      const out = await api.post<LaunchOut>("/api/v1/launch", body);
      rememberWorkdir(body.workdir);
      const first = out.run_ids[0];
      if (out.run_ids.length > 1) {
        try {
          const run = await api.get<Run>(`/api/v1/runs/${encodeURIComponent(first)}`);
          navigate(`/experiments/${run.experiment_id}`);
          return;
        } catch {
          // fall through to the first run
        }
      }
      navigate(`/runs/${first}`);
    } catch (err) {
      if (err instanceof ApiError) {
        const key = fieldForServerError(err.field, form.mode);
        if (key) {
          setServerErrors({ [key]: err.message });
          setServerField(key);
          focusField(key);
        }
      }
      setSubmitError(err);
    } finally {
      setSubmitting(false);
    }
  };

  if (from && prefill.loading && !prefill.data) return <Loading what="Reading the run to relaunch" />;

  const errorList = submitted ? ORDER.filter((k) => built.errors[k]) : [];
  const relaunchName = prefill.data?.run.name;

  return (
    <div className="page lf-page">
      <h1>Start experiment</h1>
      {from && prefill.data ? (
        <p className="notice" data-testid="relaunch-notice">
          Relaunching <strong>{relaunchName || from.slice(0, 8)}</strong> with edits (from run{" "}
          <Link to={`/runs/${from}`} className="mono">
            {from.slice(0, 8)}
          </Link>
          ). Nothing changes on the old run: this starts a new one.
        </p>
      ) : null}
      {from && prefill.error ? (
        <>
          <ErrorMessage error={prefill.error} onRetry={prefill.reload} />
          <p className="muted">The form below starts empty.</p>
        </>
      ) : null}
      {notes.map((n) => (
        <p key={n} className="notice">
          {n}
        </p>
      ))}
      {noExecutor ? (
        <div className="warning" role="status" data-testid="launch-no-executor">
          <strong>Launching is off on this server:</strong> {errorText(clusterProblem)}. Launching needs a Slurm cluster or the
          local executor: start the server with <code>RUNYARD_EXECUTOR=auto</code> (Slurm when it is there, else local). You can
          still fill in the form.
        </div>
      ) : clusterProblem ? (
        <div className="warning" role="status">
          Could not read the cluster&apos;s partitions, so requests are not checked against their limits: {errorText(clusterProblem)}{" "}
          <button type="button" className="link-button" onClick={cluster.reload}>
            Retry
          </button>
        </div>
      ) : null}
      {cluster.data?.errors?.partitions || cluster.data?.errors?.nodes ? (
        <div className="warning" role="status">
          Slurm did not list every {cluster.data.errors.partitions ? "partition" : "node"}, so some limits are not checked:{" "}
          {cluster.data.errors.partitions ?? cluster.data.errors.nodes}
        </div>
      ) : null}

      <form className="lf-form" onSubmit={onSubmit} noValidate>
        <fieldset>
          <legend>Where it is tracked</legend>
          <div className="lf-grid">
            <Field id={fid("project")} label={LABELS.project} state={state("project", "Created if new.")} required>
              <input {...text("project")} list="lf-projects" autoComplete="off" required />
            </Field>
            <Field id={fid("experiment")} label={LABELS.experiment} state={state("experiment", "Created if new.")} required>
              <input {...text("experiment")} list="lf-experiments" autoComplete="off" required />
            </Field>
            <Field
              id={fid("name")}
              label={LABELS.name}
              state={state("name", "Optional: names the job and the run (default: the program).")}
            >
              <input {...text("name")} autoComplete="off" maxLength={64} />
            </Field>
          </div>
          <div hidden>
          <datalist id="lf-projects">
            {(projects.data ?? []).map((p) => (
              <option key={p.id} value={p.name} />
            ))}
          </datalist>
          <datalist id="lf-experiments">
            {experimentOptions.map((e) => (
              <option key={e.id} value={e.name} />
            ))}
          </datalist>
          </div>
          {projects.error || experiments.error ? <ErrorMessage error={projects.error || experiments.error} /> : null}
        </fieldset>

        <fieldset>
          <legend>What runs</legend>
          <ModeSwitch mode={form.mode} onChange={(m) => set("mode", m)} />
          {form.mode === "command" ? (
            <Field
              id={fid("command")}
              label={LABELS.command}
              required
              state={state(
                "command",
                <>
                  Run as is, without a shell: quotes group words, but <code>$VARS</code>, <code>*</code>, <code>|</code> and{" "}
                  <code>&gt;</code> are passed literally. For shell features use an sbatch script or <code>bash -c &apos;…&apos;</code>.
                </>,
              )}
            >
              <input
                {...text("command")}
                className="mono"
                placeholder="python train.py --lr 0.01"
                autoComplete="off"
                spellCheck={false}
              />
            </Field>
          ) : (
            <Field
              id={fid("script")}
              label={LABELS.script}
              required
              state={state(
                "script",
                "Its #SBATCH lines are kept; the resources set below win over them. It runs by its own #! line (else bash).",
              )}
            >
              <textarea
                {...text("script")}
                className="mono"
                rows={10}
                spellCheck={false}
                placeholder={"#!/bin/bash\n#SBATCH --gpus-per-node=1\nsrun python train.py"}
              />
            </Field>
          )}
          {form.mode === "command" && argv.ok ? <ArgvPreview argv={argv.value} /> : null}
          <Field
            id={fid("workdir")}
            label={LABELS.workdir}
            required
            state={state(
              "workdir",
              <>
                An absolute directory that exists on the server; the job starts there and its logs go to{" "}
                <code>{(form.outputDir.trim() || `${form.workdir.trim() || "…"}/runyard-logs`).replace(/\/+/g, "/")}</code>.
                Remembered for next time.
              </>,
            )}
          >
            <input {...text("workdir")} className="mono" placeholder="/home/me/project" autoComplete="off" spellCheck={false} />
          </Field>
        </fieldset>

        <fieldset>
          <legend>Resources</legend>
          <div className="lf-grid">
            <Field
              id={fid("partition")}
              label={LABELS.partition}
              state={state(
                "partition",
                part ? (
                  <span data-testid="partition-summary">
                    {part.name}: {partNodes.length || part.total_nodes} node{(partNodes.length || part.total_nodes) === 1 ? "" : "s"}
                    {partNodes.length
                      ? `, up to ${Math.max(...partNodes.map((n) => n.cpus_total))} CPUs, ${Math.max(
                          ...partNodes.map((n) => n.gpus_total),
                        )} GPUs and ${formatGbFromMb(Math.max(...partNodes.map((n) => n.memory_total_mb)))} per node`
                      : ""}
                    , max time {part.max_time_min === null ? "none" : minutesInWords(part.max_time_min)}
                  </span>
                ) : undefined,
              )}
            >
              {partitions.length ? (
                <select {...fieldProps(fid("partition"), state("partition"))} value={form.partition} onChange={(e) => set("partition", e.target.value)}>
                  <option value="">Cluster default{defaultPartition ? ` (${defaultPartition.name})` : ""}</option>
                  {partitions.map((p) => (
                    <option key={p.name} value={p.name}>
                      {p.name}
                      {p.state.toUpperCase() !== "UP" ? ` (${p.state.toLowerCase()})` : ""}
                    </option>
                  ))}
                  {form.partition && !partitions.some((p) => p.name === form.partition) ? (
                    <option value={form.partition}>{form.partition} (not on this cluster)</option>
                  ) : null}
                </select>
              ) : (
                <input {...text("partition")} placeholder={cluster.loading ? "reading the cluster…" : "cluster default"} autoComplete="off" />
              )}
            </Field>
            <Field id={fid("nodes")} label={LABELS.nodes} state={state("nodes", "Default 1.")}>
              <input {...text("nodes")} inputMode="numeric" placeholder="1" />
            </Field>
            <Field id={fid("gpusPerNode")} label={LABELS.gpusPerNode} state={state("gpusPerNode", "Default 0.")}>
              <input {...text("gpusPerNode")} inputMode="numeric" placeholder="0" />
            </Field>
            <Field id={fid("cpusPerTask")} label={LABELS.cpusPerTask} state={state("cpusPerTask", "Default 1.")}>
              <input {...text("cpusPerTask")} inputMode="numeric" placeholder="1" />
            </Field>
            <Field id={fid("memGb")} label={LABELS.memGb} state={state("memGb", "Per node. Empty: the cluster's default.")}>
              <input {...text("memGb")} inputMode="decimal" placeholder="e.g. 16" />
            </Field>
            <Field
              id={fid("time")}
              label={LABELS.time}
              state={state(
                "time",
                time.ok && time.value !== null ? (
                  <span data-testid="time-normalized">
                    = {slurmTime(time.value)} ({minutesInWords(time.value)})
                  </span>
                ) : time.ok ? (
                  <>
                    90, 1:30:00, 2h or 1-00:00:00. Empty: the partition&apos;s default
                    {part?.default_time_min ? ` (${minutesInWords(part.default_time_min)})` : ""}.
                  </>
                ) : undefined,
              )}
            >
              <input {...text("time")} placeholder="e.g. 2h" autoComplete="off" />
            </Field>
          </div>
        </fieldset>

        <fieldset>
          <legend>Array / sweep</legend>
          <div className="lf-grid">
            <Field
              id={fid("array")}
              label={LABELS.array}
              state={state(
                "array",
                array && array.ok ? (
                  <span data-testid="array-preview">{arrayPreview(array.value)}: one run per task.</span>
                ) : (
                  "Optional: e.g. 0-9%2 runs tasks 0 to 9, at most 2 at once; each task is a run."
                ),
              )}
            >
              <input {...text("array")} placeholder="0-9%2" autoComplete="off" disabled={!!(sweep.ok && sweep.value)} />
            </Field>
          </div>
          {form.mode === "script" ? (
            <p className="notice" data-testid="sweep-script-note">
              Sweeps run a command, not a script: choose <strong>Command</strong> under What runs to sweep parameters.
              {form.sweep.trim() ? (
                <>
                  {" "}
                  <button type="button" className="link-button" onClick={() => set("sweep", "")}>
                    Clear the sweep
                  </button>
                </>
              ) : null}
            </p>
          ) : null}
          <Field
            id={fid("sweep")}
            label={LABELS.sweep}
            state={state(
              "sweep",
              <>
                Optional: one parameter a line, <code>lr = 0.1, 0.01</code>. Every combination becomes one trial of a sweep (one
                Slurm array, one run per trial): each trial runs the command with <code>--lr=0.1</code>-style arguments appended (or
                fills <code>{"{lr}"}</code> placeholders in the command), and its parameters are its run&apos;s config. A YAML file
                gives more (random and adaptive search, early stopping): <code>runyard sweep sweep.yaml</code>.
              </>,
            )}
          >
            <textarea
              {...text("sweep")}
              className="mono"
              rows={3}
              placeholder={"lr = 0.1, 0.01\nbatch_size = 32, 64"}
              spellCheck={false}
              disabled={form.mode === "script"}
            />
          </Field>
          {form.mode === "command" && sweep.ok && sweep.value ? (
            <>
              <div className="lf-grid">
                <Field
                  id={fid("sweepThrottle")}
                  label={LABELS.sweepThrottle}
                  state={state("sweepThrottle", "Optional: at most this many trials run at once.")}
                >
                  <input {...text("sweepThrottle")} inputMode="numeric" placeholder="all" />
                </Field>
                <Field
                  id={fid("sweepMetric")}
                  label={LABELS.sweepMetric}
                  state={state("sweepMetric", "Optional: a metric the trials log, e.g. val/loss; the sweep page ranks trials by it.")}
                >
                  <input {...text("sweepMetric")} className="mono" placeholder="val/loss" autoComplete="off" spellCheck={false} maxLength={250} />
                </Field>
                <Field id={fid("sweepGoal")} label={LABELS.sweepGoal} state={state("sweepGoal")}>
                  <select
                    {...fieldProps(fid("sweepGoal"), state("sweepGoal"))}
                    value={form.sweepGoal}
                    onChange={(e) => set("sweepGoal", e.target.value as Goal)}
                    disabled={!form.sweepMetric.trim()}
                  >
                    <option value="minimize">Minimize</option>
                    <option value="maximize">Maximize</option>
                  </select>
                </Field>
              </div>
              {argv.ok && argv.value.length ? (
                <p className="lf-hint" data-testid="sweep-first-trial">
                  Trial 0 runs <code>{joinArgs(trialArgv(argv.value, sweep.value.keys, sweep.value.tasks[0]))}</code>
                  {usesPlaceholders(argv.value, sweep.value.keys) ? " (the placeholders filled in)" : ""}.
                </p>
              ) : null}
              <SweepTable sweep={sweep.value} />
            </>
          ) : null}
        </fieldset>

        <fieldset>
          <legend>Dependencies and requeue</legend>
          <Field
            id={fid("after")}
            label={LABELS.after}
            state={state(
              "after",
              "Optional: run ids or Slurm job ids, separated by spaces; the job starts when they succeed (add :any to wait for them to end in any way, :notok to run only if they fail).",
            )}
          >
            <input {...text("after")} className="mono" autoComplete="off" spellCheck={false} />
          </Field>
          <div className="lf-check">
            <input
              type="checkbox"
              id={fid("requeue")}
              checked={form.requeue}
              onChange={(e) => set("requeue", e.target.checked)}
              aria-describedby={`${fid("requeue")}-hint`}
            />
            <label htmlFor={fid("requeue")}>Requeue before the end</label>
            <div className="lf-hint" id={`${fid("requeue")}-hint`}>
              Shortly before the limit the job is requeued and continues as the same run (checkpoint on <code>run.should_stop</code>).
              {form.mode === "script" ? " This wins over the script's own --requeue / --no-requeue." : ""}
            </div>
          </div>
          {serverErrors.requeue ? <div className="lf-error">{serverErrors.requeue}</div> : null}
        </fieldset>

        <fieldset>
          <legend>Environment, config and tags</legend>
          <div className="lf-grid lf-grid-2">
            <Field
              id={fid("env")}
              label={LABELS.env}
              state={state("env", "KEY=VALUE lines. They are written into the batch script: no secrets.")}
            >
              <textarea {...text("env")} className="mono" rows={4} placeholder={"OMP_NUM_THREADS=4"} spellCheck={false} />
            </Field>
            <Field id={fid("config")} label={LABELS.config} state={state("config", "A JSON object stored as the run's config (hyperparameters).")}>
              <textarea {...text("config")} className="mono" rows={4} placeholder={'{"lr": 0.01}'} spellCheck={false} />
            </Field>
          </div>
          <Field id={fid("tags")} label={LABELS.tags} state={state("tags", "Comma-separated.")}>
            <input {...text("tags")} autoComplete="off" placeholder="baseline, v2" />
          </Field>
        </fieldset>

        <details className="lf-advanced" open={advancedOpen} onToggle={(e) => setAdvancedOpen((e.target as HTMLDetailsElement).open)}>
          <summary>Advanced</summary>
          <div className="lf-grid">
            <Field id={fid("account")} label={LABELS.account} state={state("account", "Slurm account (-A).")}>
              <input {...text("account")} autoComplete="off" />
            </Field>
            <Field id={fid("qos")} label={LABELS.qos} state={state("qos", "Slurm QOS (-q).")}>
              <input {...text("qos")} autoComplete="off" />
            </Field>
            <Field id={fid("ntasksPerNode")} label={LABELS.ntasksPerNode} state={state("ntasksPerNode", "Default 1 (more for srun/MPI).")}>
              <input {...text("ntasksPerNode")} inputMode="numeric" placeholder="1" />
            </Field>
            <Field id={fid("outputDir")} label={LABELS.outputDir} state={state("outputDir", "Where stdout/stderr go (created).")}>
              <input {...text("outputDir")} className="mono" placeholder="<working directory>/runyard-logs" autoComplete="off" />
            </Field>
            <Field
              id={fid("signalBeforeEnd")}
              label={LABELS.signalBeforeEnd}
              state={state("signalBeforeEnd", "USR1 this many seconds before the time limit (default 60; 0: none).")}
            >
              <input {...text("signalBeforeEnd")} inputMode="numeric" placeholder="60" />
            </Field>
            <Field id={fid("maxRestarts")} label={LABELS.maxRestarts} state={state("maxRestarts", "The most times the job requeues itself.")}>
              <input {...text("maxRestarts")} inputMode="numeric" />
            </Field>
          </div>
        </details>

        {errorList.length ? (
          <div className="error" role="alert" data-testid="launch-errors">
            <strong>Fix {errorList.length === 1 ? "this" : "these"} before launching:</strong>
            <ul>
              {errorList.map((k) => (
                <li key={k}>
                  <button type="button" className="link-button" onClick={() => focusField(k)}>
                    {LABELS[k]}
                  </button>
                  : {built.errors[k]}
                </li>
              ))}
            </ul>
          </div>
        ) : null}
        {submitError ? (
          <div data-testid="launch-server-error">
            <ErrorMessage error={submitError} />
            {serverField ? <p className="muted">See {LABELS[serverField]} above.</p> : null}
          </div>
        ) : null}
        {warnings.length && !errorList.length ? (
          <p className="lf-warning lf-submit-warning" role="status">
            <span aria-hidden="true">⚠ </span>
            {warnings.length === 1 ? "One request" : `${warnings.length} requests`} may not be met by the partition (see above); you
            can still launch.
          </p>
        ) : null}
        <div className="lf-actions">
          <button type="submit" className="primary" disabled={submitting}>
            {submitting ? "Launching…" : "Launch"}
          </button>
          {built.sweep ? (
            <span className="muted" data-testid="launch-summary">
              A sweep of {sweepTrials} trial{sweepTrials === 1 ? "" : "s"}
              {built.sweep.resources?.partition ? ` on ${built.sweep.resources.partition}` : part ? ` on ${part.name}` : ""}
            </span>
          ) : built.body ? (
            <span className="muted" data-testid="launch-summary">
              {built.body.array ? `Array ${built.body.array}` : "One job"}
              {built.body.resources.partition ? ` on ${built.body.resources.partition}` : part ? ` on ${part.name}` : ""}
            </span>
          ) : null}
        </div>
      </form>
    </div>
  );
}
