export function LaunchPage() {
  return <div className="page">TODO</div>;
}
