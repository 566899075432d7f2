"""Health (the one endpoint without auth) and whoami."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from runyard.server.deps import CurrentUser
from runyard.server.schemas import UserRead
from runyard.version import __version__

router = APIRouter(tags=["health"])


@router.get("/api/v1/health", summary="Liveness and version; needs no API key")
def health(request: Request) -> dict[str, Any]:
    url: str = request.app.state.settings.database_url
    return {"status": "ok", "version": __version__, "database": url.split(":", 1)[0].split("+")[0]}


@router.get(
    "/api/v1/slurm/watcher", summary="The Slurm watcher: executor, last cycle, calls per minute, errors"
)
def watcher_status(request: Request, _: CurrentUser) -> dict[str, Any]:
    watcher = request.app.state.watcher
    if watcher is None:
        return {"running": False, "executor": None}
    return {"running": True, **watcher.status()}


@router.get("/api/v1/whoami", response_model=UserRead, summary="The user the API key belongs to")
def whoami(user: CurrentUser) -> UserRead:
    return UserRead(id=user.id, username=user.username, is_admin=user.is_admin, created_at=user.created_at)
