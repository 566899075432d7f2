"""Users, passwords and API keys.

Passwords are hashed with scrypt (n=2**14, r=8, p=1) and a 16-byte random salt, stored as
``scrypt$n$r$p$salt_b64$hash_b64``. API keys look like ``ry_<8 chars>_<43 chars>``; only the
SHA-256 of the whole key and its first 11 characters (``ry_`` + 8, shown in listings) are
stored. ``last_used_at`` is written at most once a minute per key, so authenticating is a
read, not a write, on nearly every request.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import re
import secrets
import string

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Row

from runyard.entities import ApiKey, User
from runyard.errors import AlreadyExists, InvalidInput, NotFound, Unauthorized
from runyard.store.sql.common import check_name, new_id, now
from runyard.store.sql.engine import Database
from runyard.store.sql.schema import api_keys, users

__all__ = [
    "authenticate",
    "authenticate_key",
    "check_password",
    "create_api_key",
    "create_user",
    "get_user",
    "get_user_by_name",
    "list_api_keys",
    "list_users",
    "revoke_api_key",
    "user_from_row",
]

USERNAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@+-]{0,63}$")
KEY_PREFIX = "ry_"
LAST_USED_RESOLUTION_S = 60.0
_SCRYPT = {"n": 2**14, "r": 8, "p": 1}
_ALNUM = string.ascii_lowercase + string.digits
_BAD_CREDENTIALS = "unknown user or wrong password"
_BAD_KEY = "unknown or revoked API key"


def hash_password(password: str) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, dklen=32, **_SCRYPT)
    b64 = base64.b64encode
    return "scrypt${n}${r}${p}$".format(**_SCRYPT) + f"{b64(salt).decode()}${b64(digest).decode()}"


def verify_password(password: str, stored: str) -> bool:
    try:
        scheme, n, r, p, salt_b64, digest_b64 = stored.split("$")
        if scheme != "scrypt":
            return False
        salt, expected = base64.b64decode(salt_b64), base64.b64decode(digest_b64)
        digest = hashlib.scrypt(
            password.encode(), salt=salt, n=int(n), r=int(r), p=int(p), dklen=len(expected)
        )
    except ValueError:
        return False
    return hmac.compare_digest(digest, expected)


@functools.cache
def _dummy_hash() -> str:
    """Checked against when the user does not exist, so both failures cost the same time."""
    return hash_password(secrets.token_urlsafe(16))


def _user(row: Row[tuple[object, ...]]) -> User:
    m = row._mapping
    return User(id=m["id"], username=m["username"], is_admin=bool(m["is_admin"]), created_at=m["created_at"])


user_from_row = _user


def _key(row: Row[tuple[object, ...]]) -> ApiKey:
    m = row._mapping
    return ApiKey(
        id=m["id"],
        user_id=m["user_id"],
        name=m["name"],
        prefix=m["prefix"],
        created_at=m["created_at"],
        last_used_at=m["last_used_at"],
        revoked_at=m["revoked_at"],
    )


def create_user(db: Database, conn: Connection, username: str, password: str | None, is_admin: bool) -> User:
    if not isinstance(username, str) or not USERNAME_RE.match(username):
        raise InvalidInput(
            "username must be 1-64 characters of letters, digits and _ . @ + - "
            "starting with a letter or digit",
            field="username",
        )
    if password is not None and (not isinstance(password, str) or not password):
        raise InvalidInput("password must be a non-empty string", field="password")
    user = User(id=new_id(), username=username, is_admin=bool(is_admin), created_at=now())
    values = {
        "id": user.id,
        "username": user.username,
        "password_hash": hash_password(password) if password is not None else None,
        "is_admin": user.is_admin,
        "created_at": user.created_at,
    }
    if not db.insert_new(conn, users, ("username",), values):
        raise AlreadyExists(f"user {username!r} already exists", field="username")
    return user


def get_user(conn: Connection, user_id: str) -> User:
    row = conn.execute(sa.select(users).where(users.c.id == user_id)).first()
    if row is None:
        raise NotFound(f"user {user_id!r} not found", field="user_id")
    return _user(row)


def get_user_by_name(conn: Connection, username: str) -> User:
    row = conn.execute(sa.select(users).where(users.c.username == username)).first()
    if row is None:
        raise NotFound(f"user {username!r} not found", field="username")
    return _user(row)


def list_users(conn: Connection) -> list[User]:
    rows = conn.execute(sa.select(users).order_by(users.c.created_at, users.c.id))
    return [_user(r) for r in rows]


def check_password(db: Database, username: str, password: str) -> User:
    with db.read() as conn:  # scrypt runs after the read transaction, not inside it
        row = conn.execute(sa.select(users).where(users.c.username == username)).first()
    stored = row._mapping["password_hash"] if row is not None else None
    ok = verify_password(password, stored or _dummy_hash())
    if row is None or stored is None or not ok:
        raise Unauthorized(_BAD_CREDENTIALS)
    return _user(row)


def _secret_hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def create_api_key(conn: Connection, user_id: str, name: str) -> tuple[ApiKey, str]:
    get_user(conn, user_id)
    name = check_name(name, "name", allow_empty=True)
    public = "".join(secrets.choice(_ALNUM) for _ in range(8))
    secret = f"{KEY_PREFIX}{public}_{secrets.token_urlsafe(32)}"
    key = ApiKey(
        id=new_id(), user_id=user_id, name=name, prefix=secret[: len(KEY_PREFIX) + 8], created_at=now()
    )
    conn.execute(
        sa.insert(api_keys).values(
            id=key.id,
            user_id=key.user_id,
            name=key.name,
            prefix=key.prefix,
            secret_hash=_secret_hash(secret),
            created_at=key.created_at,
        )
    )
    return key, secret


def list_api_keys(conn: Connection, user_id: str | None) -> list[ApiKey]:
    stmt = sa.select(api_keys).order_by(api_keys.c.created_at, api_keys.c.id)
    if user_id is not None:
        stmt = stmt.where(api_keys.c.user_id == user_id)
    return [_key(r) for r in conn.execute(stmt)]


def revoke_api_key(conn: Connection, key_id: str) -> ApiKey:
    row = conn.execute(sa.select(api_keys).where(api_keys.c.id == key_id)).first()
    if row is None:
        raise NotFound(f"API key {key_id!r} not found", field="key_id")
    if row._mapping["revoked_at"] is None:
        conn.execute(sa.update(api_keys).where(api_keys.c.id == key_id).values(revoked_at=now()))
        row = conn.execute(sa.select(api_keys).where(api_keys.c.id == key_id)).one()
    return _key(row)


def find_key_owner(conn: Connection, secret: str) -> tuple[User, str, float | None]:
    """The owner of a live key, the key id and its last_used_at; ``Unauthorized`` otherwise."""
    if not isinstance(secret, str) or not secret.startswith(KEY_PREFIX):
        raise Unauthorized(_BAD_KEY)
    stmt = (
        sa.select(
            users,
            api_keys.c.id.label("key_id"),
            api_keys.c.revoked_at,
            api_keys.c.last_used_at,
        )
        .select_from(api_keys.join(users, users.c.id == api_keys.c.user_id))
        .where(api_keys.c.secret_hash == _secret_hash(secret))
    )
    row = conn.execute(stmt).first()
    if row is None or row._mapping["revoked_at"] is not None:
        raise Unauthorized(_BAD_KEY)
    return _user(row), row._mapping["key_id"], row._mapping["last_used_at"]


def touch_key(conn: Connection, key_id: str, at: float) -> None:
    """Record a use, unless one was recorded within the last minute (by anyone)."""
    conn.execute(
        sa.update(api_keys)
        .where(
            api_keys.c.id == key_id,
            sa.or_(
                api_keys.c.last_used_at.is_(None),
                api_keys.c.last_used_at <= at - LAST_USED_RESOLUTION_S,
            ),
        )
        .values(last_used_at=at)
    )


def needs_touch(last_used_at: float | None, at: float) -> bool:
    return last_used_at is None or at - last_used_at >= LAST_USED_RESOLUTION_S


def authenticate(db: Database, secret: str) -> User:
    return authenticate_key(db, secret)[0]


def authenticate_key(db: Database, secret: str) -> tuple[User, str]:
    """The owner of a live key and the key's id (a session signed in with it records it)."""
    with db.read() as conn:
        user, key_id, last_used_at = find_key_owner(conn, secret)
    at = now()
    if needs_touch(last_used_at, at):
        with db.write() as conn:
            touch_key(conn, key_id, at)
    return user, key_id
