// The cluster: nodes (CPU/GPU allocation), partitions, the queue (mine / all) with pending
// reasons and start estimates, and GPU-hours per experiment. Refreshes every 10 s and on live
// `run` events (throttled).
import { useEffect, useMemo, useRef, useState, type KeyboardEvent } from "react";

import { api, ApiError } from "../api";
import { GpuHoursTable } from "../cluster/GpuHoursTable";
import { NodeGrid } from "../cluster/NodeGrid";
import { PartitionTable } from "../cluster/PartitionTable";
import { QueueTable } from "../cluster/QueueTable";
import { queueCounts, throttle, updatedAgo, type ClusterView } from "../cluster/cluster";
import "../cluster/cluster.css";
import { ErrorMessage, Loading, StatusBadge, useAsync } from "../components/common";
import { formatRelative, formatTime } from "../format";
import { useLive } from "../live";
import { Link, setQuery, useRoute } from "../router";
import type { Project, Run } from "../types";

const REFRESH_MS = 10_000;
const LIVE_THROTTLE_MS = 3_000;

function useNow(ms = 1000): number {
  const [now, setNow] = useState(() => Date.now());
  useEffect(() => {
    const id = setInterval(() => setNow(Date.now()), ms);
    return () => clearInterval(id);
  }, [ms]);
  return now;
}

function NoExecutor({ error }: { error: ApiError }) {
  return (
    <div className="warning" role="alert" data-testid="cluster-no-executor">
      <strong>No cluster to show:</strong> {error.message}. The cluster view and launching jobs need a Slurm cluster (start the
      server with <code>RUNYARD_EXECUTOR=slurm</code> or <code>auto</code> on a host with Slurm) or the local executor (
      <code>RUNYARD_EXECUTOR=local</code>). Runs logged from your own jobs are still tracked: see the <Link to="/">projects</Link>.
    </div>
  );
}

type Tab = "mine" | "all";

function QueueTabs({ tab, onChange, mine, all }: { tab: Tab; onChange: (t: Tab) => void; mine: number; all: number }) {
  const refs = { mine: useRef<HTMLButtonElement>(null), all: useRef<HTMLButtonElement>(null) };
  const onKey = (e: KeyboardEvent) => {
    if (e.key === "ArrowLeft" || e.key === "ArrowRight" || e.key === "Home" || e.key === "End") {
      e.preventDefault();
      const next: Tab = e.key === "Home" ? "mine" : e.key === "End" ? "all" : tab === "mine" ? "all" : "mine";
      onChange(next);
      refs[next].current?.focus();
    }
  };
  const button = (t: Tab, label: string, count: number) => (
    <button
      ref={refs[t]}
      type="button"
      role="tab"
      id={`queue-tab-${t}`}
      aria-selected={tab === t}
      aria-controls="queue-panel"
      tabIndex={tab === t ? 0 : -1}
      onClick={() => onChange(t)}
      onKeyDown={onKey}
    >
      {label} <span className="cl-tab-count">{count}</span>
    </button>
  );
  return (
    <div className="tabs" role="tablist" aria-label="Queue">
      {button("mine", "Mine", mine)}
      {button("all", "All", all)}
    </div>
  );
}

const MY_RUNS_SHOWN = 10;

function MyActiveRuns({ runs, inQueue }: { runs: Run[]; inQueue: Set<string> }) {
  const [all, setAll] = useState(false);
  const others = runs.filter((r) => !inQueue.has(r.id));
  if (others.length === 0) return null;
  const shown = all ? others : others.slice(0, MY_RUNS_SHOWN);
  return (
    <section aria-labelledby="my-active-runs" className="cl-myruns">
      <h3 id="my-active-runs">My other active runs</h3>
      <p className="muted">Active runs of yours that are not in the cluster's queue (logged from elsewhere, or not yet seen by Slurm).</p>
      <table className="grid" data-testid="my-active-runs">
        <thead>
          <tr>
            <th scope="col">Run</th>
            <th scope="col">Status</th>
            <th scope="col">Slurm job</th>
            <th scope="col">Host</th>
            <th scope="col">Started</th>
          </tr>
        </thead>
        <tbody>
          {shown.map((r) => (
            <tr key={r.id}>
              <td>
                <Link to={`/runs/${r.id}`}>{r.name || r.id.slice(0, 8)}</Link>
              </td>
              <td>
                <StatusBadge status={r.status} reason={r.pending_reason} estimate={r.start_estimate} unknownSince={r.state_unknown_since} />
              </td>
              <td className="mono">{r.slurm_job_id ?? ""}</td>
              <td>{r.host ?? ""}</td>
              <td title={formatTime(r.started_at)}>{formatRelative(r.started_at)}</td>
            </tr>
          ))}
        </tbody>
      </table>
      {others.length > MY_RUNS_SHOWN ? (
        <button type="button" className="link-button cl-more" onClick={() => setAll((a) => !a)} aria-expanded={all}>
          {all ? "Show fewer" : `Show all ${others.length}`}
        </button>
      ) : null}
    </section>
  );
}

const PART_NAMES: Record<string, string> = { nodes: "nodes", partitions: "partitions", queue: "queue" };

export function ClusterPage() {
  const route = useRoute();
  const tab: Tab = route.query.get("queue") === "all" ? "all" : "mine";
  const setTab = (t: Tab) => {
    const q = new URLSearchParams(route.query);
    if (t === "mine") q.delete("queue");
    else q.set("queue", t);
    setQuery(q);
  };

  const cluster = useAsync((signal) => api.get<ClusterView>("/api/v1/cluster", undefined, signal), []);
  const myRuns = useAsync((signal) => api.get<{ runs: Run[] }>("/api/v1/me/runs", undefined, signal), []);
  const projects = useAsync((signal) => api.get<Project[]>("/api/v1/projects", undefined, signal), []);
  const now = useNow();

  const [receivedAt, setReceivedAt] = useState<number | null>(null);
  useEffect(() => {
    if (cluster.data) setReceivedAt(Date.now());
  }, [cluster.data]);

  const reloadRef = useRef(() => {});
  reloadRef.current = () => {
    cluster.reload();
    myRuns.reload();
  };
  const liveReload = useMemo(() => throttle(() => reloadRef.current(), LIVE_THROTTLE_MS), []);
  useEffect(() => () => liveReload.cancel(), [liveReload]);
  useEffect(() => {
    const id = setInterval(() => {
      if (typeof document === "undefined" || !document.hidden) reloadRef.current();
    }, REFRESH_MS);
    return () => clearInterval(id);
  }, []);
  useLive((e) => {
    if (e.type === "run" || e.type === "reset") liveReload();
  });

  const projectNames = useMemo(() => new Map((projects.data ?? []).map((p) => [p.id, p.name])), [projects.data]);

  const noExecutor = cluster.error instanceof ApiError && cluster.error.status === 503;
  const view = cluster.data;

  const header = (
    <div className="cl-header">
      <h1>Cluster</h1>
      {view ? (
        <span className="muted" data-testid="cluster-executor">
          {view.executor === "local" ? "local executor (this machine)" : `executor: ${view.executor}`}
        </span>
      ) : null}
      <span className="spacer" />
      {receivedAt ? (
        <span className="muted" data-testid="cluster-updated" title={view ? `snapshot taken ${formatTime(view.taken_at)}` : undefined}>
          {updatedAgo(receivedAt, now)}
        </span>
      ) : null}
      <button type="button" onClick={() => reloadRef.current()}>
        Refresh
      </button>
    </div>
  );

  if (noExecutor) {
    return (
      <div className="page cl-page">
        {header}
        <NoExecutor error={cluster.error as ApiError} />
        {myRuns.data ? <MyActiveRuns runs={myRuns.data.runs} inQueue={new Set()} /> : null}
      </div>
    );
  }
  if (!view) {
    return (
      <div className="page cl-page">
        {header}
        {cluster.error ? <ErrorMessage error={cluster.error} onRetry={cluster.reload} /> : <Loading what="Asking the cluster" />}
      </div>
    );
  }

  const counts = queueCounts(view.queue);
  const rows = tab === "mine" ? view.mine : view.queue;
  const mineIds = new Set(view.mine.flatMap((r) => r.run_ids));
  const errors = Object.entries(view.errors ?? {});

  return (
    <div className="page cl-page">
      {header}
      {cluster.error ? (
        <>
          <ErrorMessage error={cluster.error} onRetry={cluster.reload} />
          <p className="muted">Showing the last answer, {receivedAt ? updatedAgo(receivedAt, now).replace("updated ", "from ") : ""}.</p>
        </>
      ) : null}
      {errors.length ? (
        <div className="error" role="alert" data-testid="cluster-errors">
          <strong>Slurm did not answer every question:</strong>
          <ul>
            {errors.map(([part, message]) => (
              <li key={part}>
                {PART_NAMES[part] ?? part}: {message}
              </li>
            ))}
          </ul>
          The rest of the page is up to date.
        </div>
      ) : null}

      <section aria-labelledby="cl-nodes-h">
        <h2 id="cl-nodes-h">
          Nodes <span className="cl-sub">{view.nodes.length}</span>
        </h2>
        <NodeGrid nodes={view.nodes} />
      </section>

      <section aria-labelledby="cl-parts-h">
        <h2 id="cl-parts-h">Partitions</h2>
        <PartitionTable partitions={view.partitions} nodes={view.nodes} />
      </section>

      <section aria-labelledby="cl-queue-h">
        <h2 id="cl-queue-h">
          Queue{" "}
          <span className="cl-sub">
            {counts.pending} pending · {counts.running} running{counts.ended ? ` · ${counts.ended} just ended` : ""}
          </span>
        </h2>
        <QueueTabs tab={tab} onChange={setTab} mine={view.mine.length} all={view.queue.length} />
        <div role="tabpanel" id="queue-panel" aria-labelledby={`queue-tab-${tab}`}>
          <QueueTable
            rows={rows}
            now={now / 1000}
            emptyText={
              tab === "mine"
                ? `None of your runs is in the queue${view.queue.length ? ` (${view.queue.length} job${view.queue.length === 1 ? "" : "s"} under All)` : ""}.`
                : "The queue is empty."
            }
          />
          {tab === "mine" ? (
            myRuns.error ? (
              <ErrorMessage error={myRuns.error} onRetry={myRuns.reload} />
            ) : myRuns.data ? (
              <MyActiveRuns runs={myRuns.data.runs} inQueue={mineIds} />
            ) : null
          ) : null}
        </div>
      </section>

      <section aria-labelledby="cl-gpuh-h">
        <h2 id="cl-gpuh-h">GPU-hours by experiment</h2>
        <GpuHoursTable
          experiments={view.gpu_hours.experiments}
          projectNames={projectNames}
          scanned={view.gpu_hours.scanned_runs}
          truncated={view.gpu_hours.truncated}
        />
      </section>
    </div>
  );
}
