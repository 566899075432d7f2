"""Sweeps (one job array, one run per trial) and pipelines (jobs chained with --dependency).

``POST /api/v1/sweeps`` takes the YAML itself: the server parses and checks it (an error
names the line, the key and the rule, and nothing is created), expands the trials, creates
one run per trial with its params as config, and submits ONE array (``%K`` for the
concurrency) whose tasks each run their own argv, written into the script by task id. An
adaptive sweep's tasks ask ``POST /api/v1/sweeps/{id}/trials/{run_id}/ask`` for their params
(Optuna on the server; stateless, see ``runyard.sweeps.optimizer``).

``POST /api/v1/pipelines`` checks every step first, then submits them in dependency order,
each step's job waiting on the earlier steps' jobs (``afterok``/``afterany``/``afternotok``,
with ``--kill-on-invalid-dep=yes`` so a step that can never run is cancelled by Slurm rather
than left pending).
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import threading
import time
import uuid
from typing import Any

from fastapi import APIRouter, Query, Request, status
from pydantic import BaseModel, ConfigDict, Field
from starlette.responses import Response

from runyard.config import Settings
from runyard.entities import (
    ACTIVE_STATUSES,
    PipelineStep,
    Run,
    RunCreate,
    RunStatus,
    RunUpdate,
    Sweep,
    SweepJob,
    User,
)
from runyard.errors import Forbidden, InvalidInput
from runyard.server.deps import CurrentUser, ExecutorDep, SettingsDep, StoreDep
from runyard.server.events import publish_runs, publish_safely
from runyard.server.jsonio import JsonResponse
from runyard.server.routes.launch import (
    check_env,
    check_may_launch,
    check_paths,
    signal_before_end,
    submit_job,
    wake_watcher,
)
from runyard.server.sweeps import (
    ImportanceCache,
    SpecCache,
    param_names,
    pipeline_json,
    sweep_json,
    trial_index,
    trial_records,
)
from runyard.slurm.executor import Executor
from runyard.slurm.launch import LaunchPlan, dependency_string, plan_launch
from runyard.slurm.script import Trials
from runyard.store.base import Store
from runyard.sweeps.model import PipelineSpec, SweepSpec
from runyard.sweeps.optimizer import suggest
from runyard.sweeps.spec import expand, parse_pipeline, parse_sweep, trial_argv, trial_count

router = APIRouter(tags=["sweeps"])

MAX_SPEC_BYTES = 1024 * 1024
_DEP_KINDS = {"ok": "afterok", "any": "afterany", "notok": "afternotok"}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class SpecIn(_Strict):
    spec: str = Field(max_length=MAX_SPEC_BYTES, description="The YAML text (see docs/sweeps.md)")
    source: str = Field(
        default="sweep.yaml", min_length=1, max_length=500, description="File name used in error messages"
    )
    base_dir: str | None = Field(
        default=None,
        max_length=4096,
        description="Absolute folder a relative workdir is resolved against (the spec file's folder)",
    )
    project: str | None = Field(
        default=None, min_length=1, max_length=200, description="Overrides the spec's"
    )
    experiment: str | None = Field(
        default=None, min_length=1, max_length=200, description="Overrides the spec's (default: its name)"
    )
    dry_run: bool = Field(default=False, description="Check and expand only: nothing is created or submitted")


class ExtendIn(_Strict):
    count: int = Field(ge=1, le=10_000, description="How many more trials (random and adaptive sweeps)")


# --------------------------------------------------------------------------- shared checks


def _owner_or_admin(owner_id: str | None, user: User, what: str) -> None:
    if owner_id != user.id and not user.is_admin:
        raise Forbidden(f"only the owner of {what} or an admin may do this")


@dataclasses.dataclass(frozen=True)
class _Where:
    project: str
    experiment: str
    workdir: str
    output_dir: str


def _where(body: SpecIn, spec: SweepSpec | PipelineSpec) -> _Where:
    """Project, experiment (default: the spec's name), workdir (relative: to ``base_dir``, the
    spec file's folder) and output folder of a spec, with the request's overrides."""
    project = body.project or spec.project
    if not project:
        raise InvalidInput("no project: give project in the spec or --project", field="project")
    folder = spec.workdir or "."
    if not folder.startswith("/"):
        if not body.base_dir or not body.base_dir.startswith("/"):
            raise InvalidInput(
                f"workdir {folder!r} is relative: give base_dir (the spec file's folder, absolute)",
                field="base_dir",
            )
        folder = os.path.join(body.base_dir, folder)
    workdir, output_dir = check_paths(os.path.normpath(folder), spec.output_dir)
    return _Where(project, body.experiment or spec.experiment or spec.name, workdir, output_dir)


# --------------------------------------------------------------------------- sweeps


def _specs(request: Request) -> SpecCache:
    cache: SpecCache = request.app.state.sweep_specs
    return cache


def _importance(request: Request) -> ImportanceCache:
    cache: ImportanceCache = request.app.state.sweep_importance
    return cache


def _detail(request: Request, store: Store, sweep: Sweep, *, detail: bool = True) -> dict[str, Any]:
    spec = _specs(request).get(sweep)
    metric = [spec.metric.name] if spec.metric is not None else []
    runs = store.sweep_runs(sweep.id, metric)
    return sweep_json(sweep, spec, runs, detail=detail, importance_cache=_importance(request))


@dataclasses.dataclass(frozen=True)
class _Trials:
    """Trials ``first``..``first+count-1``, checked and ready to submit as one array."""

    first: int
    params: list[dict[str, Any]]
    plan: LaunchPlan
    argv: dict[int, list[str]] | None  # None: adaptive (each task asks)


def _plan_trials(
    spec: SweepSpec, where: _Where, executor: Executor, *, sweep_id: str, first: int, count: int
) -> _Trials:
    """Check and plan the array (every bad value raises here, before anything is created)."""
    adaptive = spec.method == "adaptive"
    params = [{} for _ in range(count)] if adaptive else expand(spec, first, count)
    last = first + count - 1
    array = f"{first}-{last}" if count > 1 else str(first)
    if spec.concurrency is not None:
        array += f"%{spec.concurrency}"
    env = dict(spec.env)
    if adaptive:
        env["RUNYARD_SWEEP_ID"] = sweep_id
    plan = plan_launch(
        name=spec.name,
        command=list(spec.command),
        script=None,
        workdir=where.workdir,
        output_dir=where.output_dir,
        resources=dict(spec.resources),
        array=array,
        requeue=spec.requeue,
        signal_before_end_s=signal_before_end(None, executor),
        env=env,
    )
    argv = None if adaptive else {first + i: trial_argv(spec, p) for i, p in enumerate(params)}
    return _Trials(first, params, plan, argv)


def _submit_trials(
    request: Request,
    store: Store,
    settings: Settings,
    executor: Executor,
    user: User,
    *,
    sweep: Sweep,
    spec: SweepSpec,
    where: _Where,
    trials: _Trials,
) -> dict[str, Any]:
    """Submit the planned trials as one array job and record it on the sweep."""
    first, params, plan, argv = trials.first, trials.params, trials.plan, trials.argv
    count = len(params)
    adaptive = argv is None
    base_id = uuid.uuid4().hex

    def creates(ids: list[str], experiment_id: str) -> list[RunCreate]:
        out = []
        for i, run_id in enumerate(ids):
            index = first + i
            details = {
                "requested": plan.requested,
                "array": plan.spec.array,
                "requeue": plan.spec.requeue,
                "launched": True,
                "workdir": where.workdir,
                "output_dir": where.output_dir,
                "command": argv[index] if argv is not None else list(spec.command),
                "sweep": {"id": sweep.id, "index": index},
            }
            out.append(
                RunCreate(
                    experiment_id=experiment_id,
                    id=run_id,
                    name=f"{spec.name}[{index}]",
                    status=RunStatus.CREATED,
                    user_id=user.id,
                    config=params[i],
                    tags=tuple(dict.fromkeys(("sweep", *spec.tags))),
                    slurm_partition=plan.requested.get("partition"),
                    slurm_array_task_id=index,
                    slurm=details,
                    sweep_id=sweep.id,
                )
            )
        return out

    out = submit_job(
        request,
        store,
        settings,
        executor,
        user,
        plan=plan,
        base_id=base_id,
        workdir=where.workdir,
        project=where.project,
        experiment=where.experiment,
        creates=creates,
        output_dir=where.output_dir,
        max_restarts=spec.max_restarts if spec.max_restarts is not None else 5,
        trials=Trials(argv=argv, ask=adaptive),
        wake=False,
    )
    submitted = store.add_sweep_job(sweep.id, SweepJob(out["job_id"], base_id, first, count, time.time()))
    wake_watcher(request)
    out["sweep"] = submitted
    return out


def _submitted_json(request: Request, sweep: Sweep, out: dict[str, Any]) -> dict[str, Any]:
    """The answer to a submission: the sweep's summary as it stands (the new trials queued),
    without reading a thousand runs back."""
    spec = _specs(request).get(sweep)
    summary = sweep_json(sweep, spec, [])
    summary["state"] = "running"
    summary["counts"]["queued"] = len(out["run_ids"])
    summary.update(job_id=out["job_id"], run_ids=out["run_ids"])
    return summary


@router.post(
    "/api/v1/sweeps",
    status_code=status.HTTP_201_CREATED,
    summary="Check a sweep spec (YAML), create one run per trial and submit them as one job array",
    responses={
        200: {"description": "dry_run: the checked spec and its first trials; nothing created"},
        400: {"description": "Invalid spec: the message names the line, the key and the rule"},
        502: {"description": "sbatch refused the array: its message; the trials end failed"},
        503: {"description": "This server launches no jobs (RUNYARD_EXECUTOR=none)"},
    },
)
def create_sweep(
    body: SpecIn,
    request: Request,
    user: CurrentUser,
    store: StoreDep,
    settings: SettingsDep,
    executor: ExecutorDep,
) -> Response:
    check_may_launch(settings, user)
    spec = parse_sweep(body.spec, source=body.source)
    check_env(spec.env)
    where = _where(body, spec)
    count = trial_count(spec) or 0
    if body.dry_run:
        shown = [{} for _ in range(min(count, 20))] if spec.method == "adaptive" else expand(spec, 0, 20)
        return JsonResponse(
            {
                "name": spec.name,
                "method": spec.method,
                "trial_count": count,
                "project": where.project,
                "experiment": where.experiment,
                "workdir": where.workdir,
                "output_dir": where.output_dir,
                "trials": [
                    {"index": i, "params": p, "argv": trial_argv(spec, p) if p else None}
                    for i, p in enumerate(shown)
                ],
            }
        )
    sweep_id = uuid.uuid4().hex
    trials = _plan_trials(spec, where, executor, sweep_id=sweep_id, first=0, count=count)
    experiment = store.ensure_experiment(where.project, where.experiment, owner_id=user.id)
    sweep = store.create_sweep(
        sweep_id=sweep_id,
        experiment_id=experiment.id,
        user_id=user.id,
        name=spec.name,
        method=spec.method,
        spec_text=body.spec,
        spec={"source": body.source, **dataclasses.asdict(where)},
    )
    out = _submit_trials(
        request, store, settings, executor, user, sweep=sweep, spec=spec, where=where, trials=trials
    )
    return JsonResponse(_submitted_json(request, out["sweep"], out), status_code=status.HTTP_201_CREATED)


@router.get("/api/v1/sweeps", summary="An experiment's sweeps, newest first, with their progress")
def list_sweeps(
    request: Request,
    store: StoreDep,
    _: CurrentUser,
    experiment_id: str = Query(min_length=1, max_length=64),
) -> Response:
    store.get_experiment(experiment_id)
    sweeps = [_detail(request, store, s, detail=False) for s in store.list_sweeps(experiment_id)]
    return JsonResponse({"sweeps": sweeps})


@router.get(
    "/api/v1/sweeps/{sweep_id}",
    summary="A sweep: progress, best trial, every trial with params and value, parameter importance",
)
def get_sweep(sweep_id: str, request: Request, store: StoreDep, _: CurrentUser) -> Response:
    return JsonResponse(_detail(request, store, store.get_sweep(sweep_id)))


@router.post("/api/v1/sweeps/{sweep_id}/cancel", summary="Cancel every job of the sweep (owner or admin)")
def cancel_sweep(
    sweep_id: str, request: Request, store: StoreDep, user: CurrentUser, executor: ExecutorDep
) -> Response:
    sweep = store.get_sweep(sweep_id)
    _owner_or_admin(sweep.user_id, user, f"sweep {sweep_id!r}")
    sweep = store.cancel_sweep(sweep_id)
    errors = []
    for job in sweep.jobs:
        try:
            executor.cancel(job.job_id)
        except Exception as exc:  # already ended: nothing to cancel
            errors.append(f"{job.job_id}: {exc}")
    wake_watcher(request)
    out = _detail(request, store, sweep, detail=False)
    out["cancel_errors"] = errors
    return JsonResponse(out)


@router.post(
    "/api/v1/sweeps/{sweep_id}/extend",
    status_code=status.HTTP_201_CREATED,
    summary="Submit more trials of a random or adaptive sweep as one more array job (owner or admin)",
)
def extend_sweep(
    sweep_id: str,
    body: ExtendIn,
    request: Request,
    store: StoreDep,
    settings: SettingsDep,
    user: CurrentUser,
    executor: ExecutorDep,
) -> Response:
    check_may_launch(settings, user)
    sweep = store.get_sweep(sweep_id)
    _owner_or_admin(sweep.user_id, user, f"sweep {sweep_id!r}")
    spec = _specs(request).get(sweep)
    if spec.method not in ("random", "adaptive"):
        raise InvalidInput(
            f"a {spec.method} sweep already has all its trials; extend random or adaptive sweeps",
            field="count",
        )
    if sweep.cancelled_at is not None:
        raise InvalidInput(f"sweep {sweep_id!r} was cancelled; start a new one", field="sweep_id")
    saved = sweep.spec
    where = _Where(
        str(saved["project"]), str(saved["experiment"]), str(saved["workdir"]), str(saved["output_dir"])
    )
    trials = _plan_trials(spec, where, executor, sweep_id=sweep.id, first=sweep.trial_count, count=body.count)
    out = _submit_trials(
        request, store, settings, executor, user, sweep=sweep, spec=spec, where=where, trials=trials
    )
    detail = _detail(request, store, out["sweep"], detail=False)  # earlier trials: read their state
    detail.update(job_id=out["job_id"], run_ids=out["run_ids"])
    return JsonResponse(detail, status_code=status.HTTP_201_CREATED)


_ASK_LOCKS: dict[str, threading.Lock] = {}
_ASK_LOCKS_GUARD = threading.Lock()


def _ask_lock(sweep_id: str) -> threading.Lock:
    with _ASK_LOCKS_GUARD:
        if len(_ASK_LOCKS) > 10_000:
            _ASK_LOCKS.clear()
        return _ASK_LOCKS.setdefault(sweep_id, threading.Lock())


@router.post(
    "/api/v1/sweeps/{sweep_id}/trials/{run_id}/ask",
    summary="An adaptive sweep's task asks for its trial: params (recorded as the run's config) and argv",
)
def ask_trial(sweep_id: str, run_id: str, request: Request, store: StoreDep, user: CurrentUser) -> Response:
    sweep = store.get_sweep(sweep_id)
    _owner_or_admin(sweep.user_id, user, f"sweep {sweep_id!r}")
    spec = _specs(request).get(sweep)
    if spec.method != "adaptive":
        raise InvalidInput(f"sweep {sweep_id!r} is a {spec.method} sweep: its trials know their params")
    names = param_names(spec)
    with _ask_lock(sweep_id):  # one decision at a time per sweep (this process)
        run = store.get_run(run_id, with_metrics=False)
        if run.sweep_id != sweep_id:
            raise InvalidInput(f"run {run_id!r} is not a trial of sweep {sweep_id!r}", field="run_id")
        if all(name in run.config for name in names):  # asked before (a requeued task)
            params = {name: run.config[name] for name in names}
        else:
            metric = [spec.metric.name] if spec.metric is not None else []
            history = trial_records(spec, store.sweep_runs(sweep_id, metric))
            params = suggest(spec, history, trial_index(run))
            argv = trial_argv(spec, params)
            run = store.update_run(run_id, RunUpdate(config=params, slurm={"command": argv}))
            publish_safely(publish_runs, request.app.state.events, store, [run])
    return JsonResponse({"run_id": run_id, "params": params, "argv": trial_argv(spec, params)})


# --------------------------------------------------------------------------- pipelines


def _pipeline_runs(store: Store, run_ids: list[str]) -> dict[str, Run]:
    return {run.id: run for run in store.get_runs(run_ids)}


def _plans(spec: PipelineSpec, where: _Where, executor: Executor) -> list[Any]:
    """Every step's plan, checked before anything is submitted (dependencies filled in later)."""
    plans = []
    for step in spec.steps:
        env = {**spec.env, **step.env}
        check_env(env)
        plan = plan_launch(
            name=f"{spec.name}.{step.name}"[:64],
            command=list(step.command),
            script=None,
            workdir=where.workdir,
            output_dir=where.output_dir,
            resources={**spec.resources, **step.resources},
            signal_before_end_s=signal_before_end(None, executor),
            env=env,
        )
        plans.append(plan)
    return plans


@router.post(
    "/api/v1/pipelines",
    status_code=status.HTTP_201_CREATED,
    summary="Check a pipeline spec (YAML) and submit its steps as jobs chained with --dependency",
    responses={
        400: {"description": "Invalid spec: the message names the line, the key and the rule"},
        502: {"description": "sbatch refused a step: its message; the steps submitted before are cancelled"},
    },
)
def create_pipeline(
    body: SpecIn,
    request: Request,
    user: CurrentUser,
    store: StoreDep,
    settings: SettingsDep,
    executor: ExecutorDep,
) -> Response:
    check_may_launch(settings, user)
    spec = parse_pipeline(body.spec, source=body.source)
    where = _where(body, spec)
    plans = _plans(spec, where, executor)
    if body.dry_run:
        return JsonResponse(
            {
                "name": spec.name,
                "project": where.project,
                "experiment": where.experiment,
                "steps": [
                    {"name": s.name, "command": list(s.command), "after": [list(a) for a in s.after]}
                    for s in spec.steps
                ],
            }
        )
    pipeline_id = uuid.uuid4().hex
    jobs: dict[str, str] = {}
    steps: list[PipelineStep] = []
    for step, plan in zip(spec.steps, plans, strict=True):
        dependency = dependency_string([(_DEP_KINDS[when], jobs[dep]) for dep, when in step.after])
        job_spec = dataclasses.replace(plan.spec, dependency=dependency, kill_on_invalid_dep=bool(dependency))
        plan = dataclasses.replace(plan, spec=job_spec)
        run_id = uuid.uuid4().hex

        def creates(
            ids: list[str], experiment_id: str, step: Any = step, plan: Any = plan
        ) -> list[RunCreate]:
            details = {
                "requested": plan.requested,
                "dependency": plan.spec.dependency,
                "requeue": plan.spec.requeue,
                "launched": True,
                "workdir": where.workdir,
                "output_dir": where.output_dir,
                "command": list(step.command),
                "pipeline": {"id": pipeline_id, "name": spec.name, "step": step.name},
            }
            return [
                RunCreate(
                    experiment_id=experiment_id,
                    id=ids[0],
                    name=f"{spec.name}.{step.name}",
                    status=RunStatus.CREATED,
                    user_id=user.id,
                    tags=tuple(dict.fromkeys(("pipeline", *spec.tags))),
                    slurm_partition=plan.requested.get("partition"),
                    slurm=details,
                )
            ]

        try:
            out = submit_job(
                request,
                store,
                settings,
                executor,
                user,
                plan=plan,
                base_id=run_id,
                workdir=where.workdir,
                project=where.project,
                experiment=where.experiment,
                creates=creates,
                output_dir=where.output_dir,
            )
        except Exception:
            for job in jobs.values():  # the steps submitted so far would wait for nothing
                with contextlib.suppress(Exception):
                    executor.cancel(job)
            raise
        jobs[step.name] = out["job_id"]
        steps.append(PipelineStep(step.name, run_id, out["job_id"], tuple(step.after), tuple(step.command)))
    experiment = store.ensure_experiment(where.project, where.experiment, owner_id=user.id)
    pipeline = store.create_pipeline(
        pipeline_id=pipeline_id,
        experiment_id=experiment.id,
        user_id=user.id,
        name=spec.name,
        spec_text=body.spec,
        steps=steps,
    )
    runs = _pipeline_runs(store, [s.run_id for s in steps])
    return JsonResponse(pipeline_json(pipeline, runs, detail=True), status_code=status.HTTP_201_CREATED)


@router.get("/api/v1/pipelines", summary="An experiment's pipelines, newest first, with their state")
def list_pipelines(
    store: StoreDep, _: CurrentUser, experiment_id: str = Query(min_length=1, max_length=64)
) -> Response:
    store.get_experiment(experiment_id)
    out = []
    for pipeline in store.list_pipelines(experiment_id):
        runs = _pipeline_runs(store, [s.run_id for s in pipeline.steps])
        out.append(pipeline_json(pipeline, runs))
    return JsonResponse({"pipelines": out})


@router.get(
    "/api/v1/pipelines/{pipeline_id}",
    summary="A pipeline: each step's state, and why a step will never run",
)
def get_pipeline(pipeline_id: str, store: StoreDep, _: CurrentUser) -> Response:
    pipeline = store.get_pipeline(pipeline_id)
    runs = _pipeline_runs(store, [s.run_id for s in pipeline.steps])
    return JsonResponse(pipeline_json(pipeline, runs, detail=True))


@router.post("/api/v1/pipelines/{pipeline_id}/cancel", summary="Cancel every step's job (owner or admin)")
def cancel_pipeline(
    pipeline_id: str, request: Request, store: StoreDep, user: CurrentUser, executor: ExecutorDep
) -> Response:
    pipeline = store.get_pipeline(pipeline_id)
    _owner_or_admin(pipeline.user_id, user, f"pipeline {pipeline_id!r}")
    runs = _pipeline_runs(store, [s.run_id for s in pipeline.steps])
    for step in pipeline.steps:
        run = runs.get(step.run_id)
        if step.job_id and run is not None and run.status in ACTIVE_STATUSES:
            with contextlib.suppress(Exception):
                executor.cancel(step.job_id)
    wake_watcher(request)
    return JsonResponse(pipeline_json(pipeline, runs))
