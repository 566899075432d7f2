"""``runyard launch`` against a live server whose executor is the local one (no Slurm needed):
the job reports through ``runyard.client.jobreport`` and ``runyard.init``, ``--wait`` exits
with the job's code, and errors are one line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from runyard.cli.launch import exit_code_of, read_script
from tests.e2e.conftest import BIN, LiveServer, free_port

PY = sys.executable
TRACKED = "import runyard; r = runyard.init(project='p', experiment='e'); r.log({'x': 1}); r.finish()"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    tmp = tmp_path_factory.mktemp("launch-cli")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RUNYARD_", "SLURM_", "TRACKER_"))}
    env.update(
        RUNYARD_CONFIG=str(tmp / "client-config.toml"),
        RUNYARD_EXECUTOR="local",
        RUNYARD_SLURM_POLL_S="0.2",
        RUNYARD_SLURM_POLL_MAX_S="1",
        RUNYARD_SLURM_MAX_CALLS_PER_MIN="10000",
        RUNYARD_SPOOL_DIR=str(tmp / "spool"),  # the jobs inherit it: nothing lands in ~/.runyard
        PYTHONUNBUFFERED="1",
    )
    data = tmp / "server"
    data.mkdir()
    live = LiveServer(data, free_port(), env)
    live.start()
    yield live
    for job in json.loads(subprocess.run([PY, "-c", _QUEUE, str(data / "local-jobs")], capture_output=True,
                                         text=True, check=True).stdout):  # fmt: skip
        subprocess.run([PY, "-c", _CANCEL, str(data / "local-jobs"), job], check=False)
    live.stop()


_QUEUE = (
    "import sys, json; from pathlib import Path; from runyard.slurm.local import LocalExecutor as L; "
    "print(json.dumps([str(j.array_job_id or j.job_id) for j in L(Path(sys.argv[1])).queue() "
    "if j.state in ('PENDING', 'RUNNING')]))"
)
_CANCEL = (
    "import sys; from pathlib import Path; from runyard.slurm.local import LocalExecutor as L; "
    "L(Path(sys.argv[1])).cancel(sys.argv[2])"
)


def launch(
    server: LiveServer, cwd: Path, *argv: str, timeout_s: float = 120
) -> subprocess.CompletedProcess[str]:
    env = {**server.env, "RUNYARD_URL": server.url, "RUNYARD_API_KEY": server.key}
    return subprocess.run(
        [str(BIN / "runyard"), "launch", "--poll", "0.2", *argv],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout_s,
    )


def _ids(out: str) -> list[str]:
    return [line.split()[1] for line in out.splitlines() if line.startswith("run ")]


@pytest.fixture
def work(tmp_path: Path) -> Path:
    path = tmp_path / "work; dir"
    path.mkdir()
    return path


def test_launch_wait_tracks_the_run_through_the_job(server: LiveServer, work: Path) -> None:
    done = launch(server, work, "--wait", "--name", "tracked", "--tag", "cli", "--", PY, "-c", TRACKED)
    assert done.returncode == 0, done.stdout + done.stderr
    [run_id] = _ids(done.stdout)
    assert "submitted command as local job" in done.stdout
    assert f"runyard logs {run_id} -f" in done.stderr
    run: dict[str, Any] = server.get(f"/api/v1/runs/{run_id}")
    assert (run["status"], run["exit_code"], run["name"], run["tags"]) == ("finished", 0, "tracked", ["cli"])
    assert run["metrics"]["x"]["last"] == 1.0
    assert run["slurm_job_id"] and run["host"]
    assert Path(run["slurm"]["stdout"]).exists()
    assert Path(run["slurm"]["stdout"]).parent == work / "runyard-logs"
    events = server.get(f"/api/v1/runs/{run_id}/events")["events"]
    sources = {(e["source"], e["status"]) for e in events}
    assert ("client", "finished") in sources and ("user", "queued") in sources


def test_wait_exits_with_the_jobs_exit_code(server: LiveServer, work: Path) -> None:
    done = launch(server, work, "--wait", "--", PY, "-c", "import sys; print('bye'); sys.exit(3)")
    assert done.returncode == 3, done.stdout + done.stderr
    [run_id] = _ids(done.stdout)
    run = server.get(f"/api/v1/runs/{run_id}")
    assert (run["status"], run["exit_code"]) == ("failed", 3)
    assert run["host"]  # the command never imports runyard: the job-side reporter said where it ran
    assert Path(run["slurm"]["stdout"]).read_text().splitlines()[0] == "bye"


def test_a_script_file_with_an_array(server: LiveServer, work: Path) -> None:
    script = work / "sweep job.sbatch"
    script.write_text(
        "#!/bin/bash\n"
        "#SBATCH --array=0-2%2\n"
        "#SBATCH -o %x-%a.txt\n"
        f'exec {PY} -c "import runyard, os; r = runyard.init(); '
        "r.log({'task': int(os.environ['SLURM_ARRAY_TASK_ID'])}); r.finish()\"\n"
    )
    done = launch(server, work, "--wait", "--experiment", "sweeps", "--env", "A=b c", str(script))
    assert done.returncode == 0, done.stdout + done.stderr
    ids = _ids(done.stdout)
    assert len(ids) == 3 and "submitted script" in done.stdout
    runs = [server.get(f"/api/v1/runs/{run_id}") for run_id in ids]
    assert [r["metrics"]["task"]["last"] for r in runs] == [0.0, 1.0, 2.0]  # each task logged into its run
    assert [r["name"] for r in runs] == ["sweep_job[0]", "sweep_job[1]", "sweep_job[2]"]
    assert {r["status"] for r in runs} == {"finished"}
    assert (work / "sweep_job-2.txt").exists()


def test_after_a_run(server: LiveServer, work: Path) -> None:
    first = launch(server, work, "--", PY, "-c", "import time; time.sleep(1); open('first.done', 'w')")
    assert first.returncode == 0, first.stderr
    [first_id] = _ids(first.stdout)
    second = launch(server, work, "--wait", "--after", first_id, "--", PY, "-c",
                    "import os, sys; sys.exit(0 if os.path.exists('first.done') else 9)")  # fmt: skip
    assert second.returncode == 0, second.stdout + second.stderr


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        ((), "nothing to launch"),
        (("--",), "nothing to launch"),
        (("-t", "soon", "--", "true"), "time must be minutes"),
        (("--mem", "lots", "--", "true"), "mem must be a size"),
        (("--env", "NOEQUALS", "--", "true"), "--env takes NAME=VALUE"),
        (("--array", "9-0", "--", "true"), "array: range '9-0' ends before it starts"),
        (("--after", "no-such-run", "--", "true"), "after[0]: no run 'no-such-run'"),
        (("-N", "0", "--", "true"), "resources.nodes"),
    ],
)
def test_errors_are_one_line(server: LiveServer, work: Path, argv: tuple[str, ...], words: str) -> None:
    done = launch(server, work, *argv)
    assert done.returncode == 1, done.stdout
    assert done.stderr.startswith("error: ") and done.stderr.count("\n") == 1, done.stderr
    assert words in done.stderr


def test_script_detection(tmp_path: Path) -> None:
    (tmp_path / "a.sh").write_text("#!/bin/bash\necho\n")
    (tmp_path / "b.sbatch").write_text("#SBATCH -p gpu\necho\n")
    (tmp_path / "train.py").write_text("import torch\n")
    assert read_script(str(tmp_path / "a.sh")) == "#!/bin/bash\necho\n"
    assert read_script(str(tmp_path / "b.sbatch")) is not None
    assert read_script(str(tmp_path / "train.py")) is None
    assert read_script(str(tmp_path / "missing")) is None
    assert read_script("python") is None


def test_exit_codes_of_ended_runs() -> None:
    assert exit_code_of({"status": "finished", "exit_code": 0}) == 0
    assert exit_code_of({"status": "failed", "exit_code": 3}) == 3
    assert exit_code_of({"status": "failed", "exit_code": None}) == 1
    assert exit_code_of({"status": "cancelled", "exit_code": None}) == 1
    assert exit_code_of({"status": "timeout", "exit_code": 0}) == 1
