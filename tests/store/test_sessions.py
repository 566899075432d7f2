"""Browser sessions in the store: hashed tokens, sliding expiry, revoked keys, sign-out."""

from __future__ import annotations

import hashlib

import pytest
import sqlalchemy as sa

from runyard.errors import InvalidInput, NotFound, Unauthorized
from runyard.store.sql import SqlStore
from runyard.store.sql.schema import sessions


def _row(store: SqlStore, token: str) -> dict | None:
    digest = hashlib.sha256(token.encode()).hexdigest()
    with store.database.read() as conn:
        row = conn.execute(sa.select(sessions).where(sessions.c.token_hash == digest)).mappings().first()
    return dict(row) if row else None


def test_session_lifecycle(store: SqlStore) -> None:
    alice = store.create_user("alice", password="correct horse")
    token, expires_at = store.create_session(alice.id, lifetime_s=3600)
    assert len(token) >= 40
    row = _row(store, token)
    assert row is not None and row["user_id"] == alice.id and row["key_id"] is None
    assert row["expires_at"] == expires_at and expires_at - row["created_at"] == pytest.approx(3600)
    assert token not in {str(v) for v in row.values()}  # stored as its hash only
    assert store.get_session_user(token, lifetime_s=3600) == alice
    assert store.delete_session(token) is True
    assert store.delete_session(token) is False
    with pytest.raises(Unauthorized):
        store.get_session_user(token, lifetime_s=3600)
    for bad in ("", "nope"):
        with pytest.raises(Unauthorized):
            store.get_session_user(bad, lifetime_s=3600)


def test_unknown_user_and_bad_lifetime(store: SqlStore) -> None:
    with pytest.raises(NotFound):
        store.create_session("0" * 32, lifetime_s=60)
    alice = store.create_user("alice")
    with pytest.raises(InvalidInput):
        store.create_session(alice.id, lifetime_s=0)


def test_expiry_slides_and_expired_sessions_are_deleted(store: SqlStore) -> None:
    alice = store.create_user("alice")
    token, _ = store.create_session(alice.id, lifetime_s=3600)
    old, _ = store.create_session(alice.id, lifetime_s=3600)
    with store.database.write() as conn:  # last seen two minutes ago
        conn.execute(sa.update(sessions).values(last_seen_at=sessions.c.last_seen_at - 120, expires_at=1e12))
    store.get_session_user(token, lifetime_s=600)
    row = _row(store, token)
    assert row is not None and row["expires_at"] == pytest.approx(row["last_seen_at"] + 600)
    with store.database.write() as conn:
        conn.execute(sa.update(sessions).values(expires_at=1.0))
    with pytest.raises(Unauthorized) as err:
        store.get_session_user(token, lifetime_s=600)
    assert "sign in again" in err.value.message
    assert _row(store, token) is None  # deleted when found expired
    store.create_session(alice.id, lifetime_s=60)  # creating one cleans the other expired ones
    assert _row(store, old) is None


def test_session_ends_with_its_api_key(store: SqlStore) -> None:
    alice = store.create_user("alice")
    key, secret = store.create_api_key(alice.id)
    user, key_id = store.authenticate_key(secret)
    assert user == alice and key_id == key.id
    by_key, _ = store.create_session(alice.id, lifetime_s=60, key_id=key_id)
    by_password, _ = store.create_session(alice.id, lifetime_s=60)
    store.revoke_api_key(key.id)
    with pytest.raises(Unauthorized) as err:
        store.get_session_user(by_key, lifetime_s=60)
    assert "revoked" in err.value.message
    assert store.get_session_user(by_password, lifetime_s=60) == alice
