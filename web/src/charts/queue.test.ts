import { describe, expect, it } from "vitest";

import { RequestQueue } from "./queue";

function deferred<T>() {
  let resolve!: (v: T) => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

const tick = () => new Promise((r) => setTimeout(r, 0));

describe("RequestQueue", () => {
  it("runs at most `limit` tasks at a time, lower priority first, FIFO within one", async () => {
    const q = new RequestQueue(2);
    const started: string[] = [];
    const gates = new Map<string, ReturnType<typeof deferred<string>>>();
    const add = (name: string, priority: number) => {
      const d = deferred<string>();
      gates.set(name, d);
      return q.add({
        priority,
        run: () => {
          started.push(name);
          return d.promise;
        },
      });
    };
    const results = [add("a", 5), add("b", 5), add("c", 5), add("d", 1), add("e", 1)];
    expect(started).toEqual(["a", "b"]);
    expect(q.running).toBe(2);
    expect(q.pending).toBe(3);
    gates.get("a")!.resolve("A");
    await tick();
    expect(started).toEqual(["a", "b", "d"]);
    gates.get("b")!.resolve("B");
    await tick();
    expect(started).toEqual(["a", "b", "d", "e"]);
    gates.get("d")!.resolve("D");
    gates.get("e")!.resolve("E");
    await tick();
    expect(started).toEqual(["a", "b", "d", "e", "c"]);
    gates.get("c")!.resolve("C");
    expect(await Promise.all(results)).toEqual(["A", "B", "C", "D", "E"]);
    expect(q.running).toBe(0);
  });

  it("a failing task frees its place", async () => {
    const q = new RequestQueue(1);
    const first = q.add({ priority: 0, run: () => Promise.reject(new Error("boom")) });
    const second = q.add({ priority: 0, run: () => Promise.resolve(2) });
    await expect(first).rejects.toThrow("boom");
    expect(await second).toBe(2);
  });

  it("a task aborted while waiting never starts", async () => {
    const q = new RequestQueue(1);
    const gate = deferred<number>();
    const running = q.add({ priority: 0, run: () => gate.promise });
    const controller = new AbortController();
    let ran = false;
    const waiting = q.add({
      priority: 0,
      signal: controller.signal,
      run: () => {
        ran = true;
        return Promise.resolve(1);
      },
    });
    controller.abort();
    await expect(waiting).rejects.toMatchObject({ name: "AbortError" });
    expect(q.pending).toBe(0);
    gate.resolve(0);
    await running;
    expect(ran).toBe(false);
  });

  it("an already aborted signal rejects at once", async () => {
    const q = new RequestQueue(1);
    const controller = new AbortController();
    controller.abort();
    await expect(q.add({ priority: 0, signal: controller.signal, run: () => Promise.resolve(1) })).rejects.toMatchObject({
      name: "AbortError",
    });
  });

  it("urgent tasks keep the others waiting while they run", async () => {
    const q = new RequestQueue(4, { urgentUpTo: 0, maxHoldMs: 10_000 });
    const started: string[] = [];
    const gates = new Map<string, ReturnType<typeof deferred<number>>>();
    const add = (name: string, priority: number) => {
      const d = deferred<number>();
      gates.set(name, d);
      return q.add({ priority, run: () => (started.push(name), d.promise) });
    };
    const all = [add("u1", 0), add("u2", -1), add("o1", 1), add("o2", 2)];
    expect(started).toEqual(["u1", "u2"]);
    gates.get("u1")!.resolve(1);
    await tick();
    expect(started).toEqual(["u1", "u2"]);
    gates.get("u2")!.resolve(2);
    await tick();
    expect(started).toEqual(["u1", "u2", "o1", "o2"]);
    gates.get("o1")!.resolve(3);
    gates.get("o2")!.resolve(4);
    await Promise.all(all);
  });

  it("after maxHoldMs the others go anyway", async () => {
    const q = new RequestQueue(4, { urgentUpTo: 0, maxHoldMs: 20 });
    const started: string[] = [];
    const slow = deferred<number>();
    const u = q.add({ priority: 0, run: () => (started.push("u"), slow.promise) });
    const o = q.add({ priority: 5, run: () => (started.push("o"), Promise.resolve(1)) });
    expect(started).toEqual(["u"]);
    await new Promise((r) => setTimeout(r, 40));
    expect(started).toEqual(["u", "o"]);
    slow.resolve(0);
    await Promise.all([u, o]);
  });
});
