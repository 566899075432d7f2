"""``runyard launch --wait`` on the real dev cluster: a live server (executor auto → Slurm, as
sbatch is on PATH), the CLI in a subprocess, a job that logs through ``runyard.init``."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import BIN, LiveServer, free_port
from tests.e2e.test_dev_cluster import cluster as dev_cluster  # noqa: F401 - fixture

pytestmark = pytest.mark.e2e

PY = sys.executable
JOB = 'import runyard; r = runyard.init(project="p", experiment="e"); r.log({"x": 1}); r.finish()'


@pytest.fixture(scope="module")
def server(dev_cluster: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:  # noqa: F811
    tmp = tmp_path_factory.mktemp("launch-cluster")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RUNYARD_", "SLURM_", "TRACKER_"))}
    env.update(
        RUNYARD_CONFIG=str(tmp / "client-config.toml"),
        RUNYARD_SLURM_POLL_S="1",
        RUNYARD_SLURM_POLL_MAX_S="2",
        RUNYARD_SLURM_MAX_CALLS_PER_MIN="300",
        RUNYARD_SPOOL_DIR=str(tmp / "spool"),
        PYTHONUNBUFFERED="1",
    )
    data = tmp / "server"
    data.mkdir()
    live = LiveServer(data, free_port(), env)
    live.start()
    yield live
    live.stop()


def test_launch_wait_runs_a_tracked_job_on_slurm(server: LiveServer, tmp_path: Path) -> None:
    work = tmp_path / "work dir"
    work.mkdir()
    env = {**server.env, "RUNYARD_URL": server.url, "RUNYARD_API_KEY": server.key}
    argv = ["launch", "--wait", "--poll", "0.5", "-p", "debug", "-t", "5", "--", PY, "-c", JOB]
    done = subprocess.run(
        [str(BIN / "runyard"), *argv],
        env=env,
        cwd=work,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "submitted command as slurm job" in done.stdout, done.stdout
    [line] = [line for line in done.stdout.splitlines() if line.startswith("run ")]
    run_id, job_id = line.split()[1], line.split()[3]
    run: dict[str, Any] = server.get(f"/api/v1/runs/{run_id}")
    assert (run["status"], run["exit_code"]) == ("finished", 0), run
    assert run["slurm_job_id"] == job_id and job_id.isdigit()
    assert run["slurm_partition"] == "debug"
    assert run["metrics"]["x"]["last"] == 1.0
    stdout = Path(run["slurm"]["stdout"])
    assert stdout.exists() and stdout.parent == work / "runyard-logs"
    assert run["slurm"]["requested"]["time_limit_min"] == 5
    events = server.get(f"/api/v1/runs/{run_id}/events")["events"]
    assert any(e["kind"] == "submitted" and job_id in e["message"] for e in events), events
