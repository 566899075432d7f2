"""SQLite specifics: one writer, read-only readers, checkpoints off the commit path."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from runyard.entities import Batch, RunCreate, RunQuery
from runyard.store.sql import SqlStore
from tests.store.helpers import cols


@pytest.fixture
def sqlite_store(tmp_path: Path) -> Iterator[SqlStore]:
    store = SqlStore(f"sqlite:///{tmp_path / 'runyard.db'}")
    store.upgrade()
    yield store
    store.close()


def _wait_for(condition: Callable[[], bool], timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "condition not reached before the deadline"
        time.sleep(0.01)


def test_pragmas(sqlite_store: SqlStore) -> None:
    for transaction in (sqlite_store.database.write, sqlite_store.database.read):
        with transaction() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
            assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 1  # NORMAL
            assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() > 0
    with sqlite_store.database.write() as conn:  # commits never checkpoint ...
        assert conn.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar() == 0
    with sqlite_store.database.read() as conn, pytest.raises(sa.exc.OperationalError):
        conn.exec_driver_sql("DELETE FROM users")  # ... and readers cannot write


def test_checkpoints_run_in_the_background(sqlite_store: SqlStore, tmp_path: Path) -> None:
    checkpointer = sqlite_store.database.checkpointer
    assert checkpointer is not None
    checkpointer.limit_bytes = 1  # every checkpoint also truncates the WAL
    before = checkpointer.completed
    exp = sqlite_store.ensure_experiment("p", "e")
    run = sqlite_store.create_run(RunCreate(experiment_id=exp.id))
    sqlite_store.log_metrics(run.id, {"x": cols(range(5000), [1.0] * 5000)})
    _wait_for(lambda: checkpointer.completed > before)
    _wait_for(lambda: os.path.getsize(tmp_path / "runyard.db-wal") == 0)
    assert sqlite_store.metric_series(run.id, "x").total == 5000


def test_close_is_prompt(tmp_path: Path) -> None:
    store = SqlStore(f"sqlite:///{tmp_path / 'x.db'}")
    store.upgrade()
    store.ensure_experiment("p", "e")
    start = time.monotonic()
    store.close()
    assert time.monotonic() - start < 5
    assert store.database.checkpointer is not None


def test_reads_proceed_while_a_write_is_open(sqlite_store: SqlStore) -> None:
    """WAL: a reader is not blocked by the writer's open transaction."""
    exp = sqlite_store.ensure_experiment("p", "e")
    inside, release = threading.Event(), threading.Event()

    def slow_write() -> None:
        with sqlite_store.database.write() as conn:
            conn.execute(sa.text("UPDATE experiments SET description = 'busy'"))
            inside.set()
            release.wait(10)

    writer = threading.Thread(target=slow_write)
    writer.start()
    try:
        assert inside.wait(10)
        assert sqlite_store.get_experiment(exp.id).description == ""  # the committed snapshot
    finally:
        release.set()
        writer.join()
    assert sqlite_store.get_experiment(exp.id).description == "busy"


def test_many_threads_many_writes_no_lock_errors(sqlite_store: SqlStore) -> None:
    exp = sqlite_store.ensure_experiment("p", "e")
    run = sqlite_store.create_run(RunCreate(experiment_id=exp.id))
    errors: list[BaseException] = []

    def work(t: int) -> None:
        try:
            for seq in range(1, 31):
                sqlite_store.apply_batch(
                    run.id, Batch(writer=f"thread-{t:04d}", seq=seq, metrics={"x": cols([seq], [t])})
                )
                sqlite_store.create_run(RunCreate(experiment_id=exp.id))
                sqlite_store.search_runs(RunQuery(experiment_id=exp.id, limit=5))  # reads interleave
                sqlite_store.get_experiment(exp.id)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(t,)) for t in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert sqlite_store.metric_summaries(run.id)[0].count == 240
    assert sqlite_store.get_experiment(exp.id).run_count == 241
