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


def read_series(
    conn: Connection,
    run_id: str,
    key: str,
    *,
    max_points: int | None,
    step_min: int | None,
    step_max: int | None,
) -> MetricSeries:
    if max_points is not None and (
        isinstance(max_points, bool) or not isinstance(max_points, int) or max_points < 1
    ):
        raise InvalidInput("max_points must be a positive integer", field="max_points")
    lo, hi = _check_bound(step_min, "step_min"), _check_bound(step_max, "step_max")
    ms, mc = metric_summaries, metric_chunks
    size = conn.execute(sa.select(ms.c.chunk_size).where(ms.c.run_id == run_id, ms.c.key == key)).scalar()
    if size is None:
        if conn.execute(sa.select(runs.c.id).where(runs.c.id == run_id)).first() is None:
            raise NotFound(f"run {run_id!r} not found", field="run_id")
        raise NotFound(f"run {run_id!r} has no metric {key!r}", field="key")
    where = [mc.c.run_id == run_id, mc.c.key == key]
    if lo is not None:
        where.append(mc.c.step_max >= lo)
    if hi is not None:
        where.append(mc.c.step_min <= hi)
    if max_points is None:
        return _full(conn, key, where, lo, hi)
    meta = conn.execute(
        sa.select(mc.c.chunk_no, mc.c.n, mc.c.step_min, mc.c.step_max, mc.c.sorted, mc.c.rollup)
        .where(*where)
        .order_by(mc.c.chunk_no)
    ).all()
    estimate = sum(int(r.n) for r in meta)
    if estimate <= max(RAW_LIMIT, max_points) or len(meta) <= 2 or not _monotone(meta):
        series = _full(conn, key, where, lo, hi)
        steps, times, values = series.steps, series.times, series.values
        idx = downsample(values, max_points)
        if idx is None:
            return series
        return MetricSeries(key, steps[idx], times[idx], values[idx], series.total, downsampled=True)
    result = _from_rollups(conn, key, where, meta, int(size), lo, hi, max_points)
    if result is None:  # e.g. an edge chunk had no point in range: do it the slow, exact way
        series = _full(conn, key, where, lo, hi)
        idx = downsample(series.values, max_points)
        if idx is None:
            return series
        steps, times, values = series.steps, series.times, series.values
        return MetricSeries(key, steps[idx], times[idx], values[idx], series.total, downsampled=True)
    return result


def _monotone(meta: Sequence[Any]) -> bool:
    if not all(r.sorted for r in meta):
        return False
    return all(meta[i].step_min >= meta[i - 1].step_max for i in range(1, len(meta)))


def _full(conn: Connection, key: str, where: list[Any], lo: int | None, hi: int | None) -> MetricSeries:
    mc = metric_chunks
    rows = conn.execute(
        sa.select(mc.c.sorted, mc.c.step_min, mc.c.step_max, mc.c.steps, mc.c.times, mc.c.vals)
        .where(*where)
        .order_by(mc.c.chunk_no)
    ).all()
    parts = [decode_chunk(r.steps, r.times, r.vals) for r in rows]
    if not parts:
        empty_f = np.empty(0, dtype=np.float64)
        return MetricSeries(key, np.empty(0, dtype=np.int64), empty_f, empty_f.copy(), 0)
    steps = np.concatenate([p[0] for p in parts])
    times = np.concatenate([p[1] for p in parts])
    values = np.concatenate([p[2] for p in parts])
    if not _monotone(rows):
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
    where: list[Any],
    meta: Sequence[Any],
    size: int,
    lo: int | None,
    hi: int | None,
    max_points: int,
) -> MetricSeries | None:
    mc = metric_chunks
    first_no, last_no = int(meta[0].chunk_no), int(meta[-1].chunk_no)
    edges = {
        int(r.chunk_no): decode_chunk(r.steps, r.times, r.vals)
        for r in conn.execute(
            sa.select(mc.c.chunk_no, mc.c.steps, mc.c.times, mc.c.vals).where(
                *where, mc.c.chunk_no.in_((first_no, last_no))
            )
        )
    }
    # Units: single points of the two edge chunks (inside the range), blocks in between.
    pieces: list[Floats] = []  # rows: count, then (pos, step, time, value) of min and of max
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
    mids = meta[1:-1]
    per_chunk = size // ROLLUP_SIZE
    blocks = np.frombuffer(b"".join(r.rollup for r in mids), dtype=np.float64).reshape(-1, ROLLUP_FIELDS)
    if len(blocks) != per_chunk * len(mids):
        return None  # not the layout this path relies on: the exact way is always right
    base = np.repeat(np.array([r.chunk_no for r in mids], dtype=np.float64) * size, per_chunk)
    middle = np.empty((len(blocks), 1 + ROLLUP_FIELDS), dtype=np.float64)
    middle[:, 0] = ROLLUP_SIZE
    middle[:, 1:] = blocks
    middle[:, 1] += base
    middle[:, 5] += base
    units = np.concatenate([pieces[0], middle, pieces[1]])
    counts_i = units[:, 0].astype(np.int64)
    total = int(counts_i.sum())
    buckets = max((max_points - 2) // 2, 1)
    cum = np.cumsum(counts_i) - counts_i
    bucket = cum * buckets // total
    starts = np.flatnonzero(np.r_[True, bucket[1:] != bucket[:-1]]).astype(np.intp)
    lows = _group_extreme(units[:, 4], starts, largest=False)
    highs = _group_extreme(units[:, 8], starts, largest=True)
    chosen = np.concatenate((units[:1, 1:5], units[lows, 1:5], units[highs, 5:9], units[-1:, 5:9]))
    if max_points < 4:  # no room for buckets: first and last only
        chosen = np.concatenate((units[:1, 1:5], units[-1:, 5:9]))[:max_points]
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
