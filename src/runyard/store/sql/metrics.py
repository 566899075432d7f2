"""Appending metric points: validation, the chunk codec, and summaries kept on write.

Points of one (run, key) are stored in insertion order in chunks of ``C`` points (``C`` is
recorded per key in its summary row, so changing the default never breaks existing series).
From a summary's ``count`` the tail chunk (``count // C``) and its fill (``count % C``) are
known without a query, so an append reads and rewrites at most one row per key (the partly
filled tail) and inserts the rest as new chunks. Every statement covers all keys of the call
at once (``IN`` lists, executemany), so a batch with 10,000 keys costs a handful of round trips.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import sqlalchemy as sa
from sqlalchemy.engine import Connection, RowMapping

from runyard.entities import MetricColumns, MetricSummary
from runyard.errors import InvalidInput
from runyard.store.sql.common import chunked, has_control
from runyard.store.sql.engine import driver_rows
from runyard.store.sql.schema import metric_summaries

__all__ = [
    "DEFAULT_CHUNK_SIZE",
    "ROLLUP_SIZE",
    "Points",
    "append_points",
    "check_points",
    "load_summaries",
    "rollup",
    "summary_from_row",
]

Ints = npt.NDArray[np.int64]
Floats = npt.NDArray[np.float64]

ROLLUP_SIZE = 64  # points per rollup block; a chunk size must be a multiple of it
DEFAULT_CHUNK_SIZE = 2048
MAX_KEY_LENGTH = 250
STEP_LIMIT = 2**53
# rollup row layout: index, step, time, value of the block's min point, then of its max point
ROLLUP_FIELDS = 8


@dataclass(frozen=True, slots=True)
class Points:
    """Validated columns of one key: int64 steps, float64 times and values, equal length."""

    steps: Ints
    times: Floats
    values: Floats

    def __len__(self) -> int:
        return len(self.values)


# -- validation ------------------------------------------------------------------------
def check_key(key: Any) -> str:
    field = f"metrics.{key}"
    if not isinstance(key, str) or not key:
        raise InvalidInput("metric keys must be non-empty strings", field=field)
    if len(key) > MAX_KEY_LENGTH:
        raise InvalidInput(f"metric key is longer than {MAX_KEY_LENGTH} characters", field=field)
    if has_control(key):
        raise InvalidInput("metric key must not contain control characters", field=field)
    return key


def _column(raw: Any, field: str, what: str) -> npt.NDArray[Any]:
    try:
        arr = np.asarray(raw)
    except (TypeError, ValueError) as exc:
        raise InvalidInput(f"{field}: {what} must be a list of numbers", field=field) from exc
    if arr.ndim != 1:
        if arr.size == 0:
            return arr.reshape(0)
        raise InvalidInput(f"{field}: {what} must be a flat list", field=field)
    return arr


def _steps(raw: Any, field: str) -> Ints:
    arr = _column(raw, field, "steps")
    if arr.size == 0:
        return np.empty(0, dtype=np.int64)
    if arr.dtype.kind not in "iu":
        raise InvalidInput(f"{field}: steps must be integers in [0, 2**53)", field=field)
    if int(arr.min()) < 0 or int(arr.max()) >= STEP_LIMIT:
        raise InvalidInput(f"{field}: steps must be integers in [0, 2**53)", field=field)
    return arr.astype(np.int64, copy=False)


def _floats(raw: Any, field: str, what: str) -> Floats:
    arr = _column(raw, field, what)
    if arr.size == 0:
        return np.empty(0, dtype=np.float64)
    if arr.dtype.kind not in "iuf":
        raise InvalidInput(
            f"{field}: {what} must be numbers (NaN and infinities are allowed for values)",
            field=field,
        )
    return arr.astype(np.float64, copy=False)


def check_points(metrics: Any) -> dict[str, Points]:
    """Validate ``{key: MetricColumns}``; keys with no points are dropped."""
    if not isinstance(metrics, Mapping):
        raise InvalidInput("metrics must be an object of key -> columns", field="metrics")
    checked: dict[str, Points] = {}
    for key, cols in metrics.items():
        field = f"metrics.{check_key(key)}"
        if not isinstance(cols, MetricColumns):
            raise InvalidInput(f"{field}: expected steps, times and values columns", field=field)
        steps = _steps(cols.steps, field)
        times = _floats(cols.times, field, "times")
        values = _floats(cols.values, field, "values")
        if not len(steps) == len(times) == len(values):
            raise InvalidInput(
                f"{field}: steps, times and values must have the same length "
                f"(got {len(steps)}, {len(times)}, {len(values)})",
                field=field,
            )
        if len(values) == 0:
            continue
        if not np.isfinite(times).all():
            raise InvalidInput(f"{field}: times must be finite POSIX seconds", field=field)
        checked[key] = Points(steps, times, values)
    return checked


# -- chunk codec -----------------------------------------------------------------------
def rollup(steps: Ints, times: Floats, values: Floats) -> Floats:
    """Per block of ``ROLLUP_SIZE`` points: (index, step, time, value) of its min and of its
    max point. NaN is skipped (a block of only NaN yields its first point)."""
    n = len(values)
    if n <= ROLLUP_SIZE:  # one block (tiny appends): plain Python beats a dozen numpy calls
        return _rollup_block(steps, times, values)
    blocks = -(-n // ROLLUP_SIZE)
    pad = blocks * ROLLUP_SIZE - n
    nan = np.isnan(values)
    low = np.where(nan, np.inf, values)
    high = np.where(nan, -np.inf, values)
    if pad:  # padding sorts after every real point, so argmin/argmax never pick it
        low = np.concatenate((low, np.full(pad, np.inf)))
        high = np.concatenate((high, np.full(pad, -np.inf)))
    base = np.arange(blocks, dtype=np.int64) * ROLLUP_SIZE
    i_min = base + low.reshape(blocks, ROLLUP_SIZE).argmin(axis=1)
    i_max = base + high.reshape(blocks, ROLLUP_SIZE).argmax(axis=1)
    out = np.empty((blocks, ROLLUP_FIELDS), dtype=np.float64)
    for col, idx in ((0, i_min), (4, i_max)):
        out[:, col] = idx
        out[:, col + 1] = steps[idx]
        out[:, col + 2] = times[idx]
        out[:, col + 3] = values[idx]
    return out


def _rollup_block(steps: Ints, times: Floats, values: Floats) -> Floats:
    vals = values.tolist()
    i_min = i_max = 0
    seen = False
    for i, v in enumerate(vals):
        if v != v:  # NaN
            continue
        if not seen:
            i_min = i_max = i
            seen = True
        elif v < vals[i_min]:
            i_min = i
        elif v > vals[i_max]:
            i_max = i
    row = [
        float(i_min),
        float(steps[i_min]),
        float(times[i_min]),
        vals[i_min],
        float(i_max),
        float(steps[i_max]),
        float(times[i_max]),
        vals[i_max],
    ]
    return np.array([row], dtype=np.float64)


def _chunk_row(
    run_id: str,
    key: str,
    chunk_no: int,
    steps: Ints,
    times: Floats,
    values: Floats,
    kept: Floats | None = None,
) -> tuple[Any, ...]:
    """A chunk's column values (``CHUNK_COLUMNS`` order). ``kept``: rollup rows of the
    chunk's first complete blocks that did not change (a tail being filled up)."""
    if kept is not None and len(kept):
        start = len(kept) * ROLLUP_SIZE
        fresh = rollup(steps[start:], times[start:], values[start:])
        fresh[:, (0, 4)] += start
        blocks = np.concatenate((kept, fresh))
    else:
        blocks = rollup(steps, times, values)
    if len(steps) == 1:
        step_min = step_max = int(steps[0])
        in_order = True
    else:
        step_min, step_max = int(steps.min()), int(steps.max())
        in_order = bool((steps[1:] >= steps[:-1]).all())
    return (
        run_id,
        key,
        chunk_no,
        len(values),
        step_min,
        step_max,
        in_order,
        blocks.tobytes(),
        steps.astype("<i8", copy=False).tobytes(),
        values.astype("<f8", copy=False).tobytes(),
        times.astype("<f8", copy=False).tobytes(),
    )


def decode_chunk(steps: bytes, times: bytes, values: bytes) -> tuple[Ints, Floats, Floats]:
    return (
        np.frombuffer(steps, dtype="<i8").astype(np.int64, copy=False),
        np.frombuffer(times, dtype="<f8").astype(np.float64, copy=False),
        np.frombuffer(values, dtype="<f8").astype(np.float64, copy=False),
    )


# -- summaries -------------------------------------------------------------------------
def _float(value: float | None) -> float:
    return math.nan if value is None else float(value)


def summary_from_row(m: RowMapping) -> MetricSummary:
    return MetricSummary(
        key=m["key"],
        count=int(m["count"]),
        last=_float(m["last"]),  # NULL stands for NaN
        last_step=int(m["last_step"]),
        last_time=float(m["last_time"]),
        min=None if m["min"] is None else float(m["min"]),
        max=None if m["max"] is None else float(m["max"]),
    )


def load_summaries(
    conn: Connection, run_ids: list[str], keys: Iterable[str] | None = None
) -> dict[str, dict[str, MetricSummary]]:
    """Summaries of several runs in one query (per 900 run ids), optionally only ``keys``."""
    ms = metric_summaries
    found: dict[str, dict[str, MetricSummary]] = {run_id: {} for run_id in run_ids}
    key_list = None if keys is None else list(keys)
    if key_list == []:
        return found
    for batch in chunked(run_ids):
        stmt = sa.select(ms).where(ms.c.run_id.in_(batch)).order_by(ms.c.run_id, ms.c.key)
        if key_list is not None:
            stmt = stmt.where(ms.c.key.in_(key_list))
        for m in conn.execute(stmt).mappings():
            found[m["run_id"]][m["key"]] = summary_from_row(m)
    return found


# What an append needs to know per key: its summary and, when the tail chunk is partly filled,
# that chunk (chunk number count // chunk_size exists only then), in one query.
_STATE_SQL = (
    'SELECT s."key", s."chunk_size", s."count", s."min", s."max", c."rollup", c."steps", c."times", c."vals" '
    "FROM metric_summaries s LEFT OUTER JOIN metric_chunks c "
    'ON c."run_id" = s."run_id" AND c."key" = s."key" AND c."chunk_no" = s."count" / s."chunk_size" '
    'WHERE s."run_id" = ?'
)
_STATE_FIELDS = ("key", "chunk_size", "count", "min", "max", "rollup", "steps", "times", "vals")


def _state(conn: Connection, run_id: str, keys: list[str]) -> dict[str, dict[str, Any]]:
    if len(keys) > 2000:  # cheaper to read them all than to send thousands of parameters
        wanted = set(keys)
        rows = driver_rows(conn, _STATE_SQL, (run_id,))
        return {r[0]: dict(zip(_STATE_FIELDS, r, strict=True)) for r in rows if r[0] in wanted}
    state: dict[str, dict[str, Any]] = {}
    for batch in chunked(keys):
        sql = f'{_STATE_SQL} AND s."key" IN ({", ".join("?" * len(batch))})'
        for r in driver_rows(conn, sql, (run_id, *batch)):
            state[r[0]] = dict(zip(_STATE_FIELDS, r, strict=True))
    return state


def _nan_min_max(values: Floats) -> tuple[float | None, float | None]:
    if len(values) == 1:
        v = float(values[0])
        return (None, None) if math.isnan(v) else (v, v)
    real = values[~np.isnan(values)]
    if real.size == 0:
        return None, None
    return float(real.min()), float(real.max())


def _merge(old: float | None, new: float | None, pick: Any) -> float | None:
    if old is None:
        return new
    if new is None:
        return old
    return float(pick(old, new))


# -- append ----------------------------------------------------------------------------
# The four statements of an append run with executemany at the driver level: with thousands
# of keys per batch, SQLAlchemy's per-row parameter processing cost more than the database.
CHUNK_COLUMNS = ("n", "step_min", "step_max", "sorted", "rollup", "steps", "vals", "times")
SUMMARY_COLUMNS = ("count", "last", "last_step", "last_time", "min", "max")


def _sql_text(columns: tuple[str, ...]) -> str:
    return ", ".join(f'"{c}"' for c in columns)


def _assignments(columns: tuple[str, ...]) -> str:
    return ", ".join(f'"{c}" = ?' for c in columns)


_APPEND_SQL = {
    "chunk_insert": f"INSERT INTO metric_chunks ({_sql_text(('run_id', 'key', 'chunk_no', *CHUNK_COLUMNS))}) "
    f"VALUES ({', '.join('?' * (3 + len(CHUNK_COLUMNS)))})",
    "chunk_update": f"UPDATE metric_chunks SET {_assignments(CHUNK_COLUMNS)} "
    'WHERE "run_id" = ? AND "key" = ? AND "chunk_no" = ?',
    "summary_insert": f"INSERT INTO metric_summaries "
    f"({_sql_text(('run_id', 'key', 'chunk_size', *SUMMARY_COLUMNS))}) "
    f"VALUES ({', '.join('?' * (3 + len(SUMMARY_COLUMNS)))})",
    "summary_update": f"UPDATE metric_summaries SET {_assignments(SUMMARY_COLUMNS)} "
    'WHERE "run_id" = ? AND "key" = ?',
}
_APPEND_SQL_FORMAT = {name: sql.replace("?", "%s") for name, sql in _APPEND_SQL.items()}


def _executemany(conn: Connection, name: str, rows: list[tuple[Any, ...]]) -> None:
    if rows:
        sql = (_APPEND_SQL if conn.dialect.paramstyle == "qmark" else _APPEND_SQL_FORMAT)[name]
        conn.exec_driver_sql(sql, rows)


def append_points(conn: Connection, run_id: str, points: Mapping[str, Points], chunk_size: int) -> int:
    """Append validated points to a run (whose row the caller has locked); returns how many."""
    if not points:
        return 0
    existing = _state(conn, run_id, list(points))
    chunk_updates: list[tuple[Any, ...]] = []
    chunk_inserts: list[tuple[Any, ...]] = []
    summary_updates: list[tuple[Any, ...]] = []
    summary_inserts: list[tuple[Any, ...]] = []
    stored = 0
    for key, pts in points.items():
        old = existing.get(key)
        size = int(old["chunk_size"]) if old is not None else chunk_size
        count = int(old["count"]) if old is not None else 0
        chunk_no, fill = divmod(count, size)
        n = len(pts)
        start = 0
        if fill:  # fill up the tail chunk: the one row rewritten
            assert old is not None and old["steps"] is not None, "the tail chunk of a summary is missing"
            t_steps, t_times, t_vals = decode_chunk(old["steps"], old["times"], old["vals"])
            kept = np.frombuffer(old["rollup"], dtype=np.float64).reshape(-1, ROLLUP_FIELDS)
            start = min(size - fill, n)
            row = _chunk_row(
                run_id,
                key,
                chunk_no,
                np.concatenate((t_steps[:fill], pts.steps[:start])),
                np.concatenate((t_times[:fill], pts.times[:start])),
                np.concatenate((t_vals[:fill], pts.values[:start])),
                kept[: fill // ROLLUP_SIZE],
            )
            chunk_updates.append((*row[3:], run_id, key, chunk_no))
            chunk_no += 1
        for lo in range(start, n, size):
            hi = lo + size
            chunk_inserts.append(
                _chunk_row(run_id, key, chunk_no, pts.steps[lo:hi], pts.times[lo:hi], pts.values[lo:hi])
            )
            chunk_no += 1
        low, high = _nan_min_max(pts.values)
        last = float(pts.values[-1])
        summary = (
            count + n,
            None if math.isnan(last) else last,
            int(pts.steps[-1]),
            float(pts.times[-1]),
            _merge(None if old is None else old["min"], low, min),
            _merge(None if old is None else old["max"], high, max),
        )
        if old is None:
            summary_inserts.append((run_id, key, size, *summary))
        else:
            summary_updates.append((*summary, run_id, key))
        stored += n
    _executemany(conn, "chunk_update", chunk_updates)
    _executemany(conn, "chunk_insert", chunk_inserts)
    _executemany(conn, "summary_update", summary_updates)
    _executemany(conn, "summary_insert", summary_inserts)
    return stored
