"""What ``run.log()`` costs the training thread: p50/p99 per call for a dict of 10 floats.

    .venv/bin/python benchmarks/client_log_bench.py [--calls 200000] [--mode offline|online]

``offline`` writes the journal (no network); ``online`` sends every batch through the
transport seam to a sink that answers 200 at once (the server's own cost is left out: in a
real job it runs in another process), so the sender threads do their real work (encoding,
batching) and compete for the GIL as they would in a training job. The mean includes the
back-pressure of a loop that logs nothing but metrics, far faster than any training step.
Also prints the import cost.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def import_ms() -> tuple[float, float]:
    """Wall time of ``import runyard`` alone, and of loading everything ``init`` needs."""
    code = (
        "import time; t0 = time.perf_counter(); import runyard; t1 = time.perf_counter();"
        "import runyard.client.run, runyard.client.settings, runyard.client.environment, json;"
        "t2 = time.perf_counter(); print((t1 - t0) * 1e3, (t2 - t0) * 1e3)"
    )
    samples = [
        [
            float(x)
            for x in subprocess.run(
                [sys.executable, "-c", code], capture_output=True, text=True, check=True
            ).stdout.split()
        ]
        for _ in range(7)
    ]
    samples.sort()
    return samples[3][0], sorted(s[1] for s in samples)[3]


class Sink:
    """Answers every batch with 200 without reading it."""

    def request(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        headers: object = None,
        timeout: float | None = None,
    ) -> tuple[int, bytes]:
        return 200, b'{"duplicate": false, "points": 0}'

    def close(self) -> None:
        pass


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=200_000)
    parser.add_argument("--mode", choices=("offline", "online"), default="online")
    args = parser.parse_args()

    import runyard

    with tempfile.TemporaryDirectory() as spool:
        os.environ["RUNYARD_CONFIG"] = str(Path(spool) / "none.toml")
        sink = Sink()
        run = runyard.init(
            project="bench",
            experiment="log",
            mode=args.mode,
            spool_dir=spool,
            _transport=sink if args.mode == "online" else None,
        )
        metrics = {f"m{i}": 0.5 + i for i in range(10)}
        samples = [0] * args.calls
        clock = time.perf_counter_ns
        log = run.log
        t_all = clock()
        for step in range(args.calls):
            t = clock()
            log(metrics, step=step)
            samples[step] = clock() - t
        t_all = clock() - t_all
        result = run.finish()
    samples.sort()
    n = len(samples)
    print(f"run.log() with 10 floats, {n:,} calls, mode={args.mode}:")
    print(
        f"  p50 {samples[n // 2] / 1000:.2f} µs   p99 {samples[int(n * 0.99)] / 1000:.2f} µs   "
        f"max {samples[-1] / 1000:.0f} µs   mean {t_all / n / 1000:.2f} µs (incl. timer)"
    )
    print(f"  points delivered: {result.points_sent + result.points_journaled:,} ({result.message})")
    only, full = import_ms()
    print(f"import runyard: {only:.1f} ms; with the client modules init() loads: {full:.1f} ms (median of 7)")


if __name__ == "__main__":
    main()
