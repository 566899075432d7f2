"""Alembic environment: migrates the connection handed over in ``config.attributes``
(how Runyard runs migrations), or the database named by ``sqlalchemy.url`` (developer CLI)."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import context

from runyard.config import env
from runyard.store.sql.schema import metadata

config = context.config


def _run(connection: sa.Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=connection.dialect.name == "sqlite",  # SQLite cannot ALTER much
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    url = config.get_main_option("sqlalchemy.url") or env("RUNYARD_DATABASE_URL")
    if not url:
        raise RuntimeError("set RUNYARD_DATABASE_URL to the database to compare with or migrate")
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    with engine.begin() as conn:
        _run(conn)


if context.is_offline_mode():
    raise RuntimeError("offline (--sql) migrations are not supported")
run_migrations_online()
