"""``runyard`` command line: one parser, errors as one line with the fix, ``--debug`` for tracebacks."""

from __future__ import annotations

import argparse
import sys
import traceback
from collections.abc import Sequence

from runyard.cli.admin import add_admin_commands
from runyard.cli.cluster import add_cluster_commands
from runyard.cli.devcluster import add_devcluster_command
from runyard.cli.launch import add_launch_command
from runyard.cli.logs import add_logs_commands
from runyard.cli.slurmcmd import add_slurm_commands
from runyard.cli.sweep import add_pipeline_command, add_sweep_command
from runyard.cli.tracking import add_tracking_commands
from runyard.errors import RunyardError
from runyard.version import __version__

__all__ = ["build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="runyard",
        description="Runyard: experiment tracking for Slurm clusters.",
        epilog="Run `runyard COMMAND --help` for a command's options.",
    )
    parser.add_argument("--version", action="version", version=f"runyard {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    add_admin_commands(sub)
    add_tracking_commands(sub)
    add_logs_commands(sub)
    add_cluster_commands(sub)
    add_launch_command(sub)
    add_sweep_command(sub)
    add_pipeline_command(sub)
    add_devcluster_command(sub)
    add_slurm_commands(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        code: int = args.func(args)
        return code
    except KeyboardInterrupt:
        return 130
    except RunyardError as exc:
        if args.debug:
            traceback.print_exc()
        print(f"error: {exc.message}", file=sys.stderr)
        return 1
    except Exception as exc:
        if args.debug:
            traceback.print_exc()
        else:
            print(
                f"error: unexpected {type(exc).__name__}: {exc} (run with --debug for the traceback)",
                file=sys.stderr,
            )
        return 1


if __name__ == "__main__":
    sys.exit(main())
