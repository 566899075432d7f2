// Pure formatting helpers (unit-tested in format.test.ts).
import type { WireFloat } from "./types";

/** A metric value from the wire: numbers stay, "NaN"/"Infinity"/"-Infinity" become floats. */
export function toNumber(value: WireFloat | undefined): number | null {
  if (value === null || value === undefined) return null;
  if (typeof value === "number") return value;
  if (value === "NaN" || value === "nan") return Number.NaN;
  if (value === "Infinity" || value === "inf") return Number.POSITIVE_INFINITY;
  if (value === "-Infinity" || value === "-inf") return Number.NEGATIVE_INFINITY;
  const n = Number(value);
  return Number.isNaN(n) ? null : n;
}

/** A number in at most 4 significant digits, exponent notation when very small or large. */
export function formatNumber(value: WireFloat | undefined): string {
  const n = toNumber(value);
  if (n === null) return "";
  if (Number.isNaN(n)) return "NaN";
  if (!Number.isFinite(n)) return n > 0 ? "∞" : "−∞";
  if (Number.isInteger(n) && Math.abs(n) < 1e6) return String(n);
  const abs = Math.abs(n);
  if (abs !== 0 && (abs < 1e-3 || abs >= 1e6)) return n.toExponential(3).replace(/\.?0+e/, "e");
  return String(Number(n.toPrecision(4)));
}

/** Seconds as "45s", "12m 03s", "3h 05m", "2d 04h". */
export function formatDuration(seconds: number | null | undefined): string {
  if (seconds === null || seconds === undefined || !Number.isFinite(seconds) || seconds < 0) return "";
  const s = Math.floor(seconds);
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m ${String(s % 60).padStart(2, "0")}s`;
  const h = Math.floor(m / 60);
  if (h < 48) return `${h}h ${String(m % 60).padStart(2, "0")}m`;
  return `${Math.floor(h / 24)}d ${String(h % 24).padStart(2, "0")}h`;
}

/** A run's duration: started → ended, or → now while it runs. */
export function runDuration(
  run: { started_at: number | null; ended_at: number | null },
  now = Date.now() / 1000,
): number | null {
  if (run.started_at === null) return null;
  return (run.ended_at ?? now) - run.started_at;
}

/** A POSIX time as local "2026-11-22 14:03:07". */
export function formatTime(posix: number | null | undefined): string {
  if (posix === null || posix === undefined) return "";
  const d = new Date(posix * 1000);
  const pad = (n: number) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(
    d.getMinutes(),
  )}:${pad(d.getSeconds())}`;
}

/** "5 min ago", "in 2 h". */
export function formatRelative(posix: number | null | undefined, now = Date.now() / 1000): string {
  if (posix === null || posix === undefined) return "";
  const delta = posix - now;
  const abs = Math.abs(delta);
  let text: string;
  if (abs < 45) text = `${Math.round(abs)} s`;
  else if (abs < 3600) text = `${Math.round(abs / 60)} min`;
  else if (abs < 86400 * 2) text = `${Math.round(abs / 3600)} h`;
  else text = `${Math.round(abs / 86400)} d`;
  return delta < 0 ? `${text} ago` : `in ${text}`;
}

export function formatBytes(n: number | null | undefined): string {
  if (n === null || n === undefined) return "";
  const units = ["B", "KB", "MB", "GB", "TB"];
  let v = n;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${i === 0 ? v : v.toFixed(v < 10 ? 1 : 0)} ${units[i]}`;
}

/** Any config value as short text for a table cell. */
export function formatValue(value: unknown): string {
  if (value === null || value === undefined) return "";
  if (typeof value === "number") return formatNumber(value);
  if (typeof value === "string") return value;
  if (typeof value === "boolean") return value ? "true" : "false";
  return JSON.stringify(value);
}

/** Flatten nested config into dotted keys, as the server does for params filters. */
export function flatten(config: Record<string, unknown>, prefix = ""): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(config)) {
    const key = prefix ? `${prefix}.${k}` : k;
    if (v !== null && typeof v === "object" && !Array.isArray(v)) Object.assign(out, flatten(v as Record<string, unknown>, key));
    else out[key] = v;
  }
  return out;
}
