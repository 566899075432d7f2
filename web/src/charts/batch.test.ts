import { describe, expect, it } from "vitest";

import { ApiError } from "../api";
import { entryResult, SeriesBatcher } from "./batch";
import { RequestQueue } from "./queue";

const series = (runId: string) => ({ run_id: runId, key: "loss", steps: [0], times: [1], values: [0.5], total: 1, downsampled: false });

describe("series batches", () => {
  it("asks once for every run that asked in the same moment, per query", async () => {
    const calls: { path: string; query: Record<string, unknown> }[] = [];
    const get = (async (path: string, query?: Record<string, unknown>) => {
      calls.push({ path, query: query ?? {} });
      const ids = (query?.run_id as string[]) ?? [];
      return {
        series: ids.map((id) =>
          id === "nokey"
            ? { run_id: id, key: "loss", error: { code: "not_found", message: "no metric", field: "key" } }
            : id === "gone"
              ? { run_id: id, key: "loss", error: { code: "not_found", message: "run 'gone' not found", field: "run_id" } }
              : series(id),
        ),
      };
    }) as never;
    const batcher = new SeriesBatcher(new RequestQueue(6), get);
    const signal = new AbortController().signal;
    const results = await Promise.allSettled([
      batcher.request("a", "loss", { max_points: 100 }, 0, signal),
      batcher.request("b", "loss", { max_points: 100 }, 0, signal),
      batcher.request("nokey", "loss", { max_points: 100 }, 0, signal),
      batcher.request("gone", "loss", { max_points: 100 }, 0, signal),
      batcher.request("a", "loss", { max_points: 100, step_min: 5 }, 0, signal),
    ]);
    expect(calls).toHaveLength(2); // the overview of four runs, and the live tail apart
    expect(calls[0]).toEqual({ path: "/api/v1/series", query: { key: "loss", run_id: ["a", "b", "nokey", "gone"], max_points: 100 } });
    expect(calls[1].query).toMatchObject({ run_id: ["a"], step_min: 5 });
    expect(results[0]).toMatchObject({ status: "fulfilled", value: { run_id: "a", values: [0.5] } });
    expect(results[2]).toEqual({ status: "fulfilled", value: null }); // no such metric: an empty line
    expect(results[3].status).toBe("rejected");
    expect((results[3] as PromiseRejectedResult).reason).toBeInstanceOf(ApiError);
    expect((results[3] as PromiseRejectedResult).reason.field).toBe("run_id");
  });

  it("an aborted caller is rejected and not asked for", async () => {
    const asked: string[][] = [];
    const get = (async (_: string, query?: Record<string, unknown>) => {
      asked.push(query?.run_id as string[]);
      return { series: (query?.run_id as string[]).map(series) };
    }) as never;
    const batcher = new SeriesBatcher(new RequestQueue(6), get);
    const gone = new AbortController();
    const kept = batcher.request("a", "loss", { max_points: 10 }, 0, new AbortController().signal);
    const dropped = batcher.request("b", "loss", { max_points: 10 }, 0, gone.signal);
    gone.abort();
    await expect(dropped).rejects.toMatchObject({ name: "AbortError" });
    await expect(kept).resolves.toMatchObject({ run_id: "a" });
    expect(asked).toEqual([["a"]]);
  });

  it("reads one entry", () => {
    expect(entryResult(undefined, "x")).toBeInstanceOf(ApiError);
    expect(entryResult({ run_id: "x", error: { code: "not_found", message: "m", field: "key" } }, "x")).toBeNull();
  });
});
