// One chart: several series (runs of one metric, or the GPUs of a host) drawn by uPlot, with
// its own data: a downsampled overview per series, full detail for a zoomed step range, live
// appends. The uPlot instance is made once per structure (series, axes, scale type) and fed
// with setData; colours of the theme are read at every draw.
import { useCallback, useEffect, useId, useLayoutEffect, useMemo, useRef, useState } from "react";
import uPlot from "uplot";
import "uplot/dist/uPlot.min.css";

import { ErrorMessage } from "../components/common";
import { formatNumber, formatTime } from "../format";
import "./charts.css";
import type { LiveHub } from "./hub";
import { SeriesBatcher } from "./batch";
import { chartQueue } from "./queue";
import {
  alignTables,
  appendSeries,
  countPoints,
  DURATION_INCRS,
  ema,
  EMPTY_SERIES,
  formatSecondsShort,
  isTimeAxis,
  lastStep,
  parseSeries,
  plotValues,
  stepRange,
  withAlpha,
  xValues,
  type RawSeries,
  type RunStyle,
  type Table,
  type XMode,
} from "./series";
import { chartTheme, currentTheme, onThemeChange } from "./theme";

export interface SeriesSpec {
  /** Unique in the chart (the run id, or the key for system metrics). */
  id: string;
  runId: string;
  key: string;
  label: string;
  style: RunStyle;
}

export interface ChartSettings {
  xMode: XMode;
  smoothing: number;
  log: boolean;
}

type Loaded =
  | { status: "loading"; token: number }
  | { status: "ok"; data: RawSeries; token: number }
  | { status: "absent"; token: number }
  | { status: "error"; error: unknown; token: number };

interface Zoom {
  xmin: number;
  xmax: number;
  data: Record<string, Loaded>;
}

const HEIGHT = 240;
const FONT = '11px system-ui, -apple-system, "Segoe UI", Roboto, sans-serif';
const LIVE_INTERVAL_MS = 1000;

/** Points to ask for: about two per pixel. */
export function maxPointsFor(width: number): number {
  if (!(width > 0)) return 2000;
  return Math.min(4000, Math.max(400, Math.round(width * 2)));
}

const batcher = new SeriesBatcher(chartQueue);

async function fetchSeries(
  spec: SeriesSpec,
  query: { max_points: number; step_min?: number; step_max?: number },
  priority: number,
  signal: AbortSignal,
): Promise<RawSeries | null> {
  // every run of a chart asks in the same moment: one request for all of them (batch.ts)
  const s = await batcher.request(spec.runId, spec.key, query, priority, signal);
  return s === null ? null : parseSeries(s); // null: the run has no such metric (yet), an empty line
}

function isAbort(err: unknown): boolean {
  return (err as Error)?.name === "AbortError";
}

let renderedMarked = false;

/** performance.mark("runyard:chart-rendered"), once per page load. */
let startMarked = false;

/** The first metric chart of the page starts asking for data (the benchmark measures from here). */
export function markChartStart(): void {
  if (startMarked) return;
  startMarked = true;
  try {
    performance.mark("runyard:chart-start");
  } catch {
    // no performance API: nothing to mark
  }
}

export function markChartRendered(): void {
  if (renderedMarked) return;
  renderedMarked = true;
  try {
    performance.mark("runyard:chart-rendered");
  } catch {
    // no performance API: nothing to mark
  }
}

function formatX(v: number, mode: XMode): string {
  if (mode === "step") return `step ${formatNumber(v)}`;
  if (mode === "relative") return `+${formatSecondsShort(v)}`;
  return formatTime(v);
}

/** Draw a series' points when they are few or far apart (a single point has no line). */
function fewPoints(u: uPlot, sidx: number, i0: number, i1: number): boolean {
  const ys = u.data[sidx];
  if (!ys) return false;
  const limit = Math.max(1, Math.floor(u.bbox.width / devicePixelRatio / 10));
  let n = 0;
  for (let i = i0; i <= i1; i++) if (ys[i] != null && ++n > limit) return false;
  return true;
}

function axisSize(self: uPlot, values: string[] | null, axisIdx: number): number {
  const axis = self.axes[axisIdx];
  if (!values || axis.side === 2 || axis.side === 0) return 36;
  const longest = values.reduce((m, v) => Math.max(m, v ? String(v).length : 0), 0);
  return Math.max(40, Math.ceil(longest * 6.6) + 16);
}

interface Props {
  /** Caption (the metric key, or a system group's title). */
  title: string;
  /** data-key attribute. */
  dataKey: string;
  specs: SeriesSpec[];
  settings: ChartSettings;
  /** Changes when the toolbar's "Reset zoom" is pressed. */
  resetToken: number;
  /** Changes when everything must be fetched again (a `reset` event). */
  reloadToken: number;
  /** Request priority: lower first. */
  priority: number;
  hub: LiveHub;
  /** Called once every series has been drawn for the first time. */
  onRendered?: () => void;
  /** Words for the y values in the description ("loss", "%"). */
  unit?: string;
  /** data-testid of the figure. */
  testId?: string;
}

export function SeriesChart({
  title,
  dataKey,
  specs,
  settings,
  resetToken,
  reloadToken,
  priority,
  hub,
  onRendered,
  unit,
  testId = "metric-chart",
}: Props) {
  const plotRef = useRef<HTMLDivElement>(null);
  const figureRef = useRef<HTMLElement>(null);
  const descId = useId();
  const uRef = useRef<uPlot | null>(null);
  const [overview, setOverview] = useState<Record<string, Loaded>>({});
  const [zoom, setZoom] = useState<Zoom | null>(null);
  const [hidden, setHidden] = useState<ReadonlySet<string>>(() => new Set());

  const overviewRef = useRef(overview);
  overviewRef.current = overview;
  const zoomRef = useRef(zoom);
  zoomRef.current = zoom;
  const specsRef = useRef(specs);
  specsRef.current = specs;
  const settingsRef = useRef(settings);
  settingsRef.current = settings;
  const onRenderedRef = useRef(onRendered);
  onRenderedRef.current = onRendered;
  const reloadRef = useRef(reloadToken);
  reloadRef.current = reloadToken;
  const priorityRef = useRef(priority);
  priorityRef.current = priority;

  const inflight = useRef(new Map<string, AbortController>());
  const zoomAborts = useRef<AbortController | null>(null);

  const maxPoints = useCallback(() => maxPointsFor(plotRef.current?.clientWidth ?? 0), []);

  // ---- the overview of each series ---------------------------------------------------------

  // Answers are applied together (one re-alignment of the chart, not one per run): at once
  // when the last request of the chart is answered, else 250 ms after the first waiting one.
  const arrived = useRef(new Map<string, Loaded>());
  const flushTimer = useRef<ReturnType<typeof setTimeout> | null>(null);
  const flush = useCallback(() => {
    if (flushTimer.current) clearTimeout(flushTimer.current);
    flushTimer.current = null;
    if (!arrived.current.size) return;
    const batch = arrived.current;
    arrived.current = new Map();
    setOverview((prev) => {
      const next = { ...prev };
      for (const [id, loaded] of batch) next[id] = loaded;
      return next;
    });
  }, []);
  const deliver = useCallback(
    (id: string, loaded: Loaded) => {
      arrived.current.set(id, loaded);
      if (!inflight.current.size) flush();
      else if (!flushTimer.current) flushTimer.current = setTimeout(flush, 250);
    },
    [flush],
  );

  const loadOverview = useCallback(
    (spec: SeriesSpec, token: number) => {
      inflight.current.get(spec.id)?.abort();
      const controller = new AbortController();
      inflight.current.set(spec.id, controller);
      setOverview((prev) => {
        const old = prev[spec.id];
        // keep showing what is there while it reloads
        return old && old.status === "ok" ? prev : { ...prev, [spec.id]: { status: "loading", token } };
      });
      const done = () => {
        if (inflight.current.get(spec.id) === controller) inflight.current.delete(spec.id);
      };
      fetchSeries(spec, { max_points: maxPoints() }, priorityRef.current, controller.signal).then(
        (data) => {
          if (controller.signal.aborted) return;
          done();
          deliver(spec.id, data ? { status: "ok", data, token } : { status: "absent", token });
        },
        (error) => {
          if (controller.signal.aborted || isAbort(error)) return;
          done();
          deliver(spec.id, { status: "error", error, token });
        },
      );
    },
    [maxPoints, deliver],
  );

  const specsKey = specs.map((s) => `${s.id}\u0001${s.runId}\u0001${s.key}`).join("\u0002");

  useEffect(() => {
    const wanted = new Map(specs.map((s) => [s.id, s]));
    for (const [id, controller] of inflight.current) {
      if (!wanted.has(id)) {
        controller.abort();
        inflight.current.delete(id);
      }
    }
    setOverview((prev) => {
      const kept = Object.keys(prev).filter((id) => wanted.has(id));
      if (kept.length === Object.keys(prev).length) return prev;
      const next: Record<string, Loaded> = {};
      for (const id of kept) next[id] = prev[id];
      return next;
    });
    for (const spec of specs) {
      const cur = overviewRef.current[spec.id];
      if (inflight.current.has(spec.id) || arrived.current.has(spec.id)) continue;
      if (cur && cur.status !== "loading" && cur.token === reloadToken) continue;
      loadOverview(spec, reloadToken);
    }
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [specsKey, reloadToken, loadOverview]);

  useEffect(
    () => () => {
      for (const c of inflight.current.values()) c.abort();
      inflight.current.clear();
      zoomAborts.current?.abort();
      if (flushTimer.current) clearTimeout(flushTimer.current);
      flushTimer.current = null;
      arrived.current.clear();
      for (const st of liveState.current.values()) if (st.timer) clearTimeout(st.timer);
      liveState.current.clear();
      liveAbort.current.abort();
      liveAbort.current = new AbortController();
      if (liveFlushTimer.current) clearTimeout(liveFlushTimer.current);
      liveFlushTimer.current = null;
      liveBuffer.current.clear();
    },
    [],
  );

  const retryErrors = useCallback(() => {
    for (const spec of specsRef.current) {
      if (overviewRef.current[spec.id]?.status === "error") loadOverview(spec, reloadRef.current);
    }
    const z = zoomRef.current;
    if (z && Object.values(z.data).some((l) => l.status === "error")) startZoom(z.xmin, z.xmax);
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [loadOverview]);

  // ---- live appends: at most one request a second per series, coalescing events -----------
  // New points wait in `liveBuffer` and are applied together (one re-alignment of the chart),
  // at most every 750 ms, and only while the chart is on screen.

  const liveState = useRef(new Map<string, { busy: boolean; pending: boolean; last: number; timer?: ReturnType<typeof setTimeout> }>());
  const liveAbort = useRef(new AbortController());
  const liveBuffer = useRef(new Map<string, RawSeries>());
  const liveFlushTimer = useRef<ReturnType<typeof setTimeout> | null>(null);
  const lastLiveFlush = useRef(0);
  const visibleRef = useRef(true);

  const flushLive = useCallback(() => {
    if (liveFlushTimer.current) clearTimeout(liveFlushTimer.current);
    liveFlushTimer.current = null;
    if (!liveBuffer.current.size || !visibleRef.current) return;
    lastLiveFlush.current = Date.now();
    const batch = liveBuffer.current;
    liveBuffer.current = new Map();
    const merge = (prev: Record<string, Loaded>): Record<string, Loaded> => {
      let next: Record<string, Loaded> | null = null;
      for (const [id, add] of batch) {
        const cur = prev[id];
        if (!cur || (cur.status !== "ok" && cur.status !== "absent")) continue;
        const base = cur.status === "ok" ? cur.data : EMPTY_SERIES;
        const data = appendSeries(base, add);
        if (data === base) continue;
        next ??= { ...prev };
        next[id] = { status: "ok", data, token: cur.token };
      }
      return next ?? prev;
    };
    setOverview(merge);
    // a long live run: a fresh downsampled overview now and then
    const limit = maxPoints();
    const estimate = merge(overviewRef.current);
    for (const spec of specsRef.current) {
      const l = estimate[spec.id];
      if (batch.has(spec.id) && l?.status === "ok" && l.data.steps.length > 3 * limit) loadOverview(spec, reloadRef.current);
    }
  }, [loadOverview, maxPoints]);

  const scheduleLiveFlush = useCallback(() => {
    if (liveFlushTimer.current || !visibleRef.current) return;
    const wait = Math.max(0, lastLiveFlush.current + 750 - Date.now());
    liveFlushTimer.current = setTimeout(flushLive, Math.max(wait, 30)); // 30 ms: answers close together go as one
  }, [flushLive]);

  const appendLive = useCallback(
    async (id: string) => {
      const st = liveState.current.get(id);
      const spec = specsRef.current.find((s) => s.id === id);
      if (!st || !spec) return;
      const cur = overviewRef.current[id];
      if (!cur || cur.status === "loading" || inflight.current.has(id) || arrived.current.has(id)) {
        st.pending = true; // the fetch in flight may predate the news: look again after it
        st.timer = setTimeout(() => {
          st.timer = undefined;
          scheduleLive(id);
        }, LIVE_INTERVAL_MS);
        return;
      }
      if (cur.status === "error") return;
      st.busy = true;
      st.pending = false;
      st.last = Date.now();
      const buffered = liveBuffer.current.get(id);
      const from = Math.max(cur.status === "ok" ? lastStep(cur.data) : -1, buffered ? lastStep(buffered) : -1) + 1;
      try {
        const add = await fetchSeries(spec, { max_points: maxPoints(), step_min: from }, -1, liveAbort.current.signal);
        if (add && add.steps.length && liveState.current.get(id) === st) {
          const before = liveBuffer.current.get(id);
          liveBuffer.current.set(id, before ? appendSeries(before, add) : add);
          scheduleLiveFlush();
        }
      } catch (err) {
        if (!isAbort(err)) console.warn("runyard: live update of", spec.key, "failed", err);
      } finally {
        st.busy = false;
        if (st.pending) scheduleLive(id);
      }
    },
    // eslint-disable-next-line react-hooks/exhaustive-deps
    [maxPoints, scheduleLiveFlush],
  );

  // on screen or not: live points for a chart out of sight wait until it scrolls into view
  useEffect(() => {
    const el = figureRef.current;
    if (!el || typeof IntersectionObserver === "undefined") return;
    const io = new IntersectionObserver(
      (entries) => {
        const visible = entries.some((e) => e.isIntersecting);
        visibleRef.current = visible;
        if (visible) scheduleLiveFlush();
      },
      { rootMargin: "200px" },
    );
    io.observe(el);
    return () => io.disconnect();
  }, [scheduleLiveFlush]);

  const scheduleLive = useCallback(
    (id: string) => {
      let st = liveState.current.get(id);
      if (!st) liveState.current.set(id, (st = { busy: false, pending: false, last: 0 }));
      if (st.busy || st.timer) {
        st.pending = true;
        return;
      }
      const wait = Math.max(0, st.last + LIVE_INTERVAL_MS - Date.now());
      if (wait === 0) void appendLive(id);
      else
        st.timer = setTimeout(() => {
          st.timer = undefined;
          void appendLive(id);
        }, wait);
    },
    [appendLive],
  );

  useEffect(() => {
    const offs = specs.map((spec) => hub.on(spec.runId, spec.key, () => scheduleLive(spec.id)));
    return () => offs.forEach((off) => off());
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [specsKey, hub, scheduleLive]);

  // ---- zoom: fetch the selected step range at full detail -----------------------------------

  const shownData = useCallback((id: string): RawSeries | null => {
    const z = zoomRef.current?.data[id];
    if (z?.status === "ok") return z.data;
    const o = overviewRef.current[id];
    return o?.status === "ok" ? o.data : null;
  }, []);

  const t0Of = useCallback((id: string): number | undefined => {
    const o = overviewRef.current[id];
    return o?.status === "ok" && o.data.times.length ? o.data.times[0] : undefined;
  }, []);

  const startZoom = useCallback(
    (xmin: number, xmax: number) => {
      zoomAborts.current?.abort();
      const controller = new AbortController();
      zoomAborts.current = controller;
      const mode = settingsRef.current.xMode;
      const limit = maxPoints();
      const data: Record<string, Loaded> = {};
      const jobs: [SeriesSpec, [number, number]][] = [];
      for (const spec of specsRef.current) {
        const shown = shownData(spec.id);
        const range = shown ? stepRange(xValues(shown, mode, t0Of(spec.id)), shown.steps, xmin, xmax) : null;
        if (!range) data[spec.id] = { status: "absent", token: 0 };
        else {
          data[spec.id] = { status: "loading", token: 0 };
          jobs.push([spec, range]);
        }
      }
      setZoom({ xmin, xmax, data });
      // the answers go in together (at once when the last arrives, else every 250 ms)
      let waiting = jobs.length;
      let got: Record<string, Loaded> = {};
      let timer: ReturnType<typeof setTimeout> | null = null;
      const apply = () => {
        if (timer) clearTimeout(timer);
        timer = null;
        const batch = got;
        got = {};
        if (controller.signal.aborted || !Object.keys(batch).length) return;
        setZoom((z) => (z && zoomAborts.current === controller ? { ...z, data: { ...z.data, ...batch } } : z));
      };
      controller.signal.addEventListener("abort", () => timer && clearTimeout(timer), { once: true });
      const settle = (id: string, loaded: Loaded) => {
        if (controller.signal.aborted) return;
        got[id] = loaded;
        waiting--;
        if (!waiting) apply();
        else if (!timer) timer = setTimeout(apply, 250);
      };
      for (const [spec, [lo, hi]] of jobs) {
        fetchSeries(spec, { max_points: limit, step_min: lo, step_max: hi }, -0.5, controller.signal).then(
          (series) => settle(spec.id, series ? { status: "ok", data: series, token: 0 } : { status: "absent", token: 0 }),
          (error) => {
            if (!isAbort(error)) settle(spec.id, { status: "error", error, token: 0 });
          },
        );
      }
    },
    [maxPoints, shownData, t0Of],
  );

  const resetZoom = useCallback(() => {
    zoomAborts.current?.abort();
    zoomAborts.current = null;
    setZoom(null);
  }, []);

  // the toolbar's "Reset zoom", and a new x axis, return to the overview
  const firstReset = useRef(true);
  useEffect(() => {
    if (firstReset.current) {
      firstReset.current = false;
      return;
    }
    resetZoom();
  }, [resetToken, settings.xMode, resetZoom]);

  // ---- what uPlot draws ------------------------------------------------------------------

  const smoothingOn = settings.smoothing > 0;
  const plot = useMemo(() => {
    const tables: Table[] = [];
    const last: (number | null)[] = [];
    for (const spec of specs) {
      const z = zoom?.data[spec.id];
      const o = overview[spec.id];
      const s = z?.status === "ok" ? z.data : o?.status === "ok" ? o.data : EMPTY_SERIES;
      const t0 = o?.status === "ok" && o.data.times.length ? o.data.times[0] : undefined;
      const x = xValues(s, settings.xMode, t0);
      const raw = plotValues(s.values, settings.log);
      const ys: (number | null)[][] = [raw];
      if (smoothingOn) ys.push(ema(s.values, settings.smoothing, settings.log));
      tables.push({ x, ys });
      const shown = ys[ys.length - 1];
      let v: number | null = null;
      for (let i = shown.length - 1; i >= 0; i--)
        if (shown[i] !== null) {
          v = shown[i];
          break;
        }
      last.push(v);
    }
    const aligned = alignTables(tables);
    const per = smoothingOn ? 2 : 1;
    const rawCols = specs.map((_, i) => aligned.ys[i * per]);
    const smoothCols = smoothingOn ? specs.map((_, i) => aligned.ys[i * per + 1]) : [];
    const data = [aligned.x, ...rawCols, ...smoothCols] as uPlot.AlignedData;
    return { data, points: countPoints(rawCols), last };
  }, [specs, overview, zoom, settings.xMode, settings.log, settings.smoothing, smoothingOn]);

  const settled = specs.every((s) => {
    const o = overview[s.id];
    return o && o.status !== "loading";
  });

  // ---- the uPlot instance ------------------------------------------------------------------

  const legendValues = useRef(new Map<string, HTMLElement>());
  const legendX = useRef<HTMLSpanElement>(null);
  const lastRef = useRef(plot.last);
  lastRef.current = plot.last;
  const awaitingDraw = useRef(false);
  const reported = useRef(false);

  const showLast = useCallback(() => {
    specsRef.current.forEach((spec, i) => {
      const el = legendValues.current.get(spec.id);
      if (el) el.textContent = formatNumber(lastRef.current[i]);
    });
    if (legendX.current) legendX.current.textContent = "";
  }, []);

  const onCursor = useCallback(
    (u: uPlot) => {
      const idx = u.cursor.idx;
      const list = specsRef.current;
      if (idx == null) {
        showLast();
        return;
      }
      // the value shown is the smoothed line's when there is one
      const offset = u.series.length - 1 > list.length ? 1 + list.length : 1;
      list.forEach((spec, i) => {
        const el = legendValues.current.get(spec.id);
        if (!el) return;
        const sidx = offset + i;
        const di = u.cursor.idxs?.[sidx];
        const v = di == null ? null : (u.data[sidx]?.[di] ?? null);
        el.textContent = v == null ? "–" : formatNumber(v);
      });
      const x = u.data[0][idx];
      if (legendX.current) legendX.current.textContent = x == null ? "" : formatX(x, settingsRef.current.xMode);
    },
    [showLast],
  );

  const structure = JSON.stringify([
    specs.map((s) => [s.id, s.label, s.style.color, s.style.dash ?? null]),
    smoothingOn,
    settings.log,
    settings.xMode,
  ]);
  const plotDataRef = useRef(plot.data);
  plotDataRef.current = plot.data; // a new instance starts with the data of this render
  const zoomRange = zoom ? ([zoom.xmin, zoom.xmax] as const) : null;
  const zoomRangeRef = useRef(zoomRange);
  zoomRangeRef.current = zoomRange;
  const hiddenRef = useRef(hidden);
  hiddenRef.current = hidden;

  useLayoutEffect(() => {
    const el = plotRef.current;
    if (!el) return;
    currentTheme();
    const list = specsRef.current;
    const mode = settingsRef.current.xMode;
    const log = settingsRef.current.log;
    const smooth = settingsRef.current.smoothing > 0;
    const axisCommon = {
      stroke: () => chartTheme.muted,
      font: FONT,
      grid: { stroke: () => chartTheme.border, width: 1 },
      ticks: { stroke: () => chartTheme.border, width: 1, size: 4 },
      border: { show: false },
    };
    const lineSeries = (spec: SeriesSpec, faint: boolean): uPlot.Series => ({
      label: spec.label,
      stroke: faint ? withAlpha(spec.style.color, 0.28) : spec.style.color,
      width: faint ? 1 : 1.6,
      dash: spec.style.dash,
      show: !hiddenRef.current.has(spec.id),
      points: { show: fewPoints, size: 5, width: 1, fill: spec.style.color },
      spanGaps: false,
    });
    const xAxis: uPlot.Axis = { ...axisCommon, size: 34 };
    if (mode === "relative") {
      xAxis.incrs = DURATION_INCRS;
      xAxis.values = (_u, splits) => splits.map((v) => formatSecondsShort(v));
    } else if (mode === "step") {
      xAxis.values = (_u, splits) => splits.map((v) => formatNumber(v));
    }
    const opts: uPlot.Options = {
      width: Math.max(200, el.clientWidth),
      height: HEIGHT,
      legend: { show: false },
      padding: [10, 14, 0, 4],
      cursor: {
        drag: { x: true, y: false, setScale: true },
        points: { size: 6, width: 1 },
        bind: {
          dblclick: () => () => {
            resetZoom();
            return null;
          },
        },
      },
      scales: {
        x: { time: isTimeAxis(mode) },
        y: log ? { distr: 3, log: 10 } : {},
      },
      axes: [
        xAxis,
        {
          ...axisCommon,
          size: axisSize,
          values: (_u, splits) => splits.map((v) => formatNumber(v)),
        },
      ],
      series: [
        {},
        ...list.map((spec) => lineSeries(spec, smooth)),
        ...(smooth ? list.map((spec) => lineSeries(spec, false)) : []),
      ],
      hooks: {
        setSelect: [
          (u) => {
            if (u.select.width < 3) return;
            const a = u.posToVal(u.select.left, "x");
            const b = u.posToVal(u.select.left + u.select.width, "x");
            startZoom(Math.min(a, b), Math.max(a, b));
          },
        ],
        setCursor: [onCursor],
        draw: [
          () => {
            if (awaitingDraw.current) {
              awaitingDraw.current = false;
              reported.current = true;
              onRenderedRef.current?.();
            }
          },
        ],
      },
    };
    const u = new uPlot(opts, plotDataRef.current, el);
    uRef.current = u;
    const z = zoomRangeRef.current;
    if (z) u.setScale("x", { min: z[0], max: z[1] });
    showLast();
    const offTheme = onThemeChange(() => u.redraw(false, true));
    return () => {
      offTheme();
      u.destroy();
      if (uRef.current === u) uRef.current = null;
    };
  }, [structure, startZoom, resetZoom, onCursor, showLast]);

  // new data: setData (no new instance), then back to the zoomed window
  useLayoutEffect(() => {
    const u = uRef.current;
    if (!u) return;
    if (settled && !reported.current) awaitingDraw.current = true;
    if (u.data !== plot.data) {
      u.setData(plot.data, true);
      const z = zoomRangeRef.current;
      if (z) u.setScale("x", { min: z[0], max: z[1] });
    } else if (awaitingDraw.current) {
      u.redraw(false, false);
    }
    if (u.cursor.idx == null) showLast();
  }, [plot, settled, showLast]);

  // series shown or hidden from the legend
  useEffect(() => {
    const u = uRef.current;
    if (!u) return;
    const n = specs.length;
    const per = u.series.length - 1 > n ? 2 : 1;
    specs.forEach((spec, i) => {
      const show = !hidden.has(spec.id);
      for (let k = 0; k < per; k++) {
        const sidx = 1 + i + k * n;
        if (u.series[sidx] && u.series[sidx].show !== show) u.setSeries(sidx, { show });
      }
    });
  }, [hidden, specs, structure]);

  // follow the container's width
  useEffect(() => {
    const el = plotRef.current;
    if (!el || typeof ResizeObserver === "undefined") return;
    let frame = 0;
    const ro = new ResizeObserver(() => {
      cancelAnimationFrame(frame);
      frame = requestAnimationFrame(() => {
        const u = uRef.current;
        const w = Math.max(200, el.clientWidth);
        if (u && Math.abs(u.width - w) > 1) u.setSize({ width: w, height: HEIGHT });
      });
    });
    ro.observe(el);
    return () => {
      cancelAnimationFrame(frame);
      ro.disconnect();
    };
  }, []);

  // ---- states and words --------------------------------------------------------------------

  const errors = specs
    .map((s) => overview[s.id])
    .concat(zoom ? specs.map((s) => zoom.data[s.id]) : [])
    .filter((l): l is Extract<Loaded, { status: "error" }> => l?.status === "error");
  const loading = !settled || (zoom ? Object.values(zoom.data).some((l) => l.status === "loading") : false);
  const empty = settled && plot.points === 0 && errors.length === 0 && !zoom;
  const zoomedEmpty = zoom && !loading && plot.points === 0;

  const xWords =
    settings.xMode === "step" ? "step" : settings.xMode === "relative" ? "relative time" : "wall-clock time";
  // The name stays short and free of the toolbar's words ("Log scale", "Smoothing"...), so
  // tests finding a control by its label never hit a chart; the details go to a description.
  const label = `${title}, line chart of ${specs.length} series`;
  const description = `${unit ? `Values in ${unit}, ` : ""}over ${xWords}${settings.log ? ", logarithmic y axis" : ""}${
    smoothingOn ? `, exponential moving average ${settings.smoothing}` : ""
  }${zoom ? ", zoomed in" : ""}; ${plot.points} points.`;

  const toggle = (id: string) =>
    setHidden((prev) => {
      const next = new Set(prev);
      if (next.has(id)) next.delete(id);
      else next.add(id);
      return next;
    });

  return (
    <figure
      ref={figureRef}
      className="ry-chart"
      data-testid={testId}
      data-key={dataKey}
      data-points={plot.points}
      data-zoomed={zoom ? "true" : "false"}
      data-loading={loading ? "true" : "false"}
      aria-label={label}
      aria-describedby={descId}
      aria-busy={loading}
    >
      <span id={descId} className="ry-sr-only">
        {description}
      </span>
      <figcaption className="ry-chart-caption">
        <span className="ry-chart-title" title={title}>
          {title}
        </span>
        <span className="ry-chart-x mono" ref={legendX} aria-hidden="true" />
        {zoom ? <span className="ry-chart-zoomed">zoomed · double-click to reset</span> : null}
      </figcaption>
      <div className="ry-chart-plot">
        <div ref={plotRef} className="ry-chart-canvas" aria-hidden="true" />
        {empty ? <p className="ry-chart-overlay">No metrics logged yet</p> : null}
        {zoomedEmpty ? <p className="ry-chart-overlay">No points in this range</p> : null}
        {!settled && plot.points === 0 ? <p className="ry-chart-overlay">Loading…</p> : null}
      </div>
      {errors.length ? <ErrorMessage error={errors[0].error} onRetry={retryErrors} /> : null}
      <ul className="ry-chart-legend" aria-label={`Series of ${title}`}>
        {specs.map((spec) => {
          const off = hidden.has(spec.id);
          const state = overview[spec.id];
          return (
            <li key={spec.id} className={off ? "ry-legend-off" : undefined}>
              <button
                type="button"
                className="ry-legend-item"
                aria-pressed={!off}
                title={`${off ? "Show" : "Hide"} ${spec.label}`}
                onClick={() => toggle(spec.id)}
              >
                <svg className="ry-swatch" width="16" height="8" aria-hidden="true">
                  <line
                    x1="0"
                    y1="4"
                    x2="16"
                    y2="4"
                    stroke={spec.style.color}
                    strokeWidth="3"
                    strokeDasharray={spec.style.dash ? spec.style.dash.map((d) => d / 2).join(" ") : undefined}
                  />
                </svg>
                <span className="ry-legend-name">{spec.label}</span>
              </button>
              <span
                className="ry-legend-value mono"
                data-testid="legend-value"
                ref={(el) => {
                  if (el) legendValues.current.set(spec.id, el);
                  else legendValues.current.delete(spec.id);
                }}
              />
              {state?.status === "absent" ? <span className="muted ry-legend-note">no data</span> : null}
              {state?.status === "error" ? <span className="ry-legend-note ry-legend-error">not loaded</span> : null}
            </li>
          );
        })}
      </ul>
    </figure>
  );
}
