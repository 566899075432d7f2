"""The steps of the example pipeline: ``python steps.py prep|train|evaluate``.

Each step writes a small file under ``$DATA_DIR`` (default ``data``) that the next one reads,
and logs a metric. ``--fail`` makes a step exit 1, to see what the pipeline does then.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import runyard


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("step", choices=["prep", "train", "evaluate"])
    parser.add_argument("--fail", action="store_true", help="exit 1 (a failing step)")
    parser.add_argument("--seconds", type=float, default=1.0, help="how long the step works")
    args = parser.parse_args()

    data = Path(os.environ.get("DATA_DIR", "data"))
    data.mkdir(parents=True, exist_ok=True)
    run = runyard.init(config={"step": args.step})
    time.sleep(args.seconds)
    if args.fail:
        print(f"{args.step}: failing as asked", file=sys.stderr, flush=True)
        run.finish(status="failed")
        return 1
    if args.step == "prep":
        (data / "prepared.json").write_text(json.dumps({"rows": 1000}))
        run.log({"prep/rows": 1000})
    elif args.step == "train":
        rows = json.loads((data / "prepared.json").read_text())["rows"]
        (data / "model.json").write_text(json.dumps({"weights": [0.1, 0.2], "rows": rows}))
        run.log({"train/loss": 0.3})
    else:
        model = json.loads((data / "model.json").read_text()) if (data / "model.json").exists() else None
        run.log({"eval/accuracy": 0.9 if model else 0.0})
    print(f"{args.step}: done", flush=True)
    run.finish()
    return 0


if __name__ == "__main__":
    sys.exit(main())
