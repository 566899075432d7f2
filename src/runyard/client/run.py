"""``runyard.init`` and the ``Run`` it returns: what a training script touches.

``run.log`` runs in the training loop, so it only stamps the time and appends a copy of the
dict to a queue (about a microsecond); the sender threads do everything else. Nothing in
here raises for network problems: an unreachable server means the journal, not an error.

Ranks: in a distributed job only global rank 0 (``RANK``, else ``SLURM_PROCID``) records
anything by default. On other ranks ``init`` returns a ``Run`` with the same id whose
``log``/``log_artifact``/config and summary updates stay local and send nothing (no
network, no journal, no threads) — except system metrics (``runyard.client.sampler``), which
every rank sends to the same run under rank-specific keys, and console lines. Pass ``log_all_ranks=True`` to
make every rank a writer of the same run (then give metrics rank-specific keys, since equal
keys would interleave).

Console (``runyard.client.console``): every rank that sends anything tees ``sys.stdout`` and
``sys.stderr`` into the run (each line with time, host and rank) unless
``capture_console=False`` or RUNYARD_CAPTURE_CONSOLE=0; ``finish()`` puts the streams back.

Stopping (``runyard.client.signals``): SIGUSR1 (Slurm's time-limit warning) and SIGTERM set
``run.should_stop`` and run the ``run.on_preempt`` callbacks; SIGTERM then flushes and exits
with status 143. The run's final status then says why it stopped (timeout, requeued,
cancelled, or nothing under Slurm, whose watcher knows better).
"""

from __future__ import annotations

import atexit
import contextlib
import os
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, MutableMapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

from runyard.client import console, signals
from runyard.client.encode import Warner, jsonable
from runyard.client.sender import Sender
from runyard.client.transport import Transport

if TYPE_CHECKING:
    from runyard.client.environment import JobContext
    from runyard.client.sampler import SystemSampler
    from runyard.client.settings import ClientSettings

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
        self._finishing_thread = 0  # the thread inside finish(), for the SIGTERM handler
        self._result: FinishResult | None = None
        # resume (set by init from SLURM_RESTART_COUNT and the server)
        self.resumed = False
        self.restart_count = 0
        self.latest_checkpoint: str | None = None
        # stopping
        self._preemption = signals.Preemption(self._record_checkpoint, self._terminate)
        self._signals_installed = False
        self._under_slurm = False
        self._owns_status = True  # False on a rank that only sends system metrics
        self._sampler: SystemSampler | None = None
        self._console: console.ConsoleBuffer | None = None

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

    def _emit_system(self, metrics: dict[str, float], step: int, t: float) -> None:
        """The sampler thread's way into the sender (also on ranks whose ``log`` is a no-op)."""
        s = self._sender
        if s is None or self._result is not None:
            return
        s.queue.append((step, t, metrics))
        # Two threads add to ``produced``; in CPython the += on a plain attribute is not
        # interrupted by a thread switch, and a rare miss only skews back-pressure slightly.
        s.produced += len(metrics)
        if s.produced - s.consumed >= s.soft_limit:
            s.pressure()

    # -- stopping -------------------------------------------------------------------------
    @property
    def should_stop(self) -> bool:
        """True once SIGUSR1 (time limit ahead) or SIGTERM arrived: save and leave the loop."""
        return self._preemption.should_stop

    @property
    def stop_reason(self) -> str | None:
        """Why the run should stop: "time_limit" (SIGUSR1), "terminated" (SIGTERM), or None."""
        return self._preemption.reason

    def on_preempt(self, fn: Callable[[], object]) -> Callable[[], object]:
        """Call ``fn()`` when SIGUSR1 or SIGTERM arrives (once per process; usable as a
        decorator). If it returns a path, that path is recorded as a checkpoint artifact at
        the current step. Exceptions are printed to stderr and otherwise ignored."""
        self._preemption.add(fn)
        return fn

    def _current_step(self) -> int | None:
        return self._next_step - 1 if self._next_step > 0 else None

    def _record_checkpoint(self, result: object) -> None:
        if isinstance(result, str | os.PathLike):
            self.log_artifact(result, kind="checkpoint", step=self._current_step())

    def _terminate(self) -> bool:
        """SIGTERM: flush for about 2 s and finish. False when the signal interrupted this
        thread's own ``finish()``: that one completes (raising SystemExit in the middle of it
        would cut it short) and the process then ends as the script ends."""
        if not self._finish_lock.acquire(blocking=False):
            return self._finishing_thread != threading.get_ident()
        try:
            self._finish_locked(None, None, bound_s=2.0)
        finally:
            self._finish_lock.release()
        return True

    def _stop_status(self, exit_code: int | None) -> tuple[str | None, int | None]:
        """The status (None: send none) after a stop signal, and the exit code to report."""
        if self._preemption.reason == signals.TIME_LIMIT:
            from runyard import config

            return ("requeued" if config.env("RUNYARD_REQUEUE") == "1" else "timeout"), exit_code
        if self._under_slurm:
            return None, exit_code  # cancelled, requeued or timed out: Slurm's watcher knows which
        return "cancelled", signals.SIGTERM_EXIT_CODE if exit_code is None else exit_code

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
            self._finishing_thread = threading.get_ident()
            return self._finish_locked(exit_code, status)

    def _finish_locked(
        self, exit_code: int | None, status: str | None, bound_s: float | None = None
    ) -> FinishResult:
        if self._result is not None:
            return self._result
        if status is not None and status not in _STATUSES:
            self._warner.warn(f"finish(status={status!r}) is not one of {', '.join(_STATUSES)}; using failed")
            status = "failed"
        send_status = self._owns_status
        if self._preemption.reason is not None and status in (None, "finished"):
            status, exit_code = self._stop_status(exit_code)  # a stopped run never "finished"
            send_status = send_status and status is not None
        elif status is None:
            status = "finished" if exit_code in (None, 0) else "failed"
        if self._sampler is not None:
            self._sampler.stop(0.5 if bound_s is not None else 2.0)
        if self._console is not None:
            console.detach(self._console)  # before the sender drains: an unfinished line goes too
        s = self._sender
        self._live = None
        if s is None:
            why = "disabled" if self.mode == "disabled" else f"rank {self.rank} does not log"
            result = FinishResult(True, 0, 0, None, f"runyard: run {self.id}: nothing sent ({why})")
        else:
            if send_status:
                update: dict[str, Any] = {"status": status, "ended_at": time.time()}
                if exit_code is not None:
                    update["exit_code"] = int(exit_code)
                s.queue.append(("update", update))
                s.produced += 1
            if bound_s is not None:
                s.finish_timeout_s = min(s.finish_timeout_s, bound_s)
            s.close()
            result = self._result_of(s)
            with contextlib.suppress(OSError, ValueError, RuntimeError):  # closed; re-entered by a signal
                print(result.message, file=sys.stderr, flush=True)
        self._result = result
        _ACTIVE.discard(self)
        if self._signals_installed:  # only now: a SIGTERM during the flush must not kill it
            signals.uninstall(self._preemption)
            self._signals_installed = False
        return result

    def _result_of(self, s: Sender) -> FinishResult:
        journal = s.journal_path if s.journal_exists else None
        notes = []
        if s.points_rejected:
            notes.append(f"{s.points_rejected:,} points rejected by the server, kept in {s.rejected_path}")
        if s.points_lost:
            notes.append(f"{s.points_lost:,} points could not be saved ({s.last_error or 'see warnings'})")
        if self._console is not None and self._console.dropped:
            notes.append(f"{self._console.dropped:,} console lines not captured (too many, too fast)")
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
        elif self.should_stop and issubclass(exc_type, SystemExit | KeyboardInterrupt):
            self.finish()  # stopped by a signal: the status says why
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
    handle_signals: bool | None = None,
    system_metrics: bool | None = None,
    capture_console: bool | None = None,
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
    the same id but records nothing unless ``log_all_ranks=True`` (system metrics and console
    lines aside).

    Resuming: a requeued job gets the same run id (RUNYARD_RUN_ID, RUNYARD_ARRAY_BASE_ID +
    the array task, or derived from the Slurm job). When RUNYARD_RUN_ID is set or
    SLURM_RESTART_COUNT > 0, ``init`` asks the server about the run: ``run.resumed`` (a
    restart, or points logged before), ``run.latest_checkpoint`` (the newest artifact of kind
    "checkpoint") and the automatic step counter, which continues after the last step logged.
    ``run.restart_count`` is SLURM_RESTART_COUNT.

    ``handle_signals`` (RUNYARD_HANDLE_SIGNALS; on) installs the SIGUSR1/SIGTERM handlers
    behind ``run.should_stop`` and ``run.on_preempt`` (main thread only); ``system_metrics``
    (on; RUNYARD_SYSTEM_INTERVAL_S seconds apart, 0 = off) samples CPU, memory and GPUs;
    ``capture_console`` (RUNYARD_CAPTURE_CONSOLE; on) sends what this process prints to
    stdout/stderr, line by line with time, host and rank, from every rank.
    ``_transport`` replaces the HTTP transport (tests).
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
    rid = _check_run_id(
        settings.run_id or _launched_run_id() or environment.slurm_run_id(ctx) or environment.random_run_id()
    )
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
    run.restart_count = ctx.restart_count or 0
    run.resumed = run.restart_count > 0
    run._under_slurm = ctx.job_id is not None
    if settings.mode == "disabled":
        return run

    from runyard.client import sampler
    from runyard.config import env as config_env

    records = ctx.rank == 0 or log_all_ranks
    interval = sampler.interval_s(system_metrics)
    capture = console.enabled(capture_console)
    online = settings.mode == "online"
    # Only a run launched for us (or a restarted job) can have a past worth asking about.
    launched = config_env("RUNYARD_RUN_ID") is not None or _launched_run_id() is not None
    look_up = online and (launched or run.resumed)
    transport = _transport
    if online and transport is None and (records or interval > 0 or capture or look_up):
        from runyard.client.transport import HttpTransport

        transport = HttpTransport(settings.url, timeout=settings.http_timeout_s)
    headers = {"Content-Type": "application/json", "Accept": "application/json"}
    if settings.api_key:
        headers["X-API-Key"] = settings.api_key
    reachable = True
    sender = None
    if records or interval > 0 or capture:
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
        first: dict[str, Any] = {"run": _run_section(run, settings, ctx, tags, notes)}
        if records:
            # For a run that already exists (a requeued job) the server ignores ``run``; the
            # update still records where this attempt runs. Ranks that only send system
            # metrics send no update: the run's host and status belong to rank 0.
            first["update"] = _attempt_update(ctx)
        out = sender.send_first(first, settings.init_timeout_s)
        if out is not None and out.error is not None and out.kind in ("auth", "rejected"):
            if transport is not None:
                transport.close()
            err = out.error
            if out.kind == "auth":
                err.message = (
                    f"{err.message} (server {settings.url}; set RUNYARD_API_KEY or pass api_key=...)"
                )
                err.args = (err.message,)
            raise err
        reachable = out is None or out.kind != "retry"
    if look_up and reachable and transport is not None:
        from runyard.client.resume import look_up as ask_server

        timeout = min(settings.http_timeout_s, settings.init_timeout_s)
        info = ask_server(transport, headers, rid, run.restart_count, timeout)
        run.resumed = info.resumed
        run.latest_checkpoint = info.latest_checkpoint
        run._next_step = info.next_step
    if sender is None:
        if transport is not None and transport is not _transport:
            transport.close()
    else:
        sender.start()
        run._sender = sender
        run._live = sender if records else None
        run._owns_status = records
        if interval > 0:
            run._sampler = sampler.SystemSampler(
                run._emit_system,
                interval_s=interval,
                host=environment.short_host(),
                rank=ctx.rank,
                gpus=environment.local_rank() == 0 or len(environment.visible_gpus() or ()) == 1,
                visible=environment.visible_gpus(),
                warner=run._warner,
            )
            run._sampler.start()
        if capture:
            run._console = console.ConsoleBuffer(host=environment.short_host(), rank=ctx.rank)
            sender.console = run._console
            console.attach(run._console)
        _register(run)
    if signals.enabled(handle_signals):
        run._signals_installed = signals.install(run._preemption)
    return run


def _launched_run_id() -> str | None:
    """The run id of an array task launched by ``runyard launch`` (RUNYARD_ARRAY_BASE_ID)."""
    from runyard import config
    from runyard.client import environment

    base = config.env("RUNYARD_ARRAY_BASE_ID")
    task = environment.read_context().array_task_id
    if base is None or task is None:
        return None
    try:
        return environment.array_run_id(base, task)
    except ValueError:
        return None


def _run_section(
    run: Run, settings: ClientSettings, ctx: JobContext, tags: Iterable[str] | None, notes: str | None
) -> dict[str, Any]:
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
    return section


def _attempt_update(ctx: JobContext) -> dict[str, Any]:
    from runyard.client import environment

    update: dict[str, Any] = {"host": ctx.host}
    if ctx.restart_count is not None:
        update["restart_count"] = ctx.restart_count
    if ctx.job_id is not None:
        paths = environment.output_paths()
        if paths is not None:
            update["slurm"] = paths
    return update
