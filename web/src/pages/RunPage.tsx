export function RunPage({ runId }: { runId: string }) {
  return <div className="page">TODO {runId}</div>;
}
