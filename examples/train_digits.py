"""Train a small MLP on scikit-learn's bundled digits data set and track it with Runyard.

    python examples/train_digits.py --lr 0.01 --hidden 64 --epochs 30

Three lines are all a training script needs: ``runyard.init``, ``run.log``, ``run.finish``
(or the ``with`` block below). Works offline too: with no server the run goes to a journal
that ``runyard sync`` uploads later.
"""

from __future__ import annotations

import argparse
import pickle
import tempfile
from pathlib import Path

import numpy as np
from sklearn.datasets import load_digits
from sklearn.metrics import log_loss
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier

import runyard


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lr", type=float, default=0.01, help="initial learning rate")
    parser.add_argument("--hidden", type=int, default=64, help="hidden units")
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--alpha", type=float, default=1e-4, help="L2 penalty")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--project", default="demo")
    parser.add_argument("--experiment", default="digits-mlp")
    parser.add_argument("--checkpoint-dir", type=Path, default=Path(tempfile.gettempdir()) / "runyard-demo")
    args = parser.parse_args()

    digits = load_digits()
    x = digits.data / 16.0
    x_train, x_val, y_train, y_val = train_test_split(
        x, digits.target, test_size=0.25, random_state=args.seed, stratify=digits.target
    )
    classes = np.unique(digits.target)
    model = MLPClassifier(
        hidden_layer_sizes=(args.hidden,),
        learning_rate_init=args.lr,
        alpha=args.alpha,
        batch_size=args.batch_size,
        random_state=args.seed,
    )
    config = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()}
    name = f"lr={args.lr:g} hidden={args.hidden}"
    with runyard.init(project=args.project, experiment=args.experiment, name=name, config=config,
                      tags=["demo", "digits"]) as run:
        rng = np.random.default_rng(args.seed)
        best_acc = 0.0
        for epoch in range(args.epochs):
            order = rng.permutation(len(x_train))
            model.partial_fit(x_train[order], y_train[order], classes=classes)  # one epoch of minibatches
            val_proba = model.predict_proba(x_val)
            val_acc = float((val_proba.argmax(axis=1) == y_val).mean())
            run.log(
                {
                    "train_loss": float(model.loss_),
                    "val_loss": float(log_loss(y_val, val_proba, labels=classes)),
                    "val_accuracy": val_acc,
                    "train_accuracy": float(model.score(x_train, y_train)),
                },
                step=epoch,
            )
            if val_acc > best_acc:
                best_acc = val_acc
                run.summary["best_val_accuracy"] = best_acc
                run.summary["best_epoch"] = epoch
        args.checkpoint_dir.mkdir(parents=True, exist_ok=True)
        path = args.checkpoint_dir / f"{run.id}.pkl"
        path.write_bytes(pickle.dumps(model))
        run.log_artifact(str(path), kind="checkpoint", step=args.epochs - 1)
    print(f"run {run.id}: best val accuracy {best_acc:.3f}")


if __name__ == "__main__":
    main()
