"""``GET /api/v1/runs/{id}/console``: the stdout/stderr lines the client captured, with the
time, host and rank of each line (the job's output file is ``/logs``)."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query
from starlette.responses import Response

from runyard.entities import TERMINAL_STATUSES
from runyard.server.deps import CurrentUser, StoreDep
from runyard.server.jsonio import JsonResponse
from runyard.server.schemas import ConsoleRead

router = APIRouter(tags=["jobs"])


@router.get(
    "/api/v1/runs/{run_id}/console",
    response_model=ConsoleRead,
    summary="The stdout/stderr lines the client captured, each with time, host and rank, oldest first",
    description="Both streams interleaved in the order they arrived, or one with stream=. Page and "
    "follow by passing next_after_id back as after_id; tail=N gives the last N lines instead. Every "
    "rank of a job sends its lines to the run, so lines of different ranks interleave.",
)
def run_console(
    run_id: str,
    store: StoreDep,
    _: CurrentUser,
    stream: Literal["stdout", "stderr"] | None = None,
    after_id: Annotated[int, Query(ge=0, description="Only lines newer than this id")] = 0,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
    tail: Annotated[int | None, Query(ge=1, le=10_000, description="The last N lines")] = None,
) -> Response:
    run = store.get_run(run_id, with_metrics=False)  # first: when it has ended, its lines are in
    count = limit if tail is None else tail
    lines = store.list_log_lines(
        run_id, stream=stream, after_id=after_id, limit=count, newest=tail is not None
    )
    return JsonResponse(
        {
            "run_id": run.id,
            "stream": stream,
            "lines": [
                {
                    "id": x.id,
                    "time": x.time,
                    "stream": x.stream,
                    "host": x.host,
                    "rank": x.rank,
                    "line": x.line,
                }
                for x in lines
            ],
            "next_after_id": lines[-1].id if lines else after_id,
            "more": tail is None and len(lines) == count,
            "final": run.status in TERMINAL_STATUSES,
            "run_status": run.status.value,
        }
    )
