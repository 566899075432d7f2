"""The training scripts of the Slurm acceptance tests, one per behaviour: `slurm_job.py MODE [ARG]`.

Every mode but `exit3` and `oom` uses the Runyard client the way a researcher would; `exit3` does
not import runyard at all (the generated batch script still reports its start and exit code).
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path


def train(steps: int, pause_s: float, **init: object) -> None:
    import runyard

    run = runyard.init(**init)  # type: ignore[arg-type]
    for step in range(steps):
        run.log({"loss": 1.0 / (step + 1)}, step=step)
        time.sleep(pause_s)
    run.finish()


def main() -> int:
    mode = sys.argv[1]
    arg = sys.argv[2] if len(sys.argv) > 2 else ""
    if mode == "finish":
        print("hello from stdout", flush=True)
        print("a warning on stderr", file=sys.stderr, flush=True)
        # ~4 s: Slurm samples memory every 2 s (JobAcctGatherFrequency=task=2); a job gone before
        # its first sample may have no MaxRSS, and the test reads the efficiency report's peak
        train(5, 0.8)
        return 0
    if mode == "exit3":
        print("about to fail with exit code 3", file=sys.stderr, flush=True)
        return 3
    if mode == "sleep":  # a long job that others wait for, or that gets cancelled
        train(int(float(arg or "60") / 0.5), 0.5)
        return 0
    if mode == "oom":  # well past its --mem: Slurm's memory enforcement kills it
        hog = bytearray(700 * 1024 * 1024)
        for i in range(0, len(hog), 4096):
            hog[i] = 1
        time.sleep(30)
        return 0
    if mode == "timeout":  # ignores should_stop: runs into its time limit after checkpointing
        import runyard

        run = runyard.init()
        ckpt = Path(os.environ.get("CKPT_DIR", ".")) / f"timeout-{run.id}.ckpt"

        @run.on_preempt
        def save() -> str:
            ckpt.write_text("step checkpoint\n")
            print("checkpoint saved at the time-limit warning", flush=True)
            return str(ckpt)

        step = 0
        while True:
            run.log({"loss": 1.0 / (step + 1)}, step=step)
            step += 1
            time.sleep(0.5)
    if mode == "resume":  # checkpoints as it goes; after a requeue it continues where it was
        import runyard

        run = runyard.init()
        start = 0
        if run.resumed and run.latest_checkpoint:
            start = int(Path(run.latest_checkpoint).read_text()) + 1
            print(f"resumed from {run.latest_checkpoint} at step {start}", flush=True)
        total = int(arg or "40")
        for step in range(start, total):
            run.log({"loss": 1.0 / (step + 1)}, step=step)
            if step % 5 == 4:
                path = Path(os.environ["CKPT_DIR"]) / f"resume-{run.id}.ckpt"
                path.write_text(str(step))
                run.log_artifact(str(path), kind="checkpoint", step=step)
            time.sleep(0.5)
        run.summary["started_at_step"] = start
        run.finish()
        return 0
    if mode == "array":
        import runyard

        run = runyard.init()
        run.log({"task": float(os.environ["SLURM_ARRAY_TASK_ID"])}, step=0)
        time.sleep(float(arg or "3"))
        run.finish()
        return 0
    raise SystemExit(f"unknown mode {mode!r}")


if __name__ == "__main__":
    sys.exit(main())
