// One pipeline: header, its DAG drawn as SVG (a box per step with its state and duration,
// arrows labelled by condition; steps that will never run greyed and dashed with the reason
// written out), then the list of steps with links to their runs. Live like the sweep page.
import { useEffect, useId, useMemo, useState, type MouseEvent, type ReactNode } from "react";

import { api, ApiError } from "../api";
import { ErrorMessage, Loading, StatusBadge, useAsync } from "../components/common";
import { formatDuration, formatRelative, formatTime, runDuration } from "../format";
import { Link, navigate } from "../router";
import { useLiveDetail } from "../sweeps/useLiveDetail";
import type { Experiment, PipelineDetail, PipelineStep } from "../types";
import { afterText, edgeState, layoutDag, stateClass, wrapText } from "./dag";
import "./pipelines.css";

const NODE_W = 230;
const NODE_H = 62;
const LINE_H = 14;
const REASON_CHARS = 36;
const REASON_LINES = 4;

function runLink(runId: string): string {
  return `/runs/${encodeURIComponent(runId)}`;
}

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

function durationText(step: PipelineStep, now: number): string {
  const d = runDuration(step, now);
  if (d === null) return step.state === "never" || step.state === "waiting" ? "" : "not started";
  return formatDuration(d) || "0s";
}

export function PipelinePage({ pipelineId }: { pipelineId: string }) {
  const url = `/api/v1/pipelines/${encodeURIComponent(pipelineId)}`;
  const q = useLiveDetail<PipelineDetail>(url, { runIds: (d) => new Set(d.steps.map((s) => s.run_id)) });
  const pipeline = q.data?.id === pipelineId ? q.data : undefined;

  useEffect(() => {
    if (pipeline) document.title = `${pipeline.name} · pipeline · Runyard`;
  }, [pipeline?.name]); // eslint-disable-line react-hooks/exhaustive-deps

  if (q.error && !pipeline) {
    const missing = q.error instanceof ApiError && q.error.status === 404;
    return (
      <div className="page">
        <h1>{missing ? `No pipeline with id “${pipelineId}”` : "The pipeline could not be loaded"}</h1>
        <ErrorMessage error={q.error} onRetry={missing ? undefined : q.reload} />
        <p>
          <Link to="/">Go to the projects</Link>
        </p>
      </div>
    );
  }
  if (!pipeline) return <Loading what="Loading the pipeline" />;
  return <PipelineView pipeline={pipeline} refreshError={q.error} onRetry={q.reload} />;
}

function PipelineView({ pipeline, refreshError, onRetry }: { pipeline: PipelineDetail; refreshError: unknown; onRetry: () => void }) {
  const experiment = useAsync(
    (signal) => api.get<Experiment>(`/api/v1/experiments/${encodeURIComponent(pipeline.experiment_id)}`, undefined, signal),
    [pipeline.experiment_id],
  );
  const running = pipeline.steps.some((s) => s.started_at !== null && s.ended_at === null);
  const now = useNow(running);
  const expLink = `/experiments/${encodeURIComponent(pipeline.experiment_id)}`;
  const counts = Object.entries(pipeline.counts ?? {}).filter(([, n]) => n);

  return (
    <div className="page pl-page">
      <nav aria-label="Breadcrumb" className="pl-crumbs">
        <Link to="/">Projects</Link>
        <span aria-hidden="true"> / </span>
        <Link to={expLink}>{experiment.data?.name ?? (experiment.error ? "experiment" : "…")}</Link>
        <span aria-hidden="true"> / </span>
        <span aria-current="page">pipeline {pipeline.name}</span>
      </nav>
      <header className="pl-head">
        <div className="pl-title">
          <h1>{pipeline.name}</h1>
          <StatusBadge status={pipeline.state} />
        </div>
        <dl className="pl-meta">
          <div>
            <dt>Steps</dt>
            <dd data-testid="pipeline-counts">
              {pipeline.steps.length}
              {counts.length ? <span className="muted"> ({counts.map(([k, n]) => `${n} ${k}`).join(", ")})</span> : null}
            </dd>
          </div>
          <div>
            <dt>Created</dt>
            <dd title={formatTime(pipeline.created_at)}>{formatRelative(pipeline.created_at)}</dd>
          </div>
          <div>
            <dt>Experiment</dt>
            <dd>
              <Link to={expLink}>{experiment.data?.name ?? "back to the experiment"}</Link>
            </dd>
          </div>
        </dl>
        {experiment.error ? <ErrorMessage error={experiment.error} onRetry={experiment.reload} /> : null}
        {refreshError ? <ErrorMessage error={refreshError} onRetry={onRetry} /> : null}
      </header>

      <Section id="graph" title="Graph">
        {pipeline.steps.length ? <Dag steps={pipeline.steps} now={now} /> : <p className="empty">This pipeline has no steps.</p>}
      </Section>

      <Section id="steps" title="Steps">
        <StepTable steps={pipeline.steps} now={now} />
      </Section>

      <Section id="spec" title="Spec">
        <details className="pl-spec">
          <summary>The pipeline as submitted (YAML)</summary>
          <pre>{pipeline.spec}</pre>
        </details>
      </Section>
    </div>
  );
}

function Section({ id, title, children }: { id: string; title: string; children: ReactNode }) {
  return (
    <section className="pl-section" id={`pipeline-${id}`} aria-labelledby={`pipeline-${id}-h`}>
      <h2 id={`pipeline-${id}-h`}>{title}</h2>
      {children}
    </section>
  );
}

function truncate(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, Math.max(1, max - 1))}…`;
}

function reasonLines(step: PipelineStep): string[] {
  const text = step.reason ?? (step.state === "queued" ? step.pending_reason : null);
  return text ? wrapText(text, REASON_CHARS, REASON_LINES) : [];
}

function Dag({ steps, now }: { steps: PipelineStep[]; now: number }) {
  const rawId = useId();
  const uid = rawId.replace(/[^a-zA-Z0-9_-]/g, "");
  const byName = useMemo(() => new Map(steps.map((s) => [s.name, s])), [steps]);
  const lines = useMemo(() => new Map(steps.map((s) => [s.name, reasonLines(s)])), [steps]);
  const layout = useMemo(
    () =>
      layoutDag(steps, {
        nodeWidth: NODE_W,
        nodeHeight: (name) => {
          const n = lines.get(name)?.length ?? 0;
          return NODE_H + (n ? n * LINE_H + 6 : 0);
        },
        gapX: 90,
        gapY: 26,
        pad: 14,
      }),
    [steps, lines],
  );
  const open = (step: PipelineStep) => (e: MouseEvent<Element>) => {
    if (e.defaultPrevented || e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) return;
    e.preventDefault();
    navigate(runLink(step.run_id));
  };
  return (
    <>
      {layout.missing.length || layout.cyclic.length ? (
        <p className="warning">
          {layout.missing.map((m) => `${m.step} waits for “${m.after}”, which is not a step of this pipeline. `).join("")}
          {layout.cyclic.map((m) => `${m.step} and ${m.after} wait for each other. `).join("")}
        </p>
      ) : null}
      <div className="pl-dag-wrap">
        <svg
          className="pl-dag"
          role="group"
          aria-label="Pipeline graph"
          width={layout.width}
          height={layout.height}
          viewBox={`0 0 ${layout.width} ${layout.height}`}
        >
          <defs>
            {(["met", "unmet", "pending"] as const).map((k) => (
              <marker
                key={k}
                id={`${uid}-arrow-${k}`}
                className={`pl-arrow pl-arrow-${k}`}
                viewBox="0 0 10 10"
                refX="9"
                refY="5"
                markerWidth="7"
                markerHeight="7"
                orient="auto-start-reverse"
              >
                <path d="M0,0 L10,5 L0,10 z" />
              </marker>
            ))}
          </defs>
          <g className="pl-edges">
            {layout.edges.map((e) => {
              const st = edgeState(byName.get(e.from)?.state ?? "waiting", e.when);
              return (
                <g key={`${e.from}->${e.to}`} className={`pl-edge pl-edge-${st}`} data-testid="dag-edge" data-from={e.from} data-to={e.to} data-when={e.when}>
                  <path d={e.d} markerEnd={`url(#${uid}-arrow-${st})`} />
                  <text x={e.label.x} y={e.label.y - 5} textAnchor="middle">
                    {e.when}
                  </text>
                </g>
              );
            })}
          </g>
          <g className="pl-nodes">
            {layout.nodes.map((n) => {
              const step = byName.get(n.name)!;
              const cls = stateClass(step.state);
              const reason = lines.get(n.name) ?? [];
              const badgeW = step.state.length * 6.6 + 14;
              const dur = durationText(step, now);
              return (
                <a
                  key={n.name}
                  href={runLink(step.run_id)}
                  onClick={open(step)}
                  className={`pl-node pl-node-${cls} pl-state-${step.state}`}
                  data-testid="dag-node"
                  data-step={step.name}
                  data-state={step.state}
                  aria-label={`${step.name}: ${step.state}${dur ? `, ${dur}` : ""}${step.reason ? `. ${step.reason}` : ""}. Open its run`}
                >
                  <title>{`${step.name} (${step.state})${step.reason ? `\n${step.reason}` : ""}`}</title>
                  <rect className="pl-box" x={n.x} y={n.y} width={n.w} height={n.h} rx={8} />
                  <rect className="pl-stripe" x={n.x} y={n.y} width={5} height={n.h} rx={2} />
                  <text className="pl-name" x={n.x + 14} y={n.y + 22}>
                    {truncate(step.name, Math.floor((n.w - 24) / 8))}
                  </text>
                  <g className={`pl-badge badge-${cls}`}>
                    <rect x={n.x + 14} y={n.y + 32} width={badgeW} height={18} rx={9} />
                    <text x={n.x + 14 + badgeW / 2} y={n.y + 45} textAnchor="middle">
                      {step.state}
                    </text>
                  </g>
                  <text className="pl-dur" x={n.x + 22 + badgeW} y={n.y + 45}>
                    {dur}
                  </text>
                  {reason.length ? (
                    <text
                      className="pl-reason"
                      data-testid={step.state === "never" ? "step-reason" : "step-note"}
                      x={n.x + 14}
                      y={n.y + NODE_H + 4}
                    >
                      {reason.map((line, i) => (
                        <tspan key={i} x={n.x + 14} dy={i === 0 ? 0 : LINE_H}>
                          {i < reason.length - 1 ? `${line} ` : line}
                        </tspan>
                      ))}
                    </text>
                  ) : null}
                </a>
              );
            })}
          </g>
        </svg>
      </div>
      <p className="muted pl-help">
        Arrows read “runs after”, labelled by condition: <strong>ok</strong> (after it succeeds), <strong>notok</strong> (after it
        fails), <strong>any</strong> (after it ends). A green arrow is satisfied, a red dashed one cannot be any more. Click a
        step to open its run.
      </p>
    </>
  );
}

function StepTable({ steps, now }: { steps: PipelineStep[]; now: number }) {
  return (
    <div className="pl-table-wrap">
      <table className="grid pl-steps" data-testid="step-list">
        <thead>
          <tr>
            <th scope="col">Step</th>
            <th scope="col">State</th>
            <th scope="col">Run status</th>
            <th scope="col">After</th>
            <th scope="col" className="num">
              Duration
            </th>
            <th scope="col">Job</th>
            <th scope="col">Command</th>
          </tr>
        </thead>
        <tbody>
          {steps.map((s) => (
            <tr key={s.name} data-step={s.name} data-state={s.state} className={s.state === "never" ? "pl-row-never" : undefined}>
              <td>
                <Link to={runLink(s.run_id)}>{s.name}</Link>
              </td>
              <td className="pl-state-cell">
                <StatusBadge status={s.state} />
                {s.reason ? (
                  <span className="pl-list-reason" data-testid="step-list-reason">
                    {s.reason}
                  </span>
                ) : null}
              </td>
              <td>
                <StatusBadge status={s.status} reason={s.pending_reason} />
              </td>
              <td>{afterText(s.after) || <span className="muted">—</span>}</td>
              <td className="num">
                {runDuration(s, now) === null ? <span className="muted">—</span> : formatDuration(runDuration(s, now)) || "0s"}
              </td>
              <td className="mono">{s.slurm_job_id ?? ""}</td>
              <td className="mono pl-command" title={s.command.join(" ")}>
                {s.command.join(" ")}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}
