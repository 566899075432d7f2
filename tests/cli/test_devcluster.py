"""``runyard dev-cluster``: a thin wrapper that runs scripts/dev-cluster.sh (argv list, exit code kept)."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest

from runyard.cli import devcluster
from runyard.cli.main import main

REPO = Path(__file__).resolve().parents[2]


def test_finds_the_checkout_script() -> None:
    assert devcluster.find_script() == REPO / "scripts" / "dev-cluster.sh"


def test_runs_the_script_and_keeps_its_exit_code(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[Any] = []

    def fake_run(argv: Any, **kwargs: Any) -> subprocess.CompletedProcess[str]:
        calls.append(argv)
        return subprocess.CompletedProcess(argv, 3)

    monkeypatch.setattr(devcluster.subprocess, "run", fake_run)
    assert main(["dev-cluster", "status"]) == 3
    assert calls == [["bash", str(REPO / "scripts" / "dev-cluster.sh"), "status"]]


def test_without_the_script_says_what_to_do(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(devcluster, "find_script", lambda: None)
    assert main(["dev-cluster", "up"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "clone the Runyard repository" in err
    assert err.count("\n") == 1


def test_rejects_unknown_actions(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["dev-cluster", "restart"])
    assert exc.value.code == 2
    assert "invalid choice" in capsys.readouterr().err
