"""The web UI in headless Chromium: time to first render of the runs table of an experiment
with 100,000 runs, and of a chart overlaying 20 runs × 100,000 steps.

    .venv/bin/python benchmarks/ui_bench.py [--runs 100000] [--steps 100000] [--reps 5]

A real ``runyard server`` (SQLite in a temp dir) serves the built UI (``make web``); Playwright
drives Debian's Chromium (``scripts/chromium.sh``). The app marks ``runyard:runs-table-rendered``
when the first page of rows is in the DOM and ``runyard:chart-rendered`` when every series of
the first chart has been drawn; the figure is the mark's time since the navigation started
(HTML, scripts, the session check, the API calls and React's render: what a researcher waits
for). Each repetition is a fresh page in a warm browser (assets cached, as on a second visit);
the first, cold one is reported apart. The chart is also timed from ``runyard:chart-start``
(its component asks for data) to drawn: the chart's own cost, without the page around it.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from tests.browser.conftest import CHROMIUM_ARGS, WEBUI_INDEX  # noqa: E402
from tests.e2e.conftest import LiveServer, free_port  # noqa: E402

from benchmarks.store_bench import fill_runs  # noqa: E402

TABLE_MARK = "runyard:runs-table-rendered"
CHART_MARK = "runyard:chart-rendered"
CHART_START = "runyard:chart-start"


def build_data(data: Path, runs: int, steps: int, curves: int) -> tuple[str, str, list[str], str]:
    """An experiment of ``runs`` runs (params and a loss summary, written in bulk) and one of
    ``curves`` runs with ``steps`` points of train/loss each (through the store's ingest)."""
    from runyard.entities import MetricColumns, RunCreate
    from runyard.store.sql import SqlStore

    store = SqlStore(f"sqlite:///{data / 'runyard.db'}")
    store.upgrade()
    try:
        admin = store.create_user("admin", is_admin=True)
        _, key = store.create_api_key(admin.id, "bench")
        big = store.ensure_experiment("bench", "table-100k")
        fill_runs(store, big.id, big.project_id, runs, np.random.default_rng(0))
        charts = store.ensure_experiment("bench", "curves")
        ids = []
        step_arr = np.arange(steps, dtype=np.int64)
        for i in range(curves):
            run = store.create_run(RunCreate(experiment_id=charts.id, name=f"curve-{i}", config={"i": i}))
            values = np.exp(-step_arr / (steps / (2 + i * 0.1))) + np.random.default_rng(i).normal(
                0, 0.02, steps
            )
            store.log_metrics(run.id, {"train/loss": MetricColumns(step_arr, 1.7e9 + step_arr * 0.1, values)})
            ids.append(run.id)
        return key, big.id, ids, charts.id
    finally:
        store.close()


def mark_ms(page: Any, url: str, mark: str, timeout_ms: int = 60_000) -> float:
    page.goto(url)
    page.wait_for_function(
        "(mark) => performance.getEntriesByName(mark).length > 0", arg=mark, timeout=timeout_ms, polling=20
    )
    return float(page.evaluate("(mark) => performance.getEntriesByName(mark)[0].startTime", mark))


def measure(
    context: Any, url: str, mark: str, reps: int, since: str | None = None
) -> tuple[float, float, float | None]:
    """(cold first visit, median of the warm ones, median of the warm ones counted from the
    mark ``since`` instead of the navigation's start), in ms."""
    times, spans = [], []
    for _ in range(reps + 1):
        page = context.new_page()
        try:
            times.append(mark_ms(page, url, mark))
            if since:
                start = page.evaluate("(m) => performance.getEntriesByName(m)[0].startTime", since)
                spans.append(times[-1] - float(start))
        finally:
            page.close()
    return times[0], statistics.median(times[1:]), statistics.median(spans[1:]) if spans else None


def bench_ui(runs: int, steps: int, reps: int, curves: int = 20) -> list[tuple[str, str, str]]:
    if not WEBUI_INDEX.is_file():
        raise SystemExit(f"the web UI is not built ({WEBUI_INDEX}): run `make web`")
    chromium = subprocess.run(
        ["bash", str(ROOT / "scripts" / "chromium.sh")], capture_output=True, text=True, check=True
    ).stdout.split()[-1]
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "data"
        data.mkdir()
        t = time.perf_counter()
        key, big, curve_ids, curves_exp = build_data(data, runs, steps, curves)
        print(f"ui_bench: data written in {time.perf_counter() - t:.0f} s", file=sys.stderr)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("RUNYARD_", "SLURM_", "TRACKER_"))}
        env.update(RUNYARD_EXECUTOR="none", RUNYARD_CONFIG=str(data / "client.toml"))
        (data / "admin.key").write_text(key)
        server = LiveServer(data, free_port(), env)
        server.start()
        try:
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS, headless=True)
                context = browser.new_context(viewport={"width": 1400, "height": 900})
                assert context.request.post(f"{server.url}/api/v1/session", data={"api_key": key}).ok
                table_cold, table, _ = measure(context, f"{server.url}/experiments/{big}", TABLE_MARK, reps)
                compare = ",".join(curve_ids)
                chart_cold, chart, chart_own = measure(
                    context,
                    f"{server.url}/experiments/{curves_exp}?compare={compare}",
                    CHART_MARK,
                    reps,
                    since=CHART_START,
                )
                browser.close()
        finally:
            server.stop()
    return [
        (
            f"UI: runs table first render, {runs:,} runs (headless Chromium)",
            f"{table:.0f} ms (first visit {table_cold:.0f} ms)",
            "≤ 1 s",
        ),
        (
            f"UI: chart of {curves} runs × {steps:,} steps, first render",
            f"{chart_own:.0f} ms from the chart's first request; page load included {chart:.0f} ms "
            f"(first visit {chart_cold:.0f} ms)",
            "≤ 500 ms",
        ),
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=100_000)
    parser.add_argument("--steps", type=int, default=100_000)
    parser.add_argument("--reps", type=int, default=5)
    args = parser.parse_args()
    for name, value, target in bench_ui(args.runs, args.steps, args.reps):
        print(f"{name}: {value} (target {target})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
