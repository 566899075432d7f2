"""Runs: create, read, partial update; their tags and flattened config params.

The config is stored twice on purpose: as the JSON document the client sent (``runs.config``)
and flattened into ``run_params`` (``{"optimizer": {"lr": 0.1}}`` becomes ``optimizer.lr``),
one indexed row per leaf with a numeric and a text column, which is what search filters and
sorts on. Tags likewise: the JSON list keeps display order, ``run_tags`` is the index.
Both copies are written in the same transaction.
"""

from __future__ import annotations

import json
import math
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import fields
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, RowMapping

from runyard.entities import (
    CLEARABLE_RUN_FIELDS,
    RUN_ID_RE,
    TERMINAL_STATUSES,
    MetricSummary,
    Run,
    RunCreate,
    RunStatus,
    RunUpdate,
)
from runyard.errors import AlreadyExists, InvalidInput, NotFound
from runyard.store.sql.common import (
    check_int,
    check_name,
    check_optional_text,
    check_text,
    check_time,
    chunked,
    dump_json,
    load_json,
    new_id,
    now,
)
from runyard.store.sql.engine import Database
from runyard.store.sql.schema import experiments, run_params, run_tags, runs, users

__all__ = [
    "PARAM_TEXT_LIMIT",
    "check_run_id",
    "check_tags",
    "find_by_slurm_job",
    "flatten_config",
    "get_run_row",
    "insert_run",
    "lock_run",
    "param_number",
    "param_text",
    "run_from_row",
    "touch_run",
    "update_run",
]

PARAM_KEY_LIMIT = 250
PARAM_TEXT_LIMIT = 500  # longer text values are cut for the index (PostgreSQL btree rows)
_NUMBER_RE = re.compile(r"^\s*[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?\s*$")


# -- params ----------------------------------------------------------------------------
def flatten_config(config: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested dicts become dotted keys; every other value (lists too) is a leaf."""
    flat: dict[str, Any] = {}
    for key, value in config.items():
        full = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            flat.update(flatten_config(value, full + "."))
        else:
            flat[full] = value
    return flat


def param_number(value: Any) -> float | None:
    """The numeric form of a param value: numbers and numeric strings; never bools."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float) or (isinstance(value, str) and _NUMBER_RE.match(value)):
        number = float(value)
    else:
        return None
    return number if math.isfinite(number) else None


def param_text(value: Any) -> str | None:
    """The text form of a param value, as compared by ``params.x = text`` filters."""
    if value is None:
        return None
    if isinstance(value, str):
        text = value
    elif isinstance(value, bool):
        text = "true" if value else "false"
    else:
        text = json.dumps(value, ensure_ascii=False, allow_nan=True, default=str)
    return text[:PARAM_TEXT_LIMIT]


def _param_rows(run_id: str, flat: Mapping[str, Any]) -> list[dict[str, Any]]:
    return [
        {"run_id": run_id, "key": key, "num_value": param_number(v), "text_value": param_text(v)}
        for key, v in flat.items()
        if len(key) <= PARAM_KEY_LIMIT  # longer keys stay in the config, just not indexed
    ]


def _write_params(conn: Connection, run_id: str, old: Mapping[str, Any], new: Mapping[str, Any]) -> None:
    old_flat, new_flat = flatten_config(old), flatten_config(new)
    gone = [k for k in old_flat if k not in new_flat]
    changed = {
        k: v
        for k, v in new_flat.items()
        if k not in old_flat or type(old_flat[k]) is not type(v) or _differs(old_flat[k], v)
    }
    if old_flat:  # a new run has nothing to delete
        for keys in chunked(gone + list(changed)):
            conn.execute(
                sa.delete(run_params).where(run_params.c.run_id == run_id, run_params.c.key.in_(keys))
            )
    rows = _param_rows(run_id, changed)
    if rows:
        conn.execute(sa.insert(run_params), rows)


def _differs(a: Any, b: Any) -> bool:
    try:
        return bool(a != b)
    except Exception:  # exotic objects: rewrite rather than guess
        return True


# -- tags ------------------------------------------------------------------------------
def check_tags(tags: Iterable[Any], field: str = "tags") -> list[str]:
    if isinstance(tags, str):
        raise InvalidInput(f"{field} must be a list of strings, not one string", field=field)
    seen: dict[str, None] = {}
    for tag in tags:
        seen[check_name(tag, field)] = None
    return list(seen)


def _write_tags(conn: Connection, run_id: str, old: list[str], new: list[str]) -> None:
    gone = [t for t in old if t not in new]
    added = [t for t in new if t not in old]
    for batch in chunked(gone):
        conn.execute(sa.delete(run_tags).where(run_tags.c.run_id == run_id, run_tags.c.tag.in_(batch)))
    if added:
        conn.execute(sa.insert(run_tags), [{"run_id": run_id, "tag": t} for t in added])


# -- reading -------------------------------------------------------------------------------
def run_from_row(m: Mapping[Any, Any], metrics: dict[str, MetricSummary] | None = None) -> Run:
    return Run(
        id=m["id"],
        experiment_id=m["experiment_id"],
        project_id=m["project_id"],
        name=m["name"],
        status=RunStatus(m["status"]),
        created_at=m["created_at"],
        updated_at=m["updated_at"],
        started_at=m["started_at"],
        ended_at=m["ended_at"],
        user_id=m["user_id"],
        host=m["host"],
        config=load_json(m["config"], {}),
        summary=load_json(m["summary"], {}),
        tags=tuple(load_json(m["tags"], [])),
        notes=m["notes"],
        exit_code=m["exit_code"],
        gpu_type=m["gpu_type"],
        slurm_job_id=m["slurm_job_id"],
        slurm_array_job_id=m["slurm_array_job_id"],
        slurm_array_task_id=m["slurm_array_task_id"],
        slurm_nodes=m["slurm_nodes"],
        slurm_partition=m["slurm_partition"],
        slurm_cluster=m["slurm_cluster"],
        restart_count=m["restart_count"],
        slurm_state=m["slurm_state"],
        pending_reason=m["pending_reason"],
        start_estimate=m["start_estimate"],
        state_unknown_since=m["state_unknown_since"],
        slurm_done=bool(m["slurm_done"]),
        slurm=load_json(m["slurm"], {}),
        metrics=metrics or {},
        sweep_id=m["sweep_id"],
    )


def get_runs(conn: Connection, run_ids: Sequence[str]) -> list[Run]:
    found: dict[str, Run] = {}
    for part in chunked(list(dict.fromkeys(run_ids))):
        for m in conn.execute(sa.select(runs).where(runs.c.id.in_(part))).mappings():
            found[m["id"]] = run_from_row(m)
    return [found[run_id] for run_id in run_ids if run_id in found]


def get_run_row(conn: Connection, run_id: str, *, for_update: bool = False) -> RowMapping:
    stmt = sa.select(runs).where(runs.c.id == run_id)
    if for_update:
        stmt = stmt.with_for_update()
    row = conn.execute(stmt).mappings().first()
    if row is None:
        raise NotFound(f"run {run_id!r} not found", field="run_id")
    return row


_LOCK_RUN = sa.select(runs).where(runs.c.id == sa.bindparam("run_id")).with_for_update()
_TOUCH_RUN = sa.update(runs).where(runs.c.id == sa.bindparam("run_id")).values(updated_at=sa.bindparam("at"))


def lock_run(conn: Connection, run_id: str) -> RowMapping | None:
    """The run's row, locked until the transaction ends (PostgreSQL; SQLite has one writer)."""
    return conn.execute(_LOCK_RUN, {"run_id": run_id}).mappings().first()


def find_by_slurm_job(conn: Connection, slurm_job_id: str) -> list[RowMapping]:
    """Runs of a Slurm job id; ``123_4`` also finds task 4 of array job 123."""
    match = runs.c.slurm_job_id == slurm_job_id
    array_id, _, task = slurm_job_id.partition("_")
    if array_id and task.isdigit():
        match = sa.or_(
            match,
            sa.and_(runs.c.slurm_array_job_id == array_id, runs.c.slurm_array_task_id == int(task)),
        )
    stmt = sa.select(runs).where(match).order_by(runs.c.created_at, runs.c.id)
    return list(conn.execute(stmt).mappings())


# -- writing -------------------------------------------------------------------------------
def _status(value: Any, field: str = "status") -> RunStatus:
    try:
        return RunStatus(value)
    except ValueError:
        valid = ", ".join(s.value for s in RunStatus)
        raise InvalidInput(f"{field} must be one of: {valid}", field=field) from None


def _check_user(db: Database, conn: Connection, user_id: str | None) -> None:
    """Users are never deleted, so a user seen once need not be looked up again."""
    if user_id is None or user_id in db.known_users:
        return
    if conn.execute(sa.select(users.c.id).where(users.c.id == user_id)).first() is None:
        raise NotFound(f"user {user_id!r} not found", field="user_id")
    db.known_users.add(user_id)


def check_run_id(run_id: Any, field: str = "id") -> str:
    if not isinstance(run_id, str) or not RUN_ID_RE.match(run_id):
        raise InvalidInput(
            f"{field} must be 1-64 characters of letters, digits, '_', '.' and '-', "
            "starting with a letter or digit",
            field=field,
        )
    return run_id


def insert_run(
    db: Database, conn: Connection, create: RunCreate, *, if_missing: bool = False
) -> tuple[str, dict[str, Any] | None]:
    """Insert a run (validated) with its params and tags; returns (run id, the row's values),
    the values None when nothing was inserted.

    With ``if_missing`` an existing id is not an error: nothing is written and ``inserted``
    is False (safe against a concurrent insert of the same id on PostgreSQL).
    """
    run_id, values, tags = run_values(db, conn, create)
    if not db.insert_new(conn, runs, ("id",), values):
        if if_missing:
            return run_id, None
        raise AlreadyExists(f"run {run_id!r} already exists", field="id")
    _write_params(conn, run_id, {}, create.config)
    _write_tags(conn, run_id, [], tags)
    return run_id, values


def insert_runs(db: Database, conn: Connection, creates: Sequence[RunCreate]) -> list[dict[str, Any]]:
    """Insert many new runs (a sweep's trials) with a few statements: all or none; an id that
    exists already, or twice in ``creates``, raises ``AlreadyExists``."""
    experiments_seen: dict[str, tuple[str, str]] = {}
    made = [run_values(db, conn, create, experiments_seen) for create in creates]
    ids = [run_id for run_id, _, _ in made]
    twice = next((run_id for run_id, n in Counter(ids).items() if n > 1), None)
    if twice is not None:
        raise AlreadyExists(f"run {twice!r} is given twice", field="id")
    for part in chunked(ids):
        taken = conn.execute(sa.select(runs.c.id).where(runs.c.id.in_(part)).limit(1)).first()
        if taken is not None:
            raise AlreadyExists(f"run {taken[0]!r} already exists", field="id")
    if made:
        conn.execute(sa.insert(runs), [values for _, values, _ in made])
    params = [row for create, (run_id, _, _) in zip(creates, made, strict=True)
              for row in _param_rows(run_id, flatten_config(create.config))]  # fmt: skip
    if params:
        conn.execute(sa.insert(run_params), params)
    tag_rows = [{"run_id": run_id, "tag": tag} for run_id, _, tags in made for tag in tags]
    if tag_rows:
        conn.execute(sa.insert(run_tags), tag_rows)
    return [values for _, values, _ in made]


def run_values(
    db: Database,
    conn: Connection,
    create: RunCreate,
    experiments_seen: dict[str, tuple[str, str]] | None = None,
) -> tuple[str, dict[str, Any], list[str]]:
    """A new run's checked row values and tags (``experiments_seen`` caches the lookups)."""
    run_id = new_id() if create.id is None else check_run_id(create.id)
    exp = (experiments_seen or {}).get(create.experiment_id)
    if exp is None:
        found = conn.execute(
            sa.select(experiments.c.id, experiments.c.project_id).where(
                experiments.c.id == create.experiment_id
            )
        ).first()
        if found is None:
            raise NotFound(f"experiment {create.experiment_id!r} not found", field="experiment_id")
        exp = (str(found[0]), str(found[1]))
        if experiments_seen is not None:
            experiments_seen[create.experiment_id] = exp
    status = _status(create.status)
    if not isinstance(create.config, Mapping):
        raise InvalidInput("config must be an object", field="config")
    tags = check_tags(create.tags)
    _check_user(db, conn, create.user_id)
    at = now()
    started_at = None if create.started_at is None else check_time(create.started_at, "started_at")
    if started_at is None and status is RunStatus.RUNNING:
        started_at = at
    values = {
        "id": run_id,
        "experiment_id": exp[0],
        "project_id": exp[1],
        "name": check_name(create.name, "name", allow_empty=True),
        "status": status.value,
        "created_at": at,
        "updated_at": at,
        "started_at": started_at,
        "ended_at": at if status in TERMINAL_STATUSES else None,
        "user_id": create.user_id,
        "host": check_optional_text(create.host, "host"),
        "config": dump_json(dict(create.config), "config"),
        "summary": "{}",
        "tags": dump_json(tags, "tags"),
        "notes": check_text(create.notes, "notes"),
        "exit_code": None,
        "gpu_type": check_optional_text(create.gpu_type, "gpu_type"),
        "slurm_job_id": check_optional_text(create.slurm_job_id, "slurm_job_id", limit=64),
        "slurm_array_job_id": check_optional_text(create.slurm_array_job_id, "slurm_array_job_id", limit=64),
        "slurm_array_task_id": None
        if create.slurm_array_task_id is None
        else check_int(create.slurm_array_task_id, "slurm_array_task_id", minimum=0),
        "slurm_nodes": check_optional_text(create.slurm_nodes, "slurm_nodes", limit=100_000),
        "slurm_partition": check_optional_text(create.slurm_partition, "slurm_partition"),
        "slurm_cluster": check_optional_text(create.slurm_cluster, "slurm_cluster"),
        "restart_count": 0,
        "slurm_state": None,
        "pending_reason": None,
        "start_estimate": None,
        "state_unknown_since": None,
        "slurm_done": False,
        "slurm": dump_json(_slurm_details(create.slurm, "slurm"), "slurm"),
        "sweep_id": check_optional_text(create.sweep_id, "sweep_id", limit=32),
    }
    return run_id, values, tags


def update_run(conn: Connection, run_id: str, update: RunUpdate, *, row: RowMapping | None = None) -> None:
    """Apply a partial update (see ``RunUpdate``) to a run, locking its row."""
    if row is None:
        row = get_run_row(conn, run_id, for_update=True)
    values = update_values(conn, run_id, update, row)
    conn.execute(sa.update(runs).where(runs.c.id == run_id).values(**values))


_UPDATE_BY_ID: dict[frozenset[str], Any] = {}


def update_runs(conn: Connection, changes: Sequence[tuple[str, dict[str, Any]]]) -> None:
    """Write ``update_values`` results of many runs: one executemany per set of columns."""
    groups: dict[frozenset[str], list[dict[str, Any]]] = {}
    for run_id, values in changes:
        groups.setdefault(frozenset(values), []).append({"_run_id": run_id, **values})
    for columns, rows in groups.items():
        stmt = _UPDATE_BY_ID.get(columns)
        if stmt is None:
            stmt = (
                sa.update(runs)
                .where(runs.c.id == sa.bindparam("_run_id"))
                .values({name: sa.bindparam(name) for name in sorted(columns)})
            )
            _UPDATE_BY_ID[columns] = stmt
        conn.execute(stmt, rows)


def update_values(conn: Connection, run_id: str, update: RunUpdate, row: Mapping[Any, Any]) -> dict[str, Any]:
    """The checked column values of a partial update of the run in ``row`` (its params and tags
    tables are written here; the runs row is the caller's to write)."""
    values: dict[str, Any] = {}
    simple = {f.name: getattr(update, f.name) for f in fields(update)}
    if simple["name"] is not None:
        values["name"] = check_name(simple["name"], "name", allow_empty=True)
    if simple["status"] is not None:
        values["status"] = _status(simple["status"]).value
    for name in ("started_at", "ended_at"):
        if simple[name] is not None:
            values[name] = check_time(simple[name], name)
    if simple["exit_code"] is not None:
        values["exit_code"] = check_int(simple["exit_code"], "exit_code")
    if simple["restart_count"] is not None:
        values["restart_count"] = check_int(simple["restart_count"], "restart_count", minimum=0)
    if simple["notes"] is not None:
        values["notes"] = check_text(simple["notes"], "notes")
    if simple["slurm_array_task_id"] is not None:
        values["slurm_array_task_id"] = check_int(
            simple["slurm_array_task_id"], "slurm_array_task_id", minimum=0
        )
    for name in ("start_estimate", "state_unknown_since"):
        if simple[name] is not None:
            values[name] = check_time(simple[name], name)
    if simple["slurm_done"] is not None:
        values["slurm_done"] = bool(simple["slurm_done"])
    limits = {
        "host": 1000,
        "gpu_type": 1000,
        "slurm_job_id": 64,
        "slurm_array_job_id": 64,
        "slurm_nodes": 100_000,
        "slurm_partition": 1000,
        "slurm_state": 32,
        "pending_reason": 1000,
    }
    for name, limit in limits.items():
        if simple[name] is not None:
            values[name] = check_optional_text(simple[name], name, limit=limit)
    if update.config is not None:
        if not isinstance(update.config, Mapping):
            raise InvalidInput("config must be an object", field="config")
        old_config: dict[str, Any] = load_json(row["config"], {})
        merged = {**old_config, **update.config}
        values["config"] = dump_json(merged, "config")
        _write_params(conn, run_id, old_config, merged)
    if update.summary is not None:
        if not isinstance(update.summary, Mapping):
            raise InvalidInput("summary must be an object", field="summary")
        values["summary"] = dump_json({**load_json(row["summary"], {}), **update.summary}, "summary")
    if update.slurm is not None:
        details = _slurm_details(update.slurm, "slurm")
        values["slurm"] = dump_json({**load_json(row["slurm"], {}), **details}, "slurm")
    for name in update.clear:
        if name not in CLEARABLE_RUN_FIELDS:
            raise InvalidInput(
                f"clear may name only {sorted(CLEARABLE_RUN_FIELDS)}, got {name!r}", field="clear"
            )
        values[name] = None
    if update.tags is not None or update.tags_add is not None:
        old_tags: list[str] = load_json(row["tags"], [])
        tags = check_tags(update.tags) if update.tags is not None else list(old_tags)
        for tag in check_tags(update.tags_add or (), "tags_add"):
            if tag not in tags:
                tags.append(tag)
        values["tags"] = dump_json(tags, "tags")
        _write_tags(conn, run_id, old_tags, tags)
    at = now()
    status = values.get("status", row["status"])
    if status == RunStatus.RUNNING.value and values.get("started_at", row["started_at"]) is None:
        values["started_at"] = at
    if status in TERMINAL_STATUSES and values.get("ended_at", row["ended_at"]) is None:
        values["ended_at"] = at
    values["updated_at"] = at
    return values


def _slurm_details(value: Any, field: str) -> dict[str, Any]:
    if not isinstance(value, Mapping):
        raise InvalidInput(f"{field} must be an object", field=field)
    return dict(value)


def touch_run(conn: Connection, run_id: str) -> None:
    """Record activity on a run (its ``updated_at``)."""
    conn.execute(_TOUCH_RUN, {"run_id": run_id, "at": now()})
