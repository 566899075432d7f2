"""``POST /api/v1/launch``: submit a command or an sbatch script as tracked runs.

Everything is checked before anything is created (a bad request creates no run, no key, no
file). Then: the output folder (and, for a script, the saved copy of it), the runs (one per
array task, all in one transaction, status ``created``), an API key for the job, the
submission through the server's executor (the key travels in the submitting environment,
never in the script), and per run its Slurm job id, log paths, status ``queued`` and a
``submitted`` event. When the executor refuses the job, the runs end ``failed`` with sbatch's
message in their history, the key is revoked, and the error goes back to the caller (502).
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import getpass
import os
import sys
import time
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request, status
from pydantic import BaseModel, ConfigDict, Field
from starlette.responses import Response

from runyard.client.environment import array_run_id
from runyard.config import Settings
from runyard.entities import Run, RunCreate, RunStatus, RunUpdate, User
from runyard.errors import Forbidden, InvalidInput, NotFound, RunyardError
from runyard.lifecycle import NewEvent
from runyard.server.deps import CurrentUser, ExecutorDep, SettingsDep, StoreDep
from runyard.server.events import publish_runs, publish_safely
from runyard.server.jsonio import JsonResponse
from runyard.server.routes.cluster import snapshot_cache
from runyard.slurm.executor import Executor
from runyard.slurm.launch import LaunchPlan, dependency_string, expand_pattern, parse_after, plan_launch
from runyard.slurm.script import JobReport, Trials, render_sbatch
from runyard.store.base import Store

router = APIRouter(tags=["launch"])

Decide = Callable[[Run], tuple[RunUpdate | None, list[NewEvent]]]

# set by launch for the job; a request's env may not replace them
RESERVED_ENV = frozenset(
    {"RUNYARD_API_KEY", "RUNYARD_URL", "RUNYARD_RUN_ID", "RUNYARD_ARRAY_BASE_ID", "RUNYARD_REQUEUE",
     "RUNYARD_MAX_RESTARTS", "RUNYARD_SWEEP_ID", "TRACKER_API", "TRACKER_API_KEY"}
)  # fmt: skip


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class LaunchResources(_Strict):
    """What the job asks Slurm for. With a script, the values given here win over its lines."""

    partition: str | None = Field(default=None, max_length=200, description="Slurm partition (-p)")
    nodes: int | None = Field(default=None, ge=1, le=100_000, description="Nodes (-N; default 1)")
    ntasks_per_node: int | None = Field(
        default=None, ge=1, le=100_000, description="Tasks per node (default 1)"
    )
    cpus_per_task: int | None = Field(
        default=None, ge=1, le=100_000, description="CPUs per task (-c; default 1)"
    )
    gpus_per_node: int | None = Field(
        default=None, ge=0, le=1024, description="GPUs per node (--gpus-per-node)"
    )
    mem_gb: float | None = Field(
        default=None, gt=0, le=1_000_000, description="Memory per node in GB (--mem)"
    )
    time_limit_min: int | None = Field(default=None, ge=1, le=10_000_000, description="Time limit in minutes")
    account: str | None = Field(default=None, max_length=200, description="Slurm account (-A)")
    qos: str | None = Field(default=None, max_length=200, description="Slurm QOS (-q)")


class LaunchBody(_Strict):
    """Launch ``command`` (an argv list, run as is: no shell) or ``script`` (an sbatch
    script's text: its ``#SBATCH`` lines are kept, it runs as the job's command)."""

    project: str = Field(min_length=1, max_length=200, description="Project name (created if missing)")
    experiment: str = Field(min_length=1, max_length=200, description="Experiment name (created if missing)")
    name: str | None = Field(
        default=None,
        max_length=64,
        description="Job and run name (default: the script's --job-name or the program)",
    )
    command: list[str] | None = Field(default=None, min_length=1, max_length=10_000, description="argv")
    script: str | None = Field(default=None, max_length=1024 * 1024, description="sbatch script text")
    resources: LaunchResources = Field(default_factory=LaunchResources)
    array: str | None = Field(
        default=None, max_length=1000, description="Job array, e.g. 0-9%2 (one run per task)"
    )
    after: list[str] = Field(
        default_factory=list,
        max_length=100,
        description="Start after these: RUN_ID or JOB_ID, optionally :ok (default), :any or :notok",
    )
    requeue: bool | None = Field(
        default=None,
        description="On USR1 before the time limit, requeue and continue as the same run "
        "(default true; with a script, its own --requeue/--no-requeue)",
    )
    max_restarts: int = Field(default=5, ge=0, le=1000, description="Most requeues by the job itself")
    signal_before_end_s: int | None = Field(
        default=None,
        ge=0,
        le=65535,
        description="Seconds before the time limit the job gets USR1 (default 60; 0: none)",
    )
    env: dict[str, str] = Field(
        default_factory=dict, description="Environment of the job (written into the batch script: no secrets)"
    )
    workdir: str = Field(min_length=1, max_length=4096, description="Absolute, existing working directory")
    output_dir: str | None = Field(
        default=None, max_length=4096, description="Where logs go (default <workdir>/runyard-logs; created)"
    )
    config: dict[str, Any] = Field(default_factory=dict, description="Run config (hyperparameters)")
    tags: list[str] = Field(default_factory=list, max_length=100)


class LaunchedRun(BaseModel):
    run_id: str
    slurm_job_id: str
    array_task_id: int | None = None
    stdout: str
    stderr: str


class LaunchOut(BaseModel):
    job_id: str = Field(description="Slurm job id (an array's id)")
    executor: str = Field(description="slurm or local")
    run_ids: list[str]
    array_task_ids: list[int] | None = None
    runs: list[LaunchedRun]
    script_path: str | None = Field(default=None, description="The saved copy of a launched script")


# --------------------------------------------------------------------------- checks


def check_may_launch(settings: Settings, user: User) -> None:
    if settings.launch_allowed == "admins" and not user.is_admin:
        raise Forbidden(
            f"user {user.username!r} may not launch jobs: this server lets only admins launch "
            "(jobs run as the server's Unix user); an admin can set RUNYARD_LAUNCH_ALLOWED=users"
        )


def check_paths(workdir: str, output_dir: str | None) -> tuple[str, str]:
    """The job's working directory (absolute, existing) and its output folder (default
    ``<workdir>/runyard-logs``; relative to the workdir), both normalised."""
    if not workdir.startswith("/"):
        raise InvalidInput(f"workdir must be an absolute path, got {workdir!r}", field="workdir")
    if not os.path.isdir(workdir):
        raise InvalidInput(f"workdir {workdir!r} is not an existing directory on the server", field="workdir")
    output_dir = output_dir or os.path.join(workdir, "runyard-logs")
    if not output_dir.startswith("/"):
        output_dir = os.path.join(workdir, output_dir)
    output_dir = os.path.normpath(output_dir)
    if os.path.exists(output_dir) and not os.path.isdir(output_dir):
        raise InvalidInput(f"output_dir {output_dir!r} exists and is not a directory", field="output_dir")
    return os.path.normpath(workdir), output_dir


def check_env(env: Mapping[str, str]) -> None:
    for key in env:
        if key in RESERVED_ENV:
            raise InvalidInput(
                f"env cannot set {key}: launch sets it for the job (the job gets an API key of its own)",
                field="env",
            )


def _check_tags(tags: list[str]) -> None:
    for i, tag in enumerate(tags):
        text = tag.strip()
        if not text or len(text) > 200 or any(ord(c) < 32 or 127 <= ord(c) < 160 for c in text):
            raise InvalidInput(
                f"tags[{i}] must be 1-200 characters on one line, got {tag!r}", field=f"tags[{i}]"
            )


def _write_files(output_dir: str, script_path: str | None, script: str | None) -> list[Path]:
    """Create the output folder and the script's copy; what was created (to undo on failure)."""
    made: list[Path] = []
    try:
        missing = [p for p in [Path(output_dir), *Path(output_dir).parents] if not p.exists()]
        Path(output_dir).mkdir(parents=True, exist_ok=True)
        made += reversed(missing)
        if script_path is not None:
            Path(script_path).write_text(script or "")
            made.append(Path(script_path))
            os.chmod(script_path, 0o755)
    except OSError as exc:
        _remove(made)
        raise InvalidInput(
            f"cannot write to output_dir {output_dir!r}: {exc.strerror or exc}", field="output_dir"
        ) from None
    return made


def _remove(made: list[Path]) -> None:
    for path in reversed(made):
        with contextlib.suppress(OSError):
            path.rmdir() if path.is_dir() else path.unlink()


def _dependency(store: Store, after: list[str]) -> str | None:
    items: list[tuple[str, str]] = []
    for i, ref in enumerate(after):
        field = f"after[{i}]"
        target, kind, is_job = parse_after(ref, field=field)
        if not is_job:
            try:
                run = store.get_run(target, with_metrics=False)
            except NotFound:
                raise InvalidInput(
                    f"{field}: no run {target!r} (give a run id or a Slurm job id)", field=field
                ) from None
            if not run.slurm_job_id:
                raise InvalidInput(f"{field}: run {target!r} has no Slurm job to wait for", field=field)
            target = run.slurm_job_id
        items.append((kind, target))
    return dependency_string(items)


# --------------------------------------------------------------------------- the launch


def wake_watcher(request: Request) -> None:
    """Ask Slurm about the new jobs now rather than at the next poll."""
    watcher = getattr(request.app.state, "watcher", None)
    if watcher is not None:
        watcher.wake()


def _run_creates(
    body: LaunchBody,
    plan: LaunchPlan,
    ids: list[str],
    experiment_id: str,
    user_id: str,
    script_path: str | None,
) -> list[RunCreate]:
    spec = plan.spec
    details: dict[str, Any] = {
        "requested": plan.requested,
        "array": spec.array,
        "dependency": spec.dependency,
        "requeue": spec.requeue,
        "launched": True,
        "script_path": script_path,
        "workdir": body.workdir,
        "output_dir": spec.output_dir,
    }
    if body.command is not None:
        details["command"] = list(body.command)
    run_name = body.name or plan.job_name
    tags = tuple(dict.fromkeys(body.tags))
    creates = []
    for i, run_id in enumerate(ids):
        task = plan.task_ids[i] if plan.task_ids is not None else None
        creates.append(
            RunCreate(
                experiment_id=experiment_id,
                id=run_id,
                name=run_name if task is None else f"{run_name}[{task}]",
                status=RunStatus.CREATED,
                user_id=user_id,
                config=body.config,
                tags=tags,
                slurm_partition=plan.requested.get("partition"),
                slurm=details,
            )
        )
    return creates


def _paths(plan: LaunchPlan, job_id: str, task: int | None) -> tuple[str, str]:
    common: dict[str, Any] = {
        "job_name": plan.job_name,
        # an array task's own %j is only known when it starts (the job reports its real paths)
        "job_id": job_id if task is None else None,
        "array_job_id": job_id,
        "array_task_id": task,
        "user": getpass.getuser(),
    }
    return expand_pattern(plan.output_pattern, **common), expand_pattern(plan.error_pattern, **common)


def _submitted(run: Run, *, update: RunUpdate, message: str, job: str) -> tuple[RunUpdate, list[NewEvent]]:
    events = [NewEvent(source="user", kind="submitted", message=message, data={"job_id": job})]
    if run.status is RunStatus.CREATED:  # the job may have reported "running" already
        events.append(NewEvent(source="user", kind="status", status="queued", message=message))
        return update, events
    return dataclasses.replace(update, status=None), events


def _refused(_: Run, *, message: str) -> tuple[RunUpdate, list[NewEvent]]:
    update = RunUpdate(status=RunStatus.FAILED, ended_at=time.time())
    return update, [NewEvent(source="user", kind="status", status="failed", message=message)]


def signal_before_end(requested: int | None, executor: Executor) -> int | None:
    """slurmrestd 22.05 refuses ``--signal=B:…``: without it the job gets no early warning (the
    client still checkpoints on SIGTERM at the limit); asking for one there is an error."""
    if getattr(executor, "batch_signals", True):
        return requested
    if requested:
        raise InvalidInput(
            "this server submits through slurmrestd, which cannot send the batch shell an early "
            "signal (--signal=B:…); use signal_before_end_s 0",
            field="signal_before_end_s",
        )
    return 0


@router.post(
    "/api/v1/launch",
    response_model=LaunchOut,
    status_code=status.HTTP_201_CREATED,
    summary="Submit a command or an sbatch script as tracked runs (one per array task)",
    responses={
        400: {"description": "Invalid request: the error names the field (nothing is created)"},
        502: {"description": "The executor (sbatch) refused the job: its message; the runs end failed"},
        503: {"description": "This server launches no jobs (RUNYARD_EXECUTOR=none)"},
    },
)
def launch(
    body: LaunchBody,
    request: Request,
    user: CurrentUser,
    store: StoreDep,
    settings: SettingsDep,
    executor: ExecutorDep,
) -> Response:
    check_may_launch(settings, user)
    # -- check everything; nothing is created before this block ends -------------------
    workdir, output_dir = check_paths(body.workdir, body.output_dir)
    check_env(body.env)
    _check_tags(body.tags)
    dependency = _dependency(store, body.after)
    base_id = uuid.uuid4().hex
    script_path = os.path.join(output_dir, f"script-{base_id[:12]}.sh") if body.script is not None else None
    plan = plan_launch(
        name=body.name,
        command=body.command,
        script=body.script,
        workdir=workdir,
        output_dir=output_dir,
        resources=body.resources.model_dump(),
        array=body.array,
        dependency=dependency,
        requeue=body.requeue,
        signal_before_end_s=signal_before_end(body.signal_before_end_s, executor),
        env=body.env,
        script_path=script_path,
    )
    out = submit_job(
        request,
        store,
        settings,
        executor,
        user,
        plan=plan,
        base_id=base_id,
        workdir=workdir,
        project=body.project,
        experiment=body.experiment,
        creates=lambda ids, experiment_id: _run_creates(body, plan, ids, experiment_id, user.id, script_path),
        output_dir=output_dir,
        script_path=script_path,
        script=body.script,
        max_restarts=body.max_restarts,
    )
    return JsonResponse(out, status_code=status.HTTP_201_CREATED)


def submit_job(
    request: Request,
    store: Store,
    settings: Settings,
    executor: Executor,
    user: User,
    *,
    plan: LaunchPlan,
    base_id: str,
    workdir: str,
    project: str,
    experiment: str,
    creates: Callable[[list[str], str], list[RunCreate]],
    output_dir: str,
    script_path: str | None = None,
    script: str | None = None,
    max_restarts: int = 5,
    trials: Trials | None = None,
    wake: bool = True,
) -> dict[str, Any]:
    """Create the runs of a checked plan (``creates(ids, experiment_id)``), mint the job's key,
    submit, and record the job on each run; the ``LaunchOut`` document. ``trials``: a sweep's
    array, whose tasks run their own argv. ``wake``: wake the watcher now (else the caller
    does, once it has written what it still has to: the watcher's cycle competes for the lock)."""
    tasks = plan.task_ids
    ids = [array_run_id(base_id, task) for task in tasks] if tasks is not None else [base_id]
    url = settings.public_url or str(request.base_url).rstrip("/")
    report = JobReport(
        url=url,
        python=settings.job_python or sys.executable,
        run_id=base_id if plan.task_ids is None else None,
        array_base_id=base_id if plan.task_ids is not None else None,
        max_restarts=max_restarts,
    )
    text = render_sbatch(
        plan.spec, run_env={}, report=report, user_script=plan.header, overrides=plan.overrides, trials=trials
    )

    # -- create: files, runs, key ---------------------------------------------------------
    made = _write_files(output_dir, script_path, script)
    try:
        found = store.ensure_experiment(project, experiment, owner_id=user.id)
        store.create_runs(creates(ids, found.id))
    except BaseException:
        _remove(made)
        raise
    key, secret = store.create_api_key(user.id, f"job {plan.job_name}"[:200])

    # -- submit ---------------------------------------------------------------------------
    try:
        job_id = executor.submit(text, workdir=workdir, env={"RUNYARD_API_KEY": secret, "RUNYARD_URL": url})
    except Exception as exc:
        reason = exc.message if isinstance(exc, RunyardError) else f"internal error ({type(exc).__name__})"
        message = f"submission refused: {reason}"
        store.transition_runs([(run_id, functools.partial(_refused, message=message)) for run_id in ids])
        store.revoke_api_key(key.id)
        if isinstance(exc, RunyardError):  # the caller learns what became of the runs
            exc.message = f"{exc.message} (run{'s' if len(ids) > 1 else ''} {', '.join(ids[:3])}"
            exc.message += f"{', …' if len(ids) > 3 else ''} marked failed)"
            exc.args = (exc.message,)
        raise

    # -- record ---------------------------------------------------------------------------
    launched: list[dict[str, Any]] = []
    decisions: list[tuple[str, Decide]] = []
    for i, run_id in enumerate(ids):
        task = plan.task_ids[i] if plan.task_ids is not None else None
        job = job_id if task is None else f"{job_id}_{task}"
        stdout, stderr = _paths(plan, job_id, task)
        update = RunUpdate(
            status=RunStatus.QUEUED,
            slurm_job_id=job,
            slurm_array_job_id=job_id if task is not None else None,
            slurm_array_task_id=task,
            slurm={"stdout": stdout, "stderr": stderr, "api_key_id": key.id},
        )
        message = f"submitted as {'Slurm' if executor.kind == 'slurm' else executor.kind} job {job}"
        decisions.append((run_id, functools.partial(_submitted, update=update, message=message, job=job)))
        launched.append(
            {"run_id": run_id, "slurm_job_id": job, "array_task_id": task, "stdout": stdout, "stderr": stderr}
        )
    store.transition_runs(decisions)  # one transaction for every task of an array
    publish_safely(publish_runs, request.app.state.events, store, ids)
    snapshot_cache(request).invalidate()  # the queue has a new job: the next cluster view asks Slurm
    if wake:
        wake_watcher(request)
    out = {
        "job_id": job_id,
        "executor": executor.kind,
        "run_ids": ids,
        "array_task_ids": list(plan.task_ids) if plan.task_ids is not None else None,
        "runs": launched,
        "script_path": script_path,
    }
    return out
