"""``LocalExecutor``: sbatch scripts as local processes, with Slurm's records and variables."""

from __future__ import annotations

import json
import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from runyard.errors import SlurmError, SubmitFailed
from runyard.slurm.local import LocalExecutor
from runyard.slurm.parse import AccountingJob, QueueJob
from tests.slurm.conftest import poll

ENDED = {"COMPLETED", "FAILED", "CANCELLED", "NODE_FAIL"}
ENV_NAMES = (
    "SLURM_JOB_ID",
    "SLURM_JOB_NAME",
    "SLURM_ARRAY_JOB_ID",
    "SLURM_ARRAY_TASK_ID",
    "SLURM_ARRAY_TASK_COUNT",
    "SLURM_RESTART_COUNT",
    "SLURM_CLUSTER_NAME",
    "SLURMD_NODENAME",
    "SLURM_NTASKS",
    "SLURM_PROCID",
    "SECRET",
)


@pytest.fixture
def executor(tmp_path: Path) -> Iterator[LocalExecutor]:
    ex = LocalExecutor(tmp_path / "state", kill_wait_s=1.0)
    yield ex
    for job in ex.queue():  # leave nothing running behind
        if job.state not in ENDED:
            ex.cancel(str(job.array_job_id or job.job_id))


@pytest.fixture
def work(tmp_path: Path) -> Path:
    path = tmp_path / "work dir"
    path.mkdir()
    return path


WAIT_FOR_GO = "while [ ! -e go ]; do sleep 0.05; done"  # the test says when: no race on a slow machine


def _script(body: str, *directives: str) -> str:
    return "#!/bin/bash\n" + "".join(f"#SBATCH {d}\n" for d in directives) + body + "\n"


def _record(ex: LocalExecutor, display_id: str) -> QueueJob | None:
    return next((j for j in ex.queue() if j.display_id == display_id), None)


def _ended(ex: LocalExecutor, job_id: str, timeout_s: float = 30) -> list[AccountingJob]:
    def check() -> list[AccountingJob] | None:
        jobs = ex.accounting([job_id])
        return jobs if jobs and all(j.state in ENDED for j in jobs) else None

    return poll(check, timeout_s, f"local job {job_id} to end")


DUMP_ENV = f"""python3 - <<'EOF'
import json, os
print(json.dumps({{k: os.environ.get(k) for k in {list(ENV_NAMES)!r}}}))
EOF"""


def test_a_job_that_exits_0(executor: LocalExecutor, work: Path) -> None:
    script = _script(DUMP_ENV, "--job-name=hello", "--output=%x-%j.out")
    job_id = executor.submit(script, workdir=str(work), env={"SECRET": "s3cret"})
    assert job_id.isdigit()
    [job] = _ended(executor, job_id)
    assert (job.job_id, job.state, job.exit_code, job.signal) == (job_id, "COMPLETED", 0, None)
    assert job.name == "hello" and job.partition == "local" and job.alloc_cpus == 1
    assert job.start_time is not None and job.end_time is not None and job.end_time >= job.start_time
    assert job.total_cpu_s > 0 and job.max_rss_bytes is not None and job.max_rss_bytes > 1024 * 1024
    assert job.step_ids == ("batch",)
    env = json.loads((work / f"hello-{job_id}.out").read_text())
    assert env["SLURM_JOB_ID"] == job_id and env["SLURM_JOB_NAME"] == "hello"
    assert env["SLURM_RESTART_COUNT"] == "0" and env["SLURM_CLUSTER_NAME"] == "local"
    assert env["SLURM_NTASKS"] == "1" and env["SLURM_PROCID"] == "0"
    assert env["SLURMD_NODENAME"] == os.uname().nodename.split(".")[0]
    assert env["SLURM_ARRAY_TASK_ID"] is None
    assert env["SECRET"] == "s3cret"  # submit's env reaches the job ...
    state = executor.state_dir
    assert not any(
        "s3cret" in p.read_text(errors="replace") for p in state.rglob("*") if p.is_file()
    )  # ... never disk
    [record] = [j for j in executor.queue() if str(j.job_id) == job_id]
    assert (record.state, record.exit_code, record.partition) == ("COMPLETED", 0, "local")


def test_a_job_that_exits_3(executor: LocalExecutor, work: Path) -> None:
    job_id = executor.submit(_script("echo oops >&2; exit 3", "-e err.txt"), workdir=str(work))
    [job] = _ended(executor, job_id)
    assert (job.state, job.exit_code) == ("FAILED", 3)
    assert (work / "err.txt").read_text() == "oops\n"
    assert (work / f"slurm-{job_id}.out").exists()  # Slurm's default output name
    assert _record(executor, job_id) is not None and _record(executor, job_id).exit_code == 3  # type: ignore[union-attr]


def test_an_array_never_runs_more_than_its_throttle(executor: LocalExecutor, work: Path) -> None:
    body = (
        "python3 -c 'import time; print(time.monotonic())' > start-$SLURM_ARRAY_TASK_ID\n"
        f"{WAIT_FOR_GO}; sleep 0.3\n"
        "echo $SLURM_ARRAY_JOB_ID $SLURM_ARRAY_TASK_ID $SLURM_ARRAY_TASK_COUNT\n"
        "python3 -c 'import time; print(time.monotonic())' > end-$SLURM_ARRAY_TASK_ID"
    )
    job_id = executor.submit(_script(body, "--array=0-3%2", "-J arr", "-o %x-%A_%a.out"), workdir=str(work))
    # the tasks not started yet are one pending record, as squeue shows them
    waiting = poll(
        lambda: next(
            (j for j in executor.queue() if j.array_task_string and j.reason == "JobArrayTaskLimit"), None
        ),
        10,
        "the pending rest of the array",
    )
    assert (waiting.state, waiting.array_task_id, waiting.array_task_string) == ("PENDING", None, "2-3%2")
    (work / "go").touch()
    jobs = _ended(executor, job_id)
    assert sorted((j.job_id, j.state) for j in jobs) == [(f"{job_id}_{t}", "COMPLETED") for t in range(4)]
    assert {j.array_job_id for j in jobs} == {int(job_id)}
    assert len({j.raw_job_id for j in jobs}) == 4
    spans = [
        (float((work / f"start-{t}").read_text()), float((work / f"end-{t}").read_text())) for t in range(4)
    ]
    for start, _ in spans:
        assert sum(1 for s, e in spans if s <= start < e) <= 2, spans
    assert (work / f"arr-{job_id}_3.out").read_text() == f"{job_id} 3 4\n"
    assert [j.job_id for j in executor.accounting([f"{job_id}_2"])] == [f"{job_id}_2"]


def test_cancel_kills_the_whole_process_group(executor: LocalExecutor, work: Path) -> None:
    body = "trap '' TERM\nsleep 300 &\necho $! > child.pid\nwait"  # ignores SIGTERM: needs the SIGKILL
    job_id = executor.submit(_script(body), workdir=str(work))
    poll(
        lambda: (work / "child.pid").exists() and (work / "child.pid").read_text().strip(),
        10,
        "the job to start",
    )
    child = int((work / "child.pid").read_text())
    executor.cancel(job_id)
    [job] = _ended(executor, job_id, timeout_s=20)
    assert job.state == "CANCELLED"
    poll(lambda: not _running(child), 10, "the job's child to be killed")

    pending = executor.submit(_script("true", f"--dependency=afterok:{job_id}"), workdir=str(work))
    [job] = _ended(executor, pending)  # its dependency can never be satisfied
    assert (job.state, job.reason) == ("CANCELLED", "DependencyNeverSatisfied")


def _running(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def test_cancel_of_pending_tasks_and_unknown_jobs(executor: LocalExecutor, work: Path) -> None:
    job_id = executor.submit(_script("sleep 30", "--array=0-2%1"), workdir=str(work))
    poll(lambda: _record(executor, f"{job_id}_0"), 10, "task 0 to start")
    executor.cancel(f"{job_id}_2")
    poll(
        lambda: (r := _record(executor, f"{job_id}_2")) is not None and r.state == "CANCELLED",
        10,
        "task 2 cancelled",
    )
    executor.cancel(job_id)
    jobs = _ended(executor, job_id)
    assert {j.state for j in jobs} == {"CANCELLED"}
    with pytest.raises(SlurmError) as info:
        executor.cancel("999999")
    assert "Invalid job id" in info.value.message


def test_dependencies_wait_for_local_jobs(executor: LocalExecutor, work: Path) -> None:
    first = executor.submit(_script(f"{WAIT_FOR_GO}; date +%s.%N > first.end"), workdir=str(work))
    ok = executor.submit(_script("date +%s.%N > ok.start", f"-d afterok:{first}"), workdir=str(work))
    notok = executor.submit(_script("true", f"--dependency=afternotok:{first}"), workdir=str(work))
    record = poll(
        lambda: (r := _record(executor, ok)) is not None and r.reason == "Dependency" and r,
        10,
        "reason Dependency",
    )
    assert record.state == "PENDING"
    (work / "go").touch()
    [done] = _ended(executor, ok)
    assert done.state == "COMPLETED"
    assert float((work / "ok.start").read_text()) >= float((work / "first.end").read_text())
    [never] = _ended(executor, notok)
    assert (never.state, never.reason) == ("CANCELLED", "DependencyNeverSatisfied")
    anyway = executor.submit(
        _script("true", f"--dependency=afterany:{first}?afterok:{notok}"), workdir=str(work)
    )
    assert _ended(executor, anyway)[0].state == "COMPLETED"


def test_refusals_read_like_sbatch(executor: LocalExecutor, work: Path) -> None:
    with pytest.raises(SubmitFailed) as info:
        executor.submit("echo no shebang\n", workdir=str(work))
    assert "#!" in info.value.message
    with pytest.raises(SubmitFailed) as info:
        executor.submit(_script("true", "--dependency=afterok:424242"), workdir=str(work))
    assert "Job dependency problem" in info.value.message
    with pytest.raises(SubmitFailed) as info:
        executor.submit(_script("true", "--array=5-1"), workdir=str(work))
    assert "--array" in info.value.message
    with pytest.raises(SubmitFailed):
        executor.submit(_script("true", "--chdir=/no/such/dir"), workdir=str(work))
    with pytest.raises(SlurmError) as info:
        executor.requeue("1")
    assert "cannot requeue" in info.value.message


def test_jobs_outlive_the_executor_and_ids_increase(tmp_path: Path, work: Path) -> None:
    first = LocalExecutor(tmp_path / "state")
    a = first.submit(_script("sleep 0.3"), workdir=str(work))
    again = LocalExecutor(tmp_path / "state")  # a restarted server
    b = again.submit(_script("true"), workdir=str(work))
    assert int(b) > int(a)
    supervisor = json.loads((tmp_path / "state" / "jobs" / a / "status.json").read_text())["supervisor"]
    assert os.getsid(supervisor) != os.getsid(0)  # its own session: not killed with the server's group
    assert _ended(again, a)[0].state == "COMPLETED"


def test_a_lost_supervisor_means_node_fail(executor: LocalExecutor, work: Path) -> None:
    job_id = executor.submit(_script("sleep 300 & echo $! > child.pid; wait"), workdir=str(work))
    poll(lambda: (r := _record(executor, job_id)) is not None and r.state == "RUNNING", 10, "the job to run")
    status = json.loads((executor.state_dir / "jobs" / job_id / "status.json").read_text())
    os.kill(status["supervisor"], signal.SIGKILL)
    [job] = _ended(executor, job_id)
    assert (job.state, job.reason) == ("NODE_FAIL", "supervisor lost")
    pgid = status["tasks"]["-"]["pgid"]
    os.killpg(pgid, signal.SIGKILL)  # clean up what the lost supervisor left running


def test_nodes_and_partitions(executor: LocalExecutor) -> None:
    [node] = executor.nodes()
    assert node.name == os.uname().nodename.split(".")[0]
    assert node.cpus >= 1 and node.state == "idle" and node.partitions == ("local",)
    [partition] = executor.partitions()
    assert partition.name == "local" and partition.default and partition.max_time_min is None
