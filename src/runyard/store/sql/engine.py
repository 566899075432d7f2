"""Engines and transactions: the one place that knows how SQLite and PostgreSQL differ in
connection handling.

SQLite has one writer. Every write transaction runs on a single dedicated connection, behind
a process-wide lock, and starts with ``BEGIN IMMEDIATE``; so writers queue on the lock instead
of failing with "database is locked". Reads use a separate pool of read-only connections
that WAL lets run alongside the writer. ``busy_timeout`` still covers other processes (the
CLI) touching the same file. An in-memory database has only one connection, so its reads
take the lock too.

PostgreSQL uses an ordinary pool; writers that could race take row locks or use
``ON CONFLICT`` (see ``Database.insert_new``).

Driver errors are translated at this boundary: a missing table becomes ``SchemaOutdated``
(the fix is ``runyard db upgrade``), a lost connection ``StoreUnavailable``, a unique key
violated by a concurrent request ``AlreadyExists``.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.pool import StaticPool

from runyard.errors import AlreadyExists, InvalidInput, SchemaOutdated, StoreUnavailable
from runyard.store.sql.checkpoint import Checkpointer

__all__ = ["Database", "driver_rows"]

_SQLITE_PRAGMAS = (
    "PRAGMA journal_mode=WAL",
    "PRAGMA synchronous=NORMAL",  # WAL + NORMAL: durable across process crashes, fsync on checkpoint
    "PRAGMA busy_timeout=30000",
    "PRAGMA foreign_keys=ON",
    "PRAGMA cache_size=-65536",  # 64 MiB page cache per connection
    "PRAGMA mmap_size=1073741824",  # read blobs from the page cache without copies
    "PRAGMA temp_store=MEMORY",
)
_UPGRADE_HINT = "run `runyard db upgrade` to create or migrate the database schema"


class Database:
    """Engines for one database URL, and the transactions every store operation runs in."""

    def __init__(self, url: str, *, read_pool_size: int = 8) -> None:
        try:
            parsed = sa.make_url(url)
        except sa.exc.ArgumentError as exc:
            raise InvalidInput(f"not a database URL: {url!r}", field="database_url") from exc
        backend = parsed.get_backend_name()
        if backend == "postgresql" and parsed.drivername in ("postgresql", "postgres"):
            parsed = parsed.set(drivername="postgresql+psycopg")
        if backend not in ("sqlite", "postgresql"):
            raise InvalidInput(
                f"unsupported database {parsed.drivername!r}: use sqlite:///PATH or "
                "postgresql+psycopg://USER@HOST/DB",
                field="database_url",
            )
        self.url = parsed
        self.is_sqlite = backend == "sqlite"
        self._lock = threading.Lock()
        self._inserts: dict[tuple[str, tuple[str, ...]], Any] = {}
        self.known_users: set[str] = set()  # ids seen in the database (users are never deleted)
        self._memory = self.is_sqlite and parsed.database in (None, "", ":memory:")
        self.checkpointer: Checkpointer | None = None
        if not self.is_sqlite:
            # prepare_threshold=None: no server-side prepared statements. After five runs
            # PostgreSQL may switch those to a generic plan, which for a skewed column
            # (one experiment holding most runs) picked a 100x slower search plan.
            self._writer = sa.create_engine(
                parsed,
                pool_size=10,
                max_overflow=20,
                pool_pre_ping=True,
                connect_args={"prepare_threshold": None},
            )
            self._reader = self._writer
        elif self._memory:
            self._writer = _sqlite_engine(parsed, begin="BEGIN IMMEDIATE", poolclass=StaticPool)
            self._reader = self._writer
        else:
            # commits never checkpoint: a background thread does (see checkpoint.py)
            self._writer = _sqlite_engine(parsed, begin="BEGIN IMMEDIATE", pool_size=1, writer=True)
            assert parsed.database is not None
            self.checkpointer = Checkpointer(parsed.database, self._lock)
            self._reader = _sqlite_engine(parsed, begin="BEGIN", pool_size=read_pool_size, query_only=True)

    @property
    def engine(self) -> Engine:
        """The engine that may write (migrations use it)."""
        return self._writer

    def insert_new(
        self, conn: Connection, table: sa.Table, conflict: tuple[str, ...], values: dict[str, Any]
    ) -> bool:
        """Insert a row unless one with the same ``conflict`` key exists; True if inserted.

        ``INSERT … ON CONFLICT DO NOTHING RETURNING``: race-safe on PostgreSQL, where a
        concurrent insert of the same key waits for the other transaction and then does
        nothing. (``rowcount`` is not reliable for INSERT on every driver; RETURNING is.)
        The statement is built once per table: building SQLAlchemy statements costs more
        than running small ones.
        """
        stmt = self._inserts.get((table.name, conflict))
        if stmt is None:
            insert = sqlite.insert(table) if self.is_sqlite else postgresql.insert(table)
            stmt = insert.on_conflict_do_nothing(index_elements=list(conflict)).returning(
                table.c[conflict[0]]
            )
            self._inserts[(table.name, conflict)] = stmt
        return conn.execute(stmt, values).first() is not None

    @contextmanager
    def write(self) -> Iterator[Connection]:
        """One write transaction: committed on success, rolled back on any exception."""
        with _translated():
            if self.is_sqlite:
                with self._lock, self._writer.begin() as conn:
                    yield conn
                if self.checkpointer is not None:
                    self.checkpointer.poke()
            else:
                with self._writer.begin() as conn:
                    yield conn

    @contextmanager
    def read(self) -> Iterator[Connection]:
        """One read transaction: a consistent snapshot for several queries."""
        with _translated():
            if self._memory:
                with self._lock, self._reader.begin() as conn:
                    yield conn
            else:
                with self._reader.begin() as conn:
                    yield conn

    @contextmanager
    def raw_write(self) -> Iterator[Connection]:
        """The writer connection without an open transaction (for Alembic, which manages its
        own), still behind the writer lock."""
        with _translated(), self._lock, self._writer.connect() as conn:
            yield conn

    def dispose(self) -> None:
        if self.checkpointer is not None:
            self.checkpointer.stop()
        self._writer.dispose()
        if self._reader is not self._writer:
            self._reader.dispose()


def driver_rows(conn: Connection, sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
    """Rows of a hand-written query (``?`` placeholders) run by the driver itself, inside
    ``conn``'s transaction.

    For the queries that move metric blobs: SQLAlchemy's row handling is not needed there,
    and on PostgreSQL a binary cursor returns bytea as raw bytes instead of hex text
    (reading 100,000 points: 23 ms in text, 8 ms in binary).
    """
    driver = conn.connection.driver_connection
    if conn.dialect.name == "postgresql":
        with driver.cursor(binary=True) as cur:  # type: ignore[union-attr]
            cur.execute(sql.replace("?", "%s"), params)
            rows: list[tuple[Any, ...]] = cur.fetchall()
            return rows
    cursor = driver.execute(sql, params)  # type: ignore[union-attr]
    try:
        return list(cursor.fetchall())
    finally:
        cursor.close()


def _sqlite_engine(
    url: sa.URL,
    *,
    begin: str,
    pool_size: int = 1,
    poolclass: type[StaticPool] | None = None,
    query_only: bool = False,
    writer: bool = False,
) -> Engine:
    kwargs: dict[str, Any] = {"connect_args": {"check_same_thread": False, "timeout": 30}}
    if poolclass is not None:
        kwargs["poolclass"] = poolclass
    else:
        kwargs.update(pool_size=pool_size, max_overflow=2 * pool_size, pool_timeout=60)
    engine = sa.create_engine(url, **kwargs)

    @sa.event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # We emit BEGIN ourselves (below): pysqlite's implicit transactions are not used.
        dbapi_conn.isolation_level = None
        cursor = dbapi_conn.cursor()
        try:
            for pragma in _SQLITE_PRAGMAS:
                cursor.execute(pragma)
            if query_only:
                cursor.execute("PRAGMA query_only=ON")
            if writer:
                cursor.execute("PRAGMA wal_autocheckpoint=0")
        finally:
            cursor.close()

    @sa.event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        conn.exec_driver_sql(begin)

    return engine


@contextmanager
def _translated() -> Iterator[None]:
    try:
        yield
    except sa.exc.DBAPIError as exc:
        text = str(exc.orig).lower()
        if "no such table" in text or getattr(exc.orig, "sqlstate", None) == "42P01":
            raise SchemaOutdated(f"the database has no Runyard schema: {_UPGRADE_HINT}") from exc
        if isinstance(exc, sa.exc.IntegrityError) and (
            "unique constraint" in text or getattr(exc.orig, "sqlstate", None) == "23505"
        ):  # checked before writing, so only a concurrent request gets here
            raise AlreadyExists(f"a concurrent request created the same record: {exc.orig}") from exc
        if isinstance(exc, sa.exc.OperationalError) or exc.connection_invalidated:
            raise StoreUnavailable(f"the database cannot be reached: {exc.orig}") from exc
        raise
