// One shared 1 s clock for the durations of running runs: a single interval, started while some
// cell listens. The snapshot is whole seconds, so it is stable between renders within a second.
import { useSyncExternalStore } from "react";

const listeners = new Set<() => void>();
let timer: ReturnType<typeof setInterval> | undefined;

function subscribe(fn: () => void): () => void {
  listeners.add(fn);
  if (timer === undefined) timer = setInterval(() => listeners.forEach((l) => l()), 1000);
  return () => {
    listeners.delete(fn);
    if (!listeners.size && timer !== undefined) {
      clearInterval(timer);
      timer = undefined;
    }
  };
}

function nowSeconds(): number {
  return Math.floor(Date.now() / 1000);
}

/** The current time in whole seconds, updated every second while the caller is mounted. */
export function useNowSeconds(): number {
  return useSyncExternalStore(subscribe, nowSeconds, nowSeconds);
}
