import { describe, expect, it } from "vitest";

import type { ClusterNode, ClusterPartition } from "../cluster/cluster";
import {
  arrayPreview,
  buildBody,
  defaultSweepName,
  emptyForm,
  fieldForServerError,
  fieldForSweepError,
  formatParam,
  joinArgs,
  MAX_SWEEP_TRIALS,
  minutesInWords,
  parseAfter,
  parseArraySpec,
  parseConfig,
  parseEnv,
  parseSweep,
  parseTags,
  parseTimeLimit,
  prefillFromRun,
  quoteArg,
  resourceWarnings,
  slurmTime,
  specText,
  splitArgs,
  sweepErrorText,
  sweepRequest,
  sweepSpec,
  sweepText,
  trialArgv,
  usesPlaceholders,
  type LaunchForm,
} from "./launchForm";

function argv(text: string): string[] {
  const r = splitArgs(text);
  if (!r.ok) throw new Error(r.error);
  return r.value;
}

describe("splitArgs", () => {
  it("splits on whitespace", () => {
    expect(argv("python  train.py\t--lr 0.01\n--epochs 3")).toEqual(["python", "train.py", "--lr", "0.01", "--epochs", "3"]);
    expect(argv("   ")).toEqual([]);
  });

  it("keeps single quotes literal", () => {
    expect(argv(`echo 'a b' 'it\\s' '$HOME "x"'`)).toEqual(["echo", "a b", "it\\s", '$HOME "x"']);
  });

  it("reads double quotes with \\\" and \\\\ escapes", () => {
    expect(argv(`echo "say \\"hi\\"" "back\\\\slash" "keep \\n"`)).toEqual(["echo", 'say "hi"', "back\\slash", "keep \\n"]);
  });

  it("reads backslash escapes outside quotes", () => {
    expect(argv("a\\ b c\\'d \\\\")).toEqual(["a b", "c'd", "\\"]);
    expect(argv("a \\\nb")).toEqual(["a", "b"]);
  });

  it("joins adjacent quoted parts into one word and keeps empty arguments", () => {
    expect(argv(`--name="a b"'c' '' ""`)).toEqual(["--name=a bc", "", ""]);
  });

  it("expands nothing: no variables, globs or pipes", () => {
    expect(argv("ls $HOME *.py | wc > out; rm")).toEqual(["ls", "$HOME", "*.py", "|", "wc", ">", "out;", "rm"]);
  });

  it("reports unterminated quotes and a lone backslash", () => {
    const single = splitArgs("echo 'abc");
    expect(single.ok).toBe(false);
    if (!single.ok) expect(single.error).toMatch(/unterminated single quote.*character 6/);
    const double = splitArgs('echo "abc');
    expect(double.ok).toBe(false);
    if (!double.ok) expect(double.error).toMatch(/unterminated double quote/);
    expect(splitArgs("echo \\").ok).toBe(false);
  });

  it("keeps unicode whole", () => {
    expect(argv("echo héllo '日本 語' 🙂x")).toEqual(["echo", "héllo", "日本 語", "🙂x"]);
  });
});

describe("joinArgs", () => {
  const cases: string[][] = [
    ["python", "train.py", "--lr", "0.01"],
    ["echo", "a b", "", "it's", 'say "hi"', "back\\slash", "$HOME", "*", "a;b", "tab\there", "new\nline"],
    ["python3", "-c", 'import time; time.sleep(30); print("done")'],
    ["echo", "héllo", "日本 語", "🙂", "naïve café", "\u00a0nbsp"],
    ["--flag=x=y", "a,b", "~", "-", "'", "''", '"', "\\"],
  ];
  it.each(cases)("round-trips through splitArgs (%#)", (...args) => {
    const text = joinArgs(args);
    expect(argv(text)).toEqual(args);
  });

  it("quotes only what needs it", () => {
    expect(joinArgs(["python", "train.py", "--lr=0.1", "a/b.c", "héllo"])).toBe("python train.py --lr=0.1 a/b.c héllo");
    expect(quoteArg("a b")).toBe("'a b'");
    expect(quoteArg("")).toBe("''");
    expect(quoteArg("it's")).toBe(`'it'\\''s'`);
  });
});

describe("time limits", () => {
  const minutes = (t: string) => {
    const r = parseTimeLimit(t);
    if (!r.ok) throw new Error(r.error);
    return r.value;
  };
  it("reads minutes, Slurm times and units", () => {
    expect(minutes("")).toBeNull();
    expect(minutes("90")).toBe(90);
    expect(minutes("1:30:00")).toBe(90);
    expect(minutes("30:00")).toBe(30); // M:S, as Slurm
    expect(minutes("10:30")).toBe(11); // seconds round up
    expect(minutes("2h")).toBe(120);
    expect(minutes("90m")).toBe(90);
    expect(minutes("90 min")).toBe(90);
    expect(minutes("1h30m")).toBe(90);
    expect(minutes("1d 12h")).toBe(2160);
    expect(minutes("45s")).toBe(1);
    expect(minutes("1-00:00:00")).toBe(1440);
    expect(minutes("2-12")).toBe(3600);
    expect(minutes("1-2:30")).toBe(1590);
  });

  it("rejects what is not a time", () => {
    for (const bad of ["abc", "1:2:3:4", "-5", "1.5h", "0", "h", "1-", "a-1"]) expect(parseTimeLimit(bad).ok, bad).toBe(false);
  });

  it("normalises", () => {
    expect(slurmTime(90)).toBe("1:30:00");
    expect(slurmTime(5)).toBe("0:05:00");
    expect(slurmTime(1440)).toBe("1-00:00:00");
    expect(slurmTime(1590)).toBe("1-02:30:00");
    expect(minutesInWords(90)).toBe("1 h 30 min");
    expect(minutesInWords(2880)).toBe("2 d");
    expect(minutesInWords(10)).toBe("10 min");
    // the normalised form reads back as the same time
    for (const m of [1, 59, 60, 90, 1439, 1440, 1590, 100000]) expect(minutes(slurmTime(m))).toBe(m);
  });
});

describe("array specs", () => {
  const spec = (t: string) => {
    const r = parseArraySpec(t);
    if (!r.ok) throw new Error(r.error);
    return r.value;
  };
  it("reads ranges, lists, steps and the throttle", () => {
    expect(spec("0-9%2")).toEqual({ taskIds: [0, 1, 2, 3, 4, 5, 6, 7, 8, 9], throttle: 2 });
    expect(spec("1,3,5-7").taskIds).toEqual([1, 3, 5, 6, 7]);
    expect(spec("0-10:5").taskIds).toEqual([0, 5, 10]);
    expect(spec("3,1,3").taskIds).toEqual([1, 3]);
  });

  it("previews in words", () => {
    expect(arrayPreview(spec("0-9%2"))).toBe("10 tasks (0–9), at most 2 at once");
    expect(arrayPreview(spec("4"))).toBe("1 task (task 4), all may run at once");
    expect(arrayPreview(spec("1,3,5"))).toBe("3 tasks (1, 3, 5), all may run at once");
    expect(arrayPreview(spec("0-100:10"))).toBe("11 tasks (0, 10, 20, …, 100), all may run at once");
  });

  it("rejects bad specs", () => {
    for (const bad of ["", "a", "5-2", "0-9%0", "0-9%", "0-10:0", "0-99999", "1-", "0-4000001"]) {
      expect(parseArraySpec(bad).ok, bad).toBe(false);
    }
  });
});

describe("sweeps", () => {
  it("expands the grid, last key fastest (the server's order)", () => {
    const r = parseSweep("lr = 0.1, 0.01\n# comment\n\nopt = adam, sgd\nflag = true");
    expect(r.ok).toBe(true);
    if (!r.ok || !r.value) return;
    expect(r.value.keys).toEqual(["lr", "opt", "flag"]);
    expect(r.value.grid).toEqual({ lr: [0.1, 0.01], opt: ["adam", "sgd"], flag: [true] });
    expect(r.value.tasks).toEqual([
      { lr: 0.1, opt: "adam", flag: true },
      { lr: 0.1, opt: "sgd", flag: true },
      { lr: 0.01, opt: "adam", flag: true },
      { lr: 0.01, opt: "sgd", flag: true },
    ]);
  });

  it("keeps quoted strings with commas", () => {
    const r = parseSweep('name = "a,b", c, "0.5"');
    expect(r.ok && r.value?.grid.name).toEqual(["a,b", "c", "0.5"]);
  });

  it("is empty without lines and rejects bad lines", () => {
    expect(parseSweep("  \n# x")).toEqual({ ok: true, value: null });
    expect(parseSweep("lr 0.1").ok).toBe(false);
    expect(parseSweep("lr = ").ok).toBe(false);
    expect(parseSweep("lr = 1\nlr = 2").ok).toBe(false);
    expect(parseSweep("a b = 1").ok).toBe(false);
    expect(parseSweep("1lr = 1").ok).toBe(false);
    expect(parseSweep(`${"x".repeat(101)} = 1`).ok).toBe(false);
    expect(parseSweep(`${"x".repeat(100)} = 1`).ok).toBe(true);
  });

  it("follows the server's value rules", () => {
    const nul = parseSweep("a = 1, null");
    expect(!nul.ok && nul.error).toMatch(/null is not a parameter value/);
    expect(parseSweep('a = 1, "null"').ok).toBe(true);
    const dup = parseSweep("a = 0.1, 0.10");
    expect(!dup.ok && dup.error).toMatch(/line 1: a lists 0.1 twice/);
    expect(parseSweep('a = 1, "1"').ok).toBe(true); // a number and a string differ
    expect(parseSweep("a = 1e999").ok).toBe(false);
  });

  it("allows up to 10,000 combinations", () => {
    const values = (n: number) => Array.from({ length: n }, (_, i) => i).join(",");
    expect(MAX_SWEEP_TRIALS).toBe(10_000);
    const ok = parseSweep(`a = ${values(100)}\nb = ${values(100)}`);
    expect(ok.ok && ok.value?.tasks.length).toBe(10_000);
    const over = parseSweep(`a = ${values(100)}\nb = ${values(101)}`);
    expect(!over.ok && over.error).toMatch(/100 × 101 = 10,100 combinations: a grid has at most 10,000/);
  });

  it("writes the grid back as lines", () => {
    const grid = { lr: [0.1, 0.01], opt: ["adam", "a,b", "0.5", "null", " pad"], on: [true] };
    const text = sweepText(grid);
    const again = parseSweep(text);
    expect(again.ok && again.value?.grid).toEqual(grid);
  });
});

describe("other fields", () => {
  it("reads env lines", () => {
    expect(parseEnv("A=1\n\n# c\nB_2= x=y ")).toEqual({ ok: true, value: { A: "1", B_2: " x=y " } });
    expect(parseEnv("1A=x").ok).toBe(false);
    expect(parseEnv("RUNYARD_API_KEY=x").ok).toBe(false);
    expect(parseEnv("A").ok).toBe(false);
    expect(parseEnv("A=1\nA=2").ok).toBe(false);
  });

  it("reads config JSON objects only", () => {
    expect(parseConfig("")).toEqual({ ok: true, value: {} });
    expect(parseConfig('{"lr": 0.1}')).toEqual({ ok: true, value: { lr: 0.1 } });
    expect(parseConfig("[1]").ok).toBe(false);
    expect(parseConfig("{lr: 1}").ok).toBe(false);
  });

  it("reads tags and dependencies", () => {
    expect(parseTags(" a, b ,,a ")).toEqual({ ok: true, value: ["a", "b"] });
    expect(parseAfter("123, 456:any  abcdef0123:notok")).toEqual({ ok: true, value: ["123", "456:any", "abcdef0123:notok"] });
    expect(parseAfter("12:maybe").ok).toBe(false);
  });
});

const nodes: ClusterNode[] = [1, 2, 3].map((i) => ({
  name: `n${i}`,
  state: "idle",
  cpus_alloc: 0,
  cpus_total: i === 3 ? 8 : 4,
  gpus_used: 0,
  gpus_total: i === 3 ? 8 : 4,
  memory_alloc_mb: 0,
  memory_total_mb: i === 3 ? 16384 : 4000,
  partitions: i === 3 ? ["debug", "big"] : ["debug", "cpu"],
  reason: null,
}));
const partitions: ClusterPartition[] = [
  { name: "debug", state: "UP", default: true, max_time_min: 10, default_time_min: 5, nodes: "n[1-3]", total_nodes: 3, total_cpus: 16, gpus: 16, memory_mb: 24384 },
  { name: "cpu", state: "UP", default: false, max_time_min: null, default_time_min: 60, nodes: "n[1-2]", total_nodes: 2, total_cpus: 8, gpus: 8, memory_mb: 8000 },
  { name: "big", state: "DOWN", default: false, max_time_min: 2880, default_time_min: 60, nodes: "n3", total_nodes: 1, total_cpus: 8, gpus: 8, memory_mb: 16384 },
];

function form(patch: Partial<LaunchForm>): LaunchForm {
  return { ...emptyForm("/tmp"), project: "p", experiment: "e", command: "python train.py", ...patch };
}

describe("warnings against the partitions", () => {
  const warn = (patch: Partial<LaunchForm>) => resourceWarnings(form(patch), partitions, nodes);

  it("says nothing for a request that fits", () => {
    expect(warn({})).toEqual([]);
    expect(warn({ partition: "cpu", gpusPerNode: "4", cpusPerTask: "4", memGb: "3", time: "2h", nodes: "2" })).toEqual([]);
  });

  it("uses the default partition when none is named", () => {
    const w = warn({ time: "20" });
    expect(w).toHaveLength(1);
    expect(w[0].field).toBe("time");
    expect(w[0].message).toContain("default partition (debug)");
    expect(w[0].message).toContain("10 min maximum");
  });

  it("warns of GPUs, CPUs, memory and nodes no node has", () => {
    const w = warn({ partition: "cpu", gpusPerNode: "8", cpusPerTask: "6", memGb: "8", nodes: "3" });
    const byField = Object.fromEntries(w.map((x) => [x.field, x.message]));
    expect(byField.gpusPerNode).toMatch(/No node of the cpu partition has 8 GPUs \(the most is 4\)/);
    expect(byField.cpusPerTask).toMatch(/6 CPUs \(the most is 4\)/);
    expect(byField.memGb).toMatch(/8 GB of memory \(the most is 3.9 GB\)/);
    expect(byField.nodes).toMatch(/has 2 nodes; the job asks for 3/);
  });

  it("counts tasks × CPUs per task", () => {
    const w = warn({ partition: "cpu", ntasksPerNode: "2", cpusPerTask: "3" });
    expect(w.map((x) => x.field)).toEqual(["ntasksPerNode"]);
    expect(w[0].message).toContain("6 CPUs (2 tasks × 3)");
  });

  it("warns when fewer nodes can hold the per-node request than asked for", () => {
    const w = warn({ gpusPerNode: "8", nodes: "2" });
    expect(w.map((x) => x.field)).toEqual(["nodes"]);
    expect(w[0].message).toMatch(/Only 1 node of the default partition \(debug\)/);
  });

  it("warns of a down partition and an unknown one", () => {
    expect(warn({ partition: "big" })[0].message).toMatch(/is down/);
    const w = warn({ partition: "nope", gpusPerNode: "99" });
    expect(w).toHaveLength(1);
    expect(w[0].message).toMatch(/no partition "nope"/);
  });

  it("warns of no GPUs at all", () => {
    const cpuOnly = nodes.map((n) => ({ ...n, gpus_total: 0 }));
    expect(resourceWarnings(form({ gpusPerNode: "1" }), partitions, cpuOnly)[0].message).toMatch(/has no GPUs/);
  });

  it("says nothing without cluster data", () => {
    expect(resourceWarnings(form({ gpusPerNode: "99" }), [], [])).toEqual([]);
  });
});

describe("sweep spec", () => {
  it("formats values as the server writes them", () => {
    expect(formatParam("a b")).toBe("a b");
    expect(formatParam(true)).toBe("true");
    expect(formatParam(32)).toBe("32");
    expect(formatParam(0.1)).toBe("0.1");
    expect(formatParam(0.0001)).toBe("0.0001");
    expect(formatParam(0.00001)).toBe("1e-05");
    expect(formatParam(-2.5e-7)).toBe("-2.5e-07");
    expect(formatParam(1e21)).toBe("1e+21");
  });

  it("builds each trial's argv like the server", () => {
    expect(trialArgv(["python", "train.py"], ["lr", "bs"], { lr: 0.1, bs: 32 })).toEqual(["python", "train.py", "--lr=0.1", "--bs=32"]);
    expect(usesPlaceholders(["python", "--lr={lr}"], ["lr"])).toBe(true);
    expect(usesPlaceholders(["echo", "{{lr}}", "{other}"], ["lr"])).toBe(false);
    expect(trialArgv(["python", "--lr={lr}", "{{x}}"], ["lr"], { lr: 1e-5 })).toEqual(["python", "--lr=1e-05", "{x}"]);
  });

  it("names a sweep from its script", () => {
    expect(defaultSweepName(["/venv/bin/python", "/w/examples/train.py", "--epochs", "2"])).toBe("train-sweep");
    expect(defaultSweepName(["python", "-u", "my train.py"])).toBe("my-train-sweep");
    expect(defaultSweepName(["./run"])).toBe("run-sweep");
    expect(defaultSweepName(["!!!"])).toBe("grid-sweep");
    expect(defaultSweepName([`${"a".repeat(100)}.py`]).length).toBeLessThanOrEqual(64);
  });

  it("builds the spec from the form", () => {
    const { body, sweep, errors } = buildBody(
      form({
        name: "lr-grid",
        command: "/venv/bin/python train.py --epochs 2",
        sweep: "lr = 0.1, 0.01\nbatch_size = 32, 64, 128\nopt = adam",
        sweepThrottle: "2",
        sweepMetric: "val/loss",
        sweepGoal: "maximize",
        partition: "debug",
        memGb: "0.2",
        time: "5",
        env: "A=1",
        tags: "x, y",
        requeue: false,
        maxRestarts: "2",
        outputDir: "logs",
        account: "acct",
      }),
    );
    expect(errors).toEqual({});
    expect(body).toBeNull();
    expect(sweep).toEqual({
      name: "lr-grid",
      project: "p",
      experiment: "e",
      command: ["/venv/bin/python", "train.py", "--epochs", "2"],
      workdir: "/tmp",
      output_dir: "logs",
      method: "grid",
      parameters: { lr: [0.1, 0.01], batch_size: [32, 64, 128], opt: ["adam"] },
      concurrency: 2,
      metric: { name: "val/loss", goal: "maximize" },
      resources: { partition: "debug", mem_gb: 0.2, time_limit_min: 5, account: "acct" },
      env: { A: "1" },
      tags: ["x", "y"],
      requeue: false,
      max_restarts: 2,
    });
    // parameters keep the order written (it is the order of the --name=value arguments)
    expect(Object.keys(sweep!.parameters)).toEqual(["lr", "batch_size", "opt"]);
  });

  it("leaves out what is not given", () => {
    const { sweep } = buildBody(form({ sweep: "a = 1, 2", sweepGoal: "maximize" }));
    expect(sweep).toEqual({
      name: "train-sweep",
      project: "p",
      experiment: "e",
      command: ["python", "train.py"],
      workdir: "/tmp",
      method: "grid",
      parameters: { a: [1, 2] },
      requeue: true,
      max_restarts: 5,
    });
  });

  it("is the request body of POST /api/v1/sweeps, as JSON (which is YAML)", () => {
    const { body } = buildBody(form({ name: "n", env: "X=caf\u00e9 \u0085 \u009f", tags: "\u{1F600}" }));
    const spec = sweepSpec(body!, { keys: ["lr"], grid: { lr: [0.1, "a\"b"] }, tasks: [] }, { concurrency: 3 });
    const req = sweepRequest(spec);
    expect(req.source).toBe("launch form");
    expect(req.base_dir).toBe("/tmp");
    expect(JSON.parse(req.spec)).toEqual(spec);
    expect(req.spec).toBe(specText(spec));
    // C1 controls are escaped (YAML refuses them raw); other text stays as it is
    expect(req.spec).toContain("\\u0085");
    expect(req.spec).toContain("\\u009f");
    expect(req.spec).toContain("café");
    expect(req.spec).toContain("\u{1F600}");
    expect(/[\u007f-\u009f]/.test(req.spec)).toBe(false);
  });

  it("refuses what a sweep cannot do", () => {
    const e = (f: Partial<LaunchForm>) => buildBody(form({ sweep: "a = 1, 2", ...f })).errors;
    expect(e({ array: "0-3" }).array).toBeTruthy();
    expect(e({ after: "123" }).after).toBeTruthy();
    expect(e({ config: '{"a": 1}' }).config).toBeTruthy();
    expect(e({ signalBeforeEnd: "60" }).signalBeforeEnd).toBeTruthy();
    expect(e({ mode: "script", script: "#!/bin/bash\nhostname" }).sweep).toMatch(/not a script/);
    expect(e({ sweepThrottle: "0" }).sweepThrottle).toBeTruthy();
    expect(e({ sweepThrottle: "10001" }).sweepThrottle).toBeTruthy();
    expect(e({ sweepMetric: "a\u0007b" }).sweepMetric).toBeTruthy();
    expect(e({ sweepMetric: "x".repeat(251) }).sweepMetric).toBeTruthy();
    expect(e({ env: "RUNYARD_SWEEP_ID=x" }).env).toBeTruthy();
    expect(e({ name: "has space" }).name).toBeTruthy();
    // without a sweep the sweep-only fields are ignored and the plain launch is unchanged
    const plain = buildBody(form({ sweepThrottle: "x", sweepMetric: "m" }));
    expect(plain.errors).toEqual({});
    expect(plain.sweep).toBeNull();
    expect(plain.body?.command).toEqual(["python", "train.py"]);
  });

  it("maps the server's errors to fields", () => {
    expect(fieldForSweepError("parameters.lr[1]")).toBe("sweep");
    expect(fieldForSweepError("concurrency")).toBe("sweepThrottle");
    expect(fieldForSweepError("metric.name")).toBe("sweepMetric");
    expect(fieldForSweepError("env.RUNYARD_RUN_ID")).toBe("env");
    expect(fieldForSweepError("command[0]")).toBe("command");
    expect(fieldForSweepError("resources.partition")).toBe("partition");
    expect(fieldForSweepError("resources.mem_gb")).toBe("memGb");
    expect(fieldForSweepError("resources.time_limit_min")).toBe("time");
    expect(fieldForSweepError("workdir")).toBe("workdir");
    expect(fieldForSweepError("base_dir")).toBe("workdir");
    expect(fieldForSweepError("name")).toBe("name");
    expect(fieldForSweepError("tags[2]")).toBe("tags");
    expect(fieldForSweepError(null)).toBeNull();
    expect(sweepErrorText("launch form line 1: parameters.lr[1]: duplicate value 0.1 (also item 0)")).toBe(
      "parameters.lr[1]: duplicate value 0.1 (also item 0)",
    );
    expect(sweepErrorText("workdir '/x' is not an existing directory on the server")).toBe("workdir '/x' is not an existing directory on the server");
  });
});

describe("buildBody", () => {
  it("builds the POST body", () => {
    const { body, errors } = buildBody(
      form({
        name: "train-1",
        command: `python3 -c "import time; time.sleep(30)"`,
        partition: "gpu",
        gpusPerNode: "2",
        cpusPerTask: "4",
        memGb: "16",
        time: "1:30:00",
        nodes: "1",
        array: "0-9%2",
        after: "123:any",
        requeue: false,
        env: "A=1",
        config: '{"lr": 0.1}',
        tags: "x, y",
        account: "acct",
        signalBeforeEnd: "120",
        outputDir: "/tmp/logs",
      }),
    );
    expect(errors).toEqual({});
    expect(body).toEqual({
      project: "p",
      experiment: "e",
      name: "train-1",
      command: ["python3", "-c", "import time; time.sleep(30)"],
      resources: { partition: "gpu", nodes: 1, cpus_per_task: 4, gpus_per_node: 2, mem_gb: 16, time_limit_min: 90, account: "acct" },
      array: "0-9%2",
      after: ["123:any"],
      requeue: false,
      max_restarts: 5,
      signal_before_end_s: 120,
      env: { A: "1" },
      workdir: "/tmp",
      output_dir: "/tmp/logs",
      config: { lr: 0.1 },
      tags: ["x", "y"],
    });
  });

  it("leaves out what is not given", () => {
    const { body } = buildBody(form({}));
    expect(body).toEqual({
      project: "p",
      experiment: "e",
      command: ["python", "train.py"],
      resources: {},
      after: [],
      requeue: true,
      max_restarts: 5,
      env: {},
      workdir: "/tmp",
      config: {},
      tags: [],
    });
  });

  it("sends a script instead of a command", () => {
    const { body } = buildBody(form({ mode: "script", script: "#!/bin/bash\n#SBATCH -p gpu\nsrun hostname\n" }));
    expect(body?.script).toContain("srun hostname");
    expect(body && "command" in body).toBe(false);
  });

  it("collects errors by field", () => {
    const { body, errors } = buildBody(
      form({
        project: "",
        name: "has space",
        command: "echo 'x",
        gpusPerNode: "-1",
        memGb: "lots",
        time: "soon",
        array: "9-0",
        workdir: "relative/dir",
        config: "[",
        env: "bad line",
        after: "a:b",
      }),
    );
    expect(body).toBeNull();
    expect(Object.keys(errors).sort()).toEqual(
      ["project", "name", "command", "gpusPerNode", "memGb", "time", "array", "workdir", "config", "env", "after"].sort(),
    );
    expect(buildBody(form({ command: "  " })).errors.command).toBeTruthy();
    expect(buildBody(form({ workdir: "" })).errors.workdir).toBeTruthy();
  });
});

describe("server errors", () => {
  it("map to the form's fields", () => {
    expect(fieldForServerError("resources.gpus_per_node", "command")).toBe("gpusPerNode");
    expect(fieldForServerError("resources.time_limit_min", "command")).toBe("time");
    expect(fieldForServerError("after[2]", "command")).toBe("after");
    expect(fieldForServerError("tags[0]", "command")).toBe("tags");
    expect(fieldForServerError("workdir", "command")).toBe("workdir");
    expect(fieldForServerError("command", "script")).toBe("script");
    expect(fieldForServerError("signal_before_end_s", "command")).toBe("signalBeforeEnd");
    expect(fieldForServerError(null, "command")).toBeNull();
    expect(fieldForServerError("something_else", "command")).toBeNull();
  });
});

describe("prefill from a run", () => {
  it("fills the form from a launched run", () => {
    const run = {
      name: "train[3]",
      config: { lr: 0.1, seed: 7 },
      tags: ["a", "b"],
      slurm_partition: "gpu",
      slurm: {
        command: ["python3", "-c", "import time; time.sleep(30)", "it's"],
        requested: { partition: "gpu", nodes: 1, ntasks_per_node: 1, cpus_per_task: 2, gpus_per_node: 1, mem_gb: 4, time_limit_min: 90 },
        workdir: "/work/x",
        requeue: false,
        array: "0-1%1",
      },
    };
    const { form: f, notes } = prefillFromRun(run, { project: "proj", experiment: "exp" }, "/fallback");
    expect(notes).toEqual([]);
    expect(f.project).toBe("proj");
    expect(f.experiment).toBe("exp");
    expect(f.name).toBe("train");
    expect(f.mode).toBe("command");
    expect(argv(f.command)).toEqual(run.slurm.command);
    expect(f.partition).toBe("gpu");
    expect(f.cpusPerTask).toBe("2");
    expect(f.gpusPerNode).toBe("1");
    expect(f.memGb).toBe("4");
    expect(f.time).toBe("1:30:00");
    expect(f.workdir).toBe("/work/x");
    expect(f.requeue).toBe(false);
    expect(f.sweep).toBe("");
    expect(f.array).toBe("0-1%1");
    expect(JSON.parse(f.config)).toEqual({ lr: 0.1, seed: 7 });
    expect(f.tags).toBe("a, b");
    // and it builds the same request again
    const { body } = buildBody(f);
    expect(body?.command).toEqual(run.slurm.command);
    expect(body?.array).toBe("0-1%1");
    expect(body?.resources.time_limit_min).toBe(90);
  });

  it("relaunches one trial of a sweep alone", () => {
    const run = {
      name: "lr-grid[2]",
      config: { lr: 0.01, batch_size: 32 },
      tags: ["sweep"],
      slurm: {
        command: ["python", "train.py", "--lr=0.01", "--batch_size=32"],
        requested: { partition: "debug" },
        workdir: "/w",
        array: "0-3%2",
        sweep: { id: "abcdef0123456789", index: 2 },
      },
    };
    const { form: f, notes } = prefillFromRun(run, { project: "p", experiment: "e" });
    expect(f.name).toBe("lr-grid");
    expect(argv(f.command)).toEqual(run.slurm.command);
    expect(f.array).toBe("");
    expect(f.sweep).toBe("");
    expect(JSON.parse(f.config)).toEqual({ lr: 0.01, batch_size: 32 });
    expect(notes[0]).toMatch(/trial 2 of sweep abcdef01/);
    const { body, sweep } = buildBody(f);
    expect(sweep).toBeNull();
    expect(body?.array).toBeUndefined();
  });

  it("notes what it cannot know", () => {
    const script = prefillFromRun({ name: "x", config: {}, tags: [], slurm: { script_path: "/o/script-1.sh", array: "0-3" } }, { project: "p", experiment: "e" }, "/w");
    expect(script.form.mode).toBe("script");
    expect(script.form.array).toBe("0-3");
    expect(script.form.workdir).toBe("/w");
    expect(script.notes[0]).toContain("/o/script-1.sh");
    const logged = prefillFromRun({ name: "my run", config: {}, tags: [], slurm: {} }, { project: "p", experiment: "e" });
    expect(logged.form.name).toBe("");
    expect(logged.notes[0]).toMatch(/not launched through Runyard/);
  });
});
