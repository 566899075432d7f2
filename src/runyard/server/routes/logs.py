"""A run's output and history: ``GET /api/v1/runs/{id}/logs`` and ``GET /api/v1/runs/{id}/events``."""

from __future__ import annotations

import dataclasses
from typing import Annotated, Literal

from fastapi import APIRouter, Query
from starlette.responses import Response

from runyard.entities import TERMINAL_STATUSES
from runyard.server.deps import CurrentUser, SettingsDep, StoreDep
from runyard.server.jsonio import JsonResponse
from runyard.server.logread import DEFAULT_LIMIT_BYTES, MAX_LIMIT_BYTES, read_window, resolve_output
from runyard.server.slurm_schemas import EventsRead, LogsRead

router = APIRouter(tags=["jobs"])


@router.get(
    "/api/v1/runs/{run_id}/logs",
    response_model=LogsRead,
    summary="Read a run's stdout or stderr from shared storage, whole lines from a byte offset",
    description="Follow a file by passing next_offset back as offset. A partial last line waits for "
    "the next call unless the run has ended (final). tail=N gives the last N lines instead. 404 with "
    "field 'stream' when the run has no such file yet.",
)
def run_logs(
    run_id: str,
    store: StoreDep,
    settings: SettingsDep,
    _: CurrentUser,
    stream: Literal["stdout", "stderr"] = "stdout",
    offset: Annotated[int, Query(ge=0, description="Byte offset to read from")] = 0,
    limit_bytes: Annotated[int, Query(ge=1, le=MAX_LIMIT_BYTES)] = DEFAULT_LIMIT_BYTES,
    tail: Annotated[int | None, Query(ge=0, le=100_000, description="The last N lines")] = None,
) -> Response:
    run = store.get_run(run_id, with_metrics=False)  # before the read: an ended run's file is complete
    path, same_file = resolve_output(run, stream, roots=settings.log_roots, data_dir=settings.data_dir)
    final = run.status in TERMINAL_STATUSES
    window = read_window(path, offset=offset, limit_bytes=limit_bytes, tail=tail, final=final)
    return JsonResponse(
        {
            "run_id": run.id,
            "stream": stream,
            "path": str(path),
            "same_file": same_file,
            "offset": window.offset,
            "next_offset": window.next_offset,
            "size": window.size,
            "eof": window.eof,
            "reset": window.reset,
            "final": final,
            "run_status": run.status.value,
            "lines": window.lines,
        }
    )


@router.get(
    "/api/v1/runs/{run_id}/events",
    response_model=EventsRead,
    summary="A run's history (status changes with who reported them), oldest first",
)
def run_events(
    run_id: str,
    store: StoreDep,
    _: CurrentUser,
    after_id: Annotated[int, Query(ge=0, description="Only events newer than this id")] = 0,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
) -> Response:
    events = store.list_run_events(run_id, after_id=after_id, limit=limit)  # NotFound for an unknown run
    return JsonResponse(
        {
            "run_id": run_id,
            "events": [dataclasses.asdict(event) for event in events],
            "next_after_id": events[-1].id if events else after_id,
        }
    )
