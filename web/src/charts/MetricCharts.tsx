// PLACEHOLDER (being written): metric curves of several runs overlaid, one chart per key.
export interface ChartRun {
  id: string;
  name: string;
}

export function MetricCharts({ runs, keys }: { runs: ChartRun[]; keys?: string[] }) {
  return (
    <div className="charts">
      charts of {runs.length} runs {keys ? keys.join(", ") : ""}
    </div>
  );
}

export function SystemCharts({ run, keys }: { run: ChartRun; keys: string[] }) {
  return (
    <div className="charts">
      system charts of {run.name}: {keys.length} keys
    </div>
  );
}
