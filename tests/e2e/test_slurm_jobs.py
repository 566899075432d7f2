"""Issue 3's acceptance scenarios on the real local Slurm cluster, through a real server.

Every job of this module is launched at once by the module fixture (``POST /api/v1/launch``, what
``runyard launch`` calls), so the slow ones (the time limit, the requeue) run side by side;
each test then waits for its own run and asserts its final state, exit code, metrics and logs
as the server recorded them from the client, the batch script and Slurm (the watcher).
Disruptive scenarios (a node going down, slurmctld stopping) are in test_slurm_disruptions.py.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import LiveServer, free_port
from tests.slurm.conftest import dev_cluster  # noqa: F401  (the module's cluster fixture)

ROOT = Path(__file__).resolve().parents[2]
JOB = str(Path(__file__).parent / "scripts" / "slurm_job.py")
PY = sys.executable


class Api:
    def __init__(self, server: LiveServer) -> None:
        self.server = server

    def call(self, method: str, path: str, body: Any = None, key: str | None = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        headers = {"Content-Type": "application/json", "X-API-Key": key or self.server.key}
        req = urllib.request.Request(f"{self.server.url}{path}", data=data, method=method, headers=headers)
        with urllib.request.urlopen(req, timeout=60) as r:
            return json.loads(r.read())

    def run(self, run_id: str) -> dict[str, Any]:
        return dict(self.call("GET", f"/api/v1/runs/{run_id}"))

    def events(self, run_id: str) -> list[dict[str, Any]]:
        return list(self.call("GET", f"/api/v1/runs/{run_id}/events")["events"])

    def wait(
        self, run_id: str, until: Callable[[dict[str, Any]], bool], what: str, timeout_s: float = 120
    ) -> dict[str, Any]:
        deadline = time.monotonic() + timeout_s
        run = self.run(run_id)
        while not until(run):
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out after {timeout_s:.0f} s waiting for {what}; run is {run}")
            time.sleep(0.5)
            run = self.run(run_id)
        return run

    def wait_status(self, run_id: str, *statuses: str, timeout_s: float = 120) -> dict[str, Any]:
        return self.wait(run_id, lambda r: r["status"] in statuses, f"status {statuses}", timeout_s)

    def wait_exit_code(self, run_id: str) -> dict[str, Any]:
        """The client says "finished" as it exits; the code follows from the batch script and Slurm."""
        return self.wait(run_id, lambda r: r["exit_code"] is not None, "the exit code", 30)

    def logs(self, run_id: str, stream: str = "stdout") -> str:
        page = self.call("GET", f"/api/v1/runs/{run_id}/logs?stream={stream}")
        return "\n".join(line["text"] for line in page["lines"])


def slurm_server(tmp: Path, name: str) -> LiveServer:
    import os

    env = {k: v for k, v in os.environ.items() if not k.startswith(("RUNYARD_", "SLURM_", "TRACKER_"))}
    env.update(
        RUNYARD_CONFIG=str(tmp / "client-config.toml"),
        RUNYARD_EXECUTOR="slurm",
        RUNYARD_SLURM_POLL_S="1",
        RUNYARD_SLURM_POLL_MAX_S="2",
        RUNYARD_SLURM_MAX_CALLS_PER_MIN="300",
        RUNYARD_JOB_PYTHON=PY,
        PYTHONUNBUFFERED="1",
    )
    data = tmp / name
    data.mkdir()
    server = LiveServer(data, free_port(), env)
    server.start()
    return server


@pytest.fixture(scope="module")
def api(dev_cluster: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:  # noqa: F811
    server = slurm_server(tmp_path_factory.mktemp("slurm-jobs"), "server")
    yield Api(server)
    server.stop()


def launch(api: Api, tmp: Path, name: str, command: list[str], **body: Any) -> dict[str, Any]:
    env = {"CKPT_DIR": str(tmp), **body.pop("env", {})}
    request = {
        "project": "acceptance",
        "experiment": body.pop("experiment", "slurm"),
        "name": name,
        "command": command,
        "workdir": str(ROOT),
        "output_dir": str(tmp / "logs"),
        "env": env,
        **body,
    }
    request.setdefault("resources", {"partition": "debug", "time_limit_min": 5})
    return dict(api.call("POST", "/api/v1/launch", request))


@pytest.fixture(scope="module")
def jobs(api: Api, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, dict[str, Any]]]:
    """Launch every scenario now, so they run concurrently; cancel what is left at the end."""
    tmp = tmp_path_factory.mktemp("slurm-job-files")
    subprocess.run(
        ["bash", str(ROOT / "scripts" / "install-torch.sh"), str(Path(PY).parent.parent)], check=True
    )
    j: dict[str, dict[str, Any]] = {}
    j["blocker"] = launch(api, tmp, "blocker", [PY, JOB, "sleep", "240"])
    j["finish"] = launch(api, tmp, "finish", [PY, JOB, "finish"])
    j["exit3"] = launch(api, tmp, "exit3", [PY, JOB, "exit3"])
    j["timeout"] = launch(
        api,
        tmp,
        "timeout",
        [PY, JOB, "timeout"],
        resources={"partition": "debug", "time_limit_min": 1},
        requeue=False,
        signal_before_end_s=50,
    )
    j["pending"] = launch(api, tmp, "pending", [PY, JOB, "finish"], after=[j["blocker"]["run_ids"][0]])
    j["running"] = launch(api, tmp, "running", [PY, JOB, "sleep", "120"])
    j["oom"] = launch(
        api,
        tmp,
        "oom",
        [PY, JOB, "oom"],
        resources={"partition": "debug", "time_limit_min": 5, "mem_gb": 0.25},
    )
    j["resume"] = launch(api, tmp, "resume", [PY, JOB, "resume", "40"])
    j["array"] = launch(api, tmp, "array", [PY, JOB, "array", "3"], array="0-5%2", experiment="array")
    j["a"] = launch(api, tmp, "chain-a", [PY, JOB, "finish"])
    j["b"] = launch(api, tmp, "chain-b", [PY, JOB, "finish"], after=[f"{j['a']['run_ids'][0]}:ok"])
    j["c"] = launch(api, tmp, "chain-c", [PY, JOB, "finish"], after=[f"{j['b']['job_id']}:ok"])
    j["never"] = launch(api, tmp, "never", [PY, JOB, "finish"], after=[f"{j['exit3']['job_id']}:ok"])
    j["ddp"] = launch(
        api,
        tmp,
        "ddp",
        [
            "srun",
            "-l",
            "--kill-on-bad-exit=1",
            PY,
            "examples/ddp_train.py",
            "--steps",
            "40",
            "--step-sleep-s",
            "0.05",
        ],
        resources={"partition": "debug", "time_limit_min": 5, "nodes": 2, "ntasks_per_node": 1},
        env={"RUNYARD_SYSTEM_INTERVAL_S": "0.5"},
        experiment="ddp",
    )
    yield j
    for launched in j.values():
        for run_id in launched["run_ids"]:
            try:
                if api.run(run_id)["status"] in ("created", "queued", "running", "requeued"):
                    api.call("POST", f"/api/v1/runs/{run_id}/cancel")
            except urllib.error.HTTPError:
                pass


def run_id_of(jobs: dict[str, dict[str, Any]], name: str) -> str:
    return str(jobs[name]["run_ids"][0])


def test_a_job_that_finishes(api: Api, jobs: dict[str, dict[str, Any]]) -> None:
    run_id = run_id_of(jobs, "finish")
    api.wait_status(run_id, "finished", "failed")
    run = api.wait_exit_code(run_id)
    assert run["status"] == "finished" and run["exit_code"] == 0
    assert run["slurm_job_id"] == jobs["finish"]["job_id"] and run["slurm_partition"] == "debug"
    assert run["metrics"]["loss"]["count"] == 5
    assert "hello from stdout" in api.logs(run_id, "stdout")
    assert "a warning on stderr" in api.logs(run_id, "stderr")
    run = api.wait(run_id, lambda r: r["slurm_done"], "Slurm's accounting")
    assert run["slurm"]["accounting"]["alloc_cpus"] >= 1
    report = api.call("GET", f"/api/v1/runs/{run_id}/efficiency")  # from Slurm's real accounting
    assert report["final"] and report["cpu"]["source"] == "accounting"
    assert report["cpu"]["alloc_cpus"] == run["slurm"]["accounting"]["alloc_cpus"]
    assert report["cpu"]["efficiency"] >= 0 and report["time"]["time_limit_min"] == 5
    assert report["memory"]["max_rss_bytes"] and report["memory"]["req_mem_bytes"]


def test_a_job_that_exits_3(api: Api, jobs: dict[str, dict[str, Any]]) -> None:
    run_id = run_id_of(jobs, "exit3")
    run = api.wait_status(run_id, "failed", "finished")
    assert run["status"] == "failed" and run["exit_code"] == 3
    assert "about to fail with exit code 3" in api.logs(run_id, "stderr")
    sources = {e["source"] for e in api.events(run_id) if e["kind"] == "status"}
    assert "job" in sources  # the script never imported runyard: the batch script reported it


def test_a_pending_job_shows_its_reason_and_is_cancelled(api: Api, jobs: dict[str, dict[str, Any]]) -> None:
    run_id = run_id_of(jobs, "pending")
    run = api.wait(run_id, lambda r: r["pending_reason"] == "Dependency", "reason Dependency")
    assert run["status"] == "queued" and run["slurm_state"] == "PENDING"
    api.call("POST", f"/api/v1/runs/{run_id}/cancel")
    run = api.wait_status(run_id, "cancelled")
    assert run["started_at"] is None and run["pending_reason"] is None


def test_a_running_job_is_cancelled(api: Api, jobs: dict[str, dict[str, Any]]) -> None:
    run_id = run_id_of(jobs, "running")
    api.wait(run_id, lambda r: r["status"] == "running" and "loss" in r["metrics"], "running with metrics")
    api.call("POST", f"/api/v1/runs/{run_id}/cancel")
    run = api.wait_status(run_id, "cancelled", "finished", "failed")
    assert run["status"] == "cancelled"
    assert run["metrics"]["loss"]["count"] >= 1


def test_a_job_killed_for_memory(api: Api, jobs: dict[str, dict[str, Any]]) -> None:
    run_id = run_id_of(jobs, "oom")
    run = api.wait_status(run_id, "oom", "failed", "finished", "cancelled")
    assert run["status"] == "oom", api.logs(run_id, "stderr")
    assert "memory" in api.logs(run_id, "stderr")


def test_scontrol_requeue_resumes_the_same_run_from_its_checkpoint(
    api: Api, jobs: dict[str, dict[str, Any]]
) -> None:
    run_id = run_id_of(jobs, "resume")
    run = api.wait(run_id, lambda r: r["metrics"].get("loss", {}).get("count", 0) >= 12, "12 steps", 120)
    arts = api.call("GET", f"/api/v1/runs/{run_id}/artifacts")
    arts = arts["artifacts"] if isinstance(arts, dict) else arts
    assert any(a["kind"] == "checkpoint" for a in arts)
    subprocess.run(["scontrol", "requeue", run["slurm_job_id"]], check=True)
    api.wait_status(run_id, "finished", "failed", "cancelled", timeout_s=180)
    run = api.wait_exit_code(run_id)
    assert run["status"] == "finished" and run["restart_count"] == 1 and run["exit_code"] == 0
    assert run["summary"]["started_at_step"] >= 5  # it reloaded a checkpoint, not step 0
    assert run["metrics"]["loss"]["last_step"] == 39
    statuses = [e["status"] for e in api.events(run_id) if e["kind"] == "status"]
    assert "requeued" in statuses and statuses[-1] == "finished"
    assert statuses.index("requeued") < len(statuses) - 1


def test_past_its_time_limit(api: Api, jobs: dict[str, dict[str, Any]]) -> None:
    run_id = run_id_of(jobs, "timeout")
    # the batch script may report its exit (143, "failed") a moment before Slurm's TIMEOUT,
    # which then wins: wait for Slurm's final word
    run = api.wait(run_id, lambda r: r["slurm_done"], "Slurm's final state", timeout_s=240)
    assert run["status"] == "timeout"
    arts = api.call("GET", f"/api/v1/runs/{run_id}/artifacts")
    arts = arts["artifacts"] if isinstance(arts, dict) else arts
    assert [a["kind"] for a in arts] == ["checkpoint"]  # the callback ran and its checkpoint was recorded
    assert "checkpoint saved at the time-limit warning" in api.logs(run_id, "stdout")
    assert "DUE TO TIME LIMIT" in api.logs(run_id, "stderr") + api.logs(run_id, "stdout")


def test_an_array_of_6_two_at_a_time(api: Api, jobs: dict[str, dict[str, Any]]) -> None:
    run_ids = jobs["array"]["run_ids"]
    assert len(run_ids) == 6 and jobs["array"]["array_task_ids"] == list(range(6))
    runs = [api.wait_status(r, "finished", "failed", "cancelled", timeout_s=180) for r in run_ids]
    assert [r["status"] for r in runs] == ["finished"] * 6
    assert [r["slurm_array_task_id"] for r in runs] == list(range(6))
    assert [r["metrics"]["task"]["last"] for r in runs] == [float(t) for t in range(6)]
    spans = sorted((r["started_at"], r["ended_at"]) for r in runs)
    most = max(sum(1 for s, e in spans if s <= start < e) for start, _ in spans)
    assert most <= 2, spans
    waited = {e["message"] for r in run_ids[2:] for e in api.events(r) if "JobArrayTaskLimit" in e["message"]}
    assert waited, "no task was seen waiting for the %2 throttle"


def test_a_dependency_chain(api: Api, jobs: dict[str, dict[str, Any]]) -> None:
    a, b, c = (api.wait_status(run_id_of(jobs, k), "finished", "failed", "cancelled") for k in "abc")
    assert [r["status"] for r in (a, b, c)] == ["finished"] * 3
    assert a["ended_at"] <= b["started_at"] and b["ended_at"] <= c["started_at"]


def test_a_dependency_on_a_failed_job_never_runs(api: Api, jobs: dict[str, dict[str, Any]]) -> None:
    run_id = run_id_of(jobs, "never")
    run = api.wait(
        run_id, lambda r: r["pending_reason"] == "DependencyNeverSatisfied", "DependencyNeverSatisfied"
    )
    assert run["status"] == "queued"
    api.call("POST", f"/api/v1/runs/{run_id}/cancel")
    assert api.wait_status(run_id, "cancelled")["started_at"] is None


def test_a_two_node_ddp_job_is_one_run(api: Api, jobs: dict[str, dict[str, Any]]) -> None:
    run_id = run_id_of(jobs, "ddp")
    run = api.wait_status(run_id, "finished", "failed", "cancelled", timeout_s=240)
    assert run["status"] == "finished", api.logs(run_id, "stdout")[-3000:]
    assert re.fullmatch(r"n\[\d[-,]\d\]", run["slurm_nodes"] or ""), run[
        "slurm_nodes"
    ]  # 2 nodes: n[1-2], n[1,3]
    exps = api.call("GET", "/api/v1/experiments")
    exps = exps["experiments"] if isinstance(exps, dict) else exps
    ddp_exp = next(e for e in exps if e["name"] == "ddp")
    page = api.call("GET", f"/api/v1/runs?experiment_id={ddp_exp['id']}")
    assert [r["id"] for r in page["runs"]] == [run_id]  # one run, not one per rank
    assert run["metrics"]["loss"]["count"] == 40 and run["metrics"]["ranks_reduced"]["last"] == 2.0
    hosts_ranks = {k.split("/")[1] + "/" + k.split("/")[2] for k in run["metrics"] if k.endswith("/cpu_pct")}
    assert len(hosts_ranks) == 2 and {h.split("/")[1] for h in hosts_ranks} == {"r0", "r1"}


def test_the_webhook_refuses_a_forged_call(api: Api) -> None:
    body = json.dumps({"job_id": "1", "status": "cancelled"}).encode()
    for headers in (
        {},
        {"X-Runyard-Timestamp": str(int(time.time())), "X-Runyard-Signature": "sha256=" + "0" * 64},
    ):
        req = urllib.request.Request(
            f"{api.server.url}/webhooks/slurm",
            data=body,
            method="POST",
            headers={"Content-Type": "application/json", **headers},
        )
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(req, timeout=10)
        assert err.value.code == 401
