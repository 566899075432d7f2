export function ClusterPage() {
  return <div className="page">TODO</div>;
}
