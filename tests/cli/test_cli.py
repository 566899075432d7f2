"""The CLI: admin commands against a real database, researcher commands against a live server."""

from __future__ import annotations

import json
import sqlite3
import subprocess
from pathlib import Path

import pytest

from runyard.cli.main import main
from runyard.store.sql.migrate import head_revision
from tests.e2e.conftest import BIN, LiveServer


def cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_admin_commands(tmp_path: Path, capsys) -> None:
    d = ("--data-dir", str(tmp_path))
    code, out, _ = cli(capsys, "db", "upgrade", *d)
    assert code == 0 and f"-> {head_revision()}" in out
    assert cli(capsys, "db", "status", *d)[0] == 0
    assert cli(capsys, "user", "create", "alice", "--admin", *d)[0] == 0
    code, _, err = cli(capsys, "user", "create", "alice", *d)
    assert code == 1 and err.startswith("error: ") and "alice" in err and err.count("\n") == 1
    code, secret, _ = cli(capsys, "apikey", "create", "--user", "alice", "--name", "laptop", *d)
    assert code == 0 and secret.strip().startswith("ry_")
    code, out, _ = cli(capsys, "apikey", "list", *d)
    assert "laptop" in out and secret.strip() not in out and "active" in out
    key_id = out.splitlines()[1].split()[0]
    assert cli(capsys, "apikey", "revoke", key_id, *d)[0] == 0
    assert "revoked" in cli(capsys, "apikey", "list", *d)[1]
    code, _, err = cli(capsys, "apikey", "create", "--user", "nobody", *d)
    assert code == 1 and "nobody" in err


def test_old_schema_is_refused_with_the_fix(tmp_path: Path, capsys) -> None:
    d = ("--data-dir", str(tmp_path))
    cli(capsys, "db", "upgrade", *d)
    with sqlite3.connect(tmp_path / "runyard.db") as db:
        db.execute("UPDATE alembic_version SET version_num = '0000_older'")
    code, out, _ = cli(capsys, "db", "status", *d)
    assert code == 1 and "runyard db upgrade" in out
    code, _, err = cli(capsys, "server", *d, "--no-config")
    assert code == 1 and "runyard db upgrade" in err and "0000_older" in err


def test_debug_shows_the_traceback(tmp_path: Path, capsys) -> None:
    code, _, err = cli(capsys, "--debug", "apikey", "create", "--user", "ghost", "--data-dir", str(tmp_path))
    assert code == 1 and "Traceback" in err and err.rstrip().splitlines()[-1].startswith("error: ")


def run_cli(server: LiveServer, *argv: str) -> subprocess.CompletedProcess[str]:
    env = {**server.env, "RUNYARD_URL": server.url, "RUNYARD_API_KEY": server.key}
    return subprocess.run([str(BIN / "runyard"), *argv], env=env, capture_output=True, text=True, timeout=60)


@pytest.fixture
def logged(server: LiveServer) -> str:
    exp = server.post("/api/v1/experiments", {"project": "cli", "name": "cli-exp", "exist_ok": True})
    ids = []
    for i, lr in enumerate((0.1, 0.01)):
        run = server.post(f"/api/v1/experiments/{exp['id']}/runs", {"name": f"run-{i}", "config": {"lr": lr}})
        server.post(
            f"/api/v1/runs/{run['id']}/batches",
            {
                "writer": "cliwriter",
                "seq": 1,
                "metrics": {
                    "loss": {"steps": [0, 1], "times": [1.7e9, 1.7e9 + 1], "values": [1.0 + i, 0.5 + i]}
                },
            },
        )
        ids.append(run["id"])
    return ids[0]


def test_runs_show_export(server: LiveServer, logged: str, tmp_path: Path) -> None:
    r = run_cli(server, "runs", "-e", "cli-exp", "--sort", "metrics.loss", "--asc")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].split()[:3] == ["ID", "NAME", "STATUS"] and "LOSS" in lines[0]
    assert [line.split()[1] for line in lines[1:]] == ["run-0", "run-1"]
    shown_id = lines[1].split()[0]
    assert run_cli(server, "show", shown_id).returncode == 0, "an id copied from the table must work"
    r = run_cli(server, "runs", "-e", "cli-exp", "-f", "params.lr<0.05", "--json")
    assert [x["name"] for x in json.loads(r.stdout)["runs"]] == ["run-1"]
    r = run_cli(server, "show", logged)
    assert r.returncode == 0 and "run-0" in r.stdout and "lr = 0.1" in r.stdout and "loss" in r.stdout
    out = tmp_path / "x.csv"
    r = run_cli(server, "export", logged, "--format", "csv", "-o", str(out))
    assert r.returncode == 0, r.stderr
    assert out.read_text().splitlines()[1:] == ['"loss",0,1700000000.0,1.0', '"loss",1,1700000001.0,0.5']
    r = run_cli(server, "export", logged, "--format", "parquet", "-o", str(tmp_path / "x.parquet"))
    assert r.returncode == 0 and (tmp_path / "x.parquet").read_bytes()[:4] == b"PAR1"


def test_cli_errors_are_one_line_with_the_fix(server: LiveServer) -> None:
    r = run_cli(server, "show", "no-such-run")
    assert r.returncode == 1 and r.stderr.startswith("error: ") and r.stderr.count("\n") == 1
    r = run_cli(server, "runs", "-f", "bogus")
    assert r.returncode == 1 and "filter" in r.stderr
    env = {**server.env, "RUNYARD_URL": server.url, "RUNYARD_API_KEY": "ry_bad_key"}
    r = subprocess.run([str(BIN / "runyard"), "runs"], env=env, capture_output=True, text=True)
    assert r.returncode == 1 and "error:" in r.stderr and "key" in r.stderr.lower()
