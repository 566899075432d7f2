"""``runyard logs RUN --source client``: the stdout/stderr lines the client captured, each as
``time host rank | line`` (``GET /api/v1/runs/{id}/console``)."""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import time
from typing import Any

from runyard.cli.tracking import _api

__all__ = ["format_line", "print_console"]


def format_line(entry: dict[str, Any]) -> str:
    """``2026-11-22 10:00:00.123 n1 0 | text`` (local time; ``-`` for an unknown host or rank)."""
    stamp = dt.datetime.fromtimestamp(entry["time"]).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]
    host = entry.get("host") or "-"
    rank = "-" if entry.get("rank") is None else str(entry["rank"])
    return f"{stamp} {host} {rank} | {entry['line']}"


def _print(lines: list[dict[str, Any]]) -> None:
    for entry in lines:
        sys.stdout.write(format_line(entry) + "\n")
    sys.stdout.flush()


def print_console(args: argparse.Namespace) -> int:
    """Both streams interleaved (``--stderr``: stderr only); ``-n N`` starts with the last N;
    ``-f`` follows until the run has ended and a poll finds nothing new."""
    api = _api(args)
    stream = "stderr" if args.stderr else None
    after = 0
    printed = 0
    if args.tail is not None:
        page = api.run_console(args.run, stream=stream, tail=max(args.tail, 1))
        lines = page["lines"] if args.tail > 0 else []
        _print(lines)
        printed += len(lines)
        after = page["next_after_id"]
    while True:
        page = api.run_console(args.run, stream=stream, after_id=after)
        _print(page["lines"])
        printed += len(page["lines"])
        after = page["next_after_id"]
        if page["more"]:
            continue
        if not args.follow or (page["final"] and not page["lines"]):
            break
        time.sleep(args.poll_s)
    if printed == 0 and not args.follow:
        print(
            f"runyard: run {args.run} has no captured console lines (runyard.init captures them unless "
            "RUNYARD_CAPTURE_CONSOLE=0; the job's output file: runyard logs RUN --source file)",
            file=sys.stderr,
        )
    return 0
