"""Slurm events: ``POST /webhooks/slurm`` from the admin's epilog script (and seed 003's form).

The call must be signed with the shared webhook secret (see ``server/webhook_auth.py``); an
admin's API key is accepted too, for tools of the cluster's own. Anything else — unsigned,
forged, replayed, or a non-admin key — is refused with 401/403 before the body is used.

Bodies: the epilog script's JSON ``{"job_id", "exit_code": "3:0", "restart_count", …}``, or
seed 003's form fields ``job_id``, ``status``, ``exit_code``. An event without a ``status``
(what a real epilog knows: the job ended, with this exit code) is recorded on the run and wakes
the watcher, which asks Slurm how the job ended; an event with a status is applied through the
state machine (``runyard.lifecycle``) like any other Slurm evidence.
"""

from __future__ import annotations

import functools
import json
import time
from typing import Any
from urllib.parse import parse_qs

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool

from runyard.entities import Run, RunUpdate
from runyard.errors import Forbidden, InvalidInput, Unauthorized
from runyard.lifecycle import NewEvent, Observation, apply_observation, normalize_state
from runyard.server.deps import StoreDep, user_for_key
from runyard.server.events import publish_runs, publish_safely
from runyard.server.schemas import WebhookBody, WebhookResult
from runyard.server.webhook_auth import SIGNATURE_HEADER, TIMESTAMP_HEADER, verify
from runyard.slurm.runner import check_job_id

router = APIRouter(tags=["slurm"])

# seed 003's and Slurm's words for a job's end
_STATES = {
    "completed": "COMPLETED",
    "complete": "COMPLETED",
    "finished": "COMPLETED",
    "failed": "FAILED",
    "timeout": "TIMEOUT",
    "cancelled": "CANCELLED",
    "out_of_memory": "OUT_OF_MEMORY",
    "oom": "OUT_OF_MEMORY",
    "node_fail": "NODE_FAIL",
    "preempted": "PREEMPTED",
    "requeued": "REQUEUED",
    "running": "RUNNING",
    "pending": "PENDING",
}
_MAX_BODY = 64 * 1024


def _exit_code(raw: Any) -> tuple[int | None, int | None]:
    """``3`` or Slurm's ``3:0`` (exit code : signal)."""
    if raw is None or raw == "":
        return None, None
    if isinstance(raw, int) and not isinstance(raw, bool):
        return raw, None
    code, _, sig = str(raw).partition(":")
    try:
        return int(code), (int(sig) if sig else None)
    except ValueError:
        raise InvalidInput(f"exit_code must be an integer or N:S, got {raw!r}", field="exit_code") from None


def _parse(body: bytes, content_type: str) -> dict[str, Any]:
    if content_type.startswith("application/json"):
        try:
            data = json.loads(body or b"{}")
        except ValueError as exc:
            raise InvalidInput(f"body is not JSON: {exc}", field="body") from None
        if not isinstance(data, dict):
            raise InvalidInput("body must be a JSON object", field="body")
        return data
    if content_type.startswith("multipart/"):
        raise InvalidInput("send the fields as JSON or application/x-www-form-urlencoded", field="body")
    form = parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True)
    return {k: v[-1] for k, v in form.items()}


async def _authorize(request: Request, body: bytes) -> str:
    """``epilog`` for a signed call, ``user`` for an admin key; raises otherwise."""
    timestamp = request.headers.get(TIMESTAMP_HEADER)
    signature = request.headers.get(SIGNATURE_HEADER)
    if signature is not None or timestamp is not None:
        verify(request.app.state.webhook_secret, timestamp, signature, body, time.time())
        return "epilog"
    api_key = request.headers.get("x-api-key")
    auth = request.headers.get("authorization", "")
    bearer = auth[7:] if auth.lower().startswith("bearer ") else None
    if not api_key and not bearer:
        raise Unauthorized(
            f"unsigned webhook call: sign it with the webhook secret ({TIMESTAMP_HEADER}, "
            f"{SIGNATURE_HEADER}; see `runyard slurm epilog-script`) or send an admin's API key (X-API-Key)"
        )
    user = await user_for_key(request, api_key or bearer or "")
    if not user.is_admin:
        raise Forbidden("only the epilog (signed) or an admin may report job events")
    return "user"


def _observe(run: Run, *, obs: Observation) -> tuple[RunUpdate | None, list[NewEvent]]:
    return apply_observation(run, obs)


def _text(data: dict[str, Any], key: str, limit: int = 64) -> str | None:
    value = data.get(key)
    if value is None or value == "":
        return None
    text = str(value)
    if len(text) > limit:
        raise InvalidInput(f"{key} must be at most {limit} characters", field=key)
    return text


@router.post(
    "/webhooks/slurm",
    summary="Job event from a Slurm epilog (signed with the webhook secret): job id and exit code",
    response_model=WebhookResult,
    openapi_extra={
        "requestBody": {
            "content": {
                "application/json": {"schema": WebhookBody.model_json_schema()},
                "application/x-www-form-urlencoded": {"schema": WebhookBody.model_json_schema()},
            }
        }
    },
)
@router.post("/api/v1/webhooks/slurm", include_in_schema=False)
async def slurm_webhook(request: Request, store: StoreDep) -> dict[str, Any]:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > _MAX_BODY:
        raise InvalidInput(f"a webhook body is at most {_MAX_BODY} bytes", field="body")
    body = await request.body()
    source = await _authorize(request, body)
    data = _parse(body, request.headers.get("content-type", ""))

    job_id = _text(data, "job_id")
    if job_id is None:
        raise InvalidInput("job_id is required", field="job_id")
    task = _text(data, "array_task_id")
    array_job = _text(data, "array_job_id")
    if array_job is not None and task is not None and task.isdigit():
        job_id = f"{array_job}_{task}"  # the epilog of an array task knows both
    check_job_id(job_id)
    code, signal = _exit_code(data.get("exit_code"))
    restart = _text(data, "restart_count")
    restart_count = int(restart) if restart is not None and restart.isdigit() else None
    raw_status = _text(data, "status")
    state = None
    if raw_status is not None:
        key = raw_status.strip().lower().rstrip("+").replace(" ", "_")
        if key not in _STATES:
            raise InvalidInput(f"status must be one of {sorted(_STATES)}; got {raw_status!r}", field="status")
        state = _STATES[key]
        if state == "COMPLETED" and code not in (None, 0):
            state = "FAILED"

    def apply() -> list[str]:
        runs = store.find_runs_by_slurm_job(job_id)
        message = f"job {job_id} ended" + ("" if code is None else f", exit code {code}:{signal or 0}")
        for run in runs:
            if state is None:
                event = NewEvent(source="epilog", kind="epilog", message=message, data={"exit_code": code})
                store.record_events(run.id, [event])
                continue
            obs = Observation(
                source="epilog",
                state=normalize_state(state),
                exit_code=code,
                signal=signal,
                end_time=time.time(),
                restart_count=restart_count,
            )
            after, changed = store.transition_run(run.id, functools.partial(_observe, obs=obs))
            if changed:
                publish_safely(publish_runs, request.app.state.events, store, [after])
        return [run.id for run in runs]

    run_ids = await run_in_threadpool(apply)
    watcher = request.app.state.watcher
    if watcher is not None and run_ids:
        watcher.wake()
    return {"received": True, "runs": run_ids, "source": source}
