"""``POST /api/v1/launch`` in-process, with a real ``LocalExecutor`` under ``tmp_path``: bad
requests name the field and create nothing; good ones create runs, submit, and record the job;
the executor's refusal ends the runs failed with sbatch's message."""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from runyard.client.environment import array_run_id
from runyard.config import Settings
from runyard.errors import InvalidInput, SubmitFailed
from runyard.server.app import create_app
from runyard.slurm.local import LocalExecutor
from runyard.store.base import Store
from tests.server.conftest import assert_error
from tests.slurm.conftest import poll

TERMINAL = {"finished", "failed", "timeout", "cancelled", "oom", "node_fail"}


@pytest.fixture
def client(launcher: TestClient) -> TestClient:
    return launcher


@pytest.fixture
def work(tmp_path: Path) -> Path:
    path = tmp_path / "my project"
    path.mkdir()
    return path


def _body(work: Path, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "project": "proj",
        "experiment": "exp",
        "command": [sys.executable, "-c", "print('hello from the job')"],
        "workdir": str(work),
    }
    body.update(extra)
    return body


def _ended(client: TestClient, run_id: str, timeout_s: float = 30) -> dict[str, Any]:
    def check() -> dict[str, Any] | None:
        run: dict[str, Any] = client.get(f"/api/v1/runs/{run_id}").json()
        return run if run["status"] in TERMINAL else None

    return poll(check, timeout_s, f"run {run_id} to end")


@pytest.mark.parametrize(
    ("extra", "field"),
    [
        ({"script": "#!/bin/bash\necho\n"}, "command"),
        ({"command": None}, "command"),
        ({"command": []}, "command"),
        ({"command": "python train.py"}, "command"),
        ({"workdir": "relative/dir"}, "workdir"),
        ({"workdir": "/no/such/dir"}, "workdir"),
        ({"name": "two words"}, "name"),
        ({"resources": {"nodes": 0}}, "resources.nodes"),
        ({"resources": {"nodes": "2"}}, "resources.nodes"),
        ({"resources": {"gpus": 2}}, "resources.gpus"),
        ({"resources": {"partition": "a b"}}, "resources.partition"),
        ({"resources": {"time_limit_min": 0}}, "resources.time_limit_min"),
        ({"array": "0-9%"}, "array"),
        ({"array": "0-20000"}, "array"),
        ({"after": ["no-such-run"]}, "after[0]"),
        ({"after": ["12", "12:maybe"]}, "after[1]"),
        ({"env": {"RUNYARD_API_KEY": "x"}}, "env"),
        ({"env": {"1BAD": "x"}}, "env"),
        ({"env": {"A": 1}}, "env.A"),
        ({"requeue": "yes"}, "requeue"),
        ({"signal_before_end_s": -1}, "signal_before_end_s"),
        ({"tags": ["ok", "two\nlines"]}, "tags[1]"),
        ({"project": ""}, "project"),
        ({"colour": "blue"}, "colour"),
        ({"command": None, "script": "#!/bin/bash\n#SBATCH --nodes=lots\ntrue\n"}, "script"),
    ],
)
def test_bad_requests_name_the_field_and_create_nothing(
    client: TestClient, store: Store, executor: LocalExecutor, work: Path, extra: dict[str, Any], field: str
) -> None:
    body = {k: v for k, v in _body(work, **extra).items() if v is not None}
    error = assert_error(client.post("/api/v1/launch", json=body), 400, "invalid_input", field)
    assert field in error["message"]
    assert client.get("/api/v1/runs").json()["runs"] == []
    assert store.list_projects() == []
    assert len(store.list_api_keys()) == 1  # the test's own
    assert executor.queue() == []
    assert not (work / "runyard-logs").exists()


def test_only_users_with_a_key_launch(client: TestClient, work: Path, fast: Settings, store: Store) -> None:
    del client.headers["X-API-Key"]
    assert_error(client.post("/api/v1/launch", json=_body(work)), 401, "unauthorized")
    with TestClient(create_app(fast, store, executor=None), raise_server_exceptions=False) as other:
        other.headers["X-API-Key"] = store.create_api_key(store.get_user_by_name("admin").id)[1]
        assert_error(other.post("/api/v1/launch", json=_body(work)), 503, "no_executor")


def test_only_admins_launch_unless_the_server_allows_users(
    client: TestClient, work: Path, fast: Settings, store: Store, executor: LocalExecutor
) -> None:
    bob = store.create_user("bob")
    client.headers["X-API-Key"] = store.create_api_key(bob.id)[1]
    r = client.post("/api/v1/launch", json=_body(work))
    assert_error(r, 403, "forbidden")
    assert "RUNYARD_LAUNCH_ALLOWED" in r.json()["error"]["message"]
    assert executor.queue() == [] and store.list_projects() == []
    open_to_users = dataclasses.replace(fast, launch_allowed="users")
    with TestClient(create_app(open_to_users, store, executor=executor), raise_server_exceptions=False) as c:
        c.headers["X-API-Key"] = client.headers["X-API-Key"]
        assert c.post("/api/v1/launch", json=_body(work)).status_code == 201


def test_jobs_do_not_inherit_the_servers_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    from runyard.slurm.runner import job_environment

    monkeypatch.setenv("RUNYARD_DATABASE_URL", "postgresql://runyard:s3cret@db/runyard")
    monkeypatch.setenv("RUNYARD_WEBHOOK_SECRET", "hush")
    monkeypatch.setenv("RUNYARD_URL", "http://tracker:8765")  # a client setting: jobs need it
    env = job_environment()
    assert "RUNYARD_DATABASE_URL" not in env and "RUNYARD_WEBHOOK_SECRET" not in env
    assert env["RUNYARD_URL"] == "http://tracker:8765" and "PATH" in env


def test_a_launch_creates_the_run_submits_and_records_the_job(
    client: TestClient, store: Store, executor: LocalExecutor, work: Path
) -> None:
    body = _body(
        work,
        name="hello",
        resources={"partition": "local", "mem_gb": 1.5, "time_limit_min": 10},
        env={"GREETING": "hi 'there'"},
        config={"lr": 0.1},
        tags=["smoke"],
        command=[
            sys.executable,
            "-c",
            "import os; print(os.environ['GREETING'], os.environ['RUNYARD_RUN_ID'])",
        ],
    )
    r = client.post("/api/v1/launch", json=body)
    assert r.status_code == 201, r.text
    out = r.json()
    [run_id] = out["run_ids"]
    assert out["executor"] == "local" and out["job_id"].isdigit() and out["array_task_ids"] is None
    [launched] = out["runs"]
    stdout = work / "runyard-logs" / f"hello-{out['job_id']}.out"
    assert launched == {
        "run_id": run_id,
        "slurm_job_id": out["job_id"],
        "array_task_id": None,
        "stdout": str(stdout),
        "stderr": str(stdout.with_suffix(".err")),
    }
    run = client.get(f"/api/v1/runs/{run_id}").json()
    assert run["slurm_job_id"] == out["job_id"] and run["name"] == "hello"
    assert run["config"] == {"lr": 0.1} and run["tags"] == ["smoke"]
    assert run["status"] in ("queued", "running", "finished")
    slurm = run["slurm"]
    assert slurm["launched"] is True and slurm["requeue"] is True and slurm["array"] is None
    assert slurm["requested"] == {
        "nodes": 1,
        "ntasks_per_node": 1,
        "cpus_per_task": 1,
        "partition": "local",
        "mem_gb": 1.5,
        "time_limit_min": 10,
    }
    assert slurm["stdout"] == str(stdout) and slurm["command"] == body["command"]
    # the watcher follows the job to its end
    run = _ended(client, run_id)
    assert (run["status"], run["exit_code"]) == ("finished", 0), run
    assert stdout.read_text().startswith(f"hi 'there' {run_id}\n")
    kinds = [(e.source, e.kind, e.status) for e in store.list_run_events(run_id)]
    assert ("user", "submitted", None) in kinds and ("user", "status", "queued") in kinds
    # the job got a key of its own, named after it; never written into the script
    keys = [k for k in store.list_api_keys() if k.name == "job hello"]
    assert len(keys) == 1 and keys[0].id == slurm["api_key_id"]
    script = (executor.state_dir / "jobs" / out["job_id"] / "script").read_text()
    assert "RUNYARD_API_KEY" not in script and f"export RUNYARD_RUN_ID={run_id}\n" in script


def test_an_array_is_one_run_per_task(client: TestClient, work: Path, executor: LocalExecutor) -> None:
    body = _body(
        work,
        array="0-4:2%2",
        command=[
            sys.executable,
            "-c",
            "import os, sys; sys.exit(int(os.environ['SLURM_ARRAY_TASK_ID']) // 4)",
        ],
        requeue=False,
    )
    r = client.post("/api/v1/launch", json=body)
    assert r.status_code == 201, r.text
    out = r.json()
    job = out["job_id"]
    assert out["array_task_ids"] == [0, 2, 4]
    assert [x["slurm_job_id"] for x in out["runs"]] == [f"{job}_0", f"{job}_2", f"{job}_4"]
    assert out["runs"][1]["stdout"] == str(work / "runyard-logs" / f"{Path(sys.executable).name}-{job}_2.out")
    # each task's run id is the one the job derives from RUNYARD_ARRAY_BASE_ID and its task id
    script = (executor.state_dir / "jobs" / job / "script").read_text()
    [base] = [
        line.split("=", 1)[1]
        for line in script.splitlines()
        if line.startswith("export RUNYARD_ARRAY_BASE_ID=")
    ]
    assert out["run_ids"] == [array_run_id(base, t) for t in (0, 2, 4)]
    ended = [_ended(client, run_id) for run_id in out["run_ids"]]
    assert [(e["status"], e["exit_code"], e["slurm_array_task_id"]) for e in ended] == [
        ("finished", 0, 0),
        ("finished", 0, 2),
        ("failed", 1, 4),
    ]
    assert {e["slurm"]["array"] for e in ended} == {"0-4:2%2"}
    assert ended[0]["slurm_array_job_id"] == job


def test_a_script_keeps_its_directives(client: TestClient, work: Path) -> None:
    script = (
        "#!/bin/bash\n"
        "#SBATCH --job-name=from-script\n"
        "#SBATCH --output=out/%x-%j.log\n"
        "#SBATCH --mem=2G\n"
        'echo "script ran in $PWD"\n'
        "exit 5\n"
    )
    (work / "out").mkdir()
    r = client.post(
        "/api/v1/launch", json=_body(work, command=None, script=script, resources={"cpus_per_task": 2})
    )
    assert r.status_code == 201, r.text
    out = r.json()
    log = work / "out" / f"from-script-{out['job_id']}.log"
    assert out["runs"][0]["stdout"] == out["runs"][0]["stderr"] == str(log)
    saved = Path(out["script_path"])
    assert saved.parent == work / "runyard-logs" and saved.read_text() == script
    run = _ended(client, out["run_ids"][0])
    assert (run["status"], run["exit_code"], run["name"]) == ("failed", 5, "from-script")
    assert run["slurm"]["requested"] == {"mem_gb": 2.0, "cpus_per_task": 2}
    assert run["slurm"]["script_path"] == str(saved)
    lines = log.read_text().splitlines()  # stdout and stderr (the reporter's complaints) alike
    assert f"script ran in {work}" in lines and any(line.startswith("runyard jobreport:") for line in lines)


def test_after_waits_for_a_run(client: TestClient, work: Path, executor: LocalExecutor) -> None:
    wait_for_go = "import os, time\nwhile not os.path.exists('go'): time.sleep(0.05)"  # no race: we say when
    first = client.post(
        "/api/v1/launch", json=_body(work, command=[sys.executable, "-c", wait_for_go])
    ).json()
    second = client.post(
        "/api/v1/launch", json=_body(work, after=[first["run_ids"][0], f"{first['job_id']}:any"])
    ).json()
    run = client.get(f"/api/v1/runs/{second['run_ids'][0]}").json()
    assert run["slurm"]["dependency"] == f"afterok:{first['job_id']},afterany:{first['job_id']}"
    pending = poll(
        lambda: next((j for j in executor.queue() if str(j.job_id) == second["job_id"] and j.reason), None),
        10,
        "the second job to wait",
    )
    assert pending.reason == "Dependency"
    (work / "go").touch()
    assert _ended(client, second["run_ids"][0])["status"] == "finished"


class Refusing:
    kind = "slurm"

    def submit(self, script: str, **_: Any) -> str:
        raise SubmitFailed(
            "sbatch failed (exit 1): sbatch: error: invalid partition specified: nope; "
            "sbatch: error: Batch job submission failed: Invalid partition name specified"
        )

    def __getattr__(self, name: str) -> Any:
        return lambda *a, **k: []


def test_a_refused_submission_fails_the_runs(
    fast: Settings, store: Store, admin_key: str, work: Path
) -> None:
    with TestClient(create_app(fast, store, executor=Refusing()), raise_server_exceptions=False) as client:
        client.headers["X-API-Key"] = admin_key
        r = client.post("/api/v1/launch", json=_body(work, array="0-1", resources={"partition": "nope"}))
        error = assert_error(r, 502, "submit_failed", None)
        assert "invalid partition specified: nope" in error["message"] and "marked failed" in error["message"]
        runs = client.get("/api/v1/runs").json()["runs"]
    assert len(runs) == 2 and {r["status"] for r in runs} == {"failed"}
    for run in runs:
        [event] = [e for e in store.list_run_events(run["id"]) if e.status == "failed"]
        assert "invalid partition specified: nope" in event.message
    [key] = [k for k in store.list_api_keys() if k.name.startswith("job ")]
    assert key.revoked_at is not None


def test_jobs_reach_the_server_at_its_public_url_and_rest_jobs_get_no_batch_signal(
    fast: Settings, store: Store, admin_key: str, executor: LocalExecutor, work: Path
) -> None:
    submitted: list[tuple[str, dict[str, str]]] = []

    class Recording(LocalExecutor):
        batch_signals = False  # like slurmrestd 22.05

        def submit(self, script: str, *, workdir: str | None = None, env: Any = None) -> str:
            submitted.append((script, dict(env or {})))
            return super().submit(script, workdir=workdir, env=env)

    recording = Recording(executor.state_dir, kill_wait_s=1.0)
    public = dataclasses.replace(fast, public_url="https://tracker.example.org")
    with TestClient(create_app(public, store, executor=recording), raise_server_exceptions=False) as c:
        c.headers["X-API-Key"] = admin_key
        assert c.post("/api/v1/launch", json=_body(work)).status_code == 201
        script, env = submitted[0]
        assert env["RUNYARD_URL"] == "https://tracker.example.org" and "--signal" not in script
        r = c.post("/api/v1/launch", json=_body(work, signal_before_end_s=60))
        assert_error(r, 400, "invalid_input", "signal_before_end_s")
    with pytest.raises(InvalidInput):
        Settings.from_env(data_dir=str(work), public_url="tracker:8765")
