"""Schema revisions through Alembic, run programmatically (no alembic.ini at run time).

``SqlStore`` never migrates on its own: the server compares ``schema_state`` with head and
refuses to start on an old schema; ``runyard db upgrade`` calls ``upgrade``.
"""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from runyard.store.base import SchemaState
from runyard.store.sql.engine import Database

__all__ = ["MIGRATIONS_DIR", "head_revision", "schema_state", "upgrade"]

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"


def _config(connection: sa.Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["connection"] = connection
    return config


def head_revision() -> str:
    head = ScriptDirectory.from_config(_config()).get_current_head()
    if head is None:  # pragma: no cover - the package always ships migrations
        raise RuntimeError(f"no migrations found in {MIGRATIONS_DIR}")
    return head


def schema_state(db: Database) -> SchemaState:
    with db.read() as conn:
        current = MigrationContext.configure(conn).get_current_revision()
    return SchemaState(current=current, head=head_revision())


def upgrade(db: Database, revision: str = "head") -> None:
    with db.raw_write() as conn, conn.begin():
        command.upgrade(_config(conn), revision)
    if db.is_sqlite:
        with db.raw_write() as conn:  # planner statistics for the new tables and indexes
            conn.exec_driver_sql("PRAGMA optimize")
