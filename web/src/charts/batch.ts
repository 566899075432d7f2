// Coalesces the series requests made in one moment (every run of a chart asks at once) into one
// GET /api/v1/series per (key, max_points, step range): one round trip and one authentication
// for a 20-run overlay instead of 20. Each caller still gets its own promise; a run without
// the metric answers null, any other per-run error rejects that caller only.
import { api, ApiError } from "../api";
import type { Series } from "../types";
import type { RequestQueue } from "./queue";

export interface SeriesQuery {
  max_points: number;
  step_min?: number;
  step_max?: number;
}

interface SeriesEntry extends Partial<Series> {
  run_id: string;
  error?: { code: string; message: string; field: string | null };
}

interface Waiter {
  runId: string;
  priority: number;
  signal: AbortSignal;
  resolve: (s: Series | null) => void;
  reject: (err: unknown) => void;
}

interface Group {
  key: string;
  query: SeriesQuery;
  waiters: Waiter[];
}

export const MAX_RUNS_PER_REQUEST = 100; // the server's limit

function abortError(): Error {
  const err = new Error("aborted");
  err.name = "AbortError";
  return err;
}

/** The answer of one run in a batch: its series, null when it has no such metric, or an error. */
export function entryResult(entry: SeriesEntry | undefined, runId: string): Series | null | ApiError {
  if (!entry) return new ApiError(500, "internal", `the server sent no series for run ${runId}`);
  if (entry.error) {
    if (entry.error.code === "not_found" && entry.error.field === "key") return null;
    return new ApiError(404, entry.error.code, entry.error.message, entry.error.field);
  }
  return entry as Series;
}

export class SeriesBatcher {
  private groups = new Map<string, Group>();
  private scheduled = false;

  constructor(
    private readonly queue: RequestQueue,
    private readonly get: typeof api.get = api.get,
  ) {}

  request(runId: string, key: string, query: SeriesQuery, priority: number, signal: AbortSignal): Promise<Series | null> {
    return new Promise((resolve, reject) => {
      if (signal.aborted) return reject(abortError());
      const id = JSON.stringify([key, query.max_points, query.step_min ?? null, query.step_max ?? null]);
      let group = this.groups.get(id);
      if (!group) {
        group = { key, query, waiters: [] };
        this.groups.set(id, group);
      }
      group.waiters.push({ runId, priority, signal, resolve, reject });
      if (!this.scheduled) {
        this.scheduled = true;
        setTimeout(() => this.flush(), 0);
      }
    });
  }

  private flush(): void {
    this.scheduled = false;
    const groups = [...this.groups.values()];
    this.groups.clear();
    for (const group of groups) {
      const waiters = group.waiters.filter((w) => {
        if (w.signal.aborted) w.reject(abortError());
        return !w.signal.aborted;
      });
      for (let i = 0; i < waiters.length; i += MAX_RUNS_PER_REQUEST) this.send(group, waiters.slice(i, i + MAX_RUNS_PER_REQUEST));
    }
  }

  private send(group: Group, waiters: Waiter[]): void {
    if (!waiters.length) return;
    const runIds = [...new Set(waiters.map((w) => w.runId))];
    const controller = new AbortController(); // aborted when every caller gave up
    const onAbort = () => {
      if (waiters.every((w) => w.signal.aborted)) controller.abort();
    };
    waiters.forEach((w) => w.signal.addEventListener("abort", onAbort, { once: true }));
    this.queue
      .add({
        priority: Math.min(...waiters.map((w) => w.priority)),
        signal: controller.signal,
        run: () =>
          this.get<{ series: SeriesEntry[] }>(
            "/api/v1/series",
            { key: group.key, run_id: runIds, ...group.query },
            controller.signal,
          ),
      })
      .then((body) => {
        const byRun = new Map(body.series.map((e) => [e.run_id, e]));
        for (const w of waiters) {
          if (w.signal.aborted) {
            w.reject(abortError());
            continue;
          }
          const result = entryResult(byRun.get(w.runId), w.runId);
          if (result instanceof ApiError) w.reject(result);
          else w.resolve(result);
        }
      })
      .catch((err) => waiters.forEach((w) => w.reject(w.signal.aborted ? abortError() : err)));
  }
}
