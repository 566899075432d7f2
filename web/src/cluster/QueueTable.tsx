// The queue: pending jobs first with their reason and Slurm's start estimate, then running
// ones with elapsed / limit, then jobs that have just ended.
import { formatDuration, formatRelative, formatTime } from "../format";
import { Link } from "../router";
import { elapsedSeconds, explainReason, formatLimit, queueGroup, sortQueue, timeUsedFraction, type QueueRow } from "./cluster";

const STATE_CLASS: Record<string, string> = {
  PENDING: "wait",
  REQUEUED: "wait",
  RUNNING: "run",
  CONFIGURING: "run",
  COMPLETING: "run",
  COMPLETED: "ok",
  FAILED: "bad",
  TIMEOUT: "bad",
  OUT_OF_MEMORY: "bad",
  NODE_FAIL: "bad",
  BOOT_FAIL: "bad",
  DEADLINE: "bad",
  PREEMPTED: "warn",
  CANCELLED: "warn",
  SUSPENDED: "warn",
};

function RunCell({ row }: { row: QueueRow }) {
  if (!row.run_id) return <span className="muted">—</span>;
  const more = row.run_ids.length - 1;
  return (
    <>
      <Link to={`/runs/${row.run_id}`} className="mono" aria-label={`Run ${row.run_id}`}>
        {row.run_id.slice(0, 8)}
      </Link>
      {more > 0 ? <span className="muted"> +{more} more</span> : null}
    </>
  );
}

function StartCell({ row, now }: { row: QueueRow; now: number }) {
  const group = queueGroup(row);
  if (group === "pending") {
    if (row.start_estimate) {
      return (
        <span className="cl-estimate" title={`Slurm's expected start: ${formatTime(row.start_estimate)}`}>
          {row.start_estimate <= now ? "any moment" : formatRelative(row.start_estimate, now)}
        </span>
      );
    }
    return <span className="muted">not estimated yet</span>;
  }
  if (row.start_time) {
    return <span title={formatTime(row.start_time)}>started {formatRelative(row.start_time, now)}</span>;
  }
  return <span className="muted">—</span>;
}

function ElapsedCell({ row, now }: { row: QueueRow; now: number }) {
  const elapsed = elapsedSeconds(row, now);
  const frac = timeUsedFraction(row, now);
  const limit = formatLimit(row.time_limit_min);
  if (elapsed === null || queueGroup(row) !== "running") return <span className="muted">limit {limit}</span>;
  return (
    <span className="cl-elapsed">
      {formatDuration(elapsed)} / {limit}
      {frac !== null ? (
        <span className="cl-bar cl-bar-small" aria-hidden="true">
          <span className={`cl-bar-fill${frac > 0.9 ? " cl-bar-late" : ""}`} style={{ width: `${Math.round(frac * 100)}%` }} />
        </span>
      ) : null}
    </span>
  );
}

export function QueueTable({ rows, now, emptyText }: { rows: QueueRow[]; now: number; emptyText: string }) {
  if (rows.length === 0) return <p className="empty">{emptyText}</p>;
  return (
    <div className="cl-scroll">
      <table className="grid cl-queue" data-testid="queue-table">
        <thead>
          <tr>
            <th scope="col">Job</th>
            <th scope="col">Run</th>
            <th scope="col">Name</th>
            <th scope="col">User</th>
            <th scope="col">State</th>
            <th scope="col">Partition</th>
            <th scope="col">Nodes / pending reason</th>
            <th scope="col">Start</th>
            <th scope="col">Elapsed / limit</th>
          </tr>
        </thead>
        <tbody>
          {sortQueue(rows).map((row) => {
            const group = queueGroup(row);
            const explained = explainReason(row.reason);
            return (
              <tr key={row.id} className={`cl-q-${group}`} data-job={row.id} data-state={row.state}>
                <td className="mono">{row.id}</td>
                <td>
                  <RunCell row={row} />
                </td>
                <td className="cl-name" title={row.name}>
                  {row.name}
                </td>
                <td>{row.user ?? ""}</td>
                <td>
                  <span className={`badge badge-${STATE_CLASS[row.state.toUpperCase()] ?? "muted"}`}>{row.state.toLowerCase()}</span>
                  {row.restart_count ? <span className="muted" title="restarts (requeues)"> ↻{row.restart_count}</span> : null}
                </td>
                <td>{row.partition ?? ""}</td>
                <td className="cl-reason-cell">
                  {group === "pending" ? (
                    <>
                      <strong className="cl-reason">{row.reason ?? "pending"}</strong>
                      {explained ? <span className="cl-reason-text">{explained}</span> : null}
                    </>
                  ) : (
                    <span className="mono">{row.nodes ?? ""}</span>
                  )}
                </td>
                <td>
                  <StartCell row={row} now={now} />
                </td>
                <td>
                  <ElapsedCell row={row} now={now} />
                </td>
              </tr>
            );
          })}
        </tbody>
      </table>
    </div>
  );
}
