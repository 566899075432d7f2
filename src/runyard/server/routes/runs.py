"""Runs: create (also seed 003's ``POST /experiments/{id}/runs``), read, update, search."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, status
from starlette.responses import Response

from runyard.entities import RunCreate, RunQuery, RunUpdate
from runyard.errors import InvalidInput
from runyard.lifecycle import filter_client_update
from runyard.server.deps import CurrentUser, StoreDep
from runyard.server.events import EventBusDep, publish_runs, publish_safely
from runyard.server.ingest import parse_status
from runyard.server.jsonio import JsonResponse, run_json
from runyard.server.query import parse_filter, parse_sort
from runyard.server.schemas import (
    RunBulkCreate,
    RunBulkCreated,
    RunCreateBody,
    RunCreated,
    RunCreateWithExperiment,
    RunPageRead,
    RunRead,
    RunUpdateBody,
)

router = APIRouter(tags=["runs"])

_KNOWN = set(RunCreateWithExperiment.model_fields)


def _run_create(body: RunCreateBody, experiment_id: str, user_id: str) -> RunCreate:
    extra = {k: v for k, v in (body.model_extra or {}).items() if k not in _KNOWN}
    config = {**extra, **body.config}  # seed 003 sends e.g. "seed" next to "config"
    job = None if body.slurm_job_id is None else str(body.slurm_job_id)
    return RunCreate(
        experiment_id=experiment_id,
        id=body.id,
        name=body.name,
        status=parse_status(body.status),
        user_id=user_id,
        host=body.host or body.slurm_node,
        config=config,
        tags=tuple(dict.fromkeys(body.tags)),
        notes=body.notes,
        gpu_type=body.gpu_type,
        slurm_job_id=job,
        slurm_nodes=body.slurm_node,
        slurm_partition=body.slurm_partition,
    )


def _created(run: Any) -> Response:
    data = run_json(run)
    data["run_id"] = run.id
    return JsonResponse(data, status_code=status.HTTP_201_CREATED)


@router.post(
    "/api/v1/experiments/{experiment_id}/runs",
    response_model=RunCreated,
    status_code=status.HTTP_201_CREATED,
    summary="Create a run in an experiment",
)
@router.post("/experiments/{experiment_id}/runs", include_in_schema=False, status_code=201)
def create_run_in_experiment(
    experiment_id: str, body: RunCreateBody, store: StoreDep, bus: EventBusDep, user: CurrentUser
) -> Response:
    run = store.create_run(_run_create(body, experiment_id, user.id))  # NotFound if unknown
    publish_safely(publish_runs, bus, store, [run])
    return _created(run)


def _experiment_for(body: RunCreateWithExperiment, store: StoreDep, user_id: str, field: str) -> str:
    if body.experiment_id:
        return body.experiment_id
    if body.project and body.experiment:
        return store.ensure_experiment(body.project, body.experiment, owner_id=user_id).id
    raise InvalidInput("give experiment_id, or both project and experiment (names)", field=field)


@router.post(
    "/api/v1/runs/bulk",
    response_model=RunBulkCreated,
    status_code=status.HTTP_201_CREATED,
    summary="Create up to 10,000 runs in one transaction (all or none), e.g. a sweep's trials",
)
def create_runs(body: RunBulkCreate, store: StoreDep, bus: EventBusDep, user: CurrentUser) -> Response:
    creates = [
        _run_create(r, _experiment_for(r, store, user.id, f"runs[{i}].experiment_id"), user.id)
        for i, r in enumerate(body.runs)
    ]
    runs = store.create_runs(creates)
    publish_safely(publish_runs, bus, store, runs)
    return JsonResponse(
        {"runs": [run_json(r) for r in runs], "run_ids": [r.id for r in runs]},
        status_code=status.HTTP_201_CREATED,
    )


@router.post(
    "/api/v1/runs",
    response_model=RunCreated,
    status_code=status.HTTP_201_CREATED,
    summary="Create a run by experiment id, or by project and experiment names (created if missing)",
)
def create_run(
    body: RunCreateWithExperiment, store: StoreDep, bus: EventBusDep, user: CurrentUser
) -> Response:
    experiment_id = _experiment_for(body, store, user.id, "experiment_id")
    run = store.create_run(_run_create(body, experiment_id, user.id))
    publish_safely(publish_runs, bus, store, [run])
    return _created(run)


@router.get("/api/v1/runs/{run_id}", response_model=RunRead, summary="Get a run with its metric summaries")
def get_run(run_id: str, store: StoreDep, _: CurrentUser) -> Response:
    return JsonResponse(run_json(store.get_run(run_id)))


@router.patch(
    "/api/v1/runs/{run_id}",
    response_model=RunRead,
    summary="Update a run: config and summary merge key by key; tags replace (tags_add adds)",
)
def update_run(
    run_id: str, body: RunUpdateBody, store: StoreDep, bus: EventBusDep, _: CurrentUser
) -> Response:
    update = RunUpdate(
        name=body.name,
        status=None if body.status is None else parse_status(body.status),
        notes=body.notes,
        tags=None if body.tags is None else tuple(dict.fromkeys(body.tags)),
        tags_add=None if body.tags_add is None else tuple(dict.fromkeys(body.tags_add)),
        config=body.config,
        summary=body.summary,
        exit_code=body.exit_code,
        started_at=body.started_at,
        ended_at=body.ended_at,
        host=body.host,
    )
    # status changes go through the state machine: Slurm's final word is not overwritten
    after, changed = store.transition_run(run_id, lambda run: filter_client_update(run, update, "user"))
    if changed:
        publish_safely(publish_runs, bus, store, [after])
    return JsonResponse(run_json(store.get_run(run_id)))


FilterParam = Annotated[
    list[str],
    Query(
        description="<field><op><value>, e.g. params.lr>=0.01, metrics.loss.min<0.5, status=running, "
        "tags=baseline, name~resnet; repeat to AND"
    ),
]


def _search(
    store: StoreDep,
    *,
    experiment_id: str | None,
    project_id: str | None,
    filters: list[str],
    sort: str | None,
    order: str,
    limit: int,
    offset: int,
    metrics: str | None,
    total: bool,
) -> Response:
    keys = None if metrics is None else tuple(k for k in metrics.split(",") if k)
    page = store.search_runs(
        RunQuery(
            experiment_id=experiment_id,
            project_id=project_id,
            filters=tuple(parse_filter(f) for f in filters),
            sort=parse_sort(sort),
            descending=order == "desc",
            limit=limit,
            offset=offset,
            with_total=total,
            metric_keys=keys,
        )
    )
    return JsonResponse(
        {
            "runs": [run_json(r) for r in page.runs],
            "offset": page.offset,
            "limit": page.limit,
            "next_offset": page.next_offset,
            "total": page.total,
        }
    )


@router.get("/api/v1/runs", response_model=RunPageRead, summary="Search runs: filter, sort, page")
def search_runs(
    store: StoreDep,
    _: CurrentUser,
    experiment_id: str | None = None,
    project_id: str | None = None,
    filter: FilterParam = [],  # noqa: B006 - FastAPI query default
    sort: Annotated[
        str | None,
        Query(
            description="created_at, updated_at, started_at, ended_at, name, status, user_id, host, "
            "slurm_job_id, slurm_partition, slurm_nodes, exit_code, restart_count, duration, params.<k>, "
            "metrics.<k>.<stat>"
        ),
    ] = None,
    order: Literal["asc", "desc"] = "desc",
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
    metrics: Annotated[str | None, Query(description="Comma-separated metric keys to include")] = None,
    total: bool = False,
) -> Response:
    return _search(
        store,
        experiment_id=experiment_id,
        project_id=project_id,
        filters=filter,
        sort=sort,
        order=order,
        limit=limit,
        offset=offset,
        metrics=metrics,
        total=total,
    )


@router.get(
    "/api/v1/experiments/{experiment_id}/runs",
    response_model=RunPageRead,
    summary="Search the runs of one experiment",
)
def experiment_runs(
    experiment_id: str,
    store: StoreDep,
    _: CurrentUser,
    filter: FilterParam = [],  # noqa: B006
    sort: str | None = None,
    order: Literal["asc", "desc"] = "desc",
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
    metrics: str | None = None,
    total: bool = False,
) -> Response:
    store.get_experiment(experiment_id)
    return _search(
        store,
        experiment_id=experiment_id,
        project_id=None,
        filters=filter,
        sort=sort,
        order=order,
        limit=limit,
        offset=offset,
        metrics=metrics,
        total=total,
    )
