// Pure logic of the run page's log tail (unit-tested in logTail.test.ts): ANSI stripping,
// search highlighting, the bounded line buffer, merging live lines, the follow decision.

/** How many lines the tail keeps; older ones fall off the top. */
export const MAX_LINES = 5000;

/** One line as the tail shows it, from either source (console lines or the output file). */
export interface TailLine {
  /** Orders and dedupes lines: the console line id, or the byte offset in the output file. */
  id: number;
  /** The text, ANSI codes removed. */
  text: string;
  stream: string;
  time: number | null;
  host: string | null;
  rank: number | null;
}

// CSI sequences (colours, cursor moves), OSC sequences (titles, links; ended by BEL or ST),
// other two-character escapes, and the C1 CSI form (0x9b).
// eslint-disable-next-line no-control-regex
const ANSI = /\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?|\x1b[@-Z\\-_]|\x9b[0-?]*[ -/]*[@-~]/g;
// Other control characters that would garble the view (tabs stay).
// eslint-disable-next-line no-control-regex
const CONTROL = /[\x00-\x08\x0b-\x1f\x7f]/g;

/** The text of a log line without ANSI escape codes and stray control characters. */
export function stripAnsi(text: string): string {
  return text.replace(ANSI, "").replace(CONTROL, "");
}

export interface Segment {
  text: string;
  match: boolean;
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\/-]/g, "\\$&");
}

/** A case-insensitive matcher of `query` taken literally; null for an empty query. */
export function searchPattern(query: string): RegExp | null {
  if (!query) return null;
  return new RegExp(escapeRegExp(query), "gi");
}

/** Whether `text` contains `query` (case-insensitive, literal). An empty query matches all. */
export function lineMatches(text: string, query: string): boolean {
  if (!query) return true;
  return text.toLowerCase().includes(query.toLowerCase());
}

/**
 * `text` cut into the pieces that match `query` (case-insensitive, literal) and those that do
 * not, in order; joined they give `text` back. The caller renders them as React text spans.
 */
export function splitHighlight(text: string, query: string): Segment[] {
  const pattern = searchPattern(query);
  if (!pattern) return [{ text, match: false }];
  const out: Segment[] = [];
  let last = 0;
  for (const m of text.matchAll(pattern)) {
    const start = m.index ?? 0;
    if (start > last) out.push({ text: text.slice(last, start), match: false });
    out.push({ text: m[0], match: true });
    last = start + m[0].length;
  }
  if (last < text.length || out.length === 0) out.push({ text: text.slice(last), match: false });
  return out;
}

/** The newest `max` lines. */
export function capLines<T>(lines: T[], max = MAX_LINES): T[] {
  return lines.length > max ? lines.slice(lines.length - max) : lines;
}

/**
 * `current` and `incoming` as one list ordered by id, each id once (a line already held keeps
 * its place), capped to the newest `max`. Returns `current` itself when nothing is new.
 */
export function mergeLines(current: TailLine[], incoming: TailLine[], max = MAX_LINES): TailLine[] {
  if (incoming.length === 0) return current;
  const seen = new Set(current.map((l) => l.id));
  const fresh: TailLine[] = [];
  for (const line of incoming) {
    if (seen.has(line.id)) continue;
    seen.add(line.id);
    fresh.push(line);
  }
  if (fresh.length === 0) return current;
  const lastId = current.length ? current[current.length - 1].id : -Infinity;
  fresh.sort((a, b) => a.id - b.id);
  // the common case: everything new comes after what is held
  const merged = fresh[0].id > lastId ? current.concat(fresh) : current.concat(fresh).sort((a, b) => a.id - b.id);
  return capLines(merged, max);
}

/** A console line from the API as a tail line. */
export function fromConsole(line: {
  id: number;
  time: number;
  stream: string;
  host: string | null;
  rank: number | null;
  line: string;
}): TailLine {
  return { id: line.id, text: stripAnsi(line.line), stream: line.stream, time: line.time, host: line.host, rank: line.rank };
}

/** A line of the job's output file (its byte offset is its id) as a tail line. */
export function fromFile(line: { offset: number; text: string }, stream: string): TailLine {
  return { id: line.offset, text: stripAnsi(line.text), stream, time: null, host: null, rank: null };
}

export interface ScrollPosition {
  scrollTop: number;
  scrollHeight: number;
  clientHeight: number;
}

/** Within `slack` pixels of the bottom counts as at the bottom (zoom rounding, sub-pixel sizes). */
export function isAtBottom(pos: ScrollPosition, slack = 8): boolean {
  return pos.scrollHeight - pos.clientHeight - pos.scrollTop <= slack;
}

/**
 * Whether to keep following after the user scrolled: reaching the bottom turns following on,
 * scrolling up away from it turns it off, anything else keeps `following` as it was.
 */
export function followAfterScroll(following: boolean, previousTop: number, pos: ScrollPosition): boolean {
  if (isAtBottom(pos)) return true;
  if (pos.scrollTop < previousTop) return false;
  return following;
}

/** The lines to show: of `stream` ("all": every stream) and, with `filter`, only those matching. */
export function visibleLines(lines: TailLine[], stream: string, query: string, filter: boolean): TailLine[] {
  let out = stream === "all" ? lines : lines.filter((l) => l.stream === stream);
  if (filter && query) out = out.filter((l) => lineMatches(l.text, query));
  return out;
}

/** How many lines contain `query`. */
export function countMatches(lines: TailLine[], query: string): number {
  if (!query) return 0;
  let n = 0;
  for (const l of lines) if (lineMatches(l.text, query)) n++;
  return n;
}
