// The experiment page's compact lists of its sweeps and pipelines (above the runs table);
// nothing at all when the experiment has none. Refetched (throttled) on its runs' events.
import { useCallback, useEffect, useRef } from "react";

import { api, ApiError } from "../api";
import { ErrorMessage, StatusBadge, useAsync } from "../components/common";
import { formatNumber, formatRelative, formatTime } from "../format";
import { useLive } from "../live";
import { Link } from "../router";
import type { PipelineSummary, SweepSummary } from "../types";
import { ProgressBar } from "./ProgressBar";
import { progress } from "./sweeps";
import "./sweeps.css";

const REFRESH_MS = 3000;

/** A list the server does not have (an older server answers 404): shown as none. */
function orNone<T>(promise: Promise<T>, none: T): Promise<T> {
  return promise.catch((err) => {
    if (err instanceof ApiError && err.status === 404) return none;
    throw err;
  });
}

function useThrottled(fn: () => void, ms: number): () => void {
  const fnRef = useRef(fn);
  fnRef.current = fn;
  const timer = useRef<ReturnType<typeof setTimeout> | undefined>(undefined);
  useEffect(() => () => clearTimeout(timer.current), []);
  return useCallback(() => {
    if (timer.current !== undefined) return;
    timer.current = setTimeout(() => {
      timer.current = undefined;
      fnRef.current();
    }, ms);
  }, [ms]);
}

export function ExperimentSweeps({ experimentId }: { experimentId: string }) {
  const sweeps = useAsync(
    (signal) =>
      orNone(
        api.get<{ sweeps: SweepSummary[] }>("/api/v1/sweeps", { experiment_id: experimentId }, signal),
        { sweeps: [] },
      ),
    [experimentId],
  );
  const pipelines = useAsync(
    (signal) =>
      orNone(
        api.get<{ pipelines: PipelineSummary[] }>("/api/v1/pipelines", { experiment_id: experimentId }, signal),
        { pipelines: [] },
      ),
    [experimentId],
  );
  const refresh = useThrottled(() => {
    sweeps.reload();
    pipelines.reload();
  }, REFRESH_MS);
  useLive((e) => {
    if (e.type === "reset" || (e.type === "run" && e.data.experiment_id === experimentId)) refresh();
  });

  const sweepRows = sweeps.data?.sweeps ?? [];
  const pipelineRows = pipelines.data?.pipelines ?? [];
  if (!sweepRows.length && !pipelineRows.length && !sweeps.error && !pipelines.error) return null;

  return (
    <div className="xs-lists">
      {sweeps.error ? <ErrorMessage error={sweeps.error} onRetry={sweeps.reload} /> : null}
      {sweepRows.length ? (
        <section aria-labelledby="xs-sweeps-h" data-testid="experiment-sweeps">
          <h2 id="xs-sweeps-h">Sweeps</h2>
          <table className="grid xs-table">
            <thead>
              <tr>
                <th scope="col">Name</th>
                <th scope="col">Method</th>
                <th scope="col">State</th>
                <th scope="col">Progress</th>
                <th scope="col">Best</th>
                <th scope="col">Created</th>
              </tr>
            </thead>
            <tbody>
              {sweepRows.map((s) => {
                const prog = progress(s.counts, s.trial_count);
                return (
                  <tr key={s.id} data-sweep={s.id}>
                    <td>
                      <Link to={`/sweeps/${encodeURIComponent(s.id)}`}>{s.name}</Link>
                    </td>
                    <td>{s.method}</td>
                    <td>
                      <StatusBadge status={s.state} />
                    </td>
                    <td>
                      <span className="xs-progress">
                        <ProgressBar prog={prog} label={`Progress of sweep ${s.name}`} compact />
                        <span>
                          {prog.done}/{prog.total}
                          {s.counts.running ? <span className="muted"> · {s.counts.running} running</span> : null}
                        </span>
                      </span>
                    </td>
                    <td>
                      {s.best && s.metric ? (
                        <>
                          <span className="mono muted">{s.metric.name}</span> {formatNumber(s.best.value)}
                        </>
                      ) : (
                        <span className="muted">—</span>
                      )}
                    </td>
                    <td title={formatTime(s.created_at)}>{formatRelative(s.created_at)}</td>
                  </tr>
                );
              })}
            </tbody>
          </table>
        </section>
      ) : null}
      {pipelines.error ? <ErrorMessage error={pipelines.error} onRetry={pipelines.reload} /> : null}
      {pipelineRows.length ? (
        <section aria-labelledby="xs-pipelines-h" data-testid="experiment-pipelines">
          <h2 id="xs-pipelines-h">Pipelines</h2>
          <table className="grid xs-table">
            <thead>
              <tr>
                <th scope="col">Name</th>
                <th scope="col">State</th>
                <th scope="col">Steps</th>
                <th scope="col">Created</th>
              </tr>
            </thead>
            <tbody>
              {pipelineRows.map((p) => {
                const counts = Object.entries(p.counts ?? {}).filter(([, n]) => n);
                const total = counts.reduce((s, [, n]) => s + (n ?? 0), 0);
                return (
                  <tr key={p.id} data-pipeline={p.id}>
                    <td>
                      <Link to={`/pipelines/${encodeURIComponent(p.id)}`}>{p.name}</Link>
                    </td>
                    <td>
                      <StatusBadge status={p.state} />
                    </td>
                    <td>
                      {total} {total === 1 ? "step" : "steps"}
                      {counts.length ? <span className="muted">: {counts.map(([k, n]) => `${n} ${k}`).join(", ")}</span> : null}
                    </td>
                    <td title={formatTime(p.created_at)}>{formatRelative(p.created_at)}</td>
                  </tr>
                );
              })}
            </tbody>
          </table>
        </section>
      ) : null}
    </div>
  );
}
