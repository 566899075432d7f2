// The run's history (GET /api/v1/runs/{id}/events): status changes, pending reasons, requeues,
// signals, each with who reported it, as a compact timeline, newest last.
import { api } from "../api";
import { ErrorMessage, Loading, useAsync } from "../components/common";
import { formatTime } from "../format";

interface RunHistoryEvent {
  id: number;
  time: number;
  source: string;
  kind: string;
  status: string | null;
  message: string;
  data: Record<string, unknown>;
}

const SOURCE_TITLE: Record<string, string> = {
  client: "reported by the training script",
  job: "reported by the batch script",
  slurm: "observed in Slurm",
  epilog: "reported by the Slurm epilog",
  user: "done by a user",
  server: "decided by the server",
};

export function History({ runId, refreshKey }: { runId: string; refreshKey: number }) {
  const { data, error, loading, reload } = useAsync(
    (signal) =>
      api.get<{ events: RunHistoryEvent[] }>(`/api/v1/runs/${encodeURIComponent(runId)}/events`, undefined, signal),
    [runId, refreshKey],
  );
  if (error) return <ErrorMessage error={error} onRetry={reload} />;
  if (!data) return loading ? <Loading what="Loading the history" /> : null;
  if (data.events.length === 0) return <p className="empty">No events recorded for this run yet.</p>;
  return (
    <ol className="timeline" data-testid="history">
      {data.events.map((e) => (
        <li key={e.id} className={`timeline-item kind-${e.kind}`}>
          <time className="timeline-time mono" dateTime={new Date(e.time * 1000).toISOString()}>
            {formatTime(e.time)}
          </time>
          <span className="timeline-source" title={SOURCE_TITLE[e.source] ?? e.source}>
            {e.source}
          </span>
          <span className="timeline-kind">{e.kind}</span>
          {e.status ? <span className="timeline-status">→ {e.status}</span> : null}
          {e.message ? <span className="timeline-message">{e.message}</span> : null}
        </li>
      ))}
    </ol>
  );
}
