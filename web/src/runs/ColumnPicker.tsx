// Which columns the runs table shows: run fields, params, and metric statistics (last/min/max).
// Saved per experiment by the page (localStorage).
import { useMemo, useState } from "react";

import { Popover } from "./Popover";
import {
  BUILTINS,
  metricColumnId,
  paramColumnId,
  parseColumn,
  STATS,
  toggleColumn,
  type ExperimentKeys,
} from "./runsQuery";

export function ColumnPicker({
  columns,
  keys,
  onChange,
}: {
  columns: string[];
  keys: ExperimentKeys | undefined;
  onChange: (ids: string[] | null) => void; // null: back to the defaults
}) {
  const [search, setSearch] = useState("");
  const chosen = useMemo(() => new Set(columns), [columns]);

  // keys of the experiment, plus chosen ones the sample did not see (so they can be removed)
  const { params, metrics } = useMemo(() => {
    const p = new Set(keys?.params ?? []);
    const m = new Set(keys?.metrics ?? []);
    for (const id of columns) {
      const col = parseColumn(id);
      if (col?.kind === "param") p.add(col.key);
      if (col?.kind === "metric") m.add(col.key);
    }
    return { params: [...p], metrics: [...m] };
  }, [keys, columns]);

  const needle = search.trim().toLowerCase();
  const match = (s: string) => !needle || s.toLowerCase().includes(needle);
  const set = (id: string, on: boolean) => onChange(toggleColumn(columns, id, on));
  const shownParams = params.filter(match);
  const shownMetrics = metrics.filter(match);

  return (
    <Popover label="Choose columns" buttonText={<>Columns ({columns.length + 2})</>} align="right" className="rt-columns" testId="column-picker">
      <div className="rt-picker">
        <div className="rt-row">
          <label className="rt-inline rt-grow">
            Find
            <input type="search" value={search} onChange={(e) => setSearch(e.target.value)} placeholder="param or metric key" />
          </label>
          <button type="button" onClick={() => onChange(null)}>
            Reset to defaults
          </button>
        </div>
        <fieldset className="rt-fieldset">
          <legend>Run</legend>
          <div className="rt-check-grid">
            {BUILTINS.filter((b) => match(b.label)).map((b) => (
              <label key={b.id} className="rt-check">
                <input type="checkbox" checked={chosen.has(b.id)} onChange={(e) => set(b.id, e.target.checked)} />
                {b.label}
              </label>
            ))}
          </div>
        </fieldset>
        <fieldset className="rt-fieldset">
          <legend>Params</legend>
          {shownParams.length === 0 ? <p className="muted">{keys ? "No params." : "Loading keys…"}</p> : null}
          <div className="rt-check-grid">
            {shownParams.map((p) => (
              <label key={p} className="rt-check mono">
                <input type="checkbox" checked={chosen.has(paramColumnId(p))} onChange={(e) => set(paramColumnId(p), e.target.checked)} />
                {p}
              </label>
            ))}
          </div>
        </fieldset>
        <fieldset className="rt-fieldset">
          <legend>Metrics</legend>
          {shownMetrics.length === 0 ? <p className="muted">{keys ? "No metrics." : "Loading keys…"}</p> : null}
          {shownMetrics.length ? (
            <table className="rt-metric-picker">
              <thead>
                <tr>
                  <th scope="col">key</th>
                  {STATS.map((s) => (
                    <th scope="col" key={s}>
                      {s}
                    </th>
                  ))}
                </tr>
              </thead>
              <tbody>
                {shownMetrics.map((m) => (
                  <tr key={m}>
                    <th scope="row" className="mono">
                      {m}
                    </th>
                    {STATS.map((s) => (
                      <td key={s}>
                        <input
                          type="checkbox"
                          aria-label={`${m} ${s}`}
                          checked={chosen.has(metricColumnId(m, s))}
                          onChange={(e) => set(metricColumnId(m, s), e.target.checked)}
                        />
                      </td>
                    ))}
                  </tr>
                ))}
              </tbody>
            </table>
          ) : null}
        </fieldset>
        {keys ? (
          <p className="muted rt-small">
            Keys from the newest {keys.sampled_runs.toLocaleString("en-US")} runs.
          </p>
        ) : null}
      </div>
    </Popover>
  );
}
