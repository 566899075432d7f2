"""``runyard logs`` (a run's stdout/stderr, ``-f`` to follow) and ``runyard events`` (its history)."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import time
from typing import Any

from runyard.cli.console import print_console
from runyard.cli.table import render_table
from runyard.cli.tracking import _api, _server_flags
from runyard.entities import TERMINAL_STATUSES
from runyard.errors import InvalidInput, NotFound

__all__ = ["add_logs_commands"]

_TERMINAL = frozenset(str(s) for s in TERMINAL_STATUSES)


def _note(text: str) -> None:
    print(f"runyard: {text}", file=sys.stderr, flush=True)


def _print_lines(body: dict[str, Any]) -> None:
    for line in body["lines"]:
        sys.stdout.write(line["text"] + "\n")
    sys.stdout.flush()


def _read(api: Any, args: argparse.Namespace, stream: str, offset: int, tail: int | None) -> dict[str, Any]:
    body: dict[str, Any] = api.run_logs(args.run, stream, offset, tail=tail)
    if body.get("reset"):
        _note("the output file was rewritten (the job started again): reading it from the start")
    return body


def _wait_for_file(api: Any, args: argparse.Namespace, stream: str, error: NotFound) -> None:
    """Polls until the run's output file appears; re-raises when the run has ended without one."""
    said = False
    while True:
        if api.get_run(args.run)["status"] in _TERMINAL:
            raise error
        if not said:
            _note(f"waiting for the {stream} file ({error.message})")
            said = True
        time.sleep(args.poll_s)
        try:
            api.run_logs(args.run, stream, 0, limit_bytes=1)
            return
        except NotFound as exc:
            if exc.field != "stream":
                raise
            error = exc


def cmd_logs(args: argparse.Namespace) -> int:
    if args.tail is not None and args.tail < 0:
        raise InvalidInput("--tail must be 0 or more", field="tail")
    if args.poll_s <= 0:
        raise InvalidInput("--poll-s must be more than 0", field="poll_s")
    if args.source == "client":
        return print_console(args)
    api = _api(args)
    stream = "stderr" if args.stderr else "stdout"
    try:
        body = _read(api, args, stream, 0, args.tail)
    except NotFound as exc:
        if not args.follow or exc.field != "stream":
            raise
        _wait_for_file(api, args, stream, exc)
        body = _read(api, args, stream, 0, args.tail)
    if body.get("same_file"):
        _note("stdout and stderr of this run go to the same file")
    _print_lines(body)
    while True:
        if body["eof"] and (body["final"] or not args.follow):
            return 0  # drained; with -f only once the run has ended
        if body["eof"]:
            time.sleep(args.poll_s)
        offset = body["next_offset"]
        body = _read(api, args, stream, offset, None)
        _print_lines(body)
        if not body["eof"] and not body["lines"] and body["next_offset"] == offset:
            return 0  # no progress possible (cannot happen with whole-line windows; never spin)


def _when(ts: float | None) -> str:
    return "-" if ts is None else dt.datetime.fromtimestamp(ts).strftime("%Y-%m-%d %H:%M:%S")


def cmd_events(args: argparse.Namespace) -> int:
    api = _api(args)
    events: list[dict[str, Any]] = []
    after = 0
    while True:
        page = api.run_events(args.run, after_id=after)
        events += page["events"]
        if not page["events"] or page["next_after_id"] == after:
            break
        after = page["next_after_id"]
    if args.json:
        print(json.dumps(events, indent=2))
        return 0
    if not events:
        print(f"run {args.run} has no recorded history yet", file=sys.stderr)
        return 0
    rows = [[_when(e["time"]), e["source"], e["kind"], e["status"], e["message"]] for e in events]
    print(render_table(["time", "source", "kind", "status", "message"], rows, max_width=100))
    return 0


def add_logs_commands(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "logs",
        help="print a run's stdout (or stderr); -f follows it until the run ends",
        description=(
            "Print the output file of a run's job from shared storage, whole lines only. With -f, keep "
            "printing new lines as the job writes them (waiting for the file while the job is pending) "
            "and stop once the run has ended and everything is printed."
        ),
    )
    p.add_argument("run", help="run id")
    p.add_argument(
        "--source",
        choices=("file", "client"),
        default="file",
        help="file: the job's output file (default); client: the lines runyard.init captured, both "
        "streams with time, host and rank, as 'time host rank | line'",
    )
    p.add_argument("--stderr", action="store_true", help="the job's stderr instead of stdout")
    p.add_argument("-f", "--follow", action="store_true", help="follow the file until the run ends")
    p.add_argument("-n", "--tail", type=int, metavar="N", help="start with the last N lines")
    p.add_argument("--poll-s", type=float, default=1.0, help="seconds between checks with -f (default 1)")
    _server_flags(p)
    p.set_defaults(func=cmd_logs)

    p = sub.add_parser(
        "events",
        help="a run's history: status changes and who reported them",
        description=(
            "Print a run's history, oldest first: each status change (queued, running, requeued, "
            "finished, ...) with its time and source (client, job, slurm, epilog, user)."
        ),
    )
    p.add_argument("run", help="run id")
    p.add_argument("--json", action="store_true", help="print the raw JSON")
    _server_flags(p)
    p.set_defaults(func=cmd_events)
