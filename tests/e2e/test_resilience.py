"""Acceptance: no point lost or stored twice when the server dies mid-run or is never there."""

from __future__ import annotations

import shutil
import subprocess
import sys
import threading
from pathlib import Path

from tests.e2e.conftest import BIN, LiveServer, free_port, wait_for

SCRIPT = Path(__file__).parent / "scripts" / "log_steady.py"
STEPS = 20_000


class Lines:
    """Collect a subprocess's stdout lines on a thread, so tests can wait for one."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.lines: list[str] = []
        self.proc = proc
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))

    def find(self, prefix: str) -> str | None:
        return next((line for line in self.lines if line.startswith(prefix)), None)


def assert_every_point_once(server: LiveServer, run_id: str) -> None:
    run = server.get(f"/api/v1/runs/{run_id}")
    for key, sign in (("a", 1.0), ("b", 0.5), ("c", -1.0)):
        assert run["metrics"][key]["count"] == STEPS, (key, run["metrics"][key])
        series = server.get(f"/api/v1/runs/{run_id}/metrics/series", key=key)
        assert series["steps"] == list(range(STEPS)), key
        assert series["values"] == [sign * s for s in range(STEPS)], key


def start_client(env: dict[str, str], pace_s: float) -> tuple[subprocess.Popen[str], Lines]:
    proc = subprocess.Popen(
        [sys.executable, str(SCRIPT), str(STEPS), str(pace_s)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    return proc, Lines(proc)


def test_server_sigkilled_mid_run_loses_and_duplicates_nothing(server: LiveServer, tmp_path: Path) -> None:
    env = {
        **server.env,
        "RUNYARD_URL": server.url,
        "RUNYARD_API_KEY": server.key,
        "RUNYARD_SPOOL_DIR": str(tmp_path / "spool"),
        "RUNYARD_RETRY_MIN_S": "0.1",
        "RUNYARD_RETRY_MAX_S": "0.5",
    }
    proc, out = start_client(env, pace_s=0.25)
    run_id = wait_for(lambda: out.find("RUN "), 30, "the client to start").split()[1]
    wait_for(
        lambda: server.get(f"/api/v1/runs/{run_id}")["metrics"].get("a", {}).get("count", 0) > 0,
        30,
        "the first points on the server",
    )
    server.kill()
    killed_at = len(out.lines)
    wait_for(
        lambda: len(out.lines) > killed_at + 3, 60, "the client to keep logging while the server is down"
    )
    server.start()
    assert proc.wait(timeout=120) == 0, "\n".join(out.lines)
    out.thread.join(5)
    done = out.find("DONE")
    assert done is not None and "synced=True" in done, out.lines
    assert_every_point_once(server, run_id)
    assert server.get(f"/api/v1/runs/{run_id}")["status"] == "finished"
    assert not list((tmp_path / "spool").glob("*.journal")), "the replayed journal should be gone"


def test_no_server_at_all_then_sync_uploads_exactly_once(tmp_path: Path, clean_env: dict[str, str]) -> None:
    spool = tmp_path / "spool"
    port = free_port()
    env = {
        **clean_env,
        "RUNYARD_URL": f"http://127.0.0.1:{port}",
        "RUNYARD_API_KEY": "ry_x_unused",
        "RUNYARD_SPOOL_DIR": str(spool),
    }
    proc, out = start_client(env, pace_s=0.0)
    assert proc.wait(timeout=120) == 0, "\n".join(out.lines)
    out.thread.join(5)
    run_id = out.find("RUN ").split()[1]
    done = out.find("DONE")
    assert done is not None and "synced=False" in done and f"journaled={3 * STEPS}" in done, out.lines
    journals = list(spool.glob("*.journal"))
    assert journals, "finish() should leave a journal"
    backup = tmp_path / "backup"
    backup.mkdir()
    for j in journals:
        shutil.copy(j, backup / j.name)

    data = tmp_path / "server-data"
    data.mkdir()
    server = LiveServer(data, port, clean_env)
    server.start()
    try:
        sync_env = {**clean_env, "RUNYARD_URL": server.url, "RUNYARD_API_KEY": server.key}
        r = subprocess.run(
            [str(BIN / "runyard"), "sync", str(spool)], env=sync_env, capture_output=True, text=True
        )
        assert r.returncode == 0, r.stderr
        assert f"{3 * STEPS:,} points" in r.stdout, r.stdout
        assert_every_point_once(server, run_id)
        assert not list(spool.glob("*.journal")) and list(spool.glob("*.journal.synced"))
        # Syncing the same journal again stores nothing twice.
        r = subprocess.run(
            [str(BIN / "runyard"), "sync", str(backup)], env=sync_env, capture_output=True, text=True
        )
        assert r.returncode == 0, r.stderr
        assert "already on the server" in r.stdout and " 0 already" not in r.stdout, r.stdout
        assert_every_point_once(server, run_id)
        assert server.get(f"/api/v1/runs/{run_id}")["status"] == "finished"
    finally:
        server.stop()
