"""Micro-benchmark of the SQL store (not a test): the operations the server's targets rest on.

    .venv/bin/python benchmarks/store_bench.py                      # SQLite in a temp dir
    .venv/bin/python benchmarks/store_bench.py postgresql+psycopg://USER@HOST:PORT/DB
    .venv/bin/python benchmarks/store_bench.py --chunk-size 1024    # compare chunk sizes

A PostgreSQL database must be empty or already migrated by Runyard; it is filled with
benchmark data. (``scripts/postgres.sh start`` gives a throw-away server.)

Prints, per backend: apply_batch of 100,000 points (10 keys x 10,000 steps), the same with
1 point per key (many tiny batches), a full read of a 100,000-step series, a downsample of a
1,000,000-step series to 1,000 points, the first page (50) of a search over 100,000 runs
of one experiment filtered by a param and sorted by a metric summary, and runs created per
second. Times are medians of several repetitions, in milliseconds.

The 100,000 runs for the search are written with bulk INSERTs shaped exactly like the rows
``create_run``/``log_metrics`` write (creating them one by one is measured separately, on
fewer runs, as "runs created per second").
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import sqlalchemy as sa

from runyard.entities import Batch, MetricColumns, RunCreate, RunQuery
from runyard.store.sql import SqlStore
from runyard.store.sql.metrics import DEFAULT_CHUNK_SIZE
from runyard.store.sql.schema import metric_summaries, run_params, runs

T0 = 1_763_798_400.0


def timed(fn: Callable[[], object], repeat: int) -> float:
    """Median wall time of ``fn`` in ms (after one warm-up call)."""
    fn()
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - start) * 1000)
    return statistics.median(samples)


def columns(start: int, n: int, rng: np.random.Generator) -> MetricColumns:
    steps = np.arange(start, start + n, dtype=np.int64)
    return MetricColumns(steps=steps, times=T0 + steps * 0.01, values=rng.normal(size=n))


def bench_ingest(store: SqlStore, experiment_id: str, rng: np.random.Generator) -> dict[str, float]:
    run_id = store.create_run(RunCreate(experiment_id=experiment_id, name="ingest")).id
    keys = [f"train/metric_{i}" for i in range(10)]
    state = {"seq": 0, "step": 0}

    def big_batch() -> None:
        state["seq"] += 1
        metrics = {k: columns(state["step"], 10_000, rng) for k in keys}
        store.apply_batch(run_id, Batch(writer="benchwriter", seq=state["seq"], metrics=metrics))
        state["step"] += 10_000

    big = timed(big_batch, 10)

    def tiny_batch() -> None:
        state["seq"] += 1
        metrics = {k: columns(state["step"], 1, rng) for k in keys}
        store.apply_batch(run_id, Batch(writer="benchwriter", seq=state["seq"], metrics=metrics))
        state["step"] += 1

    tiny = timed(tiny_batch, 200)
    return {
        "apply_batch 100k points (10 keys x 10k), ms": big,
        "  = points/s in the store": 100_000 / big * 1000,
        "apply_batch 10 keys x 1 point, ms": tiny,
    }


def bench_reads(store: SqlStore, experiment_id: str, rng: np.random.Generator) -> dict[str, float]:
    run_id = store.create_run(RunCreate(experiment_id=experiment_id, name="reads")).id
    store.log_metrics(run_id, {"loss100k": columns(0, 100_000, rng)})
    for i in range(10):
        store.log_metrics(run_id, {"loss1m": columns(i * 100_000, 100_000, rng)})
    assert len(store.metric_series(run_id, "loss100k").values) == 100_000
    down = store.metric_series(run_id, "loss1m", max_points=1000)
    assert len(down.values) <= 1000 and down.total == 1_000_000
    return {
        "read 100k-step series (full), ms": timed(lambda: store.metric_series(run_id, "loss100k"), 20),
        "read 1M-step series downsampled to 1000, ms": timed(
            lambda: store.metric_series(run_id, "loss1m", max_points=1000), 20
        ),
        "read 1M-step series (full), ms": timed(lambda: store.metric_series(run_id, "loss1m"), 3),
        "read 100k of the 1M (step range) downsampled to 1000, ms": timed(
            lambda: store.metric_series(
                run_id, "loss1m", max_points=1000, step_min=450_000, step_max=549_999
            ),
            20,
        ),
    }


def fill_runs(store: SqlStore, experiment_id: str, project_id: str, n: int, rng: np.random.Generator) -> None:
    lrs = [0.0001, 0.0003, 0.001, 0.003, 0.01, 0.03, 0.1, 0.3]
    opts = ["adam", "sgd", "adamw", "lion"]
    batch = 10_000
    with store.database.write() as conn:
        for lo in range(0, n, batch):
            run_rows, param_rows, summary_rows = [], [], []
            for i in range(lo, min(lo + batch, n)):
                run_id = f"run{i:07d}"
                lr, opt = lrs[int(rng.integers(len(lrs)))], opts[int(rng.integers(len(opts)))]
                config = {"lr": lr, "optimizer": {"name": opt}, "seed": i}
                at = T0 + i
                run_rows.append(
                    {
                        "id": run_id,
                        "experiment_id": experiment_id,
                        "project_id": project_id,
                        "name": f"sweep-{i}",
                        "status": "finished",
                        "created_at": at,
                        "updated_at": at + 3600,
                        "started_at": at,
                        "ended_at": at + 3600,
                        "config": json.dumps(config),
                        "summary": "{}",
                        "tags": "[]",
                        "notes": "",
                        "restart_count": 0,
                    }
                )
                param_rows += [
                    {"run_id": run_id, "key": "lr", "num_value": lr, "text_value": json.dumps(lr)},
                    {"run_id": run_id, "key": "optimizer.name", "num_value": None, "text_value": opt},
                    {"run_id": run_id, "key": "seed", "num_value": float(i), "text_value": str(i)},
                ]
                if i % 50:  # 2% of runs never logged a loss: they sort last
                    loss = float(rng.gamma(2.0, 0.5))
                    summary_rows.append(
                        {
                            "run_id": run_id,
                            "key": "loss",
                            "chunk_size": DEFAULT_CHUNK_SIZE,
                            "count": 1000,
                            "last": loss,
                            "last_step": 999,
                            "last_time": at + 3600,
                            "min": loss * 0.9,
                            "max": loss * 5,
                        }
                    )
            conn.execute(sa.insert(runs), run_rows)
            conn.execute(sa.insert(run_params), param_rows)
            conn.execute(sa.insert(metric_summaries), summary_rows)
    if store.database.is_sqlite:
        with store.database.raw_write() as conn:
            conn.exec_driver_sql("PRAGMA optimize")
    else:
        with store.database.engine.connect() as conn:
            conn.execution_options(isolation_level="AUTOCOMMIT").exec_driver_sql("ANALYZE")


def bench_search(store: SqlStore, rng: np.random.Generator, n_runs: int) -> dict[str, float]:
    exp = store.ensure_experiment("bench", "search")
    start = time.perf_counter()
    fill_runs(store, exp.id, exp.project_id, n_runs, rng)
    print(f"  (filled {n_runs} runs in {time.perf_counter() - start:.1f} s)", file=sys.stderr)

    def query(n: int = 50, **kwargs: object) -> Callable[[], object]:
        q = RunQuery(experiment_id=exp.id, limit=50, **kwargs)  # type: ignore[arg-type]

        def run() -> object:
            page = store.search_runs(q)
            assert len(page.runs) == n
            return page

        return run

    lr_filter = (("params.lr", ">=", 0.01),)
    return {
        f"search {n_runs} runs: params.lr>=0.01 sort metrics.loss.last asc, first 50, ms": timed(
            query(filters=lr_filter, sort="metrics.loss.last", descending=False), 20
        ),
        "  same, descending, ms": timed(query(filters=lr_filter, sort="metrics.loss.last"), 20),
        "  same, page at offset 5000, ms": timed(
            query(filters=lr_filter, sort="metrics.loss.min", descending=False, offset=5000), 5
        ),
        "  selective: params.seed=77777, same sort, ms": timed(
            query(filters=(("params.seed", "=", 77777),), sort="metrics.loss.last", descending=False, n=1), 20
        ),
        "  params.optimizer.name=adam, sort created_at desc, ms": timed(
            query(filters=(("params.optimizer.name", "=", "adam"),)), 20
        ),
        "  no filter, sort params.lr desc, ms": timed(query(sort="params.lr"), 20),
        "  filter + sort + with_total, ms": timed(
            query(filters=lr_filter, sort="metrics.loss.last", descending=False, with_total=True), 5
        ),
        "get_experiment (counts over all its runs), ms": timed(lambda: store.get_experiment(exp.id), 20),
    }


def bench_create_runs(store: SqlStore, n: int) -> dict[str, float]:
    exp = store.ensure_experiment("bench", "create")
    start = time.perf_counter()
    for i in range(n):
        store.create_run(
            RunCreate(
                experiment_id=exp.id,
                name=f"run {i}",
                config={"lr": 0.001 * i, "batch": 64, "optimizer": {"name": "adam", "betas": [0.9, 0.99]}},
                tags=("bench", f"group{i % 10}"),
            )
        )
    return {"runs created per second (create_run)": n / (time.perf_counter() - start)}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("url", nargs="?", help="database URL (default: SQLite in a temporary directory)")
    parser.add_argument("--chunk-size", type=int, default=DEFAULT_CHUNK_SIZE)
    parser.add_argument("--runs", type=int, default=100_000, help="runs in the search benchmark")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url = args.url or f"sqlite:///{Path(tmp) / 'bench.db'}"
        store = SqlStore(url, chunk_size=args.chunk_size)
        if not store.schema_state().up_to_date:
            store.upgrade()
        rng = np.random.default_rng(0)
        exp = store.ensure_experiment("bench", "metrics")
        print(f"{store!r}, chunk size {args.chunk_size}")
        results: dict[str, float] = {}
        results |= bench_ingest(store, exp.id, rng)
        results |= bench_reads(store, exp.id, rng)
        results |= bench_create_runs(store, 1000)
        results |= bench_search(store, rng, args.runs)
        store.close()
    width = max(len(k) for k in results)
    for name, value in results.items():
        print(f"{name:<{width}}  {value:>12,.1f}")


if __name__ == "__main__":
    main()
