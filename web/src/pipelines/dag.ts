// Pure layout of a pipeline's DAG (unit-tested in dag.test.ts): each step's column is the
// longest path from a root, rows within a column follow their parents (barycentre order), and
// edges are routed left to right, around the boxes of the columns they cross.

export type When = "ok" | "any" | "notok";

export interface DagStepInput {
  name: string;
  after: readonly { step: string; when: When }[];
}

export interface Point {
  x: number;
  y: number;
}

export interface NodeBox {
  name: string;
  col: number;
  row: number;
  x: number;
  y: number;
  w: number;
  h: number;
}

export interface EdgePath {
  from: string;
  to: string;
  when: When;
  /** Start, the waypoints around boxes in between, end. */
  points: Point[];
  /** SVG path data through the points (horizontal tangents at every point). */
  d: string;
  /** Where its label goes. */
  label: Point;
}

export interface DagLayout {
  nodes: NodeBox[];
  edges: EdgePath[];
  width: number;
  height: number;
  /** Step names per column, top to bottom. */
  columns: string[][];
  /** Dependencies on steps the pipeline does not have (left out of the drawing). */
  missing: { step: string; after: string }[];
  /** Dependencies that close a cycle (left out so the rest can be drawn). */
  cyclic: { step: string; after: string }[];
}

export interface LayoutOptions {
  nodeWidth?: number;
  /** One height for every box, or a height per step. */
  nodeHeight?: number | ((name: string) => number);
  gapX?: number;
  gapY?: number;
  pad?: number;
}

/** Each step's column: 0 for a step with no dependency, else 1 + the largest column of the
 *  steps it comes after (the longest path from a root). Dependencies on unknown steps are
 *  ignored; a dependency closing a cycle is ignored too (reported by `layoutDag`). */
export function columnsOf(steps: readonly DagStepInput[]): {
  cols: Map<string, number>;
  missing: { step: string; after: string }[];
  cyclic: { step: string; after: string }[];
} {
  const byName = new Map(steps.map((s) => [s.name, s]));
  const cols = new Map<string, number>();
  const visiting = new Set<string>();
  const missing: { step: string; after: string }[] = [];
  const cyclic: { step: string; after: string }[] = [];
  const visit = (name: string): number => {
    const known = cols.get(name);
    if (known !== undefined) return known;
    visiting.add(name);
    let col = 0;
    for (const dep of byName.get(name)?.after ?? []) {
      if (!byName.has(dep.step)) {
        missing.push({ step: name, after: dep.step });
        continue;
      }
      if (visiting.has(dep.step)) {
        cyclic.push({ step: name, after: dep.step });
        continue;
      }
      col = Math.max(col, visit(dep.step) + 1);
    }
    visiting.delete(name);
    cols.set(name, col);
    return col;
  };
  for (const s of steps) visit(s.name);
  return { cols, missing, cyclic };
}

/** Rows within each column: the first column in spec order, each later one by the mean row of
 *  the steps it comes after (ties and steps without parents: spec order). */
export function orderRows(steps: readonly DagStepInput[], cols: ReadonlyMap<string, number>, skip: ReadonlySet<string> = new Set()): string[][] {
  const order = new Map(steps.map((s, i) => [s.name, i]));
  const ncols = steps.length ? Math.max(...steps.map((s) => cols.get(s.name) ?? 0)) + 1 : 0;
  const columns: string[][] = Array.from({ length: ncols }, () => []);
  for (const s of steps) columns[cols.get(s.name) ?? 0].push(s.name);
  const rowOf = new Map<string, number>();
  const byName = new Map(steps.map((s) => [s.name, s]));
  columns.forEach((names, c) => {
    const key = (name: string): number => {
      const parents = (byName.get(name)?.after ?? [])
        .filter((d) => !skip.has(`${name}\u0000${d.step}`))
        .map((d) => rowOf.get(d.step))
        .filter((r): r is number => r !== undefined);
      return parents.length ? parents.reduce((a, b) => a + b, 0) / parents.length : Number.POSITIVE_INFINITY;
    };
    if (c > 0) {
      const keys = new Map(names.map((n) => [n, key(n)]));
      names.sort((a, b) => {
        const ka = keys.get(a)!;
        const kb = keys.get(b)!;
        if (ka !== kb) return ka === Number.POSITIVE_INFINITY ? 1 : kb === Number.POSITIVE_INFINITY ? -1 : ka - kb;
        return order.get(a)! - order.get(b)!;
      });
    }
    names.forEach((n, r) => rowOf.set(n, r));
  });
  return columns;
}

/** SVG path data through the points: a horizontal-tangent S curve between each pair. */
export function pathThrough(points: readonly Point[]): string {
  if (!points.length) return "";
  const f = (n: number) => String(Math.round(n * 10) / 10);
  let d = `M${f(points[0].x)},${f(points[0].y)}`;
  for (let i = 1; i < points.length; i++) {
    const a = points[i - 1];
    const b = points[i];
    if (a.y === b.y) {
      d += ` L${f(b.x)},${f(b.y)}`;
      continue;
    }
    const mx = a.x + (b.x - a.x) / 2;
    d += ` C${f(mx)},${f(a.y)} ${f(mx)},${f(b.y)} ${f(b.x)},${f(b.y)}`;
  }
  return d;
}

/** Lay the steps out left to right. Boxes are `nodeWidth` wide and `nodeHeight` high, columns
 *  `gapX` apart (room for arrows and their labels), rows `gapY` apart, each column centred. */
export function layoutDag(steps: readonly DagStepInput[], options: LayoutOptions = {}): DagLayout {
  const w = options.nodeWidth ?? 200;
  const heightOf = typeof options.nodeHeight === "function" ? options.nodeHeight : () => (options.nodeHeight as number | undefined) ?? 60;
  const gapX = options.gapX ?? 80;
  const gapY = options.gapY ?? 24;
  const pad = options.pad ?? 12;

  const { cols, missing, cyclic } = columnsOf(steps);
  const skip = new Set([...missing, ...cyclic].map((m) => `${m.step}\u0000${m.after}`));
  const columns = orderRows(steps, cols, skip);

  const heights = columns.map((names) => names.reduce((s, n) => s + heightOf(n), 0) + gapY * Math.max(0, names.length - 1));
  const inner = heights.length ? Math.max(...heights) : 0;
  const nodes = new Map<string, NodeBox>();
  columns.forEach((names, c) => {
    let y = pad + (inner - heights[c]) / 2;
    names.forEach((name, row) => {
      const h = heightOf(name);
      nodes.set(name, { name, col: c, row, x: pad + c * (w + gapX), y, w, h });
      y += h + gapY;
    });
  });

  // ports: a box's incoming (outgoing) edges spread down its left (right) side in the order
  // of the boxes at their other ends, so arrows into one box do not share a point
  const links: { from: NodeBox; to: NodeBox; when: When }[] = [];
  for (const s of steps) {
    const to = nodes.get(s.name);
    if (!to) continue;
    for (const dep of s.after) {
      if (skip.has(`${s.name}\u0000${dep.step}`)) continue;
      const from = nodes.get(dep.step);
      if (from && !links.some((l) => l.from === from && l.to === to)) links.push({ from, to, when: dep.when });
    }
  }
  const centre = (n: NodeBox) => n.y + n.h / 2;
  const portY = (node: NodeBox, others: NodeBox[], other: NodeBox): number => {
    if (others.length <= 1) return centre(node);
    const sorted = [...others].sort((a, b) => centre(a) - centre(b) || a.col - b.col);
    const i = sorted.indexOf(other);
    const span = Math.min(node.h - 16, 14 * (sorted.length - 1));
    return centre(node) - span / 2 + (span * i) / (sorted.length - 1);
  };
  const ins = new Map<NodeBox, NodeBox[]>();
  const outs = new Map<NodeBox, NodeBox[]>();
  for (const l of links) {
    ins.set(l.to, [...(ins.get(l.to) ?? []), l.from]);
    outs.set(l.from, [...(outs.get(l.from) ?? []), l.to]);
  }

  const edges: EdgePath[] = [];
  for (const { from, to, when } of links) {
    const start = { x: from.x + from.w, y: portY(from, outs.get(from)!, to) };
    const end = { x: to.x, y: portY(to, ins.get(to)!, from) };
    const points = [start, ...waypoints(start, end, from.col, to.col, columns, nodes, gapX, gapY), end];
    const a = points[points.length - 2];
    edges.push({
      from: from.name,
      to: to.name,
      when,
      points,
      d: pathThrough(points),
      label: { x: a.x + (end.x - a.x) / 2, y: a.y + (end.y - a.y) / 2 },
    });
  }

  return {
    nodes: [...nodes.values()],
    edges,
    width: columns.length ? pad * 2 + columns.length * w + (columns.length - 1) * gapX : 0,
    height: columns.length ? pad * 2 + inner : 0,
    columns,
    missing,
    cyclic,
  };
}

/** For an edge that crosses columns: in each column it would cut through a box, a pass through
 *  the nearest free channel (between boxes, or above or below them). */
function waypoints(
  start: Point,
  end: Point,
  fromCol: number,
  toCol: number,
  columns: readonly string[][],
  nodes: ReadonlyMap<string, NodeBox>,
  gapX: number,
  gapY: number,
): Point[] {
  const out: Point[] = [];
  let cur = start;
  for (let c = fromCol + 1; c < toCol; c++) {
    const boxes = columns[c].map((n) => nodes.get(n)!);
    if (!boxes.length) continue;
    const x0 = boxes[0].x;
    const x1 = x0 + boxes[0].w;
    // where the straight way from here to the end would be in this column
    const at = (x: number) => cur.y + ((end.y - cur.y) * (x - cur.x)) / (end.x - cur.x || 1);
    const ya = at(x0);
    const yb = at(x1);
    const lo = Math.min(ya, yb) - 4;
    const hi = Math.max(ya, yb) + 4;
    const blocked = boxes.some((b) => hi > b.y && lo < b.y + b.h);
    if (!blocked) continue;
    const channels = [boxes[0].y - gapY / 2];
    for (let i = 1; i < boxes.length; i++) channels.push((boxes[i - 1].y + boxes[i - 1].h + boxes[i].y) / 2);
    const last = boxes[boxes.length - 1];
    channels.push(last.y + last.h + gapY / 2);
    const want = (ya + yb) / 2;
    const y = channels.reduce((best, ch) => (Math.abs(ch - want) < Math.abs(best - want) ? ch : best), channels[0]);
    const inset = Math.min(gapX / 4, 16);
    out.push({ x: x0 - inset, y }, { x: x1 + inset, y });
    cur = { x: x1 + inset, y };
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// states

/** Whether an edge's condition holds given the state of the step it comes from: "met" (the
 *  dependent step may run), "unmet" (it will not, by this edge), "pending" (not known yet). */
export function edgeState(fromState: string, when: When): "met" | "unmet" | "pending" {
  const ended = fromState === "finished" || fromState === "failed" || fromState === "cancelled";
  if (fromState === "never") return "unmet";
  if (!ended) return "pending";
  if (when === "any") return "met";
  if (when === "ok") return fromState === "finished" ? "met" : "unmet";
  return fromState === "finished" ? "unmet" : "met";
}

/** The colour class of a step state (the page's badge-* classes). */
export function stateClass(state: string): "ok" | "bad" | "warn" | "wait" | "run" | "muted" {
  switch (state) {
    case "finished":
      return "ok";
    case "failed":
      return "bad";
    case "cancelled":
      return "warn";
    case "queued":
      return "wait";
    case "running":
      return "run";
    default:
      return "muted"; // waiting, never
  }
}

/** Word-wrap text into at most `maxLines` lines of at most `maxChars` characters (long words
 *  are cut; an ellipsis ends the last line when text is left over). */
export function wrapText(text: string, maxChars: number, maxLines = Infinity): string[] {
  const width = Math.max(1, Math.floor(maxChars));
  const words = text.split(/\s+/).filter(Boolean);
  const lines: string[] = [];
  let line = "";
  const pushWord = (word: string) => {
    let w = word;
    while (w.length > width) {
      if (line) {
        lines.push(line);
        line = "";
      }
      lines.push(w.slice(0, width));
      w = w.slice(width);
    }
    if (!line) line = w;
    else if (line.length + 1 + w.length <= width) line += ` ${w}`;
    else {
      lines.push(line);
      line = w;
    }
  };
  for (const word of words) pushWord(word);
  if (line) lines.push(line);
  if (lines.length <= maxLines) return lines;
  const kept = lines.slice(0, Math.max(0, maxLines));
  if (kept.length) {
    const lastLine = kept[kept.length - 1];
    kept[kept.length - 1] = lastLine.length >= width ? `${lastLine.slice(0, width - 1)}…` : `${lastLine}…`;
  }
  return kept;
}

/** A step's dependencies as text: "after train (ok), prep (any)". */
export function afterText(after: readonly { step: string; when: When }[]): string {
  if (!after.length) return "";
  return `after ${after.map((a) => `${a.step} (${a.when})`).join(", ")}`;
}
