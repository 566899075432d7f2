"""The cluster view (``GET /api/v1/cluster``) and the requester's runs (``GET /api/v1/me/runs``)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from starlette.responses import Response

from runyard.entities import ACTIVE_STATUSES, RunQuery, RunStatus
from runyard.server.cluster import (
    GPU_HOURS_TTL_S,
    SnapshotCache,
    build_view,
    gpu_hours_by_experiment,
    take_snapshot,
)
from runyard.server.deps import CurrentUser, ExecutorDep, StoreDep
from runyard.server.jsonio import JsonResponse, run_json
from runyard.server.slurm_schemas import ClusterRead, MyRunsRead

router = APIRouter(tags=["jobs"])


def snapshot_cache(request: Request) -> SnapshotCache:
    """The app's cache of cluster snapshots (made on first use; launch, cancel and requeue invalidate it)."""
    cache: SnapshotCache | None = getattr(request.app.state, "cluster_cache", None)
    if cache is None:
        cache = SnapshotCache()
        request.app.state.cluster_cache = cache
    return cache


@router.get(
    "/api/v1/cluster",
    response_model=ClusterRead,
    summary="Nodes, partitions and the queue (with pending reasons, start estimates and run ids)",
    description="One nodes, one partitions and one queue call to the executor per snapshot; a snapshot "
    "is shared for a few seconds. 'mine' holds the queue rows of the requesting user's runs; gpu_hours "
    "sums Slurm's accounting of ended runs per experiment.",
)
def cluster(request: Request, store: StoreDep, user: CurrentUser, executor: ExecutorDep) -> Response:
    # the user first: who is asking is checked before anything else (even a missing executor)
    cache = snapshot_cache(request)
    snapshot = cache.get("snapshot", lambda: take_snapshot(executor))
    gpu_hours = cache.get("gpu_hours", lambda: gpu_hours_by_experiment(store), GPU_HOURS_TTL_S)
    names = cache.get(
        "experiment_names", lambda: {e.id: e.name for e in store.list_experiments()}, GPU_HOURS_TTL_S
    )
    tracked = store.slurm_tracked_runs()
    return JsonResponse(build_view(snapshot, tracked, gpu_hours, names, user))


_ACTIVE_FILTERS = tuple(
    ("status", "!=", status.value) for status in RunStatus if status not in ACTIVE_STATUSES
)


@router.get(
    "/api/v1/me/runs",
    response_model=MyRunsRead,
    summary="The requesting user's runs, newest first: active ones, or all with all=true",
)
def my_runs(
    store: StoreDep,
    user: CurrentUser,
    include_ended: Annotated[bool, Query(alias="all", description="Also runs that have ended")] = False,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> Response:
    filters = (("user_id", "=", user.id), *(() if include_ended else _ACTIVE_FILTERS))
    page = store.search_runs(RunQuery(filters=filters, limit=limit, metric_keys=()))
    return JsonResponse({"runs": [run_json(run) for run in page.runs]})
