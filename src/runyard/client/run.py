"""``runyard.init`` and the ``Run`` it returns: what a training script touches.

``run.log`` runs in the training loop, so it only stamps the time and appends a copy of the
dict to a queue (about a microsecond); the sender threads do everything else. Nothing in
here raises for network problems: an unreachable server means the journal, not an error.

Ranks: in a distributed job only global rank 0 (``RANK``, else ``SLURM_PROCID``) records
anything by default. On other ranks ``init`` returns a ``Run`` with the same id whose
``log``/``log_artifact``/config and summary updates stay local and send nothing (no
network, no journal, no threads); pass ``log_all_ranks=True`` to make every rank a writer
of the same run (then give metrics rank-specific keys, since equal keys would interleave).
"""

from __future__ import annotations

import atexit
import contextlib
import os
import sys
import threading
import time
from collections.abc import Iterable, Iterator, Mapping, MutableMapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

from runyard.client.encode import Warner, jsonable
from runyard.client.sender import Sender
from runyard.client.transport import Transport

__all__ = ["FinishResult", "Run", "init"]

_STATUSES = ("finished", "failed", "timeout", "cancelled", "oom", "node_fail", "requeued")
_RUN_ID_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-")


@dataclass(frozen=True, slots=True)
class FinishResult:
    """What ``run.finish()`` achieved. ``synced``: everything is confirmed by the server;
    otherwise the rest is fsynced in ``journal`` (upload it with ``runyard sync``)."""

    synced: bool
    points_sent: int
    points_journaled: int
    journal: Path | None
    message: str


class _Section(MutableMapping[str, Any]):
    """``run.config`` / ``run.summary``: a dict whose writes are sent as run updates."""

    def __init__(self, run: Run, kind: str, initial: Mapping[str, Any]) -> None:
        self._run = run
        self._kind = kind
        self._data: dict[str, Any] = dict(initial)

    def __getitem__(self, key: str) -> Any:
        return self._data[key]

    def __setitem__(self, key: str, value: Any) -> None:
        self._data[key] = value
        self._run._control(self._kind, {key: value})

    def __delitem__(self, key: str) -> None:
        raise TypeError(f"run.{self._kind} keys cannot be deleted; set {key!r} to None instead")

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def update(self, other: Any = (), /, **kwargs: Any) -> None:  # one update, not one per key
        merged = dict(other, **kwargs)
        self._data.update(merged)
        if merged:
            self._run._control(self._kind, merged)

    def as_dict(self) -> dict[str, Any]:
        return dict(self._data)

    def __repr__(self) -> str:
        return f"{self._kind}({self._data!r})"


class Run:
    """One run. Create it with ``runyard.init()``; finish it with ``finish()`` or ``with``."""

    def __init__(
        self,
        *,
        run_id: str,
        name: str,
        project: str | None,
        experiment: str | None,
        experiment_id: str | None,
        url: str | None,
        mode: str,
        rank: int,
        config: Mapping[str, Any],
    ) -> None:
        self.id = run_id
        self.name = name
        self.project = project
        self.experiment = experiment
        self.experiment_id = experiment_id
        self.url = url
        self.mode = mode
        self.rank = rank
        self.config: _Section = _Section(self, "config", config)
        self.summary: _Section = _Section(self, "summary", {})
        self._next_step = 0
        self._sender: Sender | None = None
        self._live: Sender | None = None  # the sender while log() records; None = no-op
        self._warner = Warner()
        self._pid = os.getpid()
        self._finish_lock = threading.Lock()
        self._result: FinishResult | None = None

    def __repr__(self) -> str:
        return f"<runyard.Run {self.id} name={self.name!r} mode={self.mode}>"

    # -- recording ------------------------------------------------------------------------
    def log(self, metrics: Mapping[str, Any], step: int | None = None) -> None:
        """Record metric values at ``step`` (default: one more than the last step logged).

        Costs about a microsecond and never raises for bad values or network trouble: the
        sender thread validates (non-numbers are skipped with a warning) and sends.
        """
        s = self._live
        if s is None:
            if self._result is not None:
                self._warner.warn("run.log() after run.finish() is ignored", "log-after-finish")
            return
        if step is None:
            step = self._next_step
            self._next_step = step + 1
        else:
            try:  # noqa: SIM105 - contextlib.suppress costs a microsecond here
                self._next_step = step + 1
            except TypeError:  # a bad step: the sender warns and skips it
                pass
        try:
            d = dict(metrics)
        except (TypeError, ValueError):
            self._warner.warn(f"run.log() takes a dict of metric values, got {type(metrics).__name__}")
            return
        s.queue.append((step, time.time(), d))
        s.produced += len(d)
        if s.produced - s.consumed >= s.soft_limit:
            s.pressure()

    def log_artifact(
        self,
        path: str | os.PathLike[str],
        kind: str = "file",
        *,
        name: str | None = None,
        step: int | None = None,
    ) -> None:
        """Record a file (or a URI such as ``s3://…``) the run produced: its path, size and,
        for files up to 256 MiB, sha256 (computed in the sender thread). The bytes stay where
        they are; put checkpoints on shared storage."""
        p = os.fspath(path)
        if "://" not in p:
            p = os.path.abspath(p)
        self._control("artifact", {"path": p, "kind": kind, "name": name, "step": step})

    def add_tags(self, *tags: str) -> None:
        self._control("tags_add", [str(t) for t in tags])

    def _control(self, kind: str, payload: Any) -> None:
        s = self._live
        if s is None:
            if self._result is not None:
                self._warner.warn(f"run.{kind} changes after run.finish() are ignored", f"{kind}-after")
            return
        s.queue.append((kind, payload))
        s.produced += 1
        if s.produced - s.consumed >= s.soft_limit:
            s.pressure()

    @property
    def journal(self) -> Path | None:
        """This process's journal, while one exists (offline, or the server was unreachable)."""
        s = self._sender
        return s.journal_path if s is not None and s.journal_exists else None

    # -- finishing ------------------------------------------------------------------------
    def finish(self, exit_code: int | None = None, status: str | None = None) -> FinishResult:
        """Flush and close the run; idempotent (later calls return the first result).

        Status defaults to "finished" for exit code None or 0, else "failed". Returns once
        every point is confirmed by the server or fsynced in the journal; waits up to
        RUNYARD_FINISH_TIMEOUT_S (30 s) while the server answers, one quick attempt when it
        does not. Prints one line to stderr saying which.
        """
        with self._finish_lock:
            if self._result is not None:
                return self._result
            if status is None:
                status = "finished" if exit_code in (None, 0) else "failed"
            elif status not in _STATUSES:
                self._warner.warn(
                    f"finish(status={status!r}) is not one of {', '.join(_STATUSES)}; using failed"
                )
                status = "failed"
            s = self._sender
            self._live = None
            if s is None:
                why = "disabled" if self.mode == "disabled" else f"rank {self.rank} does not log"
                result = FinishResult(True, 0, 0, None, f"runyard: run {self.id}: nothing sent ({why})")
            else:
                update: dict[str, Any] = {"status": status, "ended_at": time.time()}
                if exit_code is not None:
                    update["exit_code"] = int(exit_code)
                s.queue.append(("update", update))
                s.produced += 1
                s.close()
                result = self._result_of(s)
                with contextlib.suppress(OSError, ValueError):  # stderr closed at exit
                    print(result.message, file=sys.stderr, flush=True)
            self._result = result
            _ACTIVE.discard(self)
            return result

    def _result_of(self, s: Sender) -> FinishResult:
        journal = s.journal_path if s.journal_exists else None
        notes = []
        if s.points_rejected:
            notes.append(f"{s.points_rejected:,} points rejected by the server, kept in {s.rejected_path}")
        if s.points_lost:
            notes.append(f"{s.points_lost:,} points could not be saved ({s.last_error or 'see warnings'})")
        extra = "; " + "; ".join(notes) if notes else ""
        if journal is None:
            where = f" — {self.url}" if self.url else ""
            msg = f"runyard: run {self.id} synced: {s.points_sent:,} points{extra}{where}"
            return FinishResult(not s.points_lost, s.points_sent, 0, None, msg)
        n = s.points_journaled
        fix = f"upload with: runyard sync {journal}"
        if s.state == "offline":
            why = f"offline run {self.id}"
        elif s.state == "auth":
            why, fix = "the server refused the API key", f"upload with a valid key: runyard sync {journal}"
        elif s.state == "down":
            why = "server unreachable"
        else:
            why = f"the server did not take everything within {s.finish_timeout_s:g} s"
        msg = f"runyard: {why}; {n:,} points saved to {journal} — {fix}{extra}"
        return FinishResult(False, s.points_sent, n, journal, msg)

    def __enter__(self) -> Run:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc_type is None:
            self.finish()
        else:
            self.finish(exit_code=1, status="failed")


# -- process-wide: finish what the script forgot -----------------------------------------
_ACTIVE: set[Run] = set()  # runs started by this process and not finished yet
_HOOKS = {"installed": False, "uncaught": False}


def _excepthook_chain() -> None:
    previous = sys.excepthook

    def hook(tp: type[BaseException], value: BaseException, tb: TracebackType | None) -> None:
        _HOOKS["uncaught"] = True
        previous(tp, value, tb)

    sys.excepthook = hook


def _finish_at_exit() -> None:
    failed = bool(_HOOKS["uncaught"])
    for run in list(_ACTIVE):
        if run._pid == os.getpid():
            run.finish(exit_code=1 if failed else None, status="failed" if failed else None)


def _register(run: Run) -> None:
    _ACTIVE.add(run)
    if not _HOOKS["installed"]:
        _HOOKS["installed"] = True
        atexit.register(_finish_at_exit)
        _excepthook_chain()


# -- init ----------------------------------------------------------------------------------
def _check_run_id(run_id: str) -> str:
    if not (0 < len(run_id) <= 64 and run_id[0].isalnum() and set(run_id) <= _RUN_ID_CHARS):
        from runyard.errors import InvalidInput

        raise InvalidInput(
            f"run id {run_id!r} must be 1-64 characters of A-Z, a-z, 0-9, _, . and -, "
            "starting with a letter or digit",
            field="run_id",
        )
    return run_id


def init(
    project: str | None = None,
    experiment: str | None = None,
    name: str | None = None,
    config: Mapping[str, Any] | None = None,
    tags: Iterable[str] | None = None,
    *,
    notes: str | None = None,
    url: str | None = None,
    api_key: str | None = None,
    run_id: str | None = None,
    experiment_id: str | None = None,
    mode: str | None = None,
    spool_dir: str | os.PathLike[str] | None = None,
    log_all_ranks: bool = False,
    max_buffer_points: int | None = None,
    flush_interval_s: float = 1.0,
    _transport: Transport | None = None,
) -> Run:
    """Start (or, with the same run id, continue) a run and return it.

    Every setting resolves argument > environment variable > config file > default:
    ``url`` (RUNYARD_URL, TRACKER_API), ``api_key`` (RUNYARD_API_KEY, TRACKER_API_KEY),
    ``project``/``experiment`` (RUNYARD_PROJECT/RUNYARD_EXPERIMENT, or EXPERIMENT_ID for an
    existing experiment), ``run_id`` (RUNYARD_RUN_ID; else derived from the Slurm job so a
    requeued job continues its run; else random), ``mode`` (RUNYARD_MODE: online, offline =
    journal only, disabled), ``spool_dir`` (RUNYARD_SPOOL_DIR, where journals go).

    Online, the run is registered with the server before ``init`` returns (5 s timeout): a
    wrong API key raises ``runyard.errors.Unauthorized`` and an invalid request (say an
    unknown ``experiment_id``) the server's error, while an unreachable server only prints a
    warning: the run goes on in the journal and is uploaded when the server answers again.

    On a rank other than global rank 0 (``RANK``, else ``SLURM_PROCID``) the returned run has
    the same id but records nothing unless ``log_all_ranks=True``. A requeued job gets the
    same run id; its step counter starts at 0 again, so pass ``step=`` when resuming from a
    checkpoint. ``_transport`` replaces the HTTP transport (tests).
    """
    from runyard.client import environment
    from runyard.client.settings import resolve_settings

    settings = resolve_settings(
        project=project,
        experiment=experiment,
        url=url,
        api_key=api_key,
        run_id=run_id,
        experiment_id=experiment_id,
        mode=mode,
        spool_dir=spool_dir,
        max_buffer_points=max_buffer_points,
        flush_interval_s=flush_interval_s,
    )
    ctx = environment.read_context()
    rid = _check_run_id(settings.run_id or environment.slurm_run_id(ctx) or environment.random_run_id())
    if config is not None and not isinstance(config, Mapping):
        config = vars(config)  # argparse.Namespace and similar
    run = Run(
        run_id=rid,
        name=name or rid[:8],
        project=settings.project,
        experiment=settings.experiment,
        experiment_id=settings.experiment_id,
        url=f"{settings.url}/runs/{rid}" if settings.url else None,
        mode=settings.mode,
        rank=ctx.rank,
        config=config or {},
    )
    if settings.mode == "disabled" or (ctx.rank != 0 and not log_all_ranks):
        return run

    online = settings.mode == "online"
    transport = _transport
    if online and transport is None:
        from runyard.client.transport import HttpTransport

        transport = HttpTransport(settings.url, timeout=settings.http_timeout_s)
    headers = {"Content-Type": "application/json", "Accept": "application/json"}
    if settings.api_key:
        headers["X-API-Key"] = settings.api_key
    sender = Sender(
        run_id=rid,
        writer=os.urandom(8).hex(),
        online=online,
        spool_dir=settings.spool_dir,
        transport=transport if online else None,
        headers=headers,
        max_points=settings.max_buffer_points,
        flush_interval_s=settings.flush_interval_s,
        retry_min_s=settings.retry_min_s,
        retry_max_s=settings.retry_max_s,
        http_timeout_s=settings.http_timeout_s,
        finish_timeout_s=settings.finish_timeout_s,
        warner=run._warner,
    )
    section: dict[str, Any] = {
        "name": run.name,
        "config": jsonable(run.config.as_dict()),
        "tags": [str(t) for t in (tags or ())],
        "notes": notes or "",
        "host": ctx.host,
        "status": "running",
        "started_at": time.time(),
    }
    if settings.experiment_id:
        section["experiment_id"] = settings.experiment_id
    else:
        section["project"] = settings.project
        section["experiment"] = settings.experiment
    slurm = ctx.slurm_section()
    if slurm is not None:
        section["slurm"] = slurm
    # For a run that already exists (a requeued job) the server ignores ``run``; the update
    # still records where this attempt runs.
    update: dict[str, Any] = {"host": ctx.host}
    if ctx.restart_count is not None:
        update["restart_count"] = ctx.restart_count
    out = sender.send_first({"run": section, "update": update}, settings.init_timeout_s)
    if out is not None and out.error is not None and out.kind in ("auth", "rejected"):
        if transport is not None:
            transport.close()
        err = out.error
        if out.kind == "auth":
            err.message = f"{err.message} (server {settings.url}; set RUNYARD_API_KEY or pass api_key=...)"
            err.args = (err.message,)
        raise err
    sender.start()
    run._sender = run._live = sender
    _register(run)
    return run
