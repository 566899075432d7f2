// Nodes as a grid of cards: state in colour and words, CPUs / GPUs / memory allocated.
import { formatMemMb, nodeAllocation, nodeState, sortNodes, type ClusterNode } from "./cluster";

function Bar({ pct, label }: { pct: number; label: string }) {
  return (
    <div className="cl-bar" role="img" aria-label={label} title={label}>
      <div className="cl-bar-fill" style={{ width: `${pct}%` }} />
    </div>
  );
}

function GpuSquares({ used, total }: { used: number; total: number }) {
  if (total === 0) return <span className="muted">none</span>;
  if (total > 16) return <Bar pct={Math.round((used / total) * 100)} label={`${used} of ${total} GPUs allocated`} />;
  return (
    <span className="cl-gpus" role="img" aria-label={`${used} of ${total} GPUs allocated`}>
      {Array.from({ length: total }, (_, i) => (
        <span key={i} className={i < used ? "cl-gpu cl-gpu-used" : "cl-gpu"} />
      ))}
    </span>
  );
}

export function NodeCard({ node }: { node: ClusterNode }) {
  const state = nodeState(node.state);
  const alloc = nodeAllocation(node);
  return (
    <li className={`cl-node cl-node-${state.kind}`} data-testid="cluster-node" data-node={node.name} data-state={state.kind}>
      <div className="cl-node-head">
        <h3 className="cl-node-name">{node.name}</h3>
        <span className={`cl-state cl-state-${state.kind}`} title={`Slurm state: ${node.state}`}>
          {state.label}
        </span>
      </div>
      <dl className="cl-node-stats">
        <dt>CPUs</dt>
        <dd>
          <span className="cl-count">
            {node.cpus_alloc} / {node.cpus_total}
          </span>
          <Bar pct={alloc.cpuPct} label={`${node.cpus_alloc} of ${node.cpus_total} CPUs allocated`} />
        </dd>
        <dt>GPUs</dt>
        <dd>
          <span className="cl-count">
            {node.gpus_used} / {node.gpus_total}
          </span>
          <GpuSquares used={node.gpus_used} total={node.gpus_total} />
        </dd>
        <dt>Memory</dt>
        <dd>
          <span className="cl-count">
            {formatMemMb(node.memory_alloc_mb)} / {formatMemMb(node.memory_total_mb)}
          </span>
          <Bar pct={alloc.memPct} label={`${formatMemMb(node.memory_alloc_mb)} of ${formatMemMb(node.memory_total_mb)} memory allocated`} />
        </dd>
      </dl>
      {node.partitions.length ? (
        <p className="cl-node-parts">
          <span className="muted">Partitions:</span> {node.partitions.join(", ")}
        </p>
      ) : null}
      {node.reason ? (
        <p className="cl-node-reason">
          <strong>Reason:</strong> {node.reason}
        </p>
      ) : null}
    </li>
  );
}

export function NodeGrid({ nodes }: { nodes: ClusterNode[] }) {
  if (nodes.length === 0) return <p className="empty">No nodes to show.</p>;
  return (
    <ul className="cl-nodes" aria-label="Nodes">
      {sortNodes(nodes).map((n) => (
        <NodeCard key={n.name} node={n} />
      ))}
    </ul>
  );
}
