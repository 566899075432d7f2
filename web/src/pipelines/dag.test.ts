import { describe, expect, it } from "vitest";

import { afterText, columnsOf, edgeState, layoutDag, orderRows, pathThrough, stateClass, wrapText, type DagStepInput } from "./dag";

const step = (name: string, ...after: string[]): DagStepInput => ({
  name,
  after: after.map((a) => {
    const [s, when] = a.split(":");
    return { step: s, when: (when ?? "ok") as "ok" | "any" | "notok" };
  }),
});

describe("columns", () => {
  it("puts each step at the longest path from a root", () => {
    const steps = [step("prep"), step("train", "prep"), step("eval", "train", "prep"), step("report", "eval:any"), step("lint")];
    const { cols } = columnsOf(steps);
    expect(Object.fromEntries(cols)).toEqual({ prep: 0, train: 1, eval: 2, report: 3, lint: 0 });
  });

  it("does not depend on the order steps are listed in", () => {
    const { cols } = columnsOf([step("c", "b"), step("b", "a"), step("a")]);
    expect(Object.fromEntries(cols)).toEqual({ a: 0, b: 1, c: 2 });
  });

  it("reports unknown dependencies and cycles instead of looping", () => {
    const { cols, missing, cyclic } = columnsOf([step("a", "ghost"), step("b", "c"), step("c", "b")]);
    expect(cols.get("a")).toBe(0);
    expect(missing).toEqual([{ step: "a", after: "ghost" }]);
    expect(cyclic).toHaveLength(1);
    expect([cols.get("b"), cols.get("c")].sort()).toEqual([0, 1]);
  });
});

describe("rows", () => {
  it("orders a column by the mean row of its parents, spec order on ties", () => {
    // column 0: a, b; column 1: y (after b) comes before x (after a and b)? no: x mean 0.5, y 1
    const steps = [step("a"), step("b"), step("y", "b"), step("x", "a", "b"), step("z")];
    const { cols } = columnsOf(steps);
    const columns = orderRows(steps, cols);
    expect(columns).toEqual([["a", "b", "z"], ["x", "y"]]);
  });

  it("puts steps without a parent in the column last", () => {
    const steps = [step("a"), step("b", "a"), step("c", "b"), step("d", "b"), step("e", "a")];
    const { cols } = columnsOf(steps);
    expect(orderRows(steps, cols)).toEqual([["a"], ["b", "e"], ["c", "d"]]);
  });
});

describe("layout", () => {
  const three = [step("prep"), step("train", "prep"), step("evaluate", "train")];

  it("places boxes in columns gapX apart, centred vertically", () => {
    const l = layoutDag([step("a"), step("b"), step("c", "a", "b")], { nodeWidth: 100, nodeHeight: 40, gapX: 50, gapY: 20, pad: 10 });
    const at = Object.fromEntries(l.nodes.map((n) => [n.name, n]));
    expect([at.a.x, at.a.y]).toEqual([10, 10]);
    expect([at.b.x, at.b.y]).toEqual([10, 70]);
    expect([at.c.x, at.c.y]).toEqual([160, 40]); // centred against the column of two
    expect(l.width).toBe(10 * 2 + 2 * 100 + 50);
    expect(l.height).toBe(10 * 2 + 40 * 2 + 20);
  });

  it("routes edges from a box's right middle to the next one's left middle, labelled by condition", () => {
    const l = layoutDag(three, { nodeWidth: 100, nodeHeight: 40, gapX: 60, pad: 0 });
    expect(l.edges.map((e) => [e.from, e.to, e.when])).toEqual([
      ["prep", "train", "ok"],
      ["train", "evaluate", "ok"],
    ]);
    const e = l.edges[0];
    expect(e.points).toEqual([
      { x: 100, y: 20 },
      { x: 160, y: 20 },
    ]);
    expect(e.d).toBe("M100,20 L160,20");
    expect(e.label).toEqual({ x: 130, y: 20 });
  });

  it("takes variable box heights", () => {
    const l = layoutDag([step("a"), step("b")], { nodeHeight: (n) => (n === "a" ? 50 : 90), gapY: 10, pad: 0 });
    expect(l.nodes.map((n) => [n.name, n.y, n.h])).toEqual([
      ["a", 0, 50],
      ["b", 60, 90],
    ]);
    expect(l.height).toBe(150);
  });

  it("routes an edge that skips a column around the box in its way", () => {
    // a → b → c and a → c: the a → c edge would cross b's box
    const l = layoutDag([step("a"), step("b", "a"), step("c", "b", "a:any")], { nodeWidth: 100, nodeHeight: 40, gapX: 60, gapY: 20, pad: 0 });
    const long = l.edges.find((e) => e.from === "a" && e.to === "c")!;
    expect(long.points).toHaveLength(4);
    const b = l.nodes.find((n) => n.name === "b")!;
    const [, p1, p2] = long.points;
    expect(p1.y).toBe(p2.y);
    expect(p1.y < b.y || p1.y > b.y + b.h).toBe(true); // passes above or below b
    expect(p1.x).toBeLessThan(b.x);
    expect(p2.x).toBeGreaterThan(b.x + b.w);
    expect(long.when).toBe("any");
  });

  it("keeps a straight edge when nothing is in the way", () => {
    // columns [a, x], [b], [c, d]: x → d runs level below b's box
    const l = layoutDag([step("a"), step("x"), step("b", "a"), step("c", "b"), step("d", "b", "x")], {
      nodeWidth: 100,
      nodeHeight: 40,
      gapY: 20,
      pad: 0,
    });
    expect(l.columns).toEqual([["a", "x"], ["b"], ["c", "d"]]);
    const e = l.edges.find((ed) => ed.from === "x")!;
    expect(e.points).toEqual([
      { x: 100, y: 80 },
      { x: 360, y: 87 }, // the lower of d's two ports (its other parent, b, is higher)
    ]);
  });

  it("spreads the arrows into one box down its side, in the order of their sources", () => {
    const l = layoutDag([step("a"), step("b"), step("c"), step("d", "c", "a", "b")], { nodeWidth: 100, nodeHeight: 60, gapY: 20, pad: 0 });
    const into = l.edges.filter((e) => e.to === "d").map((e) => [e.from, e.points[e.points.length - 1].y]);
    const d = l.nodes.find((n) => n.name === "d")!;
    expect(into.map(([f]) => f)).toEqual(["c", "a", "b"]);
    const ys = Object.fromEntries(into) as Record<string, number>;
    expect(ys.a).toBeLessThan(ys.b);
    expect(ys.b).toBeLessThan(ys.c);
    expect(ys.b).toBe(d.y + d.h / 2);
    for (const y of Object.values(ys)) expect(y > d.y && y < d.y + d.h).toBe(true);
  });

  it("draws nothing for no steps and survives bad dependencies", () => {
    expect(layoutDag([])).toMatchObject({ nodes: [], edges: [], width: 0, height: 0 });
    const l = layoutDag([step("a", "ghost"), step("b", "c"), step("c", "b")]);
    expect(l.nodes).toHaveLength(3);
    expect(l.missing).toHaveLength(1);
    expect(l.cyclic).toHaveLength(1);
    expect(l.edges).toHaveLength(1); // the cycle's other edge
  });

  it("writes path data with curves between rows", () => {
    expect(pathThrough([])).toBe("");
    expect(pathThrough([{ x: 0, y: 0 }, { x: 10, y: 20 }])).toBe("M0,0 C5,0 5,20 10,20");
  });
});

describe("states", () => {
  it("tells whether an edge's condition holds", () => {
    expect(edgeState("finished", "ok")).toBe("met");
    expect(edgeState("failed", "ok")).toBe("unmet");
    expect(edgeState("cancelled", "ok")).toBe("unmet");
    expect(edgeState("failed", "notok")).toBe("met");
    expect(edgeState("finished", "notok")).toBe("unmet");
    expect(edgeState("failed", "any")).toBe("met");
    expect(edgeState("running", "any")).toBe("pending");
    expect(edgeState("waiting", "ok")).toBe("pending");
    expect(edgeState("never", "any")).toBe("unmet");
  });

  it("colours states", () => {
    expect(stateClass("finished")).toBe("ok");
    expect(stateClass("failed")).toBe("bad");
    expect(stateClass("never")).toBe("muted");
    expect(stateClass("running")).toBe("run");
  });
});

describe("text", () => {
  it("wraps words, cuts long ones, and ends with an ellipsis", () => {
    expect(wrapText("never runs: train failed", 12)).toEqual(["never runs:", "train failed"]);
    expect(wrapText("abcdefghij", 4)).toEqual(["abcd", "efgh", "ij"]);
    expect(wrapText("one two three four five", 8, 2)).toEqual(["one two", "three…"]);
    expect(wrapText("", 10)).toEqual([]);
  });

  it("lists dependencies", () => {
    expect(afterText([{ step: "train", when: "ok" }, { step: "prep", when: "any" }])).toBe("after train (ok), prep (any)");
    expect(afterText([])).toBe("");
  });
});
