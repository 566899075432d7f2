// The table of one page of runs: memoised rows (a row re-renders only when its run object, its
// selection or the columns change), server-side sort headers, and one shared ticker for the
// durations of running runs.
import { memo, useEffect } from "react";

import { StatusBadge } from "../components/common";
import { formatDuration, formatNumber, formatRelative, formatTime, formatValue, toNumber } from "../format";
import { Link } from "../router";
import { ACTIVE_STATUSES, type Run } from "../types";
import {
  columnLabel,
  columnSort,
  gpuCount,
  metricValue,
  paramValue,
  slurmJobLabel,
  type Column,
  type SortOrder,
} from "./runsQuery";
import { useNowSeconds } from "./ticker";

let renderedMarked = false;

function LiveDuration({ startedAt }: { startedAt: number }) {
  const now = useNowSeconds();
  return <>{formatDuration(Math.max(0, now - startedAt))}</>;
}

function DurationCell({ run }: { run: Run }) {
  if (run.started_at === null) return null;
  if (run.ended_at !== null) return <>{formatDuration(run.ended_at - run.started_at)}</>;
  if (run.status === "running") return <LiveDuration startedAt={run.started_at} />;
  return null; // waiting again, or ended without an end time: unknown
}

function TimeCell({ time }: { time: number | null }) {
  if (time === null) return null;
  return <time dateTime={new Date(time * 1000).toISOString()}>{formatTime(time)}</time>;
}

function cell(col: Column, run: Run, userName: string) {
  if (col.kind === "param") {
    const value = paramValue(run, col.key);
    const text = formatValue(value);
    const numeric = typeof value === "number";
    return (
      <td key={col.id} className={numeric ? "num" : "rt-text"} title={value === undefined ? undefined : typeof value === "string" ? value : JSON.stringify(value)}>
        {text}
      </td>
    );
  }
  if (col.kind === "metric") {
    const value = metricValue(run, col.key, col.stat);
    const summary = run.metrics?.[col.key];
    const n = toNumber(value as number | string | null);
    return (
      <td key={col.id} className="num" title={n === null ? undefined : `${String(value)}${summary?.last_step !== null && summary?.last_step !== undefined ? ` (step ${summary.last_step}, ${summary.count} points)` : ""}`}>
        {formatNumber(value as number | string | null)}
      </td>
    );
  }
  switch (col.id) {
    case "user":
      return <td key={col.id}>{userName}</td>;
    case "slurm": {
      const label = slurmJobLabel(run);
      return (
        <td key={col.id} className="mono" title={run.slurm_state ? `Slurm state ${run.slurm_state}` : undefined}>
          {label}
        </td>
      );
    }
    case "nodes":
      return (
        <td key={col.id} className="rt-text" title={run.slurm_nodes ?? undefined}>
          {run.slurm_nodes ?? ""}
        </td>
      );
    case "gpus": {
      const gpus = gpuCount(run);
      return (
        <td key={col.id} className="num" title={gpus !== null && run.gpu_type ? `${gpus} × ${run.gpu_type}` : undefined}>
          {gpus ?? ""}
        </td>
      );
    }
    case "duration":
      return (
        <td key={col.id} className="num">
          <DurationCell run={run} />
        </td>
      );
    case "created":
      return (
        <td key={col.id} title={formatRelative(run.created_at)}>
          <TimeCell time={run.created_at} />
        </td>
      );
    case "started":
      return (
        <td key={col.id}>
          <TimeCell time={run.started_at} />
        </td>
      );
    case "ended":
      return (
        <td key={col.id}>
          <TimeCell time={run.ended_at} />
        </td>
      );
    case "tags":
      return (
        <td key={col.id} className="rt-text">
          {run.tags.map((t) => (
            <span key={t} className="rt-tag">
              {t}
            </span>
          ))}
        </td>
      );
    case "partition":
      return <td key={col.id}>{run.slurm_partition ?? ""}</td>;
    case "host":
      return <td key={col.id}>{run.host ?? ""}</td>;
    default:
      return <td key={col.id} />;
  }
}

const Row = memo(function Row({
  run,
  columns,
  selected,
  userName,
  onToggle,
}: {
  run: Run;
  columns: Column[];
  selected: boolean;
  userName: string;
  onToggle: (run: Run, on: boolean) => void;
}) {
  return (
    <tr data-run-id={run.id} data-status={run.status} className={selected ? "selected" : undefined}>
      <td className="rt-select">
        <input type="checkbox" checked={selected} onChange={(e) => onToggle(run, e.target.checked)} aria-label={`Select run ${run.name}`} />
      </td>
      <td>
        <StatusBadge status={run.status} reason={run.pending_reason} estimate={run.start_estimate} unknownSince={run.state_unknown_since} />
        {run.exit_code !== null && run.exit_code !== 0 && !ACTIVE_STATUSES.has(run.status) ? (
          <span className="pending-reason rt-exit" title="exit code">
            {" "}
            exit {run.exit_code}
          </span>
        ) : null}
      </td>
      <td className="rt-name">
        <Link to={`/runs/${encodeURIComponent(run.id)}`} title={run.name}>
          {run.name || run.id}
        </Link>
      </td>
      {columns.map((col) => cell(col, run, userName))}
    </tr>
  );
});

function SortHeader({
  label,
  field,
  sort,
  order,
  onSort,
  numeric,
}: {
  label: string;
  field: string | null;
  sort: string;
  order: SortOrder;
  onSort: (field: string) => void;
  numeric?: boolean;
}) {
  if (field === null) {
    return (
      <th scope="col" className={numeric ? "num" : undefined} title="The server cannot sort by this column">
        {label}
      </th>
    );
  }
  const active = sort === field;
  return (
    <th scope="col" aria-sort={active ? (order === "asc" ? "ascending" : "descending") : "none"} className={numeric ? "num" : undefined}>
      <button type="button" className={`rt-sort${active ? " rt-sorted" : ""}`} onClick={() => onSort(field)} title={`Sort by ${label}`}>
        {label}
        <span aria-hidden="true" className="rt-sort-arrow">
          {active ? (order === "asc" ? " ▲" : " ▼") : " ↕"}
        </span>
      </button>
    </th>
  );
}

export function RunsTable({
  rows,
  columns,
  sort,
  order,
  onSort,
  selected,
  onToggle,
  onTogglePage,
  usernames,
  busy,
}: {
  rows: Run[];
  columns: Column[];
  sort: string;
  order: SortOrder;
  onSort: (field: string) => void;
  selected: ReadonlySet<string>;
  onToggle: (run: Run, on: boolean) => void;
  onTogglePage: (on: boolean) => void;
  usernames: Record<string, string>;
  busy: boolean;
}) {
  useEffect(() => {
    if (!renderedMarked && rows.length > 0) {
      renderedMarked = true;
      performance.mark("runyard:runs-table-rendered");
    }
  }, [rows]);

  const onPage = rows.filter((r) => selected.has(r.id)).length;
  const all = rows.length > 0 && onPage === rows.length;
  return (
    <div className={`rt-scroll${busy ? " rt-busy" : ""}`} aria-busy={busy}>
      <table className="grid rt-table" data-testid="runs-table">
        <thead>
          <tr>
            <th scope="col" className="rt-select">
              <input
                type="checkbox"
                aria-label="Select all runs on this page"
                checked={all}
                ref={(el) => {
                  if (el) el.indeterminate = onPage > 0 && !all;
                }}
                onChange={(e) => onTogglePage(e.target.checked)}
              />
            </th>
            <SortHeader label="Status" field="status" sort={sort} order={order} onSort={onSort} />
            <SortHeader label="Name" field="name" sort={sort} order={order} onSort={onSort} />
            {columns.map((col) => (
              <SortHeader
                key={col.id}
                label={columnLabel(col)}
                field={columnSort(col)}
                sort={sort}
                order={order}
                onSort={onSort}
                numeric={col.kind === "metric" || (col.kind === "builtin" && col.builtin.numeric)}
              />
            ))}
          </tr>
        </thead>
        <tbody>
          {rows.map((run) => (
            <Row
              key={run.id}
              run={run}
              columns={columns}
              selected={selected.has(run.id)}
              userName={run.user_id ? (usernames[run.user_id] ?? run.user_id.slice(0, 8)) : ""}
              onToggle={onToggle}
            />
          ))}
        </tbody>
      </table>
    </div>
  );
}
