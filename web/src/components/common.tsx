// Small shared pieces: status badge, error box, loading line, the fetch hook, error boundary.
import { Component, useCallback, useEffect, useRef, useState, type ReactNode } from "react";

import { ApiError } from "../api";
import { formatRelative } from "../format";

const STATUS_CLASS: Record<string, string> = {
  created: "muted",
  queued: "wait",
  requeued: "wait",
  running: "run",
  finished: "ok",
  failed: "bad",
  oom: "bad",
  timeout: "bad",
  cancelled: "warn",
  node_fail: "bad",
  pruned: "warn",
};

export function StatusBadge({
  status,
  reason,
  estimate,
  unknownSince,
}: {
  status: string;
  reason?: string | null;
  estimate?: number | null;
  unknownSince?: number | null;
}) {
  const waiting = status === "queued" || status === "requeued";
  const title = [
    waiting && reason ? `pending: ${reason}` : "",
    waiting && estimate ? `estimated start ${formatRelative(estimate)}` : "",
    unknownSince ? `Slurm unreachable since ${formatRelative(unknownSince)}` : "",
  ]
    .filter(Boolean)
    .join("; ");
  return (
    <span className="status-cell" title={title || undefined}>
      <span className={`badge badge-${STATUS_CLASS[status] ?? "muted"}`} data-status={status}>
        {status}
        {unknownSince ? " ?" : ""}
      </span>
      {waiting && reason ? <span className="pending-reason">{reason}</span> : null}
      {waiting && estimate ? <span className="pending-reason">start {formatRelative(estimate)}</span> : null}
    </span>
  );
}

export function errorText(error: unknown): string {
  if (error instanceof ApiError) return error.field ? `${error.message} (${error.field})` : error.message;
  if (error instanceof Error) return error.message;
  return String(error);
}

export function ErrorMessage({ error, onRetry }: { error: unknown; onRetry?: () => void }) {
  if (!error) return null;
  return (
    <div className="error" role="alert">
      <strong>{error instanceof ApiError && error.status ? `Error ${error.status}: ` : "Error: "}</strong>
      {errorText(error)}
      {onRetry ? (
        <button type="button" className="link-button" onClick={onRetry}>
          Retry
        </button>
      ) : null}
    </div>
  );
}

export function Loading({ what = "Loading" }: { what?: string }) {
  return (
    <p className="loading" aria-live="polite">
      {what}…
    </p>
  );
}

export interface Async<T> {
  data: T | undefined;
  error: unknown;
  loading: boolean;
  reload: () => void;
  setData: (fn: (old: T | undefined) => T | undefined) => void;
}

/** Fetch with `load` whenever `deps` change; stale answers (an older request) are dropped. */
export function useAsync<T>(load: (signal: AbortSignal) => Promise<T>, deps: unknown[]): Async<T> {
  const [data, setDataState] = useState<T | undefined>(undefined);
  const [error, setError] = useState<unknown>(null);
  const [loading, setLoading] = useState(true);
  const [tick, setTick] = useState(0);
  const loadRef = useRef(load);
  loadRef.current = load;
  useEffect(() => {
    const controller = new AbortController();
    setLoading(true);
    loadRef
      .current(controller.signal)
      .then((value) => {
        if (controller.signal.aborted) return;
        setDataState(value);
        setError(null);
        setLoading(false);
      })
      .catch((err) => {
        if (controller.signal.aborted || (err as Error).name === "AbortError") return;
        setError(err);
        setLoading(false);
      });
    return () => controller.abort();
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [...deps, tick]);
  const reload = useCallback(() => setTick((t) => t + 1), []);
  const setData = useCallback((fn: (old: T | undefined) => T | undefined) => setDataState(fn), []);
  return { data, error, loading, reload, setData };
}

export class ErrorBoundary extends Component<{ children: ReactNode }, { error: unknown }> {
  state = { error: null as unknown };

  static getDerivedStateFromError(error: unknown) {
    return { error };
  }

  render() {
    if (this.state.error) {
      return (
        <div className="page">
          <ErrorMessage error={this.state.error} onRetry={() => this.setState({ error: null })} />
          <p>This page hit a bug. Other pages still work; the error is in the browser console.</p>
        </div>
      );
    }
    return this.props.children;
  }
}
