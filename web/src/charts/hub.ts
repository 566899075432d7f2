// Fan-out of live `metrics` events to the charts showing a (run, key): MetricCharts and
// SystemCharts subscribe to the page's event stream once and tell the charts concerned.

export interface MetricNews {
  count: number;
  new: number;
  last_step: number | null;
}

type Listener = (news: MetricNews) => void;

export class LiveHub {
  private listeners = new Map<string, Set<Listener>>();

  private static id(runId: string, key: string): string {
    return `${runId}\u0000${key}`;
  }

  on(runId: string, key: string, fn: Listener): () => void {
    const id = LiveHub.id(runId, key);
    let set = this.listeners.get(id);
    if (!set) this.listeners.set(id, (set = new Set()));
    set.add(fn);
    return () => {
      set.delete(fn);
      if (!set.size) this.listeners.delete(id);
    };
  }

  has(runId: string, key: string): boolean {
    return this.listeners.has(LiveHub.id(runId, key));
  }

  emit(runId: string, key: string, news: MetricNews): void {
    this.listeners.get(LiveHub.id(runId, key))?.forEach((fn) => fn(news));
  }
}
