"""The store suite runs every test on SQLite and on PostgreSQL.

Migrating a database per test would dominate the suite's time, so each backend migrates one
template per session and every test gets a fresh copy (a file copy on SQLite, ``CREATE
DATABASE … TEMPLATE`` on PostgreSQL). ``empty_url`` gives a database with no schema at all.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from runyard.entities import Experiment, RunCreate
from runyard.store.sql import SqlStore
from tests.conftest import PostgresServer

BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
PG_TEMPLATE = "runyard_template"


@pytest.fixture(scope="session")
def _sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "runyard.db"
    store = SqlStore(f"sqlite:///{path}")
    store.upgrade()
    store.close()
    return path


_pg_template_ready: set[str] = set()


def _pg_template(server: PostgresServer) -> str:
    if server.directory not in _pg_template_ready:
        store = SqlStore(server.create_database(name=PG_TEMPLATE))
        store.upgrade()
        store.close()
        _pg_template_ready.add(server.directory)
    return PG_TEMPLATE


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def empty_url(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A database with no tables."""
    if backend == "sqlite":
        return f"sqlite:///{tmp_path / 'empty.db'}"
    server: PostgresServer = request.getfixturevalue("postgres_server")
    return server.create_database()


@pytest.fixture
def db_url(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A database migrated to head, private to the test."""
    if backend == "sqlite":
        path = tmp_path / "runyard.db"
        shutil.copyfile(request.getfixturevalue("_sqlite_template"), path)
        return f"sqlite:///{path}"
    server: PostgresServer = request.getfixturevalue("postgres_server")
    return server.create_database(template=_pg_template(server))


@pytest.fixture
def make_store(db_url: str) -> Iterator[Callable[..., SqlStore]]:
    """Further stores on the test's database (e.g. with another chunk size)."""
    opened: list[SqlStore] = []

    def make(**kwargs: int) -> SqlStore:
        opened.append(SqlStore(db_url, **kwargs))
        return opened[-1]

    yield make
    for s in opened:
        s.close()


@pytest.fixture
def store(make_store: Callable[..., SqlStore]) -> SqlStore:
    return make_store()


@pytest.fixture
def experiment(store: SqlStore) -> Experiment:
    return store.ensure_experiment("proj", "exp")


@pytest.fixture
def run_id(store: SqlStore, experiment: Experiment) -> str:
    return store.create_run(RunCreate(experiment_id=experiment.id, name="r")).id
