// The stacked progress bar of a sweep (finished, pruned, failed, cancelled, running, queued).
import { progressText, type Progress } from "./sweeps";

export function ProgressBar({ prog, label, compact = false }: { prog: Progress; label: string; compact?: boolean }) {
  return (
    <div
      className={`sw-bar${compact ? " sw-bar-compact" : ""}`}
      role="progressbar"
      aria-label={label}
      aria-valuemin={0}
      aria-valuemax={prog.total}
      aria-valuenow={prog.done}
      aria-valuetext={progressText(prog)}
    >
      {prog.segments.map((s) => (
        <span key={s.key} className={`sw-seg sw-seg-${s.key}`} style={{ width: `${s.fraction * 100}%` }} title={`${s.count} ${s.label}`} />
      ))}
    </div>
  );
}

