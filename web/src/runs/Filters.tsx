// The filter bar of the runs table: status, tag, user, name, range filters on params and metrics,
// and raw "advanced" expressions. Everything it changes goes to the URL through `onChange`.
import { useEffect, useId, useRef, useState, type FormEvent } from "react";

import { errorText } from "../components/common";
import { Popover } from "./Popover";
import {
  ACTIVE,
  clearFilters,
  hasFilters,
  rangeExpressions,
  splitAdvanced,
  STATS,
  STATUSES,
  type ExperimentKeys,
  type RangeFilter,
  type Stat,
  type TableState,
} from "./runsQuery";

function StatusFilter({ state, onChange }: { state: TableState; onChange: (s: TableState) => void }) {
  const chosen = state.statuses;
  const set = (statuses: string[]) => onChange({ ...state, statuses, offset: 0 });
  const text = chosen.length === 0 ? "any" : chosen.length <= 2 ? chosen.join(", ") : `${chosen.length} chosen`;
  return (
    <Popover label="Filter by status" buttonText={<>Status: {text}</>} testId="status-filter">
      <fieldset className="rt-fieldset">
        <legend>Show runs with status</legend>
        {STATUSES.map((s) => (
          <label key={s} className="rt-check">
            <input
              type="checkbox"
              checked={chosen.includes(s)}
              onChange={(e) => set(e.target.checked ? [...chosen, s] : chosen.filter((x) => x !== s))}
            />
            {s}
          </label>
        ))}
      </fieldset>
      <div className="rt-row">
        <button type="button" onClick={() => set([...ACTIVE])}>
          Active only
        </button>
        <button type="button" onClick={() => set([])}>
          Any status
        </button>
      </div>
    </Popover>
  );
}

/** A text input that applies its value after a pause in typing (and at once on Enter). */
function DebouncedInput({
  label,
  value,
  onApply,
  placeholder,
}: {
  label: string;
  value: string;
  onApply: (v: string) => void;
  placeholder?: string;
}) {
  const [text, setText] = useState(value);
  const timer = useRef<ReturnType<typeof setTimeout> | undefined>(undefined);
  const applyRef = useRef(onApply);
  applyRef.current = onApply;
  useEffect(() => setText(value), [value]);
  useEffect(() => () => clearTimeout(timer.current), []);
  const schedule = (v: string) => {
    setText(v);
    clearTimeout(timer.current);
    timer.current = setTimeout(() => {
      if (v !== value) applyRef.current(v);
    }, 400);
  };
  return (
    <label className="rt-inline">
      {label}
      <input
        type="search"
        value={text}
        placeholder={placeholder}
        onChange={(e) => schedule(e.target.value)}
        onKeyDown={(e) => {
          if (e.key === "Enter") {
            clearTimeout(timer.current);
            if (text !== value) onApply(text);
          }
        }}
      />
    </label>
  );
}

function rangeText(r: RangeFilter): string {
  const parts = [];
  if (r.min) parts.push(`≥ ${r.min}`);
  if (r.max) parts.push(`≤ ${r.max}`);
  return `${r.field.replace(/^params\./, "").replace(/^metrics\./, "")} ${parts.join(" and ")}`;
}

function RangeEditor({
  keys,
  state,
  onChange,
}: {
  keys: ExperimentKeys | undefined;
  state: TableState;
  onChange: (s: TableState) => void;
}) {
  const id = useId();
  const [key, setKey] = useState("");
  const [stat, setStat] = useState<Stat>("last");
  const [min, setMin] = useState("");
  const [max, setMax] = useState("");
  const [problem, setProblem] = useState("");
  const isMetric = key.startsWith("metrics.");
  const field = isMetric ? `${key}.${stat}` : key;

  const add = (e: FormEvent) => {
    e.preventDefault();
    if (!key) return setProblem("Choose a param or metric.");
    if (!min.trim() && !max.trim()) return setProblem("Give a minimum, a maximum or both.");
    for (const v of [min, max]) {
      if (isMetric && v.trim() && !Number.isFinite(Number(v))) return setProblem(`${v} is not a number.`);
    }
    const range = { field, min: min.trim(), max: max.trim() };
    if (!rangeExpressions(range).length) return;
    setProblem("");
    setMin("");
    setMax("");
    onChange({ ...state, ranges: [...state.ranges.filter((r) => r.field !== field), range], offset: 0 });
  };

  return (
    <form className="rt-range" onSubmit={add} aria-label="Range filter">
      <label className="rt-inline">
        Range
        <select value={key} onChange={(e) => setKey(e.target.value)} aria-label="Range filter field">
          <option value="">{keys ? "param or metric…" : "loading keys…"}</option>
          {keys?.params.length ? (
            <optgroup label="Params">
              {keys.params.map((p) => (
                <option key={p} value={`params.${p}`}>
                  {p}
                </option>
              ))}
            </optgroup>
          ) : null}
          {keys?.metrics.length ? (
            <optgroup label="Metrics">
              {keys.metrics.map((m) => (
                <option key={m} value={`metrics.${m}`}>
                  {m}
                </option>
              ))}
            </optgroup>
          ) : null}
        </select>
      </label>
      {isMetric ? (
        <select value={stat} onChange={(e) => setStat(e.target.value as Stat)} aria-label="Range filter statistic">
          {STATS.map((s) => (
            <option key={s} value={s}>
              {s}
            </option>
          ))}
        </select>
      ) : null}
      <input className="rt-num-input" value={min} onChange={(e) => setMin(e.target.value)} placeholder="min" aria-label="Range minimum" inputMode="decimal" />
      <span aria-hidden="true">–</span>
      <input className="rt-num-input" value={max} onChange={(e) => setMax(e.target.value)} placeholder="max" aria-label="Range maximum" inputMode="decimal" />
      <button type="submit">Add range</button>
      {problem ? (
        <span className="rt-problem" role="alert" id={`${id}-problem`}>
          {problem}
        </span>
      ) : null}
    </form>
  );
}

function AdvancedFilter({ state, onChange }: { state: TableState; onChange: (s: TableState) => void }) {
  const current = state.advanced.join("; ");
  const [text, setText] = useState(current);
  useEffect(() => setText(current), [current]);
  const apply = (e: FormEvent) => {
    e.preventDefault();
    onChange({ ...state, advanced: splitAdvanced(text), offset: 0 });
  };
  return (
    <form className="rt-advanced" onSubmit={apply}>
      <label className="rt-inline rt-grow">
        Advanced filter
        <input
          type="text"
          value={text}
          onChange={(e) => setText(e.target.value)}
          placeholder="e.g. params.lr>=0.01; metrics.val/acc.max>0.9; tags!=debug"
          spellCheck={false}
          className="mono"
          aria-describedby="rt-advanced-help"
        />
      </label>
      <button type="submit">Apply</button>
      <small id="rt-advanced-help" className="muted">
        <code>field op value</code>, op one of <code>= != &lt; &lt;= &gt; &gt;= ~</code>; fields: status, tags, name, id, user_id,
        host, gpu_type, slurm_job_id, slurm_array_job_id, slurm_partition, slurm_cluster, created_at, updated_at,
        started_at, ended_at, exit_code, restart_count, params.&lt;key&gt;, metrics.&lt;key&gt;[.last|.min|.max|.count];
        separate with ;
      </small>
    </form>
  );
}

export function Filters({
  state,
  keys,
  usernames,
  onChange,
  error,
}: {
  state: TableState;
  keys: ExperimentKeys | undefined;
  usernames: Record<string, string>;
  onChange: (s: TableState) => void;
  error: unknown;
}) {
  const tags = keys?.tags ?? [];
  const tagChoices = state.tag && !tags.includes(state.tag) ? [state.tag, ...tags] : tags;
  const users = Object.entries(usernames).sort((a, b) => a[1].localeCompare(b[1]));
  return (
    <section className="rt-filters" aria-label="Filters">
      <div className="rt-row">
        <StatusFilter state={state} onChange={onChange} />
        <label className="rt-inline">
          Tag
          <select value={state.tag} onChange={(e) => onChange({ ...state, tag: e.target.value, offset: 0 })}>
            <option value="">any</option>
            {tagChoices.map((t) => (
              <option key={t} value={t}>
                {t}
              </option>
            ))}
          </select>
        </label>
        <label className="rt-inline">
          User
          <select value={state.user} onChange={(e) => onChange({ ...state, user: e.target.value, offset: 0 })}>
            <option value="">anyone</option>
            {state.user && !usernames[state.user] ? <option value={state.user}>{state.user}</option> : null}
            {users.map(([id, name]) => (
              <option key={id} value={id}>
                {name}
              </option>
            ))}
          </select>
        </label>
        <DebouncedInput label="Name contains" value={state.name} placeholder="run name" onApply={(name) => onChange({ ...state, name, offset: 0 })} />
        {hasFilters(state) ? (
          <button type="button" onClick={() => onChange(clearFilters(state))}>
            Clear all filters
          </button>
        ) : null}
      </div>
      <div className="rt-row">
        <RangeEditor keys={keys} state={state} onChange={onChange} />
        {state.ranges.length ? (
          <ul className="rt-chips" aria-label="Range filters">
            {state.ranges.map((r) => (
              <li key={r.field} className="rt-chip">
                <span className="mono">{rangeText(r)}</span>
                <button
                  type="button"
                  className="ghost rt-chip-x"
                  aria-label={`Remove filter ${rangeText(r)}`}
                  onClick={() => onChange({ ...state, ranges: state.ranges.filter((x) => x.field !== r.field), offset: 0 })}
                >
                  ×
                </button>
              </li>
            ))}
          </ul>
        ) : null}
      </div>
      <AdvancedFilter state={state} onChange={onChange} />
      {error ? (
        <div className="error rt-filter-error" role="alert" data-testid="filter-error">
          <strong>The server did not accept this {fieldOf(error) === "sort" ? "sort" : "filter"}: </strong>
          {errorText(error)}
        </div>
      ) : null}
    </section>
  );
}

function fieldOf(error: unknown): string | null {
  return typeof error === "object" && error && "field" in error ? ((error as { field: string | null }).field ?? null) : null;
}
