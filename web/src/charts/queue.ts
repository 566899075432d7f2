// A small priority queue for the charts' requests: at most `limit` at a time, lower priority
// numbers first (the first chart on the page before the others, live appends before all),
// FIFO within a priority. A task whose signal is aborted while it waits never starts.
//
// Urgent tasks (priority ≤ `urgentUpTo`: the first chart, zooms, live points) also keep the
// others from starting while any of them runs, so the server, which answers one request at a
// time per core, spends itself on what is looked at first; after `maxHoldMs` the others go
// anyway (a slow answer must not stall the page).

export interface QueueTask<T> {
  priority: number;
  run: () => Promise<T>;
  signal?: AbortSignal;
}

interface Waiting {
  priority: number;
  seq: number;
  start: () => void;
}

export interface QueueOptions {
  urgentUpTo?: number;
  maxHoldMs?: number;
}

function abortError(): Error {
  const err = new Error("aborted");
  err.name = "AbortError";
  return err;
}

export class RequestQueue {
  private active = 0;
  private urgentActive = 0;
  private seq = 0;
  private waiting: Waiting[] = [];
  private holdSince: number | null = null;
  private holdTimer: ReturnType<typeof setTimeout> | null = null;
  private readonly urgentUpTo: number;
  private readonly maxHoldMs: number;

  constructor(
    readonly limit: number,
    options: QueueOptions = {},
  ) {
    this.urgentUpTo = options.urgentUpTo ?? -Infinity;
    this.maxHoldMs = options.maxHoldMs ?? 1500;
  }

  get pending(): number {
    return this.waiting.length;
  }

  get running(): number {
    return this.active;
  }

  add<T>(task: QueueTask<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      if (task.signal?.aborted) {
        reject(abortError());
        return;
      }
      const entry: Waiting = {
        priority: task.priority,
        seq: this.seq++,
        start: () => {
          if (task.signal?.aborted) {
            reject(abortError());
            return; // next() goes on with the following entry
          }
          const urgent = task.priority <= this.urgentUpTo;
          this.active++;
          if (urgent) this.urgentActive++;
          let p: Promise<T>;
          try {
            p = task.run();
          } catch (err) {
            p = Promise.reject(err);
          }
          p.then(resolve, reject).finally(() => {
            this.active--;
            if (urgent) this.urgentActive--;
            this.next();
          });
        },
      };
      // keep `waiting` sorted by (priority, seq): insert after the last entry that goes first
      let i = this.waiting.length;
      while (i > 0 && this.waiting[i - 1].priority > entry.priority) i--;
      this.waiting.splice(i, 0, entry);
      task.signal?.addEventListener(
        "abort",
        () => {
          const at = this.waiting.indexOf(entry);
          if (at >= 0) {
            this.waiting.splice(at, 1);
            reject(abortError());
          }
        },
        { once: true },
      );
      this.next();
    });
  }

  private held(entry: Waiting): boolean {
    if (entry.priority <= this.urgentUpTo) return false;
    const urgentWaiting = this.waiting.length > 0 && this.waiting[0].priority <= this.urgentUpTo;
    if (!this.urgentActive && !urgentWaiting) {
      this.holdSince = null;
      return false;
    }
    const now = Date.now();
    this.holdSince ??= now;
    if (now - this.holdSince >= this.maxHoldMs) return false;
    if (!this.holdTimer)
      this.holdTimer = setTimeout(() => {
        this.holdTimer = null;
        this.next();
      }, this.maxHoldMs - (now - this.holdSince));
    return true;
  }

  private next(): void {
    while (this.active < this.limit && this.waiting.length) {
      if (this.held(this.waiting[0])) return;
      const entry = this.waiting.shift()!;
      entry.start();
    }
    if (!this.waiting.length && !this.urgentActive) this.holdSince = null;
  }
}

/** The queue every chart on the page shares (a browser allows ~6 connections per host). */
export const chartQueue = new RequestQueue(6, { urgentUpTo: 0, maxHoldMs: 1500 });
