"""Sweeps and pipelines through the API, in-process, with a real ``LocalExecutor``: specs are
checked before anything exists, trials become runs with their params, random sweeps extend,
adaptive trials ask the server once, the early-stop rule prunes and cancels, and owners only
may act on their sweeps. (The same on the real cluster: tests/e2e/test_sweeps_cluster.py.)"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from runyard.slurm.local import LocalExecutor
from runyard.store.base import Store
from runyard.sweeps.spec import expand, parse_sweep
from tests.server.conftest import assert_error
from tests.slurm.conftest import poll

SLEEP = f"[{sys.executable}, -c, 'import time; time.sleep(120)']"

GRID = f"""\
name: g
project: proj
command: {SLEEP}
method: grid
parameters:
  lr: [0.1, 0.01]
  batch_size: [32, 64]
concurrency: 2
metric: val/loss
"""

RANDOM = f"""\
name: r
project: proj
command: {SLEEP}
method: random
count: 3
seed: 7
parameters:
  lr: {{min: 1.0e-4, max: 1.0, log: true}}
"""

ADAPTIVE = f"""\
name: a
project: proj
command: {SLEEP}
method: adaptive
count: 2
parameters:
  lr: {{min: 1.0e-4, max: 1.0, log: true}}
  layers: {{min: 1, max: 4, int: true}}
metric: val/loss
"""

EARLY = f"""\
name: e
project: proj
command: {SLEEP}
method: list
trials: [{{x: 1}}, {{x: 2}}, {{x: 3}}, {{x: 4}}]
metric: {{name: val/loss, goal: minimize}}
early_stop: {{rule: median, min_step: 2, min_trials: 2}}
"""


@pytest.fixture
def client(launcher: TestClient) -> TestClient:
    return launcher


def _post(client: TestClient, spec: str, tmp_path: Path, **extra: Any) -> Any:
    return client.post("/api/v1/sweeps", json={"spec": spec, "base_dir": str(tmp_path), **extra})


def test_a_bad_spec_names_line_and_field_and_creates_nothing(
    client: TestClient,
    store: Store,
    executor: LocalExecutor,
    tmp_path: Path,
) -> None:
    bad = GRID.replace("  batch_size: [32, 64]", "  batch_size: {min: 1, max: 2}")
    error = assert_error(
        _post(client, bad, tmp_path, source="s.yaml"), 400, "invalid_input", "parameters.batch_size"
    )
    assert error["message"].startswith("s.yaml line 7: parameters.batch_size: a grid needs values"), error
    assert store.list_projects() == [] and executor.queue() == []
    relative = assert_error(
        client.post("/api/v1/sweeps", json={"spec": GRID}), 400, "invalid_input", "base_dir"
    )
    assert "relative" in relative["message"]
    assert store.list_projects() == []
    # a value only the job's own checks refuse (a partition Slurm cannot name): still nothing
    odd = GRID + "resources: {partition: 'a b'}\n"
    assert_error(_post(client, odd, tmp_path), 400, "invalid_input")
    assert store.list_projects() == [] and executor.queue() == []


def test_dry_run_shows_the_trials_and_submits_nothing(
    client: TestClient,
    store: Store,
    executor: LocalExecutor,
    tmp_path: Path,
) -> None:
    out = _post(client, GRID, tmp_path, dry_run=True)
    assert out.status_code == 200, out.text
    body = out.json()
    assert body["trial_count"] == 4 and body["experiment"] == "g"
    assert body["trials"][1]["argv"][-2:] == ["--lr=0.1", "--batch_size=64"]
    assert store.list_projects() == [] and executor.queue() == []


def test_grid_trials_are_runs_of_one_array_with_their_params(
    client: TestClient,
    store: Store,
    executor: LocalExecutor,
    tmp_path: Path,
) -> None:
    out = _post(client, GRID, tmp_path)
    assert out.status_code == 201, out.text
    sweep = out.json()
    assert sweep["trial_count"] == 4 and len(sweep["run_ids"]) == 4 and sweep["job_ids"] == [sweep["job_id"]]
    assert {str(j.array_job_id or j.job_id) for j in executor.queue()} == {sweep["job_id"]}
    detail = client.get(f"/api/v1/sweeps/{sweep['id']}").json()
    assert [t["params"] for t in detail["trials"]] == [
        {"lr": 0.1, "batch_size": 32},
        {"lr": 0.1, "batch_size": 64},
        {"lr": 0.01, "batch_size": 32},
        {"lr": 0.01, "batch_size": 64},
    ]
    run = client.get(f"/api/v1/runs/{detail['trials'][3]['run_id']}").json()
    assert run["config"] == {"lr": 0.01, "batch_size": 64} and run["sweep_id"] == sweep["id"]
    assert run["slurm"]["command"][-2:] == ["--lr=0.01", "--batch_size=64"]
    assert run["slurm"]["array"] == "0-3%2" and run["name"] == "g[3]"
    assert "sweep" in run["tags"]
    # the runs table filters by sweep
    page = client.get("/api/v1/runs", params={"filter": f"sweep_id={sweep['id']}", "limit": 10}).json()
    assert len(page["runs"]) == 4
    listed = client.get("/api/v1/sweeps", params={"experiment_id": run["experiment_id"]}).json()["sweeps"]
    assert [s["id"] for s in listed] == [sweep["id"]]
    extend = client.post(f"/api/v1/sweeps/{sweep['id']}/extend", json={"count": 2})
    assert "already has all its trials" in assert_error(extend, 400, "invalid_input", "count")["message"]


def test_random_sweeps_extend_the_same_sequence(client: TestClient, tmp_path: Path) -> None:
    first = _post(client, RANDOM, tmp_path).json()
    more = client.post(f"/api/v1/sweeps/{first['id']}/extend", json={"count": 2})
    assert more.status_code == 201, more.text
    detail = client.get(f"/api/v1/sweeps/{first['id']}").json()
    assert detail["trial_count"] == 5 and len(detail["job_ids"]) == 2
    assert [t["index"] for t in detail["trials"]] == [0, 1, 2, 3, 4]
    assert [t["params"] for t in detail["trials"]] == expand(parse_sweep(RANDOM), 0, 5)


def test_adaptive_trials_ask_once_and_only_their_owner_may(
    client: TestClient, store: Store, tmp_path: Path
) -> None:
    sweep = _post(client, ADAPTIVE, tmp_path).json()
    run_id = sweep["run_ids"][1]
    assert client.get(f"/api/v1/runs/{run_id}").json()["config"] == {}  # nothing before it asks
    asked = client.post(f"/api/v1/sweeps/{sweep['id']}/trials/{run_id}/ask")
    assert asked.status_code == 200, asked.text
    params = asked.json()["params"]
    assert 1e-4 <= params["lr"] <= 1.0 and params["layers"] in (1, 2, 3, 4)
    assert asked.json()["argv"][-2:] == [f"--lr={params['lr']!r}", f"--layers={params['layers']}"]
    assert client.get(f"/api/v1/runs/{run_id}").json()["config"] == params
    again = client.post(f"/api/v1/sweeps/{sweep['id']}/trials/{run_id}/ask").json()
    assert again["params"] == params  # a requeued task gets the same trial
    bob = store.create_user("bob")
    bob_key = store.create_api_key(bob.id)[1]
    path = f"/api/v1/sweeps/{sweep['id']}/trials/{sweep['run_ids'][0]}/ask"
    assert_error(client.post(path, headers={"X-API-Key": bob_key}), 403, "forbidden")
    assert_error(
        client.post(f"/api/v1/sweeps/{sweep['id']}/cancel", headers={"X-API-Key": bob_key}), 403, "forbidden"
    )
    other = _post(client, GRID, tmp_path).json()
    assert_error(
        client.post(f"/api/v1/sweeps/{other['id']}/trials/{other['run_ids'][0]}/ask"), 400, "invalid_input"
    )
    assert_error(
        client.post(f"/api/v1/sweeps/{sweep['id']}/trials/{other['run_ids'][0]}/ask"),
        400,
        "invalid_input",
        "run_id",
    )


def _log(client: TestClient, run_id: str, step: int, value: float) -> None:
    r = client.post(
        f"/api/v1/runs/{run_id}/metrics/batch", json={"step": step, "metrics": {"val/loss": value}}
    )
    assert r.status_code == 200, r.text


def test_the_early_stop_rule_prunes_a_bad_trial_and_cancels_its_task(
    client: TestClient,
    executor: LocalExecutor,
    tmp_path: Path,
) -> None:
    sweep = _post(client, EARLY, tmp_path).json()
    a, b, c, bad = sweep["run_ids"]
    poll(lambda: all(client.get(f"/api/v1/runs/{r}").json()["status"] == "running" for r in (a, b, c, bad)),
         30, "the four tasks to run")  # fmt: skip
    for run_id, values in ((a, [1.0, 0.5, 0.4]), (b, [1.1, 0.6, 0.5])):
        for step, value in enumerate(values, 1):
            _log(client, run_id, step, value)
        assert client.patch(f"/api/v1/runs/{run_id}", json={"status": "finished"}).status_code == 200
    _log(client, c, 1, 1.0)
    _log(client, c, 2, 0.55)  # as good as the median: goes on
    _log(client, bad, 1, 3.0)  # before min_step: never judged
    assert client.get(f"/api/v1/runs/{bad}").json()["status"] == "running"
    _log(client, bad, 2, 2.9)  # worse than the median of the finished trials at step 2
    pruned = poll(
        lambda: (r := client.get(f"/api/v1/runs/{bad}").json())["status"] == "pruned" and r, 30, "the prune"
    )
    reason = pruned["slurm"]["sweep"]["pruned"]
    assert reason.startswith("pruned at step 2: val/loss 2.9") and "median" in reason, reason
    events = client.get(f"/api/v1/runs/{bad}/events").json()["events"]
    assert any(e["status"] == "pruned" and e["message"] == reason for e in events)
    # its task was cancelled; Slurm's (here: the local executor's) CANCELLED does not undo "pruned"
    poll(
        lambda: client.get(f"/api/v1/runs/{bad}").json()["slurm_state"] == "CANCELLED" or None,
        30,
        "Slurm's word",
    )
    assert client.get(f"/api/v1/runs/{bad}").json()["status"] == "pruned"
    assert client.get(f"/api/v1/runs/{c}").json()["status"] == "running"
    detail = client.get(f"/api/v1/sweeps/{sweep['id']}").json()
    assert detail["counts"]["pruned"] == 1 and detail["best"]["run_id"] == a
    [trial] = [t for t in detail["trials"] if t["run_id"] == bad]
    assert trial["status"] == "pruned" and trial["reason"] == reason


def test_cancel_ends_the_sweep(client: TestClient, tmp_path: Path) -> None:
    sweep = _post(client, GRID, tmp_path).json()
    out = client.post(f"/api/v1/sweeps/{sweep['id']}/cancel")
    assert out.status_code == 200, out.text
    assert out.json()["state"] == "cancelled"
    for run_id in sweep["run_ids"]:
        poll(
            lambda r=run_id: client.get(f"/api/v1/runs/{r}").json()["status"] == "cancelled", 30, "cancelled"
        )
    assert_error(client.post(f"/api/v1/sweeps/{sweep['id']}/extend", json={"count": 1}), 400, "invalid_input")
