"""Run history (``run_events``), state transitions under the run's lock, and the watcher's
queries: which runs still need Slurm's word, and marking them "state unknown"."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from runyard.entities import Run, RunEvent, RunUpdate
from runyard.errors import InvalidInput
from runyard.lifecycle import NewEvent
from runyard.store.sql.common import check_int, dump_json, load_json, now
from runyard.store.sql.runs import get_run_row, run_from_row, update_run, update_runs, update_values
from runyard.store.sql.schema import run_events, runs

__all__ = [
    "event_rows",
    "insert_events",
    "list_events",
    "mark_state_unknown",
    "slurm_tracked",
    "transition",
    "transition_many",
]

_SOURCES = frozenset({"client", "job", "slurm", "epilog", "user", "server"})

Decide = Callable[[Run], tuple[RunUpdate | None, list[NewEvent]]]


def insert_events(
    conn: Connection, run_id: str, events: Iterable[NewEvent], *, at: float | None = None
) -> None:
    rows = event_rows(run_id, events, at=at)
    if rows:
        conn.execute(sa.insert(run_events), rows)


def event_rows(run_id: str, events: Iterable[NewEvent], *, at: float | None = None) -> list[dict[str, Any]]:
    rows = []
    for event in events:
        if event.source not in _SOURCES:
            raise InvalidInput(f"event source must be one of {sorted(_SOURCES)}", field="source")
        rows.append(
            {
                "run_id": run_id,
                "time": now() if at is None else at,
                "source": event.source,
                "kind": event.kind[:32],
                "status": event.status,
                "message": event.message[:10_000],
                "data": dump_json(event.data, "data"),
            }
        )
    return rows


def list_events(conn: Connection, run_id: str, after_id: int, limit: int) -> list[RunEvent]:
    get_run_row(conn, run_id)  # NotFound for an unknown run
    check_int(after_id, "after_id", minimum=0)
    if check_int(limit, "limit", minimum=1) > 10_000:
        raise InvalidInput("limit must be at most 10000", field="limit")
    stmt = (
        sa.select(run_events)
        .where(run_events.c.run_id == run_id, run_events.c.id > after_id)
        .order_by(run_events.c.id)
        .limit(limit)
    )
    return [
        RunEvent(
            id=m["id"],
            run_id=m["run_id"],
            time=m["time"],
            source=m["source"],
            kind=m["kind"],
            status=m["status"],
            message=m["message"],
            data=load_json(m["data"], {}),
        )
        for m in conn.execute(stmt).mappings()
    ]


def transition(
    conn: Connection, run_id: str, decide: Decide, *, reread: bool = True
) -> tuple[Run | None, bool]:
    """Apply ``decide(run)`` to the run under its row lock; (the run after — None without
    ``reread`` — and whether it changed)."""
    row = get_run_row(conn, run_id, for_update=True)
    update, events = decide(run_from_row(row))
    if update is None and not events:
        return run_from_row(row), False
    if update is not None:
        update_run(conn, run_id, update, row=row)
    insert_events(conn, run_id, events)
    return (run_from_row(get_run_row(conn, run_id)) if reread else None), True


def transition_many(conn: Connection, decisions: Sequence[tuple[str, Decide]]) -> int:
    """``transition`` for many runs in one transaction, in bulk: their rows read (and locked)
    a few hundred at a time, the updates written with one executemany per set of columns and
    the events with one insert. A run that does not exist is skipped. How many changed."""
    changed = 0
    for start in range(0, len(decisions), 500):
        part = decisions[start : start + 500]
        ids = sorted({run_id for run_id, _ in part})  # one lock order: no deadlock between writers
        stmt = sa.select(runs).where(runs.c.id.in_(ids)).order_by(runs.c.id).with_for_update()
        rows: dict[str, Mapping[Any, Any]] = {m["id"]: m for m in conn.execute(stmt).mappings()}
        updates: list[tuple[str, dict[str, Any]]] = []
        new_events: list[dict[str, Any]] = []
        for run_id, decide in part:
            row = rows.get(run_id)
            if row is None:
                continue
            update, events = decide(run_from_row(row))
            if update is None and not events:
                continue
            if update is not None:
                values = update_values(conn, run_id, update, row)
                updates.append((run_id, values))
                rows[run_id] = {**row, **values}  # a second decision for it sees the first
            new_events += event_rows(run_id, events)
            changed += 1
        update_runs(conn, updates)
        if new_events:
            conn.execute(sa.insert(run_events), new_events)
    return changed


def slurm_tracked(conn: Connection, limit: int | None) -> list[Run]:
    """Runs with a Slurm job whose final state and accounting are not recorded yet."""
    stmt = (
        sa.select(runs)
        .where(runs.c.slurm_done == sa.false(), runs.c.slurm_job_id.is_not(None))
        .order_by(runs.c.created_at)
    )
    if limit is not None:
        stmt = stmt.limit(limit)
    return [run_from_row(m) for m in conn.execute(stmt).mappings()]


def mark_state_unknown(conn: Connection, run_ids: Sequence[str], since: float) -> int:
    """Note that Slurm could not be asked about these runs (keeps the first time it failed)."""
    total = 0
    for start in range(0, len(run_ids), 500):
        ids: list[Any] = list(run_ids[start : start + 500])
        result = conn.execute(
            sa.update(runs)
            .where(runs.c.id.in_(ids), runs.c.state_unknown_since.is_(None))
            .values(state_unknown_since=since)
        )
        total += result.rowcount or 0
    return total
