// GPU-hours of ended runs per experiment (Slurm's accounting), the total and the requester's.
import { Link } from "../router";
import type { ExperimentGpuHours } from "./cluster";

function hours(h: number): string {
  if (h === 0) return "0";
  if (h < 0.1) return h.toFixed(3);
  if (h < 10) return h.toFixed(2);
  return h.toFixed(1);
}

export function GpuHoursTable({
  experiments,
  projectNames,
  scanned,
  truncated,
}: {
  experiments: ExperimentGpuHours[];
  projectNames: Map<string, string>;
  scanned: number;
  truncated: boolean;
}) {
  return (
    <>
      {experiments.length === 0 ? (
        <p className="empty">No GPU-hours yet: they are counted from Slurm's accounting of runs that have ended.</p>
      ) : (
        <div className="cl-scroll">
          <table className="grid cl-gpuhours" data-testid="gpu-hours-table">
            <thead>
              <tr>
                <th scope="col">Experiment</th>
                <th scope="col">Project</th>
                <th scope="col" className="num">Runs</th>
                <th scope="col" className="num">GPU-hours</th>
                <th scope="col" className="num">Mine</th>
              </tr>
            </thead>
            <tbody>
              {experiments.map((e) => (
                <tr key={e.experiment_id}>
                  <td>
                    <Link to={`/experiments/${e.experiment_id}`}>{e.experiment ?? e.experiment_id.slice(0, 8)}</Link>
                  </td>
                  <td>{projectNames.get(e.project_id) ?? ""}</td>
                  <td className="num">{e.runs}</td>
                  <td className="num">{hours(e.gpu_hours)}</td>
                  <td className="num">{e.my_gpu_hours ? hours(e.my_gpu_hours) : ""}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      <p className="muted cl-footnote">
        From the {scanned.toLocaleString("en")} most recently ended runs{truncated ? " (older runs are not counted)" : ""}.
      </p>
    </>
  );
}
