"""Dependencies every route uses: the store, the settings, and who is asking.

Every route but health depends on ``CurrentUser``: an API key in ``X-API-Key`` or
``Authorization: Bearer``. Verified keys are cached for a few seconds (keyed by the key's
SHA-256, never the key) so a busy client costs no database read per request; revoking a key
through this server drops it from the cache at once.
"""

from __future__ import annotations

import hashlib
import threading
import time
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from starlette.concurrency import run_in_threadpool

from runyard.config import Settings
from runyard.entities import User
from runyard.errors import Forbidden, NoExecutor, Unauthorized
from runyard.slurm.executor import Executor
from runyard.store.base import Store

__all__ = ["AdminUser", "AuthCache", "CurrentUser", "ExecutorDep", "SettingsDep", "StoreDep", "user_for_key"]

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


async def current_user(
    request: Request,
    api_key: Annotated[str | None, Depends(_api_key_header)],
    bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> User:
    secret = api_key or (bearer.credentials if bearer else None)
    if not secret:
        raise Unauthorized(
            "missing API key: send it as the X-API-Key header or as Authorization: Bearer <key> "
            "(create one with `runyard apikey create`)"
        )
    return await user_for_key(request, secret)


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


CurrentUser = Annotated[User, Depends(current_user)]


async def admin_user(user: CurrentUser) -> User:
    if not user.is_admin:
        raise Forbidden(f"user {user.username!r} is not an admin; ask an admin to do this")
    return user


AdminUser = Annotated[User, Depends(admin_user)]
