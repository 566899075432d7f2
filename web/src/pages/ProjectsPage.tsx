// Projects and their experiments: run counts, running/queued counts, last activity.
import { api } from "../api";
import { ErrorMessage, Loading, useAsync } from "../components/common";
import { formatRelative } from "../format";
import { useLive } from "../live";
import { Link } from "../router";
import type { Experiment, Project } from "../types";

export function ProjectsPage() {
  const projects = useAsync((signal) => api.get<Project[]>("/api/v1/projects", undefined, signal), []);
  const experiments = useAsync((signal) => api.get<Experiment[]>("/api/v1/experiments", undefined, signal), []);
  // counts move when runs start and end: refetch on status events (debounced by the browser's idle)
  useLive((e) => {
    if (e.type === "run" || e.type === "reset") scheduleReload(experiments.reload);
  });
  if (projects.error || experiments.error) {
    return (
      <div className="page">
        <ErrorMessage error={projects.error || experiments.error} onRetry={() => { projects.reload(); experiments.reload(); }} />
      </div>
    );
  }
  if (!projects.data || !experiments.data) return <Loading what="Loading projects" />;
  const byProject = new Map<string, Experiment[]>();
  for (const exp of experiments.data) {
    const list = byProject.get(exp.project_id) ?? [];
    list.push(exp);
    byProject.set(exp.project_id, list);
  }
  return (
    <div className="page">
      <h1>Projects</h1>
      {projects.data.length === 0 ? (
        <p className="empty">
          No projects yet. Log a run with <code>runyard.init(project=…, experiment=…)</code> or{" "}
          <Link to="/launch">start an experiment</Link>.
        </p>
      ) : null}
      {projects.data.map((project) => (
        <section key={project.id} className="project" aria-labelledby={`p-${project.id}`}>
          <h2 id={`p-${project.id}`}>{project.name}</h2>
          {project.description ? <p className="muted">{project.description}</p> : null}
          <table className="grid experiments">
            <thead>
              <tr>
                <th scope="col">Experiment</th>
                <th scope="col" className="num">Runs</th>
                <th scope="col" className="num">Running</th>
                <th scope="col" className="num">Queued</th>
                <th scope="col">Last activity</th>
              </tr>
            </thead>
            <tbody>
              {(byProject.get(project.id) ?? []).map((exp) => (
                <tr key={exp.id}>
                  <td>
                    <Link to={`/experiments/${exp.id}`}>{exp.name}</Link>
                  </td>
                  <td className="num">{exp.run_count}</td>
                  <td className="num">{exp.running_count || ""}</td>
                  <td className="num">{exp.queued_count || ""}</td>
                  <td title={exp.last_activity_at ? new Date(exp.last_activity_at * 1000).toLocaleString() : undefined}>
                    {formatRelative(exp.last_activity_at)}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </section>
      ))}
    </div>
  );
}

let pending: ReturnType<typeof setTimeout> | null = null;

function scheduleReload(reload: () => void) {
  if (pending) return;
  pending = setTimeout(() => {
    pending = null;
    reload();
  }, 1000);
}
