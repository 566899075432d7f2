"""Seed 003's TrackerClient and its usage loop, verbatim (between the markers below).

The seed's snippet leaves out ``from datetime import datetime`` and the training functions it
calls; the stand-ins above the marker supply them (a fake epoch loop and a tiny ``torch``
double), so the seed code itself runs with no edits. tests/e2e/test_seed003.py runs this file
against a live server with TRACKER_API, TRACKER_API_KEY and EXPERIMENT_ID set.
"""

import argparse
import os
import types
from datetime import datetime  # noqa: F401 - used by the seed code below

args = argparse.Namespace(lr=0.001, batch_size=32, epochs=5)
num_epochs = 5
_epoch = {"n": 0}


def train_one_epoch():
    _epoch["n"] += 1
    return 1.0 / _epoch["n"]


def validate():
    return 0.5 / _epoch["n"], 0.4 + 0.1 * _epoch["n"]


def _save(obj, path):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(b"weights")


torch = types.SimpleNamespace(
    cuda=types.SimpleNamespace(memory_allocated=lambda: 2_000_000_000),
    save=_save,
)
model = types.SimpleNamespace(state_dict=lambda: {})
scheduler = types.SimpleNamespace(get_last_lr=lambda: [0.001])
best_acc = 0.0

# ---- seed 003, verbatim -------------------------------------------------------------------
# tracker_client.py - HPC-friendly client
import os
import requests
from functools import lru_cache

class TrackerClient:
    def __init__(self):
        self.api_url = os.environ.get("TRACKER_API", "http://tracker.internal")
        self.api_key = os.environ.get("TRACKER_API_KEY")
        self.headers = {"X-API-Key": self.api_key} if self.api_key else {}

        # Job metadata
        self.slurm_job_id = os.environ.get("SLURM_JOB_ID")
        self.slurm_node = os.environ.get("SLURMD_NODENAME")
        self.experiment_id = os.environ.get("EXPERIMENT_ID")

    def create_run(self, config: dict) -> str:
        response = requests.post(
            f"{self.api_url}/experiments/{self.experiment_id}/runs",
            json={
                "slurm_job_id": self.slurm_job_id,
                "slurm_node": self.slurm_node,
                "config": config,
                "gpu_type": self._get_gpu_type()
            },
            headers=self.headers
        )
        response.raise_for_status()
        return response.json()["run_id"]

    def log_metrics(self, run_id: str, metrics: dict, step: int):
        # Batch metrics for efficiency
        requests.post(
            f"{self.api_url}/runs/{run_id}/metrics/batch",
            json={
                "step": step,
                "metrics": metrics,
                "timestamp": datetime.utcnow().isoformat()
            },
            headers=self.headers
        )

    def log_artifact(self, run_id: str, path: str, artifact_type: str):
        requests.post(
            f"{self.api_url}/runs/{run_id}/artifacts",
            json={
                "path": path,
                "type": artifact_type,
                "size_bytes": os.path.getsize(path)
            },
            headers=self.headers
        )

    @lru_cache
    def _get_gpu_type(self) -> str:
        try:
            import subprocess
            result = subprocess.run(
                ["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"],
                capture_output=True, text=True
            )
            return result.stdout.strip().split('\n')[0]
        except:
            return "unknown"


# Usage in training script
tracker = TrackerClient()
run_id = tracker.create_run(config=vars(args))

for epoch in range(num_epochs):
    train_loss = train_one_epoch()
    val_loss, val_acc = validate()

    tracker.log_metrics(run_id, {
        "train_loss": train_loss,
        "val_loss": val_loss,
        "val_accuracy": val_acc,
        "gpu_memory_used": torch.cuda.memory_allocated() / 1e9,
        "learning_rate": scheduler.get_last_lr()[0]
    }, step=epoch)

    # Save and log checkpoint
    if val_acc > best_acc:
        checkpoint_path = f"/shared/checkpoints/{run_id}/best.pt"
        torch.save(model.state_dict(), checkpoint_path)
        tracker.log_artifact(run_id, checkpoint_path, "model_checkpoint")
# ---- end of seed 003 ------------------------------------------------------------------------

print(f"RUN {run_id}")
