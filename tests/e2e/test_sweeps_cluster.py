"""Issue 5's acceptance on the real local Slurm cluster: sweeps as one job array, an adaptive
sweep whose pruner stops trials, a rejected spec, and a pipeline whose failed step leaves the
next one never to run.

The module fixture submits the grid sweep (through the CLI), the adaptive sweep and the
pipeline at once, so they run side by side; each test then waits for its own.
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
import time
import urllib.error
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import BIN
from tests.e2e.test_slurm_jobs import Api, slurm_server
from tests.slurm.conftest import dev_cluster  # noqa: F401  (the module's cluster fixture)

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
PY = sys.executable
TRAIN = str(ROOT / "examples" / "sweeps" / "train.py")
STEPS = str(ROOT / "examples" / "sweeps" / "steps.py")

GRID = f"""\
name: grid12
project: acceptance
experiment: sweeps
command: [{PY}, {TRAIN}, --epochs, "3", --step-time, "0.3"]
workdir: work
method: grid
parameters:
  lr: [0.1, 0.01, 0.001]
  batch_size: [32, 64]
  dropout: {{values: [0.0, 0.5]}}
concurrency: 3
metric: {{name: val/loss, goal: minimize}}
resources: {{partition: debug, mem: 200M, time: "00:05:00"}}
"""

ADAPTIVE = f"""\
name: adaptive10
project: acceptance
experiment: sweeps
command: [{PY}, {TRAIN}, --epochs, "8", --step-time, "0.6"]
workdir: work
method: adaptive
count: 10
seed: 3
concurrency: 3
parameters:
  lr: {{min: 1.0e-4, max: 1.0, log: true}}
  batch_size: [32, 64, 128]
metric: val/loss
early_stop: {{rule: median, min_step: 2, min_trials: 2}}
resources: {{partition: debug, mem: 200M, time: "00:05:00"}}
"""

PIPELINE = f"""\
name: three-steps
project: acceptance
experiment: pipelines
workdir: work
env: {{DATA_DIR: data}}
resources: {{partition: debug, mem: 200M, time: "00:05:00"}}
steps:
  prepare:
    command: [{PY}, {STEPS}, prep]
  train:
    command: [{PY}, {STEPS}, train, --fail]
    after: prepare
  evaluate:
    command: [{PY}, {STEPS}, evaluate]
    after: [train]
"""

# one line in the middle is wrong: a grid needs values, this parameter has a range
INVALID = """\
name: broken
project: acceptance
command: [python, train.py]
method: grid
parameters:
  lr: [0.1, 0.01]
  dropout: {min: 0.0, max: 0.5}
"""


def _cli(api: Api, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**api.server.env, "RUNYARD_URL": api.server.url, "RUNYARD_API_KEY": api.server.key}
    return subprocess.run(
        [str(BIN / "runyard"), *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=120
    )


@pytest.fixture(scope="module")
def api(dev_cluster: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:  # noqa: F811
    server = slurm_server(tmp_path_factory.mktemp("sweeps"), "server")
    yield Api(server)
    server.stop()


@pytest.fixture(scope="module")
def submitted(api: Api, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """Submit the grid (CLI), the adaptive sweep and the pipeline now; cancel leftovers after."""
    folder = tmp_path_factory.mktemp("specs")
    (folder / "work").mkdir()
    out: dict[str, Any] = {"folder": folder}
    (folder / "grid.yaml").write_text(GRID)
    done = _cli(api, "sweep", "grid.yaml", cwd=folder)
    assert done.returncode == 0, done.stdout + done.stderr
    out["grid_cli"] = done.stdout
    [line] = [line for line in done.stdout.splitlines() if line.startswith("submitted sweep")]
    out["grid"] = line.split("(")[1].split(")")[0]
    body = {"spec": ADAPTIVE, "source": "adaptive.yaml", "base_dir": str(folder)}
    out["adaptive"] = api.call("POST", "/api/v1/sweeps", body)["id"]
    body = {"spec": PIPELINE, "source": "pipeline.yaml", "base_dir": str(folder)}
    out["pipeline"] = api.call("POST", "/api/v1/pipelines", body)["id"]
    yield out
    for sweep in (out["grid"], out["adaptive"]):
        with contextlib.suppress(urllib.error.HTTPError):
            api.call("POST", f"/api/v1/sweeps/{sweep}/cancel")


def _until(fetch: Callable[[], dict[str, Any]], done: Callable[[dict[str, Any]], bool], what: str,
           timeout_s: float = 300) -> dict[str, Any]:  # fmt: skip
    deadline = time.monotonic() + timeout_s
    found = fetch()
    while not done(found):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s:.0f} s waiting for {what}; last: {found}")
        time.sleep(1)
        found = fetch()
    return found


def _settled(api: Api, sweep_id: str) -> dict[str, Any]:
    """The sweep once every trial ended and Slurm's final word on each is in."""

    def fetch() -> dict[str, Any]:
        sweep: dict[str, Any] = api.call("GET", f"/api/v1/sweeps/{sweep_id}")
        sweep["runs"] = [api.run(t["run_id"]) for t in sweep["trials"]]
        return sweep

    return _until(
        fetch,
        lambda s: s["state"] != "running" and all(r["slurm_done"] for r in s["runs"]),
        f"sweep {sweep_id} to end",
    )


def _most_at_once(runs: list[dict[str, Any]]) -> int:
    edges = []
    for run in runs:
        assert run["started_at"] is not None and run["ended_at"] is not None, run
        edges += [(run["started_at"], 1), (run["ended_at"], -1)]
    most = current = 0
    for _, change in sorted(edges, key=lambda e: (e[0], e[1])):  # an end before a start at a tie
        current += change
        most = max(most, current)
    return most


def test_grid_sweep_runs_as_one_throttled_array(api: Api, submitted: dict[str, Any]) -> None:
    sweep = _settled(api, submitted["grid"])
    assert "12 trials as job" in submitted["grid_cli"], submitted["grid_cli"]
    runs = sweep["runs"]
    assert sweep["method"] == "grid" and sweep["trial_count"] == 12 and len(runs) == 12
    [job] = sweep["job_ids"]  # one array, one sbatch
    assert {r["slurm_array_job_id"] for r in runs} == {job}
    assert sorted(r["slurm_array_task_id"] for r in runs) == list(range(12))
    assert {r["slurm"]["array"] for r in runs} == {"0-11%3"}  # the throttle Slurm was given
    assert sweep["counts"]["finished"] == 12, sweep["counts"]
    # every combination once, as the run's config, in grid order (the last parameter fastest)
    combos = [(lr, bs, d) for lr in (0.1, 0.01, 0.001) for bs in (32, 64) for d in (0.0, 0.5)]
    for run in runs:
        index = run["slurm_array_task_id"]
        lr, bs, dropout = combos[index]
        assert {k: run["config"][k] for k in ("lr", "batch_size", "dropout")} == {
            "lr": lr,
            "batch_size": bs,
            "dropout": dropout,
        }, run["config"]
        assert run["sweep_id"] == sweep["id"] and run["status"] == "finished"
        assert run["metrics"]["val/loss"]["count"] == 3, run["metrics"]
        assert f"--lr={lr}" in run["slurm"]["command"], run["slurm"]["command"]
    # %3: Slurm never ran more than three trials at once
    assert _most_at_once(runs) <= 3
    # the best trial is the one with the lowest final val/loss
    values = {r["id"]: r["metrics"]["val/loss"]["last"] for r in runs}
    best_id = min(values, key=values.__getitem__)
    assert sweep["best"]["run_id"] == best_id and sweep["best"]["value"] == values[best_id]
    status = _cli(api, "sweep", "status", sweep["id"], cwd=submitted["folder"])
    assert status.returncode == 0, status.stderr
    assert f"run {best_id}" in status.stdout and "finished 12" in status.stdout, status.stdout


def test_adaptive_sweep_asks_the_server_and_prunes(api: Api, submitted: dict[str, Any]) -> None:
    sweep = _settled(api, submitted["adaptive"])
    runs = sweep["runs"]
    assert sweep["method"] == "adaptive" and len(runs) == 10
    assert len(sweep["job_ids"]) == 1
    for run in runs:  # each task asked the server: its params are its config, within the spec
        assert 1e-4 <= run["config"]["lr"] <= 1.0 and run["config"]["batch_size"] in (32, 64, 128), run
        assert f"--lr={run['config']['lr']!r}" in run["slurm"]["command"], run["slurm"]["command"]
    assert len({r["config"]["lr"] for r in runs}) == 10  # ten distinct suggestions
    pruned = [r for r in runs if r["status"] == "pruned"]
    assert pruned, [(r["status"], r["metrics"].get("val/loss")) for r in runs]
    assert sweep["counts"]["pruned"] == len(pruned)
    for run in pruned:
        # stopped early: fewer points than the 8 epochs, and Slurm's end does not overwrite it
        assert run["metrics"]["val/loss"]["count"] < 8, run["metrics"]
        assert run["slurm_state"] == "CANCELLED", run
        events = api.events(run["id"])
        [prune] = [e for e in events if e["status"] == "pruned"]
        assert "worse than the median" in prune["message"], prune
        [trial] = [t for t in sweep["trials"] if t["run_id"] == run["id"]]
        assert trial["reason"] == prune["message"]
    finished = [r for r in runs if r["status"] == "finished"]
    assert finished and sweep["best"]["run_id"] in {r["id"] for r in finished}


def test_invalid_spec_is_rejected_with_line_and_rule(api: Api, submitted: dict[str, Any]) -> None:
    folder = submitted["folder"]
    (folder / "broken.yaml").write_text(INVALID)
    done = _cli(api, "sweep", "broken.yaml", cwd=folder)
    assert done.returncode == 1
    assert "broken.yaml line 7: parameters.dropout" in done.stderr, done.stderr
    assert "grid needs values" in done.stderr, done.stderr
    # nothing was created: no sweep named "broken" in the experiment it would have used
    experiments = api.call("GET", "/api/v1/experiments")
    assert not any(e["name"] == "broken" for e in experiments), experiments


def test_pipeline_failed_step_leaves_the_next_never_to_run(api: Api, submitted: dict[str, Any]) -> None:
    def fetch() -> dict[str, Any]:
        return dict(api.call("GET", f"/api/v1/pipelines/{submitted['pipeline']}"))

    pipeline = _until(fetch, lambda p: p["state"] != "running", "the pipeline to end")
    steps = {s["name"]: s for s in pipeline["steps"]}
    assert [s["name"] for s in pipeline["steps"]] == ["prepare", "train", "evaluate"]
    assert steps["prepare"]["state"] == "finished"
    assert steps["train"]["state"] == "failed" and steps["train"]["status"] == "failed"
    assert steps["evaluate"]["state"] == "never"
    assert steps["evaluate"]["reason"] == (
        "never runs: train failed and evaluate needs it to succeed (after train:ok)"
    )
    assert pipeline["state"] == "failed"
    # Slurm chained them: train waited for prepare's job, evaluate for train's
    train_run = api.run(steps["train"]["run_id"])
    assert train_run["slurm"]["dependency"] == f"afterok:{steps['prepare']['slurm_job_id']}"
    # --kill-on-invalid-dep: Slurm cancels the step that can never run instead of keeping it pending
    evaluate = api.wait_status(steps["evaluate"]["run_id"], "cancelled")
    assert evaluate["started_at"] is None
    shown = _cli(api, "pipeline", "status", pipeline["id"], cwd=submitted["folder"])
    assert shown.returncode == 0 and "never runs: train failed" in shown.stdout, shown.stdout
