from __future__ import annotations

import hashlib
import re

import pytest
import sqlalchemy as sa

from runyard.errors import AlreadyExists, InvalidInput, NotFound, Unauthorized
from runyard.store.sql import SqlStore
from runyard.store.sql.schema import api_keys, users


def test_create_and_get_user(store: SqlStore) -> None:
    alice = store.create_user("alice", password="s3cret!", is_admin=True)
    assert store.get_user(alice.id) == alice
    assert store.get_user_by_name("alice") == alice
    assert alice.is_admin and re.fullmatch(r"[0-9a-f]{32}", alice.id)
    bob = store.create_user("bob")
    assert [u.username for u in store.list_users()] == ["alice", "bob"]
    assert not bob.is_admin


def test_duplicate_and_bad_usernames(store: SqlStore) -> None:
    store.create_user("alice")
    with pytest.raises(AlreadyExists) as err:
        store.create_user("alice")
    assert err.value.field == "username"
    for bad in ("", " alice", "a b", "x" * 65, "ali\nce"):
        with pytest.raises(InvalidInput) as err:
            store.create_user(bad)
        assert err.value.field == "username"
    with pytest.raises(InvalidInput) as err:
        store.create_user("carol", password="")
    assert err.value.field == "password"


def test_unknown_user(store: SqlStore) -> None:
    with pytest.raises(NotFound):
        store.get_user("0" * 32)
    with pytest.raises(NotFound):
        store.get_user_by_name("nobody")


def test_password_is_hashed_and_checked(store: SqlStore) -> None:
    alice = store.create_user("alice", password="correct horse")
    store.create_user("nopass")
    assert store.check_password("alice", "correct horse") == alice
    with store.database.read() as conn:
        stored = conn.execute(sa.select(users.c.password_hash).where(users.c.id == alice.id)).scalar_one()
    assert "correct horse" not in stored and stored.startswith("scrypt$")
    messages = set()
    for username, password in (("alice", "wrong"), ("nobody", "correct horse"), ("nopass", "")):
        with pytest.raises(Unauthorized) as err:
            store.check_password(username, password)
        messages.add(err.value.message)
    assert len(messages) == 1  # no hint whether the user exists


def test_api_key_lifecycle(store: SqlStore) -> None:
    alice = store.create_user("alice")
    key, secret = store.create_api_key(alice.id, "laptop")
    assert re.fullmatch(r"ry_[a-z0-9]{8}_[A-Za-z0-9_-]{32,}", secret)
    assert key.prefix == secret[:11] and key.name == "laptop" and key.user_id == alice.id
    with store.database.read() as conn:
        row = conn.execute(sa.select(api_keys).where(api_keys.c.id == key.id)).mappings().one()
    assert row["secret_hash"] == hashlib.sha256(secret.encode()).hexdigest()
    assert secret not in {str(v) for v in row.values()}

    assert store.authenticate(secret) == alice
    first_use = store.list_api_keys(alice.id)[0].last_used_at
    assert first_use is not None
    store.authenticate(secret)  # within a minute: not written again
    assert store.list_api_keys(alice.id)[0].last_used_at == first_use

    revoked = store.revoke_api_key(key.id)
    assert revoked.revoked_at is not None
    assert store.revoke_api_key(key.id).revoked_at == revoked.revoked_at
    with pytest.raises(Unauthorized):
        store.authenticate(secret)


def test_last_used_is_refreshed_after_a_minute(store: SqlStore) -> None:
    alice = store.create_user("alice")
    _, secret = store.create_api_key(alice.id)
    with store.database.write() as conn:
        conn.execute(sa.update(api_keys).values(last_used_at=1000.0))
    store.authenticate(secret)
    assert store.list_api_keys()[0].last_used_at != 1000.0


def test_bad_keys_are_rejected(store: SqlStore) -> None:
    alice = store.create_user("alice")
    _, secret = store.create_api_key(alice.id)
    for bad in ("", "nonsense", secret[:-1], secret + "x", "ry_" + secret[3:].upper()):
        with pytest.raises(Unauthorized):
            store.authenticate(bad)


def test_list_keys_by_user(store: SqlStore) -> None:
    alice, bob = store.create_user("alice"), store.create_user("bob")
    store.create_api_key(alice.id, "a")
    store.create_api_key(bob.id, "b")
    assert [k.name for k in store.list_api_keys(alice.id)] == ["a"]
    assert sorted(k.name for k in store.list_api_keys()) == ["a", "b"]
    with pytest.raises(NotFound):
        store.create_api_key("0" * 32)
    with pytest.raises(NotFound):
        store.revoke_api_key("0" * 32)
