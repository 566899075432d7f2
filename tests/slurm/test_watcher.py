"""The watcher against a scripted executor and a real SQLite store: call counts, the state
machine's results, array tasks, OOM from the output file, and degraded mode."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from runyard.entities import RunCreate, RunStatus, RunUpdate
from runyard.errors import SlurmError
from runyard.slurm.parse import AccountingJob, NodeInfo, QueueJob
from runyard.slurm.watcher import CallBudget, Watcher, WatcherConfig, expand_task_string, plan_cycle
from runyard.store.sql import SqlStore


def qjob(job_id: int, state: str, **kw: Any) -> QueueJob:
    base: dict[str, Any] = dict(
        job_id=job_id,
        array_job_id=None,
        array_task_id=None,
        array_task_string=None,
        name="j",
        state=state,
        reason=None,
        nodes=None,
        partition="debug",
        submit_time=1,
        start_time=None,
        end_time=None,
        time_limit_min=5,
        restart_count=0,
        requeue=True,
        tres_per_node=None,
        tres_alloc={},
        gpus_per_node=0,
        user="root",
        exit_code=None,
        signal=None,
    )
    base.update(kw)
    return QueueJob(**base)


def ajob(job_id: str, state: str, **kw: Any) -> AccountingJob:
    base: dict[str, Any] = dict(
        job_id=job_id,
        raw_job_id=int(job_id.split("_")[0]),
        array_job_id=None,
        array_task_id=None,
        name="j",
        state=state,
        reason=None,
        exit_code=0,
        signal=None,
        elapsed_s=10,
        time_limit_min=5,
        alloc_cpus=2,
        total_cpu_s=5.0,
        max_rss_bytes=100 << 20,
        req_mem_bytes=1000 << 20,
        gpus=0,
        nodes="n1",
        submit_time=1,
        start_time=2,
        end_time=12,
        partition="debug",
        user="root",
        step_ids=("batch",),
    )
    base.update(kw)
    return AccountingJob(**base)


class ScriptedSlurm:
    """An Executor whose squeue/sacct answers the test sets; counts every call."""

    kind = "slurm"

    def __init__(self) -> None:
        self.queue_jobs: list[QueueJob] = []
        self.acct_jobs: list[AccountingJob] = []
        self.down = False
        self.calls: list[tuple[str, tuple[str, ...]]] = []

    def submit(self, script: str, *, workdir: str | None = None, env: Any = None) -> str:
        raise NotImplementedError

    def queue(self) -> list[QueueJob]:
        self.calls.append(("squeue", ()))
        if self.down:
            raise SlurmError(
                "squeue failed (exit 1): slurm_load_jobs error: Unable to contact slurm controller"
            )
        return list(self.queue_jobs)

    def accounting(self, job_ids: Sequence[str]) -> list[AccountingJob]:
        self.calls.append(("sacct", tuple(job_ids)))
        return [j for j in self.acct_jobs if j.job_id in job_ids]

    def nodes(self) -> list[NodeInfo]:
        return []

    def cancel(self, job_id: str) -> None: ...

    def requeue(self, job_id: str) -> None: ...


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqlStore]:
    s = SqlStore(f"sqlite:///{tmp_path}/w.db")
    s.upgrade()
    yield s
    s.close()


@pytest.fixture
def slurm() -> ScriptedSlurm:
    return ScriptedSlurm()


@pytest.fixture
def watcher(store: SqlStore, slurm: ScriptedSlurm) -> Watcher:
    return Watcher(store, slurm, WatcherConfig(poll_s=0.05, poll_max_s=0.1, max_calls_per_min=1000))


def tracked(store: SqlStore, job: str, *, task: int | None = None, **slurm: Any) -> str:
    exp = store.ensure_experiment("p", "e")
    array_job = job if task is not None else None
    run = store.create_run(
        RunCreate(
            experiment_id=exp.id,
            status=RunStatus.QUEUED,
            slurm_job_id=f"{job}_{task}" if task is not None else job,
            slurm_array_job_id=array_job,
            slurm_array_task_id=task,
            slurm=slurm,
        )
    )
    return run.id


def statuses(store: SqlStore, run_id: str) -> list[str | None]:
    return [e.status for e in store.list_run_events(run_id) if e.kind == "status"]


def test_one_squeue_and_one_sacct_per_cycle_for_many_jobs(
    store: SqlStore, slurm: ScriptedSlurm, watcher: Watcher
) -> None:
    ids = [tracked(store, str(100 + i)) for i in range(30)]
    slurm.queue_jobs = [qjob(100 + i, "RUNNING", nodes="n1", start_time=5) for i in range(20)]
    slurm.acct_jobs = [ajob(str(100 + i), "COMPLETED") for i in range(20, 30)]
    result = watcher.cycle()
    assert [c[0] for c in slurm.calls] == ["squeue", "sacct"]
    assert sorted(slurm.calls[1][1]) == sorted(str(100 + i) for i in range(20, 30))
    assert result.changed == 30
    assert store.get_run(ids[0]).status is RunStatus.RUNNING
    done = store.get_run(ids[25])
    assert done.status is RunStatus.FINISHED and done.slurm_done
    assert done.slurm["accounting"]["total_cpu_s"] == 5.0
    assert len(store.slurm_tracked_runs()) == 20  # finished-with-accounting runs are no longer asked about


def test_lifecycle_pending_running_completed(store: SqlStore, slurm: ScriptedSlurm, watcher: Watcher) -> None:
    run_id = tracked(store, "7")
    slurm.queue_jobs = [qjob(7, "PENDING", reason="Resources", start_time=2_000_000_000)]
    watcher.cycle()
    run = store.get_run(run_id)
    assert run.status is RunStatus.QUEUED and run.pending_reason == "Resources"
    assert run.start_estimate == 2_000_000_000
    slurm.queue_jobs = [qjob(7, "RUNNING", nodes="n2", start_time=10, gpus_per_node=2)]
    watcher.cycle()
    run = store.get_run(run_id)
    assert run.status is RunStatus.RUNNING and run.slurm_nodes == "n2" and run.pending_reason is None
    assert run.slurm["gpus"] == 2
    # ended: squeue still shows it (MinJobAge), sacct first gives its placeholder
    slurm.queue_jobs = [qjob(7, "FAILED", exit_code=3, end_time=20)]
    slurm.acct_jobs = [ajob("7", "FAILED", exit_code=None, partition=None)]
    watcher.cycle()
    run = store.get_run(run_id)
    assert run.status is RunStatus.FAILED and run.exit_code == 3 and not run.slurm_done
    slurm.acct_jobs = [ajob("7", "FAILED", exit_code=None)]  # 22.05's JSON lost the code
    watcher.cycle()
    run = store.get_run(run_id)
    assert run.slurm_done and run.exit_code == 3
    assert statuses(store, run_id) == ["running", "failed"]  # created queued by the launch


def test_array_tasks_pending_behind_the_throttle(
    store: SqlStore, slurm: ScriptedSlurm, watcher: Watcher
) -> None:
    runs = [tracked(store, "50", task=t) for t in range(4)]
    slurm.queue_jobs = [
        qjob(51, "RUNNING", array_job_id=50, array_task_id=0, nodes="n1"),
        qjob(52, "RUNNING", array_job_id=50, array_task_id=1, nodes="n2"),
        qjob(50, "PENDING", array_job_id=50, array_task_string="2-3%2", reason="JobArrayTaskLimit"),
    ]
    watcher.cycle()
    got = [store.get_run(r) for r in runs]
    assert [r.status for r in got] == [RunStatus.RUNNING] * 2 + [RunStatus.QUEUED] * 2
    assert got[3].pending_reason == "JobArrayTaskLimit"
    assert expand_task_string("1,3,5-7:2%4") == [1, 3, 5, 7]


def test_oom_is_read_from_the_output_file(
    store: SqlStore, slurm: ScriptedSlurm, watcher: Watcher, tmp_path: Path
) -> None:
    err = tmp_path / "j.err"
    err.write_text("slurmstepd-n1: error: StepId=40.batch exceeded memory limit (644304896 > 314572800)\n")
    run_id = tracked(store, "40", stderr=str(err))
    other = tracked(store, "41", stderr=str(tmp_path / "missing.err"))
    slurm.queue_jobs = [qjob(40, "FAILED", signal=9, end_time=5), qjob(41, "FAILED", signal=9, end_time=5)]
    watcher.cycle()
    assert store.get_run(run_id).status is RunStatus.OOM
    assert store.get_run(other).status is RunStatus.FAILED


def test_requeue_counts_restarts_on_the_same_run(
    store: SqlStore, slurm: ScriptedSlurm, watcher: Watcher
) -> None:
    run_id = tracked(store, "9")
    slurm.queue_jobs = [qjob(9, "RUNNING", nodes="n1")]
    watcher.cycle()
    slurm.queue_jobs = [qjob(9, "PENDING", reason="BeginTime", restart_count=1)]
    watcher.cycle()
    slurm.queue_jobs = [qjob(9, "RUNNING", nodes="n2", restart_count=1)]
    watcher.cycle()
    slurm.queue_jobs = [qjob(9, "COMPLETED", exit_code=0, end_time=50, restart_count=1)]
    slurm.acct_jobs = [ajob("9", "COMPLETED")]
    watcher.cycle()
    run = store.get_run(run_id)
    assert run.status is RunStatus.FINISHED and run.restart_count == 1 and run.slurm_done
    assert statuses(store, run_id) == ["running", "requeued", "queued", "running", "finished"]


def test_slurm_down_marks_state_unknown_and_recovers(
    store: SqlStore, slurm: ScriptedSlurm, watcher: Watcher
) -> None:
    run_id = tracked(store, "11")
    slurm.down = True
    result = watcher.cycle()
    assert result.error is not None and "squeue" in result.error
    since = store.get_run(run_id).state_unknown_since
    assert since is not None and watcher.status()["state_unknown_since"] is not None
    watcher.cycle()
    assert store.get_run(run_id).state_unknown_since == since  # the first failure is kept
    slurm.down = False
    slurm.queue_jobs = [qjob(11, "RUNNING", nodes="n1")]
    watcher.cycle()
    run = store.get_run(run_id)
    assert run.state_unknown_since is None and run.status is RunStatus.RUNNING


def test_no_tracked_jobs_no_slurm_calls(store: SqlStore, slurm: ScriptedSlurm, watcher: Watcher) -> None:
    run_id = tracked(store, "12")
    store.update_run(run_id, RunUpdate(slurm_done=True))
    watcher.cycle()
    assert slurm.calls == []


def test_thread_runs_cycles_and_survives_errors(
    store: SqlStore, slurm: ScriptedSlurm, watcher: Watcher
) -> None:
    import time

    run_id = tracked(store, "13")
    slurm.down = True
    watcher.start()
    try:
        deadline = time.monotonic() + 10
        while store.get_run(run_id).state_unknown_since is None:
            assert time.monotonic() < deadline
            time.sleep(0.02)
        slurm.down = False
        slurm.queue_jobs = [qjob(13, "RUNNING", nodes="n1")]
        watcher.wake()
        while store.get_run(run_id).status is not RunStatus.RUNNING:
            assert time.monotonic() < deadline
            time.sleep(0.02)
    finally:
        watcher.stop()


def test_call_budget_caps_calls_per_minute() -> None:
    now = [0.0]
    budget = CallBudget(3, clock=lambda: now[0])
    for _ in range(3):
        assert budget.wait_s() == 0
        budget.spend()
        now[0] += 1
    assert budget.wait_s() == pytest.approx(57.0)  # the first call leaves the window at t=60
    now[0] = 60.0
    assert budget.wait_s() == 0 and budget.used() == 2


def test_plan_is_pure_and_matches_by_job_key() -> None:
    run = dataclasses.replace(_run(), slurm_job_id="5_2", slurm_array_job_id="5", slurm_array_task_id=2)
    plan = plan_cycle([run], [qjob(5, "PENDING", array_job_id=5, array_task_string="0-3", reason="Priority")])
    assert plan.observations[run.id].reason == "Priority" and plan.sacct_ids == []


def _run() -> Any:
    from runyard.entities import Run

    return Run(
        id="x",
        experiment_id="e",
        project_id="p",
        name="",
        status=RunStatus.QUEUED,
        created_at=0,
        updated_at=0,
    )


def test_a_jobs_api_key_is_revoked_when_all_its_runs_are_accounted(
    store: SqlStore, slurm: ScriptedSlurm, watcher: Watcher
) -> None:
    user = store.create_user("ann")
    key, _ = store.create_api_key(user.id, "job train")
    tasks = [tracked(store, "60", task=t, api_key_id=key.id) for t in range(2)]
    slurm.queue_jobs = [
        qjob(61, "COMPLETED", array_job_id=60, array_task_id=0, exit_code=0, end_time=5),
        qjob(62, "RUNNING", array_job_id=60, array_task_id=1, nodes="n1"),
    ]
    slurm.acct_jobs = [ajob("60_0", "COMPLETED", array_job_id=60, array_task_id=0)]
    watcher.cycle()
    assert store.get_run(tasks[0]).slurm_done
    assert store.list_api_keys(user.id)[0].revoked_at is None  # task 1 still runs with it
    slurm.queue_jobs = [qjob(62, "COMPLETED", array_job_id=60, array_task_id=1, exit_code=0, end_time=9)]
    slurm.acct_jobs.append(ajob("60_1", "COMPLETED", array_job_id=60, array_task_id=1))
    watcher.cycle()
    assert store.list_api_keys(user.id)[0].revoked_at is not None


def test_on_change_gets_the_runs_a_cycle_changed(store: SqlStore, slurm: ScriptedSlurm) -> None:
    seen: list[list[str]] = []
    config = WatcherConfig(poll_s=0.05, poll_max_s=0.1, max_calls_per_min=1000)
    watcher = Watcher(store, slurm, config, on_change=seen.append)
    moving, still = tracked(store, "41"), tracked(store, "42")
    slurm.queue_jobs = [qjob(41, "RUNNING", nodes="n1", start_time=5), qjob(42, "PENDING", reason="Priority")]
    watcher.cycle()
    assert seen == [[moving, still]]  # both changed: running, and a new pending reason
    slurm.queue_jobs = [qjob(41, "RUNNING", nodes="n1", start_time=5), qjob(42, "PENDING", reason="Priority")]
    watcher.cycle()
    assert seen == [[moving, still]]  # nothing changed: not called again
