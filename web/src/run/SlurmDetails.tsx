// The run's Slurm job: ids, placement, state, and what it asked for next to what it used.
import { formatRelative, formatTime } from "../format";
import type { Run } from "../types";
import { accountingFacts, resourceRows, slurmExtras } from "./runDetails";

const EXTRA_LABELS: Record<string, string> = {
  command: "Command",
  workdir: "Working directory",
  stdout: "stdout file",
  stderr: "stderr file",
  script_path: "Batch script",
  output_dir: "Output directory",
  dependency: "Dependency",
  array: "Array",
  requeue: "Requeue on failure",
  launched: "Launched by Runyard",
  job_name: "Job name",
  gpus: "GPUs",
  time_limit_min: "Time limit (min)",
};

export function SlurmDetails({ run, now }: { run: Run; now: number }) {
  const rows = resourceRows(run, now);
  const extras = slurmExtras(run);
  const facts = accountingFacts(run);
  const waiting = run.status === "queued" || run.status === "requeued";
  const slurmDict = (run.slurm ?? {}) as Record<string, unknown>;
  const hasJob = Boolean(
    run.slurm_job_id ||
      run.slurm_array_job_id ||
      run.slurm_partition ||
      run.slurm_state ||
      slurmDict.requested ||
      slurmDict.accounting ||
      extras.length,
  );

  if (!hasJob) return <p className="empty">This run was not started through Slurm (no job recorded).</p>;

  const facts1: [string, React.ReactNode][] = [];
  const add = (label: string, value: React.ReactNode) => {
    if (value !== null && value !== undefined && value !== "") facts1.push([label, value]);
  };
  add("Job id", run.slurm_job_id ? <span className="mono">{run.slurm_job_id}</span> : null);
  if (run.slurm_array_job_id)
    add(
      "Array task",
      <span className="mono">
        {run.slurm_array_job_id}_{run.slurm_array_task_id ?? "?"}
      </span>,
    );
  add("Cluster", run.slurm_cluster);
  add("Partition", run.slurm_partition);
  add("Nodes", run.slurm_nodes ? <span className="mono">{run.slurm_nodes}</span> : null);
  add("Slurm state", run.slurm_state);
  if (waiting) {
    add("Pending reason", run.pending_reason);
    add(
      "Expected start",
      run.start_estimate ? (
        <span title={formatTime(run.start_estimate)}>{formatRelative(run.start_estimate)}</span>
      ) : null,
    );
  }
  if (run.state_unknown_since)
    add(
      "Slurm unreachable",
      <span className="warn-text">since {formatRelative(run.state_unknown_since)}</span>,
    );
  add("Restarts", String(run.restart_count));
  add("Exit code", run.exit_code === null ? null : String(run.exit_code));
  if (run.slurm_job_id)
    add(
      "Accounting",
      run.slurm_done || slurmDict.accounting ? "final record in" : run.ended_at !== null ? "waiting for Slurm's final record" : null,
    );
  for (const [label, value] of facts) if (!facts1.some(([l]) => l === label)) add(label, value);

  return (
    <div className="slurm-grid">
      <dl className="kv" data-testid="slurm-facts">
        {facts1.map(([label, value]) => (
          <Fragmentish key={label} label={label} value={value} />
        ))}
      </dl>
      {rows.length ? (
        <div className="table-wrap">
          <table className="grid resources" data-testid="resources">
            <caption className="visually-hidden">Requested vs used resources</caption>
            <thead>
              <tr>
                <th scope="col">Resource</th>
                <th scope="col">Requested</th>
                <th scope="col">Got / used</th>
              </tr>
            </thead>
            <tbody>
              {rows.map((r) => (
                <tr key={r.label}>
                  <th scope="row">{r.label}</th>
                  <td>{r.requested}</td>
                  <td>
                    {r.used}
                    {r.note ? <span className="muted"> · {r.note}</span> : null}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      ) : null}
      {extras.length ? (
        <dl className="kv slurm-extras">
          {extras.map(([key, text]) => (
            <Fragmentish
              key={key}
              label={EXTRA_LABELS[key] ?? key}
              value={<span className={key === "command" || key.endsWith("path") || key === "workdir" || key === "stdout" || key === "stderr" ? "mono" : undefined}>{text}</span>}
            />
          ))}
        </dl>
      ) : null}
    </div>
  );
}

function Fragmentish({ label, value }: { label: string; value: React.ReactNode }) {
  return (
    <>
      <dt>{label}</dt>
      <dd>{value}</dd>
    </>
  );
}
