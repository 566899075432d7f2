"""Client test fixtures: a clean environment, a fake server, a real server, and a deadline-polling helper."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import runyard
from runyard.client import run as run_module
from tests.e2e.conftest import LiveServer, free_port
from tests.fakes.server import FakeServer

_CONTEXT = ("EXPERIMENT_ID", "RANK", "LOCAL_RANK", "WORLD_SIZE", "SLURMD_NODENAME")


def wait_until(predicate: Callable[[], Any], timeout_s: float = 10.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout_s
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")
        time.sleep(0.005)


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Path]:
    """No RUNYARD_*/SLURM_*/seed variables from the machine; fast retries; a private spool;
    no system metrics and no console capture (a test that wants them sets
    RUNYARD_SYSTEM_INTERVAL_S / RUNYARD_CAPTURE_CONSOLE)."""
    for name in list(os.environ):
        if name.startswith(("RUNYARD_", "SLURM_", "TRACKER_")) or name in _CONTEXT:
            monkeypatch.delenv(name)
    monkeypatch.setenv("RUNYARD_CONFIG", str(tmp_path / "no-config.toml"))
    spool = tmp_path / "spool"
    monkeypatch.setenv("RUNYARD_SPOOL_DIR", str(spool))
    monkeypatch.setenv("RUNYARD_RETRY_MIN_S", "0.01")
    monkeypatch.setenv("RUNYARD_RETRY_MAX_S", "0.05")
    monkeypatch.setenv("RUNYARD_FINISH_TIMEOUT_S", "10")
    monkeypatch.setenv("RUNYARD_SYSTEM_INTERVAL_S", "0")  # no sampler thread unless a test asks
    monkeypatch.setenv("RUNYARD_CAPTURE_CONSOLE", "0")  # no console tee unless a test asks
    yield spool
    for run in list(run_module._ACTIVE):  # never leave threads running into the next test
        run.finish()


@pytest.fixture
def spool(clean_env: Path) -> Path:
    return clean_env


@pytest.fixture
def fake() -> FakeServer:
    return FakeServer()


@pytest.fixture
def start(fake: FakeServer) -> Callable[..., runyard.Run]:
    """``start(**init_kwargs)``: runyard.init against the fake server, flushing every 10 ms."""

    def _start(**kwargs: Any) -> runyard.Run:
        kwargs.setdefault("project", "p")
        kwargs.setdefault("experiment", "e")
        kwargs.setdefault("api_key", "good-key")
        kwargs.setdefault("flush_interval_s", 0.01)
        kwargs.setdefault("_transport", fake.transport())
        return runyard.init(**kwargs)

    return _start


@pytest.fixture(scope="session")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """One real ``runyard server`` subprocess (SQLite) for the client tests that need the real
    API (resume look-ups, the job reporter); tests use their own run ids."""
    data = tmp_path_factory.mktemp("live-server")
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("RUNYARD_", "SLURM_", "TRACKER_")) and k not in _CONTEXT
    }
    env["RUNYARD_CONFIG"] = str(data / "no-config.toml")
    server = LiveServer(data, free_port(), env)
    server.start()
    yield server
    server.stop()
