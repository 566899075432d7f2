"""Acceptance: seed 003's TrackerClient runs unchanged against a live server."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from tests.e2e.conftest import LiveServer

SCRIPT = Path(__file__).parent / "scripts" / "seed003_client.py"


def test_seed_tracker_client_runs_unchanged(server: LiveServer, tmp_path: Path) -> None:
    exp = server.post("/api/v1/experiments", {"project": "seed", "name": "seed-003", "exist_ok": True})
    env = {
        **server.env,
        "TRACKER_API": server.url,
        "TRACKER_API_KEY": server.key,
        "EXPERIMENT_ID": exp["id"],
        "SLURM_JOB_ID": "31337",
        "SLURMD_NODENAME": "n2",
    }
    r = subprocess.run([sys.executable, str(SCRIPT)], env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    run_id = r.stdout.split("RUN ")[1].split()[0]
    try:
        run = server.get(f"/api/v1/runs/{run_id}")
        assert run["experiment_id"] == exp["id"]
        assert run["slurm_job_id"] == "31337" and run["slurm_nodes"] == "n2"
        assert run["config"]["lr"] == 0.001 and run["gpu_type"] == "unknown"
        for key in ("train_loss", "val_loss", "val_accuracy", "gpu_memory_used", "learning_rate"):
            assert run["metrics"][key]["count"] == 5, key
        acc = server.get(f"/api/v1/runs/{run_id}/metrics/series", key="val_accuracy")
        assert acc["steps"] == [0, 1, 2, 3, 4]
        assert acc["values"] == [0.4 + 0.1 * n for n in range(1, 6)]
        arts = server.get(f"/api/v1/runs/{run_id}/artifacts")
        assert {a["kind"] for a in arts} == {"model_checkpoint"} and all(a["size_bytes"] == 7 for a in arts)
        page = server.get(f"/api/v1/experiments/{exp['id']}/runs")
        assert [r["id"] for r in page["runs"]] == [run_id]
    finally:
        shutil.rmtree(f"/shared/checkpoints/{run_id}", ignore_errors=True)
