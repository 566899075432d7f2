import { describe, expect, it } from "vitest";

import type { Artifact, Run, RunEventData } from "../types";
import {
  accountingFacts,
  cancelBlocked,
  checkTag,
  configRows,
  latestCheckpointId,
  mergeMetricsEvent,
  mergeRunEvent,
  requeueBlocked,
  resourceRows,
  slurmExtras,
} from "./runDetails";

function makeRun(over: Partial<Run> = {}): Run {
  return {
    id: "r1",
    experiment_id: "e1",
    project_id: "p1",
    name: "run",
    status: "running",
    created_at: 1000,
    updated_at: 1000,
    started_at: 1000,
    ended_at: null,
    user_id: "u1",
    host: "n1",
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

const row = (rows: ReturnType<typeof resourceRows>, label: string) => rows.find((r) => r.label === label);

describe("requested vs used", () => {
  it("shows what was asked while the run runs", () => {
    const run = makeRun({
      slurm_partition: "gpu",
      slurm_nodes: "n1",
      gpu_type: "a100",
      slurm: { requested: { gpus_per_node: 2, cpus_per_task: 4, mem_gb: 16, time_limit_min: 120, partition: "gpu", nodes: 1 } },
    });
    const rows = resourceRows(run, 1000 + 3600);
    expect(row(rows, "Partition")).toEqual({ label: "Partition", requested: "gpu", used: "gpu" });
    expect(row(rows, "Nodes")).toEqual({ label: "Nodes", requested: "1", used: "n1" });
    expect(row(rows, "CPUs")).toEqual({ label: "CPUs", requested: "4", used: "—" });
    expect(row(rows, "GPUs")).toEqual({ label: "GPUs", requested: "2", used: "—" });
    expect(row(rows, "GPU type")).toEqual({ label: "GPU type", requested: "—", used: "a100" });
    expect(row(rows, "Memory")?.requested).toBe("16 GB per node");
    expect(row(rows, "Time")).toEqual({ label: "Time", requested: "2h 00m limit", used: "1h 00m so far", note: "50% of the limit" });
    expect(row(rows, "Tasks")).toBeUndefined();
    expect(row(rows, "Account")).toBeUndefined();
  });

  it("uses Slurm's accounting after the end", () => {
    const run = makeRun({
      status: "finished",
      ended_at: 1000 + 600,
      slurm: {
        requested: { nodes: 2, ntasks_per_node: 2, cpus_per_task: 4, gpus_per_node: 1, mem_gb: 8, time_limit_min: 60, qos: "high" },
        accounting: {
          elapsed_s: 1800,
          alloc_cpus: 16,
          total_cpu_s: 1800 * 4,
          max_rss_bytes: 2 * 1024 ** 3,
          req_mem_bytes: 16 * 1024 ** 3,
          gpus: 2,
          nodes: "n[1-2]",
          partition: "gpu",
        },
      },
    });
    const rows = resourceRows(run);
    expect(row(rows, "Nodes")?.used).toBe("n[1-2]");
    expect(row(rows, "Tasks")?.requested).toBe("2 per node");
    expect(row(rows, "CPUs")).toEqual({
      label: "CPUs",
      requested: "16 (4 tasks × 4)",
      used: "16 allocated, 4.0 busy on average",
      note: "25% efficiency",
    });
    expect(row(rows, "GPUs")).toEqual({ label: "GPUs", requested: "1 per node (2)", used: "2" });
    expect(row(rows, "Memory")).toEqual({ label: "Memory", requested: "8 GB per node", used: "peak 2.0 GB", note: "25% of the request" });
    expect(row(rows, "Time")).toEqual({ label: "Time", requested: "1h 00m limit", used: "30m 00s", note: "50% of the limit" });
    expect(row(rows, "QOS")).toEqual({ label: "QOS", requested: "high", used: "—" });
  });

  it("has no rows for a run that never saw Slurm", () => {
    expect(resourceRows(makeRun({ started_at: null }))).toEqual([]);
  });

  it("lists the other details and the accounting facts", () => {
    const run = makeRun({
      slurm: {
        requested: { nodes: 1 },
        command: ["python", "train.py", "--lr", "0.1"],
        workdir: "/home/me",
        stdout: "/out/x.out",
        empty: "",
        api_key_id: "k1",
        accounting: { state: "TIMEOUT", exit_code: 0, signal: 15, total_cpu_s: 90 },
      },
    });
    expect(slurmExtras(run)).toEqual([
      ["command", "python train.py --lr 0.1"],
      ["workdir", "/home/me"],
      ["stdout", "/out/x.out"],
    ]);
    expect(accountingFacts(run)).toEqual([
      ["Final state", "TIMEOUT"],
      ["Exit code", "0"],
      ["Signal", "15"],
      ["CPU time", "1m 30s"],
    ]);
    expect(accountingFacts(makeRun())).toEqual([]);
  });
});

describe("live merges", () => {
  const event = (over: Partial<RunEventData>): RunEventData => ({
    run_id: "r1",
    user_id: null,
    created_at: 0,
    status: "running",
    tags: [],
    experiment_id: "e1",
    project_id: "p1",
    name: "run",
    started_at: 1000,
    ended_at: null,
    updated_at: 1000,
    exit_code: null,
    host: "n1",
    restart_count: 0,
    slurm_job_id: null,
    slurm_state: null,
    pending_reason: null,
    start_estimate: null,
    state_unknown_since: null,
    slurm_done: false,
    ...over,
  });

  it("merges a run event into the run, keeping what the event does not carry", () => {
    const run = makeRun({ notes: "mine", config: { lr: 1 } });
    const next = mergeRunEvent(run, event({ status: "failed", ended_at: 2000, exit_code: 3, tags: ["x"] }));
    expect(next.status).toBe("failed");
    expect(next.ended_at).toBe(2000);
    expect(next.exit_code).toBe(3);
    expect(next.tags).toEqual(["x"]);
    expect(next.notes).toBe("mine");
    expect(next.config).toEqual({ lr: 1 });
  });

  it("ignores other runs and events that change nothing", () => {
    const run = makeRun();
    expect(mergeRunEvent(run, event({ run_id: "other", status: "failed" }))).toBe(run);
    expect(mergeRunEvent(run, event({}))).toBe(run);
  });

  it("patches metric summaries", () => {
    const run = makeRun({
      metrics: { loss: { key: "loss", count: 10, last: 0.5, last_step: 9, last_time: 5, min: 0.4, max: 2 } },
    });
    const next = mergeMetricsEvent(run, {
      run_id: "r1",
      experiment_id: "e1",
      metrics: {
        loss: { count: 12, new: 2, last: 0.3, min: 0.3, max: 2, last_step: 11, last_time: 6 },
        acc: { count: 1, new: 1, last: "NaN", min: null, max: null, last_step: 0, last_time: 6 },
      },
    });
    expect(next.metrics.loss).toEqual({ key: "loss", count: 12, last: 0.3, last_step: 11, last_time: 6, min: 0.3, max: 2 });
    expect(next.metrics.acc.count).toBe(1);
    expect(next.metrics.acc.last).toBe("NaN");
    expect(run.metrics.loss.count).toBe(10); // not mutated
    expect(mergeMetricsEvent(run, { run_id: "x", experiment_id: "e1", metrics: {} })).toBe(run);
  });
});

describe("actions", () => {
  it("cancels only active Slurm runs", () => {
    expect(cancelBlocked({ status: "running", slurm_job_id: "1" })).toBeNull();
    expect(cancelBlocked({ status: "queued", slurm_job_id: "1" })).toBeNull();
    expect(cancelBlocked({ status: "finished", slurm_job_id: "1" })).toMatch(/ended/);
    expect(cancelBlocked({ status: "running", slurm_job_id: null })).toMatch(/no Slurm job/);
  });

  it("requeues only runs with a Slurm job", () => {
    expect(requeueBlocked({ status: "running", slurm_job_id: "1" })).toBeNull();
    expect(requeueBlocked({ status: "running", slurm_job_id: null })).toMatch(/no Slurm job/);
    expect(requeueBlocked({ status: "failed", slurm_job_id: "1" })).toMatch(/ended/);
  });
});

describe("artifacts", () => {
  const art = (id: string, kind: string, created_at: number, step: number | null = null): Artifact => ({
    id,
    run_id: "r1",
    name: id,
    path: `/p/${id}`,
    kind,
    created_at,
    size_bytes: null,
    sha256: null,
    step,
    stored: false,
  });

  it("marks the newest checkpoint", () => {
    expect(latestCheckpointId([art("a", "checkpoint", 1, 100), art("b", "checkpoint", 2, 50), art("c", "file", 3)])).toBe("b");
    expect(latestCheckpointId([art("a", "checkpoint", 1, 100), art("b", "checkpoint", 1, 200)])).toBe("b");
    expect(latestCheckpointId([art("c", "file", 3)])).toBeNull();
  });
});

describe("config tree", () => {
  it("indents nested keys and shows values as text", () => {
    const rows = configRows({ lr: 0.01, model: { depth: 18, layers: [1, 2] }, name: "<b>x</b>", off: null, e: {} });
    expect(rows).toEqual([
      { path: "lr", key: "lr", depth: 0, value: "0.01" },
      { path: "model", key: "model", depth: 0, value: null, size: "2 keys" },
      { path: "model.depth", key: "depth", depth: 1, value: "18" },
      { path: "model.layers", key: "layers", depth: 1, value: "[1,2]" },
      { path: "name", key: "name", depth: 0, value: "<b>x</b>" },
      { path: "off", key: "off", depth: 0, value: "null" },
      { path: "e", key: "e", depth: 0, value: "{}" },
    ]);
  });

  it("opens lists of objects", () => {
    expect(configRows({ stages: [{ n: 1 }] })).toEqual([
      { path: "stages", key: "stages", depth: 0, value: null, size: "1 item" },
      { path: "stages.0", key: "0", depth: 1, value: null, size: "1 key" },
      { path: "stages.0.n", key: "n", depth: 2, value: "1" },
    ]);
  });
});

describe("tags", () => {
  it("checks a new tag", () => {
    expect(checkTag("  fp16 ", [])).toEqual({ tag: "fp16" });
    expect(checkTag("  ", [])).toEqual({ error: "a tag cannot be empty" });
    expect(checkTag("a", ["a"])).toHaveProperty("error");
    expect(checkTag("x".repeat(201), [])).toHaveProperty("error");
  });
});
