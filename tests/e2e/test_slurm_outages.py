"""The cluster misbehaving under running jobs: a node goes down under a ``--requeue`` job, and
slurmctld stops and starts again under the watcher. These change the whole cluster, so they run
after test_slurm_jobs.py's concurrent scenarios, one at a time, each leaving the cluster whole."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.test_slurm_jobs import JOB, PY, ROOT, Api, launch, slurm_server
from tests.slurm.conftest import dev_cluster  # noqa: F401


@pytest.fixture(scope="module")
def api(dev_cluster: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:  # noqa: F811
    server = slurm_server(tmp_path_factory.mktemp("slurm-disruptions"), "server")
    yield Api(server)
    server.stop()


def scontrol(*args: str) -> None:
    subprocess.run(["scontrol", *args], check=True, capture_output=True, text=True)


def test_a_node_failing_under_a_requeue_job_continues_the_same_run(api: Api, tmp_path: Path) -> None:
    launched = launch(api, tmp_path, "node-fail", [PY, JOB, "resume", "30"], requeue=True)
    run_id = launched["run_ids"][0]
    run = api.wait(run_id, lambda r: r["status"] == "running" and r["slurm_nodes"], "running on a node")
    node = run["slurm_nodes"]
    api.wait(run_id, lambda r: r["metrics"].get("loss", {}).get("count", 0) >= 6, "a checkpoint")
    try:
        scontrol("update", f"nodename={node}", "state=down", "reason=runyard-acceptance")
        api.wait(run_id, lambda r: r["restart_count"] >= 1, "the requeue", 90)
    finally:  # ReturnToService=2 may have brought it back already; then resume is refused
        subprocess.run(["scontrol", "update", f"nodename={node}", "state=resume"], check=False)
    run = api.wait_status(run_id, "finished", "failed", "cancelled", "node_fail", timeout_s=180)
    assert run["status"] == "finished" and run["restart_count"] == 1, run
    assert run["metrics"]["loss"]["last_step"] == 29
    statuses = [e["status"] for e in api.events(run_id) if e["kind"] == "status"]
    assert "requeued" in statuses and statuses[-1] == "finished", statuses


def test_the_watcher_survives_slurmctld_stopping(api: Api, tmp_path: Path) -> None:
    launched = launch(api, tmp_path, "ctld", [PY, JOB, "sleep", "25"])
    run_id = launched["run_ids"][0]
    api.wait_status(run_id, "running")
    pid = int(Path("/run/slurm/slurmctld.pid").read_text().strip())
    try:
        os.kill(pid, signal.SIGTERM)
        run = api.wait(run_id, lambda r: r["state_unknown_since"] is not None, "state unknown", 60)
        status = api.call("GET", "/api/v1/slurm/watcher")
        assert status["running"] and status["last_error"] and "squeue" in status["last_error"]
        assert api.call("GET", "/api/v1/health")["status"] == "ok"
        assert run["status"] == "running"  # unknown is not a guess: the last known state stays
    finally:
        deadline = time.monotonic() + 30
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.2)
        subprocess.run([str(Path(PY).parent / "runyard"), "dev-cluster", "up"], check=True, cwd=ROOT)
    api.wait(run_id, lambda r: r["state_unknown_since"] is None, "Slurm to answer again", 60)
    api.wait_status(run_id, "finished", "failed", "cancelled", timeout_s=120)
    run = api.wait_exit_code(run_id)
    assert run["status"] == "finished" and run["exit_code"] == 0


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True
