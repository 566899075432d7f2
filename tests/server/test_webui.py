"""The web UI's pages and assets as the server serves them, and the two small endpoints it needs."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.testclient import TestClient

from runyard.server.webui import install_webui
from tests.server.conftest import assert_error


def _fake_build(root: Path) -> Path:
    (root / "assets").mkdir(parents=True)
    (root / "index.html").write_text(
        '<!doctype html><div id="root"></div><script src="/assets/app-1.js"></script>'
    )
    (root / "assets" / "app-1.js").write_text("console.log('app')")
    return root


def test_every_page_answers_the_app_with_a_strict_policy(tmp_path: Path) -> None:
    app = FastAPI()
    install_webui(app, _fake_build(tmp_path / "webui"))
    client = TestClient(app)
    for path in ("/", "/signin", "/projects", "/experiments/abc", "/runs/0123abcd", "/launch", "/cluster"):
        r = client.get(path)
        assert r.status_code == 200, path
        assert r.headers["content-type"].startswith("text/html")
        assert '<div id="root">' in r.text
        csp = r.headers["content-security-policy"]
        assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
        assert r.headers["cache-control"] == "no-cache"
    asset = client.get("/assets/app-1.js")
    assert asset.status_code == 200 and "immutable" in asset.headers["cache-control"]
    assert client.get("/assets/missing.js").status_code == 404
    assert client.get("/not-a-page").status_code == 404


def test_without_a_build_the_pages_say_how_to_build(tmp_path: Path) -> None:
    app = FastAPI()
    install_webui(app, tmp_path / "nothing")
    client = TestClient(app)
    r = client.get("/runs/abc")
    assert r.status_code == 503 and "make web" in r.text
    assert client.get("/assets/app.js").status_code == 404


def test_pages_do_not_shadow_the_api(api: TestClient, run: dict) -> None:
    # run.url points at /runs/{id}: a page; the API keeps its /api/v1 paths and seed 003's POSTs
    assert api.get(f"/api/v1/runs/{run['id']}").json()["id"] == run["id"]
    r = api.post(f"/runs/{run['id']}/metrics", json={"key": "loss", "value": 1.0, "step": 0})
    assert r.status_code == 200, r.text


def test_experiment_keys(api: TestClient, anon: TestClient, experiment: dict, run: dict) -> None:
    api.patch(f"/api/v1/runs/{run['id']}", json={"tags": ["baseline"]})
    assert api.post(
        f"/api/v1/runs/{run['id']}/metrics/batch", json={"metrics": {"loss": 0.5}, "step": 1}
    ).is_success
    r = api.get(f"/api/v1/experiments/{experiment['id']}/keys")
    assert r.status_code == 200, r.text
    assert r.json() == {"params": ["lr"], "metrics": ["loss"], "tags": ["baseline"], "sampled_runs": 1}
    assert_error(api.get("/api/v1/experiments/nope/keys"), 404, "not_found")
    assert_error(
        api.get(f"/api/v1/experiments/{experiment['id']}/keys?sample=0"), 400, "invalid_input", "sample"
    )
    anon.headers.pop("X-API-Key", None)
    assert_error(anon.get(f"/api/v1/experiments/{experiment['id']}/keys"), 401, "unauthorized")


def test_usernames_for_any_user_but_not_anonymous(api: TestClient, anon: TestClient) -> None:
    r = api.post("/api/v1/users", json={"username": "ada", "password": "correct horse battery"})
    ada = r.json()
    key = api.post("/api/v1/apikeys", json={"name": "k", "user_id": ada["id"]})
    assert key.status_code == 201, key.text
    names = anon.get("/api/v1/usernames", headers={"X-API-Key": key.json()["key"]})
    assert names.status_code == 200
    assert names.json()[ada["id"]] == "ada" and "admin" in names.json().values()
    anon.headers.pop("X-API-Key", None)
    assert_error(anon.get("/api/v1/usernames"), 401, "unauthorized")
