import { describe, expect, it } from "vitest";

import type { MetricsEventData, Run, RunEventData } from "../types";
import {
  apiQuery,
  clearFilters,
  COMPARE_CAP,
  columnSort,
  defaultColumns,
  EMPTY_STATE,
  filterExpressions,
  gpuCount,
  lastOffset,
  loadColumns,
  mergeMetricsEvents,
  mergeRunEvents,
  metricKeysOf,
  metricValue,
  pageText,
  paramValue,
  parseColumn,
  parseExpression,
  parseRanges,
  parseState,
  prevOffset,
  rangeExpressions,
  saveColumns,
  slurmJobLabel,
  splitAdvanced,
  statusExpressions,
  STATUSES,
  toggleColumn,
  toggleSort,
  writeState,
  type TableState,
} from "./runsQuery";

function run(over: Partial<Run> = {}): Run {
  return {
    id: "r1",
    experiment_id: "e1",
    project_id: "p1",
    name: "run-1",
    status: "running",
    created_at: 100,
    updated_at: 100,
    started_at: 110,
    ended_at: null,
    user_id: "u1",
    host: null,
    config: {},
    summary: {},
    tags: [],
    notes: "",
    exit_code: null,
    gpu_type: null,
    slurm_job_id: null,
    slurm_array_job_id: null,
    slurm_array_task_id: null,
    slurm_nodes: null,
    slurm_partition: null,
    slurm_cluster: null,
    restart_count: 0,
    slurm_state: null,
    pending_reason: null,
    start_estimate: null,
    state_unknown_since: null,
    slurm_done: false,
    slurm: {},
    metrics: {},
    ...over,
  };
}

describe("URL state", () => {
  it("reads defaults from an empty query", () => {
    expect(parseState(new URLSearchParams())).toEqual(EMPTY_STATE);
    expect(writeState(EMPTY_STATE).toString()).toBe("");
  });

  it("round-trips every field", () => {
    const state: TableState = {
      statuses: ["queued", "running"],
      tag: "baseline",
      user: "u1",
      name: "resnet",
      ranges: [
        { field: "params.lr", min: "0.01", max: "0.1" },
        { field: "metrics.train/loss.min", min: "", max: "0.5" },
      ],
      advanced: ["params.optimizer.name=adamw", "metrics.val/acc.max>0.9"],
      sort: "metrics.val/acc.max",
      order: "asc",
      limit: 200,
      offset: 400,
      compare: ["a", "b"],
    };
    const q = writeState(state);
    expect(q.getAll("range")).toEqual(["params.lr>=0.01", "params.lr<=0.1", "metrics.train/loss.min<=0.5"]);
    expect(q.get("status")).toBe("queued,running");
    expect(parseState(new URLSearchParams(q.toString()))).toEqual(state);
  });

  it("keeps other query parameters and drops defaults", () => {
    const q = writeState({ ...EMPTY_STATE, offset: 50 }, new URLSearchParams("tab=x&offset=100&status=failed"));
    expect(q.toString()).toBe("tab=x&offset=50");
  });

  it("ignores bad values", () => {
    const s = parseState(new URLSearchParams("status=running,bogus&limit=77&offset=-3&order=up&sort="));
    expect(s.statuses).toEqual(["running"]);
    expect(s.limit).toBe(50);
    expect(s.offset).toBe(0);
    expect(s.order).toBe("desc");
    expect(s.sort).toBe("created_at");
  });

  it("caps compare", () => {
    const ids = Array.from({ length: 30 }, (_, i) => `r${i}`).join(",");
    expect(parseState(new URLSearchParams({ compare: ids })).compare).toHaveLength(COMPARE_CAP);
  });

  it("clears filters but keeps sort, page size and selection", () => {
    const s = parseState(new URLSearchParams("status=failed&tag=a&name=x&range=params.lr>=1&filter=seed=1&sort=name&order=asc&limit=100&offset=200&compare=a"));
    const c = clearFilters(s);
    expect(filterExpressions(c)).toEqual([]);
    expect(c).toMatchObject({ sort: "name", order: "asc", limit: 100, offset: 0, compare: ["a"] });
  });
});

describe("filters", () => {
  it("parses expressions like the server", () => {
    expect(parseExpression("metrics.train/loss.min < 0.5")).toEqual({ field: "metrics.train/loss.min", op: "<", value: "0.5" });
    expect(parseExpression("params.lr>=1e-3")).toEqual({ field: "params.lr", op: ">=", value: "1e-3" });
    expect(parseExpression("name~res net")).toEqual({ field: "name", op: "~", value: "res net" });
    expect(parseExpression("nonsense")).toBeNull();
  });

  it("turns several statuses into != the others", () => {
    expect(statusExpressions([])).toEqual([]);
    expect(statusExpressions(["running"])).toEqual(["status=running"]);
    expect(statusExpressions([...STATUSES])).toEqual([]);
    const two = statusExpressions(["running", "queued"]);
    expect(two).toHaveLength(STATUSES.length - 2);
    expect(two).toContain("status!=finished");
    expect(two).not.toContain("status!=running");
  });

  it("builds range expressions", () => {
    expect(rangeExpressions({ field: "params.lr", min: " 0.01 ", max: "" })).toEqual(["params.lr>=0.01"]);
    expect(rangeExpressions({ field: "metrics.loss.min", min: "", max: "0.5" })).toEqual(["metrics.loss.min<=0.5"]);
    expect(rangeExpressions({ field: "params.lr", min: "", max: "" })).toEqual([]);
    expect(parseRanges(["params.lr<=0.1", "params.lr>=0.01", "params.x=3", "junk"])).toEqual([
      { field: "params.lr", min: "0.01", max: "0.1" },
    ]);
  });

  it("quotes text values and keeps advanced expressions raw", () => {
    const s: TableState = { ...EMPTY_STATE, tag: "1e3", name: " resnet ", user: "u1", advanced: splitAdvanced("seed=1; params.lr>0.1\n\n") };
    expect(filterExpressions(s)).toEqual(['tags="1e3"', 'user_id="u1"', 'name~"resnet"', "seed=1", "params.lr>0.1"]);
  });

  it("builds the API query", () => {
    const s = { ...EMPTY_STATE, statuses: ["failed"], sort: "params.lr", order: "asc" as const, offset: 100, limit: 100 };
    expect(apiQuery(s, ["train/loss", "val/acc"])).toEqual({
      filter: ["status=failed"],
      sort: "params.lr",
      order: "asc",
      limit: 100,
      offset: 100,
      metrics: "train/loss,val/acc",
      total: true,
    });
    expect(apiQuery(EMPTY_STATE, []).metrics).toBe(",");
  });
});

describe("sorting and paging", () => {
  it("flips the order on the same field, resets the page", () => {
    const s = { ...EMPTY_STATE, offset: 100 };
    const a = toggleSort(s, "created_at");
    expect(a).toMatchObject({ sort: "created_at", order: "asc", offset: 0 });
    expect(toggleSort(a, "created_at").order).toBe("desc");
    expect(toggleSort(a, "name")).toMatchObject({ sort: "name", order: "asc" });
    expect(toggleSort(a, "started_at").order).toBe("desc");
  });

  it("does page math", () => {
    expect(pageText(0, 50, 100000)).toBe("1–50 of 100,000");
    expect(pageText(99950, 50, 100000)).toBe("99,951–100,000 of 100,000");
    expect(pageText(0, 0, 0)).toBe("0 runs");
    expect(pageText(100, 7, null)).toBe("101–107");
    expect(prevOffset(30, 50)).toBe(0);
    expect(prevOffset(150, 50)).toBe(100);
    expect(lastOffset(100000, 50)).toBe(99950);
    expect(lastOffset(101, 50)).toBe(100);
    expect(lastOffset(0, 50)).toBe(0);
  });
});

describe("columns", () => {
  it("has sensible defaults", () => {
    const cols = defaultColumns({ params: ["a", "b", "c", "d"], metrics: ["sys/gpu", "train/loss", "val/acc", "x"] });
    expect(cols).toContain("params.c");
    expect(cols).not.toContain("params.d");
    expect(cols.filter((c) => c.startsWith("metrics."))).toEqual(["metrics.train/loss.last", "metrics.val/acc.last"]);
    expect(cols.slice(0, 2)).toEqual(["user", "slurm"]);
  });

  it("parses column ids, with dotted keys", () => {
    expect(parseColumn("metrics.a.b.max")).toMatchObject({ kind: "metric", key: "a.b", stat: "max" });
    expect(parseColumn("params.model.depth")).toMatchObject({ kind: "param", key: "model.depth" });
    expect(parseColumn("metrics.loss")).toBeNull();
    expect(parseColumn("bogus")).toBeNull();
    expect(columnSort(parseColumn("created")!)).toBe("created_at");
    expect(columnSort(parseColumn("user")!)).toBe("user_id");
    expect(columnSort(parseColumn("duration")!)).toBe("duration");
    expect(columnSort(parseColumn("gpus")!)).toBeNull();
    expect(columnSort(parseColumn("metrics.loss.min")!)).toBe("metrics.loss.min");
  });

  it("toggles, orders and lists metric keys", () => {
    let cols = toggleColumn(["params.a", "user"], "created", true);
    expect(cols).toEqual(["user", "created", "params.a"]);
    cols = toggleColumn(cols, "metrics.l.min", true);
    cols = toggleColumn(cols, "metrics.l.last", true);
    expect(metricKeysOf(cols)).toEqual(["l"]);
    expect(toggleColumn(cols, "user", false)).not.toContain("user");
  });

  it("saves per experiment", () => {
    const mem = new Map<string, string>();
    const storage = { getItem: (k: string) => mem.get(k) ?? null, setItem: (k: string, v: string) => void mem.set(k, v), removeItem: (k: string) => void mem.delete(k) };
    expect(loadColumns(storage, "e1")).toBeNull();
    saveColumns(storage, "e1", ["params.a", "bogus", "user"]);
    expect(loadColumns(storage, "e1")).toEqual(["user", "params.a"]);
    expect(loadColumns(storage, "e2")).toBeNull();
    mem.set("runyard:runs-columns:e2", "{not json");
    expect(loadColumns(storage, "e2")).toBeNull();
    saveColumns(storage, "e1", null);
    expect(loadColumns(storage, "e1")).toBeNull();
  });
});

describe("cell values", () => {
  it("reads params from nested config", () => {
    const r = run({ config: { lr: 0.1, model: { depth: 18, act: { name: "relu" } }, list: [1, 2] } });
    expect(paramValue(r, "lr")).toBe(0.1);
    expect(paramValue(r, "model.act.name")).toBe("relu");
    expect(paramValue(r, "list")).toEqual([1, 2]);
    expect(paramValue(r, "missing")).toBeUndefined();
  });

  it("reads metric stats", () => {
    const r = run({ metrics: { loss: { key: "loss", count: 3, last: 0.5, last_step: 2, last_time: 1, min: 0.4, max: "NaN" } } });
    expect(metricValue(r, "loss", "last")).toBe(0.5);
    expect(metricValue(r, "loss", "min")).toBe(0.4);
    expect(metricValue(r, "loss", "max")).toBe("NaN");
    expect(metricValue(r, "acc", "last")).toBeNull();
  });

  it("counts GPUs", () => {
    expect(gpuCount(run({ slurm: { requested: { gpus_per_node: 4, nodes: 2 } } }))).toBe(8);
    expect(gpuCount(run({ slurm: { requested: { gpus_per_node: 2 } } }))).toBe(2);
    expect(gpuCount(run({ slurm: { requested: { gpus: 3 } } }))).toBe(3);
    expect(gpuCount(run({ slurm: { gpus: 1 } }))).toBe(1);
    expect(gpuCount(run({ slurm: {} }))).toBeNull();
  });

  it("labels Slurm jobs", () => {
    expect(slurmJobLabel(run({ slurm_job_id: "12" }))).toBe("12");
    expect(slurmJobLabel(run({ slurm_job_id: "15", slurm_array_job_id: "12", slurm_array_task_id: 3 }))).toBe("12_3");
    expect(slurmJobLabel(run({ slurm_job_id: "15", slurm_array_task_id: 0 }))).toBe("15_0");
    expect(slurmJobLabel(run())).toBe("");
  });
});

describe("live events", () => {
  const event = (over: Partial<RunEventData>): RunEventData => ({
    run_id: "r1",
    user_id: null,
    created_at: 0,
    status: "finished",
    tags: ["x"],
    experiment_id: "e1",
    project_id: "p1",
    name: "run-1",
    started_at: 110,
    ended_at: 200,
    updated_at: 200,
    exit_code: 0,
    host: "n1",
    restart_count: 0,
    slurm_job_id: "9",
    slurm_state: "COMPLETED",
    pending_reason: null,
    start_estimate: null,
    state_unknown_since: null,
    slurm_done: true,
    ...over,
  });

  it("merges run events into rows in place", () => {
    const rows = [run(), run({ id: "r2", name: "run-2" })];
    const out = mergeRunEvents(rows, [event({})]);
    expect(out[0]).toMatchObject({ status: "finished", ended_at: 200, exit_code: 0, tags: ["x"], slurm_job_id: "9" });
    expect(out[0].config).toBe(rows[0].config);
    expect(out[1]).toBe(rows[1]);
    expect(mergeRunEvents(rows, [event({ run_id: "other" })])).toBe(rows);
  });

  it("ignores older events and keeps the newest of several", () => {
    const rows = [run({ updated_at: 300 })];
    expect(mergeRunEvents(rows, [event({ updated_at: 200 })])).toBe(rows);
    const out = mergeRunEvents([run()], [event({ updated_at: 250, status: "failed" }), event({ updated_at: 240, status: "running" })]);
    expect(out[0].status).toBe("failed");
  });

  it("merges metric events for shown keys", () => {
    const rows = [run({ metrics: { loss: { key: "loss", count: 3, last: 0.5, last_step: 2, last_time: 1, min: 0.4, max: 0.9 } } })];
    const e = (metrics: MetricsEventData["metrics"]): MetricsEventData => ({ run_id: "r1", experiment_id: "e1", metrics });
    const one = mergeMetricsEvents(rows, [e({ loss: { count: 4, new: 1, last: 0.3, min: 0.3, max: 0.9, last_step: 3, last_time: 2 } })], new Set(["loss"]));
    expect(one[0].metrics.loss).toMatchObject({ count: 4, last: 0.3, min: 0.3, max: 0.9, last_step: 3 });
    const many = mergeMetricsEvents(rows, [e({ loss: { count: 9, new: 6, last: 0.35, min: 0.4, max: 0.9, last_step: 8, last_time: 3 } })], new Set(["loss"]));
    expect(many[0].metrics.loss).toMatchObject({ count: 9, last: 0.35, min: 0.4, max: 0.9 });
    expect(mergeMetricsEvents(rows, [e({ acc: { count: 1, new: 1, last: 0.1, min: 0.1, max: 0.1, last_step: 0, last_time: 1 } })], new Set(["loss"]))).toBe(rows);
    const fresh = mergeMetricsEvents(rows, [e({ acc: { count: 1, new: 1, last: 0.1, min: 0.1, max: 0.1, last_step: 0, last_time: 1 } })], new Set(["loss", "acc"]));
    expect(fresh[0].metrics.acc).toMatchObject({ last: 0.1, min: 0.1, max: 0.1 });
    expect(fresh[0].metrics.loss).toBe(rows[0].metrics.loss);
    const stale = mergeMetricsEvents(rows, [e({ loss: { count: 2, new: 1, last: 9, min: 9, max: 9, last_step: 1, last_time: 0 } })], new Set(["loss"]));
    expect(stale).toBe(rows);
    expect(mergeMetricsEvents(rows, [{ ...e({ loss: { count: 5, new: 1, last: 1, min: 0.4, max: 1, last_step: 4, last_time: 4 } }), run_id: "zz" }], new Set(["loss"]))).toBe(rows);
  });
});
