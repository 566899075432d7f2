"""``LocalSlurm``: runs Slurm's commands on this host. The one module that runs Slurm commands.

Every call goes through ``_run``: an argv list (never a shell), a timeout, stderr captured.
Failures become ``SlurmError`` with the command's own first error line (``SubmitFailed`` for
sbatch, with its whole message); a missing command says how to get a local cluster. Job ids are
checked before they reach a command line. Output is parsed by the pure ``runyard.slurm.parse``.
"""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Mapping, Sequence

from runyard.config import ENV_VARS
from runyard.errors import InvalidInput, SlurmError, SubmitFailed
from runyard.slurm.parse import (
    AccountingJob,
    NodeInfo,
    PartitionInfo,
    QueueJob,
    StartEstimate,
    parse_partitions,
    parse_sacct_json,
    parse_sinfo_json,
    parse_squeue_json,
    parse_start_estimates,
)

__all__ = ["LocalSlurm", "check_job_id"]

_JOB_ID_RE = re.compile(r"^\d+(_\d+)?$")
_MISSING_HINT = "is Slurm installed and on PATH? For a local cluster: runyard dev-cluster up"


def check_job_id(job_id: str) -> str:
    """``job_id`` when it is ``123`` or ``123_4``; anything else raises ``InvalidInput(field="job_id")``."""
    if not isinstance(job_id, str) or not _JOB_ID_RE.match(job_id):
        raise InvalidInput(f"job_id must look like '123' or '123_4', got {job_id!r}", field="job_id")
    return job_id


def job_environment() -> dict[str, str]:
    """The environment a submitted job inherits (sbatch's ``--export=ALL``): the server's own,
    minus its settings (database URL with its password, webhook secret, REST token, …)."""
    server_only = {var.name for var in ENV_VARS if var.side == "server"}
    return {k: v for k, v in os.environ.items() if k not in server_only}


def _lines(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip()]


class LocalSlurm:
    """Slurm's CLI on this host. ``bin_dir`` picks where the commands live (default: PATH)."""

    kind = "slurm"

    def __init__(self, *, timeout_s: float = 30, bin_dir: str | None = None) -> None:
        if isinstance(timeout_s, bool) or not isinstance(timeout_s, int | float) or not timeout_s > 0:
            raise InvalidInput(f"timeout_s must be a positive number, got {timeout_s!r}", field="timeout_s")
        self.timeout_s = timeout_s
        self.bin_dir = bin_dir

    # ------------------------------------------------------------------ commands

    def submit(self, script: str, *, workdir: str | None = None, env: Mapping[str, str] | None = None) -> str:
        """Submit ``script`` (sbatch reads it on stdin); the job id (an array's leader id).

        ``env`` is added to sbatch's environment, which the job inherits (sbatch's default
        ``--export=ALL``): secrets travel this way, never in the script text.
        """
        if workdir is not None and not os.path.isdir(workdir):
            raise InvalidInput(f"workdir {workdir!r} is not an existing directory", field="workdir")
        out = self._run(["sbatch", "--parsable"], stdin=script, cwd=workdir, refused=SubmitFailed, env=env)
        lines = _lines(out)
        job_id = lines[-1].split(";", 1)[0] if lines else ""
        if not _JOB_ID_RE.match(job_id):
            raise SubmitFailed(f"sbatch --parsable printed no job id: {out.strip()[:200]!r}")
        return job_id

    def queue(self) -> list[QueueJob]:
        """Every job slurmctld knows (``squeue --json`` ignores filters in 22.05: filter the result)."""
        return parse_squeue_json(self._run(["squeue", "--json"]))

    def accounting(self, job_ids: Sequence[str]) -> list[AccountingJob]:
        """``sacct --json`` for these jobs, in one call; no ids, no call."""
        ids = [check_job_id(job_id) for job_id in job_ids]
        if not ids:
            return []
        return parse_sacct_json(self._run(["sacct", "--json", "-j", ",".join(ids)]))

    def nodes(self) -> list[NodeInfo]:
        return parse_sinfo_json(self._run(["sinfo", "--json"]))

    def partitions(self) -> list[PartitionInfo]:
        """Every partition with its limits (``scontrol show partition``; 22.05 has no --json)."""
        return parse_partitions(self._run(["scontrol", "show", "partition", "--oneliner"]))

    def start_estimates(self) -> list[StartEstimate]:
        """Slurm's expected start of each pending job (``squeue --start``)."""
        return parse_start_estimates(self._run(["squeue", "--start", "--noheader", "-o", "%i|%S|%R"]))

    def cancel(self, job_id: str) -> None:
        self._run(["scancel", check_job_id(job_id)])

    def requeue(self, job_id: str) -> None:
        self._run(["scontrol", "requeue", check_job_id(job_id)])

    def hold(self, job_id: str) -> None:
        self._run(["scontrol", "hold", check_job_id(job_id)])

    def release(self, job_id: str) -> None:
        self._run(["scontrol", "release", check_job_id(job_id)])

    # ------------------------------------------------------------------ the one runner

    def _run(
        self,
        argv: list[str],
        stdin: str | None = None,
        *,
        cwd: str | None = None,
        refused: type[SlurmError] = SlurmError,
        env: Mapping[str, str] | None = None,
    ) -> str:
        """stdout of ``argv``; any failure raises ``SlurmError`` naming the command.

        A non-zero exit raises ``refused`` (``SubmitFailed`` for sbatch, with every line of its
        message, since sbatch's first line names the cause and the second the verdict).
        """
        name = argv[0]
        program = os.path.join(self.bin_dir, name) if self.bin_dir is not None else name
        where = f" in {self.bin_dir}" if self.bin_dir is not None else ""
        try:
            done = subprocess.run(
                [program, *argv[1:]],
                input=stdin,
                capture_output=True,
                text=True,
                timeout=self.timeout_s,
                check=False,
                cwd=cwd,
                env=None if env is None else {**job_environment(), **env},
            )
        except FileNotFoundError as exc:
            raise SlurmError(f"{name} not found{where}: {_MISSING_HINT}", field=None) from exc
        except PermissionError as exc:
            raise SlurmError(f"{name}{where} cannot be run: {exc.strerror}", field=None) from exc
        except subprocess.TimeoutExpired as exc:
            raise SlurmError(f"{name} timed out after {self.timeout_s:g} s", field=None) from exc
        if done.returncode != 0:
            lines = _lines(done.stderr) or _lines(done.stdout) or ["no error message"]
            detail = "; ".join(lines)[:1000] if refused is not SlurmError else lines[0]
            raise refused(f"{name} failed (exit {done.returncode}): {detail}", field=None)
        return done.stdout
