"""Fill a data directory with realistic runs for looking at the web UI (and for its tests,
screenshots and benchmarks).

    .venv/bin/python scripts/seed_ui.py --data-dir /tmp/ui [--runs 300] [--steps 2000]

Writes straight into the store (the server may be running on the same directory, SQLite
allows it). Creates project ``vision`` with experiment ``resnet-sweep`` (``--runs`` runs with
params, tags, statuses from queued to failed, loss/accuracy curves over ``--steps`` steps for
the first 20, a summary for every run) and experiment ``tiny`` (3 runs, one running with GPU
system metrics and console lines, an artifact and a checkpoint). Prints one JSON line:
``{"api_key", "experiments": {name: id}, "runs": {...}}``; an admin user ``admin`` (password
``runyard-admin``) is created when the store has no user.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from runyard.entities import (  # noqa: E402
    ArtifactCreate,
    Batch,
    LogLine,
    MetricColumns,
    RunCreate,
    RunStatus,
    RunUpdate,
)
from runyard.store.sql import SqlStore  # noqa: E402

# Seeded runs look launched, with job ids far above any the dev cluster hands out (Slurm's
# default MaxJobId is 67,043,328): the UI server tests run a real watcher and cluster page,
# which must never take a real job for a seeded run.
FAKE_JOB_IDS = 60_000_000

STATUSES = [
    (RunStatus.FINISHED, 0.55),
    (RunStatus.RUNNING, 0.15),
    (RunStatus.QUEUED, 0.1),
    (RunStatus.FAILED, 0.08),
    (RunStatus.TIMEOUT, 0.04),
    (RunStatus.OOM, 0.03),
    (RunStatus.CANCELLED, 0.05),
]
REASONS = ["Resources", "Priority", "Dependency", "QOSMaxGRESPerUser"]


def _columns(steps: np.ndarray, t0: float, values: np.ndarray) -> MetricColumns:
    return MetricColumns(steps=steps, times=t0 + steps * 0.5, values=values)


def _curve(rng: random.Random, steps: np.ndarray, lr: float) -> tuple[np.ndarray, np.ndarray]:
    speed = 0.5 + lr * 20
    noise = np.random.default_rng(rng.randrange(1 << 30)).normal(0, 0.03, len(steps))
    loss = 2.3 * np.exp(-speed * steps / max(steps[-1], 1)) + 0.1 + noise
    acc = 1 - 0.9 * np.exp(-speed * 1.3 * steps / max(steps[-1], 1)) + noise / 3
    return loss, np.clip(acc, 0, 1)


def seed(store: SqlStore, *, runs: int, steps: int, seed_value: int = 1) -> dict[str, object]:
    rng = random.Random(seed_value)
    users = store.list_users()
    admin = next((u for u in users if u.is_admin), None) or store.create_user(
        "admin", password="runyard-admin", is_admin=True
    )
    alice = next((u for u in users if u.username == "alice"), None) or store.create_user(
        "alice", password="runyard-alice"
    )
    _, key = store.create_api_key(admin.id, "seed_ui")
    sweep = store.ensure_experiment("vision", "resnet-sweep", owner_id=admin.id)
    tiny = store.ensure_experiment("vision", "tiny", owner_id=admin.id)
    store.ensure_experiment("nlp", "gpt-small", owner_id=alice.id)
    now = time.time()

    creates = []
    for i in range(runs):
        lr = rng.choice([0.001, 0.003, 0.01, 0.03, 0.1])
        creates.append(
            RunCreate(
                experiment_id=sweep.id,
                name=f"resnet50-lr{lr}-s{i}",
                status=RunStatus.RUNNING,
                started_at=now - rng.uniform(600, 86400 * 3),
                user_id=rng.choice([admin.id, admin.id, alice.id]),
                host=f"n{rng.randint(1, 3)}",
                config={
                    "lr": lr,
                    "batch_size": rng.choice([64, 128, 256]),
                    "optimizer": {"name": "adamw"},
                    "seed": i,
                },
                tags=tuple(t for t in ("baseline", "augment", "fp16") if rng.random() < 0.4),
                slurm_job_id=str(FAKE_JOB_IDS + i),
                slurm_partition=rng.choice(["gpu", "gpu", "debug"]),
                slurm_nodes=f"n{rng.randint(1, 3)}",
                gpu_type="a100",
                slurm={
                    "requested": {
                        "gpus_per_node": rng.choice([1, 2, 4]),
                        "cpus_per_task": 8,
                        "mem_gb": 32,
                        "time_limit_min": 240,
                        "nodes": 1,
                        "partition": "gpu",
                    }
                },
            )
        )
    made = []
    for start in range(0, len(creates), 1000):
        made.extend(store.create_runs(creates[start : start + 1000]))

    for i, run in enumerate(made):
        status = rng.choices([s for s, _ in STATUSES], weights=[w for _, w in STATUSES])[0]
        lr = float(run.config["lr"])
        n = steps if i < 20 else 10
        step_arr = np.arange(n, dtype=np.int64) * max(1, steps // n)
        loss, acc = _curve(rng, step_arr, lr)
        store.log_metrics(
            run.id,
            {
                "train/loss": _columns(step_arr, run.started_at or now, loss),
                "val/acc": _columns(step_arr, run.started_at or now, acc),
            },
        )
        update = RunUpdate(status=status, summary={"best_acc": float(acc.max())})
        if status is RunStatus.QUEUED:
            update = RunUpdate(
                status=status,
                pending_reason=rng.choice(REASONS),
                start_estimate=now + rng.uniform(60, 7200),
                slurm_state="PENDING",
            )
        elif status is not RunStatus.RUNNING:
            update = RunUpdate(
                status=status,
                ended_at=(run.started_at or now) + rng.uniform(300, 20000),
                exit_code=0 if status is RunStatus.FINISHED else 1,
                summary={"best_acc": float(acc.max())},
            )
        store.update_run(run.id, update)

    # the tiny experiment: one live run with system metrics, console lines and artifacts
    live = store.create_run(
        RunCreate(
            experiment_id=tiny.id,
            name="tiny-live",
            status=RunStatus.RUNNING,
            started_at=now - 3600,
            user_id=admin.id,
            host="n1",
            config={"lr": 0.01, "model": {"depth": 18}},
            tags=("baseline",),
            slurm_job_id=str(FAKE_JOB_IDS + 4242),
            slurm_partition="gpu",
            slurm_nodes="n1",
            gpu_type="a100",
            slurm={
                "requested": {
                    "gpus_per_node": 2,
                    "cpus_per_task": 4,
                    "mem_gb": 16,
                    "time_limit_min": 120,
                    "partition": "gpu",
                    "nodes": 1,
                },
                "command": ["python", "train.py", "--lr", "0.01"],
                "workdir": "/tmp",
            },
        )
    )
    step_arr = np.arange(steps, dtype=np.int64)
    loss, acc = _curve(rng, step_arr, 0.01)
    sys_steps = np.arange(0, 3600, 10, dtype=np.int64) + int(now - 3600)
    sys_metrics = {
        "train/loss": _columns(step_arr, now - 3600, loss),
        "val/acc": _columns(step_arr, now - 3600, acc),
    }
    for gpu in range(2):
        util = 70 + 20 * np.sin(sys_steps / 300 + gpu)
        sys_metrics[f"sys/n1/gpu{gpu}/util_pct"] = MetricColumns(sys_steps, sys_steps.astype(float), util)
        sys_metrics[f"sys/n1/gpu{gpu}/mem_mb"] = MetricColumns(
            sys_steps, sys_steps.astype(float), 30000 + util * 10
        )
        sys_metrics[f"sys/n1/gpu{gpu}/power_w"] = MetricColumns(
            sys_steps, sys_steps.astype(float), 200 + util
        )
    sys_metrics["sys/n1/r0/cpu_pct"] = MetricColumns(sys_steps, sys_steps.astype(float), 350 + 0 * sys_steps)
    sys_metrics["sys/n1/r0/rss_mb"] = MetricColumns(
        sys_steps, sys_steps.astype(float), 4000 + sys_steps % 500
    )
    store.log_metrics(live.id, sys_metrics)
    lines = tuple(
        LogLine(
            time=now - 3600 + k,
            stream="stderr" if k % 25 == 0 else "stdout",
            host="n1",
            rank=0,
            line=f"step {k * 20} loss {loss[k * 20]:.4f}" if k % 25 else f"warning: <b>not html</b> {k}",
        )
        for k in range(min(steps // 20, 100))
    )
    store.apply_batch(
        live.id,
        Batch(
            writer="seed-ui-writer",
            seq=1,
            logs=lines,
            artifacts=(
                ArtifactCreate(
                    path="/shared/ckpt/step-1000.pt", kind="checkpoint", size_bytes=123_456_789, step=1000
                ),
                ArtifactCreate(path="/shared/out/confusion.png", kind="file", size_bytes=40_000),
            ),
        ),
    )
    done = store.create_run(
        RunCreate(
            experiment_id=tiny.id,
            name="tiny-done",
            status=RunStatus.RUNNING,
            started_at=now - 7200,
            user_id=alice.id,
            config={"lr": 0.1},
        )
    )
    store.log_metrics(done.id, {"train/loss": _columns(step_arr, now - 7200, _curve(rng, step_arr, 0.1)[0])})
    store.update_run(done.id, RunUpdate(status=RunStatus.FINISHED, ended_at=now - 3600, exit_code=0))
    return {
        "api_key": key,
        "experiments": {"resnet-sweep": sweep.id, "tiny": tiny.id},
        "runs": {"live": live.id, "done": done.id, "first": made[0].id if made else None},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--runs", type=int, default=300)
    parser.add_argument("--steps", type=int, default=2000)
    args = parser.parse_args()
    args.data_dir.mkdir(parents=True, exist_ok=True)
    store = SqlStore(f"sqlite:///{args.data_dir / 'runyard.db'}")
    if store.schema_state().current is None:
        store.upgrade()
    try:
        print(json.dumps(seed(store, runs=args.runs, steps=args.steps)))
    finally:
        store.close()


if __name__ == "__main__":
    main()
