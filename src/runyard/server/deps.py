"""Dependencies every route uses: the store, the settings, and who is asking.

Every route but health depends on ``CurrentUser``: an API key in ``X-API-Key`` or
``Authorization: Bearer``, else the browser's session cookie (``server/signin.py``; unsafe
methods then also need ``X-Requested-With: runyard``). Verified keys and sessions are cached
for a few seconds (keyed by the SHA-256 of the secret, never the secret) so a busy client
costs no database read per request; revoking a key through this server clears the cache at
once, which also ends the sessions signed in with that key.
"""

from __future__ import annotations

import hashlib
import threading
import time
from typing import Annotated

from fastapi import Depends, Request, Response
from fastapi.security import APIKeyCookie, APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from starlette.concurrency import run_in_threadpool

from runyard.config import Settings
from runyard.entities import User
from runyard.errors import Forbidden, NoExecutor, Unauthorized
from runyard.server.signin import SESSION_COOKIE, check_csrf, session_lifetime_s, set_session_cookie
from runyard.slurm.executor import Executor
from runyard.store.base import Store

__all__ = [
    "AdminUser",
    "AuthCache",
    "CurrentUser",
    "ExecutorDep",
    "SettingsDep",
    "StoreDep",
    "session_cache_key",
    "user_for_key",
    "user_for_session",
]

AUTH_CACHE_SECONDS = 5.0


class AuthCache:
    def __init__(self, ttl_s: float = AUTH_CACHE_SECONDS) -> None:
        self.ttl_s = ttl_s
        self._entries: dict[str, tuple[User, float]] = {}
        self._lock = threading.Lock()

    def get(self, digest: str) -> User | None:
        with self._lock:
            hit = self._entries.get(digest)
        if hit and hit[1] > time.monotonic():
            return hit[0]
        return None

    def put(self, digest: str, user: User) -> None:
        with self._lock:
            if len(self._entries) > 10_000:
                self._entries.clear()
            self._entries[digest] = (user, time.monotonic() + self.ttl_s)

    def discard(self, digest: str) -> None:
        with self._lock:
            self._entries.pop(digest, None)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


async def get_store(request: Request) -> Store:
    store: Store = request.app.state.store
    return store


async def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def get_executor(request: Request) -> Executor:
    executor: Executor | None = request.app.state.executor
    if executor is None:
        raise NoExecutor("this server launches no jobs (RUNYARD_EXECUTOR=none)")
    return executor


StoreDep = Annotated[Store, Depends(get_store)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
ExecutorDep = Annotated[Executor, Depends(get_executor)]

_api_key_header = APIKeyHeader(name="X-API-Key", auto_error=False, description="Runyard API key")
_bearer = HTTPBearer(auto_error=False, description="Runyard API key as a bearer token")
_session_cookie = APIKeyCookie(
    name=SESSION_COOKIE,
    auto_error=False,
    description="Browser session from POST /api/v1/session; POST, PUT, PATCH and DELETE also need "
    "the header X-Requested-With: runyard",
)


async def current_user(
    request: Request,
    response: Response,
    api_key: Annotated[str | None, Depends(_api_key_header)],
    bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    session: Annotated[str | None, Depends(_session_cookie)],
) -> User:
    secret = api_key or (bearer.credentials if bearer else None)
    if secret:
        return await user_for_key(request, secret)
    if session:
        user = await user_for_session(request, session)
        check_csrf(request)
        set_session_cookie(response, request, request.app.state.settings, session)  # slides Max-Age
        return user
    raise Unauthorized(
        "missing API key: send it as the X-API-Key header or as Authorization: Bearer <key> "
        "(create one with `runyard apikey create`), or sign in (POST /api/v1/session)"
    )


async def user_for_key(request: Request, secret: str) -> User:
    """The user an API key belongs to (cached a few seconds); ``Unauthorized`` for a bad key."""
    cache: AuthCache = request.app.state.auth_cache
    digest = hashlib.sha256(secret.encode("utf-8", "surrogateescape")).hexdigest()
    user = cache.get(digest)
    if user is None:
        store: Store = request.app.state.store
        user = await run_in_threadpool(store.authenticate, secret)
        cache.put(digest, user)
    return user


def session_cache_key(token: str) -> str:
    """Sessions share ``AuthCache`` with keys, under their own prefix: revoking a key clears both."""
    return "session:" + hashlib.sha256(token.encode("utf-8", "surrogateescape")).hexdigest()


async def user_for_session(request: Request, token: str) -> User:
    """The user a session cookie belongs to (cached a few seconds); ``Unauthorized`` otherwise."""
    cache: AuthCache = request.app.state.auth_cache
    digest = session_cache_key(token)
    user = cache.get(digest)
    if user is None:
        store: Store = request.app.state.store
        lifetime_s = session_lifetime_s(request.app.state.settings)
        user = await run_in_threadpool(store.get_session_user, token, lifetime_s=lifetime_s)
        cache.put(digest, user)
    return user


CurrentUser = Annotated[User, Depends(current_user)]


async def admin_user(user: CurrentUser) -> User:
    if not user.is_admin:
        raise Forbidden(f"user {user.username!r} is not an admin; ask an admin to do this")
    return user


AdminUser = Annotated[User, Depends(admin_user)]
