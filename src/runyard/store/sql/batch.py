"""``apply_batch``: one client batch, atomically and exactly once (see docs/protocol.md).

The batch's mark ``(run_id, writer, seq)`` is inserted first, in the same transaction as
everything the batch changes: a replay finds the mark and changes nothing, and a batch that
fails rolls its mark back with the rest, so it can be sent again. On PostgreSQL a concurrent
replay of the same batch waits on the mark's unique key until the first commits, then sees
it; writes to one run are serialised by a lock on the run's row.
"""

from __future__ import annotations

import dataclasses
import re

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from runyard.entities import Batch, BatchResult, RunCreate, RunStatus
from runyard.errors import InvalidInput, NotFound
from runyard.lifecycle import filter_client_update
from runyard.store.sql.artifacts import insert_artifact
from runyard.store.sql.common import check_int, now
from runyard.store.sql.console import check_log_lines, insert_log_lines
from runyard.store.sql.engine import Database
from runyard.store.sql.events import insert_events
from runyard.store.sql.metrics import append_points, check_points
from runyard.store.sql.projects import ensure_experiment
from runyard.store.sql.runs import check_run_id, insert_run, lock_run, run_from_row, touch_run, update_run
from runyard.store.sql.schema import applied_batches, runs

__all__ = ["apply_batch", "log_metrics"]

WRITER_RE = re.compile(r"^[A-Za-z0-9_-]{8,64}$")
# A batch that carries ``run`` for an existing run in one of these states moves it to running.
_WAITING = (RunStatus.CREATED.value, RunStatus.QUEUED.value, RunStatus.REQUEUED.value)


def _run_to_create(db: Database, conn: Connection, run_id: str, batch: Batch) -> RunCreate:
    create = batch.run
    assert create is not None
    if create.id is not None and create.id != run_id:
        raise InvalidInput(f"run.id {create.id!r} differs from the batch's run id {run_id!r}", field="run.id")
    experiment_id = create.experiment_id
    if not experiment_id:
        if batch.project is None or batch.experiment is None:
            raise InvalidInput(
                "a batch that creates a run needs run.experiment_id or project and experiment names",
                field="experiment",
            )
        experiment_id = ensure_experiment(db, conn, batch.project, batch.experiment, create.user_id).id
    return dataclasses.replace(create, id=run_id, experiment_id=experiment_id)


def apply_batch(db: Database, conn: Connection, run_id: str, batch: Batch, chunk_size: int) -> BatchResult:
    check_run_id(run_id, "run_id")
    if not isinstance(batch.writer, str) or not WRITER_RE.match(batch.writer):
        raise InvalidInput("writer must be 8-64 characters of letters, digits, '_' and '-'", field="writer")
    seq = check_int(batch.seq, "seq", minimum=1)
    points = check_points(batch.metrics)  # pure checks first: nothing is written for bad input
    check_log_lines(batch.logs)
    mark = {"run_id": run_id, "writer": batch.writer, "seq": seq, "applied_at": now()}
    if not db.insert_new(conn, applied_batches, ("run_id", "writer", "seq"), mark):
        return BatchResult(run_id=run_id, seq=seq, duplicate=True, points=0)
    row = lock_run(conn, run_id)
    if row is None:
        if batch.run is None:
            raise NotFound(
                f"run {run_id!r} not found (the first batch of a writer must carry 'run')",
                field="run_id",
            )
        insert_run(db, conn, _run_to_create(db, conn, run_id, batch), if_missing=True)
        row = lock_run(conn, run_id)
        assert row is not None
    elif batch.run is not None and row["status"] in _WAITING:
        at = now()
        values = {"status": RunStatus.RUNNING.value, "updated_at": at}
        if row["started_at"] is None:
            values["started_at"] = at
        conn.execute(sa.update(runs).where(runs.c.id == run_id).values(**values))
        row = lock_run(conn, run_id)
        assert row is not None
    stored = append_points(conn, run_id, points, chunk_size)
    if batch.update is not None:
        source = "job" if batch.writer.startswith("job-") else "client"
        update, events = filter_client_update(run_from_row(row), batch.update, source)
        update_run(conn, run_id, update, row=row)
        insert_events(conn, run_id, events)
    elif stored or batch.logs:
        touch_run(conn, run_id)
    for i, artifact in enumerate(batch.artifacts):
        insert_artifact(conn, run_id, artifact, field=f"artifacts[{i}]")
    lines = insert_log_lines(conn, run_id, batch.logs)
    return BatchResult(run_id=run_id, seq=seq, duplicate=False, points=stored, lines=lines)


def log_metrics(conn: Connection, run_id: str, metrics: object, chunk_size: int) -> int:
    points = check_points(metrics)
    if lock_run(conn, run_id) is None:
        raise NotFound(f"run {run_id!r} not found", field="run_id")
    stored = append_points(conn, run_id, points, chunk_size)
    if stored:
        touch_run(conn, run_id)
    return stored
