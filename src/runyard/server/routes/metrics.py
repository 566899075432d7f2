"""Metric ingestion (batches exactly once, single points, seed 003's batch) and reads."""

from __future__ import annotations

import io
from typing import Annotated, Literal

import numpy as np
from fastapi import APIRouter, Query, Request
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from runyard.entities import MetricColumns
from runyard.errors import InvalidInput, NotFound
from runyard.server.deps import CurrentUser, StoreDep
from runyard.server.events import EventBus, EventBusDep, publish_batch, publish_metrics, publish_safely
from runyard.server.ingest import parse_batch, parse_points, parse_seed_batch
from runyard.server.jsonio import JsonResponse, loads, run_json, series_json, summary_json
from runyard.server.schemas import (
    BatchIn,
    BatchOut,
    LoggedOut,
    MetricBatchIn,
    MetricPointIn,
    MetricSummaryRead,
    SeriesBatchRead,
    SeriesRead,
)
from runyard.store.base import Store

router = APIRouter(tags=["metrics"])


def _body_doc(model: type[BaseModel], description: str) -> dict[str, object]:
    return {
        "requestBody": {
            "required": True,
            "description": description,
            "content": {
                "application/json": {"schema": model.model_json_schema()}  # self-contained ($defs)
            },
        }
    }


@router.post(
    "/api/v1/runs/{run_id}/batches",
    response_model=BatchOut,
    summary="Apply a client batch exactly once (the columnar bulk form)",
    openapi_extra=_body_doc(BatchIn, "See docs/protocol.md: (writer, seq) makes retries safe"),
)
async def post_batch(
    run_id: str, request: Request, store: StoreDep, bus: EventBusDep, user: CurrentUser
) -> Response:
    body = await request.body()

    def apply() -> Response:
        batch = parse_batch(run_id, loads(body), user.id)
        result = store.apply_batch(run_id, batch)
        publish_safely(publish_batch, bus, store, run_id, batch, result)
        return JsonResponse(
            {
                "run_id": result.run_id,
                "seq": result.seq,
                "duplicate": result.duplicate,
                "points": result.points,
            }
        )

    return await run_in_threadpool(apply)


async def _log(request: Request, store: Store, bus: EventBus, run_id: str, parse: object) -> Response:
    body = await request.body()

    def apply() -> Response:
        columns: dict[str, MetricColumns] = parse(loads(body))  # type: ignore[operator]
        points = store.log_metrics(run_id, columns)
        if points:
            new_points = {key: len(c) for key, c in columns.items()}
            publish_safely(lambda: publish_metrics(bus, store.get_run(run_id), new_points))
        return JsonResponse({"points": points})

    return await run_in_threadpool(apply)


@router.post(
    "/api/v1/runs/{run_id}/metrics",
    response_model=LoggedOut,
    summary="Log one point {name, value, step, timestamp} or many {points: [...]}",
    openapi_extra=_body_doc(MetricPointIn, 'One point, or {"points": [point, ...]}'),
)
@router.post("/runs/{run_id}/metrics", include_in_schema=False)
async def post_points(
    run_id: str, request: Request, store: StoreDep, bus: EventBusDep, _: CurrentUser
) -> Response:
    return await _log(request, store, bus, run_id, parse_points)


@router.post(
    "/api/v1/runs/{run_id}/metrics/batch",
    response_model=LoggedOut,
    summary="Log several metrics at one step (seed 003's form)",
    openapi_extra=_body_doc(MetricBatchIn, "{step, metrics: {key: value}, timestamp}"),
)
@router.post("/runs/{run_id}/metrics/batch", include_in_schema=False)
async def post_seed_batch(
    run_id: str, request: Request, store: StoreDep, bus: EventBusDep, _: CurrentUser
) -> Response:
    return await _log(request, store, bus, run_id, parse_seed_batch)


@router.get(
    "/api/v1/runs/{run_id}/metrics",
    response_model=list[MetricSummaryRead],
    summary="Every metric key of a run with count, last, min and max",
)
def summaries(run_id: str, store: StoreDep, _: CurrentUser) -> Response:
    store.get_run(run_id, with_metrics=False)
    return JsonResponse([summary_json(s) for s in store.metric_summaries(run_id)])


@router.get(
    "/api/v1/runs/{run_id}/metrics/series",
    response_model=SeriesRead,
    summary="One metric's points ordered by step; max_points gives a min/max-preserving downsample",
)
def series(
    run_id: str,
    store: StoreDep,
    _: CurrentUser,
    key: Annotated[str, Query(min_length=1, max_length=250)],
    max_points: Annotated[int | None, Query(ge=2, le=1_000_000)] = None,
    step_min: Annotated[int | None, Query(ge=0)] = None,
    step_max: Annotated[int | None, Query(ge=0)] = None,
) -> Response:
    s = store.metric_series(run_id, key, max_points=max_points, step_min=step_min, step_max=step_max)
    return JsonResponse(series_json(s))


@router.get(
    "/api/v1/series",
    response_model=SeriesBatchRead,
    summary="One metric of several runs at once (a chart's overlay): each as /runs/{id}/metrics/series",
    description="One request instead of one per run; a run without the metric (or unknown) gets an "
    "entry with its error instead of failing the others.",
)
def series_of_runs(
    store: StoreDep,
    _: CurrentUser,
    key: Annotated[str, Query(min_length=1, max_length=250)],
    run_id: Annotated[list[str], Query(min_length=1, max_length=100, description="Repeat for each run")],
    max_points: Annotated[int | None, Query(ge=2, le=1_000_000)] = None,
    step_min: Annotated[int | None, Query(ge=0)] = None,
    step_max: Annotated[int | None, Query(ge=0)] = None,
) -> Response:
    out: list[dict[str, object]] = []
    for rid in dict.fromkeys(run_id):
        try:
            s = store.metric_series(rid, key, max_points=max_points, step_min=step_min, step_max=step_max)
        except NotFound as exc:
            out.append({"run_id": rid, "key": key, **exc.to_dict()})
            continue
        out.append({"run_id": rid, **series_json(s)})
    return JsonResponse({"series": out})


@router.get(
    "/api/v1/runs/{run_id}/export",
    summary="Every point of a run as CSV, JSON or Parquet",
    responses={
        200: {"content": {"text/csv": {}, "application/json": {}, "application/vnd.apache.parquet": {}}}
    },
)
def export(
    run_id: str,
    store: StoreDep,
    _: CurrentUser,
    format: Literal["csv", "json", "parquet"] = "csv",
) -> Response:
    run = store.get_run(run_id)
    keys = sorted(run.metrics)
    series_list = [store.metric_series(run_id, k) for k in keys]
    filename = f"runyard-{run_id}.{format}"
    disposition = {"Content-Disposition": f'attachment; filename="{filename}"'}
    if format == "json":
        return JsonResponse(
            {"run": run_json(run), "metrics": {s.key: series_json(s) for s in series_list}},
            headers=disposition,
        )
    if format == "parquet":
        try:
            import pyarrow as pa
            import pyarrow.parquet as pq
        except ImportError:
            raise InvalidInput(
                "parquet export needs pyarrow on the server: pip install 'runyard[parquet]'", field="format"
            ) from None
        lengths = [len(s.values) for s in series_list]
        table = pa.table(
            {
                "key": pa.DictionaryArray.from_arrays(
                    np.repeat(np.arange(len(keys), dtype=np.int32), lengths), pa.array(keys, pa.string())
                ),
                "step": np.concatenate([s.steps for s in series_list]) if keys else np.zeros(0, np.int64),
                "time": np.concatenate([s.times for s in series_list]) if keys else np.zeros(0),
                "value": np.concatenate([s.values for s in series_list]) if keys else np.zeros(0),
            }
        )
        buf = io.BytesIO()
        pq.write_table(table, buf)
        return Response(buf.getvalue(), media_type="application/vnd.apache.parquet", headers=disposition)
    out = io.StringIO()
    out.write("key,step,time,value\n")
    for s in series_list:
        quoted = '"' + s.key.replace('"', '""') + '"'
        for step, t, v in zip(s.steps.tolist(), s.times.tolist(), s.values.tolist(), strict=True):
            out.write(f"{quoted},{step},{t!r},{v!r}\n")
    return Response(out.getvalue(), media_type="text/csv; charset=utf-8", headers=disposition)
