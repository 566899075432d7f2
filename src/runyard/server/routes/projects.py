"""Projects and experiments."""

from __future__ import annotations

import dataclasses
from typing import Annotated

from fastapi import APIRouter, Query, Response, status

from runyard.entities import Project
from runyard.errors import AlreadyExists, InvalidInput, NotFound
from runyard.server.deps import CurrentUser, StoreDep
from runyard.server.jsonio import experiment_json
from runyard.server.schemas import (
    ExperimentCreate,
    ExperimentKeysRead,
    ExperimentRead,
    ExperimentUpdate,
    ProjectCreate,
    ProjectRead,
)

router = APIRouter(tags=["projects"])


def _project(p: Project) -> ProjectRead:
    return ProjectRead(**dataclasses.asdict(p))


@router.get("/api/v1/projects", response_model=list[ProjectRead], summary="List projects")
def list_projects(store: StoreDep, _: CurrentUser) -> list[ProjectRead]:
    return [_project(p) for p in store.list_projects()]


@router.post(
    "/api/v1/projects",
    response_model=ProjectRead,
    status_code=status.HTTP_201_CREATED,
    summary="Create a project",
)
def create_project(body: ProjectCreate, store: StoreDep, user: CurrentUser) -> ProjectRead:
    return _project(store.create_project(body.name, description=body.description, owner_id=user.id))


@router.get("/api/v1/projects/{project_id}", response_model=ProjectRead, summary="Get a project")
def get_project(project_id: str, store: StoreDep, _: CurrentUser) -> ProjectRead:
    return _project(store.get_project(project_id))


@router.get(
    "/api/v1/experiments",
    response_model=list[ExperimentRead],
    summary="List experiments, with run counts and last activity",
)
def list_experiments(store: StoreDep, _: CurrentUser, project_id: str | None = None) -> list[ExperimentRead]:
    return [ExperimentRead(**experiment_json(e)) for e in store.list_experiments(project_id)]


@router.post(
    "/api/v1/experiments",
    response_model=ExperimentRead,
    status_code=status.HTTP_201_CREATED,
    summary="Create an experiment in a project (by project name or id)",
)
def create_experiment(
    body: ExperimentCreate, response: Response, store: StoreDep, user: CurrentUser
) -> ExperimentRead:
    if (body.project is None) == (body.project_id is None):
        raise InvalidInput("give exactly one of project (a name) or project_id", field="project")
    if body.project_id is not None:
        project_id = store.get_project(body.project_id).id
    elif body.exist_ok:
        exp = store.ensure_experiment(body.project or "", body.name, owner_id=user.id)
        response.status_code = status.HTTP_200_OK
        return ExperimentRead(**experiment_json(exp))
    else:
        try:
            project_id = store.get_project_by_name(body.project or "").id
        except NotFound:
            project_id = store.create_project(body.project or "", owner_id=user.id).id
    try:
        exp = store.create_experiment(project_id, body.name, description=body.description)
    except AlreadyExists:
        if not body.exist_ok:
            raise
        exp = store.get_experiment_by_name(project_id, body.name)
        response.status_code = status.HTTP_200_OK
    return ExperimentRead(**experiment_json(exp))


@router.get("/api/v1/experiments/{experiment_id}", response_model=ExperimentRead, summary="Get an experiment")
def get_experiment(experiment_id: str, store: StoreDep, _: CurrentUser) -> ExperimentRead:
    return ExperimentRead(**experiment_json(store.get_experiment(experiment_id)))


@router.get(
    "/api/v1/experiments/{experiment_id}/keys",
    response_model=ExperimentKeysRead,
    summary="Param keys, metric keys and tags of the experiment's newest runs (for columns and filters)",
)
def experiment_keys(
    experiment_id: str,
    store: StoreDep,
    _: CurrentUser,
    sample: Annotated[int, Query(ge=1, le=10_000, description="How many of the newest runs to read")] = 1000,
) -> ExperimentKeysRead:
    keys = store.experiment_keys(experiment_id, sample=sample)
    return ExperimentKeysRead(
        params=list(keys.params),
        metrics=list(keys.metrics),
        tags=list(keys.tags),
        sampled_runs=keys.sampled_runs,
    )


@router.patch(
    "/api/v1/experiments/{experiment_id}",
    response_model=ExperimentRead,
    summary="Rename or describe an experiment",
)
def update_experiment(
    experiment_id: str, body: ExperimentUpdate, store: StoreDep, _: CurrentUser
) -> ExperimentRead:
    exp = store.update_experiment(experiment_id, name=body.name, description=body.description)
    return ExperimentRead(**experiment_json(exp))
