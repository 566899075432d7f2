"""``python -m runyard.client.jobreport start|exit``: what the batch script reports around the
command, against a real server, and with the server down (journal, then ``runyard sync``)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from runyard.client.environment import array_run_id, read_context, slurm_run_id
from runyard.client.jobreport import writer_name
from runyard.client.journal import JournalReader
from tests.e2e.conftest import LiveServer, free_port

BIN = Path(sys.executable).parent


def job_env(tmp_path: Path, url: str, key: str, **extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("RUNYARD_", "SLURM_", "TRACKER_")) and k != "EXPERIMENT_ID"
    }
    env.update(
        RUNYARD_URL=url,
        RUNYARD_API_KEY=key,
        RUNYARD_CONFIG=str(tmp_path / "no-config.toml"),
        RUNYARD_SPOOL_DIR=str(tmp_path / "spool"),
        RUNYARD_PROJECT="jobs",
        RUNYARD_EXPERIMENT="batch",
        SLURM_JOB_ID="5150",
        SLURM_JOB_PARTITION="gpu",
        SLURMD_NODENAME="node7",
    )
    env.update(extra)
    return env


def report(tmp_path: Path, env: dict[str, str], *args: str) -> tuple[int, str, str]:
    """Run the reporter as the batch script does, its stdout/stderr going to the job's files."""
    out, err = tmp_path / "job.out", tmp_path / "job.err"
    with out.open("w") as o, err.open("w") as e:
        code = subprocess.run(
            [sys.executable, "-m", "runyard.client.jobreport", *args], env=env, stdout=o, stderr=e, timeout=60
        ).returncode
    return code, out.read_text(), err.read_text()


def test_start_and_exit_track_a_job_that_never_imports_runyard(
    live_server: LiveServer, tmp_path: Path
) -> None:
    env = job_env(tmp_path, live_server.url, live_server.key, RUNYARD_RUN_ID="job-tracked")
    code, out, err = report(tmp_path, env, "start")
    assert (code, out, err) == (0, "job-tracked\n", "")
    run = live_server.get("/api/v1/runs/job-tracked")
    assert run["status"] == "running" and run["host"] == "node7" and run["restart_count"] == 0
    assert run["slurm_job_id"] == "5150" and run["started_at"] is not None
    assert run["slurm"]["stdout"] == str(tmp_path / "job.out")
    assert run["slurm"]["stderr"] == str(tmp_path / "job.err")

    assert report(tmp_path, env, "exit", "3") == (0, "", "")
    run = live_server.get("/api/v1/runs/job-tracked")
    assert run["status"] == "failed" and run["exit_code"] == 3 and run["ended_at"] is not None
    assert report(tmp_path, env, "exit", "3") == (0, "", "")  # re-sent: applied once, harmless


def test_start_inside_command_substitution_finds_the_batch_shells_output(
    live_server: LiveServer, tmp_path: Path
) -> None:
    """As in the generated script: ``id=$(… start)`` has a pipe for stdout; the job's output
    file is the batch shell's stdout."""
    env = job_env(tmp_path, live_server.url, live_server.key, RUNYARD_RUN_ID="job-substituted")
    line = f'id=$("{sys.executable}" -m runyard.client.jobreport start) && echo "run $id"'
    out, err = tmp_path / "slurm-5150.out", tmp_path / "slurm-5150.err"
    with out.open("w") as o, err.open("w") as e:
        assert subprocess.run(["bash", "-c", line], env=env, stdout=o, stderr=e, timeout=60).returncode == 0
    assert out.read_text() == "run job-substituted\n" and err.read_text() == ""
    slurm = live_server.get("/api/v1/runs/job-substituted")["slurm"]
    assert slurm["stdout"] == str(out) and slurm["stderr"] == str(err)


def test_a_requeued_attempt_is_a_new_writer_and_can_end_requeued(
    live_server: LiveServer, tmp_path: Path
) -> None:
    env = job_env(tmp_path, live_server.url, live_server.key, RUNYARD_RUN_ID="job-requeued")
    assert report(tmp_path, env, "start")[0] == 0
    assert report(tmp_path, env, "exit", "0", "--status", "requeued") == (0, "", "")
    assert live_server.get("/api/v1/runs/job-requeued")["status"] == "requeued"
    env["SLURM_RESTART_COUNT"] = "1"
    assert report(tmp_path, env, "start")[:2] == (0, "job-requeued\n")
    run = live_server.get("/api/v1/runs/job-requeued")
    assert run["status"] == "running" and run["restart_count"] == 1
    assert report(tmp_path, env, "exit", "0") == (0, "", "")
    assert live_server.get("/api/v1/runs/job-requeued")["status"] == "finished"


def test_array_tasks_and_plain_jobs_get_the_ids_init_would_use(
    monkeypatch: pytest.MonkeyPatch, live_server: LiveServer, tmp_path: Path
) -> None:
    base = "7d0c1d6e-2b8a-4f11-8c55-0a9e3f6b2c10"
    env = job_env(
        tmp_path,
        live_server.url,
        live_server.key,
        RUNYARD_ARRAY_BASE_ID=base,
        SLURM_ARRAY_JOB_ID="5149",
        SLURM_ARRAY_TASK_ID="2",
    )
    assert report(tmp_path, env, "start")[:2] == (0, array_run_id(base, 2) + "\n")
    del env["RUNYARD_ARRAY_BASE_ID"]
    env["SLURM_JOB_ID"] = "6000"
    _, out, _ = report(tmp_path, env, "start")
    for name in ("SLURM_JOB_ID", "SLURM_ARRAY_JOB_ID", "SLURM_ARRAY_TASK_ID"):
        monkeypatch.setenv(name, env[name])
    assert out.strip() == slurm_run_id(read_context())  # what runyard.init derives in that job


def test_with_the_server_down_reports_go_to_the_journal_and_sync_delivers_them(
    live_server: LiveServer, tmp_path: Path
) -> None:
    env = job_env(tmp_path, f"http://127.0.0.1:{free_port()}", live_server.key, RUNYARD_RUN_ID="job-offline")
    code, out, err = report(tmp_path, env, "start")
    assert code == 0 and out == "job-offline\n"
    assert len(err.splitlines()) == 1 and "cannot reach" in err and "runyard sync" in err
    assert report(tmp_path, env, "exit", "0")[0] == 0
    journals = list((tmp_path / "spool").glob("job-offline.*.journal"))
    assert [j.name for j in journals] == ["job-offline.job-5150-0.journal"]
    assert len(list(JournalReader(journals[0]))) == 2  # start and exit, in order

    sync_env = {**env, "RUNYARD_URL": live_server.url}
    done = subprocess.run(
        [str(BIN / "runyard"), "sync", str(tmp_path / "spool")], env=sync_env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    run = live_server.get("/api/v1/runs/job-offline")
    assert run["status"] == "finished" and run["exit_code"] == 0 and run["host"] == "node7"


def test_exit_sends_a_start_left_in_the_journal_first(live_server: LiveServer, tmp_path: Path) -> None:
    down = job_env(tmp_path, f"http://127.0.0.1:{free_port()}", live_server.key, RUNYARD_RUN_ID="job-late")
    assert report(tmp_path, down, "start")[0] == 0
    up = {**down, "RUNYARD_URL": live_server.url}
    assert report(tmp_path, up, "exit", "0") == (0, "", "")
    run = live_server.get("/api/v1/runs/job-late")
    assert run["status"] == "finished" and run["started_at"] is not None
    assert not list((tmp_path / "spool").glob("*.journal"))


@pytest.mark.parametrize(
    ("args", "extra", "message"),
    [
        (["exit"], {}, "usage"),
        (["exit", "oops"], {}, "exit code"),
        (["exit", "1", "--status", "finished"], {}, "usage"),
        (["begin"], {}, "usage"),
        (["start"], {"SLURM_JOB_ID": ""}, "no run id"),
        (["start"], {"RUNYARD_URL": "ftp://nowhere", "RUNYARD_SPOOL_DIR": "/proc/no-such-dir"}, "Error"),
    ],
)
def test_the_reporter_never_fails_the_job(
    tmp_path: Path, args: list[str], extra: dict[str, str], message: str
) -> None:
    env = job_env(tmp_path, f"http://127.0.0.1:{free_port()}", "k", **extra)
    if not extra.get("SLURM_JOB_ID", "x"):
        del env["SLURM_JOB_ID"]
    code, _, err = report(tmp_path, env, *args)
    assert code == 0 and len(err.splitlines()) == 1 and message in err, err


def test_writer_names_are_valid_for_tiny_job_ids(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SLURM_JOB_ID", "7")
    assert writer_name(read_context(), "r" * 32) == "job-7-0_"
    monkeypatch.setenv("SLURM_RESTART_COUNT", "12")
    assert writer_name(read_context(), "r" * 32) == "job-7-12"
