import { afterEach, describe, expect, it, vi } from "vitest";

import {
  elapsedSeconds,
  explainReason,
  formatLimit,
  formatMemMb,
  nodeAllocation,
  nodeState,
  percent,
  queueCounts,
  queueGroup,
  sortNodes,
  sortQueue,
  summarizePartition,
  throttle,
  timeUsedFraction,
  updatedAgo,
  type ClusterNode,
  type ClusterPartition,
  type QueueRow,
} from "./cluster";

function node(patch: Partial<ClusterNode>): ClusterNode {
  return {
    name: "n1",
    state: "idle",
    cpus_alloc: 0,
    cpus_total: 4,
    gpus_used: 0,
    gpus_total: 4,
    memory_alloc_mb: 0,
    memory_total_mb: 4000,
    partitions: ["debug"],
    reason: null,
    ...patch,
  };
}

function row(patch: Partial<QueueRow>): QueueRow {
  return {
    id: String(patch.job_id ?? 1),
    job_id: 1,
    array_job_id: null,
    array_task_id: null,
    name: "job",
    user: "me",
    state: "RUNNING",
    reason: null,
    partition: "debug",
    nodes: "n1",
    gpus_per_node: 0,
    time_limit_min: 10,
    submit_time: 100,
    start_time: 200,
    start_estimate: null,
    restart_count: 0,
    run_id: null,
    run_ids: [],
    ...patch,
  };
}

describe("node states", () => {
  it("classifies Slurm's states", () => {
    expect(nodeState("idle")).toEqual({ kind: "idle", label: "idle", usable: true });
    expect(nodeState("MIXED").kind).toBe("mixed");
    expect(nodeState("allocated").kind).toBe("allocated");
    expect(nodeState("completing").kind).toBe("allocated");
    expect(nodeState("down").kind).toBe("down");
    expect(nodeState("idle*").kind).toBe("down");
    expect(nodeState("down+drain").kind).toBe("drain");
    expect(nodeState("drained")).toEqual({ kind: "drain", label: "drained", usable: false });
    expect(nodeState("mixed+drain").label).toBe("draining");
    expect(nodeState("draining").label).toBe("draining");
    expect(nodeState("FAIL").kind).toBe("down");
    expect(nodeState("maint")).toEqual({ kind: "other", label: "maint", usable: false });
    expect(nodeState("")).toEqual({ kind: "other", label: "unknown", usable: true });
  });
});

describe("allocation", () => {
  it("gives whole percentages, 0 without a total", () => {
    expect(percent(1, 3)).toBe(33);
    expect(percent(2, 3)).toBe(67);
    expect(percent(5, 4)).toBe(100);
    expect(percent(1, 0)).toBe(0);
    expect(percent(-1, 4)).toBe(0);
  });

  it("computes a node's allocation", () => {
    expect(nodeAllocation(node({ cpus_alloc: 3, gpus_used: 1, memory_alloc_mb: 1000 }))).toEqual({
      cpuPct: 75,
      gpuPct: 25,
      memPct: 25,
      cpusIdle: 1,
      gpusIdle: 3,
    });
    expect(nodeAllocation(node({ gpus_total: 0 })).gpuPct).toBe(0);
  });

  it("sorts node names with numbers in order and formats memory", () => {
    expect(sortNodes([node({ name: "n10" }), node({ name: "n2" }), node({ name: "a1" })]).map((n) => n.name)).toEqual(["a1", "n2", "n10"]);
    expect(formatMemMb(4000)).toBe("3.9 GB");
    expect(formatMemMb(512)).toBe("512 MB");
    expect(formatMemMb(262144)).toBe("256 GB");
    expect(formatMemMb(2048)).toBe("2 GB");
  });
});

describe("partitions", () => {
  const part: ClusterPartition = {
    name: "debug",
    state: "UP",
    default: true,
    max_time_min: 10,
    default_time_min: 5,
    nodes: "n[1-3]",
    total_nodes: 3,
    total_cpus: 12,
    gpus: 12,
    memory_mb: 12000,
  };
  it("sums the idle CPUs and GPUs of usable nodes", () => {
    const nodes = [
      node({ name: "n1", cpus_alloc: 2, gpus_used: 1 }),
      node({ name: "n2", state: "drained", reason: "broken fan" }),
      node({ name: "n3", partitions: ["other"] }),
    ];
    const s = summarizePartition(part, nodes);
    expect(s).toMatchObject({ up: true, nodeCount: 2, cpusTotal: 8, cpusIdle: 2, gpusTotal: 8, gpusIdle: 3, unusableNodes: 1 });
  });

  it("counts nothing idle in a down partition and falls back to its totals", () => {
    expect(summarizePartition({ ...part, state: "DOWN" }, [node({})]).cpusIdle).toBe(0);
    expect(summarizePartition(part, [])).toMatchObject({ nodeCount: 3, cpusTotal: 12, gpusTotal: 12 });
  });
});

describe("the queue", () => {
  it("groups states", () => {
    expect(queueGroup({ state: "PENDING" })).toBe("pending");
    expect(queueGroup({ state: "RUNNING" })).toBe("running");
    expect(queueGroup({ state: "COMPLETING" })).toBe("running");
    expect(queueGroup({ state: "COMPLETED" })).toBe("ended");
    expect(queueGroup({ state: "FAILED" })).toBe("ended");
  });

  it("puts pending first, soonest estimate first, then running, then ended", () => {
    const rows = [
      row({ job_id: 1, state: "COMPLETED" }),
      row({ job_id: 2, state: "RUNNING", start_time: 500 }),
      row({ job_id: 3, state: "PENDING", start_time: null, start_estimate: null, submit_time: 50 }),
      row({ job_id: 4, state: "PENDING", start_time: null, start_estimate: 9000 }),
      row({ job_id: 5, state: "RUNNING", start_time: 100 }),
      row({ job_id: 6, state: "PENDING", start_time: null, start_estimate: 8000 }),
      row({ job_id: 7, state: "PENDING", start_time: null, start_estimate: null, submit_time: 10 }),
      row({ job_id: 8, state: "FAILED" }),
    ];
    expect(sortQueue(rows).map((r) => r.job_id)).toEqual([6, 4, 7, 3, 5, 2, 8, 1]);
    expect(rows[0].job_id).toBe(1); // not sorted in place
    expect(queueCounts(rows)).toEqual({ pending: 4, running: 2, ended: 2 });
  });

  it("orders array tasks of one job by task id", () => {
    const rows = [
      row({ job_id: 11, array_job_id: 9, array_task_id: 2, start_time: 100 }),
      row({ job_id: 9, array_job_id: 9, array_task_id: 0, start_time: 100 }),
      row({ job_id: 10, array_job_id: 9, array_task_id: 1, start_time: 100 }),
    ];
    expect(sortQueue(rows).map((r) => r.array_task_id)).toEqual([0, 1, 2]);
    // ended: newest array first, its tasks together in task order
    const ended = [
      row({ job_id: 12, array_job_id: 9, array_task_id: 3, state: "COMPLETED" }),
      row({ job_id: 11, state: "COMPLETED" }),
      row({ job_id: 9, array_job_id: 9, array_task_id: 0, state: "COMPLETED" }),
      row({ job_id: 8, state: "FAILED" }),
    ];
    expect(sortQueue(ended).map((r) => r.job_id)).toEqual([11, 9, 12, 8]);
  });

  it("explains reasons and times", () => {
    expect(explainReason("Resources")).toBe("waiting for free resources");
    expect(explainReason("SomethingNew")).toBe("");
    expect(explainReason(null)).toBe("");
    expect(formatLimit(null)).toBe("no limit");
    expect(formatLimit(90)).toBe("1 h 30 min");
    expect(formatLimit(2880)).toBe("2 d");
    expect(formatLimit(0)).toBe("0 min");
    expect(elapsedSeconds(row({ start_time: 100 }), 160)).toBe(60);
    expect(elapsedSeconds(row({ state: "PENDING", start_time: 100 }), 160)).toBeNull();
    expect(timeUsedFraction(row({ start_time: 100, time_limit_min: 2 }), 160)).toBe(0.5);
    expect(timeUsedFraction(row({ start_time: 100, time_limit_min: null }), 160)).toBeNull();
    expect(updatedAgo(1000, 1500)).toBe("updated just now");
    expect(updatedAgo(1000, 4000)).toBe("updated 3 s ago");
    expect(updatedAgo(0, 180_000)).toBe("updated 3 min ago");
  });
});

describe("throttle", () => {
  afterEach(() => vi.useRealTimers());
  it("runs at once, then folds calls into one trailing call", () => {
    vi.useFakeTimers();
    let now = 0;
    const fn = vi.fn();
    const t = throttle(fn, 1000, () => now);
    t();
    expect(fn).toHaveBeenCalledTimes(1);
    now = 100;
    t();
    t();
    t();
    expect(fn).toHaveBeenCalledTimes(1);
    now = 1000;
    vi.advanceTimersByTime(900);
    expect(fn).toHaveBeenCalledTimes(2);
    now = 1500;
    t();
    t.cancel();
    vi.advanceTimersByTime(1000);
    expect(fn).toHaveBeenCalledTimes(2);
  });
});
