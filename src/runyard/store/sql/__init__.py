"""The SQL implementation of ``Store`` (SQLite and PostgreSQL). Server-side only: imports
SQLAlchemy, Alembic and numpy."""

from runyard.store.sql.store import SqlStore

__all__ = ["SqlStore"]
