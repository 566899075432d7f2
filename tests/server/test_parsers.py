"""Pure parsers: the run query language and the ingestion bodies."""

from __future__ import annotations

import math

import numpy as np
import pytest

from runyard.errors import InvalidInput
from runyard.server.ingest import parse_batch, parse_points, parse_seed_batch, parse_timestamp
from runyard.server.query import parse_filter, parse_sort


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        ("params.lr>=0.01", ("params.lr", ">=", 0.01)),
        ("params.layers = 3", ("params.layers", "=", 3)),
        ("params.opt=adam", ("params.opt", "=", "adam")),
        ('params.tag="1e-3"', ("params.tag", "=", "1e-3")),
        ("metrics.loss<0.5", ("metrics.loss.last", "<", 0.5)),
        ("metrics.train/loss.min<0.5", ("metrics.train/loss.min", "<", 0.5)),
        ("status!=failed", ("status", "!=", "failed")),
        ("name~resnet 50", ("name", "~", "resnet 50")),
        ("tags=baseline", ("tags", "=", "baseline")),
        ("started_at>=1700000000", ("started_at", ">=", 1700000000)),
        ("slurm_partition=gpu", ("slurm_partition", "=", "gpu")),
        ("exit_code!=0", ("exit_code", "!=", 0)),
    ],
)
def test_parse_filter(expr, expected) -> None:
    assert parse_filter(expr) == expected


@pytest.mark.parametrize("expr", ["", "lr", "colour=red", "params.=1", ">=3"])
def test_parse_filter_rejects(expr) -> None:
    with pytest.raises(InvalidInput) as e:
        parse_filter(expr)
    assert e.value.field == "filter"


def test_parse_sort() -> None:
    assert parse_sort(None) == "created_at"
    assert parse_sort("metrics.loss") == "metrics.loss.last"
    assert parse_sort("metrics.loss.max") == "metrics.loss.max"
    assert parse_sort("params.lr") == "params.lr"
    for column in ("user_id", "slurm_job_id", "restart_count", "started_at"):
        assert parse_sort(column) == column
    with pytest.raises(InvalidInput):
        parse_sort("exit_code; drop table runs")


def test_parse_batch_columns_and_non_finite() -> None:
    b = parse_batch(
        "r1",
        {
            "writer": "abcdefgh",
            "seq": 3,
            "metrics": {"x": {"steps": [0, 1, 2], "values": [1, "NaN", "-Infinity"]}},
        },
        "u1",
    )
    cols = b.metrics["x"]
    assert cols.steps.dtype == np.int64 and cols.values.dtype == np.float64
    assert cols.values[0] == 1.0 and math.isnan(cols.values[1]) and cols.values[2] == -math.inf
    assert len(cols.times) == 3  # default: now
    assert b.run is None and b.seq == 3


def test_parse_batch_run_section() -> None:
    b = parse_batch(
        "r1",
        {
            "writer": "abcdefgh",
            "seq": 1,
            "run": {
                "project": "p",
                "experiment": "e",
                "config": {"a": 1},
                "slurm": {"job_id": 12, "array_task_id": 3},
            },
        },
        "u1",
    )
    assert b.project == "p" and b.experiment == "e"
    assert b.run is not None and b.run.id == "r1" and b.run.user_id == "u1"
    assert b.run.slurm_job_id == "12" and b.run.slurm_array_task_id == 3


def test_parse_points_and_seed_batch() -> None:
    cols = parse_points(
        {"points": [{"key": "a", "value": 1, "step": 0}, {"name": "a", "value": 2, "step": 1}]}
    )
    assert cols["a"].values.tolist() == [1.0, 2.0]
    seed = parse_seed_batch({"step": 4, "metrics": {"a": 1.0, "b": "Infinity"}})
    assert seed["b"].values[0] == math.inf and seed["a"].steps.tolist() == [4]


def test_parse_timestamp() -> None:
    assert parse_timestamp("1970-01-01T00:01:00") == 60.0
    assert parse_timestamp("1970-01-01T01:00:00+01:00") == 0.0
    assert parse_timestamp("1970-01-01T00:00:10Z") == 10.0
    assert parse_timestamp(5) == 5.0
    with pytest.raises(InvalidInput):
        parse_timestamp(float("nan"))
