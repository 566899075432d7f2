"""A stand-in training script for the sweep examples: no data set, no GPU, a few seconds.

Its validation loss falls over the epochs towards a floor set by the hyper-parameters (best
near lr=0.01 and batch_size=64, dropout helping a little), so a sweep has something to find
and an early-stop rule something to stop. Every parameter arrives as ``--name=value``.

    python train.py --epochs 5 --lr=0.01 --batch_size=64
"""

from __future__ import annotations

import argparse
import math
import random
import time

import runyard


def floor_for(lr: float, batch_size: int, dropout: float) -> float:
    """The loss this configuration converges to (lower is better)."""
    lr_term = 0.5 * (math.log10(lr) + 2.0) ** 2
    return 0.2 + lr_term + 0.1 * (batch_size / 64 - 1) ** 2 + 0.2 * (dropout - 0.2) ** 2


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--lr", type=float, default=0.01)
    parser.add_argument("--batch_size", type=int, default=64)
    parser.add_argument("--dropout", type=float, default=0.2)
    parser.add_argument("--step-time", type=float, default=0.5, help="seconds per epoch")
    parser.add_argument("--fail-at", type=int, default=None, help="raise at this epoch (a failing trial)")
    args, _ = parser.parse_known_args()

    run = runyard.init(config={"epochs": args.epochs, "lr": args.lr, "batch_size": args.batch_size})
    rng = random.Random(f"{args.lr}:{args.batch_size}:{args.dropout}")
    floor = floor_for(args.lr, args.batch_size, args.dropout)
    for epoch in range(1, args.epochs + 1):
        if run.should_stop:  # Slurm's time-limit warning, or the sweep pruned this trial
            break
        if args.fail_at is not None and epoch >= args.fail_at:
            raise SystemExit(f"failing at epoch {epoch} as asked (--fail-at)")
        time.sleep(args.step_time)
        train_loss = floor + 1.5 * math.exp(-epoch / 2) + rng.gauss(0, 0.01)
        val_loss = floor + 1.6 * math.exp(-epoch / 2) + rng.gauss(0, 0.01)
        run.log({"train/loss": train_loss, "val/loss": val_loss}, step=epoch)
        print(f"epoch {epoch}: val/loss {val_loss:.4f}", flush=True)
    run.finish()


if __name__ == "__main__":
    main()
