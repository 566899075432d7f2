"""``Executor``: what the server needs from a place that runs jobs, and how one is chosen.

Three implementations share this interface: ``LocalSlurm`` (Slurm's commands on this host),
``RestSlurm`` (slurmrestd, for a server off the cluster) and ``LocalExecutor`` (plain
subprocesses, for a laptop with no Slurm: the same scripts, the same records). The watcher,
launch, cancel and the cluster view only ever see an ``Executor``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from runyard.errors import InvalidInput
from runyard.slurm.parse import AccountingJob, NodeInfo, PartitionInfo, QueueJob

if TYPE_CHECKING:
    from runyard.config import Settings

__all__ = ["EXECUTOR_KINDS", "Executor", "open_executor"]

EXECUTOR_KINDS = ("auto", "slurm", "rest", "local", "none")


class Executor(Protocol):
    kind: str  # "slurm" or "local"

    def submit(self, script: str, *, workdir: str | None = None, env: Mapping[str, str] | None = None) -> str:
        """Submit an sbatch script; the job id (an array's leader id). ``env`` is added to the
        submitting process's environment (never written into the script)."""

    def queue(self) -> list[QueueJob]:
        """Every job the scheduler still knows (pending, running, recently ended)."""

    def accounting(self, job_ids: Sequence[str]) -> list[AccountingJob]:
        """Accounting records of these jobs (``123`` or ``123_4``), in one call."""

    def nodes(self) -> list[NodeInfo]: ...

    def partitions(self) -> list[PartitionInfo]:
        """Every partition with its limits (the local executor has one)."""

    def cancel(self, job_id: str) -> None: ...

    def requeue(self, job_id: str) -> None: ...


def open_executor(
    kind: str, *, state_dir: Path, timeout_s: float = 30, settings: Settings | None = None
) -> Executor | None:
    """The executor for ``kind`` (see ``EXECUTOR_KINDS``); ``auto`` picks Slurm when ``sbatch``
    is on PATH and ``scontrol ping`` finds a controller up, and the local executor otherwise;
    ``none`` gives None (no launching, no watcher).
    ``state_dir`` is where the local executor keeps its jobs; ``rest`` (slurmrestd) reads its
    address, user and token from ``settings``."""
    if kind not in EXECUTOR_KINDS:
        raise InvalidInput(
            f"RUNYARD_EXECUTOR must be one of {', '.join(EXECUTOR_KINDS)}", field="RUNYARD_EXECUTOR"
        )
    if kind == "none":
        return None
    if kind == "rest":
        return _open_rest(settings, timeout_s)
    if kind == "slurm" or (kind == "auto" and _slurm_answers()):
        from runyard.slurm.runner import LocalSlurm

        return LocalSlurm(timeout_s=timeout_s)
    from runyard.slurm.local import LocalExecutor

    return LocalExecutor(state_dir)


def _slurm_answers() -> bool:
    """Whether this host has Slurm's commands and a controller that answers (``auto``): a laptop
    with the client packages but no cluster gets the local executor, not failing submissions."""
    if not shutil.which("sbatch") or not shutil.which("scontrol"):
        return False
    try:
        done = subprocess.run(["scontrol", "ping"], capture_output=True, text=True, timeout=15, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0 and "UP" in done.stdout


def _open_rest(settings: Settings | None, timeout_s: float) -> Executor:
    import pwd

    from runyard.slurm.rest import RestSlurm

    if settings is None or not settings.slurmrestd_url:
        raise InvalidInput(
            "RUNYARD_EXECUTOR=rest needs RUNYARD_SLURMRESTD_URL (e.g. http://127.0.0.1:6820)",
            field="RUNYARD_SLURMRESTD_URL",
        )
    return RestSlurm(
        settings.slurmrestd_url,
        user=settings.slurmrestd_user or pwd.getpwuid(os.getuid()).pw_name,
        token=settings.slurmrestd_token or None,
        token_file=settings.slurmrestd_token_file or None,
        timeout_s=timeout_s,
    )
