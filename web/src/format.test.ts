import { describe, expect, it } from "vitest";

import { buildUrl } from "./api";
import { flatten, formatBytes, formatDuration, formatNumber, formatRelative, toNumber } from "./format";
import { match } from "./router";

describe("numbers from the wire", () => {
  it("decodes the non-finite strings the server sends", () => {
    expect(toNumber("NaN")).toBeNaN();
    expect(toNumber("Infinity")).toBe(Infinity);
    expect(toNumber("-Infinity")).toBe(-Infinity);
    expect(toNumber(null)).toBeNull();
    expect(toNumber(1.5)).toBe(1.5);
  });

  it("formats with four significant digits", () => {
    expect(formatNumber(0.123456)).toBe("0.1235");
    expect(formatNumber(42)).toBe("42");
    expect(formatNumber(1.5e-7)).toBe("1.5e-7");
    expect(formatNumber(12345678.9)).toBe("1.235e+7");
    expect(formatNumber("NaN")).toBe("NaN");
    expect(formatNumber("-Infinity")).toBe("−∞");
    expect(formatNumber(null)).toBe("");
  });
});

describe("durations and times", () => {
  it("reads as a person would say it", () => {
    expect(formatDuration(5)).toBe("5s");
    expect(formatDuration(125)).toBe("2m 05s");
    expect(formatDuration(3 * 3600 + 5 * 60)).toBe("3h 05m");
    expect(formatDuration(50 * 3600)).toBe("2d 02h");
    expect(formatDuration(null)).toBe("");
    expect(formatDuration(-1)).toBe("");
  });

  it("relative times say ago or in", () => {
    expect(formatRelative(1000 - 300, 1000)).toBe("5 min ago");
    expect(formatRelative(1000 + 7200, 1000)).toBe("in 2 h");
  });

  it("bytes", () => {
    expect(formatBytes(512)).toBe("512 B");
    expect(formatBytes(1536)).toBe("1.5 KB");
    expect(formatBytes(200 * 1024 * 1024)).toBe("200 MB");
  });
});

describe("config", () => {
  it("flattens nested config into dotted keys as the server's params", () => {
    expect(flatten({ opt: { lr: 0.1, betas: [0.9, 0.99] }, seed: 1 })).toEqual({
      "opt.lr": 0.1,
      "opt.betas": [0.9, 0.99],
      seed: 1,
    });
  });
});

describe("urls", () => {
  it("repeats list parameters and drops empty ones", () => {
    expect(buildUrl("/api/v1/runs", { filter: ["status=running", "params.lr>=0.1"], sort: "", limit: 50 })).toBe(
      "/api/v1/runs?filter=status%3Drunning&filter=params.lr%3E%3D0.1&limit=50",
    );
  });

  it("routes match the server's pages", () => {
    expect(match("/runs/abc123").name).toBe("run");
    expect(match("/runs/abc123").params.id).toBe("abc123");
    expect(match("/experiments/e1", "?sort=name").query.get("sort")).toBe("name");
    expect(match("/").name).toBe("projects");
    expect(match("/cluster").name).toBe("cluster");
    expect(match("/nope/x").name).toBe("notfound");
  });
});
