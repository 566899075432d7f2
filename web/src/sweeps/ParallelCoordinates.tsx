// The parallel-coordinates plot of a sweep (plain SVG): one vertical axis per parameter and a
// last one for the metric, one polyline per trial coloured by its metric value (better =
// stronger). Trials without a value yet are drawn dashed and faint up to the last parameter
// axis. Hover a line to see its trial, click it to open its run; drag along an axis to keep
// only the trials in that band (click the axis to clear its band).
import { useEffect, useLayoutEffect, useMemo, useRef, useState, type PointerEvent as ReactPointerEvent, type RefObject } from "react";

import { formatNumber, formatValue } from "../format";
import type { SweepGoal, SweepTrial } from "../types";
import {
  axisXs,
  brushKey,
  goodness,
  linePoints,
  nearestLine,
  passesBrushes,
  rampColor,
  rampGradient,
  rampOpacity,
  ticks,
  trialValue,
  type Axis,
  type Brushes,
  type Point,
} from "./sweeps";

const HEIGHT = 380;
const MARGIN = { top: 52, right: 70, bottom: 22, left: 70 };
const BRUSH_HALF_WIDTH = 13;

interface Line {
  trial: SweepTrial;
  points: Point[];
  value: number | null;
  good: number | null;
  passes: boolean;
}

function useWidth(): [RefObject<HTMLDivElement | null>, number] {
  const ref = useRef<HTMLDivElement | null>(null);
  const [width, setWidth] = useState(0);
  useLayoutEffect(() => {
    const el = ref.current;
    if (!el) return;
    setWidth(el.clientWidth);
    if (typeof ResizeObserver === "undefined") return;
    const ro = new ResizeObserver(() => setWidth(el.clientWidth));
    ro.observe(el);
    return () => ro.disconnect();
  }, []);
  return [ref, width];
}

function truncate(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, Math.max(1, max - 1))}…`;
}

export interface ParallelCoordinatesProps {
  axes: Axis[];
  trials: SweepTrial[];
  goal: SweepGoal | null;
  showNoValue: boolean;
  /** The trial highlighted from outside (a hovered table row). */
  highlight: number | null;
  onHighlight: (index: number | null) => void;
  onOpen: (trial: SweepTrial) => void;
  brushes: Brushes;
  onBrushes: (brushes: Brushes) => void;
}

export function ParallelCoordinates({ axes, trials, goal, showNoValue, highlight, onHighlight, onOpen, brushes, onBrushes }: ParallelCoordinatesProps) {
  const [wrapRef, measured] = useWidth();
  const width = Math.max(360, measured || 900);
  const plotTop = MARGIN.top;
  const plotBottom = HEIGHT - MARGIN.bottom;
  const ys = (pos: number) => plotBottom - pos * (plotBottom - plotTop);
  const xs = useMemo(() => axisXs(axes.length, MARGIN.left, width - MARGIN.right), [axes.length, width]);
  const metricAxis = axes.find((a) => a.metric) ?? null;
  const paramAxes = metricAxis ? axes.slice(0, -1) : axes;

  const lines: Line[] = useMemo(() => {
    const out: Line[] = [];
    for (const trial of trials) {
      const value = trialValue(trial);
      const hasValue = metricAxis !== null && value !== null;
      if (!hasValue && metricAxis !== null && !showNoValue) continue;
      const points = linePoints(hasValue ? axes : paramAxes, xs, trial, ys);
      if (!points.length) continue;
      out.push({
        trial,
        points,
        value,
        good: hasValue && goal ? goodness(metricAxis!, value, goal) : null,
        passes: passesBrushes(axes, trial, brushes),
      });
    }
    // drawn bottom to top: no value, brushed out, then worst to best
    const rank = (l: Line) => (l.good === null ? (metricAxis ? -2 : 0) : l.good) - (l.passes ? 0 : 10);
    return out.sort((a, b) => rank(a) - rank(b) || a.trial.index - b.trial.index);
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [trials, axes, xs, goal, showNoValue, brushes]);

  const [hover, setHover] = useState<{ index: number; x: number; y: number } | null>(null);
  const drag = useRef<{ key: string; start: number; moved: boolean; pointerId: number } | null>(null);
  const [dragBand, setDragBand] = useState<{ key: string; band: [number, number] } | null>(null);
  const svgRef = useRef<SVGSVGElement | null>(null);

  const active = hover?.index ?? highlight;
  const ordered = useMemo(() => {
    if (active === null) return lines;
    const i = lines.findIndex((l) => l.trial.index === active);
    if (i < 0) return lines;
    return [...lines.slice(0, i), ...lines.slice(i + 1), lines[i]];
  }, [lines, active]);

  // the first drawing with real data: a mark the browser tests and benchmarks wait for
  const marked = useRef(false);
  useEffect(() => {
    if (marked.current || !lines.length || !measured) return;
    marked.current = true;
    try {
      performance.mark("runyard:sweep-rendered");
    } catch {
      // no performance API: nothing to mark
    }
  }, [lines.length, measured]);

  const local = (e: { clientX: number; clientY: number }): Point => {
    const r = svgRef.current!.getBoundingClientRect();
    return { x: e.clientX - r.left, y: e.clientY - r.top };
  };
  const posOf = (y: number) => Math.min(1, Math.max(0, (plotBottom - y) / (plotBottom - plotTop)));

  const onMove = (e: ReactPointerEvent<SVGSVGElement>) => {
    const p = local(e);
    if (drag.current) {
      const d = drag.current;
      const cur = posOf(p.y);
      if (Math.abs(cur - d.start) * (plotBottom - plotTop) > 3) d.moved = true;
      if (d.moved) setDragBand({ key: d.key, band: [Math.min(d.start, cur), Math.max(d.start, cur)] });
      return;
    }
    const id = nearestLine(
      ordered.map((l) => ({ id: l.trial.index, points: l.points })),
      p,
      6,
    );
    if (id === null) {
      if (hover) {
        setHover(null);
        onHighlight(null);
      }
    } else if (hover?.index !== id || Math.abs(hover.x - p.x) > 2 || Math.abs(hover.y - p.y) > 2) {
      setHover({ index: id, x: p.x, y: p.y });
      if (hover?.index !== id) onHighlight(id);
    }
  };

  const onLeave = () => {
    if (drag.current) return;
    setHover(null);
    onHighlight(null);
  };

  const onClick = () => {
    if (!hover) return;
    const line = lines.find((l) => l.trial.index === hover.index);
    if (line) onOpen(line.trial);
  };

  const startBrush = (axis: Axis) => (e: ReactPointerEvent<SVGRectElement>) => {
    if (e.button !== 0) return;
    e.stopPropagation();
    (e.currentTarget as Element).setPointerCapture?.(e.pointerId);
    drag.current = { key: brushKey(axis), start: posOf(local(e).y), moved: false, pointerId: e.pointerId };
    setHover(null);
  };
  const endBrush = (e: ReactPointerEvent<SVGRectElement>) => {
    const d = drag.current;
    if (!d) return;
    drag.current = null;
    e.stopPropagation();
    const next = { ...brushes };
    if (d.moved && dragBand && dragBand.band[1] - dragBand.band[0] > 0.005) next[d.key] = dragBand.band;
    else delete next[d.key]; // a click on the axis clears its band
    setDragBand(null);
    onBrushes(next);
  };

  const hovered = hover ? lines.find((l) => l.trial.index === hover.index) : undefined;
  const spacing = axes.length > 1 ? (width - MARGIN.left - MARGIN.right) / (axes.length - 1) : width;
  const labelChars = Math.max(6, Math.floor(spacing / 7.2));

  return (
    <div className="pc-wrap" ref={wrapRef}>
      <svg
        ref={svgRef}
        className={`pc-svg${hover ? " pc-pointing" : ""}`}
        role="img"
        aria-label="Parallel coordinates"
        width={width}
        height={HEIGHT}
        viewBox={`0 0 ${width} ${HEIGHT}`}
        onPointerMove={onMove}
        onPointerLeave={onLeave}
        onClick={onClick}
      >
        <g className="pc-lines">
          {ordered.map((l) => {
            const isActive = l.trial.index === active;
            const noValue = l.good === null && metricAxis !== null;
            const color = !l.passes ? undefined : l.good !== null ? rampColor(l.good) : metricAxis ? undefined : "var(--accent)";
            const opacity = isActive ? 1 : !l.passes ? 0.35 : noValue ? 0.6 : l.good !== null ? rampOpacity(l.good) : 0.7;
            return (
              <polyline
                key={l.trial.index}
                data-testid="pc-line"
                data-trial={l.trial.index}
                data-status={l.trial.status}
                data-has-value={l.value !== null ? "true" : "false"}
                data-filtered={l.passes ? undefined : "true"}
                className={`pc-line${noValue ? " pc-novalue" : ""}${!l.passes ? " pc-out" : ""}${isActive ? " pc-active" : ""}`}
                points={l.points.map((p) => `${p.x.toFixed(1)},${p.y.toFixed(1)}`).join(" ")}
                stroke={color}
                strokeOpacity={opacity}
              />
            );
          })}
        </g>
        {axes.map((axis, i) => {
          const x = xs[i];
          const key = brushKey(axis);
          const band = dragBand?.key === key ? dragBand.band : brushes[key];
          const sub = axis.metric
            ? goal === "maximize"
              ? "↑ higher is better"
              : goal === "minimize"
                ? "↓ lower is better"
                : ""
            : axis.kind === "log"
              ? "log scale"
              : "";
          const anchorEnd = i === axes.length - 1 && axes.length > 1;
          return (
            <g key={key} className={`pc-axis${axis.metric ? " pc-metric-axis" : ""}`} data-testid="pc-axis" data-param={axis.key} data-kind={axis.kind} data-metric={axis.metric ? "true" : undefined}>
              <text className="pc-axis-label" x={x} y={18} textAnchor="middle">
                <title>{axis.key}</title>
                {truncate(axis.key, labelChars)}
              </text>
              {sub ? (
                <text className="pc-axis-sub" x={x} y={33} textAnchor="middle">
                  {sub}
                </text>
              ) : null}
              <line className="pc-axis-line" x1={x} x2={x} y1={plotTop} y2={plotBottom} />
              {ticks(axis).map((t) => (
                <g key={`${t.pos}-${t.label}`} className="pc-tick">
                  <line x1={x - 4} x2={x} y1={ys(t.pos)} y2={ys(t.pos)} />
                  <text x={anchorEnd ? x + 7 : x - 7} y={ys(t.pos)} dy="0.32em" textAnchor={anchorEnd ? "start" : "end"}>
                    {truncate(t.label, 12)}
                  </text>
                </g>
              ))}
              {band ? (
                <rect
                  className="pc-brush"
                  data-testid="pc-brush"
                  x={x - BRUSH_HALF_WIDTH + 4}
                  width={2 * BRUSH_HALF_WIDTH - 8}
                  y={ys(band[1])}
                  height={Math.max(1, ys(band[0]) - ys(band[1]))}
                />
              ) : null}
              <rect
                className="pc-brush-area"
                x={x - BRUSH_HALF_WIDTH}
                width={2 * BRUSH_HALF_WIDTH}
                y={plotTop - 4}
                height={plotBottom - plotTop + 8}
                onPointerDown={startBrush(axis)}
                onPointerUp={endBrush}
                onPointerCancel={endBrush}
                onClick={(e) => e.stopPropagation()}
              >
                <title>Drag along {axis.key} to keep only trials in a band; click to clear</title>
              </rect>
            </g>
          );
        })}
      </svg>
      {hovered && hover ? (
        <div
          className="pc-tip"
          data-testid="pc-tooltip"
          style={{
            left: Math.min(hover.x + 14, width - 260),
            top: Math.max(0, Math.min(hover.y + 14, HEIGHT - 40)),
          }}
        >
          <div className="pc-tip-head">
            <strong>Trial #{hovered.trial.index}</strong> <span className="muted">{hovered.trial.status}</span>
          </div>
          <div className="pc-tip-name">{hovered.trial.name}</div>
          <dl>
            {paramAxes.map((a) => (
              <div key={a.key}>
                <dt>{a.key}</dt>
                <dd>{formatValue(hovered.trial.params?.[a.key]) || "—"}</dd>
              </div>
            ))}
            {metricAxis ? (
              <div>
                <dt>{metricAxis.key}</dt>
                <dd>
                  {hovered.trial.value === null ? "no value yet" : formatNumber(hovered.trial.value)}
                  {hovered.trial.step !== null ? <span className="muted"> @ step {hovered.trial.step}</span> : null}
                </dd>
              </div>
            ) : null}
          </dl>
          <div className="muted pc-tip-hint">Click to open the run</div>
        </div>
      ) : null}
    </div>
  );
}

/** The colour legend: worst to best along the ramp, with the metric's range. */
export function ColorLegend({ axis, goal }: { axis: Axis; goal: SweepGoal }) {
  const lo = axis.kind === "log" ? 10 ** axis.min : axis.min;
  const hi = axis.kind === "log" ? 10 ** axis.max : axis.max;
  const [worst, best] = goal === "minimize" ? [hi, lo] : [lo, hi];
  return (
    <div className="pc-legend">
      <span className="muted">Line colour: worse {formatNumber(Number(worst.toPrecision(4)))}</span>
      <span className="pc-legend-bar" style={{ background: rampGradient() }} aria-hidden="true" />
      <span>better {formatNumber(Number(best.toPrecision(4)))}</span>
    </div>
  );
}
