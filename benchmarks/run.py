"""Runyard's benchmark runner (`make bench`): prints the figures the issues name, as a table.

    .venv/bin/python benchmarks/run.py [--quick] [--no-postgres]

Every figure goes through real processes: a `runyard server` subprocess (SQLite in a temp
dir, and PostgreSQL started by scripts/postgres.sh), requests over HTTP on 127.0.0.1, the
client library in this process or a subprocess. Medians of several repetitions where cheap.
Record what you measure in benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from tests.e2e.conftest import LiveServer, free_port  # noqa: E402

TARGETS = {
    "log": "p50 ≤ 5 µs",
    "ingest": "≥ 1,000,000 pts/s",
    "read": "≤ 20 ms",
    "down": "≤ 20 ms",
    "search": "≤ 50 ms",
    "create": "≥ 1,000 runs/s",
    "server_mem": "≤ 200 MB",
    "client_mem": "bounded",
    "watcher": "parse + reconcile ≤ 1 s",
}


class Http:
    def __init__(self, url: str, key: str) -> None:
        host, port = url.removeprefix("http://").split(":")
        self.conn = http.client.HTTPConnection(host, int(port), timeout=120)
        self.headers = {"X-API-Key": key, "Content-Type": "application/json"}

    def call(self, method: str, path: str, body: bytes | None = None) -> Any:
        return json.loads(self.raw(method, path, body))

    def raw(self, method: str, path: str, body: bytes | None = None) -> bytes:
        """The response body, unparsed: time to last byte is what the server delivers."""
        try:
            self.conn.request(method, path, body=body, headers=self.headers)
            r = self.conn.getresponse()
        except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
            self.conn.close()  # an idle keep-alive connection the server closed: once more
            self.conn.request(method, path, body=body, headers=self.headers)
            r = self.conn.getresponse()
        data = r.read()
        if r.status >= 300:
            raise RuntimeError(f"{method} {path}: {r.status} {data[:300]!r}")
        return data


def vm_hwm_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def reset_hwm(pid: int) -> None:
    with contextlib.suppress(OSError):  # resets VmHWM so the peak is this phase's own
        Path(f"/proc/{pid}/clear_refs").write_text("5")


def columnar(keys: int, start: int, n: int) -> dict[str, Any]:
    steps = list(range(start, start + n))
    t0 = 1.7e9
    times = [t0 + s * 0.001 for s in steps]
    return {
        f"m{k}": {"steps": steps, "times": times, "values": [s * 0.001 + k for s in steps]}
        for k in range(keys)
    }


def make_run(h: Http, exp_id: str, name: str) -> str:
    return str(
        h.call("POST", f"/api/v1/experiments/{exp_id}/runs", json.dumps({"name": name}).encode())["id"]
    )


def bench_ingest(server: LiveServer, h: Http, exp_id: str, points: int) -> tuple[float, float, str]:
    """1,000,000 points into one run via the columnar batch endpoint (bodies pre-encoded)."""
    run_id = make_run(h, exp_id, "ingest")
    keys, per_key = 10, 10_000
    bodies = []
    for i in range(points // (keys * per_key)):
        body = {"writer": "benchwriter01", "seq": i + 1, "metrics": columnar(keys, i * per_key, per_key)}
        bodies.append(json.dumps(body).encode())
    assert server.proc is not None
    reset_hwm(server.proc.pid)
    t = time.perf_counter()
    for body in bodies:
        h.call("POST", f"/api/v1/runs/{run_id}/batches", body)
    elapsed = time.perf_counter() - t
    return points / elapsed, vm_hwm_mb(server.proc.pid), run_id


def bench_series(h: Http, run_id: str, key: str, max_points: int | None, reps: int = 7) -> str:
    """Request to last byte of the JSON answer (median), and what parsing it costs in Python."""
    q = f"/api/v1/runs/{run_id}/metrics/series?key={key}" + (
        f"&max_points={max_points}" if max_points else ""
    )
    times, parse = [], []
    for _ in range(reps):
        t = time.perf_counter()
        data = h.raw("GET", q)
        times.append(time.perf_counter() - t)
        t = time.perf_counter()
        json.loads(data)
        parse.append(time.perf_counter() - t)
    return (
        f"{statistics.median(times) * 1000:.1f} ms to last byte "
        f"(+{statistics.median(parse) * 1000:.0f} ms json.loads, {len(data) / 1e6:.1f} MB)"
    )


def bench_long_series(h: Http, exp_id: str, n: int) -> str:
    run_id = make_run(h, exp_id, "long")
    chunk = 100_000
    for i in range(n // chunk):
        body = {"writer": "benchwriter02", "seq": i + 1, "metrics": columnar(1, i * chunk, chunk)}
        h.call("POST", f"/api/v1/runs/{run_id}/batches", json.dumps(body).encode())
    return run_id


def bench_create(h: Http, exp_id: str, n: int) -> float:
    """One run per request, one client: what n jobs each calling runyard.init cost."""
    body = json.dumps({"name": "r", "config": {"lr": 0.1, "layers": 4}}).encode()
    t = time.perf_counter()
    for _ in range(n):
        h.raw("POST", f"/api/v1/experiments/{exp_id}/runs", body)
    return n / (time.perf_counter() - t)


def bench_create_bulk(h: Http, exp_id: str, n: int, per_request: int = 1000) -> float:
    """POST /api/v1/runs/bulk: how a sweep creates its trials."""
    bodies = [
        json.dumps(
            {
                "runs": [
                    {"experiment_id": exp_id, "name": f"t{i}", "config": {"lr": 0.1, "i": i}}
                    for i in range(per_request)
                ]
            }
        ).encode()
        for _ in range(n // per_request)
    ]
    t = time.perf_counter()
    for body in bodies:
        h.raw("POST", "/api/v1/runs/bulk", body)
    return n / (time.perf_counter() - t)


def populate_runs(database_url: str, exp_id: str, n: int) -> None:
    """n runs with params and a loss summary, written in bulk through the store's tables
    (store_bench.fill_runs): the search figure is about reading, not about filling."""
    import numpy as np

    from benchmarks.store_bench import fill_runs
    from runyard.store.sql import SqlStore

    store = SqlStore(database_url)
    try:
        fill_runs(store, exp_id, store.get_experiment(exp_id).project_id, n, np.random.default_rng(0))
    finally:
        store.close()


def bench_search(h: Http, exp_id: str, reps: int = 7) -> float:
    q = f"/api/v1/experiments/{exp_id}/runs?filter=params.lr%3D0.01&sort=metrics.loss.min&order=asc&limit=50"
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        page = h.call("GET", q)
        times.append(time.perf_counter() - t)
    assert len(page["runs"]) == 50
    return statistics.median(times) * 1000


def bench_log_call(calls: int = 200_000) -> tuple[float, float]:
    """run.log() cost in the training thread: 10 metrics per call, offline mode (no network)."""
    import runyard

    with tempfile.TemporaryDirectory() as spool:
        run = runyard.init(project="bench", experiment="log", mode="offline", spool_dir=spool)
        metrics = {f"m{i}": 0.5 for i in range(10)}
        samples = []
        clock = time.perf_counter_ns
        for step in range(calls):
            t = clock()
            run.log(metrics, step=step)
            samples.append(clock() - t)
        run.finish()
    samples.sort()
    return samples[len(samples) // 2] / 1000, samples[int(len(samples) * 0.99)] / 1000


CLIENT_MEM_SCRIPT = """
import os, sys, time, runyard
run = runyard.init(project="bench", experiment="mem", max_buffer_points=100_000, flush_interval_s=0.2)
m = {f"m{i}": 0.5 for i in range(10)}
for step in range(100_000):
    run.log(m, step=step)
res = run.finish()
for line in open(f"/proc/{os.getpid()}/status"):
    if line.startswith("VmHWM"):
        print(int(line.split()[1]) // 1024, res.points_journaled)
"""


def bench_client_memory(dead_url: str) -> str:
    with tempfile.TemporaryDirectory() as spool:
        env = {
            **os.environ,
            "RUNYARD_URL": dead_url,
            "RUNYARD_API_KEY": "ry_x_x",
            "RUNYARD_SPOOL_DIR": spool,
            "RUNYARD_CONFIG": str(Path(spool) / "none.toml"),
        }
        r = subprocess.run(
            [sys.executable, "-c", CLIENT_MEM_SCRIPT], env=env, capture_output=True, text=True, timeout=600
        )
        if r.returncode:
            return f"error: {r.stderr.strip()[-200:]}"
        peak, journaled = r.stdout.split()
        return f"{peak} MB peak RSS (1,000,000 pts, server down, cap 100k; {int(journaled):,} journaled)"


def run_backend(
    label: str, database_url: str | None, args: argparse.Namespace, rows: list[tuple[str, str, str]]
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        env = {k: v for k, v in os.environ.items() if not k.startswith("RUNYARD_")}
        env["RUNYARD_CONFIG"] = str(Path(tmp) / "cfg.toml")
        if database_url:
            env["RUNYARD_DATABASE_URL"] = database_url
        data = Path(tmp) / "data"
        data.mkdir()
        server = LiveServer(data, free_port(), env)
        server.start()
        try:
            h = Http(server.url, server.key)
            exp = h.call(
                "POST",
                "/api/v1/experiments",
                json.dumps({"project": "bench", "name": "bench", "exist_ok": True}).encode(),
            )
            points = 200_000 if args.quick else 1_000_000
            rate, peak, ingest_run = bench_ingest(server, h, exp["id"], points)
            rows.append(
                (
                    f"ingest {points:,} pts into one run, HTTP batches ({label})",
                    f"{rate:,.0f} pts/s",
                    TARGETS["ingest"],
                )
            )
            rows.append(
                (f"server peak RSS during that ingestion ({label})", f"{peak:.0f} MB", TARGETS["server_mem"])
            )
            long_n = 200_000 if args.quick else 1_000_000
            long_run = bench_long_series(h, exp["id"], long_n)
            hundred_k = bench_long_series(h, exp["id"], 100_000)
            rows.append(
                (
                    f"read a 100,000-step series, full ({label})",
                    bench_series(h, hundred_k, "m0", None),
                    TARGETS["read"],
                )
            )
            rows.append(
                (
                    f"read a {long_n:,}-step series downsampled to 1,000 ({label})",
                    bench_series(h, long_run, "m0", 1000),
                    TARGETS["down"],
                )
            )
            rows.append(
                (
                    f"create runs over HTTP, one client ({label})",
                    f"{bench_create(h, exp['id'], 500 if args.quick else 2000):,.0f} runs/s",
                    TARGETS["create"],
                )
            )
            rows.append(
                (
                    f"create runs over HTTP in bulk, 1,000 per request ({label})",
                    f"{bench_create_bulk(h, exp['id'], 2000 if args.quick else 10_000):,.0f} runs/s",
                    TARGETS["create"],
                )
            )
            n_runs = 10_000 if args.quick else 100_000
            search_exp = h.call(
                "POST",
                "/api/v1/experiments",
                json.dumps({"project": "bench", "name": "search", "exist_ok": True}).encode(),
            )
            populate_runs(database_url or f"sqlite:///{data / 'runyard.db'}", search_exp["id"], n_runs)
            rows.append(
                (
                    f"{n_runs:,} runs: filter by param, sort by metric, first page ({label})",
                    f"{bench_search(h, search_exp['id']):.1f} ms",
                    TARGETS["search"],
                )
            )
            del ingest_run
        finally:
            server.stop()


def start_postgres() -> tuple[str, str] | None:
    r = subprocess.run(
        ["bash", str(ROOT / "scripts" / "postgres.sh"), "start"], capture_output=True, text=True
    )
    if r.returncode:
        print(f"postgres: could not start ({r.stderr.strip()[-300:]}); skipping its rows", file=sys.stderr)
        return None
    pg_dir, url = r.stdout.split()[:2]
    return pg_dir, url


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes (a smoke run, not the figures)")
    parser.add_argument("--no-postgres", action="store_true")
    parser.add_argument("--no-ui", action="store_true", help="skip the web UI rows (headless Chromium)")
    parser.add_argument("--no-slurm", action="store_true", help="skip the sweep row (the dev cluster)")
    args = parser.parse_args()
    rows: list[tuple[str, str, str]] = []
    p50, p99 = bench_log_call()
    rows.append(
        (
            "run.log() in the training thread, 10 metrics/call",
            f"p50 {p50:.2f} µs, p99 {p99:.2f} µs",
            TARGETS["log"],
        )
    )
    rows.append(
        (
            "client peak memory, server unreachable",
            bench_client_memory(f"http://127.0.0.1:{free_port()}"),
            TARGETS["client_mem"],
        )
    )
    from benchmarks.watcher_bench import bench_watcher_cycle

    best_s, pure_s, full_s = bench_watcher_cycle(2_000 if args.quick else 10_000)
    rows.append(
        (
            f"Slurm watcher cycle, {2_000 if args.quick else 10_000:,} jobs (recorded squeue/sacct JSON)",
            f"parse + reconcile best {best_s * 1000:.0f} ms, median {pure_s * 1000:.0f} ms; "
            f"with every run changing and written: {full_s:.1f} s",
            TARGETS["watcher"],
        )
    )
    if not args.no_slurm:
        from benchmarks.sweep_bench import bench_sweep_submit

        rows += bench_sweep_submit(1000, reps=2)
    if not args.no_ui:
        from benchmarks.ui_bench import bench_ui

        rows += bench_ui(10_000 if args.quick else 100_000, 10_000 if args.quick else 100_000, reps=5)
    run_backend("SQLite", None, args, rows)
    if not args.no_postgres:
        pg = start_postgres()
        if pg:
            try:
                run_backend("PostgreSQL", pg[1], args, rows)
            finally:
                subprocess.run(["bash", str(ROOT / "scripts" / "postgres.sh"), "stop", pg[0]], check=False)
    width = max(len(r[0]) for r in rows)
    vwidth = max(len(r[1]) for r in rows)
    print(f"\n{'benchmark'.ljust(width)}  {'measured'.ljust(vwidth)}  target")
    for name, value, target in rows:
        print(f"{name.ljust(width)}  {value.ljust(vwidth)}  {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
