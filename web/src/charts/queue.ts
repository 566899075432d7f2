// A small priority queue for the charts' requests: at most `limit` at a time, lower priority
// numbers first (the first chart on the page before the others, live appends before all),
// FIFO within a priority. A task whose signal is aborted while it waits never starts.

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

function abortError(): Error {
  const err = new Error("aborted");
  err.name = "AbortError";
  return err;
}

export class RequestQueue {
  private active = 0;
  private seq = 0;
  private waiting: Waiting[] = [];

  constructor(readonly limit: number) {}

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
          this.active++;
          let p: Promise<T>;
          try {
            p = task.run();
          } catch (err) {
            p = Promise.reject(err);
          }
          p.then(resolve, reject).finally(() => {
            this.active--;
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

  private next(): void {
    while (this.active < this.limit && this.waiting.length) {
      const entry = this.waiting.shift()!;
      entry.start();
    }
  }
}

/** The queue every chart on the page shares (a browser allows ~6 connections per host). */
export const chartQueue = new RequestQueue(6);
