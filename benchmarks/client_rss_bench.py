"""Peak memory of a client that logs 1,000,000 points to a server that cannot keep up.

    .venv/bin/python benchmarks/client_rss_bench.py [--points 1000000]

Each scenario runs the client in a fresh subprocess (default settings: max_buffer_points =
1,000,000) that logs 10-float dicts as fast as it can, finishes, and reports its peak RSS
(VmHWM) and where the points went:

    baseline   mode="disabled": the interpreter plus the loop, nothing kept
    dead       nothing listens on the port (connection refused)
    stalled    a socket that accepts and never answers (every request times out)
    slow       a fake server that takes 2 s per batch
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

CHILD = """
import os, sys, time, runyard
points = int(sys.argv[1])
run = runyard.init(project="bench", experiment="rss", mode=sys.argv[2])
m = {f"m{i}": 0.5 + i for i in range(10)}
t = time.perf_counter()
for step in range(points // 10):
    run.log(m, step=step)
logged = time.perf_counter() - t
res = run.finish()
hwm = next(int(l.split()[1]) for l in open(f"/proc/{os.getpid()}/status") if l.startswith("VmHWM"))
s = run._sender
peak = s.peak_buffered if s is not None else 0
total = time.perf_counter() - t
print(hwm // 1024, res.points_sent, res.points_journaled, peak, round(logged, 1), round(total, 1))
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def child(url: str, points: int, mode: str = "online") -> str:
    with tempfile.TemporaryDirectory() as spool:
        env = {
            **os.environ,
            "RUNYARD_URL": url,
            "RUNYARD_API_KEY": "good-key",
            "RUNYARD_SPOOL_DIR": spool,
            "RUNYARD_CONFIG": str(Path(spool) / "none.toml"),
            "RUNYARD_HTTP_TIMEOUT_S": "3",
            "RUNYARD_FINISH_TIMEOUT_S": "5",
            "PYTHONPATH": str(ROOT / "src"),
        }
        r = subprocess.run(
            [sys.executable, "-c", CHILD, str(points), mode],
            env=env,
            capture_output=True,
            text=True,
            timeout=900,
        )
        if r.returncode:
            return f"error: {r.stderr.strip()[-300:]}"
        rss, sent, journaled, peak, logged, total = r.stdout.split()
        return (
            f"{rss:>4} MB peak RSS; {int(sent):>9,} sent, {int(journaled):>9,} journaled; "
            f"peak buffered {int(peak):,} points; logging took {logged} s, with finish {total} s"
        )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--points", type=int, default=1_000_000)
    args = parser.parse_args()
    from tests.fakes.server import FakeServer

    print(f"client logging {args.points:,} points (10-float dicts), default max_buffer_points:")
    print(f"  baseline: {child('http://127.0.0.1:1', args.points, 'disabled')}")
    print(f"  dead:     {child(f'http://127.0.0.1:{free_port()}', args.points)}")
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    accepted: list[socket.socket] = []

    def accept() -> None:
        while True:
            try:
                accepted.append(listener.accept()[0])
            except OSError:
                return

    threading.Thread(target=accept, daemon=True).start()
    print(f"  stalled:  {child(f'http://127.0.0.1:{listener.getsockname()[1]}', args.points)}")
    listener.close()
    fake = FakeServer()
    fake.delay_s = 2.0
    with fake.serve_http() as url:
        print(f"  slow:     {child(url, args.points)}")


if __name__ == "__main__":
    main()
