// A nested config as an indented key/value tree (values as text), with copy-as-JSON.
import { useMemo, useState } from "react";

import { configRows } from "./runDetails";

export function ConfigView({ config, label = "config" }: { config: Record<string, unknown>; label?: string }) {
  const rows = useMemo(() => configRows(config), [config]);
  const [copied, setCopied] = useState<"yes" | "failed" | null>(null);
  const json = useMemo(() => JSON.stringify(config, null, 2), [config]);

  const copy = async () => {
    try {
      await navigator.clipboard.writeText(json);
      setCopied("yes");
    } catch {
      setCopied("failed");
    }
    setTimeout(() => setCopied(null), 2500);
  };

  if (rows.length === 0) return <p className="empty">No {label} recorded.</p>;
  return (
    <div className="config-view">
      <div className="toolbar">
        <button type="button" onClick={() => void copy()}>
          Copy {label} as JSON
        </button>
        <span role="status" className="muted">
          {copied === "yes" ? "Copied." : copied === "failed" ? "The browser did not allow copying; select the text below instead." : ""}
        </span>
      </div>
      {copied === "failed" ? <textarea className="mono config-json" readOnly value={json} aria-label={`${label} as JSON`} rows={8} /> : null}
      <dl className="config-tree mono" data-testid="config-tree">
        {rows.map((r) => (
          <div key={r.path} className="config-row" style={{ paddingLeft: `${r.depth * 18}px` }} data-key={r.path}>
            <dt className={r.value === null ? "config-group" : undefined}>{r.key}</dt>
            {r.value === null ? <dd className="muted">{r.size}</dd> : <dd>{r.value}</dd>}
          </div>
        ))}
      </dl>
    </div>
  );
}
