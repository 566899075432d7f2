"""Reading a metric back: full series and min/max-preserving downsamples.

A series is returned sorted by step, stably (equal steps keep insertion order). Chunks record
their step range and whether their steps are sorted, so the common case (steps that never go
back) is known to be sorted without looking at the points and skips the sort.

Downsampling keeps the first and the last point and, for each of ``(max_points - 2) // 2``
buckets of consecutive points (equal point counts, in step order), the point with the
smallest and the one with the largest value (NaN ignored). Small series are downsampled from
their points. Large sorted series are downsampled from the chunks' rollups (min and max point
of every 64-point block) without reading the points, except in the first and last chunk: the
buckets then fall on block boundaries, and each bucket still keeps its true min and max.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from runyard.entities import MetricSeries
from runyard.errors import InvalidInput, NotFound
from runyard.store.sql.engine import driver_rows
from runyard.store.sql.metrics import ROLLUP_FIELDS, ROLLUP_SIZE, Floats, Ints, decode_chunk
from runyard.store.sql.schema import metric_chunks, metric_summaries, runs

__all__ = ["downsample", "read_series"]

Idx = npt.NDArray[np.intp]

# Up to this many points a downsample reads the points themselves (a few ms); above it a
# sorted series uses the rollups.
RAW_LIMIT = 131_072


def _check_bound(value: Any, field: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise InvalidInput(f"{field} must be an integer", field=field)
    return int(value)


_mc = metric_chunks
_STEP_LIMIT = 2**63 - 1
_CHUNK_SIZE = sa.select(metric_summaries.c.chunk_size).where(
    metric_summaries.c.run_id == sa.bindparam("run_id"), metric_summaries.c.key == sa.bindparam("key")
)
_RUN_EXISTS = sa.select(runs.c.id).where(runs.c.id == sa.bindparam("run_id"))
# Chunks that may hold points in [lo, hi]. Hand-written and run by the driver (see
# engine.driver_rows): these move the blobs.
_IN_RANGE = 'WHERE "run_id" = ? AND "key" = ? AND "step_max" >= ? AND "step_min" <= ?'
_META_SQL = (
    'SELECT "chunk_no", "n", "step_min", "step_max", "sorted", "rollup" FROM metric_chunks '
    f'{_IN_RANGE} ORDER BY "chunk_no"'
)
_POINTS_SQL = (
    'SELECT "sorted", "step_min", "step_max", "steps", "times", "vals" FROM metric_chunks '
    f'{_IN_RANGE} ORDER BY "chunk_no"'
)
_EDGES_SQL = (
    'SELECT "chunk_no", "steps", "times", "vals" FROM metric_chunks '
    'WHERE "run_id" = ? AND "key" = ? AND "chunk_no" IN (?, ?)'
)


def read_series(
    conn: Connection,
    run_id: str,
    key: str,
    *,
    max_points: int | None,
    step_min: int | None,
    step_max: int | None,
) -> MetricSeries:
    """The series of ``key`` in ``run_id``, optionally limited to steps in [step_min, step_max]
    (``total`` then counts the points in that range)."""
    if max_points is not None and (
        isinstance(max_points, bool) or not isinstance(max_points, int) or max_points < 1
    ):
        raise InvalidInput("max_points must be a positive integer", field="max_points")
    lo, hi = _check_bound(step_min, "step_min"), _check_bound(step_max, "step_max")
    size = conn.execute(_CHUNK_SIZE, {"run_id": run_id, "key": key}).scalar()
    if size is None:
        if conn.execute(_RUN_EXISTS, {"run_id": run_id}).first() is None:
            raise NotFound(f"run {run_id!r} not found", field="run_id")
        raise NotFound(f"run {run_id!r} has no metric {key!r}", field="key")
    params = (run_id, key, -1 if lo is None else lo, _STEP_LIMIT if hi is None else hi)
    if max_points is None:
        return _full(conn, key, params, lo, hi)
    meta = driver_rows(conn, _META_SQL, params)
    columns = list(zip(*meta, strict=True)) if meta else [()] * 6
    chunk_nos = np.array(columns[0], dtype=np.int64)
    estimate = int(np.sum(np.array(columns[1], dtype=np.int64)))
    monotone = _monotone(columns[4], columns[2], columns[3])
    if estimate > max(RAW_LIMIT, max_points) and len(meta) > 2 and monotone:
        result = _from_rollups(conn, key, params, chunk_nos, columns[5], int(size), lo, hi, max_points)
        if result is not None:
            return result
        # e.g. an edge chunk had no point in the range: the exact way is always right
    series = _full(conn, key, params, lo, hi)
    idx = downsample(series.values, max_points)
    if idx is None:
        return series
    steps, times, values = series.steps, series.times, series.values
    return MetricSeries(key, steps[idx], times[idx], values[idx], series.total, downsampled=True)


def _monotone(sorted_flags: Sequence[Any], step_mins: Sequence[int], step_maxs: Sequence[int]) -> bool:
    """Whether chunks in this order hold non-decreasing steps (so no sort is needed)."""
    if not all(sorted_flags):
        return False
    mins, maxs = np.array(step_mins, dtype=np.int64), np.array(step_maxs, dtype=np.int64)
    return bool(np.all(mins[1:] >= maxs[:-1]))


def _full(
    conn: Connection, key: str, params: tuple[Any, ...], lo: int | None, hi: int | None
) -> MetricSeries:
    rows = driver_rows(conn, _POINTS_SQL, params)
    if not rows:
        empty_f = np.empty(0, dtype=np.float64)
        return MetricSeries(key, np.empty(0, dtype=np.int64), empty_f, empty_f.copy(), 0)
    flags, mins, maxs, steps_b, times_b, vals_b = zip(*rows, strict=True)
    steps: Ints = np.concatenate([np.frombuffer(b, dtype="<i8") for b in steps_b]).astype(
        np.int64, copy=False
    )
    times: Floats = np.concatenate([np.frombuffer(b, dtype="<f8") for b in times_b]).astype(
        np.float64, copy=False
    )
    values: Floats = np.concatenate([np.frombuffer(b, dtype="<f8") for b in vals_b]).astype(
        np.float64, copy=False
    )
    if not _monotone(flags, mins, maxs):
        order = np.argsort(steps, kind="stable")
        steps, times, values = steps[order], times[order], values[order]
    if lo is not None or hi is not None:
        start = 0 if lo is None else int(np.searchsorted(steps, lo, side="left"))
        stop = len(steps) if hi is None else int(np.searchsorted(steps, hi, side="right"))
        steps, times, values = steps[start:stop], times[start:stop], values[start:stop]
    return MetricSeries(key, steps, times, values, len(values))


def _group_extreme(values: Floats, starts: Idx, *, largest: bool) -> Idx:
    """Index of the first min (or max) value of each group ``values[starts[i]:starts[i+1]]``,
    ignoring NaN; a group of only NaN gives its first index."""
    w = np.where(np.isnan(values), -np.inf if largest else np.inf, values)
    best = (np.maximum if largest else np.minimum).reduceat(w, starts)
    counts = np.diff(np.append(starts, len(w)))
    hits = np.flatnonzero(w == np.repeat(best, counts))
    group = np.searchsorted(starts, hits, side="right") - 1
    first = np.flatnonzero(np.r_[True, group[1:] != group[:-1]])
    return hits[first]


def downsample(values: Floats, max_points: int) -> Idx | None:
    """Indices (sorted) of the points to keep, or None when all ``values`` fit."""
    n = len(values)
    if n <= max_points:
        return None
    buckets = (max_points - 2) // 2
    if buckets <= 0:
        return np.array([0, n - 1][:max_points], dtype=np.intp)
    starts = (np.arange(buckets, dtype=np.int64) * n // buckets).astype(np.intp)
    keep = np.concatenate(
        (
            np.array([0, n - 1], dtype=np.intp),
            _group_extreme(values, starts, largest=False),
            _group_extreme(values, starts, largest=True),
        )
    )
    return np.unique(keep)


def _from_rollups(
    conn: Connection,
    key: str,
    params: tuple[Any, ...],
    chunk_nos: Ints,
    rollups: Sequence[bytes],
    size: int,
    lo: int | None,
    hi: int | None,
    max_points: int,
) -> MetricSeries | None:
    first_no, last_no = int(chunk_nos[0]), int(chunk_nos[-1])
    edge_rows = driver_rows(conn, _EDGES_SQL, (params[0], key, first_no, last_no))
    edges = {int(r[0]): decode_chunk(r[1], r[2], r[3]) for r in edge_rows}
    # Units: single points of the two edge chunks (inside the range), blocks in between.
    # Unit rows: count, then (position, step, time, value) of its min and of its max point.
    pieces: list[Floats] = []
    for chunk_no in (first_no, last_no):
        steps, times, values = edges[chunk_no]
        keep = np.ones(len(steps), dtype=bool)
        if lo is not None:
            keep &= steps >= lo
        if hi is not None:
            keep &= steps <= hi
        pos = np.flatnonzero(keep) + chunk_no * size
        if pos.size == 0:
            return None
        point = np.column_stack((pos, steps[keep], times[keep], values[keep])).astype(np.float64)
        pieces.append(np.column_stack((np.ones(len(pos)), point, point)))
    # Middle chunks are full (only a key's last chunk can be partial): size/64 blocks each.
    per_chunk = size // ROLLUP_SIZE
    blocks = np.frombuffer(b"".join(rollups[1:-1]), dtype=np.float64).reshape(-1, ROLLUP_FIELDS)
    if len(blocks) != per_chunk * (len(chunk_nos) - 2):
        return None  # not the layout this path relies on
    base = np.repeat(chunk_nos[1:-1].astype(np.float64) * size, per_chunk)
    middle = np.empty((len(blocks), 1 + ROLLUP_FIELDS), dtype=np.float64)
    middle[:, 0] = ROLLUP_SIZE
    middle[:, 1:] = blocks
    middle[:, 1] += base
    middle[:, 5] += base
    units = np.concatenate([pieces[0], middle, pieces[1]])
    counts = units[:, 0].astype(np.int64)
    total = int(counts.sum())
    buckets = max((max_points - 2) // 2, 1)
    bucket = (np.cumsum(counts) - counts) * buckets // total
    starts = np.flatnonzero(np.r_[True, bucket[1:] != bucket[:-1]]).astype(np.intp)
    lows = _group_extreme(units[:, 4], starts, largest=False)
    highs = _group_extreme(units[:, 8], starts, largest=True)
    if max_points < 4:  # no room for buckets: first and last only
        chosen = np.concatenate((units[:1, 1:5], units[-1:, 5:9]))[:max_points]
    else:
        chosen = np.concatenate((units[:1, 1:5], units[lows, 1:5], units[highs, 5:9], units[-1:, 5:9]))
    _, first = np.unique(chosen[:, 0], return_index=True)
    picked = chosen[first]
    steps_out: Ints = picked[:, 1].astype(np.int64)
    return MetricSeries(
        key,
        steps_out,
        np.ascontiguousarray(picked[:, 2]),
        np.ascontiguousarray(picked[:, 3]),
        total,
        downsampled=len(picked) < total,
    )
