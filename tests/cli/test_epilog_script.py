"""`runyard slurm epilog-script` prints a program that a real server accepts: run it with an
epilog's environment against a live server, and the job's end is recorded on its run."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from runyard.errors import InvalidInput
from runyard.slurm.epilog import render_epilog
from runyard.store import open_store
from tests.e2e.conftest import LiveServer, wait_for


def test_render_checks_its_inputs() -> None:
    with pytest.raises(InvalidInput) as err:
        render_epilog("ftp://x", "/s")
    assert err.value.field == "url"
    with pytest.raises(InvalidInput) as err:
        render_epilog("http://x", "relative/secret")
    assert err.value.field == "secret_file"
    compile(render_epilog("http://h:1", "/etc/slurm/runyard.secret"), "epilog", "exec")


def test_printed_epilog_reports_to_a_live_server(server: LiveServer, tmp_path: Path) -> None:
    runyard = Path(sys.executable).parent / "runyard"
    printed = subprocess.run(
        [str(runyard), "slurm", "epilog-script", "--url", server.url, "--data-dir", str(server.data_dir)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    script = tmp_path / "epilog.py"
    script.write_text(printed)
    run_id = server.post("/api/v1/runs", {"project": "p", "experiment": "e", "slurm_job_id": "777"})["id"]
    env = {"PATH": os.environ["PATH"], "SLURM_JOB_ID": "777", "SLURM_JOB_EXIT_CODE2": "3:0"}
    done = subprocess.run([sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=30)
    assert done.returncode == 0 and done.stderr == "", done.stderr
    store = open_store(f"sqlite:///{server.data_dir / 'runyard.db'}")
    try:
        events = wait_for(lambda: store.list_run_events(run_id), 10, "the epilog's event")
    finally:
        store.close()
    assert events[0].source == "epilog" and events[0].data == {"exit_code": 3}
    # the same program with a wrong secret is refused, and says so on stderr without failing the job
    bad = tmp_path / "bad.secret"
    bad.write_text("not-the-secret\n")
    script.write_text(printed.replace(str(server.data_dir / "webhook.secret"), str(bad)))
    done = subprocess.run([sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=30)
    assert done.returncode == 0 and "401" in done.stderr
