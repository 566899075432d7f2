import { describe, expect, it } from "vitest";

import type { SweepDetail, SweepParameter, SweepTrial } from "../types";
import {
  axisXs,
  brushKey,
  buildAxes,
  categoryKey,
  countsFromTrials,
  goodness,
  importanceView,
  linePoints,
  mergeMetrics,
  mergeStatus,
  metricAxis,
  nearestLine,
  paramAxis,
  paramNames,
  paramsText,
  passesBrushes,
  position,
  progress,
  progressText,
  rampColor,
  rampOpacity,
  segmentDistance,
  statusGroup,
  ticks,
  topK,
  trialValue,
} from "./sweeps";

function param(patch: Partial<SweepParameter>): SweepParameter {
  return { name: "p", kind: "range", values: null, low: null, high: null, log: false, integer: false, ...patch };
}

function trial(index: number, patch: Partial<SweepTrial> = {}): SweepTrial {
  return {
    index,
    run_id: `r${index}`,
    name: `t${index}`,
    status: "finished",
    params: {},
    value: null,
    step: null,
    slurm_job_id: null,
    reason: null,
    ...patch,
  };
}

function detail(patch: Partial<SweepDetail> = {}): SweepDetail {
  return {
    id: "s1",
    name: "sweep",
    experiment_id: "e1",
    project_id: "p1",
    user_id: null,
    method: "grid",
    created_at: 0,
    metric: { name: "val/loss", goal: "minimize" },
    concurrency: null,
    trial_count: 0,
    state: "running",
    counts: { queued: 0, running: 0, finished: 0, failed: 0, pruned: 0, cancelled: 0 },
    best: null,
    job_ids: [],
    parameters: [],
    early_stop: null,
    trials: [],
    importance: null,
    spec: "",
    ...patch,
  };
}

describe("axes", () => {
  it("makes a linear axis of a range, widened by values outside it", () => {
    const a = paramAxis("dropout", param({ low: 0, high: 0.5 }), [0.1, 0.7]);
    expect(a.kind).toBe("linear");
    expect([a.min, a.max]).toEqual([0, 0.7]);
    expect(position(a, 0)).toBe(0);
    expect(position(a, 0.35)).toBeCloseTo(0.5);
    expect(position(a, 0.7)).toBe(1);
    expect(position(a, "x")).toBeNull();
    expect(position(a, undefined)).toBeNull();
  });

  it("makes a log axis of a log range", () => {
    const a = paramAxis("lr", param({ low: 1e-4, high: 1e-1, log: true }), [3e-3]);
    expect(a.kind).toBe("log");
    expect(a.min).toBeCloseTo(-4);
    expect(a.max).toBeCloseTo(-1);
    expect(position(a, 1e-4)).toBeCloseTo(0);
    expect(position(a, 1e-1)).toBeCloseTo(1);
    expect(position(a, 1e-2)).toBeCloseTo(2 / 3);
    expect(position(a, 0)).toBeNull(); // no place for zero on a log axis
    expect(ticks(a).map((t) => t.label)).toEqual(["1e-4", "0.001", "0.01", "0.1"]);
  });

  it("adds 2 and 5 ticks when a log axis spans less than two decades", () => {
    const a = paramAxis("lr", param({ low: 0.01, high: 0.5, log: true }), []);
    expect(ticks(a).map((t) => t.label)).toEqual(["0.01", "0.02", "0.05", "0.1", "0.2", "0.5"]);
  });

  it("spaces a list of values evenly, numbers ascending, text in spec order", () => {
    const bs = paramAxis("batch_size", param({ kind: "values", values: [128, 32, 64] }), [64, 32]);
    expect(bs.kind).toBe("categorical");
    expect(bs.labels).toEqual(["32", "64", "128"]);
    expect(position(bs, 32)).toBe(0);
    expect(position(bs, 64)).toBe(0.5);
    expect(position(bs, 128)).toBe(1);
    expect(position(bs, "64")).toBeNull(); // a string is not the number
    expect(ticks(bs).map((t) => [t.pos, t.label])).toEqual([
      [0, "32"],
      [0.5, "64"],
      [1, "128"],
    ]);
    const opt = paramAxis("opt", param({ kind: "values", values: ["sgd", "adamw", "adam"] }), ["lion"]);
    expect(opt.labels).toEqual(["sgd", "adamw", "adam", "lion"]); // values the spec lacks go last
    expect(position(opt, "lion")).toBe(1);
  });

  it("puts a single category in the middle", () => {
    const a = paramAxis("x", param({ kind: "values", values: [true] }), [true]);
    expect(position(a, true)).toBe(0.5);
    expect(ticks(a)).toEqual([{ pos: 0.5, label: "true" }]);
  });

  it("guesses axes for parameters without a spec (list sweeps)", () => {
    expect(paramAxis("seed", undefined, [1, 5, 3]).kind).toBe("linear");
    expect(paramAxis("seed", undefined, [1, 5, 3]).integer).toBe(true);
    const mixed = paramAxis("model", undefined, ["a", 2, "b", null]);
    expect(mixed.kind).toBe("categorical");
    expect(mixed.labels).toEqual(["2", "a", "b"]);
    expect(paramAxis("x", undefined, []).kind).toBe("categorical");
  });

  it("widens a degenerate domain", () => {
    const a = paramAxis("x", param({ low: 2, high: 2 }), [2]);
    expect(a.min).toBeLessThan(2);
    expect(a.max).toBeGreaterThan(2);
    expect(position(a, 2)).toBeCloseTo(0.5);
  });

  it("gives integer parameters whole-number ticks", () => {
    const a = paramAxis("layers", param({ low: 1, high: 4, integer: true }), []);
    expect(ticks(a).map((t) => t.label)).toEqual(["1", "2", "3", "4"]);
  });

  it("makes linear ticks on round numbers within the domain", () => {
    const a = paramAxis("x", param({ low: 0.13, high: 0.87 }), []);
    const labels = ticks(a).map((t) => t.label);
    expect(labels).toEqual(["0.2", "0.4", "0.6", "0.8"]);
    for (const t of ticks(a)) expect(t.pos).toBeGreaterThanOrEqual(0);
  });

  it("makes the metric axis log when the values span 3 decades", () => {
    expect(metricAxis("loss", [0.1, 0.5, 2]).kind).toBe("linear");
    expect(metricAxis("loss", [0.01, 0.5, 20]).kind).toBe("log");
    expect(metricAxis("loss", [-1, 0.5, 2000]).kind).toBe("linear");
    const empty = metricAxis("loss", []);
    expect([empty.min, empty.max]).toEqual([0, 1]);
  });

  it("builds one axis per parameter (spec first, then others the trials have) and the metric last", () => {
    const d = detail({
      parameters: [param({ name: "lr", low: 1e-3, high: 1e-1, log: true }), param({ name: "bs", kind: "values", values: [32, 64] })],
      trials: [
        trial(0, { params: { lr: 0.01, bs: 32, extra: "a" }, value: 0.5 }),
        trial(1, { params: { lr: 0.1, bs: 64 }, value: "NaN" }),
        trial(2, { params: { lr: 0.001, bs: 64 }, value: 0.3 }),
      ],
    });
    expect(paramNames(d)).toEqual(["lr", "bs", "extra"]);
    const axes = buildAxes(d);
    expect(axes.map((a) => [a.key, a.kind, a.metric])).toEqual([
      ["lr", "log", false],
      ["bs", "categorical", false],
      ["extra", "categorical", false],
      ["val/loss", "linear", true],
    ]);
    expect([axes[3].min, axes[3].max]).toEqual([0.3, 0.5]); // NaN left out
    expect(buildAxes({ ...d, metric: null })).toHaveLength(3);
  });

  it("keys categories by JSON so 1 and '1' differ", () => {
    expect(categoryKey(1)).not.toBe(categoryKey("1"));
    expect(categoryKey(undefined)).toBe("undefined");
  });
});

describe("colour by metric", () => {
  const axis = metricAxis("loss", [0.2, 1.0]);

  it("rates the smallest value best when minimizing and the largest when maximizing", () => {
    expect(goodness(axis, 0.2, "minimize")).toBeCloseTo(1);
    expect(goodness(axis, 1.0, "minimize")).toBeCloseTo(0);
    expect(goodness(axis, 0.6, "maximize")).toBeCloseTo(0.5);
    expect(goodness(axis, null, "minimize")).toBeNull();
    expect(goodness(axis, 5, "maximize")).toBe(1); // clamped
  });

  it("ramps from a pale to a strong colour, opacity rising", () => {
    expect(rampColor(0)).toBe("#9aabbf");
    expect(rampColor(1)).toBe("#e8590c");
    expect(rampColor(-3)).toBe("#9aabbf");
    expect(rampColor(Number.NaN)).toBe("#9aabbf");
    expect(rampColor(0.5)).toMatch(/^#[0-9a-f]{6}$/);
    expect(rampOpacity(0)).toBeCloseTo(0.35);
    expect(rampOpacity(1)).toBe(1);
    expect(rampOpacity(0.5)).toBeGreaterThan(rampOpacity(0.2));
  });
});

describe("top-k", () => {
  const trials = [
    trial(0, { value: 0.5 }),
    trial(1, { value: null, status: "running" }),
    trial(2, { value: 0.2 }),
    trial(3, { value: "NaN" }),
    trial(4, { value: 0.2 }),
    trial(5, { value: 0.9 }),
  ];

  it("takes the best k with a value, ties by index", () => {
    expect(topK(trials, 3, "minimize").map((t) => t.index)).toEqual([2, 4, 0]);
    expect(topK(trials, 2, "maximize").map((t) => t.index)).toEqual([5, 0]);
    expect(topK(trials, 10, "minimize")).toHaveLength(4);
    expect(topK(trials, 0, "minimize")).toEqual([]);
  });

  it("reads wire values", () => {
    expect(trialValue({ value: "Infinity" })).toBeNull();
    expect(trialValue({ value: 3 })).toBe(3);
    expect(trialValue({ value: null })).toBeNull();
  });
});

describe("progress", () => {
  it("groups run statuses as the server counts", () => {
    expect(statusGroup("created")).toBe("queued");
    expect(statusGroup("requeued")).toBe("queued");
    expect(statusGroup("oom")).toBe("failed");
    expect(statusGroup("node_fail")).toBe("failed");
    expect(statusGroup("timeout")).toBe("failed");
    expect(statusGroup("pruned")).toBe("pruned");
    expect(countsFromTrials([{ status: "running" }, { status: "finished" }, { status: "finished" }, { status: "queued" }])).toEqual({
      queued: 1,
      running: 1,
      finished: 2,
      failed: 0,
      pruned: 0,
      cancelled: 0,
    });
  });

  it("counts done trials and segments of the bar", () => {
    const p = progress({ queued: 1, running: 2, finished: 6, failed: 1, pruned: 2, cancelled: 0 }, 12);
    expect(p.total).toBe(12);
    expect(p.done).toBe(9);
    expect(p.fraction).toBeCloseTo(0.75);
    expect(p.segments.map((s) => s.key)).toEqual(["finished", "pruned", "failed", "running", "queued"]);
    expect(p.segments[0].fraction).toBeCloseTo(0.5);
    expect(progressText(p)).toBe("12 trials · 9 done · 2 running · 1 queued · 1 failed · 2 pruned");
  });

  it("takes the larger of the trial count and the counts' sum, and survives nothing", () => {
    expect(progress({ finished: 3 }, 2).total).toBe(3);
    const none = progress(null, 0);
    expect(none.fraction).toBe(0);
    expect(none.segments).toEqual([]);
    expect(progressText(progress({}, 1))).toBe("1 trial · 0 done · 0 running · 0 queued");
  });
});

describe("importance", () => {
  it("scales bars to the top parameter", () => {
    const v = importanceView(
      [
        { param: "lr", importance: 0.8 },
        { param: "bs", importance: 0.2 },
      ],
      5,
    );
    expect(v.note).toBeNull();
    expect(v.rows.map((r) => r.share)).toEqual([1, 0.25]);
  });

  it("says what it needs", () => {
    expect(importanceView(null, 1).note).toBe("Needs 3 finished trials (1 so far).");
    expect(importanceView([], 4).note).toMatch(/Not computed yet/);
  });
});

describe("live merges", () => {
  const d = detail({ trials: [trial(0, { run_id: "a", value: 1, step: 10, status: "running" }), trial(1, { run_id: "b" })] });

  it("takes the metric's last value from a metrics event", () => {
    const info = { count: 3, new: 1, last: 0.5, min: 0.5, max: 1, last_step: 20, last_time: 1 };
    const next = mergeMetrics(d, { run_id: "a", experiment_id: "e1", metrics: { "val/loss": info } });
    expect(next.trials[0].value).toBe(0.5);
    expect(next.trials[0].step).toBe(20);
    expect(next.trials[1]).toBe(d.trials[1]);
    expect(mergeMetrics(d, { run_id: "a", experiment_id: "e1", metrics: { "train/loss": info } })).toBe(d);
    expect(mergeMetrics(d, { run_id: "zz", experiment_id: "e1", metrics: { "val/loss": info } })).toBe(d);
    expect(mergeMetrics(d, { run_id: "a", experiment_id: "e1", metrics: { "val/loss": { ...info, last_step: 5 } } })).toBe(d);
  });

  it("takes a run's status and recounts", () => {
    const next = mergeStatus(d, "a", "pruned");
    expect(next.trials[0].status).toBe("pruned");
    expect(next.counts.pruned).toBe(1);
    expect(next.counts.finished).toBe(1);
    expect(mergeStatus(d, "zz", "failed")).toBe(d);
    expect(mergeStatus(d, "a", "running")).toBe(d);
  });

  it("ends a running sweep when its last active trial ends", () => {
    const d = detail({
      state: "running",
      trials: [trial(0, { run_id: "a", status: "finished" }), trial(1, { run_id: "b", status: "running" })],
    });
    expect(mergeStatus(d, "b", "failed").state).toBe("finished");
    const three = { ...d, trials: [...d.trials, trial(2, { run_id: "c", status: "queued" })] };
    expect(mergeStatus(three, "b", "finished").state).toBe("running");
  });
});

describe("geometry", () => {
  it("spaces axes evenly", () => {
    expect(axisXs(3, 0, 100)).toEqual([0, 50, 100]);
    expect(axisXs(1, 0, 100)).toEqual([50]);
    expect(axisXs(0, 0, 100)).toEqual([]);
  });

  it("draws a trial's line through the axes it has a place on", () => {
    const axes = [
      paramAxis("a", param({ low: 0, high: 1 }), []),
      paramAxis("b", param({ kind: "values", values: ["x", "y"] }), []),
      metricAxis("m", [0, 10]),
    ];
    const ys = (p: number) => 100 - p * 100;
    expect(linePoints(axes, [0, 50, 100], { params: { a: 0.5, b: "y" }, value: 10 }, ys)).toEqual([
      { x: 0, y: 50 },
      { x: 50, y: 0 },
      { x: 100, y: 0 },
    ]);
    expect(linePoints(axes, [0, 50, 100], { params: { a: 0.5 }, value: null }, ys)).toEqual([{ x: 0, y: 50 }]);
  });

  it("finds the nearest line within reach", () => {
    expect(segmentDistance({ x: 5, y: 5 }, { x: 0, y: 0 }, { x: 10, y: 0 })).toBe(5);
    expect(segmentDistance({ x: -3, y: 4 }, { x: 0, y: 0 }, { x: 10, y: 0 })).toBe(5);
    expect(segmentDistance({ x: 1, y: 1 }, { x: 0, y: 0 }, { x: 0, y: 0 })).toBeCloseTo(Math.SQRT2);
    const lines = [
      { id: 1, points: [{ x: 0, y: 0 }, { x: 100, y: 0 }] },
      { id: 2, points: [{ x: 0, y: 10 }, { x: 100, y: 10 }] },
    ];
    expect(nearestLine(lines, { x: 50, y: 3 })).toBe(1);
    expect(nearestLine(lines, { x: 50, y: 8 })).toBe(2);
    expect(nearestLine(lines, { x: 50, y: 5 })).toBe(2); // tie: the one drawn on top
    expect(nearestLine(lines, { x: 50, y: 40 })).toBeNull();
  });

  it("filters by brushes on parameter and metric axes", () => {
    const axes = [paramAxis("a", param({ low: 0, high: 1 }), []), metricAxis("a", [0, 1])];
    const t = { params: { a: 0.2 }, value: 0.9 };
    expect(passesBrushes(axes, t, {})).toBe(true);
    expect(passesBrushes(axes, t, { [brushKey(axes[0])]: [0, 0.5] })).toBe(true);
    expect(passesBrushes(axes, t, { [brushKey(axes[0])]: [0.5, 0.3] })).toBe(false);
    expect(passesBrushes(axes, t, { [brushKey(axes[1])]: [0, 0.5] })).toBe(false);
    expect(passesBrushes(axes, { params: { a: 0.2 }, value: null }, { [brushKey(axes[1])]: [0, 1] })).toBe(false);
  });

  it("writes params as text", () => {
    expect(paramsText({ lr: 0.01, bs: 64, opt: "adam" }, ["bs", "lr"])).toBe("bs=64, lr=0.01");
    expect(paramsText(null)).toBe("");
  });
});
