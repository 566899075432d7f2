import { describe, expect, it } from "vitest";

import {
  capLines,
  countMatches,
  followAfterScroll,
  fromConsole,
  fromFile,
  isAtBottom,
  lineMatches,
  mergeLines,
  splitHighlight,
  stripAnsi,
  visibleLines,
  type TailLine,
} from "./logTail";

const line = (id: number, text = `line ${id}`, stream = "stdout"): TailLine => ({
  id,
  text,
  stream,
  time: null,
  host: null,
  rank: null,
});

describe("stripAnsi", () => {
  it("removes colour codes and keeps the text", () => {
    expect(stripAnsi("\x1b[31merror\x1b[0m: bad")).toBe("error: bad");
    expect(stripAnsi("\x1b[1;32mOK\x1b[39;49m done")).toBe("OK done");
  });

  it("removes cursor moves, OSC titles and links, and stray control characters", () => {
    expect(stripAnsi("\x1b[2K\x1b[1Gprogress 50%")).toBe("progress 50%");
    expect(stripAnsi("\x1b]0;my title\x07text")).toBe("text");
    expect(stripAnsi("\x1b]8;;http://x\x1b\\link\x1b]8;;\x1b\\")).toBe("link");
    expect(stripAnsi("a\x00b\x08c\x7f")).toBe("abc");
  });

  it("keeps markup-looking text and tabs as they are", () => {
    expect(stripAnsi("warning: <b>not html</b>\tok")).toBe("warning: <b>not html</b>\tok");
  });
});

describe("splitHighlight", () => {
  const join = (segs: { text: string }[]) => segs.map((s) => s.text).join("");

  it("cuts out every case-insensitive match", () => {
    const segs = splitHighlight("Loss went up; loss LOSS", "loss");
    expect(segs).toEqual([
      { text: "Loss", match: true },
      { text: " went up; ", match: false },
      { text: "loss", match: true },
      { text: " ", match: false },
      { text: "LOSS", match: true },
    ]);
  });

  it("takes regex special characters literally", () => {
    expect(splitHighlight("a.b axb", ".")).toEqual([
      { text: "a", match: false },
      { text: ".", match: true },
      { text: "b axb", match: false },
    ]);
    const text = "lr=(0.1) [x]* ^$ a+b? {2} c|d \\n /p/ -1";
    for (const q of ["(0.1)", "[x]*", "^$", "a+b?", "{2}", "c|d", "\\n", "/p/", "-1"]) {
      const segs = splitHighlight(text, q);
      expect(join(segs)).toBe(text);
      expect(segs.filter((s) => s.match).map((s) => s.text)).toEqual([q]);
    }
    expect(splitHighlight("abc", ".*")).toEqual([{ text: "abc", match: false }]);
  });

  it("gives the whole text back when nothing or everything matches", () => {
    expect(splitHighlight("abc", "")).toEqual([{ text: "abc", match: false }]);
    expect(splitHighlight("abc", "z")).toEqual([{ text: "abc", match: false }]);
    expect(splitHighlight("abc", "ABC")).toEqual([{ text: "abc", match: true }]);
    expect(splitHighlight("", "a")).toEqual([{ text: "", match: false }]);
    expect(join(splitHighlight("<b>not html</b>", "<b>"))).toBe("<b>not html</b>");
  });

  it("agrees with lineMatches", () => {
    expect(lineMatches("Step 10 LOSS", "loss")).toBe(true);
    expect(lineMatches("a.b", ".*")).toBe(false);
    expect(lineMatches("anything", "")).toBe(true);
  });
});

describe("the bounded buffer", () => {
  it("keeps the newest lines", () => {
    const lines = Array.from({ length: 10 }, (_, i) => line(i));
    expect(capLines(lines, 3).map((l) => l.id)).toEqual([7, 8, 9]);
    expect(capLines(lines, 20)).toBe(lines);
  });

  it("caps merged lines", () => {
    const held = Array.from({ length: 5000 }, (_, i) => line(i));
    const merged = mergeLines(held, [line(5000), line(5001)]);
    expect(merged.length).toBe(5000);
    expect(merged[0].id).toBe(2);
    expect(merged[merged.length - 1].id).toBe(5001);
  });
});

describe("mergeLines", () => {
  it("appends new lines and drops those already held", () => {
    const held = [line(1), line(2), line(3)];
    const merged = mergeLines(held, [line(3), line(4), line(4), line(5)]);
    expect(merged.map((l) => l.id)).toEqual([1, 2, 3, 4, 5]);
  });

  it("returns the same list when nothing is new", () => {
    const held = [line(1), line(2)];
    expect(mergeLines(held, [])).toBe(held);
    expect(mergeLines(held, [line(2), line(1)])).toBe(held);
  });

  it("orders by id when live lines arrive before the fetched ones", () => {
    const live = [line(10), line(11)];
    const fetched = [line(7), line(8), line(9), line(10)];
    expect(mergeLines(live, fetched).map((l) => l.id)).toEqual([7, 8, 9, 10, 11]);
    expect(mergeLines([], [line(3), line(1), line(2)]).map((l) => l.id)).toEqual([1, 2, 3]);
  });

  it("keeps the held copy of a line", () => {
    const held = [line(1, "held")];
    expect(mergeLines(held, [line(1, "again"), line(2)])[0].text).toBe("held");
  });
});

describe("converting API lines", () => {
  it("strips ANSI codes from console and file lines", () => {
    const c = fromConsole({ id: 4, time: 1, stream: "stderr", host: "n1", rank: 0, line: "\x1b[33mwarn\x1b[0m" });
    expect(c).toEqual({ id: 4, text: "warn", stream: "stderr", time: 1, host: "n1", rank: 0 });
    expect(fromFile({ offset: 120, text: "\x1b[1mbold\x1b[0m" }, "stdout")).toEqual({
      id: 120,
      text: "bold",
      stream: "stdout",
      time: null,
      host: null,
      rank: null,
    });
  });
});

describe("follow mode", () => {
  const pos = (scrollTop: number, scrollHeight = 1000, clientHeight = 400) => ({ scrollTop, scrollHeight, clientHeight });

  it("knows the bottom, with a little slack", () => {
    expect(isAtBottom(pos(600))).toBe(true);
    expect(isAtBottom(pos(595))).toBe(true);
    expect(isAtBottom(pos(500))).toBe(false);
    expect(isAtBottom(pos(0, 300, 400))).toBe(true); // shorter than the box
  });

  it("pauses when the user scrolls up, resumes at the bottom", () => {
    expect(followAfterScroll(true, 600, pos(550))).toBe(false);
    expect(followAfterScroll(false, 300, pos(600))).toBe(true);
    expect(followAfterScroll(false, 300, pos(400))).toBe(false); // scrolling down, not there yet
    expect(followAfterScroll(true, 400, pos(450))).toBe(true); // content grew under a follower
  });
});

describe("visibleLines", () => {
  const lines = [line(1, "step 1 loss 2.0"), line(2, "warning <b>", "stderr"), line(3, "step 2 LOSS 1.5")];

  it("filters by stream and by search", () => {
    expect(visibleLines(lines, "all", "", true).length).toBe(3);
    expect(visibleLines(lines, "stderr", "", true).map((l) => l.id)).toEqual([2]);
    expect(visibleLines(lines, "all", "loss", true).map((l) => l.id)).toEqual([1, 3]);
    expect(visibleLines(lines, "all", "loss", false).length).toBe(3);
    expect(visibleLines(lines, "stdout", "<b>", true)).toEqual([]);
    expect(countMatches(lines, "LOSS")).toBe(2);
    expect(countMatches(lines, "")).toBe(0);
  });
});
