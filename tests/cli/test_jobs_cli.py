"""``runyard logs / events / cluster / ps / cancel / requeue / efficiency`` against a live server
(and, for the commands that act on jobs, the real dev cluster)."""

from __future__ import annotations

import contextlib
import json
import queue
import subprocess
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import pytest

from runyard.errors import SlurmError
from tests.cli.test_cli import run_cli
from tests.e2e.conftest import BIN, LiveServer, free_port, wait_for
from tests.e2e.test_dev_cluster import cluster as dev_cluster  # noqa: F401 - fixture


def patch(server: LiveServer, path: str, body: Any) -> Any:
    req = urllib.request.Request(
        f"{server.url}{path}",
        data=json.dumps(body).encode(),
        method="PATCH",
        headers={"X-API-Key": server.key, "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=30) as r:
        return json.loads(r.read())


def new_run(server: LiveServer, name: str = "r", **fields: Any) -> str:
    body = {"project": "cli", "experiment": "jobs", "name": name, **fields}
    run_id: str = server.post("/api/v1/runs", body)["id"]
    return run_id


_seq = iter(range(1, 1_000_000))


def update(
    server: LiveServer, run_id: str, update: dict[str, Any], metrics: dict[str, Any] | None = None
) -> None:
    """A client batch: what a training script's runyard.init() sends."""
    body: dict[str, Any] = {"writer": "cli-test-writer", "seq": next(_seq), "update": update}
    if metrics:
        body["metrics"] = metrics
    server.post(f"/api/v1/runs/{run_id}/batches", body)


class Lines:
    """Lines of a process's pipe, read on a thread so a test can wait for them with a deadline."""

    def __init__(self, pipe: IO[str] | None) -> None:
        assert pipe is not None
        self.lines: list[str] = []
        self._queue: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._read, args=(pipe,), daemon=True).start()

    def _read(self, pipe: IO[str]) -> None:
        for line in pipe:
            self._queue.put(line.rstrip("\n"))
        self._queue.put(None)

    def until(self, count: int, timeout_s: float = 30) -> list[str]:
        deadline = time.monotonic() + timeout_s
        while len(self.lines) < count:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"timed out waiting for {count} lines; got {self.lines}")
            try:
                line = self._queue.get(timeout=left)
            except queue.Empty:
                continue
            if line is None:
                raise AssertionError(f"the process ended after {self.lines}")
            self.lines.append(line)
        return self.lines


@pytest.fixture
def shared(tmp_path: Path) -> Path:
    path = tmp_path / "shared"  # job output lives outside the server's data directory
    path.mkdir()
    return path


def test_logs_follows_a_growing_file_until_the_run_ends(server: LiveServer, shared: Path) -> None:
    out = shared / "train.out"
    run_id = new_run(server)
    update(server, run_id, {"slurm": {"stdout": str(out), "stderr": str(out)}})
    env = {**server.env, "RUNYARD_URL": server.url, "RUNYARD_API_KEY": server.key}
    proc = subprocess.Popen(
        [str(BIN / "runyard"), "logs", run_id, "-f", "--poll-s", "0.1"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        lines, notes = Lines(proc.stdout), Lines(proc.stderr)
        assert "waiting for the stdout file" in notes.until(1)[0]  # as while the job is pending
        out.write_text("step 1\n")
        assert lines.until(1) == ["step 1"]
        with out.open("a") as f:
            f.write("step 2\nstep 3\nhalf a li")
        assert lines.until(3) == ["step 1", "step 2", "step 3"]
        with out.open("a") as f:
            f.write("ne\nlast words, no newline")
        assert lines.until(4)[-1] == "half a line"
        assert proc.poll() is None  # still following: the run has not ended
        patch(server, f"/api/v1/runs/{run_id}", {"status": "finished"})
        assert proc.wait(timeout=30) == 0
        assert lines.until(5) == ["step 1", "step 2", "step 3", "half a line", "last words, no newline"]
        assert "same file" in notes.until(2)[1]
    finally:
        proc.kill()
        proc.wait()


def test_logs_tail_stderr_and_missing_files(server: LiveServer, shared: Path) -> None:
    (shared / "a.out").write_text("".join(f"line {i}\n" for i in range(10)))
    (shared / "a.err").write_text("Traceback (most recent call last):\n")
    run_id = new_run(server)
    update(server, run_id, {"slurm": {"stdout": str(shared / "a.out")}})
    r = run_cli(server, "logs", run_id, "--tail", "3")
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == ["line 7", "line 8", "line 9"]
    assert run_cli(server, "logs", run_id).stdout.splitlines() == [f"line {i}" for i in range(10)]
    r = run_cli(server, "logs", run_id, "--stderr")
    assert r.returncode == 1 and r.stderr.startswith("error: ") and "no stderr file" in r.stderr
    update(server, run_id, {"slurm": {"stderr": str(shared / "a.err")}})
    assert run_cli(server, "logs", run_id, "--stderr").stdout == "Traceback (most recent call last):\n"


def test_events_print_the_history(server: LiveServer) -> None:
    run_id = new_run(server)
    patch(server, f"/api/v1/runs/{run_id}", {"status": "failed", "exit_code": 3})
    r = run_cli(server, "events", run_id)
    assert r.returncode == 0, r.stderr
    header, *rows = r.stdout.splitlines()
    assert header.split() == ["TIME", "SOURCE", "KIND", "STATUS", "MESSAGE"]
    assert rows[-1].split()[2:6] == ["user", "status", "failed", "exit"]
    events = json.loads(run_cli(server, "events", run_id, "--json").stdout)
    assert events[-1]["status"] == "failed" and events[-1]["message"] == "exit code 3"


def test_ps_lists_my_active_runs(server: LiveServer) -> None:
    active = new_run(server, "still-going")
    done = new_run(server, "done")
    patch(server, f"/api/v1/runs/{done}", {"status": "finished"})
    r = run_cli(server, "ps")
    assert r.returncode == 0, r.stderr
    assert active in r.stdout and "still-going" in r.stdout and done not in r.stdout
    assert done in run_cli(server, "ps", "--all").stdout


def test_efficiency_prints_numbers_and_advice(server: LiveServer) -> None:
    run_id = new_run(server)
    accounting = {
        "elapsed_s": 300,
        "total_cpu_s": 330.0,
        "alloc_cpus": 8,
        "max_rss_bytes": 400 * 1024**2,
        "req_mem_bytes": 16 * 1024**3,
        "gpus": 1,
        "time_limit_min": 120,
        "state": "COMPLETED",
    }
    util = {"steps": [0, 1], "times": [1.7e9, 1.7e9 + 10], "values": [2.0, 4.0]}
    update(
        server,
        run_id,
        {"status": "finished", "slurm": {"accounting": accounting}},
        {"sys/n1/gpu0/util_pct": util},
    )
    r = run_cli(server, "efficiency", run_id)
    assert r.returncode == 0, r.stderr
    text = r.stdout
    assert "5 min of a 2 h limit (4%)" in text
    assert "1.1 of 8 CPUs busy on average (14%)" in text
    assert "asked 8 CPUs, used 1.1 on average: ask for 2" in text
    assert "used 0.4 GB of 16 GB memory: ask for 1 GB" in text
    assert "ran 5 min of a 2 h limit: a shorter --time starts sooner" in text
    assert "GPUs idle (3% average utilisation)" in text
    body = json.loads(run_cli(server, "efficiency", run_id, "--json").stdout)
    assert body["gpu"]["gpu_hours"] == pytest.approx(300 / 3600)


# ---------------------------------------------------------------- on the real dev cluster


@pytest.fixture
def slurm_server(tmp_path: Path, clean_env: dict[str, str]) -> Iterator[LiveServer]:
    """A server whose watcher looks at Slurm often, so tests see its answers quickly."""
    data = tmp_path / "slurm-server-data"
    data.mkdir()
    env = {
        **clean_env,
        "RUNYARD_EXECUTOR": "slurm",
        "RUNYARD_SLURM_POLL_S": "0.5",
        "RUNYARD_SLURM_POLL_MAX_S": "2",
        "RUNYARD_SLURM_MAX_CALLS_PER_MIN": "600",
    }
    live = LiveServer(data, free_port(), env)
    live.start()
    yield live
    live.stop()


def _submit(shared: Path, body: str, *directives: str) -> str:
    from runyard.slurm.runner import LocalSlurm

    header = "".join(f"#SBATCH {d}\n" for d in directives)
    return LocalSlurm().submit(
        f"#!/bin/bash\n{header}#SBATCH --output={shared}/%j.out\n{body}\n", workdir=str(shared)
    )


def _cancel(job_id: str) -> None:
    from runyard.slurm.runner import LocalSlurm

    with contextlib.suppress(SlurmError):
        LocalSlurm().cancel(job_id)


def _status(server: LiveServer, run_id: str) -> str:
    status: str = server.get(f"/api/v1/runs/{run_id}")["status"]
    return status


@pytest.mark.e2e
def test_cluster_ps_and_cancel(dev_cluster: None, slurm_server: LiveServer, shared: Path) -> None:  # noqa: F811
    job_id = _submit(shared, "sleep 60", "--hold", "--job-name=cli-held")
    try:
        run_id = new_run(slurm_server, "held", slurm_job_id=job_id, status="queued")
        r = run_cli(slurm_server, "cluster")
        assert r.returncode == 0, r.stderr
        assert "debug*" in r.stdout and "n1" in r.stdout and "n3" in r.stdout
        [row] = [line for line in r.stdout.splitlines() if line.startswith(f"{job_id} ")]
        assert run_id in row and "PENDING" in row and "(JobHeldUser)" in row
        mine = run_cli(slurm_server, "cluster", "--mine").stdout
        assert job_id in mine and mine.startswith("JOB ") and "DEFAULT TIME" not in mine

        def ps_shows_reason() -> bool:
            return "(JobHeldUser)" in run_cli(slurm_server, "ps").stdout  # once the watcher has looked

        wait_for(ps_shows_reason, 30, "the pending reason in `runyard ps`", interval_s=0.5)
        r = run_cli(slurm_server, "cancel", run_id)
        assert r.returncode == 0 and f"cancelled job {job_id}" in r.stdout, r.stderr
        wait_for(lambda: _status(slurm_server, run_id) == "cancelled", 60, "the run to be cancelled", 0.5)
        assert run_id not in run_cli(slurm_server, "ps").stdout
        history = run_cli(slurm_server, "events", run_id).stdout.splitlines()
        assert any(line.split()[2:4] == ["user", "cancel"] for line in history[1:]), history
        assert any(line.split()[2:5] == ["slurm", "status", "cancelled"] for line in history[1:]), history
        r = run_cli(slurm_server, "cancel", run_id)
        assert r.returncode == 1 and "already ended" in r.stderr
    finally:
        _cancel(job_id)


@pytest.mark.e2e
def test_requeue_then_finished_in_the_history(
    dev_cluster: None,  # noqa: F811
    slurm_server: LiveServer,
    shared: Path,
) -> None:
    job_id = _submit(shared, 'sleep 8; echo "attempt $SLURM_RESTART_COUNT done"', "--job-name=cli-requeue")
    try:
        run_id = new_run(slurm_server, "requeued", slurm_job_id=job_id, status="queued")
        update(slurm_server, run_id, {"slurm": {"stdout": str(shared / f"{job_id}.out")}})
        wait_for(lambda: _status(slurm_server, run_id) == "running", 60, "the run to run", 0.5)
        r = run_cli(slurm_server, "requeue", run_id)
        assert r.returncode == 0, r.stderr
        wait_for(lambda: _status(slurm_server, run_id) == "finished", 120, "the requeued run to finish", 0.5)
        events = json.loads(run_cli(slurm_server, "events", run_id, "--json").stdout)
        statuses = [e["status"] for e in events if e["kind"] == "status"]
        assert statuses.index("requeued") < len(statuses) - 1 and statuses[-1] == "finished", events
        assert any(e["kind"] == "requeue" and e["source"] == "user" for e in events)
        table = run_cli(slurm_server, "events", run_id).stdout
        assert table.index("requeued") < table.rindex("finished")
        r = run_cli(slurm_server, "logs", run_id)
        assert r.returncode == 0 and "attempt 1 done" in r.stdout, r.stderr
    finally:
        _cancel(job_id)
