"""Commands for researchers, over the REST API: ``runs``, ``show``, ``export``, ``sync``."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import time
from pathlib import Path
from typing import Any

from runyard.cli.table import fmt, render_table
from runyard.config import client_setting
from runyard.errors import InvalidInput, NotFound

__all__ = ["add_tracking_commands"]


def _api(args: argparse.Namespace) -> Any:
    from runyard.client.api import ApiClient

    url = client_setting(args.url, ("RUNYARD_URL", "TRACKER_API"), "url")
    key = client_setting(args.api_key, ("RUNYARD_API_KEY", "TRACKER_API_KEY"), "api_key")
    return ApiClient(url or "", key)


def _experiment_id(api: Any, args: argparse.Namespace) -> str | None:
    if args.experiment_id:
        return str(args.experiment_id)
    if not args.experiment:
        return None
    matches = []
    for exp in api.list_experiments():
        if exp["name"] == args.experiment:
            matches.append(exp)
    if args.project:
        projects = {p["id"]: p["name"] for p in api.list_projects()}
        matches = [e for e in matches if projects.get(e["project_id"]) == args.project]
    if not matches:
        raise NotFound(f"no experiment named {args.experiment!r}; list them with `runyard runs` (no filter)")
    if len(matches) > 1:
        raise InvalidInput(
            f"{len(matches)} experiments are named {args.experiment!r}; add --project", field="experiment"
        )
    return str(matches[0]["id"])


def _when(ts: float | None) -> str:
    return "-" if ts is None else dt.datetime.fromtimestamp(ts).strftime("%Y-%m-%d %H:%M")


def _duration(run: dict[str, Any]) -> str:
    start = run.get("started_at")
    if start is None:
        return "-"
    seconds = int((run.get("ended_at") or time.time()) - start)
    return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


def cmd_runs(args: argparse.Namespace) -> int:
    api = _api(args)
    project_id = None
    experiment_id = _experiment_id(api, args)
    if args.project and not experiment_id:
        found = [p for p in api.list_projects() if p["name"] == args.project]
        if not found:
            raise NotFound(f"no project named {args.project!r}")
        project_id = found[0]["id"]
    metric_keys = [k for k in (args.metrics or "").split(",") if k]
    page = api.list_runs(
        experiment_id=experiment_id,
        project_id=project_id,
        filters=tuple(args.filter or ()),
        sort=args.sort,
        descending=not args.asc,
        limit=args.limit,
        offset=args.offset,
        metric_keys=tuple(metric_keys) if metric_keys else None,
    )
    runs = page["runs"]
    if args.json:
        print(json.dumps(page, indent=2))
        return 0
    if not metric_keys:  # show the metrics the listed runs have in common, up to four
        common: set[str] | None = None
        for r in runs:
            common = set(r["metrics"]) if common is None else common & set(r["metrics"])
        metric_keys = sorted(common or ())[:4]
    headers = ["id", "name", "status", "job", "started", "duration", *metric_keys]
    rows = [
        [
            r["id"],
            r["name"],
            r["status"],
            r.get("slurm_job_id"),
            _when(r.get("started_at")),
            _duration(r),
        ]
        + [_metric(r, k) for k in metric_keys]
        for r in runs
    ]
    print(render_table(headers, rows))
    if page.get("next_offset") is not None:
        print(f"… more: --offset {page['next_offset']}", file=sys.stderr)
    return 0


def _metric(run: dict[str, Any], key: str) -> Any:
    summary = run["metrics"].get(key)
    return None if summary is None else summary["last"]


def _resolve_run(api: Any, run_ref: str) -> dict[str, Any]:
    run: dict[str, Any] = api.get_run(run_ref)
    return run


def cmd_show(args: argparse.Namespace) -> int:
    api = _api(args)
    run = _resolve_run(api, args.run)
    if args.json:
        print(json.dumps(run, indent=2))
        return 0
    fields = [
        ("id", run["id"]),
        ("name", run["name"]),
        ("status", run["status"]),
        ("experiment", run["experiment_id"]),
        ("host", run.get("host")),
        ("slurm job", run.get("slurm_job_id")),
        ("partition", run.get("slurm_partition")),
        ("nodes", run.get("slurm_nodes")),
        ("restarts", run.get("restart_count")),
        ("exit code", run.get("exit_code")),
        ("started", _when(run.get("started_at"))),
        ("ended", _when(run.get("ended_at"))),
        ("duration", _duration(run)),
        ("tags", ", ".join(run.get("tags") or []) or "-"),
    ]
    width = max(len(k) for k, _ in fields)
    for k, v in fields:
        print(f"{k.ljust(width)}  {fmt(v)}")
    if run.get("notes"):
        print(f"\nnotes:\n  {run['notes']}")
    if run.get("config"):
        print("\nconfig:")
        for k, v in sorted(run["config"].items()):
            print(f"  {k} = {json.dumps(v)}")
    if run.get("summary"):
        print("\nsummary:")
        for k, v in sorted(run["summary"].items()):
            print(f"  {k} = {json.dumps(v)}")
    if run["metrics"]:
        print()
        rows = [
            [k, m["count"], m["last"], m["last_step"], m["min"], m["max"]]
            for k, m in sorted(run["metrics"].items())
        ]
        print(render_table(["metric", "points", "last", "step", "min", "max"], rows, max_width=60))
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    api = _api(args)
    data: bytes = api.export(args.run, args.format)
    if args.output and str(args.output) != "-":
        Path(args.output).write_bytes(data)
        print(f"wrote {len(data):,} bytes to {args.output}", file=sys.stderr)
    elif args.format == "parquet" and sys.stdout.isatty():
        raise InvalidInput("parquet is binary: give -o FILE", field="output")
    else:
        sys.stdout.buffer.write(data)
    return 0


def cmd_sync(args: argparse.Namespace) -> int:
    import runyard

    url = client_setting(args.url, ("RUNYARD_URL", "TRACKER_API"), "url")
    key = client_setting(args.api_key, ("RUNYARD_API_KEY", "TRACKER_API_KEY"), "api_key")
    result = runyard.sync(args.path, url=url, api_key=key, delete=args.delete)
    print(
        f"synced {len(result.files)} journal file(s): {result.batches_sent} batches, "
        f"{result.points:,} points, {result.duplicates} already on the server"
    )
    for err in result.errors:
        print(f"error: {err}", file=sys.stderr)
    return 1 if result.errors else 0


def _server_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--url", help="server URL (default: RUNYARD_URL, TRACKER_API, config file, http://127.0.0.1:8765)"
    )
    p.add_argument("--api-key", help="API key (default: RUNYARD_API_KEY, TRACKER_API_KEY, config file)")


def add_tracking_commands(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "runs",
        help="list runs with status and metrics",
        description=(
            "List runs, newest first. Filters: <field><op><value> with op = != < <= > >= ~, "
            "fields status, tags, "
            "name, params.<key>, metrics.<key>[.last|.min|.max|.count]. Example: "
            "runyard runs -e mlp --filter 'params.lr>=0.01' --sort metrics.loss.min --asc"
        ),
    )
    p.add_argument("-p", "--project", help="project name")
    p.add_argument("-e", "--experiment", help="experiment name")
    p.add_argument("--experiment-id", help="experiment id (EXPERIMENT_ID in seed scripts)")
    p.add_argument("-f", "--filter", action="append", help="filter expression; repeat to AND")
    p.add_argument("-s", "--sort", help="sort field, e.g. metrics.loss.min or params.lr (default created_at)")
    p.add_argument("--asc", action="store_true", help="ascending order (default descending)")
    p.add_argument("-m", "--metrics", help="comma-separated metric keys to show as columns")
    p.add_argument("-n", "--limit", type=int, default=50, help="page size (1-1000, default 50)")
    p.add_argument("--offset", type=int, default=0, help="skip this many runs")
    p.add_argument("--json", action="store_true", help="print the raw JSON page")
    _server_flags(p)
    p.set_defaults(func=cmd_runs)

    p = sub.add_parser("show", help="show one run: status, Slurm details, config, metrics")
    p.add_argument("run", help="run id")
    p.add_argument("--json", action="store_true", help="print the raw JSON")
    _server_flags(p)
    p.set_defaults(func=cmd_show)

    p = sub.add_parser("export", help="export every point of a run (csv, json or parquet)")
    p.add_argument("run", help="run id")
    p.add_argument("--format", choices=("csv", "json", "parquet"), default="csv")
    p.add_argument("-o", "--output", help="output file (default: stdout)")
    _server_flags(p)
    p.set_defaults(func=cmd_export)

    p = sub.add_parser(
        "sync",
        help="upload offline journals (a file or a directory of them)",
        description=(
            "Upload journals that runs wrote when the server could not be reached. "
            "Batches are applied exactly "
            "once, so syncing again, or a journal that was partly sent, stores every point once."
        ),
    )
    p.add_argument("path", type=Path, help="a .journal file or a directory (searched recursively)")
    p.add_argument(
        "--delete", action="store_true", help="delete journals once synced (default: rename to .synced)"
    )
    _server_flags(p)
    p.set_defaults(func=cmd_sync)
