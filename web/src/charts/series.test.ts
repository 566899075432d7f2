import { describe, expect, it } from "vitest";

import {
  alignTables,
  appendSeries,
  assignSlots,
  chartKeys,
  contrast,
  countPoints,
  ema,
  filterKeys,
  formatSecondsShort,
  groupSystemKeys,
  lastStep,
  PALETTE,
  parseSeries,
  plotValues,
  stepRange,
  styleForSlot,
  systemDevices,
  withAlpha,
  xValues,
} from "./series";

describe("parseSeries", () => {
  it("turns the wire's strings into floats", () => {
    const s = parseSeries({ steps: [0, 1, 2, 3], times: [10, 11, 12, 13], values: [1.5, "NaN", "Infinity", "-Infinity"] });
    expect(s.values[0]).toBe(1.5);
    expect(Number.isNaN(s.values[1])).toBe(true);
    expect(s.values[2]).toBe(Infinity);
    expect(s.values[3]).toBe(-Infinity);
    expect(s.steps).toEqual([0, 1, 2, 3]);
  });

  it("reads null as NaN", () => {
    expect(Number.isNaN(parseSeries({ steps: [0], times: [0], values: [null] }).values[0])).toBe(true);
  });
});

describe("xValues", () => {
  const s = { steps: [0, 10, 20], times: [1000.5, 1001.5, 1003], values: [1, 2, 3] };
  it("step", () => expect(xValues(s, "step")).toEqual([0, 10, 20]));
  it("wall time", () => expect(xValues(s, "wall")).toEqual([1000.5, 1001.5, 1003]));
  it("relative to the first point", () => expect(xValues(s, "relative")).toEqual([0, 1, 2.5]));
  it("relative to a given start (a zoomed slice keeps the run's origin)", () =>
    expect(xValues(s, "relative", 1000)).toEqual([0.5, 1.5, 3]));
  it("system steps are POSIX seconds", () => expect(xValues(s, "steptime")).toEqual([0, 10, 20]));
  it("empty", () => expect(xValues({ steps: [], times: [], values: [] }, "relative")).toEqual([]));
});

describe("plotValues", () => {
  it("non-finite values are gaps", () => {
    expect(plotValues([1, NaN, Infinity, -Infinity, -2, 0], false)).toEqual([1, null, null, null, -2, 0]);
  });
  it("a log scale drops values ≤ 0", () => {
    expect(plotValues([1, 0, -3, 0.5, NaN], true)).toEqual([1, null, null, 0.5, null]);
  });
});

describe("ema", () => {
  it("weight 0 is the raw line (non-finite → gap)", () => {
    expect(ema([1, 2, NaN, 4], 0)).toEqual([1, 2, null, 4]);
  });

  it("is debiased: a constant stays constant from the first point", () => {
    const out = ema([5, 5, 5, 5], 0.9);
    for (const v of out) expect(v).toBeCloseTo(5, 10);
  });

  it("follows TensorBoard's formula", () => {
    const w = 0.5;
    const out = ema([0, 2, 4], w);
    // last = 0, 1, 2.5; debias 1-w^k = 0.5, 0.75, 0.875
    expect(out[0]).toBeCloseTo(0);
    expect(out[1]).toBeCloseTo(1 / 0.75);
    expect(out[2]).toBeCloseTo(2.5 / 0.875);
  });

  it("skips NaN gaps without poisoning the average", () => {
    const out = ema([1, NaN, 1, Infinity, 1], 0.8);
    expect(out[1]).toBeNull();
    expect(out[3]).toBeNull();
    expect(out[2]).toBeCloseTo(1);
    expect(out[4]).toBeCloseTo(1);
  });

  it("smooths noise", () => {
    const noisy = Array.from({ length: 200 }, (_, i) => (i % 2 ? 1 : -1));
    const out = ema(noisy, 0.95) as number[];
    expect(Math.abs(out[199])).toBeLessThan(0.1);
  });

  it("on a log scale averages the logarithm and leaves ≤ 0 out", () => {
    const out = ema([1, 100, 0, -1], 0.5, true);
    expect(out[0]).toBeCloseTo(1);
    // log10: 0, 2 → last = 0, 1 → 1/0.75 → 10^(4/3)
    expect(out[1]).toBeCloseTo(Math.pow(10, 4 / 3));
    expect(out[2]).toBeNull();
    expect(out[3]).toBeNull();
  });
});

describe("alignTables", () => {
  it("runs with the same steps share one x array", () => {
    const a = alignTables([
      { x: [0, 1, 2], ys: [[1, 2, 3]] },
      { x: [0, 1, 2], ys: [[4, 5, 6]] },
    ]);
    expect(a.x).toEqual([0, 1, 2]);
    expect(a.ys).toEqual([
      [1, 2, 3],
      [4, 5, 6],
    ]);
  });

  it("different steps: the union, undefined where a run has no point, null kept", () => {
    const a = alignTables([
      { x: [0, 2, 4], ys: [[1, null, 3], [10, 20, 30]] },
      { x: [1, 2, 5], ys: [[7, 8, 9]] },
    ]);
    expect(a.x).toEqual([0, 1, 2, 4, 5]);
    expect(a.ys[0]).toEqual([1, undefined, null, 3, undefined]);
    expect(a.ys[1]).toEqual([10, undefined, 20, 30, undefined]);
    expect(a.ys[2]).toEqual([undefined, 7, 8, undefined, 9]);
  });

  it("an unsorted x (wall time of a restarted run) is sorted, the last duplicate wins", () => {
    const a = alignTables([{ x: [5, 3, 4, 3], ys: [[1, 2, 3, 4]] }, { x: [3], ys: [[9]] }]);
    expect(a.x).toEqual([3, 4, 5]);
    expect(a.ys[0]).toEqual([4, 3, 1]);
    expect(a.ys[1]).toEqual([9, undefined, undefined]);
  });

  it("drops points whose x is not finite", () => {
    const a = alignTables([{ x: [0, NaN, 2], ys: [[1, 2, 3]] }]);
    expect(a.x).toEqual([0, 2]);
    expect(a.ys[0]).toEqual([1, 3]);
  });

  it("empty tables and no tables", () => {
    expect(alignTables([])).toEqual({ x: [], ys: [] });
    const a = alignTables([{ x: [], ys: [[]] }, { x: [1], ys: [[2]] }]);
    expect(a.x).toEqual([1]);
    expect(a.ys).toEqual([[undefined], [2]]);
  });

  it("is fast on 20 runs × 4,000 points with different steps", () => {
    const tables = Array.from({ length: 20 }, (_, r) => {
      const x = Array.from({ length: 4000 }, (_, i) => i * 25 + (r % 7));
      return { x, ys: [x.map((v) => v * 2), x.map((v) => v * 3)] };
    });
    const t = performance.now();
    const a = alignTables(tables);
    const ms = performance.now() - t;
    expect(a.ys).toHaveLength(40);
    expect(a.x.length).toBe(4000 * 7);
    expect(ms).toBeLessThan(500);
    // every point lands on its own x
    for (let r = 0; r < 20; r += 5) {
      const col = a.ys[2 * r];
      let n = 0;
      for (let i = 0; i < a.x.length; i++) if (col[i] !== undefined) {
        expect(col[i]).toBe(a.x[i] * 2);
        n++;
      }
      expect(n).toBe(4000);
    }
  });
});

describe("countPoints", () => {
  it("counts what is drawn", () => expect(countPoints([[1, null, undefined, 2], [undefined, 3]])).toBe(3));
});

describe("stepRange", () => {
  const steps = [0, 10, 20, 30, 40];
  it("points inside plus one on each side", () => {
    expect(stepRange(steps, steps, 12, 31)).toEqual([10, 40]);
    expect(stepRange(steps, steps, 10, 30)).toEqual([0, 40]);
  });
  it("clamped at the ends", () => {
    expect(stepRange(steps, steps, -5, 15)).toEqual([0, 20]);
    expect(stepRange(steps, steps, 35, 100)).toEqual([30, 40]);
  });
  it("a window between two points fetches the segment crossing it", () => {
    expect(stepRange(steps, steps, 12, 18)).toEqual([10, 20]);
  });
  it("nothing near the window", () => {
    expect(stepRange(steps, steps, 50, 60)).toBeNull();
    expect(stepRange(steps, steps, -20, -10)).toBeNull();
    expect(stepRange([], [], 0, 1)).toBeNull();
  });
  it("maps a time window to steps", () => {
    const times = [100, 101, 102, 103, 104];
    expect(stepRange(times, steps, 101.5, 102.5)).toEqual([10, 30]);
  });
});

describe("appendSeries (live)", () => {
  const old = { steps: [0, 1, 2], times: [0, 1, 2], values: [1, 2, 3] };
  it("adds the new points at the end", () => {
    const s = appendSeries(old, { steps: [3, 4], times: [3, 4], values: [4, 5] });
    expect(s.steps).toEqual([0, 1, 2, 3, 4]);
    expect(s.values).toEqual([1, 2, 3, 4, 5]);
    expect(lastStep(s)).toBe(4);
  });
  it("drops points already shown (a repeated event)", () => {
    const s = appendSeries(old, { steps: [2, 3], times: [2, 3], values: [9, 4] });
    expect(s.steps).toEqual([0, 1, 2, 3]);
    expect(s.values).toEqual([1, 2, 3, 4]);
  });
  it("nothing new keeps the same object (no redraw)", () => {
    expect(appendSeries(old, { steps: [1], times: [1], values: [2] })).toBe(old);
    expect(appendSeries(old, { steps: [], times: [], values: [] })).toBe(old);
  });
  it("into an empty series", () => {
    const s = appendSeries({ steps: [], times: [], values: [] }, { steps: [0], times: [5], values: [1] });
    expect(s.steps).toEqual([0]);
    expect(lastStep({ steps: [], times: [], values: [] })).toBe(-1);
  });
});

describe("palette", () => {
  it("every colour is readable (≥ 3:1) on both themes' backgrounds", () => {
    for (const c of PALETTE) {
      for (const bg of ["#ffffff", "#f5f6f8", "#0f1216", "#171b21"]) expect(contrast(c, bg)).toBeGreaterThanOrEqual(3);
    }
  });

  it("colours are distinct", () => expect(new Set(PALETTE).size).toBe(PALETTE.length));

  it("a run keeps its slot while others come and go", () => {
    const a = assignSlots(["r1", "r2", "r3"]);
    expect([...a.values()]).toEqual([0, 1, 2]);
    const b = assignSlots(["r3", "r4", "r1"], a);
    expect(b.get("r3")).toBe(2);
    expect(b.get("r1")).toBe(0);
    expect(b.get("r4")).toBe(1); // the lowest free slot
    const c = assignSlots(["r5"], b);
    expect(c.get("r5")).toBe(0);
  });

  it("duplicate ids get one slot", () => {
    const a = assignSlots(["r1", "r1", "r2"]);
    expect(a.size).toBe(2);
    expect(a.get("r2")).toBe(1);
  });

  it("past the palette, colours repeat with a dash", () => {
    expect(styleForSlot(0)).toEqual({ color: PALETTE[0], dash: undefined });
    const s = styleForSlot(PALETTE.length + 1);
    expect(s.color).toBe(PALETTE[1]);
    expect(s.dash).toBeDefined();
  });

  it("withAlpha", () => expect(withAlpha("#1f77b4", 0.5)).toBe("#1f77b480"));
});

describe("keys", () => {
  it("union of the runs' keys without system metrics, sorted", () => {
    expect(chartKeys([["val/acc", "sys/n1/gpu0/util_pct"], ["train/loss", "val/acc"]])).toEqual(["train/loss", "val/acc"]);
  });
  it("filter by words", () => {
    expect(filterKeys(["train/loss", "val/loss", "val/acc"], "val LOSS")).toEqual(["val/loss"]);
    expect(filterKeys(["a", "b"], "  ")).toEqual(["a", "b"]);
  });
});

describe("groupSystemKeys", () => {
  const keys = [
    "sys/n1/gpu10/util_pct",
    "sys/n1/gpu2/util_pct",
    "sys/n1/gpu2/mem_mb",
    "sys/n1/gpu2/mem_total_mb",
    "sys/n1/gpu2/power_w",
    "sys/n2/r1/cpu_pct",
    "sys/n1/r0/rss_mb",
    "sys/n1/r0/cpu_pct",
    "sys/n1/gpu2/pcie_rx_mbps",
    "sys/n1/gpu2/pcie_tx_mbps",
    "sys/n1/disk_mb",
    "train/loss",
  ];
  const groups = groupSystemKeys(keys);

  it("one chart per kind, in a fixed order, empty kinds left out", () => {
    expect(groups.map((g) => g.title)).toEqual([
      "GPU utilisation (%)",
      "GPU memory (MB)",
      "GPU power (W)",
      "PCIe (MB/s)",
      "CPU (%)",
      "RSS (MB)",
      "disk_mb",
    ]);
    expect(groupSystemKeys(["sys/n1/r0/cpu_pct"]).map((g) => g.id)).toEqual(["cpu"]);
    expect(groupSystemKeys([])).toEqual([]);
  });

  it("a line per host/GPU in natural order", () => {
    expect(groups[0].series.map((s) => s.label)).toEqual(["n1/gpu2", "n1/gpu10"]);
    expect(groups[0].series.map((s) => s.key)).toEqual(["sys/n1/gpu2/util_pct", "sys/n1/gpu10/util_pct"]);
  });

  it("memory total and PCIe tx are dashed second lines of their GPU", () => {
    expect(groups[1].series).toEqual([
      { key: "sys/n1/gpu2/mem_mb", label: "n1/gpu2", device: "n1/gpu2", dash: undefined },
      { key: "sys/n1/gpu2/mem_total_mb", label: "n1/gpu2 total", device: "n1/gpu2", dash: true },
    ]);
    expect(groups[3].series.map((s) => [s.label, s.dash])).toEqual([
      ["n1/gpu2 rx", undefined],
      ["n1/gpu2 tx", true],
    ]);
  });

  it("CPU per host/rank", () => {
    expect(groups[4].series.map((s) => s.label)).toEqual(["n1/r0", "n2/r1"]);
  });

  it("devices: one colour slot each across the charts", () => {
    expect(systemDevices(groups)).toEqual(["n1", "n1/gpu2", "n1/gpu10", "n1/r0", "n2/r1"]);
  });
});

describe("formatSecondsShort", () => {
  it("formats", () => {
    expect(formatSecondsShort(0)).toBe("0");
    expect(formatSecondsShort(45)).toBe("45s");
    expect(formatSecondsShort(600)).toBe("10m");
    expect(formatSecondsShort(630)).toBe("10m 30s");
    expect(formatSecondsShort(5400)).toBe("1h 30m");
    expect(formatSecondsShort(2 * 86400 + 4 * 3600)).toBe("2d 4h");
    expect(formatSecondsShort(-60)).toBe("−1m");
    expect(formatSecondsShort(NaN)).toBe("");
  });
});
