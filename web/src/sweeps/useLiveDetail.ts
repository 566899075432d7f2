// A sweep's or pipeline's detail, kept current: refetched (at most once a second) when a run of
// it changes or a new run appears in its experiment, and polled every 5 s while the live stream
// is not connected and the sweep or pipeline still runs.
import { useCallback, useEffect, useRef } from "react";

import { api } from "../api";
import { useAsync, type Async } from "../components/common";
import { useLive, useLiveState } from "../live";
import type { MetricsEventData, RunEventData } from "../types";

interface Detail {
  experiment_id: string;
  created_at: number;
  state: string;
}

export interface LiveDetailOptions<T> {
  /** The run ids that belong to it. */
  runIds: (detail: T) => ReadonlySet<string>;
  /** Apply a run event of one of its runs at once (before the refetch). */
  onRun?: (detail: T, event: RunEventData) => T;
  /** Apply a metrics event of one of its runs; a changed detail also refetches, within 5 s. */
  onMetrics?: (detail: T, event: MetricsEventData) => T;
}

export const REFETCH_MS = 1000;
export const SLOW_REFETCH_MS = 5000;
export const POLL_MS = 5000;

/** `refetch(minGap)`: call `fn` as soon as `minGap` ms have passed since its last call (at once
 *  when they have); calls while one is pending join it, or bring it forward. */
function useRefetch(fn: () => void): (minGap: number) => void {
  const fnRef = useRef(fn);
  fnRef.current = fn;
  const last = useRef(-Infinity);
  const timer = useRef<ReturnType<typeof setTimeout> | null>(null);
  const due = useRef(Infinity);
  useEffect(
    () => () => {
      if (timer.current) clearTimeout(timer.current);
    },
    [],
  );
  return useCallback((minGap: number) => {
    const now = Date.now();
    const at = Math.max(now, last.current + minGap);
    if (timer.current !== null && due.current <= at) return;
    if (timer.current !== null) clearTimeout(timer.current);
    due.current = at;
    timer.current = setTimeout(() => {
      timer.current = null;
      due.current = Infinity;
      last.current = Date.now();
      fnRef.current();
    }, at - now);
  }, []);
}

export function useLiveDetail<T extends Detail>(url: string, options: LiveDetailOptions<T>): Async<T> {
  const q = useAsync((signal) => api.get<T>(url, undefined, signal), [url]);
  const { reload, setData } = q;
  const schedule = useRefetch(reload);
  const refetch = () => schedule(REFETCH_MS);
  const slowRefetch = () => schedule(SLOW_REFETCH_MS);
  const dataRef = useRef(q.data);
  dataRef.current = q.data;
  const optsRef = useRef(options);
  optsRef.current = options;
  const idsRef = useRef<{ of: T | undefined; ids: ReadonlySet<string> }>({ of: undefined, ids: new Set() });
  const idsOf = (d: T) => {
    if (idsRef.current.of !== d) idsRef.current = { of: d, ids: optsRef.current.runIds(d) };
    return idsRef.current.ids;
  };

  useLive((e) => {
    if (e.type === "reset") return refetch();
    const d = dataRef.current;
    if (!d || e.data.experiment_id !== d.experiment_id) return;
    const mine = idsOf(d).has(e.data.run_id);
    if (e.type === "run") {
      if (mine) {
        const apply = optsRef.current.onRun;
        if (apply) setData((old) => (old ? apply(old, e.data) : old));
        refetch();
      } else if (d.state === "running" && e.data.created_at >= d.created_at - 1) {
        refetch(); // perhaps a new trial or step of it
      }
    } else if (e.type === "metrics" && mine) {
      const apply = optsRef.current.onMetrics;
      if (!apply) return;
      if (apply(d, e.data) === d) return; // not a change of what it shows
      setData((old) => (old ? apply(old, e.data) : old));
      slowRefetch();
    }
  });

  const liveState = useLiveState();
  const running = q.data?.state === "running";
  useEffect(() => {
    if (liveState === "open" || !running) return;
    const id = setInterval(reload, POLL_MS);
    return () => clearInterval(id);
  }, [liveState, running, reload]);

  return q;
}
