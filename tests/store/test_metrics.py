from __future__ import annotations

import array
import math
from collections.abc import Callable

import numpy as np
import pytest
import sqlalchemy as sa

from runyard.entities import MetricColumns
from runyard.errors import InvalidInput, NotFound
from runyard.store.sql import SqlStore
from runyard.store.sql.metrics import decode_chunk, rollup
from runyard.store.sql.schema import metric_chunks
from runyard.store.sql.series import RAW_LIMIT, downsample
from tests.store.helpers import T0, cols

NONFINITE = [1.5, math.nan, math.inf, -math.inf, -0.0, 5e-324, 1.7976931348623157e308, -2.0]


def test_values_round_trip_bit_for_bit(store: SqlStore, run_id: str) -> None:
    assert store.log_metrics(run_id, {"x": cols(range(len(NONFINITE)), NONFINITE)}) == len(NONFINITE)
    s = store.metric_series(run_id, "x")
    assert s.steps.dtype == np.int64 and s.times.dtype == np.float64 and s.values.dtype == np.float64
    expected = np.array(NONFINITE, dtype=np.float64)
    assert (s.values.view(np.uint64) == expected.view(np.uint64)).all()
    assert s.steps.tolist() == list(range(len(NONFINITE)))
    assert s.times.tolist() == [T0 + i for i in range(len(NONFINITE))]
    assert (s.total, s.downsampled) == (len(NONFINITE), False)


def test_summaries(store: SqlStore, run_id: str) -> None:
    store.log_metrics(
        run_id,
        {
            "mixed": cols([0, 1, 2, 3], [3.0, math.nan, -1.0, math.nan]),
            "allnan": cols([0, 1], [math.nan, math.nan]),
            "inf": cols([7], [math.inf]),
        },
    )
    store.log_metrics(run_id, {"inf": MetricColumns(steps=[8], times=[T0 + 50], values=[-math.inf])})
    by_key = {s.key: s for s in store.metric_summaries(run_id)}
    mixed = by_key["mixed"]
    assert (mixed.count, mixed.last_step, mixed.min, mixed.max) == (4, 3, -1.0, 3.0)
    assert math.isnan(mixed.last) and mixed.last_time == T0 + 3
    allnan = by_key["allnan"]
    assert allnan.min is None and allnan.max is None and math.isnan(allnan.last) and allnan.count == 2
    inf = by_key["inf"]
    assert (inf.count, inf.last, inf.last_step, inf.last_time) == (2, -math.inf, 8, T0 + 50)
    assert (inf.min, inf.max) == (-math.inf, math.inf)
    assert store.get_run(run_id).metrics == by_key
    assert store.get_run(run_id, with_metrics=False).metrics == {}
    with pytest.raises(NotFound):
        store.metric_summaries("missing")


def test_updated_at_moves_with_metrics(store: SqlStore, run_id: str) -> None:
    before = store.get_run(run_id).updated_at
    store.log_metrics(run_id, {"x": cols([0], [1.0])})
    assert store.get_run(run_id).updated_at >= before


@pytest.mark.parametrize("chunk_size", [64, 192])
def test_chunk_boundaries(make_store: Callable[..., SqlStore], run_id: str, chunk_size: int) -> None:
    store = make_store(chunk_size=chunk_size)
    n = 3 * chunk_size + 5
    rng = np.random.default_rng(chunk_size)
    values = rng.normal(size=n).tolist()
    values[chunk_size] = math.nan
    steps = list(range(n))
    for i in range(n):  # one point per call
        store.log_metrics(run_id, {"single": MetricColumns([steps[i]], [T0 + i], [values[i]])})
    i = 0
    for size in (7, chunk_size - 3, 1, chunk_size * 2, 10**6):  # bulk appends crossing boundaries
        part = slice(i, min(i + size, n))
        store.log_metrics(
            run_id,
            {"bulk": MetricColumns(steps[part], [T0 + j for j in range(n)][part], values[part])},
        )
        i = part.stop
    store.log_metrics(run_id, {"once": cols(steps, values)})
    series = {k: store.metric_series(run_id, k) for k in ("single", "bulk", "once")}
    for s in series.values():
        assert s.steps.tolist() == steps
        assert np.array_equal(s.values, np.array(values), equal_nan=True)
        assert s.times.tolist() == [T0 + j for j in range(n)]
    summaries = {s.key: s for s in store.metric_summaries(run_id)}
    assert {(s.count, s.last, s.min, s.max, s.last_step) for s in summaries.values()} == {
        (n, values[-1], float(np.nanmin(values)), float(np.nanmax(values)), n - 1)
    }
    with store.database.read() as conn:
        sizes = conn.execute(
            sa.select(metric_chunks.c.key, metric_chunks.c.chunk_no, metric_chunks.c.n).order_by(
                metric_chunks.c.key, metric_chunks.c.chunk_no
            )
        ).all()
    for key in ("single", "bulk", "once"):
        assert [(no, cnt) for k, no, cnt in sizes if k == key] == [
            (0, chunk_size),
            (1, chunk_size),
            (2, chunk_size),
            (3, 5),
        ]


def test_chunk_size_is_remembered_per_key(make_store: Callable[..., SqlStore], run_id: str) -> None:
    small, large = make_store(chunk_size=64), make_store(chunk_size=256)
    small.log_metrics(run_id, {"k": cols(range(100), [float(i) for i in range(100)])})
    large.log_metrics(run_id, {"k": cols(range(100, 300), [float(i) for i in range(100, 300)])})
    assert large.metric_series(run_id, "k").values.tolist() == [float(i) for i in range(300)]


def test_steps_going_backwards_read_sorted_and_stable(store: SqlStore, run_id: str) -> None:
    logged = [(s, float(i)) for i, s in enumerate([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 5, 6, 7, 3, 3, 0])]
    for lo in range(0, len(logged), 4):
        part = logged[lo : lo + 4]
        store.log_metrics(run_id, {"x": cols([s for s, _ in part], [v for _, v in part])})
    s = store.metric_series(run_id, "x")
    expected = sorted(logged, key=lambda p: p[0])  # Python's sort is stable
    assert list(zip(s.steps.tolist(), s.values.tolist(), strict=True)) == expected
    assert store.metric_summaries(run_id)[0].last_step == 0  # last logged, not largest
    ranged = store.metric_series(run_id, "x", step_min=3, step_max=5)
    assert ranged.steps.tolist() == [3, 3, 3, 4, 5, 5] and ranged.total == 6


def test_step_range(store: SqlStore, make_store: Callable[..., SqlStore], run_id: str) -> None:
    small = make_store(chunk_size=64)
    small.log_metrics(run_id, {"x": cols(range(0, 2000, 2), [float(i) for i in range(1000)])})
    s = store.metric_series(run_id, "x", step_min=101, step_max=400)
    assert s.steps.tolist() == list(range(102, 401, 2)) and s.total == 150
    assert store.metric_series(run_id, "x", step_min=5000).total == 0
    assert store.metric_series(run_id, "x", step_max=0).steps.tolist() == [0]


def test_ten_thousand_keys(store: SqlStore, run_id: str) -> None:
    keys = [f"layer{i}/grad_norm" for i in range(10_000)]
    assert store.log_metrics(run_id, {k: cols([0], [float(i)]) for i, k in enumerate(keys)}) == 10_000
    assert store.log_metrics(run_id, {k: cols([1], [-float(i)]) for i, k in enumerate(keys)}) == 10_000
    summaries = {s.key: s for s in store.metric_summaries(run_id)}
    assert len(summaries) == 10_000
    assert summaries["layer9999/grad_norm"].min == -9999.0 and summaries["layer9999/grad_norm"].count == 2
    assert store.metric_series(run_id, "layer4321/grad_norm").values.tolist() == [4321.0, -4321.0]


def test_accepts_numpy_and_array_columns(store: SqlStore, run_id: str) -> None:
    store.log_metrics(
        run_id,
        {
            "np": MetricColumns(
                np.arange(3, dtype=np.int32), np.full(3, T0), np.array([1, 2, 3], np.float32)
            ),
            "arr": MetricColumns(
                array.array("q", [0, 1]), array.array("d", [T0, T0]), array.array("d", [0.5, 1])
            ),
            "ints": MetricColumns([0], [int(T0)], [7]),
            "empty": MetricColumns([], [], []),
        },
    )
    assert store.metric_series(run_id, "np").values.tolist() == [1.0, 2.0, 3.0]
    assert store.metric_series(run_id, "arr").values.tolist() == [0.5, 1.0]
    assert store.metric_series(run_id, "ints").values.tolist() == [7.0]
    assert {s.key for s in store.metric_summaries(run_id)} == {"np", "arr", "ints"}


@pytest.mark.parametrize(
    ("key", "columns"),
    [
        ("", cols([0], [1.0])),
        ("x" * 251, cols([0], [1.0])),
        ("new\nline", cols([0], [1.0])),
        ("del\x7f", cols([0], [1.0])),
        ("k", MetricColumns([0, 1], [T0], [1.0, 2.0])),
        ("k", MetricColumns([-1], [T0], [1.0])),
        ("k", MetricColumns([2**53], [T0], [1.0])),
        ("k", MetricColumns([1.5], [T0], [1.0])),
        ("k", MetricColumns([True], [T0], [1.0])),
        ("k", MetricColumns([0], [T0], ["1.0"])),
        ("k", MetricColumns([0], [T0], [None])),
        ("k", MetricColumns([0], [T0], [True])),
        ("k", MetricColumns([0], [math.nan], [1.0])),
        ("k", MetricColumns([[0]], [[T0]], [[1.0]])),
    ],
)
def test_invalid_points_name_the_key(store: SqlStore, run_id: str, key: str, columns: MetricColumns) -> None:
    with pytest.raises(InvalidInput) as err:
        store.log_metrics(run_id, {"good": cols([0], [1.0]), key: columns})
    assert err.value.field == f"metrics.{key}"
    assert store.metric_summaries(run_id) == []  # the good key was not stored either


def test_unknown_run_and_key(store: SqlStore, run_id: str) -> None:
    with pytest.raises(NotFound):
        store.log_metrics("missing", {"x": cols([0], [1.0])})
    with pytest.raises(NotFound):
        store.metric_series("missing", "x")
    with pytest.raises(NotFound) as err:
        store.metric_series(run_id, "nope")
    assert err.value.field == "key"
    store.log_metrics(run_id, {"x": cols([0], [1.0])})
    for bad in (0, -5, True):
        with pytest.raises(InvalidInput) as err:
            store.metric_series(run_id, "x", max_points=bad)
        assert err.value.field == "max_points"


def _wave(n: int) -> list[float]:
    values = np.sin(np.arange(n) / 300.0)
    values[n // 3] = 50.0
    values[n // 2] = -40.0
    values[n // 5 : n // 5 + 1000] = np.nan
    return values.tolist()


@pytest.mark.parametrize("n", [50_000, RAW_LIMIT * 3])
def test_downsample_keeps_extremes(make_store: Callable[..., SqlStore], run_id: str, n: int) -> None:
    store = make_store(chunk_size=1024)
    values = _wave(n)
    store.log_metrics(run_id, {"y": cols(range(n), values)})
    for max_points in (1000, 501, 4, 3, 2, 1):
        s = store.metric_series(run_id, "y", max_points=max_points)
        assert s.downsampled and s.total == n
        assert 1 <= len(s.values) <= max_points
        assert s.steps[0] == 0
        assert bool(np.all(np.diff(s.steps) > 0))
        if max_points >= 2:
            assert s.steps[-1] == n - 1
        if max_points >= 4:
            assert 50.0 in s.values and -40.0 in s.values
        assert np.array_equal(s.values, np.array(values)[s.steps], equal_nan=True)
        assert np.array_equal(s.times, T0 + s.steps.astype(np.float64))
    everything = store.metric_series(run_id, "y", max_points=n)
    assert not everything.downsampled and len(everything.values) == n


def test_downsample_with_range_and_unsorted_steps(make_store: Callable[..., SqlStore], run_id: str) -> None:
    store = make_store(chunk_size=1024)
    n = RAW_LIMIT * 2
    values = _wave(n)
    store.log_metrics(run_id, {"y": cols(range(n), values)})
    s = store.metric_series(run_id, "y", max_points=300, step_min=1000, step_max=n - 1000)
    assert s.steps[0] == 1000 and s.steps[-1] == n - 1000 and len(s.values) <= 300
    assert s.total == n - 1999 and 50.0 in s.values and -40.0 in s.values
    store.log_metrics(run_id, {"y": cols([5], [-1000.0])})  # a step back: no longer sorted
    s = store.metric_series(run_id, "y", max_points=300)
    assert -1000.0 in s.values and 50.0 in s.values and s.total == n + 1
    assert bool(np.all(np.diff(s.steps) >= 0)) and len(s.values) <= 300


def test_all_nan_downsample(store: SqlStore, run_id: str) -> None:
    store.log_metrics(run_id, {"y": cols(range(5000), [math.nan] * 5000)})
    s = store.metric_series(run_id, "y", max_points=100)
    assert len(s.values) <= 100 and bool(np.isnan(s.values).all())


def test_rollups_stay_exact_under_uneven_appends(make_store: Callable[..., SqlStore], run_id: str) -> None:
    """Tails are rewritten keeping their unchanged rollup blocks: every stored rollup must
    equal the one computed from the chunk's points, and the rollup downsample must agree."""
    store = make_store(chunk_size=1024)
    rng = np.random.default_rng(7)
    n = RAW_LIMIT + 20_000
    values = rng.normal(size=n)
    values[rng.integers(0, n, 500)] = np.nan
    values[77_777] = 99.0
    values[12_345] = -99.0
    start = 0
    while start < n:
        size = int(rng.choice([1, 3, 63, 64, 65, 700, 5000]))
        part = slice(start, min(start + size, n))
        store.log_metrics(run_id, {"y": cols(range(part.start, part.stop), values[part].tolist())})
        start = part.stop
    with store.database.read() as conn:
        rows = conn.execute(
            sa.select(
                metric_chunks.c.steps, metric_chunks.c.times, metric_chunks.c.vals, metric_chunks.c.rollup
            )
        ).all()
    for steps_b, times_b, vals_b, stored in rows:
        expected = rollup(*decode_chunk(steps_b, times_b, vals_b))
        assert np.array_equal(np.frombuffer(stored).reshape(expected.shape), expected, equal_nan=True)
    s = store.metric_series(run_id, "y", max_points=400)
    assert len(s.values) <= 400 and 99.0 in s.values and -99.0 in s.values
    assert s.steps[0] == 0 and s.steps[-1] == n - 1 and s.total == n
    assert np.array_equal(s.values, values[s.steps], equal_nan=True)


def test_downsample_function_keeps_bucket_extremes() -> None:
    rng = np.random.default_rng(3)
    values = rng.normal(size=10_000)
    values[::97] = np.nan
    idx = downsample(values, 102)
    assert idx is not None and len(idx) <= 102 and idx[0] == 0 and idx[-1] == 9_999
    buckets = 50
    for b in range(buckets):
        lo, hi = b * 10_000 // buckets, (b + 1) * 10_000 // buckets
        chunk = values[lo:hi]
        assert lo + int(np.nanargmin(chunk)) in idx and lo + int(np.nanargmax(chunk)) in idx
    assert downsample(values, 10_000) is None
