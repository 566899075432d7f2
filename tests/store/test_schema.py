from __future__ import annotations

import subprocess
import sys

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from runyard.errors import InvalidInput, SchemaOutdated
from runyard.store import open_store
from runyard.store.sql import SqlStore
from runyard.store.sql.migrate import head_revision
from runyard.store.sql.schema import metadata


def test_schema_state_and_upgrade(empty_url: str) -> None:
    store = SqlStore(empty_url)
    try:
        state = store.schema_state()
        assert state.current is None and state.head == head_revision() and not state.up_to_date
        with pytest.raises(SchemaOutdated) as err:  # never created behind the server's back
            store.list_projects()
        assert "runyard db upgrade" in err.value.message
        store.upgrade()
        assert store.schema_state().up_to_date
        store.upgrade()  # idempotent
        assert store.schema_state().current == head_revision()
        assert store.list_projects() == []
    finally:
        store.close()


def test_older_revision_is_not_up_to_date(store: SqlStore) -> None:
    with store.database.write() as conn:
        conn.execute(sa.text("UPDATE alembic_version SET version_num = '0000_older'"))
    state = store.schema_state()
    assert state.current == "0000_older" and not state.up_to_date


def test_schema_module_matches_migrations(store: SqlStore) -> None:
    """schema.py and the migrations describe the same tables, columns, indexes and keys."""
    with store.database.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), metadata)
    assert diff == []


def test_in_memory_sqlite() -> None:
    store = SqlStore("sqlite://")
    store.upgrade()
    assert store.ensure_experiment("p", "e").name == "e"
    assert [p.name for p in store.list_projects()] == ["p"]
    store.close()


def test_open_store_urls(tmp_path: object) -> None:
    store = open_store(f"sqlite:///{tmp_path}/y.db")
    assert isinstance(store, SqlStore)
    store.close()
    assert SqlStore("postgresql://u@localhost/db").database.url.drivername == "postgresql+psycopg"
    for bad in ("mysql://u@h/db", "not a url"):
        with pytest.raises(InvalidInput) as err:
            open_store(bad)
        assert err.value.field == "database_url"


def test_importing_the_store_package_stays_light() -> None:
    code = (
        "import sys, runyard.store, runyard.store.base; "
        "heavy = [m for m in ('sqlalchemy', 'numpy', 'alembic') if m in sys.modules]; "
        "assert not heavy, heavy"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_upgrade_keeps_the_data_of_an_older_schema(empty_url: str) -> None:
    """A database made by an earlier Runyard, with runs and metrics in it, upgrades in place."""
    store = SqlStore(empty_url)
    try:
        migrate_to(store, "0001_initial")
        with store.database.write() as conn:
            conn.execute(sa.text("INSERT INTO users VALUES ('u1', 'ann', NULL, true, 1.0)"))
            conn.execute(sa.text("INSERT INTO projects VALUES ('p1', 'proj', '', 1.0, 'u1')"))
            conn.execute(sa.text("INSERT INTO experiments VALUES ('e1', 'p1', 'exp', '', 1.0, 1.0)"))
            conn.execute(
                sa.text(
                    "INSERT INTO runs (id, experiment_id, project_id, name, status, created_at, updated_at, "
                    "user_id, config, summary, tags, notes, slurm_job_id, restart_count) VALUES "
                    "('r1', 'e1', 'p1', 'old', 'finished', 1.0, 2.0, 'u1', '{\"lr\": 0.1}', '{}', '[]', '', "
                    "'42', 0)"
                )
            )
            conn.execute(sa.text("INSERT INTO run_tags VALUES ('r1', 'keep')"))
        store.upgrade()
        assert store.schema_state().up_to_date
        run = store.get_run("r1")
        assert (run.name, run.status.value, run.config, run.slurm_job_id) == (
            "old",
            "finished",
            {"lr": 0.1},
            "42",
        )
        assert run.slurm == {} and run.slurm_done is False and run.pending_reason is None
        assert store.list_run_events("r1") == []
    finally:
        store.close()


def migrate_to(store: SqlStore, revision: str) -> None:
    from runyard.store.sql.migrate import upgrade

    upgrade(store.database, revision)
