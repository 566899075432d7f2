"""The job-side reporter that the batch scripts of ``runyard launch`` call around the command.

    RUNYARD_RUN_ID=$(python -m runyard.client.jobreport start)
    export RUNYARD_RUN_ID
    <the user's command>
    python -m runyard.client.jobreport exit $? [--status requeued|timeout]

So a run is tracked (running, host, restarts, where the job's output goes, how it ended) even
when the command never imports runyard. ``start`` prints the run id on stdout: RUNYARD_RUN_ID,
else for array tasks ``array_run_id(RUNYARD_ARRAY_BASE_ID, SLURM_ARRAY_TASK_ID)``, else the
id derived from the Slurm job (the one ``runyard.init`` derives too).

Each attempt of a job is one writer, ``job-<SLURM_JOB_ID>-<SLURM_RESTART_COUNT>``: ``start``
is its seq 1, ``exit`` its seq 2, so the server applies each once however often they are
re-sent. Each is one HTTP attempt (at most 5 s); what cannot be sent is appended to the
journal in RUNYARD_SPOOL_DIR, where ``runyard sync`` (or the next ``runyard.init`` of the
run) uploads it, in order: ``exit`` goes to the journal too while ``start`` is still there.

It never fails the job: it always exits 0 and reports trouble as one line on stderr.
"""

from __future__ import annotations

import json
import re
import sys
import time
from pathlib import Path
from typing import Any

from runyard import config
from runyard.client import environment

__all__ = ["main", "resolve_run_id", "writer_name"]

_PROG = "runyard jobreport"
_USAGE = "usage: python -m runyard.client.jobreport start | exit CODE [--status requeued|timeout]"
_EXIT_STATUSES = ("requeued", "timeout")
_MAX_TIMEOUT_S = 5.0


def resolve_run_id(ctx: environment.JobContext) -> str | None:
    """RUNYARD_RUN_ID > the array task's id under RUNYARD_ARRAY_BASE_ID > the Slurm-derived id."""
    explicit = config.env("RUNYARD_RUN_ID")
    if explicit:
        return explicit.strip()
    base = config.env("RUNYARD_ARRAY_BASE_ID")
    if base and ctx.array_task_id is not None:
        return environment.array_run_id(base.strip(), ctx.array_task_id)
    return environment.slurm_run_id(ctx)


def writer_name(ctx: environment.JobContext, run_id: str) -> str:
    """``job-<job id>-<restart count>``: one writer per attempt of the job (8-64 characters)."""
    job = ctx.job_id or run_id[:16]
    name = re.sub(r"[^A-Za-z0-9_-]", "_", f"job-{job}-{ctx.restart_count or 0}")[:64]
    return name.ljust(8, "_")


def _timeout_s() -> float:
    raw = config.env("RUNYARD_HTTP_TIMEOUT_S") or config.default("RUNYARD_HTTP_TIMEOUT_S")
    try:
        value = float(raw)
    except ValueError:
        return _MAX_TIMEOUT_S
    return min(max(value, 0.1), _MAX_TIMEOUT_S) if value == value else _MAX_TIMEOUT_S


def _run_section(ctx: environment.JobContext, run_id: str, now: float) -> dict[str, Any]:
    section: dict[str, Any] = {"name": run_id[:8], "host": ctx.host, "status": "running", "started_at": now}
    experiment_id = config.env("EXPERIMENT_ID")
    if experiment_id:
        section["experiment_id"] = experiment_id
    else:
        section["project"] = config.client_setting(None, ("RUNYARD_PROJECT",), "project")
        section["experiment"] = config.client_setting(None, ("RUNYARD_EXPERIMENT",), "experiment")
    slurm = ctx.slurm_section()
    if slurm is not None:
        section["slurm"] = slurm
    return section


def _start_batch(ctx: environment.JobContext, run_id: str, writer: str) -> dict[str, Any]:
    now = time.time()
    update: dict[str, Any] = {
        "status": "running",
        "started_at": now,
        "host": ctx.host,
        "restart_count": ctx.restart_count or 0,
    }
    # called as $(… start): our stdout is a pipe, the batch shell's is the job's output file
    paths = environment.output_paths(parents=2) if ctx.job_id is not None else None
    if paths is not None:
        update["slurm"] = paths
    return {"writer": writer, "seq": 1, "run": _run_section(ctx, run_id, now), "update": update}


def _exit_batch(writer: str, code: int, status: str | None) -> dict[str, Any]:
    status = status or ("finished" if code == 0 else "failed")
    update: dict[str, Any] = {"status": status, "exit_code": code}
    if status != "requeued":  # a requeued job's run goes on with the next attempt
        update["ended_at"] = time.time()
    return {"writer": writer, "seq": 2, "update": update}


def _journal(path: Path, body: bytes) -> None:
    from runyard.client.journal import JournalWriter

    writer = JournalWriter(path)
    try:
        writer.append(body)
    finally:
        writer.close()


def _deliver(run_id: str, writer: str, batch: dict[str, Any]) -> str:
    """Send the batch once, or journal it; returns what happened, for the one stderr line."""
    from runyard.client.journal import journal_name

    body = json.dumps(batch, separators=(",", ":"), allow_nan=False).encode()
    spool = config.client_setting(None, ("RUNYARD_SPOOL_DIR",), "spool_dir") or config.default(
        "RUNYARD_SPOOL_DIR"
    )
    journal = Path(spool).expanduser() / journal_name(run_id, writer)
    url = (config.client_setting(None, ("RUNYARD_URL", "TRACKER_API"), "url") or "").rstrip("/")
    key = config.client_setting(None, ("RUNYARD_API_KEY", "TRACKER_API_KEY"), "api_key")
    headers = {"Content-Type": "application/json", "Accept": "application/json"}
    if key:
        headers["X-API-Key"] = key
    from runyard.client import delivery
    from runyard.client.transport import HttpTransport
    from runyard.errors import InvalidInput

    try:
        transport = HttpTransport(url, timeout=_timeout_s())
    except InvalidInput as exc:
        _journal(journal, body)
        return f"{exc.message}; saved to {journal} (upload with: runyard sync {journal})"
    try:
        if journal.exists():  # an earlier batch of this attempt is waiting: it goes first
            from runyard.client.sync import sync_files

            sync_files([journal], transport, headers, retries=0)
            if journal.exists():
                _journal(journal, body)
                return f"server unreachable; saved to {journal} (upload with: runyard sync {journal})"
        rejected = Path(f"{journal}.rejected")
        out = delivery.deliver(transport, headers, run_id, body, timeout=_timeout_s(), rejected_path=rejected)
    finally:
        transport.close()
    if out.kind == delivery.OK:
        return ""
    if out.kind == delivery.REJECTED:
        return f"the server rejected the report of run {run_id} ({out.message}); kept in {rejected}"
    _journal(journal, body)
    return f"{out.message}; saved to {journal} (upload with: runyard sync {journal})"


def _parse(argv: list[str]) -> tuple[str, int, str | None]:
    if argv[:1] == ["start"] and len(argv) == 1:
        return "start", 0, None
    if argv[:1] == ["exit"] and len(argv) in (2, 4):
        try:
            code = int(argv[1])
        except ValueError:
            raise ValueError(f"exit takes the command's exit code, got {argv[1]!r}; {_USAGE}") from None
        status = None
        if len(argv) == 4:
            if argv[2] != "--status" or argv[3] not in _EXIT_STATUSES:
                raise ValueError(_USAGE)
            status = argv[3]
        return "exit", code, status
    raise ValueError(_USAGE)


def main(argv: list[str] | None = None) -> int:
    """Always 0: a tracking problem must never fail the job."""
    try:
        command, code, status = _parse(sys.argv[1:] if argv is None else argv)
        ctx = environment.read_context()
        run_id = resolve_run_id(ctx)
        if run_id is None:
            raise ValueError("no run id: set RUNYARD_RUN_ID or run inside a Slurm job")
        writer = writer_name(ctx, run_id)
        if command == "start":
            print(run_id, flush=True)
            batch = _start_batch(ctx, run_id, writer)
        else:
            batch = _exit_batch(writer, code, status)
        problem = _deliver(run_id, writer, batch)
    except Exception as exc:  # anything at all: one line, exit 0
        problem = f"{type(exc).__name__}: {exc}" if not isinstance(exc, ValueError) else str(exc)
    if problem:
        try:
            sys.stderr.write(f"{_PROG}: {problem}\n")
            sys.stderr.flush()
        except (OSError, ValueError):
            pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
