"""``runyard dev-cluster up|down|status``: the project's local 3-node Slurm, for development and tests.

A thin wrapper over ``scripts/dev-cluster.sh`` in the source checkout; the script and its config
files (``deploy/slurm/``) are not part of a wheel, so an installed package says where to get them.
"""

from __future__ import annotations

import argparse
import subprocess
from pathlib import Path

from runyard.errors import InvalidInput

__all__ = ["add_devcluster_command", "find_script"]

ACTIONS = ("up", "down", "status")


def find_script() -> Path | None:
    """``scripts/dev-cluster.sh`` of the checkout this package runs from (an editable install)."""
    # src/runyard/cli/devcluster.py -> the repository root is three levels above the package.
    root = Path(__file__).resolve().parents[3]
    script = root / "scripts" / "dev-cluster.sh"
    if script.is_file() and (root / "deploy" / "slurm" / "slurm.conf").is_file():
        return script
    return None


def _run(args: argparse.Namespace) -> int:
    script = find_script()
    if script is None:
        raise InvalidInput(
            "scripts/dev-cluster.sh was not found next to this package (it ships only in the source "
            "checkout): clone the Runyard repository, `pip install -e .` there, and run "
            "`runyard dev-cluster` from that install (or run scripts/dev-cluster.sh directly)"
        )
    done = subprocess.run(["bash", str(script), args.action], check=False)
    return done.returncode


def add_devcluster_command(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "dev-cluster",
        help="a local 3-node Slurm cluster with fake GPUs, for development and tests",
        description=(
            "Start, stop or inspect a real Slurm 22.05 cluster on this machine: 3 nodes with 4 fake "
            "GPUs each, partitions debug (default, 10 min max), cpu and gpu, accounting through "
            "slurmdbd and MariaDB, and slurmrestd (JWT) on 127.0.0.1:6820. Needs root and Debian 12; "
            "`up` installs the packages when missing and does nothing when the cluster is running. "
            "Runs scripts/dev-cluster.sh from the source checkout."
        ),
    )
    p.add_argument(
        "action",
        choices=ACTIONS,
        help="up: install and start, wait for 3 idle nodes; down: stop every daemon; "
        "status: print daemon, node and partition state, exit 1 when not up",
    )
    p.set_defaults(func=_run)
