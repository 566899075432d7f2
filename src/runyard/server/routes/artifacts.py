"""Artifacts: record a path on shared storage (seed 003), or upload/download a small file."""

from __future__ import annotations

import hashlib
import os
import re
import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Request, status
from fastapi.responses import FileResponse
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from runyard.entities import ArtifactCreate
from runyard.errors import InvalidInput, NotFound
from runyard.server.deps import CurrentUser, SettingsDep, StoreDep
from runyard.server.ingest import parse_artifact
from runyard.server.jsonio import JsonResponse, artifact_json, loads
from runyard.server.schemas import ArtifactBody, ArtifactRead

router = APIRouter(tags=["artifacts"])

UPLOAD_MARKER = "/artifacts/files/"
_BAD_NAME = re.compile(r"[/\\\x00-\x1f\x7f]")


@router.post(
    "/api/v1/runs/{run_id}/artifacts",
    response_model=ArtifactRead,
    status_code=status.HTTP_201_CREATED,
    summary="Record an artifact by path (a checkpoint on shared storage, an s3:// URI, …)",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": ArtifactBody.model_json_schema()}},
        }
    },
)
@router.post("/runs/{run_id}/artifacts", include_in_schema=False, status_code=201)
async def record(run_id: str, request: Request, store: StoreDep, _: CurrentUser) -> Response:
    body = await request.body()

    def apply() -> Response:
        artifact = store.create_artifact(run_id, parse_artifact(loads(body), "body"))
        return JsonResponse(artifact_json(artifact), status_code=status.HTTP_201_CREATED)

    return await run_in_threadpool(apply)


@router.get(
    "/api/v1/runs/{run_id}/artifacts", response_model=list[ArtifactRead], summary="List a run's artifacts"
)
def list_artifacts(run_id: str, store: StoreDep, _: CurrentUser) -> Response:
    return JsonResponse([artifact_json(a) for a in store.list_artifacts(run_id)])


def _check_name(name: str) -> None:
    if not name or name in (".", "..") or _BAD_NAME.search(name) or len(name.encode()) > 255:
        raise InvalidInput(
            "artifact name must be 1-255 bytes with no '/', '\\' or control characters, and not '.' or '..'",
            field="name",
        )


@router.put(
    "/api/v1/runs/{run_id}/artifacts/files/{name}",
    response_model=ArtifactRead,
    status_code=status.HTTP_201_CREATED,
    summary="Upload a small file as an artifact (raw body; limit RUNYARD_MAX_ARTIFACT_MB)",
)
async def upload(
    run_id: str,
    name: str,
    request: Request,
    store: StoreDep,
    settings: SettingsDep,
    _: CurrentUser,
    kind: Annotated[str, Query(max_length=100)] = "file",
    step: Annotated[int | None, Query(ge=0)] = None,
) -> Response:
    _check_name(name)
    await run_in_threadpool(store.get_run, run_id, with_metrics=False)
    run_dir = settings.artifact_dir / run_id
    run_dir.mkdir(parents=True, exist_ok=True)
    relative = f"{run_id}/{uuid.uuid4().hex}"
    target = settings.artifact_dir / relative
    digest = hashlib.sha256()
    size = 0
    try:
        with open(target, "wb") as f:
            async for chunk in request.stream():
                f.write(chunk)
                digest.update(chunk)
                size += len(chunk)
        artifact = await run_in_threadpool(
            store.create_artifact,
            run_id,
            ArtifactCreate(
                path=relative,
                name=name,
                kind=kind,
                size_bytes=size,
                sha256=digest.hexdigest(),
                step=step,
                stored=True,
            ),
        )
    except BaseException:
        target.unlink(missing_ok=True)
        raise
    return JsonResponse(artifact_json(artifact), status_code=status.HTTP_201_CREATED)


@router.get(
    "/api/v1/artifacts/{artifact_id}/download",
    summary="Download an uploaded artifact",
    response_class=FileResponse,
)
def download(artifact_id: str, store: StoreDep, settings: SettingsDep, _: CurrentUser) -> Response:
    artifact = store.get_artifact(artifact_id)
    if not artifact.stored:
        raise NotFound(f"artifact {artifact_id} is recorded by path only; it lives at {artifact.path}")
    path = settings.artifact_dir / artifact.path
    if not path.is_file():
        raise NotFound(f"the file of artifact {artifact_id} is missing from the server's artifact directory")
    return FileResponse(os.fspath(path), filename=artifact.name, media_type="application/octet-stream")
