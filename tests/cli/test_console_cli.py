"""``runyard logs RUN --source client``: the lines real training processes printed, captured by
the client on every rank, read back through the live server."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from tests.cli.test_cli import run_cli
from tests.e2e.conftest import BIN, LiveServer

SCRIPT = """
import sys, runyard
run = runyard.init(project="cli", experiment="console")
print(f"hello from rank {run.rank}")
print(f"warning on rank {run.rank}", file=sys.stderr)
run.log({"loss": 1.0})
run.finish()
"""

LINE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} (\S+) (\S+) \| (.*)$")


def train(server: LiveServer, tmp_path: Path, run_id: str, rank: int) -> subprocess.CompletedProcess[str]:
    script = tmp_path / "train.py"
    script.write_text(SCRIPT)
    env = {
        **server.env,
        "RUNYARD_URL": server.url,
        "RUNYARD_API_KEY": server.key,
        "RUNYARD_RUN_ID": run_id,
        "RUNYARD_SYSTEM_INTERVAL_S": "0",
        "RANK": str(rank),
        "SLURMD_NODENAME": f"node{rank}",
    }
    done = subprocess.run(
        [str(BIN / "python"), str(script)], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    return done


def parsed(stdout: str) -> list[tuple[str, str, str]]:
    out = []
    for line in stdout.splitlines():
        m = LINE.match(line)
        assert m, line
        out.append((m.group(1), m.group(2), m.group(3)))
    return out


def test_logs_source_client_prints_time_host_rank_and_line(server: LiveServer, tmp_path: Path) -> None:
    run_id = "console-cli-run"
    rank0 = train(server, tmp_path, run_id, 0)
    train(server, tmp_path, run_id, 1)
    assert rank0.stdout == "hello from rank 0\n"  # the script's own output is unchanged
    assert rank0.stderr.startswith("warning on rank 0\nrunyard: run console-cli-run synced")

    r = run_cli(server, "logs", run_id, "--source", "client")
    assert r.returncode == 0, r.stderr
    assert parsed(r.stdout) == [
        ("node0", "0", "hello from rank 0"),
        ("node0", "0", "warning on rank 0"),
        ("node1", "1", "hello from rank 1"),
        ("node1", "1", "warning on rank 1"),
    ]
    r = run_cli(server, "logs", run_id, "--source", "client", "--stderr")
    assert [p[2] for p in parsed(r.stdout)] == ["warning on rank 0", "warning on rank 1"]
    r = run_cli(server, "logs", run_id, "--source", "client", "-n", "1")
    assert [p[2] for p in parsed(r.stdout)] == ["warning on rank 1"]
    r = run_cli(server, "logs", run_id, "--source", "client", "-f")  # the run has ended: -f returns
    assert r.returncode == 0 and len(parsed(r.stdout)) == 4


def test_logs_source_client_without_lines_says_so(server: LiveServer) -> None:
    run_id = server.post("/api/v1/runs", {"project": "cli", "experiment": "console", "name": "quiet"})["id"]
    r = run_cli(server, "logs", run_id, "--source", "client")
    assert r.returncode == 0 and r.stdout == ""
    assert "no captured console lines" in r.stderr and "RUNYARD_CAPTURE_CONSOLE" in r.stderr
    r = run_cli(server, "logs", "no-such-run", "--source", "client")
    assert r.returncode != 0 and r.stderr.startswith("error: ")
