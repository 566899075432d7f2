"""Browser sign-in sessions.

A session token is 32 random bytes (URL-safe base64); only its SHA-256 is stored, like an API
key's. Expiry slides: each use moves ``expires_at`` to ``now + lifetime``, written at most once
a minute so resolving a session is a read on nearly every request. A session signed in with
an API key (``key_id``) ends when that key is revoked; one signed in with a password lives
until it expires or is signed out, even if the user's keys are revoked.
"""

from __future__ import annotations

import hashlib
import secrets

import sqlalchemy as sa

from runyard.entities import User
from runyard.errors import InvalidInput, Unauthorized
from runyard.store.sql.common import now
from runyard.store.sql.engine import Database
from runyard.store.sql.schema import api_keys, sessions, users
from runyard.store.sql.users import get_user, user_from_row

__all__ = ["create_session", "delete_session", "get_session_user", "token_hash"]

SLIDE_RESOLUTION_S = 60.0
_BAD_SESSION = "session expired or signed out: sign in again"


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogateescape")).hexdigest()


def _check_lifetime(lifetime_s: float) -> None:
    if not lifetime_s > 0:
        raise InvalidInput("session lifetime must be positive", field="lifetime_s")


def create_session(db: Database, user_id: str, lifetime_s: float, key_id: str | None) -> tuple[str, float]:
    _check_lifetime(lifetime_s)
    token = secrets.token_urlsafe(32)
    at = now()
    expires_at = at + lifetime_s
    with db.write() as conn:
        get_user(conn, user_id)
        conn.execute(sa.delete(sessions).where(sessions.c.expires_at <= at))
        conn.execute(
            sa.insert(sessions).values(
                token_hash=token_hash(token),
                user_id=user_id,
                key_id=key_id,
                created_at=at,
                expires_at=expires_at,
                last_seen_at=at,
            )
        )
    return token, expires_at


def get_session_user(db: Database, token: str, lifetime_s: float) -> User:
    _check_lifetime(lifetime_s)
    if not isinstance(token, str) or not token:
        raise Unauthorized(_BAD_SESSION)
    digest = token_hash(token)
    stmt = (
        sa.select(users, sessions.c.expires_at, sessions.c.last_seen_at, api_keys.c.revoked_at)
        .select_from(
            sessions.join(users, users.c.id == sessions.c.user_id).outerjoin(
                api_keys, api_keys.c.id == sessions.c.key_id
            )
        )
        .where(sessions.c.token_hash == digest)
    )
    with db.read() as conn:
        row = conn.execute(stmt).first()
    at = now()
    if row is None:
        raise Unauthorized(_BAD_SESSION)
    m = row._mapping
    if m["expires_at"] <= at or m["revoked_at"] is not None:
        with db.write() as conn:
            conn.execute(sa.delete(sessions).where(sessions.c.token_hash == digest))
        if m["revoked_at"] is not None:
            raise Unauthorized("the API key this session signed in with was revoked: sign in again")
        raise Unauthorized(_BAD_SESSION)
    if at - m["last_seen_at"] >= min(SLIDE_RESOLUTION_S, lifetime_s / 10):
        with db.write() as conn:
            conn.execute(
                sa.update(sessions)
                .where(sessions.c.token_hash == digest)
                .values(last_seen_at=at, expires_at=at + lifetime_s)
            )
    return user_from_row(row)


def delete_session(db: Database, token: str) -> bool:
    if not isinstance(token, str) or not token:
        return False
    with db.write() as conn:
        result = conn.execute(sa.delete(sessions).where(sessions.c.token_hash == token_hash(token)))
    return bool(result.rowcount)
