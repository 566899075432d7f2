"""``GET /api/v1/cluster``, ``/api/v1/me/runs``, cancel/requeue and ``/efficiency``: with an
in-test executor fed with output recorded from the dev cluster, and once against the real one."""

from __future__ import annotations

import contextlib
import dataclasses
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from runyard.config import Settings
from runyard.entities import MetricColumns, RunCreate, RunStatus, RunUpdate
from runyard.errors import SlurmError
from runyard.server.app import create_app
from runyard.slurm.parse import (
    AccountingJob,
    NodeInfo,
    PartitionInfo,
    QueueJob,
    parse_partitions,
    parse_sinfo_json,
    parse_squeue_json,
)
from runyard.store.base import Store
from tests.e2e.test_dev_cluster import cluster as dev_cluster  # noqa: F401 - fixture
from tests.e2e.test_dev_cluster import poll
from tests.server.conftest import assert_error

DATA = Path(__file__).resolve().parents[1] / "slurm" / "data"


class FakeExecutor:
    """Implements the ``Executor`` protocol with recorded output; counts every call."""

    kind = "slurm"

    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()
        self.jobs = parse_squeue_json((DATA / "squeue.json").read_text())
        self.node_list = parse_sinfo_json((DATA / "sinfo.json").read_text())
        self.partition_list = parse_partitions((DATA / "scontrol_partitions.txt").read_text())
        self.fail: dict[str, Exception] = {}
        self.acted: list[tuple[str, str]] = []

    def _count(self, name: str) -> None:
        self.calls[name] += 1
        if name in self.fail:
            raise self.fail[name]

    def submit(self, script: str, *, workdir: str | None = None, env: Any = None) -> str:
        raise AssertionError("the cluster view never submits")

    def queue(self) -> list[QueueJob]:
        self._count("queue")
        return self.jobs

    def accounting(self, job_ids: Sequence[str]) -> list[AccountingJob]:
        self._count("accounting")
        return []

    def nodes(self) -> list[NodeInfo]:
        self._count("nodes")
        return self.node_list

    def partitions(self) -> list[PartitionInfo]:
        self._count("partitions")
        return self.partition_list

    def cancel(self, job_id: str) -> None:
        self._count("cancel")
        self.acted.append(("cancel", job_id))

    def requeue(self, job_id: str) -> None:
        self._count("requeue")
        self.acted.append(("requeue", job_id))


class FakeWatcher:
    def __init__(self) -> None:
        self.wakes = 0

    def wake(self) -> None:
        self.wakes += 1


@dataclasses.dataclass
class Env:
    api: TestClient  # as the admin
    bob: TestClient  # a plain user
    executor: FakeExecutor
    watcher: FakeWatcher
    store: Store
    admin_id: str
    bob_id: str
    experiment_id: str

    def run(self, owner: str, job: str | None, **kw: Any) -> str:
        return self.store.create_run(
            RunCreate(
                experiment_id=self.experiment_id,
                name=kw.pop("name", "r"),
                user_id=owner,
                slurm_job_id=job,
                **kw,
            )
        ).id


@pytest.fixture
def env(settings: Settings, store: Store) -> Iterator[Env]:
    admin = store.create_user("admin", is_admin=True)
    bob = store.create_user("bob")
    executor, watcher = FakeExecutor(), FakeWatcher()
    app = create_app(settings, store, executor=None)  # no watcher thread: the test drives everything
    app.state.executor = executor
    app.state.watcher = watcher
    exp = store.ensure_experiment("proj", "exp")
    with (
        TestClient(app, raise_server_exceptions=False) as api,
        TestClient(app, raise_server_exceptions=False) as b,
    ):
        api.headers["X-API-Key"] = store.create_api_key(admin.id)[1]
        b.headers["X-API-Key"] = store.create_api_key(bob.id)[1]
        yield Env(api, b, executor, watcher, store, admin.id, bob.id, exp.id)


def get_cluster(client: TestClient) -> dict[str, Any]:
    r = client.get("/api/v1/cluster")
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


# ---------------------------------------------------------------- the cluster view


def test_nodes_partitions_and_queue_with_one_call_each(env: Env) -> None:
    body = get_cluster(env.api)
    assert env.executor.calls == Counter(nodes=1, partitions=1, queue=1)
    n1 = next(n for n in body["nodes"] if n["name"] == "n1")
    assert n1 == {
        "name": "n1",
        "state": "mixed",
        "cpus_alloc": 2,
        "cpus_total": 4,
        "gpus_used": 0,
        "gpus_total": 4,
        "memory_alloc_mb": 1000,
        "memory_total_mb": 4000,
        "partitions": ["debug", "cpu", "gpu"],
        "reason": None,
    }
    parts = {p["name"]: p for p in body["partitions"]}
    assert parts["debug"]["default"] is True and parts["debug"]["max_time_min"] == 10
    assert parts["cpu"]["max_time_min"] is None and parts["gpu"]["gpus"] == 12
    queue = {row["id"]: row for row in body["queue"]}
    assert queue["15"]["state"] == "PENDING" and queue["15"]["reason"] == "JobHeldUser"
    assert queue["17_1"]["array_job_id"] == 17 and queue["17_1"]["array_task_id"] == 1
    assert queue["17_[2-3%2]"]["reason"] == "JobArrayTaskLimit"
    assert queue["12"]["gpus_per_node"] == 2 and queue["16"]["user"] == "root"
    assert body["errors"] == {} and body["executor"] == "slurm"

    get_cluster(env.bob)  # a second page view within the snapshot's lifetime costs Slurm nothing
    assert env.executor.calls == Counter(nodes=1, partitions=1, queue=1)


def test_pending_jobs_carry_slurms_start_estimate(env: Env) -> None:
    estimate = int(time.time()) + 600
    env.executor.jobs = [
        dataclasses.replace(job, start_time=estimate, reason="Resources") if job.job_id == 15 else job
        for job in env.executor.jobs
    ]
    queue = {row["id"]: row for row in get_cluster(env.api)["queue"]}
    assert queue["15"]["start_estimate"] == estimate and queue["15"]["start_time"] is None
    assert queue["15"]["reason"] == "Resources"
    assert queue["16"]["start_estimate"] is None and queue["16"]["start_time"] == 1795338090


def test_queue_rows_name_their_runs_and_mine_is_per_user(env: Env) -> None:
    mine_running = env.run(env.admin_id, "16")
    mine_task = env.run(env.admin_id, "17_1", slurm_array_job_id="17", slurm_array_task_id=1)
    by_raw_id = env.run(env.admin_id, "20", slurm_array_job_id="17", slurm_array_task_id=0)
    pending_task = env.run(env.admin_id, "17_3", slurm_array_job_id="17", slurm_array_task_id=3)
    bobs = env.run(env.bob_id, "19")
    env.run(env.bob_id, None)  # no job: in no row

    body = get_cluster(env.api)
    queue = {row["id"]: row for row in body["queue"]}
    assert queue["16"]["run_id"] == mine_running
    assert queue["17_1"]["run_id"] == mine_task
    assert queue["17_0"]["run_id"] == by_raw_id  # a client in a task records the task's own job id
    assert queue["17_[2-3%2]"]["run_ids"] == [pending_task]
    assert queue["19"]["run_id"] == bobs and queue["13"]["run_id"] is None
    assert {row["id"] for row in body["mine"]} == {"16", "17_1", "17_0", "17_[2-3%2]"}
    assert [row["id"] for row in get_cluster(env.bob)["mine"]] == ["19"]


def test_a_failing_part_is_reported_and_the_rest_still_answers(env: Env) -> None:
    env.executor.fail["nodes"] = SlurmError("sinfo failed (exit 1): Unable to contact slurm controller")
    body = get_cluster(env.api)
    assert body["nodes"] == [] and "Unable to contact" in body["errors"]["nodes"]
    assert len(body["queue"]) == len(env.executor.jobs) and body["partitions"]


def test_gpu_hours_per_experiment_from_accounting(env: Env) -> None:
    other = env.store.ensure_experiment("proj", "other")
    for owner, gpus, elapsed in ((env.admin_id, 2, 3600), (env.bob_id, 4, 1800)):
        run_id = env.run(owner, "900", slurm={"accounting": {"gpus": gpus, "elapsed_s": elapsed}})
        env.store.update_run(run_id, RunUpdate(status=RunStatus.FINISHED))
    running = env.run(env.admin_id, "901", slurm={"accounting": {"gpus": 8, "elapsed_s": 3600}})
    assert running  # still running: not counted
    env.store.update_run(
        env.store.create_run(RunCreate(experiment_id=other.id, user_id=env.bob_id)).id,
        RunUpdate(status=RunStatus.FAILED),  # ended, but no accounting: not counted
    )
    hours = get_cluster(env.api)["gpu_hours"]
    assert hours["truncated"] is False and hours["scanned_runs"] == 3
    [exp] = hours["experiments"]
    assert exp["experiment"] == "exp" and exp["runs"] == 2
    assert exp["gpu_hours"] == pytest.approx(4.0) and exp["my_gpu_hours"] == pytest.approx(2.0)


def test_cluster_needs_a_key_and_an_executor(env: Env, settings: Settings, store: Store) -> None:
    env.api.headers.pop("X-API-Key")
    assert_error(env.api.get("/api/v1/cluster"), 401, "unauthorized")
    app = create_app(settings, store, executor=None)
    with TestClient(app, raise_server_exceptions=False) as client:
        client.headers["X-API-Key"] = store.create_api_key(env.admin_id)[1]
        assert_error(client.get("/api/v1/cluster"), 503, "no_executor")


# ---------------------------------------------------------------- my runs


def test_me_runs_lists_my_active_runs_or_all_of_them(env: Env) -> None:
    active = env.run(env.admin_id, "16", name="train")
    queued = env.run(env.admin_id, "15", status=RunStatus.QUEUED)
    done = env.run(env.admin_id, "13")
    env.store.update_run(done, RunUpdate(status=RunStatus.FINISHED))
    env.run(env.bob_id, "19")
    runs = env.api.get("/api/v1/me/runs").json()["runs"]
    assert {r["id"] for r in runs} == {active, queued}
    everything = env.api.get("/api/v1/me/runs", params={"all": "true"}).json()["runs"]
    assert {r["id"] for r in everything} == {active, queued, done}
    assert [r["user_id"] for r in env.bob.get("/api/v1/me/runs").json()["runs"]] == [env.bob_id]


# ---------------------------------------------------------------- cancel and requeue


def test_owner_cancels_and_the_watcher_is_woken(env: Env) -> None:
    run_id = env.run(env.admin_id, "17_1", slurm_array_job_id="17", slurm_array_task_id=1)
    get_cluster(env.api)
    r = env.api.post(f"/api/v1/runs/{run_id}/cancel")
    assert r.status_code == 200, r.text
    assert r.json()["job_id"] == "17_1" and r.json()["action"] == "cancel"
    assert env.executor.acted == [("cancel", "17_1")] and env.watcher.wakes == 1
    [event] = env.store.list_run_events(run_id)
    assert (event.source, event.kind, event.data) == ("user", "cancel", {"job_id": "17_1"})
    assert "admin" in event.message
    # the status is Slurm's to report (through the watcher), not the request's
    assert env.store.get_run(run_id).status is RunStatus.RUNNING
    get_cluster(env.api)  # the cached snapshot was dropped: the next view asks Slurm again
    assert env.executor.calls["queue"] == 2


def test_requeue(env: Env) -> None:
    run_id = env.run(env.bob_id, "16")
    r = env.bob.post(f"/api/v1/runs/{run_id}/requeue")
    assert r.status_code == 200, r.text
    assert env.executor.acted == [("requeue", "16")]
    assert [e.kind for e in env.store.list_run_events(run_id)] == ["requeue"]


def test_only_the_owner_or_an_admin(env: Env) -> None:
    admins = env.run(env.admin_id, "16")
    err = assert_error(env.bob.post(f"/api/v1/runs/{admins}/cancel"), 403, "forbidden")
    assert "owner" in err["message"]
    assert_error(env.bob.post(f"/api/v1/runs/{admins}/requeue"), 403, "forbidden")
    assert env.executor.acted == [] and env.store.list_run_events(admins) == []
    bobs = env.run(env.bob_id, "19")
    assert env.api.post(f"/api/v1/runs/{bobs}/cancel").status_code == 200  # an admin may
    assert env.executor.acted == [("cancel", "19")]


def test_nothing_to_act_on(env: Env) -> None:
    no_job = env.run(env.admin_id, None)
    err = assert_error(env.api.post(f"/api/v1/runs/{no_job}/cancel"), 400, "invalid_input", "slurm_job_id")
    assert "no Slurm job" in err["message"]
    ended = env.run(env.admin_id, "13")
    env.store.update_run(ended, RunUpdate(status=RunStatus.FINISHED))
    err = assert_error(env.api.post(f"/api/v1/runs/{ended}/requeue"), 400, "invalid_input", "status")
    assert "finished" in err["message"]
    assert_error(env.api.post("/api/v1/runs/nope/cancel"), 404, "not_found")
    assert env.executor.acted == []


def test_slurm_refusing_is_a_502_with_its_message_and_no_event(env: Env) -> None:
    run_id = env.run(env.admin_id, "16")
    env.executor.fail["requeue"] = SlurmError(
        "scontrol failed (exit 1): Requested operation is presently disabled for job 16"
    )
    err = assert_error(env.api.post(f"/api/v1/runs/{run_id}/requeue"), 502, "slurm_error")
    assert "presently disabled" in err["message"]
    assert env.store.list_run_events(run_id) == [] and env.watcher.wakes == 0


# ---------------------------------------------------------------- efficiency


def test_efficiency_from_accounting_and_gpu_samples(env: Env) -> None:
    accounting = {
        "elapsed_s": 600,
        "total_cpu_s": 660.0,
        "alloc_cpus": 8,
        "max_rss_bytes": 400 * 1024**2,
        "req_mem_bytes": 16 * 1024**3,
        "gpus": 2,
        "time_limit_min": 120,
        "state": "COMPLETED",
        "exit_code": 0,
    }
    run_id = env.run(env.admin_id, "13", slurm={"accounting": accounting})
    env.store.update_run(run_id, RunUpdate(status=RunStatus.FINISHED))
    now = time.time()
    env.store.log_metrics(
        run_id,
        {
            "sys/n1/gpu0/util_pct": MetricColumns(steps=[0, 1, 2], times=[now] * 3, values=[2.0, 3.0, 4.0]),
            "sys/n1/gpu1/util_pct": MetricColumns(steps=[0, 1], times=[now] * 2, values=[1.0, 5.0]),
            "sys/n1/r0/cpu_pct": MetricColumns(steps=[0], times=[now], values=[800.0]),  # unused: accounted
        },
    )
    r = env.bob.get(f"/api/v1/runs/{run_id}/efficiency")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["final"] is True and body["status"] == "finished"
    assert body["cpu"]["efficiency"] == pytest.approx(660 / (600 * 8))
    assert body["cpu"]["source"] == "accounting"
    assert body["time"]["fraction_used"] == pytest.approx(600 / 7200)
    assert body["gpu"]["gpu_hours"] == pytest.approx(2 * 600 / 3600)
    assert body["gpu"]["util_by_device"] == {"sys/n1/gpu0/util_pct": 3.0, "sys/n1/gpu1/util_pct": 3.0}
    advice = "\n".join(body["advice"])
    assert "asked 8 CPUs, used 1.1 on average: ask for 2" in advice
    assert "used 0.4 GB of 16 GB memory: ask for 1 GB" in advice
    assert "ran 10 min of a 2 h limit: a shorter --time starts sooner" in advice
    assert "GPUs idle (3% average utilisation)" in advice
    assert_error(env.api.get("/api/v1/runs/nope/efficiency"), 404, "not_found")


def test_efficiency_of_a_run_without_accounting_says_unknown(env: Env) -> None:
    run_id = env.run(env.admin_id, None)
    body = env.api.get(f"/api/v1/runs/{run_id}/efficiency").json()
    assert body["final"] is False and body["cpu"]["efficiency"] is None
    assert "accounting" in body["cpu"]["note"] and body["advice"] == []


# ---------------------------------------------------------------- the real dev cluster


@pytest.mark.e2e
def test_cluster_view_and_cancel_on_the_dev_cluster(
    dev_cluster: None,  # noqa: F811
    settings: Settings,
    store: Store,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    from runyard.slurm.runner import LocalSlurm

    slurm = LocalSlurm()
    user = store.create_user("admin", is_admin=True)
    exp = store.ensure_experiment("proj", "exp")
    workdir = tmp_path_factory.mktemp("job")
    job_id = slurm.submit(
        "#!/bin/bash\n#SBATCH --hold\n#SBATCH --job-name=runyard-cluster-test\n"
        f"#SBATCH --output={workdir}/o.txt\nsleep 30\n",
        workdir=str(workdir),
    )
    try:
        run = store.create_run(
            RunCreate(experiment_id=exp.id, user_id=user.id, slurm_job_id=job_id, status=RunStatus.QUEUED)
        )
        fast = dataclasses.replace(settings, slurm_poll_s=0.2, slurm_poll_max_s=1.0)
        with TestClient(create_app(fast, store, executor=slurm), raise_server_exceptions=False) as api:
            api.headers["X-API-Key"] = store.create_api_key(user.id)[1]
            body = get_cluster(api)
            assert body["errors"] == {}
            assert {n["name"] for n in body["nodes"]} == {"n1", "n2", "n3"}
            assert all(n["gpus_total"] == 4 and n["cpus_total"] == 4 for n in body["nodes"])
            parts = {p["name"]: p for p in body["partitions"]}
            assert parts["debug"]["default"] is True and parts["debug"]["max_time_min"] == 10
            row = next(r for r in body["queue"] if r["id"] == job_id)
            assert row["state"] == "PENDING" and row["reason"] == "JobHeldUser"
            assert row["run_id"] == run.id and row["name"] == "runyard-cluster-test"
            assert [r["id"] for r in body["mine"]] == [job_id]

            r = api.post(f"/api/v1/runs/{run.id}/cancel")
            assert r.status_code == 200, r.text
            # the watcher, woken, records what Slurm now says
            poll(lambda: store.get_run(run.id).status is RunStatus.CANCELLED, 60, "the run to be cancelled")
            history = api.get(f"/api/v1/runs/{run.id}/events").json()["events"]
            kinds = [(e["source"], e["kind"], e["status"]) for e in history]
            asked = kinds.index(("user", "cancel", None))
            assert ("slurm", "status", "cancelled") in kinds[asked + 1 :], kinds
    finally:
        with contextlib.suppress(SlurmError):
            slurm.cancel(job_id)
