"""Console lines (``run_logs``): what the client captured from a run's stdout and stderr.

Lines arrive inside batches (``apply_batch``), so they are stored exactly once, in the
batch's transaction. ``id`` orders a run's lines as they arrived and pages them: a reader
passes the last id it saw as ``after_id``.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from runyard.entities import LogLine
from runyard.errors import InvalidInput
from runyard.store.sql.common import check_int, check_time
from runyard.store.sql.runs import get_run_row
from runyard.store.sql.schema import run_logs

__all__ = ["MAX_LINE_CHARS", "STREAMS", "check_log_lines", "insert_log_lines", "list_log_lines"]

STREAMS = ("stdout", "stderr")
MAX_LINE_CHARS = 16_384  # the client cuts lines at 8,192 characters and marks the cut
MAX_HOST_CHARS = 255
MAX_PAGE = 10_000


def _clean(text: str) -> str:
    """Text any database takes: no NUL (PostgreSQL refuses it), no lone surrogates."""
    if "\x00" in text:
        text = text.replace("\x00", "\ufffd")
    if not text.isascii():
        text = text.encode("utf-8", "replace").decode("utf-8")
    return text


def check_log_lines(lines: Sequence[LogLine], field: str = "logs") -> None:
    """Pure checks, before anything is written; errors name the line (``logs[3].stream``)."""
    for i, entry in enumerate(lines):
        f = f"{field}[{i}]"
        if entry.stream not in STREAMS:
            raise InvalidInput(
                f"{f}.stream must be stdout or stderr, got {entry.stream!r}", field=f"{f}.stream"
            )
        if not isinstance(entry.line, str) or len(entry.line) > MAX_LINE_CHARS:
            raise InvalidInput(
                f"{f}.line must be a string of at most {MAX_LINE_CHARS} characters", field=f"{f}.line"
            )
        check_time(entry.time, f"{f}.time")
        if entry.host is not None and (not isinstance(entry.host, str) or len(entry.host) > MAX_HOST_CHARS):
            raise InvalidInput(
                f"{f}.host must be a string of at most {MAX_HOST_CHARS} characters", field=f"{f}.host"
            )
        if entry.rank is not None:
            check_int(entry.rank, f"{f}.rank", minimum=0)
            if entry.rank > 2**31 - 1:
                raise InvalidInput(f"{f}.rank must be at most {2**31 - 1}", field=f"{f}.rank")


def insert_log_lines(conn: Connection, run_id: str, lines: Sequence[LogLine]) -> int:
    """Append lines to a run (the caller holds the run and checked the lines); how many."""
    if not lines:
        return 0
    rows = [
        {
            "run_id": run_id,
            "time": float(entry.time),
            "stream": entry.stream,
            "host": None if entry.host is None else _clean(entry.host),
            "rank": entry.rank,
            "line": _clean(entry.line),
        }
        for entry in lines
    ]
    for start in range(0, len(rows), 5_000):
        conn.execute(sa.insert(run_logs), rows[start : start + 5_000])
    return len(rows)


def list_log_lines(
    conn: Connection,
    run_id: str,
    *,
    stream: str | None = None,
    after_id: int = 0,
    limit: int = 1000,
    newest: bool = False,
) -> list[LogLine]:
    """A run's lines with ``id > after_id``, oldest first; with ``newest`` the last ``limit``
    of them (still oldest first). ``NotFound`` for an unknown run."""
    get_run_row(conn, run_id)
    if stream is not None and stream not in STREAMS:
        raise InvalidInput(f"stream must be stdout or stderr, got {stream!r}", field="stream")
    check_int(after_id, "after_id", minimum=0)
    if check_int(limit, "limit", minimum=1) > MAX_PAGE:
        raise InvalidInput(f"limit must be at most {MAX_PAGE}", field="limit")
    c = run_logs.c
    where = [c.run_id == run_id, c.id > after_id]
    if stream is not None:
        where.append(c.stream == stream)
    order = c.id.desc() if newest else c.id
    stmt = sa.select(run_logs).where(*where).order_by(order).limit(limit)
    out = [
        LogLine(
            id=m["id"],
            time=m["time"],
            stream=m["stream"],
            host=m["host"],
            rank=m["rank"],
            line=m["line"],
        )
        for m in conn.execute(stmt).mappings()
    ]
    if newest:
        out.reverse()
    return out
