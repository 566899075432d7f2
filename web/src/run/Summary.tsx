// The run's summary: the values it set (run.summary) and a table of its metric summaries.
import { useMemo, useState } from "react";

import { formatNumber, formatRelative, formatTime } from "../format";
import type { MetricSummary, Run } from "../types";
import { ConfigView } from "./ConfigView";

export function Summary({ run }: { run: Run }) {
  const [filter, setFilter] = useState("");
  const all = useMemo(() => Object.values(run.metrics).sort((a, b) => a.key.localeCompare(b.key)), [run.metrics]);
  const wanted = filter.trim().toLowerCase();
  const shown = wanted ? all.filter((m) => m.key.toLowerCase().includes(wanted)) : all;
  const user = shown.filter((m) => !m.key.startsWith("sys/"));
  const sys = shown.filter((m) => m.key.startsWith("sys/"));

  return (
    <div className="summary">
      <h3>Values set by the run</h3>
      <ConfigView config={run.summary} label="summary" />
      <h3>Metrics</h3>
      {all.length === 0 ? (
        <p className="empty">No metrics logged yet.</p>
      ) : (
        <>
          {all.length > 8 ? (
            <div className="toolbar">
              <input
                type="search"
                aria-label="Filter metrics"
                placeholder="Filter metrics"
                value={filter}
                onChange={(e) => setFilter(e.target.value)}
              />
              <span className="muted">
                {shown.length} of {all.length}
              </span>
            </div>
          ) : null}
          {user.length ? <MetricTable rows={user} label="Metric summaries" /> : null}
          {sys.length ? (
            <details className="sys-metrics">
              <summary>System metrics ({sys.length})</summary>
              <MetricTable rows={sys} label="System metric summaries" />
            </details>
          ) : null}
          {shown.length === 0 ? <p className="empty">No metric matches “{filter}”.</p> : null}
        </>
      )}
    </div>
  );
}

function MetricTable({ rows, label }: { rows: MetricSummary[]; label: string }) {
  return (
    <div className="table-wrap">
      <table className="grid metric-summary" aria-label={label}>
        <thead>
          <tr>
            <th scope="col">Metric</th>
            <th scope="col" className="num">
              Last
            </th>
            <th scope="col" className="num">
              Min
            </th>
            <th scope="col" className="num">
              Max
            </th>
            <th scope="col" className="num">
              Count
            </th>
            <th scope="col" className="num">
              Last step
            </th>
            <th scope="col">Updated</th>
          </tr>
        </thead>
        <tbody>
          {rows.map((m) => (
            <tr key={m.key} data-metric={m.key}>
              <th scope="row" className="mono metric-key">
                {m.key}
              </th>
              <td className="num" data-col="last">
                {formatNumber(m.last)}
              </td>
              <td className="num">{formatNumber(m.min)}</td>
              <td className="num">{formatNumber(m.max)}</td>
              <td className="num" data-col="count">
                {m.count.toLocaleString()}
              </td>
              <td className="num">{m.last_step ?? ""}</td>
              <td title={formatTime(m.last_time)}>{formatRelative(m.last_time)}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}
