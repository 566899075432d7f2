// Metric curves of several runs overlaid, one chart per key, with a toolbar shared by all the
// charts (x axis, smoothing, log scale, reset zoom); and the system-metric charts of one run.
import { useCallback, useDeferredValue, useEffect, useId, useMemo, useRef, useState, type ReactNode } from "react";

import { api } from "../api";
import { ErrorMessage, Loading } from "../components/common";
import { useLive } from "../live";
import type { MetricSummary } from "../types";
import { LiveHub } from "./hub";
import { chartQueue } from "./queue";
import { markChartRendered, markChartStart, SeriesChart, type ChartSettings, type SeriesSpec } from "./SeriesChart";
import {
  assignSlots,
  chartKeys,
  filterKeys,
  groupSystemKeys,
  styleForSlot,
  systemDevices,
  X_MODE_LABELS,
  type XMode,
} from "./series";

export interface ChartRun {
  id: string;
  name: string;
}

/** Charts shown before "Show all" when a run has many metrics. */
const FIRST_KEYS = 12;

// ---------------------------------------------------------------------------------------------
// which keys each run has

interface RunKeys {
  byRun: Map<string, Set<string>>;
  loading: boolean;
  error: unknown;
  retry: () => void;
}

function useRunKeys(runs: ChartRun[], enabled: boolean, reloadToken: number): [RunKeys, (runId: string, keys: string[]) => void] {
  const [byRun, setByRun] = useState<Map<string, Set<string>>>(() => new Map());
  const [errors, setErrors] = useState<Map<string, unknown>>(() => new Map());
  const [pending, setPending] = useState(0);
  const [retryToken, setRetryToken] = useState(0);
  const loadedFor = useRef(new Map<string, number>()); // run id → reload token it was read at
  const runIds = runs.map((r) => r.id).join("\u0001");

  useEffect(() => {
    if (!enabled) return;
    const controller = new AbortController();
    // Runs passed as full Run objects carry metric summaries: their charts start at once. The
    // summaries are still read (after the first charts' data), as a runs list may have been
    // asked for some metrics only.
    const given = new Map<string, Set<string>>();
    if (reloadToken === 0)
      for (const r of runs) {
        const metrics = (r as ChartRun & { metrics?: unknown }).metrics;
        if (!byRun.has(r.id) && metrics && typeof metrics === "object" && !Array.isArray(metrics))
          given.set(r.id, new Set(Object.keys(metrics)));
      }
    if (given.size)
      setByRun((prev) => {
        const next = new Map(prev);
        for (const [id, keys] of given) next.set(id, new Set([...(prev.get(id) ?? []), ...keys]));
        return next;
      });
    const todo = runs.filter((r) => loadedFor.current.get(r.id) !== reloadToken || errors.has(r.id));
    if (!todo.length) return;
    setPending((n) => n + todo.length);
    for (const run of todo) {
      chartQueue
        .add({
          priority: given.has(run.id) ? 50 : -2,
          signal: controller.signal,
          run: () => api.get<MetricSummary[]>(`/api/v1/runs/${encodeURIComponent(run.id)}/metrics`, undefined, controller.signal),
        })
        .then((summaries) => {
          loadedFor.current.set(run.id, reloadToken);
          setByRun((prev) => {
            const keys = new Set(summaries.map((s) => s.key));
            const have = prev.get(run.id);
            if (have && have.size === keys.size && [...keys].every((k) => have.has(k))) return prev;
            return new Map(prev).set(run.id, keys);
          });
          setErrors((prev) => {
            if (!prev.has(run.id)) return prev;
            const next = new Map(prev);
            next.delete(run.id);
            return next;
          });
        })
        .catch((err) => {
          if ((err as Error).name === "AbortError") return;
          setErrors((prev) => new Map(prev).set(run.id, err));
        })
        .finally(() => setPending((n) => n - 1));
    }
    return () => controller.abort();
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [runIds, enabled, reloadToken, retryToken]);

  const addKeys = useCallback((runId: string, keys: string[]) => {
    setByRun((prev) => {
      const have = prev.get(runId);
      if (!have || keys.every((k) => have.has(k))) return prev;
      return new Map(prev).set(runId, new Set([...have, ...keys]));
    });
  }, []);

  const shownErrors = runs.map((r) => errors.get(r.id)).filter((e) => e !== undefined);
  return [
    {
      byRun,
      loading: enabled && (pending > 0 || runs.some((r) => !byRun.has(r.id) && !errors.has(r.id))),
      error: shownErrors[0] ?? null,
      retry: () => setRetryToken((t) => t + 1),
    },
    addKeys,
  ];
}

// ---------------------------------------------------------------------------------------------
// the toolbar

function Toolbar({
  xMode,
  setXMode,
  smoothing,
  setSmoothing,
  log,
  setLog,
  onResetZoom,
  children,
}: {
  xMode: XMode;
  setXMode: (m: XMode) => void;
  smoothing: number;
  setSmoothing: (v: number) => void;
  log: boolean;
  setLog: (v: boolean) => void;
  onResetZoom: () => void;
  children?: ReactNode;
}) {
  const id = useId();
  return (
    <div className="ry-chart-toolbar" role="toolbar" aria-label="Chart settings">
      <label className="ry-field" htmlFor={`${id}-x`}>
        X axis
        <select id={`${id}-x`} value={xMode} onChange={(e) => setXMode(e.target.value as XMode)}>
          {(Object.keys(X_MODE_LABELS) as (keyof typeof X_MODE_LABELS)[]).map((m) => (
            <option key={m} value={m}>
              {X_MODE_LABELS[m]}
            </option>
          ))}
        </select>
      </label>
      <label className="ry-field" htmlFor={`${id}-s`}>
        Smoothing
        <input
          id={`${id}-s`}
          type="range"
          min={0}
          max={0.99}
          step={0.01}
          value={smoothing}
          onChange={(e) => setSmoothing(Number(e.target.value))}
          aria-valuetext={smoothing > 0 ? `${smoothing.toFixed(2)}` : "off"}
        />
        <output htmlFor={`${id}-s`} className="mono ry-smoothing-value">
          {smoothing > 0 ? smoothing.toFixed(2) : "off"}
        </output>
      </label>
      <label className="ry-field ry-check">
        <input type="checkbox" checked={log} onChange={(e) => setLog(e.target.checked)} />
        Log scale
      </label>
      <button type="button" onClick={onResetZoom}>
        Reset zoom
      </button>
      {children}
    </div>
  );
}

// ---------------------------------------------------------------------------------------------
// MetricCharts

export function MetricCharts({ runs, keys }: { runs: ChartRun[]; keys?: string[] }) {
  const hub = useMemo(() => new LiveHub(), []);
  const [reloadToken, setReloadToken] = useState(0);
  const [xMode, setXMode] = useState<XMode>("step");
  const [smoothing, setSmoothing] = useState(0);
  const [log, setLog] = useState(false);
  const [resetToken, setResetToken] = useState(0);
  const [query, setQuery] = useState("");
  const [showAll, setShowAll] = useState(false);
  const filterId = useId();
  useEffect(() => {
    if (runs.length) markChartStart();
  }, [runs.length]);

  const [runKeys, addKeys] = useRunKeys(runs, !keys, reloadToken);

  const runIds = new Set(runs.map((r) => r.id));
  useLive((e) => {
    if (e.type === "reset") {
      setReloadToken((t) => t + 1);
      return;
    }
    if (e.type !== "metrics" || !runIds.has(e.data.run_id)) return;
    const news = Object.entries(e.data.metrics);
    if (!keys) addKeys(e.data.run_id, news.map(([k]) => k));
    for (const [key, info] of news) hub.emit(e.data.run_id, key, info);
  });

  // a colour per run that stays while the run stays selected
  const slotsRef = useRef(new Map<string, number>());
  const runIdsKey = runs.map((r) => r.id).join("\u0001");
  const slots = useMemo(() => {
    slotsRef.current = assignSlots(
      runs.map((r) => r.id),
      slotsRef.current,
    );
    return slotsRef.current;
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [runIdsKey]);

  const allKeys = useMemo(
    () => (keys ? [...keys] : chartKeys(runKeys.byRun.values())),
    // eslint-disable-next-line react-hooks/exhaustive-deps
    [keys ? keys.join("\u0001") : null, runKeys.byRun],
  );
  const matching = useMemo(() => filterKeys(allKeys, query), [allKeys, query]);
  const shownKeys = showAll ? matching : matching.slice(0, FIRST_KEYS);

  // Spec arrays keep their identity while they describe the same lines, so a parent that
  // re-renders with a new `runs` array (every live event) costs the charts nothing.
  const specsCache = useRef(new Map<string, { sig: string; specs: SeriesSpec[] }>());
  const runsKey = runs.map((r) => `${r.id}\u0001${r.name}`).join("\u0002");
  const specsByKey = useMemo(() => {
    const out = new Map<string, SeriesSpec[]>();
    for (const key of shownKeys) {
      const specs: SeriesSpec[] = [];
      for (const run of runs) {
        const has = keys ? true : runKeys.byRun.get(run.id)?.has(key);
        if (!has) continue;
        specs.push({ id: run.id, runId: run.id, key, label: run.name, style: styleForSlot(slots.get(run.id) ?? 0) });
      }
      const sig = specs.map((s) => `${s.id}\u0001${s.label}\u0001${s.style.color}\u0001${s.style.dash ?? ""}`).join("\u0002");
      const cached = specsCache.current.get(key);
      out.set(key, cached && cached.sig === sig ? cached.specs : specs);
      if (!cached || cached.sig !== sig) specsCache.current.set(key, { sig, specs });
    }
    return out;
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [shownKeys.join("\u0001"), runsKey, runKeys.byRun, slots, keys ? keys.join("\u0001") : null]);

  const deferredSmoothing = useDeferredValue(smoothing);
  const settings: ChartSettings = useMemo(
    () => ({ xMode, smoothing: deferredSmoothing, log }),
    [xMode, deferredSmoothing, log],
  );

  const many = allKeys.length > FIRST_KEYS;

  let body: ReactNode;
  if (!runs.length) body = <p className="empty">No runs to chart.</p>;
  else if (!shownKeys.length && runKeys.loading) body = <Loading what="Loading metrics" />;
  else if (!allKeys.length) body = runKeys.error ? null : <p className="empty">No metrics logged yet</p>;
  else if (!shownKeys.length) body = <p className="empty">No metric matches “{query}”.</p>;
  else
    body = (
      <div className="ry-chart-grid">
        {shownKeys.map((key, i) => (
          <SeriesChart
            key={key}
            title={key}
            dataKey={key}
            specs={specsByKey.get(key) ?? []}
            settings={settings}
            resetToken={resetToken}
            reloadToken={reloadToken}
            priority={i}
            hub={hub}
            onRendered={i === 0 ? markChartRendered : undefined}
          />
        ))}
      </div>
    );

  return (
    <section className="ry-charts" aria-label="Metric charts">
      <Toolbar
        xMode={xMode}
        setXMode={setXMode}
        smoothing={smoothing}
        setSmoothing={setSmoothing}
        log={log}
        setLog={setLog}
        onResetZoom={() => setResetToken((t) => t + 1)}
      >
        {many || query ? (
          <>
            <label className="ry-field" htmlFor={filterId}>
              Filter metrics
              <input
                id={filterId}
                type="search"
                value={query}
                placeholder="e.g. loss"
                onChange={(e) => setQuery(e.target.value)}
              />
            </label>
            <span className="muted ry-key-count" aria-live="polite">
              {shownKeys.length} of {allKeys.length} metrics
            </span>
            {matching.length > FIRST_KEYS ? (
              <button type="button" className="link-button" onClick={() => setShowAll((v) => !v)}>
                {showAll ? `Show first ${FIRST_KEYS}` : `Show all ${matching.length}`}
              </button>
            ) : null}
          </>
        ) : null}
      </Toolbar>
      {runKeys.error ? <ErrorMessage error={runKeys.error} onRetry={runKeys.retry} /> : null}
      {body}
    </section>
  );
}

// ---------------------------------------------------------------------------------------------
// SystemCharts

const SYSTEM_SETTINGS: ChartSettings = { xMode: "steptime", smoothing: 0, log: false };

export function SystemCharts({ run, keys }: { run: ChartRun; keys: string[] }) {
  const hub = useMemo(() => new LiveHub(), []);
  const [reloadToken, setReloadToken] = useState(0);
  const [resetToken, setResetToken] = useState(0);

  useLive((e) => {
    if (e.type === "reset") setReloadToken((t) => t + 1);
    else if (e.type === "metrics" && e.data.run_id === run.id)
      for (const [key, info] of Object.entries(e.data.metrics)) hub.emit(run.id, key, info);
  });

  const keysKey = keys.join("\u0001");
  const groups = useMemo(() => {
    const grouped = groupSystemKeys(keys);
    const slot = new Map(systemDevices(grouped).map((d, i) => [d, i]));
    return grouped.map((g) => ({
      ...g,
      specs: g.series.map((s): SeriesSpec => {
        const style = styleForSlot(slot.get(s.device) ?? 0);
        return { id: s.key, runId: run.id, key: s.key, label: s.label, style: s.dash ? { color: style.color, dash: [6, 4] } : style };
      }),
    }));
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [keysKey, run.id]);

  if (!groups.length) {
    return (
      <section className="ry-charts" aria-label="System metrics">
        <p className="empty">No system metrics logged yet</p>
      </section>
    );
  }
  return (
    <section className="ry-charts ry-system-charts" aria-label="System metrics">
      <div className="ry-system-bar">
        <span className="muted">Drag across a chart to zoom, double-click to zoom out.</span>
        <button type="button" onClick={() => setResetToken((t) => t + 1)}>
          Zoom out system charts
        </button>
      </div>
      <div className="ry-chart-grid">
        {groups.map((g, i) => (
          <SeriesChart
            key={g.id}
            title={g.title}
            dataKey={g.id}
            specs={g.specs}
            settings={SYSTEM_SETTINGS}
            resetToken={resetToken}
            reloadToken={reloadToken}
            priority={100 + i}
            hub={hub}
            unit={g.unit}
            testId="system-chart"
            onRendered={i === 0 ? markChartRendered : undefined}
          />
        ))}
      </div>
    </section>
  );
}
