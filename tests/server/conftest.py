from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from runyard.config import Settings
from runyard.server.app import create_app
from runyard.slurm.local import LocalExecutor
from runyard.store import open_store
from runyard.store.base import Store


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(
        data_dir=tmp_path,
        database_url=f"sqlite:///{tmp_path / 'runyard.db'}",
        max_body_bytes=4 * 1024 * 1024,
        max_artifact_bytes=64 * 1024,
        executor="none",  # API tests never reach a real Slurm; tests that need one pass it in
        webhook_secret="test-webhook-secret",
    )


@pytest.fixture
def fast(settings: Settings) -> Settings:
    """Settings whose watcher asks the executor often (tests with a LocalExecutor)."""
    return dataclasses.replace(
        settings, slurm_poll_s=0.1, slurm_poll_max_s=0.5, slurm_max_calls_per_min=10_000
    )


@pytest.fixture
def executor(tmp_path: Path) -> LocalExecutor:
    """A real local executor under tmp_path (jobs are local processes)."""
    return LocalExecutor(tmp_path / "local-jobs", kill_wait_s=1.0)


@pytest.fixture
def store(settings: Settings) -> Iterator[Store]:
    s = open_store(settings.database_url)
    s.upgrade()
    yield s
    s.close()


@pytest.fixture
def admin_key(store: Store) -> str:
    user = store.create_user("admin", is_admin=True)
    return store.create_api_key(user.id, "test")[1]


@pytest.fixture
def anon(settings: Settings, store: Store) -> Iterator[TestClient]:
    """A client that sends no API key."""
    with TestClient(create_app(settings, store), raise_server_exceptions=False) as c:
        yield c


@pytest.fixture
def api(anon: TestClient, admin_key: str) -> TestClient:
    anon.headers["X-API-Key"] = admin_key
    return anon


@pytest.fixture
def experiment(api: TestClient) -> dict:
    r = api.post("/api/v1/experiments", json={"project": "proj", "name": "exp", "exist_ok": True})
    assert r.status_code in (200, 201), r.text
    return r.json()


@pytest.fixture
def run(api: TestClient, experiment: dict) -> dict:
    r = api.post(f"/api/v1/experiments/{experiment['id']}/runs", json={"name": "r1", "config": {"lr": 0.1}})
    assert r.status_code == 201, r.text
    return r.json()


def assert_error(response, status: int, code: str, field: str | None = "__any__") -> dict:
    """The one error shape: exactly {"error": {"code", "message", "field"}}."""
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"}, body
    assert set(body["error"]) == {"code", "message", "field"}, body
    assert body["error"]["code"] == code, body
    assert isinstance(body["error"]["message"], str) and body["error"]["message"], body
    if field != "__any__":
        assert body["error"]["field"] == field, body
    return body["error"]


@pytest.fixture
def launcher(
    fast: Settings,
    store: Store,
    admin_key: str,
    executor: LocalExecutor,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[TestClient]:
    """An admin's client of an app that launches through ``executor``; its jobs are cancelled after."""
    # the job's reporter cannot reach the in-process server: what it would send goes here
    monkeypatch.setenv("RUNYARD_SPOOL_DIR", str(tmp_path / "spool"))
    with TestClient(create_app(fast, store, executor=executor), raise_server_exceptions=False) as c:
        c.headers["X-API-Key"] = admin_key
        yield c
    for job in executor.queue():
        if job.state in ("PENDING", "RUNNING"):
            executor.cancel(str(job.array_job_id or job.job_id))
