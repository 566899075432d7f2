"""Browser sign-in: the session cookie, CSRF on cookie requests, expiry, revocation, limits."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from runyard.config import Settings
from runyard.errors import InvalidInput, RunyardError, TooManyAttempts, Unauthorized
from runyard.server.app import create_app
from runyard.store.base import Store
from runyard.store.sql import SqlStore
from runyard.store.sql.schema import sessions
from tests.server.conftest import assert_error

CSRF = {"X-Requested-With": "runyard"}


@pytest.fixture
def bob(store: Store) -> tuple[str, str]:
    """A user with a password, and one of his API keys (id, secret)."""
    user = store.create_user("bob", password="correct horse")
    key, secret = store.create_api_key(user.id, "laptop")
    return key.id, secret


def _cookie_header(response) -> str:
    headers = [v for k, v in response.headers.multi_items() if k.lower() == "set-cookie"]
    assert len(headers) == 1, headers
    return headers[0]


def test_sign_in_with_password_sets_a_safe_cookie(anon: TestClient, bob: tuple[str, str]) -> None:
    r = anon.post("/api/v1/session", json={"username": "bob", "password": "correct horse"})
    assert r.status_code == 200, r.text
    assert r.json()["username"] == "bob" and "password" not in r.json()
    cookie = _cookie_header(r)
    attrs = [a.strip().lower() for a in cookie.split(";")]
    name, token = cookie.split(";")[0].split("=", 1)
    assert name == "runyard_session" and len(token) >= 40
    assert "httponly" in attrs and "samesite=strict" in attrs and "path=/" in attrs
    assert f"max-age={12 * 3600}" in attrs
    assert "secure" not in attrs  # plain http
    assert r.headers["cache-control"] == "no-store"


def test_secure_on_https_and_by_setting(settings: Settings, store: Store, bob: tuple[str, str]) -> None:
    with TestClient(create_app(settings, store), base_url="https://testserver") as c:
        r = c.post("/api/v1/session", json={"api_key": bob[1]})
        assert r.status_code == 200 and "secure" in _cookie_header(r).lower().split("; ")
        assert c.get("/api/v1/session").json()["username"] == "bob"  # the jar sends it back over https
    always = dataclasses.replace(settings, cookie_secure="always")
    with TestClient(create_app(always, store)) as c:
        assert "secure" in _cookie_header(c.post("/api/v1/session", json={"api_key": bob[1]})).lower()
    never = dataclasses.replace(settings, cookie_secure="never")
    with TestClient(create_app(never, store), base_url="https://testserver") as c:
        assert "secure" not in _cookie_header(c.post("/api/v1/session", json={"api_key": bob[1]})).lower()


def test_cookie_authenticates_reads_and_csrf_guards_writes(anon: TestClient, bob: tuple[str, str]) -> None:
    assert anon.post("/api/v1/session", json={"api_key": bob[1]}).status_code == 200
    me = anon.get("/api/v1/session")
    assert me.status_code == 200 and me.json()["username"] == "bob"
    assert "max-age" in _cookie_header(me).lower()  # re-sent: the browser's expiry slides too
    assert anon.get("/api/v1/whoami").json()["username"] == "bob"
    assert anon.get("/api/v1/projects").status_code == 200
    body = {"project": "p", "name": "e"}
    err = assert_error(anon.post("/api/v1/experiments", json=body), 403, "forbidden", "X-Requested-With")
    assert "X-Requested-With: runyard" in err["message"]
    assert_error(
        anon.post("/api/v1/experiments", json=body, headers={"X-Requested-With": "XMLHttpRequest"}),
        403,
        "forbidden",
    )
    assert anon.post("/api/v1/experiments", json=body, headers=CSRF).status_code in (200, 201)


def test_api_key_requests_need_no_csrf_header(api: TestClient) -> None:
    r = api.post("/api/v1/experiments", json={"project": "p", "name": "e"})
    assert r.status_code in (200, 201), r.text
    assert "set-cookie" not in r.headers


def test_sign_out(anon: TestClient, store: SqlStore, bob: tuple[str, str]) -> None:
    anon.post("/api/v1/session", json={"username": "bob", "password": "correct horse"})
    token = anon.cookies["runyard_session"]
    assert_error(anon.delete("/api/v1/session"), 403, "forbidden", "X-Requested-With")
    r = anon.delete("/api/v1/session", headers=CSRF)
    assert r.status_code == 204
    cookie = _cookie_header(r).lower()
    assert cookie.startswith('runyard_session="";') or "max-age=0" in cookie
    with pytest.raises(Unauthorized):  # the row is gone: the token no longer works
        store.get_session_user(token, lifetime_s=60)
    assert_error(anon.get("/api/v1/session"), 401, "unauthorized")
    anon.cookies.set("runyard_session", token)  # a copy kept from before is dead too
    assert_error(anon.get("/api/v1/session"), 401, "unauthorized")


def test_get_session_with_an_api_key(api: TestClient) -> None:
    r = api.get("/api/v1/session")
    assert r.status_code == 200 and r.json()["username"] == "admin"
    assert "set-cookie" not in r.headers
    assert_error(api.delete("/api/v1/session"), 401, "unauthorized")  # no session to end


def test_expired_session_is_refused(anon: TestClient, store: SqlStore, bob: tuple[str, str]) -> None:
    anon.post("/api/v1/session", json={"api_key": bob[1]})
    assert anon.get("/api/v1/session").status_code == 200
    with store.database.write() as conn:
        conn.execute(sa.update(sessions).values(expires_at=0.0))
    anon.app.state.auth_cache.clear()  # type: ignore[attr-defined]
    err = assert_error(anon.get("/api/v1/session"), 401, "unauthorized")
    assert "sign in again" in err["message"]
    with store.database.read() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(sessions)).scalar_one() == 0


def test_revoking_the_key_ends_its_session(anon: TestClient, store: Store, bob: tuple[str, str]) -> None:
    key_id, secret = bob
    anon.post("/api/v1/session", json={"api_key": secret})
    with TestClient(anon.app) as pw:  # bob signed in with his password elsewhere
        pw.post("/api/v1/session", json={"username": "bob", "password": "correct horse"})
        assert anon.get("/api/v1/session").status_code == 200
        r = anon.delete(f"/api/v1/apikeys/{key_id}", headers=CSRF)
        assert r.status_code == 200 and r.json()["revoked_at"] is not None
        err = assert_error(anon.get("/api/v1/session"), 401, "unauthorized")
        assert "revoked" in err["message"]
        # a password session outlives revoked keys (until it expires or is signed out)
        assert pw.get("/api/v1/session").json()["username"] == "bob"
    assert_error(anon.post("/api/v1/session", json={"api_key": secret}), 401, "unauthorized")


def test_wrong_credentials_get_one_message(anon: TestClient, bob: tuple[str, str]) -> None:
    wrong = assert_error(
        anon.post("/api/v1/session", json={"username": "bob", "password": "nope"}), 401, "unauthorized"
    )
    unknown = assert_error(
        anon.post("/api/v1/session", json={"username": "nobody", "password": "nope"}), 401, "unauthorized"
    )
    assert wrong["message"] == unknown["message"]
    assert_error(anon.post("/api/v1/session", json={"api_key": "ry_nope_nope"}), 401, "unauthorized")
    assert_error(anon.post("/api/v1/session", json={}), 401, "unauthorized")
    assert_error(anon.post("/api/v1/session", json={"username": "bob"}), 400, "invalid_input", "password")
    assert_error(
        anon.post("/api/v1/session", json={"api_key": bob[1], "username": "bob"}),
        400,
        "invalid_input",
        "api_key",
    )
    assert "set-cookie" not in anon.post("/api/v1/session", json={"api_key": "ry_x"}).headers


def test_form_posts_cannot_sign_in(anon: TestClient, bob: tuple[str, str]) -> None:
    """A cross-site form cannot send application/json: no login CSRF."""
    r = anon.post(
        "/api/v1/session",
        content=b'{"username": "bob", "password": "correct horse"}',
        headers={"Content-Type": "text/plain"},
    )
    assert r.status_code == 400 and "set-cookie" not in r.headers


def test_failed_sign_ins_are_limited(anon: TestClient, bob: tuple[str, str]) -> None:
    for _ in range(10):
        assert_error(
            anon.post("/api/v1/session", json={"username": "bob", "password": "x"}), 401, "unauthorized"
        )
    err = assert_error(
        anon.post("/api/v1/session", json={"username": "bob", "password": "correct horse"}),
        429,
        "too_many_attempts",
    )
    assert "try again in" in err["message"]
    assert isinstance(RunyardError.from_dict({"error": err}, 429), TooManyAttempts)  # the client's view
    # the address is limited too, whatever the user or key
    assert_error(anon.post("/api/v1/session", json={"api_key": bob[1]}), 429, "too_many_attempts")
    # other endpoints are unaffected
    assert anon.get("/api/v1/whoami", headers={"X-API-Key": bob[1]}).status_code == 200


def test_username_limit_counts_across_addresses(anon: TestClient, bob: tuple[str, str]) -> None:
    limiter = anon.app.state.sign_in_limiter  # type: ignore[attr-defined]
    limiter.failed(["user:bob"] * 10)  # ten failures from elsewhere
    assert_error(
        anon.post("/api/v1/session", json={"username": "BOB", "password": "correct horse"}),
        429,
        "too_many_attempts",
    )
    assert anon.post("/api/v1/session", json={"api_key": bob[1]}).status_code == 200


@pytest.fixture
def short(settings: Settings, store: Store) -> Iterator[TestClient]:
    with TestClient(create_app(dataclasses.replace(settings, session_hours=0.5), store)) as c:
        yield c


def test_session_hours_sets_the_lifetime(short: TestClient, bob: tuple[str, str]) -> None:
    r = short.post("/api/v1/session", json={"api_key": bob[1]})
    assert "max-age=1800" in _cookie_header(r).lower()


def test_settings_from_env(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    monkeypatch.setenv("RUNYARD_SESSION_HOURS", "0.5")
    monkeypatch.setenv("RUNYARD_COOKIE_SECURE", "Always")
    s = Settings.from_env(data_dir=str(tmp_path))
    assert s.session_hours == 0.5 and s.cookie_secure == "always"
    monkeypatch.delenv("RUNYARD_SESSION_HOURS")
    monkeypatch.delenv("RUNYARD_COOKIE_SECURE")
    s = Settings.from_env(data_dir=str(tmp_path))
    assert s.session_hours == 12 and s.cookie_secure == "auto"
    for name, bad in (
        ("RUNYARD_SESSION_HOURS", "0"),
        ("RUNYARD_SESSION_HOURS", "1e9"),
        ("RUNYARD_COOKIE_SECURE", "yes"),
    ):
        monkeypatch.setenv(name, bad)
        with pytest.raises(InvalidInput) as err:
            Settings.from_env(data_dir=str(tmp_path))
        assert err.value.field == name
        monkeypatch.delenv(name)
