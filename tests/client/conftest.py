"""Client test fixtures: a clean environment, a fake server, and a deadline-polling helper."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import runyard
from runyard.client import run as run_module
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
    """No RUNYARD_*/SLURM_*/seed variables from the machine; fast retries; a private spool."""
    for name in list(os.environ):
        if name.startswith(("RUNYARD_", "SLURM_", "TRACKER_")) or name in _CONTEXT:
            monkeypatch.delenv(name)
    monkeypatch.setenv("RUNYARD_CONFIG", str(tmp_path / "no-config.toml"))
    spool = tmp_path / "spool"
    monkeypatch.setenv("RUNYARD_SPOOL_DIR", str(spool))
    monkeypatch.setenv("RUNYARD_RETRY_MIN_S", "0.01")
    monkeypatch.setenv("RUNYARD_RETRY_MAX_S", "0.05")
    monkeypatch.setenv("RUNYARD_FINISH_TIMEOUT_S", "10")
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
