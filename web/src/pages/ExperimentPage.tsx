export function ExperimentPage({ experimentId }: { experimentId: string }) {
  return <div className="page">TODO {experimentId}</div>;
}
