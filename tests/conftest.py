"""Fixtures shared by every test package: a clean environment and a real PostgreSQL server."""

from __future__ import annotations

import itertools
import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
_ENV_PREFIXES = ("RUNYARD_", "SLURM_", "TRACKER_")
_ENV_NAMES = ("EXPERIMENT_ID",)


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """The machine's Runyard/Slurm settings must not leak into any test."""
    for name in list(os.environ):
        if name.startswith(_ENV_PREFIXES) or name in _ENV_NAMES:
            monkeypatch.delenv(name)


@dataclass
class PostgresServer:
    """A throw-away PostgreSQL server (scripts/postgres.sh); every database on it is disposable."""

    directory: str
    url: str  # SQLAlchemy URL of its maintenance database
    _names: Iterator[int] = field(default_factory=itertools.count)

    def url_for(self, database: str) -> str:
        return self.url.rsplit("/", 1)[0] + "/" + database

    def create_database(self, *, template: str | None = None, name: str | None = None) -> str:
        """A new database (a copy of ``template`` when given); returns its URL."""
        import psycopg

        name = name or f"test_{os.getpid()}_{next(self._names)}"
        sql = f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else "")
        conninfo = self.url.replace("postgresql+psycopg://", "postgresql://")
        with psycopg.connect(conninfo, autocommit=True) as conn:
            conn.execute(sql)  # type: ignore[arg-type]
        return self.url_for(name)


def _start_postgres() -> PostgresServer | str:
    """A running server, or the reason none could be started."""
    script = REPO / "scripts" / "postgres.sh"
    env = {
        **os.environ,
        "PG_EXTRA_OPTS": "-c fsync=off -c synchronous_commit=off -c full_page_writes=off",
        "PG_OWNER_PID": str(os.getpid()),  # the server goes away with this process, even if killed
    }
    try:
        done = subprocess.run(
            ["bash", str(script), "start"], capture_output=True, text=True, timeout=900, env=env
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"scripts/postgres.sh could not run: {exc}"
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or len(lines) < 2:
        tail = " | ".join(done.stderr.strip().splitlines()[-3:])
        return f"scripts/postgres.sh start failed (exit {done.returncode}): {tail}"
    return PostgresServer(directory=lines[-2], url=lines[-1])


@pytest.fixture(scope="session")
def _postgres_session() -> Iterator[PostgresServer | str]:
    server = _start_postgres()
    yield server
    if isinstance(server, PostgresServer):
        subprocess.run(
            ["bash", str(REPO / "scripts" / "postgres.sh"), "stop", server.directory],
            capture_output=True,
            timeout=120,
        )


@pytest.fixture
def postgres_server(_postgres_session: PostgresServer | str) -> PostgresServer:
    """The session's PostgreSQL server. Without one, tests fail on CI (CI=true) and skip
    elsewhere, with the reason."""
    if isinstance(_postgres_session, str):
        reason = f"PostgreSQL unavailable: {_postgres_session}"
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    return _postgres_session
