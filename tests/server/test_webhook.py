"""/webhooks/slurm takes only signed calls (or an admin's key); forged, altered, replayed,
unsigned calls and other users' keys are refused, and nothing about the run changes."""

from __future__ import annotations

import json
import time

import pytest
from fastapi.testclient import TestClient

from runyard.server.webhook_auth import sign
from runyard.store.base import Store
from tests.server.conftest import assert_error

SECRET = "test-webhook-secret"  # tests/server/conftest.py's settings


def signed(body: dict, *, secret: str = SECRET, at: float | None = None) -> tuple[bytes, dict[str, str]]:
    raw = json.dumps(body).encode()
    stamp = str(int(time.time() if at is None else at))
    return raw, {
        "Content-Type": "application/json",
        "X-Runyard-Timestamp": stamp,
        "X-Runyard-Signature": sign(secret, stamp, raw),
    }


@pytest.fixture
def outsider(api: TestClient) -> TestClient:
    """A client of the same app with no API key (``anon`` and ``api`` share one client)."""
    return TestClient(api.app, raise_server_exceptions=False)


def make_run(api: TestClient, experiment: dict, job: str) -> str:
    r = api.post(f"/experiments/{experiment['id']}/runs", json={"slurm_job_id": job})
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


def test_signed_epilog_call_is_recorded(
    api: TestClient, outsider: TestClient, experiment: dict, store: Store
) -> None:
    run_id = make_run(api, experiment, "501")
    body, headers = signed({"job_id": "501", "exit_code": "3:0", "restart_count": "0"})
    r = outsider.post("/webhooks/slurm", content=body, headers=headers)
    assert r.status_code == 200, r.text
    assert r.json() == {"received": True, "runs": [run_id], "source": "epilog"}
    run = api.get(f"/api/v1/runs/{run_id}").json()
    assert run["status"] == "running"  # the end is Slurm's to say: the watcher asks it next
    (event,) = store.list_run_events(run_id)
    assert event.source == "epilog" and event.data == {"exit_code": 3}


def test_signed_call_with_status_goes_through_the_state_machine(
    api: TestClient, outsider: TestClient, experiment: dict
) -> None:
    run_id = make_run(api, experiment, "502")
    body, headers = signed({"job_id": "502", "status": "timeout"})
    assert outsider.post("/webhooks/slurm", content=body, headers=headers).status_code == 200
    assert api.get(f"/api/v1/runs/{run_id}").json()["status"] == "timeout"


def test_forged_unsigned_replayed_and_altered_calls_are_refused(
    api: TestClient, outsider: TestClient, experiment: dict, store: Store
) -> None:
    run_id = make_run(api, experiment, "503")
    before = api.get(f"/api/v1/runs/{run_id}").json()
    cancel = {"job_id": "503", "status": "cancelled"}
    raw = json.dumps(cancel).encode()
    r = outsider.post("/webhooks/slurm", content=raw, headers={"Content-Type": "application/json"})
    assert_error(r, 401, "unauthorized")
    assert "unsigned" in r.json()["error"]["message"]
    body, headers = signed(cancel, secret="guessed-secret")
    assert_error(outsider.post("/webhooks/slurm", content=body, headers=headers), 401, "unauthorized")
    body, headers = signed(cancel, at=time.time() - 3600)
    r = outsider.post("/webhooks/slurm", content=body, headers=headers)
    assert_error(r, 401, "unauthorized")
    assert "replay" in r.json()["error"]["message"]
    body, headers = signed({"job_id": "503", "status": "completed"})
    altered = body.replace(b"completed", b"cancelled")
    assert_error(outsider.post("/webhooks/slurm", content=altered, headers=headers), 401, "unauthorized")
    form = outsider.post("/webhooks/slurm", data={"job_id": "503", "status": "cancelled"})  # seed 003, no key
    assert_error(form, 401, "unauthorized")
    user = store.create_user("bob")
    bob_key = store.create_api_key(user.id, "k")[1]
    r = outsider.post(
        "/webhooks/slurm", data={"job_id": "503", "status": "cancelled"}, headers={"X-API-Key": bob_key}
    )
    assert_error(r, 403, "forbidden")
    after = api.get(f"/api/v1/runs/{run_id}").json()
    assert after["status"] == before["status"] == "running"
    assert store.list_run_events(run_id) == []


def test_bad_fields_name_the_field(outsider: TestClient) -> None:
    body, headers = signed({"job_id": "1; rm -rf /"})
    assert_error(
        outsider.post("/webhooks/slurm", content=body, headers=headers), 400, "invalid_input", "job_id"
    )
    body, headers = signed({"job_id": "5", "exit_code": "x"})
    assert_error(
        outsider.post("/webhooks/slurm", content=body, headers=headers), 400, "invalid_input", "exit_code"
    )
    body, headers = signed({"exit_code": "0"})
    assert_error(
        outsider.post("/webhooks/slurm", content=body, headers=headers), 400, "invalid_input", "job_id"
    )
