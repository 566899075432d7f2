"""The main job: start a local server (SQLite in ./.runyard), launch a few real training jobs, keep serving.

Run by ``make demo``. Run again, it reuses the data and the API key.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / ".runyard"
PORT = os.environ.get("RUNYARD_PORT", "8765")
URL = f"http://127.0.0.1:{PORT}"
BIN = Path(sys.executable).parent
TRIALS = [  # (learning rate, hidden units)
    (0.001, 32),
    (0.003, 64),
    (0.01, 64),
    (0.03, 128),
    (0.1, 128),
]

SWEEP = """\
name: digits-grid
project: demo
experiment: digits-sweep
command: [{python}, {script}, --epochs, "15"]
method: grid
parameters:
  lr: [0.003, 0.03, 0.3]
  hidden: [32, 128]
concurrency: 3
metric: {{name: val_accuracy, goal: maximize}}
output_dir: job-logs
"""


def wait_healthy(server: subprocess.Popen[bytes], deadline_s: float = 60) -> None:
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        if server.poll() is not None:
            sys.exit(f"error: the server exited with code {server.returncode}; see the lines above")
        try:
            with urllib.request.urlopen(f"{URL}/api/v1/health", timeout=1) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    sys.exit(f"error: the server did not answer on {URL} within {deadline_s:.0f} s")


def main() -> int:
    DATA.mkdir(exist_ok=True)
    # the demo owns ./.runyard: bring a database made by an older Runyard up to date first
    subprocess.run([str(BIN / "runyard"), "db", "upgrade", "--data-dir", str(DATA)], check=True)
    server = subprocess.Popen(
        [str(BIN / "runyard"), "server", "--data-dir", str(DATA), "--port", PORT],
        cwd=ROOT,
    )
    try:
        wait_healthy(server)
        key = (DATA / "admin.key").read_text().strip()
        env = {**os.environ, "RUNYARD_URL": URL, "RUNYARD_API_KEY": key}
        print(
            f"\nWeb UI: {URL}/  — sign in with the API key {key} and watch the jobs live.",
            flush=True,
        )
        print(
            f"\nrunyard demo: launching {len(TRIALS)} training jobs on the digits data set through the "
            "server (onto Slurm when a cluster answers here, else as local processes)…",
            flush=True,
        )
        for lr, hidden in TRIALS:
            # `runyard launch` creates the run first, submits the job, and --wait follows it to
            # the end; the job logs into that run through the RUNYARD_RUN_ID it is given
            subprocess.run(
                [
                    str(BIN / "runyard"),
                    "launch",
                    "--wait",
                    "--project",
                    "demo",
                    "--experiment",
                    "digits-mlp",
                    "--name",
                    f"mlp-lr{lr}-h{hidden}",
                    "--output-dir",
                    str(DATA / "job-logs"),
                    "--",
                    sys.executable,
                    str(ROOT / "examples" / "train_digits.py"),
                    "--lr",
                    str(lr),
                    "--hidden",
                    str(hidden),
                    "--epochs",
                    "25",
                ],
                env=env,
                check=True,
                cwd=ROOT,
            )
        subprocess.run(
            [
                str(BIN / "runyard"),
                "runs",
                "-e",
                "digits-mlp",
                "--sort",
                "metrics.val_accuracy",
                "-m",
                "val_accuracy,val_loss,train_loss",
                "-n",
                "10",
            ],
            env=env,
            check=False,
        )
        # a sweep: one job array, one run per trial, its page in the web UI (docs/sweeps.md)
        spec = DATA / "digits-sweep.yaml"
        spec.write_text(SWEEP.format(python=sys.executable, script=ROOT / "examples" / "train_digits.py"))
        print("\nrunyard demo: a 6-trial grid sweep as one job array (runyard sweep)…", flush=True)
        subprocess.run(
            [str(BIN / "runyard"), "sweep", str(spec), "--wait", "--poll", "2"], env=env, check=True, cwd=ROOT
        )
        print(
            f"\nRunyard is serving at {URL}  (web UI: {URL}/ , API docs: {URL}/docs)\n"
            f"API key: {key}\n"
            f"Try:  RUNYARD_URL={URL} RUNYARD_API_KEY={key} .venv/bin/runyard runs -e digits-mlp\n"
            "Press Ctrl-C to stop.",
            flush=True,
        )
        return server.wait()
    except KeyboardInterrupt:
        return 0
    finally:
        if server.poll() is None:
            server.send_signal(signal.SIGINT)
            try:
                server.wait(timeout=10)
            except subprocess.TimeoutExpired:
                server.kill()


if __name__ == "__main__":
    sys.exit(main())
