// Partitions: state, nodes, CPUs and GPUs (total and idle now), time limits.
import { formatLimit, formatMemMb, summarizePartition, type ClusterNode, type ClusterPartition } from "./cluster";

export function PartitionTable({ partitions, nodes }: { partitions: ClusterPartition[]; nodes: ClusterNode[] }) {
  if (partitions.length === 0) return <p className="empty">No partitions to show.</p>;
  return (
    <div className="cl-scroll">
      <table className="grid cl-partitions" data-testid="partitions-table">
        <thead>
          <tr>
            <th scope="col">Partition</th>
            <th scope="col">State</th>
            <th scope="col">Nodes</th>
            <th scope="col" className="num">CPUs idle / total</th>
            <th scope="col" className="num">GPUs idle / total</th>
            <th scope="col" className="num">Memory</th>
            <th scope="col">Max time</th>
            <th scope="col">Default time</th>
          </tr>
        </thead>
        <tbody>
          {partitions.map((p) => {
            const s = summarizePartition(p, nodes);
            return (
              <tr key={p.name} data-partition={p.name}>
                <th scope="row" className="cl-rowhead">
                  {p.name}
                  {p.default ? <span className="cl-chip">default</span> : null}
                </th>
                <td>
                  <span className={s.up ? "cl-state cl-state-idle" : "cl-state cl-state-down"}>{p.state.toLowerCase()}</span>
                </td>
                <td>
                  {s.nodeCount}
                  {p.nodes ? <span className="muted"> ({p.nodes})</span> : null}
                  {s.unusableNodes ? <span className="cl-warn-text"> · {s.unusableNodes} unavailable</span> : null}
                </td>
                <td className="num">
                  {s.cpusIdle} / {s.cpusTotal}
                </td>
                <td className="num">
                  {s.gpusIdle} / {s.gpusTotal}
                </td>
                <td className="num">{formatMemMb(p.memory_mb)}</td>
                <td>{formatLimit(p.max_time_min)}</td>
                <td>{p.default_time_min === null ? "" : formatLimit(p.default_time_min)}</td>
              </tr>
            );
          })}
        </tbody>
      </table>
    </div>
  );
}
