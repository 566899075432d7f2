"""Sweeps and pipelines: their rows, and a sweep's trials (the runs with its ``sweep_id``)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from runyard.entities import Pipeline, PipelineStep, Run, Sweep, SweepJob
from runyard.errors import NotFound
from runyard.store.sql.common import check_name, check_text, dump_json, load_json, new_id, now
from runyard.store.sql.metrics import load_summaries
from runyard.store.sql.runs import run_from_row
from runyard.store.sql.schema import experiments, pipelines, runs, sweeps

__all__ = [
    "add_sweep_job",
    "cancel_sweep",
    "get_pipeline",
    "get_sweep",
    "insert_pipeline",
    "insert_sweep",
    "list_pipelines",
    "list_sweeps",
    "sweep_runs",
]

MAX_SPEC_TEXT = 1024 * 1024


def _experiment_project(conn: Connection, experiment_id: str) -> str:
    row = conn.execute(sa.select(experiments.c.project_id).where(experiments.c.id == experiment_id)).first()
    if row is None:
        raise NotFound(f"experiment {experiment_id!r} not found", field="experiment_id")
    return str(row[0])


def _sweep(m: Mapping[Any, Any]) -> Sweep:
    jobs = tuple(SweepJob(**job) for job in load_json(m["jobs"], []))
    return Sweep(
        id=m["id"],
        experiment_id=m["experiment_id"],
        project_id=m["project_id"],
        name=m["name"],
        method=m["method"],
        created_at=m["created_at"],
        updated_at=m["updated_at"],
        user_id=m["user_id"],
        spec_text=m["spec_text"],
        spec=load_json(m["spec"], {}),
        trial_count=m["trial_count"],
        jobs=jobs,
        cancelled_at=m["cancelled_at"],
    )


def insert_sweep(
    conn: Connection,
    *,
    experiment_id: str,
    user_id: str | None,
    name: str,
    method: str,
    spec_text: str,
    spec: Mapping[str, Any],
    sweep_id: str | None = None,
) -> Sweep:
    at = now()
    values = {
        "id": sweep_id or new_id(),
        "experiment_id": experiment_id,
        "project_id": _experiment_project(conn, experiment_id),
        "user_id": user_id,
        "name": check_name(name, "name"),
        "method": method,
        "created_at": at,
        "updated_at": at,
        "spec_text": check_text(spec_text, "spec", limit=MAX_SPEC_TEXT),
        "spec": dump_json(dict(spec), "spec"),
        "trial_count": 0,
        "jobs": "[]",
        "cancelled_at": None,
    }
    conn.execute(sa.insert(sweeps).values(values))
    return _sweep(values)


def _sweep_row(conn: Connection, sweep_id: str, *, for_update: bool = False) -> Mapping[Any, Any]:
    stmt = sa.select(sweeps).where(sweeps.c.id == sweep_id)
    if for_update:
        stmt = stmt.with_for_update()
    row = conn.execute(stmt).mappings().first()
    if row is None:
        raise NotFound(f"sweep {sweep_id!r} not found", field="sweep_id")
    return row


def get_sweep(conn: Connection, sweep_id: str) -> Sweep:
    return _sweep(_sweep_row(conn, sweep_id))


def add_sweep_job(conn: Connection, sweep_id: str, job: SweepJob) -> Sweep:
    """Record a submitted array job; the sweep's trial count grows to cover its tasks."""
    m = dict(_sweep_row(conn, sweep_id, for_update=True))
    jobs = [*load_json(m["jobs"], []), {f: getattr(job, f) for f in SweepJob.__slots__}]
    m.update(
        jobs=dump_json(jobs, "jobs"),
        trial_count=max(m["trial_count"], job.first + job.count),
        updated_at=now(),
    )
    conn.execute(
        sa.update(sweeps)
        .where(sweeps.c.id == sweep_id)
        .values(jobs=m["jobs"], trial_count=m["trial_count"], updated_at=m["updated_at"])
    )
    return _sweep(m)


def cancel_sweep(conn: Connection, sweep_id: str) -> Sweep:
    m = dict(_sweep_row(conn, sweep_id, for_update=True))
    if m["cancelled_at"] is None:
        m["cancelled_at"] = m["updated_at"] = now()
        conn.execute(
            sa.update(sweeps)
            .where(sweeps.c.id == sweep_id)
            .values(cancelled_at=m["cancelled_at"], updated_at=m["updated_at"])
        )
    return _sweep(m)


def list_sweeps(conn: Connection, experiment_id: str, *, limit: int = 200) -> list[Sweep]:
    stmt = (
        sa.select(sweeps)
        .where(sweeps.c.experiment_id == experiment_id)
        .order_by(sweeps.c.created_at.desc(), sweeps.c.id)
        .limit(limit)
    )
    return [_sweep(m) for m in conn.execute(stmt).mappings()]


def sweep_runs(conn: Connection, sweep_id: str, metric_keys: Sequence[str] = ()) -> list[Run]:
    """A sweep's trials in trial order, with the summaries of ``metric_keys`` only."""
    rows = conn.execute(
        sa.select(runs)
        .where(runs.c.sweep_id == sweep_id)
        .order_by(runs.c.slurm_array_task_id, runs.c.created_at, runs.c.id)
    ).mappings()
    found = list(rows)
    summaries = load_summaries(conn, [r["id"] for r in found], list(metric_keys))
    return [run_from_row(r, summaries[r["id"]]) for r in found]


# --------------------------------------------------------------------------- pipelines


def _pipeline(m: Mapping[Any, Any]) -> Pipeline:
    steps = tuple(
        PipelineStep(
            name=s["name"],
            run_id=s["run_id"],
            job_id=s.get("job_id"),
            after=tuple((a[0], a[1]) for a in s.get("after", [])),
            command=tuple(s.get("command", [])),
        )
        for s in load_json(m["steps"], [])
    )
    return Pipeline(
        id=m["id"],
        experiment_id=m["experiment_id"],
        project_id=m["project_id"],
        name=m["name"],
        created_at=m["created_at"],
        user_id=m["user_id"],
        spec_text=m["spec_text"],
        steps=steps,
    )


def insert_pipeline(
    conn: Connection,
    *,
    pipeline_id: str,
    experiment_id: str,
    user_id: str | None,
    name: str,
    spec_text: str,
    steps: Sequence[PipelineStep],
) -> Pipeline:
    values = {
        "id": pipeline_id,
        "experiment_id": experiment_id,
        "project_id": _experiment_project(conn, experiment_id),
        "user_id": user_id,
        "name": check_name(name, "name"),
        "created_at": now(),
        "spec_text": check_text(spec_text, "spec", limit=MAX_SPEC_TEXT),
        "steps": dump_json(
            [
                {
                    "name": s.name,
                    "run_id": s.run_id,
                    "job_id": s.job_id,
                    "after": [list(a) for a in s.after],
                    "command": list(s.command),
                }
                for s in steps
            ],
            "steps",
        ),
    }
    conn.execute(sa.insert(pipelines).values(values))
    return _pipeline(values)


def get_pipeline(conn: Connection, pipeline_id: str) -> Pipeline:
    row = conn.execute(sa.select(pipelines).where(pipelines.c.id == pipeline_id)).mappings().first()
    if row is None:
        raise NotFound(f"pipeline {pipeline_id!r} not found", field="pipeline_id")
    return _pipeline(row)


def list_pipelines(conn: Connection, experiment_id: str, *, limit: int = 200) -> list[Pipeline]:
    stmt = (
        sa.select(pipelines)
        .where(pipelines.c.experiment_id == experiment_id)
        .order_by(pipelines.c.created_at.desc(), pipelines.c.id)
        .limit(limit)
    )
    return [_pipeline(m) for m in conn.execute(stmt).mappings()]
