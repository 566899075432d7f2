"""``GET /api/v1/events``: what changes, live, as Server-Sent Events (see ``server/events.py``)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Header, Query
from starlette.responses import StreamingResponse

from runyard.server.deps import CurrentUser
from runyard.server.events import Event, EventBus, EventBusDep

router = APIRouter(tags=["events"])

_DESCRIPTION = """\
A `text/event-stream` of what changes, so a page updates without reloading. Each event is
`id: <epoch>-<n>`, `event: <kind>`, `data: <one line of JSON>`:

- `hello` `{"epoch", "last_event_id"}`: sent on connecting (no `id` when resuming).
- `run` `{"run_id", "experiment_id", "project_id", "status", "pending_reason", "restart_count",
  "exit_code", "started_at", "ended_at", "updated_at", "slurm_job_id", "slurm_state", "tags", …}`:
  a run was created or its status or fields changed (batches, PATCH, the Slurm watcher, the
  epilog webhook, launch, cancel).
- `metrics` `{"run_id", "experiment_id", "metrics": {key: {"count", "new", "last", "last_step",
  "last_time"}}}`: new points (a summary per key, not the points).
- `logs` `{"run_id", "experiment_id", "lines": [{"id", "time", "stream", "host", "rank", "line"}],
  "truncated"}`: new console lines (at most 200 per event; `truncated`: read the rest from
  `/api/v1/runs/{id}/console`).
- `reset` `{"reason"}`: events were missed (the `Last-Event-ID` is unknown, from another server
  process, or older than the last 10,000 events, or the reader fell that far behind): refetch
  what is shown, then carry on from this event.

Reconnecting with `Last-Event-ID` (header, or `?last_event_id=`) replays every missed event in
order. `experiment_id` and `run_id` (repeatable) filter run, metrics and logs events. A
`: keepalive` comment comes every 15 s.
"""


def _frame(kind: str, data: bytes, event_id: str | None = None) -> bytes:
    head = b"" if event_id is None else b"id: " + event_id.encode() + b"\n"
    return head + b"event: " + kind.encode() + b"\ndata: " + data + b"\n\n"


def _reset(bus: EventBus, cursor: int, reason: str) -> bytes:
    return _frame("reset", b'{"reason": "' + reason.encode() + b'"}', bus.event_id(cursor))


async def _stream(
    bus: EventBus, last_event_id: str | None, run_ids: set[str], experiment_ids: set[str]
) -> AsyncIterator[bytes]:
    def wanted(event: Event) -> bool:
        return (not run_ids or event.run_id in run_ids) and (
            not experiment_ids or event.experiment_id in experiment_ids
        )

    sub = bus.subscribe()
    try:
        resumed = bus.resume_point(last_event_id)
        cursor = bus.head if resumed is None else resumed
        hello = b'{"epoch": "' + bus.epoch.encode() + b'", "last_event_id": "'
        hello += bus.event_id(cursor).encode() + b'"}'
        yield _frame("hello", hello, None if resumed is not None else bus.event_id(cursor))
        if last_event_id and resumed is None:
            yield _reset(bus, cursor, "unknown or expired Last-Event-ID")
        while not bus.closed:
            sub.ready.clear()
            events = bus.since(cursor)
            if events is None:
                cursor = bus.head
                yield _reset(bus, cursor, "fell behind")
                continue
            if events:
                chunk = [_frame(e.kind, e.data, e.id) for e in events if wanted(e)]
                cursor = events[-1].n
                if chunk:
                    yield b"".join(chunk)
                continue
            try:
                await asyncio.wait_for(sub.ready.wait(), bus.heartbeat_s)
            except TimeoutError:
                yield b": keepalive\n\n"
    finally:
        bus.unsubscribe(sub)


@router.get(
    "/api/v1/events",
    summary="Live changes of runs, metrics and console lines (Server-Sent Events)",
    description=_DESCRIPTION,
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}, "description": "An endless event stream"}},
)
async def events(
    bus: EventBusDep,
    _: CurrentUser,
    experiment_id: Annotated[list[str], Query(description="Only these experiments (repeatable)")] = [],  # noqa: B006
    run_id: Annotated[list[str], Query(description="Only these runs (repeatable)")] = [],  # noqa: B006
    last_event_id: Annotated[str | None, Query(description="Resume after this event id")] = None,
    last_event_id_header: Annotated[str | None, Header(alias="Last-Event-ID")] = None,
) -> StreamingResponse:
    return StreamingResponse(
        _stream(bus, last_event_id_header or last_event_id, set(run_id), set(experiment_id)),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
