// An experiment: its header and the table of its runs (server-side filters, sort and paging;
// state in the URL query), live row updates, and the runs chosen for comparison.
import { useCallback, useEffect, useMemo, useRef, useState } from "react";

import { api, ApiError } from "../api";
import { ErrorMessage, Loading, useAsync } from "../components/common";
import { formatRelative, formatTime } from "../format";
import { useLive } from "../live";
import { Link, setQuery, useRoute } from "../router";
import { ColumnPicker } from "../runs/ColumnPicker";
import { ComparePanel, rememberNames } from "../runs/ComparePanel";
import { Filters } from "../runs/Filters";
import { RunsTable } from "../runs/RunsTable";
import {
  apiQuery,
  clearFilters,
  COMPARE_CAP,
  defaultColumns,
  formatCount,
  hasFilters,
  lastOffset,
  loadColumns,
  mergeMetricsEvents,
  mergeRunEvents,
  metricKeysOf,
  PAGE_SIZES,
  pageText,
  parseColumn,
  parseState,
  prevOffset,
  saveColumns,
  toggleSort,
  writeState,
  type Column,
  type ExperimentKeys,
  type TableState,
} from "../runs/runsQuery";
import "../runs/runs.css";
import { ExperimentSweeps } from "../sweeps/ExperimentSweeps";
import type { Experiment, MetricsEventData, Project, Run, RunEventData, RunPage } from "../types";

const storage = typeof localStorage === "undefined" ? undefined : localStorage;

function isInputError(error: unknown): boolean {
  return error instanceof ApiError && (error.status === 400 || error.status === 422) && error.field !== null && ["filter", "sort", "limit", "offset", "order"].includes(error.field);
}

function currentState(): TableState {
  return parseState(new URLSearchParams(window.location.search));
}

function applyState(next: TableState): void {
  setQuery(writeState(next, new URLSearchParams(window.location.search)));
}

/** Calls `fn` at most once per `ms` (the first call waits `ms`, later ones join it). */
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

export function ExperimentPage({ experimentId }: { experimentId: string }) {
  // a new experiment starts fresh (its own saved columns, no leftovers)
  return <ExperimentView key={experimentId} experimentId={experimentId} />;
}

function ExperimentView({ experimentId }: { experimentId: string }) {
  const route = useRoute();
  const qs = route.query.toString();
  const state = useMemo(() => parseState(new URLSearchParams(qs)), [qs]);
  const stateRef = useRef(state);
  stateRef.current = state;
  const base = `/api/v1/experiments/${encodeURIComponent(experimentId)}`;

  const experiment = useAsync((signal) => api.get<Experiment>(base, undefined, signal), [base]);
  const projectId = experiment.data?.project_id;
  const project = useAsync(
    (signal) =>
      projectId ? api.get<Project>(`/api/v1/projects/${encodeURIComponent(projectId)}`, undefined, signal) : Promise.resolve(undefined),
    [projectId],
  );
  const keys = useAsync((signal) => api.get<ExperimentKeys>(`${base}/keys`, undefined, signal), [base]);
  const usernames = useAsync(
    (signal) => api.get<Record<string, string>>("/api/v1/usernames", undefined, signal).catch(() => ({}) as Record<string, string>),
    [],
  );

  useEffect(() => {
    if (experiment.data) document.title = `${experiment.data.name} · Runyard`;
  }, [experiment.data]);

  // ---- columns: saved per experiment, else defaults from the experiment's keys
  const [stored, setStored] = useState<string[] | null>(() => loadColumns(storage, experimentId));
  const columnIds = useMemo(
    () => stored ?? (keys.data ? defaultColumns(keys.data) : keys.error ? defaultColumns(null) : null),
    [stored, keys.data, keys.error],
  );
  const columns = useMemo(() => (columnIds ?? defaultColumns(null)).map(parseColumn).filter((c): c is Column => c !== null), [columnIds]);
  const metricKeys = useMemo(() => (columnIds ? metricKeysOf(columnIds) : null), [columnIds]);
  const shownMetricKeys = useMemo(() => new Set(metricKeys ?? []), [metricKeys]);
  const setColumns = useCallback(
    (ids: string[] | null) => {
      saveColumns(storage, experimentId, ids);
      setStored(ids);
    },
    [experimentId],
  );

  // ---- the page of runs. Until the columns are known (no saved ones, keys not loaded yet) the
  // first page asks for every metric summary instead of waiting; it then covers any columns.
  const query = apiQuery(state, metricKeys ?? []);
  const { metrics: _metricsParam, ...rest } = query;
  const baseKey = JSON.stringify(rest);
  const allFor = useRef<string | null>(null);
  let metricsDep: string;
  if (metricKeys === null) {
    allFor.current = baseKey;
    metricsDep = "*";
  } else if (allFor.current === baseKey) {
    metricsDep = "*";
  } else {
    allFor.current = null;
    metricsDep = String(_metricsParam);
  }
  const runs = useAsync<RunPage>(
    (signal) => api.get<RunPage>(`${base}/runs`, metricsDep === "*" ? rest : { ...rest, metrics: metricsDep }, signal),
    [base, baseKey, metricsDep],
  );
  const page = runs.error ? undefined : runs.data; // a failed request shows no stale page
  const rows = page?.runs ?? [];

  // names of the compared runs: those on the page are known at once (a cache, not state)
  useMemo(() => rememberNames(rows), [rows]);

  // ---- live updates: batched merges of events for rows on the page; counts refetched, throttled
  const pageIds = useMemo(() => new Set(rows.map((r) => r.id)), [rows]);
  const pageIdsRef = useRef(pageIds);
  pageIdsRef.current = pageIds;
  const pending = useRef<{ runs: RunEventData[]; metrics: MetricsEventData[] }>({ runs: [], metrics: [] });
  const shownRef = useRef(shownMetricKeys);
  shownRef.current = shownMetricKeys;
  const flush = useThrottled(() => {
    const { runs: runEvents, metrics: metricEvents } = pending.current;
    pending.current = { runs: [], metrics: [] };
    runs.setData((old) => {
      if (!old) return old;
      const merged = mergeMetricsEvents(mergeRunEvents(old.runs, runEvents), metricEvents, shownRef.current);
      return merged === old.runs ? old : { ...old, runs: merged };
    });
  }, 250);
  const refreshCounts = useThrottled(experiment.reload, 2000);
  const refetchAll = useThrottled(() => {
    runs.reload();
    experiment.reload();
  }, 1000);

  useLive((e) => {
    if (e.type === "reset") return refetchAll();
    if (e.data.experiment_id !== experimentId) return;
    if (e.type === "run") {
      refreshCounts(); // status counts and new runs
      if (pageIdsRef.current.has(e.data.run_id)) {
        pending.current.runs.push(e.data);
        flush();
      }
    } else if (e.type === "metrics" && pageIdsRef.current.has(e.data.run_id)) {
      pending.current.metrics.push(e.data);
      flush();
    }
  });

  // "N new runs": the experiment's run count now against the count when this page was fetched
  const runCount = experiment.data?.run_count;
  const [baseline, setBaseline] = useState<number | null>(null);
  useEffect(() => {
    if (baseline === null && runCount !== undefined) setBaseline(runCount);
  }, [baseline, runCount]);
  const countRef = useRef(runCount);
  countRef.current = runCount;
  useEffect(() => {
    if (countRef.current !== undefined) setBaseline(countRef.current);
  }, [baseKey]);
  const newRuns = baseline !== null && runCount !== undefined ? Math.max(0, runCount - baseline) : 0;
  const showNew = () => {
    setBaseline(runCount ?? null);
    if (state.offset !== 0) applyState({ ...state, offset: 0 });
    else runs.reload();
  };

  // ---- selection (the URL's compare=)
  const selected = useMemo(() => new Set(state.compare), [state.compare]);
  const [capNote, setCapNote] = useState("");
  const setCompare = useCallback((ids: string[], leftOut: number) => {
    setCapNote(leftOut > 0 ? `Compare holds at most ${COMPARE_CAP} runs: ${leftOut} more ${leftOut === 1 ? "was" : "were"} not added.` : "");
    applyState({ ...currentState(), compare: ids });
  }, []);
  const onToggle = useCallback(
    (run: Run, on: boolean) => {
      const cur = currentState().compare;
      if (!on) return setCompare(cur.filter((id) => id !== run.id), 0);
      if (cur.includes(run.id)) return;
      if (cur.length >= COMPARE_CAP) return setCompare(cur, 1);
      setCompare([...cur, run.id], 0);
    },
    [setCompare],
  );
  const rowsRef = useRef(rows);
  rowsRef.current = rows;
  const onTogglePage = useCallback(
    (on: boolean) => {
      const cur = currentState().compare;
      const ids = rowsRef.current.map((r) => r.id);
      if (!on) return setCompare(cur.filter((id) => !ids.includes(id)), 0);
      const add = ids.filter((id) => !cur.includes(id));
      const room = Math.max(0, COMPARE_CAP - cur.length);
      setCompare([...cur, ...add.slice(0, room)], Math.max(0, add.length - room));
    },
    [setCompare],
  );
  const onSort = useCallback((field: string) => applyState(toggleSort(currentState(), field)), []);

  // ---- render
  if (experiment.error && !experiment.data) {
    return (
      <div className="page">
        <p>
          <Link to="/">Projects</Link>
        </p>
        <ErrorMessage error={experiment.error} onRetry={experiment.reload} />
      </div>
    );
  }
  const exp = experiment.data;
  const inputError = runs.error && isInputError(runs.error) ? runs.error : null;
  const otherError = runs.error && !inputError ? runs.error : null;
  const total = page?.total ?? null;

  return (
    <div className="page rt-page">
      <nav aria-label="Breadcrumb" className="rt-crumbs">
        <Link to="/">Projects</Link>
        <span aria-hidden="true"> / </span>
        <span>{project.data?.name ?? (projectId ? "…" : "")}</span>
      </nav>
      <header className="rt-header">
        <h1>{exp ? exp.name : "Experiment"}</h1>
        {exp ? (
          <p className="rt-counts" data-testid="experiment-counts">
            <span>
              <strong>{formatCount(exp.run_count)}</strong> runs
            </span>
            <span>
              <strong>{formatCount(exp.running_count)}</strong> running
            </span>
            <span>
              <strong>{formatCount(exp.queued_count)}</strong> queued
            </span>
            {exp.last_activity_at ? (
              <span title={formatTime(exp.last_activity_at)}>last activity {formatRelative(exp.last_activity_at)}</span>
            ) : null}
          </p>
        ) : (
          <Loading what="Loading the experiment" />
        )}
        {exp?.description ? <p className="muted">{exp.description}</p> : null}
        {project.error ? <ErrorMessage error={project.error} onRetry={project.reload} /> : null}
      </header>

      <ExperimentSweeps experimentId={experimentId} />

      <Filters state={state} keys={keys.data} usernames={usernames.data ?? {}} onChange={applyState} error={inputError} />
      {keys.error ? <ErrorMessage error={keys.error} onRetry={keys.reload} /> : null}

      <div className="toolbar rt-toolbar">
        <span className="rt-page-text" aria-live="polite" data-testid="page-text">
          {page ? pageText(page.offset, page.runs.length, total) : ""}
        </span>
        <nav className="rt-pager" aria-label="Pages">
          <button type="button" disabled={!page || state.offset === 0} onClick={() => applyState({ ...state, offset: 0 })} aria-label="First page">
            First
          </button>
          <button type="button" disabled={!page || state.offset === 0} onClick={() => applyState({ ...state, offset: prevOffset(state.offset, state.limit) })} aria-label="Previous page">
            Previous
          </button>
          <button
            type="button"
            disabled={!page || page.next_offset === null}
            onClick={() => page?.next_offset != null && applyState({ ...state, offset: page.next_offset })}
            aria-label="Next page"
          >
            Next
          </button>
          <button
            type="button"
            disabled={!page || total === null || page.next_offset === null}
            onClick={() => total !== null && applyState({ ...state, offset: lastOffset(total, state.limit) })}
            aria-label="Last page"
          >
            Last
          </button>
        </nav>
        <label className="rt-inline">
          Rows per page
          <select value={state.limit} onChange={(e) => applyState({ ...state, limit: Number(e.target.value), offset: 0 })}>
            {PAGE_SIZES.map((n) => (
              <option key={n} value={n}>
                {n}
              </option>
            ))}
          </select>
        </label>
        {runs.loading && page ? (
          <span className="muted" role="status">
            Loading…
          </span>
        ) : null}
        {newRuns > 0 ? (
          <button type="button" className="rt-new" onClick={showNew} data-testid="new-runs">
            {formatCount(newRuns)} new {newRuns === 1 ? "run" : "runs"} — show
          </button>
        ) : null}
        <span className="spacer" />
        <ColumnPicker columns={columnIds ?? defaultColumns(null)} keys={keys.data} onChange={setColumns} />
      </div>

      {otherError ? (
        <ErrorMessage error={otherError} onRetry={runs.reload} />
      ) : inputError ? (
        <div className="rt-empty">
          <p>No runs shown: fix the filter above, or clear it.</p>
          <button type="button" onClick={() => applyState(clearFilters(state))}>
            Clear filters
          </button>
        </div>
      ) : !page ? (
        <Loading what="Loading runs" />
      ) : rows.length === 0 ? (
        <div className="rt-empty" data-testid="runs-empty">
          {hasFilters(state) ? (
            <>
              <p>No runs match these filters.</p>
              <button type="button" onClick={() => applyState(clearFilters(state))}>
                Clear filters
              </button>
            </>
          ) : state.offset > 0 ? (
            <>
              <p>No runs on this page.</p>
              <button type="button" onClick={() => applyState({ ...state, offset: 0 })}>
                First page
              </button>
            </>
          ) : (
            <p>No runs in this experiment yet. Runs appear here as soon as they are created.</p>
          )}
        </div>
      ) : (
        <RunsTable
          rows={rows}
          columns={columns}
          sort={state.sort}
          order={state.order}
          onSort={onSort}
          selected={selected}
          onToggle={onToggle}
          onTogglePage={onTogglePage}
          usernames={usernames.data ?? {}}
          busy={runs.loading}
        />
      )}

      <ComparePanel
        ids={state.compare}
        ready={!!runs.data || !!runs.error}
        capNote={capNote}
        onRemove={(id) => setCompare(state.compare.filter((x) => x !== id), 0)}
        onClear={() => setCompare([], 0)}
      />
    </div>
  );
}
