"""The cluster view: nodes, partitions and the queue from the executor, joined with Runyard's runs.

One executor call per kind (``nodes``, ``partitions``, ``queue``) per snapshot, and snapshots are
shared for a few seconds (``SnapshotCache``) so a room full of dashboards costs slurmctld one
``squeue`` every few seconds, not one per page view (the GPU-hours aggregate, a scan of ended
runs, is kept for a minute). A failing call leaves its part empty and
says why in ``errors``; the rest of the view still answers. A pending job's ``start_estimate``
is squeue's ``start_time``, which for PENDING jobs is Slurm's expected start (set once the
backfill scheduler has looked at the job).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from runyard.entities import TERMINAL_STATUSES, Run, RunQuery, RunStatus, User
from runyard.errors import RunyardError
from runyard.slurm.executor import Executor
from runyard.slurm.parse import NodeInfo, PartitionInfo, QueueJob
from runyard.slurm.watcher import expand_task_string
from runyard.store.base import Store

__all__ = [
    "GPU_HOURS_TTL_S",
    "SNAPSHOT_TTL_S",
    "ClusterSnapshot",
    "SnapshotCache",
    "build_view",
    "gpu_hours_by_experiment",
    "take_snapshot",
]

SNAPSHOT_TTL_S = 5.0
GPU_HOURS_TTL_S = 60.0  # the aggregate scans many runs and changes slowly
GPU_HOURS_MAX_RUNS = 10_000  # finished runs scanned for GPU-hours, newest first
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class ClusterSnapshot:
    taken_at: float
    executor: str
    nodes: list[NodeInfo] = field(default_factory=list)
    partitions: list[PartitionInfo] = field(default_factory=list)
    queue: list[QueueJob] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)


def _call(errors: dict[str, str], part: str, fn: Callable[[], list[T]]) -> list[T]:
    try:
        return fn()
    except RunyardError as exc:
        errors[part] = exc.message
        return []


def take_snapshot(executor: Executor) -> ClusterSnapshot:
    """One ``nodes()``, one ``partitions()`` and one ``queue()`` call; failures go to ``errors``."""
    errors: dict[str, str] = {}
    return ClusterSnapshot(
        taken_at=time.time(),
        executor=str(getattr(executor, "kind", "unknown")),
        nodes=_call(errors, "nodes", executor.nodes),
        partitions=_call(errors, "partitions", executor.partitions),
        queue=_call(errors, "queue", executor.queue),
        errors=errors,
    )


class SnapshotCache:
    """The last snapshot and the GPU-hours aggregate, each reused for ``ttl_s`` seconds."""

    def __init__(self, ttl_s: float = SNAPSHOT_TTL_S) -> None:
        self.ttl_s = ttl_s
        self._lock = threading.Lock()
        self._entries: dict[str, tuple[float, Any]] = {}

    def get(self, key: str, load: Callable[[], T], ttl_s: float | None = None) -> T:
        """``load()``'s value, reused for ``ttl_s`` (default: the cache's) seconds."""
        with self._lock:  # one loader at a time: concurrent requests wait and share its result
            hit = self._entries.get(key)
            if hit is not None and hit[0] > time.monotonic():
                value: T = hit[1]
                return value
            value = load()
            self._entries[key] = (time.monotonic() + (self.ttl_s if ttl_s is None else ttl_s), value)
            return value

    def invalidate(self) -> None:
        with self._lock:
            self._entries.clear()


# --------------------------------------------------------------------------- joining runs


class RunIndex:
    """Runyard runs by the ids squeue shows for them."""

    def __init__(self, runs: Iterable[Run]) -> None:
        self.by_job: dict[str, Run] = {}
        self.by_task: dict[tuple[str, int], Run] = {}
        for run in runs:
            if run.slurm_job_id:
                self.by_job.setdefault(run.slurm_job_id, run)
            if run.slurm_array_job_id and run.slurm_array_task_id is not None:
                self.by_task.setdefault((run.slurm_array_job_id, run.slurm_array_task_id), run)

    def runs_for(self, job: QueueJob) -> list[Run]:
        found: dict[str, Run] = {}

        def add(run: Run | None) -> None:
            if run is not None:
                found.setdefault(run.id, run)

        add(self.by_job.get(str(job.job_id)))
        if job.array_job_id is not None:
            leader = str(job.array_job_id)
            if job.array_task_id is not None:
                tasks = [job.array_task_id]
            else:  # the pending rest of an array, e.g. 17_[2-9%2]
                tasks = expand_task_string(job.array_task_string or "")[:10_000]
            for task in tasks:
                add(self.by_job.get(f"{leader}_{task}"))
                add(self.by_task.get((leader, task)))
        return list(found.values())


def _node_json(node: NodeInfo) -> dict[str, Any]:
    return {
        "name": node.name,
        "state": node.state,
        "cpus_alloc": node.alloc_cpus,
        "cpus_total": node.cpus,
        "gpus_used": node.gpus_used,
        "gpus_total": node.gpus_total,
        "memory_alloc_mb": node.alloc_memory_mb,
        "memory_total_mb": node.real_memory_mb,
        "partitions": list(node.partitions),
        "reason": node.reason,
    }


def _partition_json(part: PartitionInfo) -> dict[str, Any]:
    return {
        "name": part.name,
        "state": part.state,
        "default": part.default,
        "max_time_min": part.max_time_min,
        "default_time_min": part.default_time_min,
        "nodes": part.nodes,
        "total_nodes": part.total_nodes,
        "total_cpus": part.total_cpus,
        "gpus": part.gpus,
        "memory_mb": part.memory_mb,
    }


def _job_json(job: QueueJob, runs: list[Run]) -> dict[str, Any]:
    pending = job.state == "PENDING"
    return {
        "id": job.display_id,
        "job_id": job.job_id,
        "array_job_id": job.array_job_id,
        "array_task_id": job.array_task_id,
        "name": job.name,
        "user": job.user,
        "state": job.state,
        "reason": job.reason,
        "partition": job.partition,
        "nodes": job.nodes,
        "gpus_per_node": job.gpus_per_node,
        "time_limit_min": job.time_limit_min,
        "submit_time": job.submit_time,
        "start_time": None if pending else job.start_time,
        "start_estimate": job.start_time if pending else None,
        "restart_count": job.restart_count,
        "run_id": runs[0].id if runs else None,
        "run_ids": [run.id for run in runs],
    }


# --------------------------------------------------------------------------- GPU-hours


def _run_gpu_hours(run: Run) -> float | None:
    acct = run.slurm.get("accounting") if isinstance(run.slurm, dict) else None
    if not isinstance(acct, dict):
        return None
    gpus, elapsed = acct.get("gpus"), acct.get("elapsed_s")
    if isinstance(gpus, bool) or isinstance(elapsed, bool):
        return None
    if not isinstance(gpus, int | float) or not isinstance(elapsed, int | float) or gpus < 0 or elapsed < 0:
        return None
    return float(gpus) * float(elapsed) / 3600.0


# ended runs: every status that is not terminal excluded (filters are ANDed)
_ENDED_FILTERS = tuple(
    ("status", "!=", status.value) for status in RunStatus if status not in TERMINAL_STATUSES
)


def gpu_hours_by_experiment(store: Store, *, max_runs: int = GPU_HOURS_MAX_RUNS) -> dict[str, Any]:
    """GPU-hours of ended runs with Slurm accounting, per experiment and per user (newest
    ``max_runs`` ended runs; ``truncated`` says whether there were more)."""
    per_experiment: dict[str, dict[str, Any]] = {}
    scanned, offset, truncated = 0, 0, False
    while True:
        page = store.search_runs(
            RunQuery(
                filters=_ENDED_FILTERS,
                sort="ended_at",
                descending=True,
                limit=min(1000, max_runs - scanned),
                offset=offset,
                metric_keys=(),
            )
        )
        for run in page.runs:
            hours = _run_gpu_hours(run)
            if hours is None:
                continue
            entry = per_experiment.setdefault(
                run.experiment_id,
                {
                    "experiment_id": run.experiment_id,
                    "project_id": run.project_id,
                    "runs": 0,
                    "gpu_hours": 0.0,
                    "by_user": {},
                },
            )
            entry["runs"] += 1
            entry["gpu_hours"] += hours
            user = run.user_id or ""
            entry["by_user"][user] = entry["by_user"].get(user, 0.0) + hours
        scanned += len(page.runs)
        if page.next_offset is None:
            break
        if scanned >= max_runs:
            truncated = True
            break
        offset = page.next_offset
    return {"experiments": per_experiment, "scanned_runs": scanned, "truncated": truncated}


# --------------------------------------------------------------------------- the view


def build_view(
    snapshot: ClusterSnapshot,
    tracked: list[Run],
    gpu_hours: dict[str, Any],
    names: dict[str, str],
    user: User,
) -> dict[str, Any]:
    """The JSON of ``GET /api/v1/cluster`` for ``user``: ``mine`` holds the queue rows of their runs."""
    index = RunIndex(tracked)
    queue: list[dict[str, Any]] = []
    mine: list[dict[str, Any]] = []
    for job in snapshot.queue:
        runs = index.runs_for(job)
        row = _job_json(job, runs)
        queue.append(row)
        if any(run.user_id == user.id for run in runs):
            mine.append(row)
    experiments = []
    for entry in gpu_hours["experiments"].values():
        experiments.append(
            {
                "experiment_id": entry["experiment_id"],
                "experiment": names.get(entry["experiment_id"]),
                "project_id": entry["project_id"],
                "runs": entry["runs"],
                "gpu_hours": round(entry["gpu_hours"], 3),
                "my_gpu_hours": round(entry["by_user"].get(user.id, 0.0), 3),
            }
        )
    experiments.sort(key=lambda e: (-e["gpu_hours"], e["experiment"] or ""))
    return {
        "executor": snapshot.executor,
        "taken_at": snapshot.taken_at,
        "nodes": [_node_json(node) for node in snapshot.nodes],
        "partitions": [_partition_json(part) for part in snapshot.partitions],
        "queue": queue,
        "mine": mine,
        "gpu_hours": {
            "experiments": experiments,
            "scanned_runs": gpu_hours["scanned_runs"],
            "truncated": gpu_hours["truncated"],
        },
        "errors": snapshot.errors,
    }
