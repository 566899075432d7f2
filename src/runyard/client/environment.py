"""What the job's environment says about where this process runs: Slurm job, host, rank.

These variables belong to Slurm and to the launchers (torchrun, srun), not to Runyard, so
they are not settings and are not in ``runyard.config.ENV_VARS``; this module is the one
place in the client that reads them, and only the names in ``CONTEXT_VARS``.

The run id of a job not launched by Runyard is derived from the Slurm identity of the job
(cluster + job id, or array job id + task id for array tasks), so a requeued job, which
keeps its job id, continues the *same* run instead of starting a new one.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

__all__ = [
    "CONTEXT_VARS",
    "JobContext",
    "array_run_id",
    "local_rank",
    "output_paths",
    "random_run_id",
    "read_context",
    "short_host",
    "slurm_run_id",
    "visible_gpus",
]

# Read-only context set by Slurm and launchers; the only non-Runyard variables the client reads.
CONTEXT_VARS: tuple[str, ...] = (
    "SLURM_JOB_ID",
    "SLURM_ARRAY_JOB_ID",
    "SLURM_ARRAY_TASK_ID",
    "SLURM_JOB_NODELIST",
    "SLURM_JOB_PARTITION",
    "SLURM_CLUSTER_NAME",
    "SLURM_RESTART_COUNT",
    "SLURMD_NODENAME",
    "SLURM_PROCID",
    "SLURM_LOCALID",
    "RANK",
    "LOCAL_RANK",
    "WORLD_SIZE",
    "CUDA_VISIBLE_DEVICES",
)

# uuid5 namespace for run ids derived from Slurm job identities (fixed forever: changing it
# would give a requeued job a different run id than its first attempt).
_RUN_ID_NAMESPACE = "6f0c2d9e-4b1a-5c77-9e3d-2a8b7c1f0e55"


def _get(name: str) -> str | None:
    if name not in CONTEXT_VARS:  # keep the allow-list honest
        raise KeyError(f"{name} is not in runyard.client.environment.CONTEXT_VARS")
    value = os.environ.get(name)
    return value.strip() if value and value.strip() else None


def _raw(name: str) -> str | None:
    """Like ``_get`` but keeps an empty value (None only when the variable is unset)."""
    if name not in CONTEXT_VARS:
        raise KeyError(f"{name} is not in runyard.client.environment.CONTEXT_VARS")
    return os.environ.get(name)


def _int_or_none(value: str | None) -> int | None:
    if value is None:
        return None
    try:
        return int(value)
    except ValueError:
        return None


@dataclass(frozen=True, slots=True)
class JobContext:
    """Where this process runs. ``rank`` is the global rank (0 outside distributed jobs)."""

    host: str
    rank: int
    local_rank: int | None
    world_size: int | None
    job_id: str | None
    array_job_id: str | None
    array_task_id: int | None
    nodes: str | None
    partition: str | None
    cluster: str | None
    restart_count: int | None

    def slurm_section(self) -> dict[str, object] | None:
        """The batch protocol's ``run.slurm`` object, or None outside Slurm."""
        if self.job_id is None:
            return None
        return {
            "job_id": self.job_id,
            "array_job_id": self.array_job_id,
            "array_task_id": self.array_task_id,
            "nodes": self.nodes,
            "partition": self.partition,
            "cluster": self.cluster,
        }


def read_context() -> JobContext:
    """Read the Slurm/launcher variables of this process (missing ones are None)."""
    host = _get("SLURMD_NODENAME")
    if host is None:
        import socket

        host = socket.gethostname()
    rank = _int_or_none(_get("RANK"))
    if rank is None:
        rank = _int_or_none(_get("SLURM_PROCID"))
    return JobContext(
        host=host,
        rank=rank or 0,
        local_rank=_int_or_none(_get("LOCAL_RANK")),
        world_size=_int_or_none(_get("WORLD_SIZE")),
        job_id=_get("SLURM_JOB_ID"),
        array_job_id=_get("SLURM_ARRAY_JOB_ID"),
        array_task_id=_int_or_none(_get("SLURM_ARRAY_TASK_ID")),
        nodes=_get("SLURM_JOB_NODELIST"),
        partition=_get("SLURM_JOB_PARTITION"),
        cluster=_get("SLURM_CLUSTER_NAME"),
        restart_count=_int_or_none(_get("SLURM_RESTART_COUNT")),
    )


def slurm_run_id(ctx: JobContext) -> str | None:
    """A stable 32-hex run id for this Slurm job (or array task); None outside Slurm.

    Array tasks use ``<array job id>_<task id>`` (each task is its own run); other jobs the
    job id. The cluster name keeps job ids of different clusters apart.
    """
    if ctx.job_id is None:
        return None
    import uuid

    if ctx.array_job_id is not None and ctx.array_task_id is not None:
        job = f"{ctx.array_job_id}_{ctx.array_task_id}"
    else:
        job = ctx.job_id
    identity = f"slurm:{ctx.cluster or ''}:{job}"
    return uuid.uuid5(uuid.UUID(_RUN_ID_NAMESPACE), identity).hex


def array_run_id(base_id: str, task_id: int) -> str:
    """The run id of task ``task_id`` of an array that ``runyard launch`` submitted with
    ``RUNYARD_ARRAY_BASE_ID=base_id`` (a UUID): the same for every attempt of that task."""
    import uuid

    return uuid.uuid5(uuid.UUID(base_id), str(task_id)).hex


def random_run_id() -> str:
    import uuid

    return uuid.uuid4().hex


def short_host() -> str:
    """``SLURMD_NODENAME``, else the host name up to its first dot (system metric keys)."""
    host = _get("SLURMD_NODENAME")
    if host is None:
        import socket

        host = socket.gethostname().split(".", 1)[0] or "localhost"
    return host


def local_rank() -> int:
    """This process's rank on its node: ``LOCAL_RANK``, else ``SLURM_LOCALID``, else 0."""
    for name in ("LOCAL_RANK", "SLURM_LOCALID"):
        value = _int_or_none(_get(name))
        if value is not None:
            return value
    return 0


def visible_gpus() -> tuple[str, ...] | None:
    """``CUDA_VISIBLE_DEVICES`` as a tuple of entries (indices or ``GPU-…``/``MIG-…`` UUIDs);
    None when it is unset (every GPU is visible), () when it hides them all."""
    raw = _raw("CUDA_VISIBLE_DEVICES")
    if raw is None:
        return None
    out: list[str] = []
    for part in raw.split(","):
        part = part.strip()
        if not part or part in ("-1", "NoDevFiles"):
            break  # CUDA stops at the first invalid entry
        out.append(part)
    return tuple(out)


def _parent_pid(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
        return int(data[data.rindex(b")") + 2 :].split()[1])
    except (OSError, ValueError, IndexError):
        return None


def _regular_target(pid: int | str, fd: int) -> str | None:
    import stat

    link = f"/proc/{pid}/fd/{fd}"
    try:
        if not stat.S_ISREG(os.stat(link).st_mode):
            return None
        path = os.readlink(link)
    except OSError:
        return None
    return path if path.startswith("/") and not path.endswith(" (deleted)") else None


def output_paths(parents: int = 0) -> dict[str, str] | None:
    """Where stdout and stderr go when they are regular files (a Slurm job's ``--output`` and
    ``--error``), as ``{"stdout": …, "stderr": …}``; None when neither is. With ``parents``,
    also look at that many ancestor processes: the job reporter runs inside ``$(…)``, whose
    stdout is a pipe, while the batch shell's is the job's output file."""
    pids: list[int | str] = ["self"]
    pid: int | None = os.getpid()
    for _ in range(parents):
        pid = os.getppid() if pid == os.getpid() else (_parent_pid(pid) if pid else None)
        if not pid or pid <= 1:
            break
        pids.append(pid)
    out: dict[str, str] = {}
    for fd, name in ((1, "stdout"), (2, "stderr")):
        for candidate in pids:
            path = _regular_target(candidate, fd)
            if path is not None:
                out[name] = path
                break
    return out or None
