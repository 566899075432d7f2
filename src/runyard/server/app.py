"""``create_app(settings)``: the one place the ASGI application is assembled.

Nothing is created at import time. The store hangs off ``app.state`` and reaches routes
through ``deps.StoreDep``. The server refuses to start on a database whose schema is older
than this Runyard (it names the command that fixes it); an empty database is initialised.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI

from runyard.config import Settings
from runyard.errors import SchemaOutdated
from runyard.server.deps import AuthCache
from runyard.server.errors import install_error_handlers
from runyard.server.events import EventBus, publish_runs, publish_safely
from runyard.server.jsonio import JsonResponse
from runyard.server.limits import BodyLimitMiddleware
from runyard.server.routes import (
    artifacts,
    cluster,
    console,
    events,
    health,
    jobs,
    launch,
    logs,
    metrics,
    projects,
    runs,
    session,
    sweeps,
    users,
    webhooks,
)
from runyard.server.signin import SignInLimiter
from runyard.server.sweeps import ImportanceCache, SpecCache, SweepSupervisor
from runyard.server.webhook_auth import webhook_secret
from runyard.server.webui import install_webui
from runyard.slurm.executor import open_executor
from runyard.slurm.watcher import Watcher, WatcherConfig
from runyard.store.base import Store
from runyard.version import __version__

__all__ = ["check_schema", "create_app"]

log = logging.getLogger("runyard.server")


def check_schema(store: Store) -> None:
    """Initialise an empty database; refuse an outdated one."""
    state = store.schema_state()
    if state.current is None:
        log.info("empty database: creating the schema (revision %s)", state.head)
        store.upgrade()
    elif not state.up_to_date:
        raise SchemaOutdated(
            f"the database schema is at revision {state.current} but this Runyard needs {state.head}: "
            "back up the database, then run `runyard db upgrade`"
        )


_DEFAULT = object()


def create_app(settings: Settings, store: Store | None = None, executor: Any = _DEFAULT) -> FastAPI:
    """The application. ``executor`` (an ``Executor`` or None) defaults to the one
    ``settings.executor`` names; the Slurm watcher runs while the app does, when there is one."""
    if store is None:
        from runyard.store import open_store

        store = open_store(settings.database_url)
    check_schema(store)
    owned_store = store
    if executor is _DEFAULT:
        executor = open_executor(
            settings.executor, state_dir=settings.data_dir / "local-jobs", settings=settings
        )
    bus = EventBus()

    def on_runs_changed(run_ids: list[str]) -> None:  # the watcher's thread
        publish_safely(publish_runs, bus, owned_store, run_ids)

    watcher = (
        None
        if executor is None
        else Watcher(store, executor, WatcherConfig.from_settings(settings), on_change=on_runs_changed)
    )

    specs = SpecCache()
    supervisor = SweepSupervisor(store, executor, bus, specs)
    bus.add_listener(supervisor.on_event)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        if watcher is not None:
            watcher.start()
        supervisor.start()
        try:
            yield
        finally:
            supervisor.stop()
            if watcher is not None:
                watcher.stop()
            owned_store.close()

    app = FastAPI(
        title="Runyard",
        version=__version__,
        summary="Experiment tracking for Slurm clusters",
        description="REST API of Runyard. Every endpoint but /api/v1/health needs an API key "
        "(X-API-Key header or Authorization: Bearer) or the browser's session cookie from "
        "POST /api/v1/session (with X-Requested-With: runyard on POST, PUT, PATCH, DELETE). "
        "Errors are always "
        '{"error": {"code", "message", "field"}}. See docs/protocol.md for batches and journals.',
        default_response_class=JsonResponse,
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.store = store
    app.state.auth_cache = AuthCache()
    app.state.sign_in_limiter = SignInLimiter()
    app.state.executor = executor
    app.state.watcher = watcher
    app.state.events = bus
    app.state.sweep_specs = specs
    app.state.sweep_importance = ImportanceCache()
    app.state.sweeps = supervisor
    app.state.webhook_secret = webhook_secret(settings)
    install_error_handlers(app)
    for module in (
        health,
        session,
        users,
        projects,
        runs,
        metrics,
        artifacts,
        webhooks,
        logs,
        console,
        cluster,
        jobs,
        launch,
        sweeps,
        events,
    ):
        app.include_router(module.router)
    install_webui(app)
    app.add_middleware(
        BodyLimitMiddleware,
        max_body_bytes=settings.max_body_bytes,
        max_upload_bytes=settings.max_artifact_bytes,
        upload_marker=artifacts.UPLOAD_MARKER,
    )
    return app
