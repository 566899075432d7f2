"""Reading a run's stdout/stderr file from shared storage, a window of whole lines at a time.

Only the paths a run recorded (``run.slurm["stdout"]`` / ``["stderr"]``, set by ``runyard
launch`` or by the client from ``/proc/self/fd``) are ever opened, and only when they resolve
(symlinks followed) to a regular file under ``Settings.log_roots`` (when set) and outside the
server's data directory and the system directories. Files are opened non-blocking (a FIFO
cannot hang a worker) and read with ``pread`` from the byte offset the caller passes.

A window holds whole lines only: a partial last line waits for the next call, so a follower
passes ``next_offset`` back and never sees half a line (``eof`` says the window reached the end
of the file, a waiting partial line included, so a follower knows to pause) — except when the run has ended
(``final``), when nothing more will come and the last partial line is returned as well. A
line longer than the window is cut, so a follower always moves on. A file shorter than the
offset (rewritten, e.g. by a requeued job) is read again from 0 with ``reset: true``.
"""

from __future__ import annotations

import os
import re
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from runyard.entities import Run
from runyard.errors import Forbidden, InvalidInput, NotFound

__all__ = ["DEFAULT_LIMIT_BYTES", "MAX_LIMIT_BYTES", "LogWindow", "read_window", "resolve_output"]

DEFAULT_LIMIT_BYTES = 256 * 1024
MAX_LIMIT_BYTES = 4 * 1024 * 1024
_SYSTEM_DIRS = tuple(Path(p) for p in ("/etc", "/proc", "/sys", "/dev", "/boot", "/run", "/var/lib"))
_PLACEHOLDER = re.compile(r"%(%|[A-Za-z])")


@dataclass(frozen=True, slots=True)
class LogWindow:
    offset: int  # where this window starts (0 after a reset)
    next_offset: int  # pass back to continue
    size: int  # the file's size when read
    lines: list[dict[str, Any]]  # {"offset": byte offset of the line, "text": the line}
    reset: bool  # the file was shorter than the offset asked: read again from 0
    eof: bool  # read up to the end of the file (a partial last line may still wait there)


def _within(path: Path, root: Path) -> bool:
    return path == root or root in path.parents


def _expand(template: str, run: Run) -> str:
    """Slurm's ``%A %a %j %x %%`` filled from the run; unknown placeholders stay as they are."""
    job = run.slurm_job_id or ""
    values = {
        "%": "%",
        "A": run.slurm_array_job_id or (job if job.isdigit() else ""),
        "a": "" if run.slurm_array_task_id is None else str(run.slurm_array_task_id),
        "j": job if job.isdigit() else "",
        "x": str(run.slurm.get("job_name") or ""),
    }

    def fill(match: re.Match[str]) -> str:
        return values.get(match.group(1)) or match.group(0)

    return _PLACEHOLDER.sub(fill, template)


def _recorded(run: Run, stream: str) -> str | None:
    value = run.slurm.get(stream) if isinstance(run.slurm, dict) else None
    return value if isinstance(value, str) and value.strip() else None


def resolve_output(
    run: Run, stream: str, *, roots: tuple[Path, ...], data_dir: Path | None
) -> tuple[Path, bool]:
    """The real path of the run's ``stream`` file and whether stdout and stderr are one file.

    ``NotFound(field="stream")`` when the run recorded no such file or it does not exist (yet);
    ``Forbidden`` when it lies outside what this server may read.
    """
    if stream not in ("stdout", "stderr"):
        raise InvalidInput(f"stream must be stdout or stderr, got {stream!r}", field="stream")
    recorded = _recorded(run, stream)
    if recorded is None:
        hint = " (the job has not been launched or reported yet)" if run.slurm_job_id is None else ""
        raise NotFound(f"run {run.id!r} has no {stream} file recorded{hint}", field="stream")
    path_text = recorded if os.path.exists(recorded) or "%" not in recorded else _expand(recorded, run)
    if not os.path.isabs(path_text):
        raise NotFound(
            f"run {run.id!r} recorded a relative {stream} path {recorded!r}; it cannot be found",
            field="stream",
        )
    real = Path(os.path.realpath(path_text))
    if roots and not any(_within(real, root) for root in roots):
        allowed = ":".join(str(r) for r in roots)
        raise Forbidden(
            f"the {stream} file {real} is outside the directories this server may read ({allowed}); "
            "an admin can add its directory to RUNYARD_LOG_ROOTS"
        )
    denied = [*_SYSTEM_DIRS, *([data_dir.resolve()] if data_dir is not None else [])]
    if any(_within(real, d) for d in denied):
        raise Forbidden(f"the {stream} file {real} is in a directory this server does not serve")
    if not real.exists():
        raise NotFound(
            f"run {run.id!r} has no {stream} file yet: {path_text} does not exist on the server "
            "(the job may still be pending, or the path is not on shared storage)",
            field="stream",
        )
    other = _recorded(run, "stderr" if stream == "stdout" else "stdout")
    same = other is not None and os.path.realpath(other) == str(real)
    return real, same


def _text(raw: bytes) -> str:
    text = raw.decode("utf-8", errors="replace").rstrip("\r")
    if "\r" in text:  # a progress bar redrawn in place: keep what was shown last
        parts = [p for p in text.split("\r") if p.strip()]
        text = parts[-1] if parts else ""
    return text


def _split(data: bytes, start: int) -> list[dict[str, Any]]:
    """``data`` (starting at byte ``start``) as lines; a last piece without newline is a line too."""
    if not data:
        return []
    parts = data.split(b"\n")
    if data.endswith(b"\n"):
        parts.pop()
    lines: list[dict[str, Any]] = []
    position = start
    for raw in parts:
        lines.append({"offset": position, "text": _text(raw)})
        position += len(raw) + 1
    return lines


def _open(path: Path) -> int:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOFOLLOW", 0))
    except FileNotFoundError:
        raise NotFound(f"{path} does not exist (yet)", field="stream") from None
    except OSError as exc:
        raise Forbidden(f"the server cannot read {path}: {exc.strerror}") from None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise Forbidden(f"{path} is not a regular file")
    return fd


def read_window(
    path: Path,
    *,
    offset: int = 0,
    limit_bytes: int = DEFAULT_LIMIT_BYTES,
    tail: int | None = None,
    final: bool,
) -> LogWindow:
    """Whole lines from ``offset`` (at most ``limit_bytes``), or the last ``tail`` lines."""
    if offset < 0:
        raise InvalidInput("offset must be 0 or more", field="offset")
    if not 1 <= limit_bytes <= MAX_LIMIT_BYTES:
        raise InvalidInput(f"limit_bytes must be between 1 and {MAX_LIMIT_BYTES}", field="limit_bytes")
    if tail is not None and tail < 0:
        raise InvalidInput("tail must be 0 or more", field="tail")
    fd = _open(path)
    try:
        size = os.fstat(fd).st_size
        if tail is not None:
            return _tail(fd, size, tail, limit_bytes, final)
        reset = offset > size
        start = 0 if reset else offset
        data = os.pread(fd, min(limit_bytes, size - start), start) if size > start else b""
    finally:
        os.close(fd)
    cut = data.rfind(b"\n") + 1
    if cut == 0 and len(data) == limit_bytes:
        cut = len(data)  # one line longer than the window: hand it over in pieces
    elif final and start + len(data) >= size:
        cut = len(data)  # the run has ended: the last line will not be finished
    chunk = data[:cut]
    return LogWindow(
        offset=start,
        next_offset=start + len(chunk),
        size=size,
        lines=_split(chunk, start),
        reset=reset,
        eof=start + len(data) >= size,
    )


def _tail(fd: int, size: int, count: int, limit_bytes: int, final: bool) -> LogWindow:
    start = max(0, size - limit_bytes)
    data = os.pread(fd, size - start, start) if size > start else b""
    end = len(data) if final else data.rfind(b"\n") + 1
    body = data[:end]
    if start > 0:  # the window began inside a line: drop that piece
        first = body.find(b"\n")
        body, start = (body[first + 1 :], start + first + 1) if first >= 0 else (b"", start + len(body))
    lines = _split(body, start)[-count:] if count else []
    first_offset = lines[0]["offset"] if lines else start + len(body)
    return LogWindow(
        offset=first_offset, next_offset=start + len(body), size=size, lines=lines, reset=False, eof=True
    )
