// Pieces of the launch form: the mode switch, the argv preview and the sweep's trial table.
import { useRef, type KeyboardEvent } from "react";

import type { Mode, Sweep } from "./launchForm";

export function ModeSwitch({ mode, onChange }: { mode: Mode; onChange: (m: Mode) => void }) {
  const refs = { command: useRef<HTMLButtonElement>(null), script: useRef<HTMLButtonElement>(null) };
  const onKey = (e: KeyboardEvent) => {
    if (["ArrowLeft", "ArrowRight", "ArrowUp", "ArrowDown"].includes(e.key)) {
      e.preventDefault();
      const next: Mode = mode === "command" ? "script" : "command";
      onChange(next);
      refs[next].current?.focus();
    }
  };
  const option = (m: Mode, text: string) => (
    <button
      ref={refs[m]}
      type="button"
      role="radio"
      aria-checked={mode === m}
      tabIndex={mode === m ? 0 : -1}
      className={mode === m ? "lf-mode lf-mode-on" : "lf-mode"}
      onClick={() => onChange(m)}
      onKeyDown={onKey}
      data-testid={`mode-${m}`}
    >
      {text}
    </button>
  );
  return (
    <div className="lf-modes" role="radiogroup" aria-label="What to run">
      {option("command", "Command")}
      {option("script", "sbatch script")}
    </div>
  );
}

export function ArgvPreview({ argv }: { argv: string[] }) {
  if (argv.length === 0) return null;
  return (
    <div className="lf-argv-wrap">
      <span className="muted">Arguments sent ({argv.length}):</span>
      <ol className="lf-argv" aria-label="Parsed arguments" data-testid="argv-preview">
        {argv.map((arg, i) => (
          <li key={i}>
            <code>{arg === "" ? "(empty)" : arg}</code>
          </li>
        ))}
      </ol>
    </div>
  );
}

const SHOWN_TASKS = 50;

export function SweepTable({ sweep }: { sweep: Sweep }) {
  const shown = sweep.tasks.slice(0, SHOWN_TASKS);
  const n = sweep.tasks.length;
  return (
    <div className="lf-sweep-table">
      <table className="grid" data-testid="sweep-table">
        <caption className="lf-caption">
          {n} trial{n === 1 ? "" : "s"} (one Slurm array, one run each)
        </caption>
        <thead>
          <tr>
            <th scope="col" className="num">
              Trial
            </th>
            {sweep.keys.map((k) => (
              <th key={k} scope="col">
                {k}
              </th>
            ))}
          </tr>
        </thead>
        <tbody>
          {shown.map((task, i) => (
            <tr key={i}>
              <td className="num">{i}</td>
              {sweep.keys.map((k) => (
                <td key={k} className="mono">
                  {String(task[k])}
                </td>
              ))}
            </tr>
          ))}
        </tbody>
      </table>
      {n > SHOWN_TASKS ? <p className="muted">… and {(n - SHOWN_TASKS).toLocaleString("en")} more trials.</p> : null}
    </div>
  );
}
