"""A requeued job continues its run: resumed, restart_count, latest_checkpoint, step counter."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

import pytest

import runyard
from runyard.client.environment import array_run_id
from runyard.client.resume import look_up
from runyard.errors import ServerUnreachable
from tests.e2e.conftest import LiveServer, free_port


def attempt(
    monkeypatch: pytest.MonkeyPatch, server: LiveServer, run_id: str, restart: int | None
) -> runyard.Run:
    """What ``runyard launch``'s batch script sets up for one attempt of the job."""
    monkeypatch.setenv("RUNYARD_URL", server.url)
    monkeypatch.setenv("RUNYARD_API_KEY", server.key)
    monkeypatch.setenv("RUNYARD_RUN_ID", run_id)
    if restart is None:
        monkeypatch.delenv("SLURM_RESTART_COUNT", raising=False)
    else:
        monkeypatch.setenv("SLURM_RESTART_COUNT", str(restart))
    return runyard.init(project="resume", experiment="e", flush_interval_s=0.01)


def test_a_requeued_job_continues_steps_and_finds_its_latest_checkpoint(
    monkeypatch: pytest.MonkeyPatch, live_server: LiveServer, tmp_path: Path
) -> None:
    first = attempt(monkeypatch, live_server, "resume-requeued", None)
    assert not first.resumed and first.restart_count == 0 and first.latest_checkpoint is None
    for step in range(5):
        first.log({"loss": 1.0 / (step + 1)})
    (tmp_path / "old.pt").write_bytes(b"1")
    (tmp_path / "new.pt").write_bytes(b"2")
    first.log_artifact(tmp_path / "old.pt", kind="checkpoint", step=2)
    first.log_artifact(tmp_path / "config.yaml", kind="file")
    first.log_artifact(tmp_path / "new.pt", kind="checkpoint", step=4)
    first.finish(status="requeued")

    second = attempt(monkeypatch, live_server, "resume-requeued", 1)
    assert second.resumed and second.restart_count == 1
    assert second.latest_checkpoint == str(tmp_path / "new.pt")
    for _ in range(3):
        second.log({"loss": 0.1})
    second.finish()

    series = live_server.get("/api/v1/runs/resume-requeued/metrics/series", key="loss")
    assert series["steps"] == [0, 1, 2, 3, 4, 5, 6, 7]
    assert live_server.get("/api/v1/runs/resume-requeued")["restart_count"] == 1


def test_a_run_with_points_is_resumed_even_without_a_restart(
    monkeypatch: pytest.MonkeyPatch, live_server: LiveServer
) -> None:
    first = attempt(monkeypatch, live_server, "resume-again", None)
    first.log({"acc": 0.5}, step=41)
    first.finish()
    again = attempt(monkeypatch, live_server, "resume-again", None)
    assert again.resumed and again.restart_count == 0 and again.latest_checkpoint is None
    again.log({"acc": 0.6})
    again.finish()
    assert live_server.get("/api/v1/runs/resume-again/metrics/series", key="acc")["steps"] == [41, 42]


def test_a_new_launched_run_is_not_resumed(monkeypatch: pytest.MonkeyPatch, live_server: LiveServer) -> None:
    run = attempt(monkeypatch, live_server, "resume-fresh", None)
    assert not run.resumed and run.latest_checkpoint is None
    run.log({"a": 1.0})
    run.finish()
    assert live_server.get("/api/v1/runs/resume-fresh/metrics/series", key="a")["steps"] == [0]


@pytest.mark.parametrize(("restart", "resumed"), [(2, True), (0, False)])
def test_without_a_server_resumed_rests_on_the_restart_count(
    monkeypatch: pytest.MonkeyPatch, restart: int, resumed: bool
) -> None:
    monkeypatch.setenv("RUNYARD_URL", f"http://127.0.0.1:{free_port()}")  # nothing listens
    monkeypatch.setenv("RUNYARD_RUN_ID", "resume-offline")
    monkeypatch.setenv("SLURM_RESTART_COUNT", str(restart))
    run = runyard.init(project="p", experiment="e")
    assert run.resumed is resumed and run.restart_count == restart and run.latest_checkpoint is None
    run.log({"a": 1.0})
    result = run.finish()
    assert not result.synced and result.points_journaled == 1


def test_array_tasks_of_a_launch_log_into_the_ids_the_launcher_chose(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    base = "0b5e8e4e-5d2f-4c7e-9a43-1f0e2d3c4b5a"
    assert array_run_id(base, 3) == array_run_id(base, 3) != array_run_id(base, 4)
    monkeypatch.setenv("RUNYARD_ARRAY_BASE_ID", base)
    monkeypatch.setenv("SLURM_JOB_ID", "801")
    monkeypatch.setenv("SLURM_ARRAY_JOB_ID", "800")
    monkeypatch.setenv("SLURM_ARRAY_TASK_ID", "3")
    assert runyard.init(mode="disabled").id == array_run_id(base, 3)


class Answers:
    """A transport that answers GETs from a dict of path → JSON (404 otherwise)."""

    def __init__(self, answers: Mapping[str, object], down: bool = False) -> None:
        self.answers = answers
        self.down = down

    def request(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        timeout: float | None = None,
    ) -> tuple[int, bytes]:
        if self.down:
            raise ServerUnreachable("down")
        if path in self.answers:
            return 200, json.dumps(self.answers[path]).encode()
        return 404, b'{"error": {"code": "not_found", "message": "no", "field": null}}'

    def close(self) -> None:
        pass


def summary(count: int, last_step: int) -> dict[str, object]:
    return {"count": count, "last_step": last_step, "last": 1.0, "last_time": 0.0, "min": 1.0, "max": 1.0}


def test_system_metrics_do_not_move_the_step_counter() -> None:
    answers = {
        "/api/v1/runs/r": {
            "metrics": {
                "loss": summary(10, 9),
                "acc": summary(3, 12),
                "sys/n1/r0/cpu_pct": summary(50, 1_763_798_400),
            }
        },
        "/api/v1/runs/r/artifacts": [
            {"path": "/c/2.pt", "kind": "checkpoint", "created_at": 20.0},
            {"path": "/c/log.txt", "kind": "file", "created_at": 30.0},
            {"path": "/c/1.pt", "kind": "checkpoint", "created_at": 10.0},
        ],
    }
    info = look_up(Answers(answers), {}, "r", 0, 1.0)
    assert info.resumed and info.next_step == 13 and info.latest_checkpoint == "/c/2.pt"


def test_a_run_with_only_system_metrics_is_not_resumed() -> None:
    answers = {"/api/v1/runs/r": {"metrics": {"sys/n1/r0/cpu_pct": summary(5, 100)}}}
    info = look_up(Answers(answers), {}, "r", 0, 1.0)
    assert not info.resumed and info.next_step == 0 and info.latest_checkpoint is None


@pytest.mark.parametrize("transport", [Answers({}, down=True), Answers({"/api/v1/runs/r": "not a run"})])
def test_look_up_never_fails(transport: Answers) -> None:
    info = look_up(transport, {}, "r", 1, 1.0)
    assert info.resumed and info.next_step == 0 and info.latest_checkpoint is None


def test_init_under_slurm_records_where_the_job_output_goes(live_server: LiveServer, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RUNYARD_", "SLURM_")) and k != "RANK"}
    env.update(
        RUNYARD_URL=live_server.url,
        RUNYARD_API_KEY=live_server.key,
        RUNYARD_CONFIG=str(tmp_path / "none.toml"),
        RUNYARD_SPOOL_DIR=str(tmp_path / "spool"),
        SLURM_JOB_ID="31337",
        SLURM_RESTART_COUNT="0",
    )
    script = "import runyard; r = runyard.init(project='p', experiment='e'); print(r.id); r.finish()"
    out, err = tmp_path / "slurm-31337.out", tmp_path / "slurm-31337.err"
    with out.open("w") as o, err.open("w") as e:
        code = subprocess.run(
            [sys.executable, "-c", script], env=env, stdout=o, stderr=e, timeout=60
        ).returncode
    assert code == 0, err.read_text()
    run = live_server.get(f"/api/v1/runs/{out.read_text().strip()}")
    assert run["slurm"]["stdout"] == str(out) and run["slurm"]["stderr"] == str(err)
    assert run["slurm_job_id"] == "31337" and run["status"] == "finished"
