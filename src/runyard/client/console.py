"""Console capture: the lines a run's process writes to ``sys.stdout`` and ``sys.stderr``.

``runyard.init`` (``capture_console``, RUNYARD_CAPTURE_CONSOLE; on) replaces both streams
with a tee. A tee first hands every write to the stream it replaced, unchanged (the same
text, the same flushing; ``isatty``, ``fileno``, ``encoding`` and everything else are the
original's), then cuts complete lines out of what was written and gives each one, with its
time, stream, host (SLURMD_NODENAME or the short host name) and global rank, to every run
capturing in this process. The run's sender thread sends them in its batches (``logs``), so
they are journaled when the server is down, like metrics.

    print("loss 0.3") ──▶ tee ──▶ original stream (the terminal, the job's output file)
                            └──▶ ConsoleBuffer (one per run) ──▶ sender thread ──▶ batch "logs"

Nothing here may slow down or break the training thread:

* a line is cut at ``MAX_LINE_CHARS`` characters and marked (``TRUNCATED``); a progress bar
  redrawn with ``\\r`` keeps only what it showed last;
* each run takes at most ``LINES_PER_S`` lines a second (bursts of ``BURST_LINES``) and holds
  at most ``MAX_PENDING_LINES`` lines / ``MAX_PENDING_CHARS`` characters waiting for its
  sender; beyond that lines are dropped and counted (never waited for), and a line saying how
  many were dropped takes their place;
* an error while capturing is swallowed: the original stream already has the text.

Only text written through ``sys.stdout``/``sys.stderr`` after ``init`` is captured:
``print``, tracebacks, warnings, and logging handlers that write to the stream they find
there. Bytes written to ``sys.stdout.buffer``, output written to the file descriptors
directly (C extensions, subprocesses) and writes to a stream saved before ``init`` go to
the job's output file only (``runyard logs``) — except ``logging.StreamHandler``s created
earlier (``logging.basicConfig()``, libraries' loggers): those that write to the stream being
replaced are pointed at its tee, and back when capturing ends. The client's own
``runyard: …`` messages bypass the tee, so they are never captured. A forked child (a data
loader worker) writes through without capturing. ``finish()`` of the last capturing run
hands any unfinished line over and puts the original streams back (unless something else
replaced them meanwhile, in which case the tee stays in place and only writes through).
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import threading
import time
from collections import deque
from collections.abc import Iterable
from typing import Any, TextIO, cast

from runyard import config

__all__ = [
    "BURST_LINES",
    "LINES_PER_S",
    "MAX_LINE_CHARS",
    "MAX_PENDING_CHARS",
    "MAX_PENDING_LINES",
    "TRUNCATED",
    "ConsoleBuffer",
    "attach",
    "detach",
    "enabled",
    "original_stream",
]

MAX_LINE_CHARS = 8192
TRUNCATED = " [… cut by runyard]"
LINES_PER_S = 1000.0
BURST_LINES = 5000
MAX_PENDING_LINES = 20_000
MAX_PENDING_CHARS = 8 * 1024 * 1024
STREAMS = ("stdout", "stderr")

# Process-wide, like the streams themselves. Reentrant: a signal handler that prints runs on
# the thread that may be inside a tee already.
_lock = threading.RLock()
_buffers: list[ConsoleBuffer] = []  # the runs capturing now
_tees: dict[str, _Tee] = {}  # the tees this process installed, by stream
_handlers: list[tuple[Any, _Tee]] = []  # logging handlers pointed at a tee


class _Local(threading.local):
    busy = False  # this thread is inside a tee: a tee under it only writes through


_local = _Local()
_fork_hook = {"registered": False}


def enabled(argument: bool | None) -> bool:
    """``init(capture_console=...)`` > RUNYARD_CAPTURE_CONSOLE > on."""
    if argument is not None:
        return bool(argument)
    name = "RUNYARD_CAPTURE_CONSOLE"
    raw = (config.env(name) or config.default(name)).strip().lower()
    return raw not in ("0", "false", "no", "off")


def original_stream(stream: TextIO) -> TextIO:
    """The stream under a tee (for the client's own messages); ``stream`` itself otherwise."""
    return stream._original if isinstance(stream, _Tee) else stream


class ConsoleBuffer:
    """One run's captured lines, waiting for its sender thread. Bounded; never blocks."""

    def __init__(self, host: str, rank: int) -> None:
        self.host = host
        self.rank = rank
        self._items: deque[tuple[float, str, str]] = deque()
        # characters waiting = _chars_in - _chars_out; each counter has one writer (the
        # capturing threads under _lock, the sender thread), so take() needs no lock
        self._chars_in = 0
        self._chars_out = 0
        self._tokens = float(BURST_LINES)
        self._refilled = time.monotonic()
        self.captured = 0  # lines taken in
        self.dropped = 0  # lines dropped: over the rate or the memory bound
        self._unreported = 0  # dropped since the last "lines dropped" note
        self._unreported_stream = "stdout"

    def __len__(self) -> int:
        return len(self._items)

    def offer(self, t: float, stream: str, line: str) -> None:
        """Take one line (under ``_lock``), or count it as dropped."""
        now = time.monotonic()
        self._tokens = min(float(BURST_LINES), self._tokens + (now - self._refilled) * LINES_PER_S)
        self._refilled = now
        if (
            self._tokens < 1.0
            or len(self._items) >= MAX_PENDING_LINES
            or self._chars_in - self._chars_out + len(line) > MAX_PENDING_CHARS
        ):
            self.dropped += 1
            self._unreported += 1
            self._unreported_stream = stream
            return
        if self._unreported:
            self._note_dropped(t)
        self._tokens -= 1.0
        self._items.append((t, stream, line))
        self._chars_in += len(line)
        self.captured += 1

    def _note_dropped(self, t: float) -> None:
        n, self._unreported = self._unreported, 0
        note = (
            f"[runyard: {n:,} lines not captured here: more than {LINES_PER_S:,.0f} lines/s or "
            f"{MAX_PENDING_LINES:,} waiting to be sent; the job's output file has them all]"
        )
        self._items.append((t, self._unreported_stream, note))
        self._chars_in += len(note)

    def close(self) -> None:
        """The run is finishing: say how many lines were dropped at the end, if any."""
        with _lock:
            if self._unreported:
                self._note_dropped(time.time())

    def take(self, max_lines: int, max_chars: int) -> list[tuple[float, str, str]]:
        """The oldest waiting lines (sender thread only): at most ``max_lines`` / about
        ``max_chars``. Takes no lock: a signal handler may hold ``_lock`` while it waits for
        the sender thread to finish."""
        out: list[tuple[float, str, str]] = []
        chars = 0
        items = self._items
        while items and len(out) < max_lines and chars < max_chars:
            item = items.popleft()  # atomic; only this thread removes
            chars += len(item[2])
            out.append(item)
        self._chars_out += chars
        return out

    def to_json(self, items: list[tuple[float, str, str]]) -> tuple[str, int]:
        """The batch's ``logs`` object for ``items`` as JSON text, and its characters of text."""
        lines = []
        chars = 0
        for _, _, line in items:
            if "\x00" in line:
                line = line.replace("\x00", "\ufffd")  # PostgreSQL stores no NUL
            if not line.isascii():  # lone surrogates (undecodable bytes) cannot travel as UTF-8
                line = line.encode("utf-8", "replace").decode("utf-8")
            chars += len(line)
            lines.append(line)
        n = len(items)
        body = {
            "times": [t for t, _, _ in items],
            "streams": [s for _, s, _ in items],
            "hosts": [self.host] * n,
            "ranks": [self.rank] * n,
            "lines": lines,
        }
        return json.dumps(body, separators=(",", ":"), allow_nan=False), chars


def _clean(line: str, cut: bool) -> str:
    if line.endswith("\r"):
        line = line.rstrip("\r")  # CRLF
    if "\r" in line:  # a progress bar redrawn in place: keep what was shown last
        parts = [p for p in line.split("\r") if p.strip()]
        line = parts[-1] if parts else ""
    if len(line) > MAX_LINE_CHARS:
        line, cut = line[:MAX_LINE_CHARS], True
    return line + TRUNCATED if cut else line


class _Tee:
    """Stands in for ``sys.stdout`` / ``sys.stderr``; see the module docstring.

    ``print`` writes each argument and separator on its own, so most writes are a piece of a
    line: they are only appended to a list (no lock; two threads printing at once garble
    their lines in the stream anyway). A write holding a newline or a ``\\r``, or a line
    grown past the limit, takes ``_lock`` and cuts lines.
    """

    def __init__(self, original: TextIO, stream: str) -> None:
        self._original = original
        self._stream = stream
        self._pieces: list[str] = []  # the line being written, as written
        self._size = 0  # their characters
        self._cut = False  # the line being written was longer than MAX_LINE_CHARS

    # -- the stream ---------------------------------------------------------------------
    def write(self, text: str) -> int:
        if not _buffers or _local.busy:
            return self._original.write(text)
        _local.busy = True
        try:
            n = self._original.write(text)
            if isinstance(text, str):
                if "\n" in text or "\r" in text or self._size > MAX_LINE_CHARS:
                    try:  # noqa: SIM105 - contextlib.suppress costs more than the capture
                        self._capture(text)
                    except Exception:  # never break a print because of capturing
                        pass
                else:
                    self._pieces.append(text)
                    self._size += len(text)
            return n
        finally:
            _local.busy = False

    def writelines(self, lines: Iterable[str]) -> None:
        lines = list(lines)
        if not _buffers or _local.busy:
            self._original.writelines(lines)
            return
        _local.busy = True
        try:
            self._original.writelines(lines)
            try:  # noqa: SIM105
                self._capture("".join(lines))
            except Exception:
                pass
        finally:
            _local.busy = False

    def flush(self) -> None:
        self._original.flush()

    def isatty(self) -> bool:
        return self._original.isatty()

    def fileno(self) -> int:
        return self._original.fileno()

    @property
    def encoding(self) -> str:
        return self._original.encoding

    @property
    def errors(self) -> str | None:
        return self._original.errors

    def __getattr__(self, name: str) -> Any:  # buffer, closed, mode, name, reconfigure, …
        return getattr(self._original, name)

    def __repr__(self) -> str:
        return f"<runyard console tee of {self._original!r}>"

    # -- capturing ----------------------------------------------------------------------
    def _capture(self, text: str) -> None:
        with _lock:
            pieces = self._pieces
            pieces.append(text)
            joined = "".join(pieces)
            self._pieces, self._size = [], 0
            if "\n" not in joined:
                self._keep(joined)
                return
            parts = joined.split("\n")
            t = time.time()
            buffers = list(_buffers)
            cut = self._cut
            for part in parts[:-1]:
                line = _clean(part, cut)
                cut = False
                for b in buffers:
                    b.offer(t, self._stream, line)
            self._cut = False
            self._keep(parts[-1])

    def _keep(self, rest: str) -> None:
        """The unfinished line (under ``_lock``): only what a redraw left, cut to the limit."""
        if "\r" in rest:
            i = rest.rfind("\r")
            if i < len(rest) - 1:  # redrawn: what came before the last \r is gone
                rest, self._cut = rest[i + 1 :], False
        if len(rest) > MAX_LINE_CHARS + 1:  # +1: room for the \r of a CRLF
            rest, self._cut = rest[: MAX_LINE_CHARS + 1], True
        if rest:
            self._pieces, self._size = [rest], len(rest)

    def _flush_partial(self) -> None:
        """Hand an unfinished line over (under ``_lock``; the last capturing run finishes)."""
        rest = "".join(self._pieces)
        self._pieces, self._size = [], 0
        if rest:
            line = _clean(rest, self._cut)
            self._cut = False
            if line:
                t = time.time()
                for b in _buffers:
                    b.offer(t, self._stream, line)


def _point_logging_handlers(tees: list[_Tee]) -> None:
    """Point logging's stream handlers that write to a replaced stream at its tee."""
    logging: Any = sys.modules.get("logging")
    if logging is None or not tees:  # not imported: no handlers exist
        return
    loggers = [logging.getLogger()]
    loggers += [
        lg for lg in list(logging.Logger.manager.loggerDict.values()) if isinstance(lg, logging.Logger)
    ]
    for lg in loggers:
        for handler in list(lg.handlers):
            if not isinstance(handler, logging.StreamHandler) or isinstance(handler, logging.FileHandler):
                continue
            for tee in tees:
                if handler.stream is tee._original:
                    handler.setStream(tee)
                    _handlers.append((handler, tee))


def _after_fork_in_child() -> None:
    """A forked child has no sender threads: its writes go through uncaptured."""
    global _lock
    _lock = threading.RLock()  # the parent's may have been held by another thread
    _buffers.clear()
    _tees.clear()


def attach(buffer: ConsoleBuffer) -> None:
    """Start capturing into ``buffer``, installing the tees if no run captures yet."""
    with _lock:
        if not _fork_hook["registered"]:
            _fork_hook["registered"] = True
            os.register_at_fork(after_in_child=_after_fork_in_child)
        if not _buffers:
            new = []
            for name in STREAMS:
                current = getattr(sys, name, None)
                if current is None:  # no console at all (pythonw, some daemons)
                    continue
                if isinstance(current, _Tee):  # left in place by an earlier run: reuse it
                    _tees[name] = current
                    continue
                tee = _Tee(current, name)
                _tees[name] = tee
                setattr(sys, name, cast(TextIO, tee))
                new.append(tee)
            with contextlib.suppress(Exception):  # odd logging state: those lines go uncaptured
                _point_logging_handlers(new)
        if buffer not in _buffers:
            _buffers.append(buffer)


def detach(buffer: ConsoleBuffer) -> None:
    """Stop capturing into ``buffer``; the last run to stop takes the tees out again."""
    with _lock:
        if buffer not in _buffers:
            return
        if len(_buffers) == 1:
            for tee in _tees.values():
                tee._flush_partial()
        _buffers.remove(buffer)
        buffer.close()
        if _buffers:
            return
        for name, tee in _tees.items():
            if getattr(sys, name, None) is tee:
                setattr(sys, name, tee._original)
            # else someone replaced the stream after us (and may still write to the tee):
            # leave it; with no run capturing it only writes through
        _tees.clear()
        for handler, tee in _handlers:
            if handler.stream is tee:
                with contextlib.suppress(Exception):
                    handler.setStream(tee._original)
        _handlers.clear()
