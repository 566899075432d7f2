"""The project's local Slurm cluster (scripts/dev-cluster.sh): 3 nodes, fake GPUs, accounting.

The module brings the cluster up once (a no-op when it is already running) and leaves it
running, so later tests in the same run can use it. Without root, Debian or apt the tests skip
with the reason; on CI (CI=true) they fail instead, with the script's output.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts" / "dev-cluster.sh"
NODES = {"n1", "n2", "n3"}

pytestmark = pytest.mark.e2e

T = TypeVar("T")


def poll(check: Callable[[], T | None], timeout_s: float, what: str) -> T:
    """``check()``'s first truthy value, polled until ``timeout_s`` runs out."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout_s:.0f} s waiting for {what}")
        time.sleep(0.25)


def _unsupported() -> str | None:
    """Why this machine cannot run the cluster, or None when it can try."""
    if os.name != "posix" or os.geteuid() != 0:
        return "needs root (it installs Debian packages and starts system daemons)"
    if not Path("/etc/debian_version").exists():
        return "needs Debian 12 (it installs Debian's Slurm packages)"
    if shutil.which("apt-get") is None and shutil.which("slurmctld") is None:
        return "needs apt-get to install Slurm"
    return None


def _unavailable(reason: str) -> None:
    reason = f"dev cluster unavailable: {reason}"
    if os.environ.get("CI") == "true":
        pytest.fail(reason, pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="module")
def cluster() -> None:
    why = _unsupported()
    if why is not None:
        _unavailable(why)
    try:
        done = subprocess.run(["bash", str(SCRIPT), "up"], capture_output=True, text=True, timeout=180)
    except subprocess.TimeoutExpired as exc:
        out = exc.stderr.decode() if isinstance(exc.stderr, bytes) else (exc.stderr or "")
        _unavailable(f"scripts/dev-cluster.sh up timed out after 180 s:\n{out}")
        return
    if done.returncode != 0:
        _unavailable(
            f"scripts/dev-cluster.sh up failed (exit {done.returncode}):\n{done.stdout}{done.stderr}"
        )


def _run(*argv: str, timeout_s: float = 60, cwd: Path | None = None) -> str:
    done = subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout_s, cwd=cwd, check=False)
    assert done.returncode == 0, f"{argv} exited {done.returncode}: {done.stderr}"
    return done.stdout


def _json(*argv: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(_run(*argv))
    return data


def test_three_nodes_with_gpus_and_partitions(cluster: None) -> None:
    def ready() -> list[dict[str, Any]] | None:
        nodes: list[dict[str, Any]] = _json("sinfo", "--json")["nodes"]
        # Between tests a node may still be completing a job; wait until all three can take work.
        up = [n for n in nodes if n["state"] in ("idle", "mixed", "allocated")]
        return nodes if {n["name"] for n in up} == NODES else None

    nodes = poll(ready, 30, "3 nodes up in sinfo --json")
    assert len(nodes) == 3
    for node in nodes:
        assert node["gres"] == "gpu:4", node
        assert {"cpu", "gpu", "debug"} <= set(node["partitions"]), node
    partitions = _run("sinfo", "-h", "-o", "%P %l").split("\n")
    assert "debug* 10:00" in partitions  # the default partition, with a short max time


def _sacct_state(job_id: str) -> str | None:
    jobs = _json("sacct", "--json", "-j", job_id)["jobs"]
    for job in jobs:
        if str(job["job_id"]) == job_id:
            state: str = job["state"]["current"]
            return state if state not in ("PENDING", "RUNNING") else None
    return None  # sacct can lag about a second behind the job's end


def test_job_completes_and_is_accounted(cluster: None, tmp_path: Path) -> None:
    job_id = _run("sbatch", "--parsable", "--wait", "--wrap", "echo hi", cwd=tmp_path).strip()
    assert job_id.isdigit(), job_id
    assert poll(lambda: _sacct_state(job_id), 30, f"job {job_id} in sacct") == "COMPLETED"
    assert (tmp_path / f"slurm-{job_id}.out").read_text() == "hi\n"


def test_gpu_job_sees_two_devices(cluster: None, tmp_path: Path) -> None:
    out = tmp_path / "gpu.out"
    _run(
        "sbatch",
        "--parsable",
        "--wait",
        "--partition=gpu",
        "--gpus-per-node=2",
        f"--output={out}",
        "--wrap",
        "echo CUDA_VISIBLE_DEVICES=$CUDA_VISIBLE_DEVICES",
        cwd=tmp_path,
    )
    line = out.read_text().strip()
    assert line.startswith("CUDA_VISIBLE_DEVICES="), line
    ids = line.split("=", 1)[1].split(",")
    assert len(ids) == 2 and all(i.isdigit() for i in ids), line


def test_status_exits_zero(cluster: None) -> None:
    done = subprocess.run(["bash", str(SCRIPT), "status"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "slurmctld" in done.stdout and "n3" in done.stdout


def test_daemons_do_not_live_in_the_callers_directory(cluster: None) -> None:
    """Started from a checkout that is later deleted, slurmrestd died on its next submission
    ("getcwd failed"): the script starts every daemon from /."""
    checkout = str(Path(__file__).resolve().parents[2])
    for pid_file in ("/run/slurmrestd/jwt.pid", "/run/slurm/slurmctld.pid", "/run/slurm/slurmd-n1.pid"):
        pid = Path(pid_file).read_text().strip()
        cwd = os.readlink(f"/proc/{pid}/cwd")  # slurmctld moves to its log directory itself
        assert not cwd.startswith(checkout) and not cwd.endswith(" (deleted)"), (pid_file, cwd)
    assert os.readlink(f"/proc/{Path('/run/slurmrestd/jwt.pid').read_text().strip()}/cwd") == "/"
