// How the run used its allocation (GET /api/v1/runs/{id}/efficiency), with the server's advice.
import { api, ApiError } from "../api";
import { ErrorMessage, Loading, useAsync } from "../components/common";
import { formatBytes, formatDuration } from "../format";

type Part = Record<string, unknown>;

interface Report {
  run_id: string;
  status: string;
  slurm_state: string | null;
  final: boolean;
  time: Part;
  cpu: Part;
  memory: Part;
  gpu: Part;
  advice: string[];
}

function n(part: Part, key: string): number | null {
  const v = part[key];
  return typeof v === "number" && Number.isFinite(v) ? v : null;
}

function s(part: Part, key: string): string | null {
  const v = part[key];
  return typeof v === "string" && v ? v : null;
}

function pct(fraction: number | null): string {
  return fraction === null ? "" : `${Math.round(fraction * 100)}%`;
}

interface Row {
  label: string;
  value: string;
  fraction: number | null;
  source: string | null;
  note: string | null;
}

function efficiencyRows(r: Report): Row[] {
  const t = r.time;
  const elapsed = n(t, "elapsed_s");
  const limit = n(t, "time_limit_min");
  const time: Row = {
    label: "Time",
    value:
      elapsed === null
        ? "—"
        : `${formatDuration(elapsed)}${limit ? ` of ${formatDuration(limit * 60)}` : ""}${
            n(t, "fraction_used") !== null ? ` (${pct(n(t, "fraction_used"))})` : ""
          }`,
    fraction: n(t, "fraction_used"),
    source: null,
    note: s(t, "note"),
  };
  const c = r.cpu;
  const avg = n(c, "avg_cpus_used");
  const alloc = n(c, "alloc_cpus");
  const cpu: Row = {
    label: "CPU",
    value:
      avg === null
        ? alloc === null
          ? "—"
          : `${alloc} allocated`
        : `${avg.toFixed(1)}${alloc ? ` of ${alloc}` : ""} CPUs busy${n(c, "efficiency") !== null ? ` (${pct(n(c, "efficiency"))})` : ""}`,
    fraction: n(c, "efficiency"),
    source: s(c, "source"),
    note: s(c, "note"),
  };
  const m = r.memory;
  const rss = n(m, "max_rss_bytes");
  const req = n(m, "req_mem_bytes");
  const memory: Row = {
    label: "Memory",
    value:
      rss === null
        ? req === null
          ? "—"
          : `${formatBytes(req)} asked`
        : `peak ${formatBytes(rss)}${req ? ` of ${formatBytes(req)}` : ""}${
            n(m, "fraction_used") !== null ? ` (${pct(n(m, "fraction_used"))})` : ""
          }`,
    fraction: n(m, "fraction_used"),
    source: s(m, "source"),
    note: s(m, "note"),
  };
  const g = r.gpu;
  const gpus = n(g, "gpus");
  const util = n(g, "util_mean_pct");
  const hours = n(g, "gpu_hours");
  const gpu: Row = {
    label: "GPU",
    value:
      gpus === null
        ? "—"
        : `${gpus} GPU${gpus === 1 ? "" : "s"}${util !== null ? `, ${Math.round(util)}% average utilisation` : ""}${
            hours !== null ? `, ${hours.toFixed(2)} GPU-hours` : ""
          }`,
    fraction: util === null ? null : util / 100,
    source: null,
    note: s(g, "note"),
  };
  return [time, cpu, memory, gpu];
}

export function Efficiency({ runId, refreshKey }: { runId: string; refreshKey: string }) {
  const { data, error, loading, reload } = useAsync(
    (signal) => api.get<Report>(`/api/v1/runs/${encodeURIComponent(runId)}/efficiency`, undefined, signal),
    [runId, refreshKey],
  );
  if (error) {
    if (error instanceof ApiError && [404, 409, 503].includes(error.status)) {
      return (
        <p className="notice" role="status">
          No efficiency report yet: {error.message}
        </p>
      );
    }
    return <ErrorMessage error={error} onRetry={reload} />;
  }
  if (!data) return loading ? <Loading what="Loading the efficiency report" /> : null;
  const rows = efficiencyRows(data);
  const byDevice = Object.entries((data.gpu.util_by_device as Record<string, number> | undefined) ?? {});
  return (
    <div className="efficiency" data-testid="efficiency">
      <p className="muted">
        {data.final ? "From Slurm's final accounting." : "Provisional: from the run's own samples until Slurm's final accounting arrives."}
      </p>
      <table className="grid efficiency-table">
        <tbody>
          {rows.map((r) => (
            <tr key={r.label}>
              <th scope="row">{r.label}</th>
              <td className="eff-bar-cell">
                {r.fraction !== null ? (
                  <span
                    className={`eff-bar${r.fraction > 1 ? " over" : r.fraction < 0.5 ? " low" : ""}`}
                    role="img"
                    aria-label={`${Math.round(r.fraction * 100)}%`}
                  >
                    <span style={{ width: `${Math.min(100, Math.max(0, r.fraction * 100))}%` }} />
                  </span>
                ) : null}
              </td>
              <td>
                {r.value}
                {r.source ? <span className="muted"> · from {r.source}</span> : null}
                {r.note ? <div className="muted small">{r.note}</div> : null}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      {byDevice.length > 1 ? (
        <p className="muted small">
          Per GPU:{" "}
          {byDevice.map(([key, value], i) => (
            <span key={key}>
              {i ? ", " : ""}
              <span className="mono">{key.replace(/^sys\//, "").replace(/\/util_pct$/, "")}</span> {Math.round(value)}%
            </span>
          ))}
        </p>
      ) : null}
      <h3>Advice</h3>
      {data.advice.length ? (
        <ul className="advice" data-testid="advice">
          {data.advice.map((a, i) => (
            <li key={i}>{a}</li>
          ))}
        </ul>
      ) : (
        <p className="empty">No advice{data.final ? "" : " so far"}: nothing in what is known about this run calls for a change.</p>
      )}
    </div>
  );
}
