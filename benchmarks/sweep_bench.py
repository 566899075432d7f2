"""Expanding and submitting a 1,000-trial grid sweep as ONE job array (issue 5's figure).

    .venv/bin/python benchmarks/sweep_bench.py [--trials 1000] [--reps 3]

A `runyard server` subprocess with the Slurm executor (the dev cluster is brought up when it
is not running), and `POST /api/v1/sweeps` timed from this process: parse and check the YAML,
expand the grid, create 1,000 runs with their params, render the script (each task's argv by
task id), one `sbatch`, and record the job on every run. Each array is cancelled right after.
Also timed in-process: the pure part (parse, expand, argv, render) without the store or sbatch.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from tests.e2e.conftest import LiveServer, free_port  # noqa: E402

TARGET = "≤ 2 s"


def grid_spec(trials: int) -> str:
    """A grid of ``trials`` = a x b x c combinations (three parameters)."""
    side = round(trials ** (1 / 3))
    assert side**3 == trials, f"{trials} is not a cube"
    values = lambda scale: [round(scale * (i + 1), 6) for i in range(side)]  # noqa: E731
    return (
        "name: bench-grid\n"
        "project: bench\n"
        f"command: [{sys.executable}, -c, 'import time; time.sleep(1)']\n"
        "method: grid\n"
        "parameters:\n"
        f"  lr: {values(0.001)}\n"
        f"  batch_size: {[16 * (i + 1) for i in range(side)]}\n"
        f"  dropout: {values(0.05)}\n"
        "concurrency: 1\n"
        "metric: val/loss\n"
        "resources: {partition: debug, mem: 100M, time: '00:01:00'}\n"
    )


def pure(spec: str, reps: int) -> float:
    """Median seconds of parse + expand + argv + render (what no store or sbatch takes)."""
    from runyard.slurm.launch import plan_launch
    from runyard.slurm.script import JobReport, Trials, render_sbatch
    from runyard.sweeps.spec import expand, parse_sweep, trial_argv

    times = []
    for _ in range(reps):
        start = time.perf_counter()
        parsed = parse_sweep(spec)
        params = expand(parsed)
        argv = {i: trial_argv(parsed, p) for i, p in enumerate(params)}
        plan = plan_launch(
            name=parsed.name,
            command=list(parsed.command),
            script=None,
            workdir="/tmp",
            output_dir="/tmp/logs",
            resources=dict(parsed.resources),
            array=f"0-{len(params) - 1}%1",
        )
        report = JobReport(url="http://127.0.0.1:1", python=sys.executable, array_base_id="b" * 32)
        render_sbatch(plan.spec, run_env={}, report=report, trials=Trials(argv=argv))
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _slurm_up() -> bool:
    if subprocess.run(["scontrol", "ping"], capture_output=True, check=False).returncode == 0:
        return True
    up = subprocess.run([str(ROOT / ".venv" / "bin" / "runyard"), "dev-cluster", "up"], check=False)
    return up.returncode == 0


def bench_sweep_submit(trials: int = 1000, reps: int = 3) -> list[tuple[str, str, str]]:
    spec = grid_spec(trials)
    rows = [(f"sweep: parse + expand + render a {trials:,}-trial grid", f"{pure(spec, 5) * 1000:.0f} ms", "")]
    if not _slurm_up():
        rows.append(
            (f"sweep: submit a {trials:,}-trial grid", "skipped: no Slurm (dev-cluster up failed)", TARGET)
        )
        return rows
    with tempfile.TemporaryDirectory() as tmp:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("RUNYARD_", "SLURM_", "TRACKER_"))}
        env.update(
            RUNYARD_EXECUTOR="slurm", RUNYARD_CONFIG=f"{tmp}/client.toml", RUNYARD_JOB_PYTHON=sys.executable
        )
        data = Path(tmp) / "server"
        data.mkdir()
        server = LiveServer(data, free_port(), env)
        server.start()
        try:
            times = []
            for _ in range(reps):
                start = time.perf_counter()
                out = server.post("/api/v1/sweeps", {"spec": spec, "source": "bench.yaml", "base_dir": tmp})
                times.append(time.perf_counter() - start)
                assert out["trial_count"] == trials and len(out["job_ids"]) == 1, out
                subprocess.run(["scancel", out["job_ids"][0]], check=False)
            value = f"median {statistics.median(times):.2f} s, best {min(times):.2f} s (one sbatch, {trials:,} runs)"
            rows.append((f"sweep: POST a {trials:,}-trial grid → runs + one array job", value, TARGET))
        finally:
            server.stop()
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=1000)
    parser.add_argument("--reps", type=int, default=2)
    args = parser.parse_args()
    for name, value, target in bench_sweep_submit(args.trials, args.reps):
        print(json.dumps({"benchmark": name, "measured": value, "target": target}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
