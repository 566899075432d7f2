"""Slurm's stop signals, turned into ``run.should_stop`` and ``run.on_preempt`` callbacks.

Slurm warns a job before its time limit with SIGUSR1 (``--signal=B:USR1@N``; the batch
script that ``runyard launch`` writes forwards it to the command) and stops it with SIGTERM
(``scancel``, the time limit, a requeue, a node drain), followed by SIGKILL after KillWait.

    SIGUSR1  reason "time_limit": should_stop turns True, callbacks run; the script goes on,
             finishes its step and exits by itself
    SIGTERM  reason "terminated": should_stop, callbacks, then each run flushes what it
             buffered (about 2 s at most) and the process exits with SystemExit(143)

One process-wide handler per signal serves every run this process started (signals are
process-wide); it is installed by the first run and the previous handlers come back when
the last run finishes. A Python handler that was there before is still called after ours.
In a forked child (a data loader worker) or with no run left, the handler behaves like the
previous one. Handlers can only be installed from the main thread; elsewhere ``install``
returns False and the run simply never sees a signal.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import traceback
from collections.abc import Callable
from types import FrameType
from typing import Any

from runyard import config

__all__ = ["TERMINATED", "TIME_LIMIT", "Preemption", "enabled", "install", "uninstall"]

TIME_LIMIT, TERMINATED = "time_limit", "terminated"
_REASONS = {signal.SIGUSR1: TIME_LIMIT, signal.SIGTERM: TERMINATED}
SIGTERM_EXIT_CODE = 128 + signal.SIGTERM  # what a shell reports for a process ended by SIGTERM


def enabled(argument: bool | None) -> bool:
    """``init(handle_signals=...)`` > RUNYARD_HANDLE_SIGNALS > on."""
    if argument is not None:
        return bool(argument)
    raw = (config.env("RUNYARD_HANDLE_SIGNALS") or config.default("RUNYARD_HANDLE_SIGNALS")).strip().lower()
    return raw not in ("0", "false", "no", "off")


def _say(message: str) -> None:
    try:
        sys.stderr.write(f"runyard: {message}\n")
        sys.stderr.flush()
    except (OSError, ValueError, RuntimeError):  # closed, or a re-entrant write from the handler
        pass


class Preemption:
    """One run's view of the stop signals.

    ``record(result)`` is called with what a callback returned (the run records a path as a
    checkpoint artifact); ``terminate()`` flushes the run before the process exits on SIGTERM
    and returns False when the process must not exit yet (the signal interrupted the run's
    own ``finish()``, which then completes).
    """

    def __init__(self, record: Callable[[object], None], terminate: Callable[[], bool]) -> None:
        self.reason: str | None = None
        self._record = record
        self._terminate = terminate
        self._pending: list[Callable[[], object]] = []  # callbacks that have not run yet

    @property
    def should_stop(self) -> bool:
        return self.reason is not None

    def add(self, fn: Callable[[], object]) -> None:
        if not callable(fn):
            raise TypeError(f"run.on_preempt() takes a function, got {type(fn).__name__}")
        self._pending.append(fn)

    def notice(self, reason: str) -> None:
        """A stop signal arrived: set the flags and run every callback that has not run yet
        (each callback runs once per process, whatever signals follow)."""
        self.reason = reason
        while self._pending:
            fn = self._pending.pop(0)
            try:
                result = fn()
            except Exception:
                _say(
                    f"warning: run.on_preempt callback {getattr(fn, '__qualname__', fn)!r} raised "
                    f"(ignored):\n{traceback.format_exc().rstrip()}"
                )
                continue
            if result is not None:
                try:
                    self._record(result)
                except Exception:
                    _say(f"warning: could not record the checkpoint {result!r}:\n{traceback.format_exc()}")

    def terminate(self) -> bool:
        try:
            return self._terminate()
        except Exception:
            _say(f"warning: flushing the run on SIGTERM failed:\n{traceback.format_exc().rstrip()}")
            return True


# Process-wide, because signal handlers are: the runs being served and what was there before.
_state_lock = threading.Lock()
_runs: list[Preemption] = []
_previous: dict[int, Any] = {}
_owner = {"pid": -1}


def install(p: Preemption) -> bool:
    """Serve ``p`` from the handlers, installing them if needed; False off the main thread."""
    if threading.current_thread() is not threading.main_thread():
        return False
    with _state_lock:
        if _owner["pid"] != os.getpid():  # first run here, or a forked child: the parent's
            _runs.clear()  # runs are not ours (its handlers and their predecessors still are)
            _owner["pid"] = os.getpid()
        if not _previous:
            try:
                for signum in _REASONS:
                    old = signal.signal(signum, _handle)
                    _previous[signum] = signal.SIG_DFL if old is _handle else old  # never chain to self
            except (ValueError, OSError):  # not the main interpreter, or an unsupported platform
                _restore_locked()
                return False
        _runs.append(p)
    return True


def uninstall(p: Preemption) -> None:
    """Stop serving ``p``; the previous handlers come back when no run is left (from the main
    thread; from another thread ours stays, and behaves like the previous one)."""
    with _state_lock:
        if p in _runs:
            _runs.remove(p)
        if not _runs and _previous and threading.current_thread() is threading.main_thread():
            _restore_locked()


def _restore_locked() -> None:
    for signum, previous in _previous.items():
        try:
            if signal.getsignal(signum) is _handle:  # someone installed theirs after us: keep it
                signal.signal(signum, previous if previous is not None else signal.SIG_DFL)
        except (ValueError, OSError):
            pass
    _previous.clear()


def _handle(signum: int, frame: FrameType | None) -> None:
    reason = _REASONS.get(signal.Signals(signum))
    runs = list(_runs) if os.getpid() == _owner["pid"] else []
    if reason is None or not runs:
        _act_like_previous(signum, frame)
        return
    for p in runs:
        p.notice(reason)
    exit_now = True
    if reason == TERMINATED:
        for p in runs:
            exit_now = p.terminate() and exit_now
    previous = _previous.get(signum)
    if callable(previous):
        previous(signum, frame)
    if reason == TERMINATED and exit_now:
        raise SystemExit(SIGTERM_EXIT_CODE)


def _act_like_previous(signum: int, frame: FrameType | None) -> None:
    previous = _previous.get(signum, signal.SIG_DFL)
    if callable(previous):
        previous(signum, frame)
    elif previous != signal.SIG_IGN and signum == signal.SIGTERM:
        # the default action: die of the signal, as the parent expects
        signal.signal(signum, signal.SIG_DFL)
        os.kill(os.getpid(), signum)
    # SIGUSR1 without a run (say, in a forked data loader worker) is ignored rather than fatal
