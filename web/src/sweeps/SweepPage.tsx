// One sweep: header (method, metric, state, Slurm jobs), progress, the best trial so far, the
// parallel-coordinates plot, parameter importance, the metric curves of the top-k trials and
// the trials table. Live: refetched when one of its runs changes (see useLiveDetail).
import { useEffect, useId, useMemo, useState, type ReactNode } from "react";

import { api, ApiError } from "../api";
import { MetricCharts, type ChartRun } from "../charts/MetricCharts";
import { ErrorMessage, Loading, StatusBadge, useAsync } from "../components/common";
import { formatNumber, formatRelative, formatTime, formatValue } from "../format";
import { Link, navigate } from "../router";
import type { Experiment, SweepDetail, SweepTrial } from "../types";
import { ColorLegend, ParallelCoordinates } from "./ParallelCoordinates";
import { ProgressBar } from "./ProgressBar";
import {
  buildAxes,
  importanceView,
  mergeMetrics,
  mergeStatus,
  paramNames,
  passesBrushes,
  progress,
  topK,
  TOP_K_CHOICES,
  trialValue,
  type Brushes,
  type Progress,
} from "./sweeps";
import "./sweeps.css";
import { useLiveDetail } from "./useLiveDetail";

const METHOD_LABELS: Record<string, string> = {
  grid: "grid search",
  random: "random search",
  list: "listed trials",
  adaptive: "adaptive search",
};

function runLink(runId: string): string {
  return `/runs/${encodeURIComponent(runId)}`;
}

export function SweepPage({ sweepId }: { sweepId: string }) {
  const url = `/api/v1/sweeps/${encodeURIComponent(sweepId)}`;
  const q = useLiveDetail<SweepDetail>(url, {
    runIds: (d) => new Set(d.trials.map((t) => t.run_id)),
    onRun: (d, e) => mergeStatus(d, e.run_id, e.status),
    onMetrics: mergeMetrics,
  });
  const sweep = q.data?.id === sweepId ? q.data : undefined;

  useEffect(() => {
    if (sweep) document.title = `${sweep.name} · sweep · Runyard`;
  }, [sweep?.name]); // eslint-disable-line react-hooks/exhaustive-deps

  if (q.error && !sweep) {
    const missing = q.error instanceof ApiError && q.error.status === 404;
    return (
      <div className="page">
        <h1>{missing ? `No sweep with id “${sweepId}”` : "The sweep could not be loaded"}</h1>
        <ErrorMessage error={q.error} onRetry={missing ? undefined : q.reload} />
        <p>
          <Link to="/">Go to the projects</Link>
        </p>
      </div>
    );
  }
  if (!sweep) return <Loading what="Loading the sweep" />;
  return <SweepView sweep={sweep} refreshError={q.error} onRetry={q.reload} />;
}

function SweepView({ sweep, refreshError, onRetry }: { sweep: SweepDetail; refreshError: unknown; onRetry: () => void }) {
  const experiment = useAsync(
    (signal) => api.get<Experiment>(`/api/v1/experiments/${encodeURIComponent(sweep.experiment_id)}`, undefined, signal),
    [sweep.experiment_id],
  );
  const prog = useMemo(() => progress(sweep.counts, sweep.trial_count), [sweep.counts, sweep.trial_count]);
  const names = useMemo(() => paramNames(sweep), [sweep]);
  const axes = useMemo(() => buildAxes(sweep), [sweep]);
  const [brushes, setBrushes] = useState<Brushes>({});
  const [highlight, setHighlight] = useState<number | null>(null);
  const [showNoValue, setShowNoValue] = useState(true);
  const brushed = Object.keys(brushes).length > 0;
  const shownTrials = useMemo(
    () => (brushed ? sweep.trials.filter((t) => passesBrushes(axes, t, brushes)) : sweep.trials),
    [brushed, sweep.trials, axes, brushes],
  );
  const withValue = sweep.trials.filter((t) => trialValue(t) !== null).length;
  const noValue = sweep.trials.length - withValue;
  const expLink = `/experiments/${encodeURIComponent(sweep.experiment_id)}`;
  const showId = useId();

  return (
    <div className="page sw-page">
      <nav aria-label="Breadcrumb" className="sw-crumbs">
        <Link to="/">Projects</Link>
        <span aria-hidden="true"> / </span>
        <Link to={expLink}>{experiment.data?.name ?? (experiment.error ? "experiment" : "…")}</Link>
        <span aria-hidden="true"> / </span>
        <span aria-current="page">sweep {sweep.name}</span>
      </nav>

      <header className="sw-head">
        <div className="sw-title">
          <h1>{sweep.name}</h1>
          <StatusBadge status={sweep.state} />
        </div>
        <dl className="sw-meta" data-testid="sweep-meta">
          <Meta label="Method">{METHOD_LABELS[sweep.method] ?? sweep.method}</Meta>
          <Meta label="Metric">
            {sweep.metric ? (
              <>
                <span className="mono">{sweep.metric.name}</span> ({sweep.metric.goal})
              </>
            ) : (
              <span className="muted">none</span>
            )}
          </Meta>
          {sweep.concurrency ? <Meta label="At once">{sweep.concurrency}</Meta> : null}
          {sweep.early_stop ? (
            <Meta label="Early stop">
              {sweep.early_stop.rule} from step {sweep.early_stop.min_step}, after {sweep.early_stop.min_trials}{" "}
              {sweep.early_stop.min_trials === 1 ? "trial" : "trials"}
            </Meta>
          ) : null}
          <Meta label="Created">
            <span title={formatTime(sweep.created_at)}>{formatRelative(sweep.created_at)}</span>
          </Meta>
          <Meta label={sweep.job_ids.length === 1 ? "Slurm job" : "Slurm jobs"}>
            {sweep.job_ids.length ? <span className="mono">{sweep.job_ids.join(", ")}</span> : <span className="muted">none yet</span>}
          </Meta>
          <Meta label="Experiment">
            <Link to={expLink}>{experiment.data?.name ?? "back to the experiment"}</Link>
          </Meta>
        </dl>
        {experiment.error ? <ErrorMessage error={experiment.error} onRetry={experiment.reload} /> : null}
        {refreshError ? <ErrorMessage error={refreshError} onRetry={onRetry} /> : null}
      </header>

      <div className="sw-top">
        <ProgressCard prog={prog} />
        <BestTrial sweep={sweep} names={names} />
      </div>

      <Section id="plot" title="Parallel coordinates">
        {!sweep.trials.length ? (
          <p className="empty">No trials yet.</p>
        ) : !axes.length ? (
          <p className="empty">This sweep has no parameters to plot.</p>
        ) : (
          <>
            <div className="toolbar sw-plot-bar">
              {sweep.metric ? <ColorLegend axis={axes[axes.length - 1]} goal={sweep.metric.goal} /> : null}
              {sweep.metric && noValue > 0 ? (
                <label className="sw-check" htmlFor={showId}>
                  <input id={showId} type="checkbox" checked={showNoValue} onChange={(e) => setShowNoValue(e.target.checked)} />
                  Show trials without a value ({noValue})
                </label>
              ) : null}
              {brushed ? (
                <>
                  <span className="muted" aria-live="polite" data-testid="brush-count">
                    {shownTrials.length} of {sweep.trials.length} trials in the selected bands
                  </span>
                  <button type="button" onClick={() => setBrushes({})}>
                    Clear axis filters
                  </button>
                </>
              ) : null}
            </div>
            <ParallelCoordinates
              axes={axes}
              trials={sweep.trials}
              goal={sweep.metric?.goal ?? null}
              showNoValue={showNoValue}
              highlight={highlight}
              onHighlight={setHighlight}
              onOpen={(t) => navigate(runLink(t.run_id))}
              brushes={brushes}
              onBrushes={setBrushes}
            />
            <p className="muted sw-help">
              One line per trial{sweep.metric ? `, coloured by ${sweep.metric.name} (stronger is better)` : ""}.{" "}
              {sweep.metric ? "Trials without a value yet (queued, running, failed) are drawn grey and dashed, up to the last parameter. " : ""}
              Hover a line for its trial, click it to open the run; drag along an axis to keep only the trials in that band. The
              trials table below has the same data.
            </p>
          </>
        )}
      </Section>

      <div className="sw-two">
        <Section id="importance" title="Parameter importance">
          <Importance sweep={sweep} />
        </Section>
        <Section id="curves" title="Curves of the best trials">
          <TopCurves sweep={sweep} />
        </Section>
      </div>

      <Section id="trials" title="Trials">
        {brushed ? (
          <p className="muted">
            Showing the {shownTrials.length} of {sweep.trials.length} trials in the selected axis bands.{" "}
            <button type="button" className="link-button" onClick={() => setBrushes({})}>
              Show all
            </button>
          </p>
        ) : null}
        <TrialsTable sweep={sweep} trials={shownTrials} names={names} highlight={highlight} onHighlight={setHighlight} />
      </Section>

      <Section id="spec" title="Spec">
        <details className="sw-spec">
          <summary>The sweep as submitted (YAML)</summary>
          <pre>{sweep.spec}</pre>
        </details>
      </Section>
    </div>
  );
}

function Meta({ label, children }: { label: string; children: ReactNode }) {
  return (
    <div className="sw-meta-item">
      <dt>{label}</dt>
      <dd>{children}</dd>
    </div>
  );
}

function Section({ id, title, children }: { id: string; title: string; children: ReactNode }) {
  return (
    <section className="sw-section" id={`sweep-${id}`} aria-labelledby={`sweep-${id}-h`}>
      <h2 id={`sweep-${id}-h`}>{title}</h2>
      {children}
    </section>
  );
}

// ---------------------------------------------------------------------------------------------

function ProgressCard({ prog }: { prog: Progress }) {
  const items: [keyof Progress["counts"] | "done", string, number][] = [
    ["done", "done", prog.done],
    ["running", "running", prog.counts.running],
    ["queued", "queued", prog.counts.queued],
    ["failed", "failed", prog.counts.failed],
    ["pruned", "pruned", prog.counts.pruned],
  ];
  if (prog.counts.cancelled) items.push(["cancelled", "cancelled", prog.counts.cancelled]);
  return (
    <section className="card sw-progress" aria-labelledby="sweep-progress-h">
      <h2 id="sweep-progress-h">
        Progress{" "}
        <span className="muted sw-progress-pct">
          {prog.done} of {prog.total} done
          {prog.total ? ` (${Math.round(prog.fraction * 100)}%)` : ""}
        </span>
      </h2>
      <ProgressBar prog={prog} label="Sweep progress" />
      <ul className="sw-counts" data-testid="sweep-counts" aria-label="Trials by state">
        {items.map(([key, label, n]) => (
          <li key={key} data-count={key}>
            <span className={`sw-dot sw-seg-${key === "done" ? "finished" : key}`} aria-hidden="true" />
            <strong>{n}</strong> {label}
          </li>
        ))}
      </ul>
      {prog.done > prog.counts.finished ? (
        <p className="muted sw-small">
          done = {prog.counts.finished} finished
          {prog.counts.pruned ? ` + ${prog.counts.pruned} pruned` : ""}
          {prog.counts.failed ? ` + ${prog.counts.failed} failed` : ""}
          {prog.counts.cancelled ? ` + ${prog.counts.cancelled} cancelled` : ""}
        </p>
      ) : null}
    </section>
  );
}

function BestTrial({ sweep, names }: { sweep: SweepDetail; names: string[] }) {
  const best = sweep.best;
  const trial = best ? sweep.trials.find((t) => t.index === best.index) : undefined;
  return (
    <section className="card sw-best" data-testid="best-trial" aria-labelledby="sweep-best-h">
      <h2 id="sweep-best-h">Best trial so far</h2>
      {!sweep.metric ? (
        <p className="empty">This sweep has no metric, so no trial is best.</p>
      ) : !best ? (
        <p className="empty">No trial has logged {sweep.metric.name} yet.</p>
      ) : (
        <>
          <p className="sw-best-value">
            <span className="mono">{sweep.metric.name}</span> <strong data-testid="best-value">{formatNumber(best.value)}</strong>{" "}
            <span className="muted">({sweep.metric.goal === "minimize" ? "lowest" : "highest"})</span>
          </p>
          <p>
            Trial #{best.index}
            {trial ? (
              <>
                {" "}
                · <StatusBadge status={trial.status} />
              </>
            ) : null}{" "}
            · <Link to={runLink(best.run_id)}>{trial?.name ? `open run ${trial.name}` : "open its run"}</Link>
          </p>
          <dl className="kv sw-best-params">
            {(names.length ? names.filter((n) => n in (best.params ?? {})) : Object.keys(best.params ?? {})).map((n) => (
              <div key={n} className="sw-kv-row">
                <dt>{n}</dt>
                <dd className="mono">{formatValue(best.params[n])}</dd>
              </div>
            ))}
          </dl>
        </>
      )}
    </section>
  );
}

function Importance({ sweep }: { sweep: SweepDetail }) {
  const view = importanceView(sweep.importance, sweep.counts.finished);
  return (
    <div data-testid="importance" className="sw-importance">
      {view.note ? (
        <p className="empty">{view.note}</p>
      ) : (
        <>
          <ol aria-label="Parameters by importance">
            {view.rows.map((r) => (
              <li key={r.param}>
                <span className="sw-imp-name mono" title={r.param}>
                  {r.param}
                </span>
                <span className="sw-imp-track" aria-hidden="true">
                  <span className="sw-imp-bar" style={{ width: `${Math.max(1, r.share * 100)}%` }} />
                </span>
                <span className="sw-imp-value">{Math.round(r.importance * 100)}%</span>
              </li>
            ))}
          </ol>
          <p className="muted sw-small">Share of the variation in {sweep.metric?.name ?? "the metric"} explained by each parameter.</p>
        </>
      )}
    </div>
  );
}

function TopCurves({ sweep }: { sweep: SweepDetail }) {
  const [k, setK] = useState<number>(5);
  const id = useId();
  const goal = sweep.metric?.goal ?? "minimize";
  const top = useMemo(() => {
    const seen = new Set<string>(); // one curve per run, should a run be in two trials
    return topK(sweep.trials, sweep.trials.length, goal)
      .filter((t) => !seen.has(t.run_id) && !!seen.add(t.run_id))
      .slice(0, k);
  }, [sweep.trials, k, goal]);
  // the runs keep their identity while the same trials are on top (charts are not rebuilt)
  const sig = top.map((t) => `${t.run_id}\u0001${t.index}\u0001${t.name}`).join("\u0002");
  const runs: ChartRun[] = useMemo(
    () => top.map((t) => ({ id: t.run_id, name: `#${t.index} ${t.name || t.run_id.slice(0, 8)}` })),
    [sig], // eslint-disable-line react-hooks/exhaustive-deps
  );
  const metric = sweep.metric;
  const keys = useMemo(() => (metric ? [metric.name] : []), [metric?.name]); // eslint-disable-line react-hooks/exhaustive-deps
  if (!metric) return <p className="empty">This sweep has no metric to chart.</p>;
  return (
    <div className="sw-curves">
      <div className="toolbar">
        <label htmlFor={id} className="sw-inline">
          Top trials to chart
        </label>
        <select id={id} value={k} onChange={(e) => setK(Number(e.target.value))}>
          {TOP_K_CHOICES.map((n) => (
            <option key={n} value={n}>
              {n}
            </option>
          ))}
        </select>
        <span className="muted">
          by {metric.name} ({goal === "minimize" ? "lowest" : "highest"} last value)
        </span>
      </div>
      {runs.length ? <MetricCharts runs={runs} keys={keys} /> : <p className="empty">No trial has logged {metric.name} yet.</p>}
    </div>
  );
}

type SortKey = "index" | "value";

function TrialsTable({
  sweep,
  trials,
  names,
  highlight,
  onHighlight,
}: {
  sweep: SweepDetail;
  trials: SweepTrial[];
  names: string[];
  highlight: number | null;
  onHighlight: (i: number | null) => void;
}) {
  const [sort, setSort] = useState<{ key: SortKey; desc: boolean }>({ key: "index", desc: false });
  const goalSign = sweep.metric?.goal === "maximize" ? -1 : 1;
  const rows = useMemo(() => {
    if (sort.key === "index") return sort.desc ? [...trials].reverse() : trials;
    const dir = sort.desc ? -1 : 1;
    return [...trials].sort((a, b) => {
      const va = trialValue(a);
      const vb = trialValue(b);
      if (va === null || vb === null) return va === null && vb === null ? a.index - b.index : va === null ? 1 : -1;
      return dir * goalSign * (va - vb) || a.index - b.index;
    });
  }, [trials, sort, goalSign]);
  const toggle = (key: SortKey) => setSort((s) => (s.key === key ? { key, desc: !s.desc } : { key, desc: false }));
  const ariaSort = (key: SortKey) => (sort.key !== key ? "none" : (sort.desc ? "descending" : "ascending") as "ascending" | "descending");
  if (!sweep.trials.length) return <p className="empty">No trials yet.</p>;
  if (!trials.length) return <p className="empty">No trial is in the selected axis bands.</p>;
  return (
    <div className="sw-table-wrap">
      <table className="grid sw-trials" data-testid="trials-table">
        <thead>
          <tr>
            <th scope="col" className="num" aria-sort={ariaSort("index")}>
              <button type="button" className="sw-sort" onClick={() => toggle("index")}>
                #{sort.key === "index" ? (sort.desc ? " ▼" : " ▲") : ""}
              </button>
            </th>
            <th scope="col">Status</th>
            <th scope="col">Run</th>
            {names.map((n) => (
              <th key={n} scope="col" className="mono">
                {n}
              </th>
            ))}
            {sweep.metric ? (
              <th scope="col" className="num" aria-sort={ariaSort("value")}>
                <button
                  type="button"
                  className="sw-sort mono"
                  onClick={() => toggle("value")}
                  title={sweep.metric.goal === "minimize" ? "Sort best (lowest) first" : "Sort best (highest) first"}
                >
                  {sweep.metric.name}
                  {sort.key === "value" ? (sort.desc ? " ▼" : " ▲") : ""}
                </button>
              </th>
            ) : null}
            {sweep.metric ? (
              <th scope="col" className="num">
                Step
              </th>
            ) : null}
            <th scope="col">Job</th>
          </tr>
        </thead>
        <tbody>
          {rows.map((t) => (
            <tr
              key={t.index}
              data-trial={t.index}
              className={highlight === t.index ? "selected" : undefined}
              onMouseEnter={() => onHighlight(t.index)}
              onMouseLeave={() => onHighlight(null)}
            >
              <td className="num">{t.index}</td>
              <td className="sw-status">
                <StatusBadge status={t.status} />
                {t.reason ? (
                  <span className="sw-reason" data-testid="trial-reason">
                    {t.reason}
                  </span>
                ) : null}
              </td>
              <td>
                <Link to={runLink(t.run_id)} onFocus={() => onHighlight(t.index)} onBlur={() => onHighlight(null)}>
                  {t.name || t.run_id.slice(0, 8)}
                </Link>
              </td>
              {names.map((n) => (
                <td key={n} className={typeof t.params?.[n] === "number" ? "num" : undefined}>
                  {formatValue(t.params?.[n])}
                </td>
              ))}
              {sweep.metric ? (
                <td className="num" data-testid="trial-value">
                  {t.value === null ? <span className="muted">—</span> : formatNumber(t.value)}
                  {sweep.best?.index === t.index ? (
                    <span className="sw-best-mark" title="best so far">
                      {" "}
                      ★<span className="sw-sr-only"> best</span>
                    </span>
                  ) : null}
                </td>
              ) : null}
              {sweep.metric ? <td className="num">{t.step ?? ""}</td> : null}
              <td className="mono">{t.slurm_job_id ?? ""}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}
