// A run's artifacts: checkpoints (the newest marked "latest") and files; stored ones download.
import { api } from "../api";
import { ErrorMessage, Loading, useAsync } from "../components/common";
import { formatBytes, formatRelative, formatTime } from "../format";
import type { Artifact } from "../types";
import { latestCheckpointId } from "./runDetails";

export function Artifacts({ runId, refreshKey }: { runId: string; refreshKey: number }) {
  const { data, error, loading, reload } = useAsync(
    (signal) => api.get<Artifact[]>(`/api/v1/runs/${encodeURIComponent(runId)}/artifacts`, undefined, signal),
    [runId, refreshKey],
  );
  if (error) return <ErrorMessage error={error} onRetry={reload} />;
  if (!data) return loading ? <Loading what="Loading artifacts" /> : null;
  if (data.length === 0) return <p className="empty">No artifacts recorded.</p>;
  const latest = latestCheckpointId(data);
  const rows = [...data].sort((a, b) => b.created_at - a.created_at);
  return (
    <div className="table-wrap">
      <table className="grid artifacts" data-testid="artifacts">
        <thead>
          <tr>
            <th scope="col">Name</th>
            <th scope="col">Kind</th>
            <th scope="col" className="num">
              Step
            </th>
            <th scope="col" className="num">
              Size
            </th>
            <th scope="col">Recorded</th>
            <th scope="col">Where</th>
          </tr>
        </thead>
        <tbody>
          {rows.map((a) => (
            <tr key={a.id} data-kind={a.kind}>
              <td>
                <span className="artifact-name">{a.name}</span>
                {a.id === latest ? (
                  <span className="badge badge-ok chip-gap" title="The newest checkpoint">
                    latest
                  </span>
                ) : null}
              </td>
              <td>
                {a.kind === "checkpoint" ? <span className="badge badge-run">checkpoint</span> : <span>{a.kind}</span>}
              </td>
              <td className="num">{a.step ?? ""}</td>
              <td className="num">{formatBytes(a.size_bytes)}</td>
              <td title={formatTime(a.created_at)}>{formatRelative(a.created_at)}</td>
              <td className="artifact-where">
                {a.stored ? (
                  <a href={`/api/v1/artifacts/${encodeURIComponent(a.id)}/download`} download={a.name} aria-label={`Download ${a.name}`}>
                    Download
                  </a>
                ) : (
                  <span className="mono" title="Recorded by path on shared storage">
                    {a.path}
                  </span>
                )}
                {a.sha256 ? (
                  <span className="muted mono chip-gap" title={`sha256 ${a.sha256}`}>
                    {a.sha256.slice(0, 12)}
                  </span>
                ) : null}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}
