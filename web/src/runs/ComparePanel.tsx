// The runs chosen for comparison (ids from the URL's `compare=`), with their metric charts.
// Names come from the rows on the page; those of runs on other pages are fetched once.
import { useEffect, useMemo, useState } from "react";

import { api } from "../api";
import { MetricCharts } from "../charts/MetricCharts";
import type { Run } from "../types";
import { COMPARE_CAP } from "./runsQuery";

const nameCache = new Map<string, string>();
// the metric summaries the page's rows came with: a compared run's charts start without first
// asking which keys it has
const metricsCache = new Map<string, Run["metrics"]>();

export function rememberNames(rows: Run[]): void {
  for (const r of rows) {
    nameCache.set(r.id, r.name || r.id);
    if (r.metrics && Object.keys(r.metrics).length) metricsCache.set(r.id, r.metrics);
  }
}

export function ComparePanel({
  ids,
  ready,
  capNote,
  onRemove,
  onClear,
}: {
  ids: string[];
  ready: boolean; // the page's rows are in: ask the server only for the names of other runs
  capNote: string;
  onRemove: (id: string) => void;
  onClear: () => void;
}) {
  const [, setFetched] = useState(0);
  const [missing, setMissing] = useState<ReadonlySet<string>>(new Set());

  useEffect(() => {
    if (!ready) return;
    const unknown = ids.filter((id) => !nameCache.has(id));
    if (!unknown.length) return;
    const controller = new AbortController();
    Promise.allSettled(
      unknown.map((id) => api.get<Run>(`/api/v1/runs/${encodeURIComponent(id)}`, undefined, controller.signal)),
    ).then((results) => {
      if (controller.signal.aborted) return;
      const gone = new Set<string>();
      results.forEach((r, i) => {
        if (r.status === "fulfilled") nameCache.set(r.value.id, r.value.name || r.value.id);
        else gone.add(unknown[i]);
      });
      setMissing(gone);
      setFetched((n) => n + 1);
    });
    return () => controller.abort();
  }, [ids, ready]);

  const key = ids.map((id) => `${id}\u0000${nameCache.get(id) ?? ""}`).join("\u0001");
  // eslint-disable-next-line react-hooks/exhaustive-deps
  const runs = useMemo(
    () =>
      ids.map((id) => {
        const metrics = metricsCache.get(id);
        return metrics ? { id, name: nameCache.get(id) ?? id, metrics } : { id, name: nameCache.get(id) ?? id };
      }),
    // eslint-disable-next-line react-hooks/exhaustive-deps
    [key],
  );

  return (
    <section className="rt-compare" aria-labelledby="rt-compare-title" data-testid="compare-panel">
      <div className="rt-row">
        <h2 id="rt-compare-title">Compare ({ids.length})</h2>
        {ids.length ? (
          <button type="button" onClick={onClear}>
            Clear selection
          </button>
        ) : null}
      </div>
      {capNote ? (
        <p className="notice" role="status">
          {capNote}
        </p>
      ) : null}
      {ids.length === 0 ? (
        <p className="muted">Select runs with the checkboxes in the table to compare their metrics here (up to {COMPARE_CAP}).</p>
      ) : (
        <>
          <ul className="rt-chips" aria-label="Runs to compare">
            {runs.map((r) => (
              <li key={r.id} className="rt-chip">
                <span title={r.id}>
                  {r.name}
                  {missing.has(r.id) ? " (not found)" : ""}
                </span>
                <button type="button" className="ghost rt-chip-x" aria-label={`Remove ${r.name} from the comparison`} onClick={() => onRemove(r.id)}>
                  ×
                </button>
              </li>
            ))}
          </ul>
          {ready ? <MetricCharts runs={runs} /> : <p className="muted">Loading the runs…</p>}
        </>
      )}
    </section>
  );
}
