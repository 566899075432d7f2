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
