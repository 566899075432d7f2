"""Slurm events: seed 003's ``POST /webhooks/slurm`` (form fields job_id, status, exit_code)."""

from __future__ import annotations

import time
from typing import Annotated

from fastapi import APIRouter, Form

from runyard.entities import TERMINAL_STATUSES, RunStatus, RunUpdate
from runyard.errors import InvalidInput
from runyard.server.deps import CurrentUser, StoreDep

router = APIRouter(tags=["slurm"])

# Slurm job states (and seed 003's "completed") to run statuses.
_STATES = {
    "completed": None,  # finished or failed, by exit code
    "complete": None,
    "finished": None,
    "failed": RunStatus.FAILED,
    "timeout": RunStatus.TIMEOUT,
    "cancelled": RunStatus.CANCELLED,
    "out_of_memory": RunStatus.OOM,
    "oom": RunStatus.OOM,
    "node_fail": RunStatus.NODE_FAIL,
    "preempted": RunStatus.REQUEUED,
    "requeued": RunStatus.REQUEUED,
    "running": RunStatus.RUNNING,
    "pending": RunStatus.QUEUED,
}


def _exit_code(raw: str | None) -> int | None:
    """``3``, or Slurm's ``3:0`` (exit code : signal)."""
    if raw is None or raw == "":
        return None
    try:
        return int(raw.split(":", 1)[0])
    except ValueError:
        raise InvalidInput(f"exit_code must be an integer or N:S, got {raw!r}", field="exit_code") from None


@router.post(
    "/webhooks/slurm", summary="Job event from a Slurm epilog: job_id, status, exit_code (form fields)"
)
@router.post("/api/v1/webhooks/slurm", include_in_schema=False)
def slurm_webhook(
    store: StoreDep,
    _: CurrentUser,
    job_id: Annotated[str, Form(min_length=1, max_length=64)],
    status: Annotated[str, Form(max_length=64)] = "completed",
    exit_code: Annotated[str | None, Form(max_length=16)] = None,
) -> dict[str, object]:
    state = status.strip().lower().rstrip("+").replace(" ", "_")
    if state not in _STATES:
        raise InvalidInput(f"status must be one of {sorted(_STATES)}; got {status!r}", field="status")
    code = _exit_code(exit_code)
    target = _STATES[state] or (RunStatus.FINISHED if code in (None, 0) else RunStatus.FAILED)
    runs = store.find_runs_by_slurm_job(job_id)
    for run in runs:
        ended = time.time() if target in TERMINAL_STATUSES else None
        store.update_run(run.id, RunUpdate(status=target, exit_code=code, ended_at=ended))
    return {"received": True, "runs": [r.id for r in runs], "status": target.value}
