// The colours uPlot paints its canvas with, read from the page's CSS variables, and a signal
// when the theme changes (App sets data-theme on <html>): charts redraw then.

export interface ChartTheme {
  text: string;
  muted: string;
  border: string;
  bg: string;
  accent: string;
}

const FALLBACK: ChartTheme = { text: "#1b1f24", muted: "#57606a", border: "#d5d9e0", bg: "#ffffff", accent: "#0b5cad" };

function read(): ChartTheme {
  if (typeof document === "undefined" || typeof getComputedStyle === "undefined") return FALLBACK;
  const style = getComputedStyle(document.documentElement);
  const v = (name: string, fallback: string) => style.getPropertyValue(name).trim() || fallback;
  return {
    text: v("--text", FALLBACK.text),
    muted: v("--muted", FALLBACK.muted),
    border: v("--border", FALLBACK.border),
    bg: v("--bg", FALLBACK.bg),
    accent: v("--accent", FALLBACK.accent),
  };
}

/** The current colours (a live object: charts' stroke functions read it at every draw). */
export const chartTheme: ChartTheme = { ...FALLBACK };

const listeners = new Set<() => void>();
let observer: MutationObserver | null = null;

function refresh(): void {
  Object.assign(chartTheme, read());
  listeners.forEach((fn) => fn());
}

/** Call `fn` after every theme change; the first subscriber starts watching <html>. */
export function onThemeChange(fn: () => void): () => void {
  listeners.add(fn);
  if (!observer && typeof MutationObserver !== "undefined" && typeof document !== "undefined") {
    Object.assign(chartTheme, read());
    observer = new MutationObserver(refresh);
    observer.observe(document.documentElement, { attributes: true, attributeFilter: ["data-theme", "class", "style"] });
  }
  return () => {
    listeners.delete(fn);
    if (!listeners.size && observer) {
      observer.disconnect();
      observer = null;
    }
  };
}

/** Read the variables now (before a chart is first drawn). */
export function currentTheme(): ChartTheme {
  Object.assign(chartTheme, read());
  return chartTheme;
}
