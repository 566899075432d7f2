"""Who is asking, and the one error shape on every error path."""

from __future__ import annotations

from fastapi.testclient import TestClient

from runyard.store.base import Store
from tests.server.conftest import assert_error

PROTECTED = [
    ("GET", "/api/v1/projects"),
    ("GET", "/api/v1/experiments"),
    ("GET", "/api/v1/runs"),
    ("POST", "/api/v1/runs/x/batches"),
    ("POST", "/experiments/x/runs"),
    ("POST", "/runs/x/metrics"),
    ("POST", "/runs/x/metrics/batch"),
    ("POST", "/runs/x/artifacts"),
    ("POST", "/webhooks/slurm"),
    ("GET", "/api/v1/users"),
    ("GET", "/api/v1/whoami"),
]


def test_health_needs_no_key(anon: TestClient) -> None:
    r = anon.get("/api/v1/health")
    assert r.status_code == 200
    assert r.json()["status"] == "ok"
    assert r.json()["database"] == "sqlite"


def test_every_other_endpoint_needs_a_key(anon: TestClient) -> None:
    for method, path in PROTECTED:
        err = assert_error(anon.request(method, path, json={}), 401, "unauthorized")
        assert "X-API-Key" in err["message"], (method, path)


def test_every_route_in_openapi_requires_auth_except_health(anon: TestClient) -> None:
    spec = anon.get("/openapi.json").json()
    for path, methods in spec["paths"].items():
        for method in methods:
            if path == "/api/v1/health":
                continue
            r = anon.request(method.upper(), path.replace("{", "").replace("}", ""), json={})
            assert r.status_code == 401, (method, path, r.status_code)


def test_wrong_and_revoked_keys_are_refused(anon: TestClient, store: Store, admin_key: str) -> None:
    assert_error(anon.get("/api/v1/whoami", headers={"X-API-Key": "ry_nope_nope"}), 401, "unauthorized")
    user = store.create_user("bob")
    key, secret = store.create_api_key(user.id)
    assert (
        anon.get("/api/v1/whoami", headers={"Authorization": f"Bearer {secret}"}).json()["username"] == "bob"
    )
    r = anon.delete(f"/api/v1/apikeys/{key.id}", headers={"X-API-Key": secret})
    assert r.status_code == 200 and r.json()["revoked_at"] is not None
    assert_error(anon.get("/api/v1/whoami", headers={"X-API-Key": secret}), 401, "unauthorized")


def test_secrets_are_stored_hashed(store: Store, admin_key: str, settings) -> None:
    raw = (settings.data_dir / "runyard.db").read_bytes()
    assert admin_key.encode() not in raw
    for key in store.list_api_keys():
        assert key.prefix and len(key.prefix) < len(admin_key)


def test_non_admin_cannot_manage_users(anon: TestClient, store: Store) -> None:
    user = store.create_user("carol")
    _, secret = store.create_api_key(user.id)
    h = {"X-API-Key": secret}
    assert_error(anon.get("/api/v1/users", headers=h), 403, "forbidden")
    assert_error(anon.post("/api/v1/users", json={"username": "x"}, headers=h), 403, "forbidden")
    assert_error(anon.post("/api/v1/apikeys", json={"user_id": "someone"}, headers=h), 403, "forbidden")
    r = anon.post("/api/v1/apikeys", json={"name": "laptop"}, headers=h)
    assert r.status_code == 201 and r.json()["key"].startswith("ry_")


def test_admin_creates_users_and_keys(api: TestClient) -> None:
    r = api.post("/api/v1/users", json={"username": "dave", "password": "correct horse"})
    assert r.status_code == 201
    assert "password" not in r.json()
    key = api.post("/api/v1/apikeys", json={"user_id": r.json()["id"], "name": "k"}).json()
    assert api.get("/api/v1/whoami", headers={"X-API-Key": key["key"]}).json()["username"] == "dave"
    listed = api.get("/api/v1/apikeys").json()
    assert all("key" not in k for k in listed)


def test_error_shape_on_every_error_path(api: TestClient, run: dict, settings) -> None:
    rid = run["id"]
    assert_error(api.get("/api/v1/runs/does-not-exist"), 404, "not_found")
    assert_error(api.get("/api/v1/no/such/path"), 404, "not_found")
    assert_error(api.put("/api/v1/health"), 405, "invalid_input")
    err = assert_error(
        api.post(
            f"/api/v1/runs/{rid}/metrics", content=b"{not json", headers={"Content-Type": "application/json"}
        ),
        400,
        "invalid_input",
        "body",
    )
    assert "JSON" in err["message"]
    assert_error(
        api.post("/api/v1/experiments", content=b"{", headers={"Content-Type": "application/json"}),
        400,
        "invalid_input",
        "body",
    )
    err = assert_error(
        api.post("/api/v1/experiments", json={"project": "p", "name": 5}), 400, "invalid_input"
    )
    assert err["field"] == "name"
    api.post("/api/v1/experiments", json={"project": "p", "name": "dup"})
    assert_error(api.post("/api/v1/experiments", json={"project": "p", "name": "dup"}), 409, "already_exists")
    big = b"x" * (settings.max_body_bytes + 1)
    err = assert_error(api.post(f"/api/v1/runs/{rid}/batches", content=big), 413, "payload_too_large", "body")
    assert "4 MiB" in err["message"] and "RUNYARD_MAX_BODY_MB" in err["message"]
    assert_error(api.get("/api/v1/runs", params={"filter": "bogus"}), 400, "invalid_input", "filter")
    assert_error(api.get("/api/v1/runs", params={"sort": "colour"}), 400, "invalid_input", "sort")
    assert_error(api.get("/api/v1/runs", params={"limit": 0}), 400, "invalid_input", "limit")


def test_chunked_oversized_body_is_refused(api: TestClient, run: dict, settings) -> None:
    def chunks():
        for _ in range(settings.max_body_bytes // 65536 + 2):
            yield b"x" * 65536

    r = api.post(f"/api/v1/runs/{run['id']}/batches", content=chunks())
    assert_error(r, 413, "payload_too_large", "body")


def test_unknown_exception_is_a_generic_500(api: TestClient, store: Store, monkeypatch) -> None:
    def boom(*a, **k):
        raise RuntimeError("secret internals")

    monkeypatch.setattr(store, "list_projects", boom)
    err = assert_error(api.get("/api/v1/projects"), 500, "internal")
    assert "secret" not in err["message"]


def test_openapi_documents_the_api(anon: TestClient) -> None:
    spec = anon.get("/openapi.json").json()
    for path in (
        "/api/v1/runs/{run_id}/batches",
        "/api/v1/runs",
        "/api/v1/runs/{run_id}/metrics/series",
        "/webhooks/slurm",
        "/api/v1/runs/{run_id}/artifacts",
    ):
        assert path in spec["paths"], path
    batch = spec["paths"]["/api/v1/runs/{run_id}/batches"]["post"]
    assert "requestBody" in batch
