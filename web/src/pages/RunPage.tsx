// One run: header (status, duration, who, where, actions), then sections with h2 headings:
// Charts, Logs, System, Config, Summary, Slurm, Efficiency, Artifacts, History, Notes & tags.
// Live `run` / `metrics` events update it in place; `reset` refetches.
import { useCallback, useEffect, useMemo, useRef, useState, type ReactNode } from "react";

import { api, ApiError } from "../api";
import { MetricCharts, SystemCharts } from "../charts/MetricCharts";
import { ErrorMessage, Loading, StatusBadge, useAsync } from "../components/common";
import { formatDuration, formatRelative, formatTime, runDuration } from "../format";
import { useLive } from "../live";
import { Link } from "../router";
import { Actions } from "../run/Actions";
import { Artifacts } from "../run/Artifacts";
import { ConfigView } from "../run/ConfigView";
import { Efficiency } from "../run/Efficiency";
import { History } from "../run/History";
import { LogTail } from "../run/LogTail";
import { Notes, Tags } from "../run/NotesTags";
import { isActive, mergeMetricsEvent, mergeRunEvent } from "../run/runDetails";
import { SlurmDetails } from "../run/SlurmDetails";
import { Summary } from "../run/Summary";
import "../run/run.css";
import type { Experiment, Project, Run } from "../types";

const SECTIONS: [string, string][] = [
  ["charts", "Charts"],
  ["logs", "Logs"],
  ["system", "System"],
  ["config", "Config"],
  ["summary", "Summary"],
  ["slurm", "Slurm"],
  ["efficiency", "Efficiency"],
  ["artifacts", "Artifacts"],
  ["history", "History"],
  ["notes", "Notes & tags"],
];

/** The current time in seconds, ticking every second while `enabled`. */
function useNow(enabled: boolean): number {
  const [now, setNow] = useState(() => Date.now() / 1000);
  useEffect(() => {
    if (!enabled) return;
    setNow(Date.now() / 1000);
    const id = setInterval(() => setNow(Date.now() / 1000), 1000);
    return () => clearInterval(id);
  }, [enabled]);
  return now;
}

export function RunPage({ runId }: { runId: string }) {
  const runQ = useAsync((signal) => api.get<Run>(`/api/v1/runs/${encodeURIComponent(runId)}`, undefined, signal), [runId]);
  const run = runQ.data?.id === runId ? runQ.data : undefined;
  const { setData, reload } = runQ;

  // side sections refetch after the run changes (debounced: events come in bursts)
  const [refreshKey, setRefreshKey] = useState(0);
  const timer = useRef<ReturnType<typeof setTimeout> | null>(null);
  const refreshSoon = useCallback(() => {
    if (timer.current) return;
    timer.current = setTimeout(() => {
      timer.current = null;
      reload();
      setRefreshKey((k) => k + 1);
    }, 1500);
  }, [reload]);
  useEffect(
    () => () => {
      if (timer.current) clearTimeout(timer.current);
    },
    [],
  );

  useLive((event) => {
    if (event.type === "run" && event.data.run_id === runId) {
      setData((old) => (old ? mergeRunEvent(old, event.data) : old));
      refreshSoon(); // tags, summary, Slurm details, history, artifacts are not in the event
    } else if (event.type === "metrics" && event.data.run_id === runId) {
      setData((old) => (old ? mergeMetricsEvent(old, event.data) : old));
    } else if (event.type === "reset") {
      reload();
      setRefreshKey((k) => k + 1);
    }
  });

  const active = run ? isActive(run.status) : false;
  useEffect(() => {
    if (!active) return;
    const id = setInterval(() => setRefreshKey((k) => k + 1), 30000); // artifacts arrive without events
    return () => clearInterval(id);
  }, [active]);

  useEffect(() => {
    if (run) document.title = `${run.name || run.id} · Runyard`;
  }, [run?.name, run?.id]); // eslint-disable-line react-hooks/exhaustive-deps

  if (runQ.error && !run) {
    const missing = runQ.error instanceof ApiError && runQ.error.status === 404;
    return (
      <div className="page">
        <h1>{missing ? `No run with id “${runId}”` : "The run could not be loaded"}</h1>
        <ErrorMessage error={runQ.error} onRetry={missing ? undefined : reload} />
        <p>
          <Link to="/">Go to the projects</Link>
        </p>
      </div>
    );
  }
  if (!run) return <Loading what="Loading the run" />;
  return (
    <RunView
      run={run}
      active={active}
      refreshKey={refreshKey}
      onSaved={(r) => setData(() => r)}
      onChanged={() => {
        reload();
        setRefreshKey((k) => k + 1);
      }}
    />
  );
}

function RunView({
  run,
  active, // created, queued, running or requeued
  refreshKey,
  onSaved,
  onChanged,
}: {
  run: Run;
  active: boolean;
  refreshKey: number;
  onSaved: (run: Run) => void;
  onChanged: () => void;
}) {
  const running = run.status === "running" && run.started_at !== null && run.ended_at === null;
  const now = useNow(running);
  const names = useAsync((signal) => api.get<Record<string, string>>("/api/v1/usernames", undefined, signal), []);
  const experiment = useAsync(
    (signal) => api.get<Experiment>(`/api/v1/experiments/${encodeURIComponent(run.experiment_id)}`, undefined, signal),
    [run.experiment_id],
  );
  const project = useAsync(
    (signal) => api.get<Project>(`/api/v1/projects/${encodeURIComponent(run.project_id)}`, undefined, signal),
    [run.project_id],
  );

  const chartRuns = useMemo(() => [{ id: run.id, name: run.name || run.id }], [run.id, run.name]);
  const sysSignature = Object.keys(run.metrics)
    .filter((k) => k.startsWith("sys/"))
    .sort()
    .join("\n");
  const sysKeys = useMemo(() => (sysSignature ? sysSignature.split("\n") : []), [sysSignature]);
  const hasUserMetrics = Object.keys(run.metrics).some((k) => !k.startsWith("sys/"));
  const slurm = run.slurm ?? {};
  const hasFile = typeof slurm.stdout === "string" || typeof slurm.stderr === "string";
  const efficiencyKey = `${run.status}|${run.slurm_done}|${run.ended_at ?? ""}`;
  const duration = runDuration(run, now);
  const user = run.user_id ? (names.data?.[run.user_id] ?? null) : null;

  return (
    <div className="page run-page">
      <nav aria-label="Breadcrumb" className="crumbs">
        <ol>
          <li>
            <Link to="/">{project.data?.name ?? (project.error ? "project" : "…")}</Link>
          </li>
          <li>
            <Link to={`/experiments/${encodeURIComponent(run.experiment_id)}`}>
              {experiment.data?.name ?? (experiment.error ? "experiment" : "…")}
            </Link>
          </li>
          <li aria-current="page">{run.name || run.id}</li>
        </ol>
      </nav>

      <header className="run-head">
        <div className="run-title">
          <h1>{run.name || run.id}</h1>
          <StatusBadge
            status={run.status}
            reason={run.pending_reason}
            estimate={run.start_estimate}
            unknownSince={run.state_unknown_since}
          />
        </div>
        <dl className="run-meta" data-testid="run-meta">
          <Meta label="Duration">
            <span data-testid="run-duration">{duration === null ? "not started" : formatDuration(duration)}</span>
            {running ? <span className="muted"> (running)</span> : null}
          </Meta>
          {run.started_at !== null ? (
            <Meta label="Started">
              <span title={formatTime(run.started_at)}>{formatRelative(run.started_at, now)}</span>
            </Meta>
          ) : (
            <Meta label="Created">
              <span title={formatTime(run.created_at)}>{formatRelative(run.created_at, now)}</span>
            </Meta>
          )}
          {run.ended_at !== null ? (
            <Meta label="Ended">
              <span title={formatTime(run.ended_at)}>{formatRelative(run.ended_at, now)}</span>
            </Meta>
          ) : null}
          {run.user_id ? <Meta label="User">{user ?? run.user_id.slice(0, 8)}</Meta> : null}
          {run.host ? <Meta label="Host">{run.host}</Meta> : null}
          {run.slurm_job_id ? (
            <Meta label="Job">
              <span className="mono">{run.slurm_job_id}</span>
              {run.slurm_partition ? ` on ${run.slurm_partition}` : ""}
            </Meta>
          ) : null}
          {run.restart_count ? <Meta label="Restarts">{run.restart_count}</Meta> : null}
          {run.exit_code !== null ? <Meta label="Exit code">{run.exit_code}</Meta> : null}
          <Meta label="Id">
            <span className="mono">{run.id}</span>
          </Meta>
        </dl>
        {run.tags.length ? (
          <ul className="chips" aria-label="Tags (edit under Notes & tags)">
            {run.tags.map((t) => (
              <li key={t} className="chip">
                {t}
              </li>
            ))}
          </ul>
        ) : null}
        <Actions run={run} onDone={onChanged} />
      </header>

      <nav aria-label="Run sections" className="section-nav">
        {SECTIONS.map(([id, label]) => (
          <a key={id} href={`#run-${id}`}>
            {label}
          </a>
        ))}
      </nav>

      <Section id="charts" title="Charts">
        {hasUserMetrics ? <MetricCharts runs={chartRuns} /> : <p className="empty">No metrics logged yet.</p>}
      </Section>

      <Section id="logs" title="Logs">
        <LogTail runId={run.id} active={active} hasFile={hasFile} />
      </Section>

      <Section id="system" title="System">
        {sysKeys.length ? (
          <SystemCharts run={chartRuns[0]} keys={sysKeys} />
        ) : (
          <p className="empty">No system metrics (GPU, CPU, memory) recorded for this run.</p>
        )}
      </Section>

      <Section id="config" title="Config">
        <ConfigView config={run.config} />
      </Section>

      <Section id="summary" title="Summary">
        <Summary run={run} />
      </Section>

      <Section id="slurm" title="Slurm">
        <SlurmDetails run={run} now={now} />
      </Section>

      <Section id="efficiency" title="Efficiency">
        <Efficiency runId={run.id} refreshKey={efficiencyKey} />
      </Section>

      <Section id="artifacts" title="Artifacts">
        <Artifacts runId={run.id} refreshKey={refreshKey} />
      </Section>

      <Section id="history" title="History">
        <History runId={run.id} refreshKey={refreshKey} />
      </Section>

      <Section id="notes" title="Notes & tags">
        <h3>Tags</h3>
        <Tags run={run} onSaved={onSaved} />
        <h3>Notes</h3>
        <Notes run={run} onSaved={onSaved} />
      </Section>
    </div>
  );
}

function Meta({ label, children }: { label: string; children: ReactNode }) {
  return (
    <div className="run-meta-item">
      <dt>{label}</dt>
      <dd>{children}</dd>
    </div>
  );
}

function Section({ id, title, children }: { id: string; title: string; children: ReactNode }) {
  return (
    <section className="run-section" id={`run-${id}`} aria-labelledby={`run-${id}-h`}>
      <h2 id={`run-${id}-h`}>{title}</h2>
      {children}
    </section>
  );
}
