// The live event stream (GET /api/v1/events, Server-Sent Events). One EventSource for the whole
// page; components subscribe with a filter. The browser reconnects by itself and sends the
// last event id, so the server replays what was missed; when it cannot (`reset`), subscribers
// are told to refetch.
import { useEffect, useRef, useState } from "react";

import type { LogsEventData, MetricsEventData, RunEventData } from "./types";

export type LiveEvent =
  | { type: "run"; data: RunEventData }
  | { type: "metrics"; data: MetricsEventData }
  | { type: "logs"; data: LogsEventData }
  | { type: "reset"; data: null };

type Handler = (event: LiveEvent) => void;

export type LiveState = "connecting" | "open" | "down";

class LiveStream {
  private source: EventSource | null = null;
  private handlers = new Set<Handler>();
  private stateListeners = new Set<(s: LiveState) => void>();
  state: LiveState = "connecting";

  subscribe(handler: Handler): () => void {
    this.handlers.add(handler);
    this.ensure();
    return () => {
      this.handlers.delete(handler);
    };
  }

  onState(fn: (s: LiveState) => void): () => void {
    this.stateListeners.add(fn);
    return () => this.stateListeners.delete(fn);
  }

  close(): void {
    this.source?.close();
    this.source = null;
  }

  private setState(state: LiveState): void {
    this.state = state;
    this.stateListeners.forEach((fn) => fn(state));
  }

  private ensure(): void {
    if (this.source || typeof EventSource === "undefined") return;
    const source = new EventSource("/api/v1/events", { withCredentials: true });
    this.source = source;
    source.onopen = () => this.setState("open");
    source.onerror = () => this.setState(source.readyState === EventSource.CLOSED ? "down" : "connecting");
    for (const type of ["run", "metrics", "logs"] as const) {
      source.addEventListener(type, (e) => {
        let data: unknown;
        try {
          data = JSON.parse((e as MessageEvent).data);
        } catch {
          return;
        }
        this.dispatch({ type, data } as LiveEvent);
      });
    }
    source.addEventListener("reset", () => this.dispatch({ type: "reset", data: null }));
  }

  private dispatch(event: LiveEvent): void {
    this.handlers.forEach((fn) => {
      try {
        fn(event);
      } catch (err) {
        console.error("live event handler failed", err);
      }
    });
  }
}

export const live = new LiveStream();

/** Call `handler` for every live event (the latest handler is used; no resubscribe per render). */
export function useLive(handler: Handler, enabled = true): void {
  const ref = useRef(handler);
  ref.current = handler;
  useEffect(() => {
    if (!enabled) return;
    return live.subscribe((e) => ref.current(e));
  }, [enabled]);
}

export function useLiveState(): LiveState {
  const [state, setState] = useState<LiveState>(live.state);
  useEffect(() => live.onState(setState), []);
  return state;
}
