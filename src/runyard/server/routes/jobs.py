"""Acting on a run's Slurm job (cancel, requeue) and judging how it used its allocation.

Cancel and requeue are for the run's owner or an admin. They ask the executor, record a
``user`` event, and wake the watcher, which then records the state Slurm reports: the run's
status changes through the state machine like any other observation, never here.
"""

from __future__ import annotations

import re
import time

import numpy as np
from fastapi import APIRouter, Request
from starlette.responses import Response

from runyard.entities import TERMINAL_STATUSES, Run, User
from runyard.errors import Forbidden, InvalidInput
from runyard.lifecycle import NewEvent
from runyard.server.deps import CurrentUser, ExecutorDep, StoreDep
from runyard.server.events import publish_runs, publish_safely
from runyard.server.jsonio import JsonResponse
from runyard.server.routes.cluster import snapshot_cache
from runyard.server.routes.launch import wake_watcher
from runyard.server.slurm_schemas import EfficiencyRead, JobActionRead
from runyard.slurm.efficiency import efficiency_report
from runyard.slurm.executor import Executor
from runyard.store.base import Store

router = APIRouter(tags=["jobs"])

_GPU_UTIL = re.compile(r"^sys/[^/]+/gpu\d+/util_pct$")
_CPU_PCT = re.compile(r"^sys/[^/]+/r\d+/cpu_pct$")


def _job_of(run: Run, user: User, action: str) -> str:
    """The run's Slurm job id, once ``user`` may ``action`` it and the job can still be acted on."""
    if run.user_id != user.id and not user.is_admin:
        raise Forbidden(f"only the run's owner or an admin may {action} run {run.id!r}")
    if not run.slurm_job_id:
        raise InvalidInput(
            f"run {run.id!r} has no Slurm job to {action} (it was not launched through Slurm)",
            field="slurm_job_id",
        )
    if run.status in TERMINAL_STATUSES:
        raise InvalidInput(
            f"run {run.id!r} has already ended ({run.status.value}); there is nothing to {action}",
            field="status",
        )
    return run.slurm_job_id


def _act(
    request: Request, store: Store, executor: Executor, user: User, run_id: str, action: str
) -> Response:
    run = store.get_run(run_id, with_metrics=False)
    job_id = _job_of(run, user, action)
    if action == "cancel":
        executor.cancel(job_id)
        message = f"{user.username} cancelled job {job_id}"
    else:
        executor.requeue(job_id)
        message = f"{user.username} requeued job {job_id}"
    store.record_events(
        run.id, [NewEvent(source="user", kind=action, message=message, data={"job_id": job_id})]
    )
    publish_safely(publish_runs, request.app.state.events, store, [run.id])
    snapshot_cache(request).invalidate()
    wake_watcher(request)  # it records the state Slurm now reports
    return JsonResponse({"run_id": run.id, "job_id": job_id, "action": action, "message": message})


@router.post(
    "/api/v1/runs/{run_id}/cancel",
    response_model=JobActionRead,
    summary="Cancel the run's Slurm job (scancel); the owner or an admin",
)
def cancel_run(
    run_id: str, request: Request, store: StoreDep, user: CurrentUser, executor: ExecutorDep
) -> Response:
    return _act(request, store, executor, user, run_id, "cancel")


@router.post(
    "/api/v1/runs/{run_id}/requeue",
    response_model=JobActionRead,
    summary="Requeue the run's Slurm job (scontrol requeue); the owner or an admin",
)
def requeue_run(
    run_id: str, request: Request, store: StoreDep, user: CurrentUser, executor: ExecutorDep
) -> Response:
    return _act(request, store, executor, user, run_id, "requeue")


def _means(store: Store, run: Run, pattern: re.Pattern[str]) -> dict[str, float]:
    means: dict[str, float] = {}
    for key in sorted(run.metrics):
        if pattern.match(key):
            values = np.asarray(store.metric_series(run.id, key).values, dtype=np.float64)
            values = values[np.isfinite(values)]
            if values.size:
                means[key] = float(values.mean())
    return means


@router.get(
    "/api/v1/runs/{run_id}/efficiency",
    response_model=EfficiencyRead,
    summary="How the run used its allocation (CPU, memory, time, GPUs) with advice",
    description="From Slurm's accounting (once the job has ended) and the run's system metrics.",
)
def run_efficiency(run_id: str, store: StoreDep, _: CurrentUser) -> Response:
    run = store.get_run(run_id)
    gpu_util = _means(store, run, _GPU_UTIL)
    accounted = isinstance(run.slurm.get("accounting"), dict)
    cpu_pct = None if accounted else _means(store, run, _CPU_PCT)
    report = efficiency_report(run, gpu_util, cpu_pct, now=time.time())
    return JsonResponse(report.as_dict())
