"""``runyard cluster``, ``ps``, ``cancel``, ``requeue`` and ``efficiency``: the job side of the CLI."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import time
from typing import Any

from runyard.cli.table import render_table
from runyard.cli.tracking import _api, _server_flags
from runyard.slurm.efficiency import format_bytes, format_duration

__all__ = ["add_cluster_commands", "format_minutes"]


def format_minutes(minutes: int | None) -> str:
    """``None`` → ``unlimited``; ``90`` → ``1:30:00``; ``2880`` → ``2-00:00:00`` (as Slurm prints)."""
    if minutes is None:
        return "unlimited"
    days, rest = divmod(minutes, 1440)
    text = f"{rest // 60}:{rest % 60:02d}:00"
    return f"{days}-{rest // 60:02d}:{rest % 60:02d}:00" if days else text


def _clock(ts: float | None, now: float) -> str:
    """A time as HH:MM today, else with its date."""
    if not ts:
        return "-"
    when = dt.datetime.fromtimestamp(ts)
    if when.date() == dt.datetime.fromtimestamp(now).date():
        return when.strftime("%H:%M")
    return when.strftime("%Y-%m-%d %H:%M")


def _elapsed(start: float | None, end: float | None, now: float) -> str:
    if start is None:
        return "-"
    seconds = max(0, int((end or now) - start))
    return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


def _gb(mb: int | None) -> str:
    return "-" if mb is None else f"{mb / 1024:.1f}"


def _why(row: dict[str, Any], now: float) -> str:
    """squeue's NODELIST(REASON) column, with Slurm's estimate for a pending job."""
    if row["state"] != "PENDING":
        return row["nodes"] or "-"
    text = f"({row['reason'] or 'None'})"
    if row.get("start_estimate"):
        text += f" est. {_clock(row['start_estimate'], now)}"
    return text


def _print_cluster(body: dict[str, Any], mine_only: bool) -> None:
    now = time.time()
    if not mine_only:
        nodes = [
            [
                n["name"],
                n["state"],
                f"{n['cpus_alloc']}/{n['cpus_total']}",
                f"{n['gpus_used']}/{n['gpus_total']}",
                f"{_gb(n['memory_alloc_mb'])}/{_gb(n['memory_total_mb'])}",
                ",".join(n["partitions"]),
                n["reason"],
            ]
            for n in body["nodes"]
        ]
        print(render_table(["node", "state", "cpus", "gpus", "mem GB", "partitions", "reason"], nodes))
        print()
        parts = [
            [
                p["name"] + ("*" if p["default"] else ""),
                p["state"],
                format_minutes(p["max_time_min"]),
                format_minutes(p["default_time_min"]),
                p["total_nodes"],
                p["total_cpus"],
                p["gpus"],
            ]
            for p in body["partitions"]
        ]
        print(
            render_table(["partition", "state", "max time", "default time", "nodes", "cpus", "gpus"], parts)
        )
        print()
    rows = body["mine"] if mine_only else body["queue"]
    queue = [
        [
            r["id"],
            r["run_id"],
            r["user"],
            r["name"],
            r["state"],
            r["partition"],
            r["gpus_per_node"] or "-",
            _clock(r["submit_time"], now),
            _clock(r["start_time"], now),
            _why(r, now),
        ]
        for r in rows
        if mine_only or r["state"] in ("PENDING", "RUNNING", "CONFIGURING", "COMPLETING", "SUSPENDED")
    ]
    headers = ["job", "run", "user", "name", "state", "partition", "gpus/node", "submitted", "started"]
    print(render_table([*headers, "nodes (reason)"], queue) if queue else "no jobs in the queue")
    hours = body.get("gpu_hours", {}).get("experiments", [])
    if hours and not mine_only:
        print()
        table = [
            [e["experiment"], e["runs"], f"{e['gpu_hours']:.2f}", f"{e['my_gpu_hours']:.2f}"] for e in hours
        ]
        print(render_table(["experiment", "runs", "gpu-hours", "mine"], table[:20]))
    for part, message in body.get("errors", {}).items():
        print(f"warning: {part} unavailable: {message}", file=sys.stderr)


def cmd_cluster(args: argparse.Namespace) -> int:
    body = _api(args).cluster()
    if args.json:
        print(json.dumps(body, indent=2))
    else:
        _print_cluster(body, args.mine)
    return 0


def cmd_ps(args: argparse.Namespace) -> int:
    runs = _api(args).my_runs(include_ended=args.all, limit=args.limit)
    if args.json:
        print(json.dumps(runs, indent=2))
        return 0
    if not runs:
        print("no active runs" if not args.all else "no runs", file=sys.stderr)
        return 0
    now = time.time()
    rows = []
    for r in runs:
        if r["status"] in ("queued", "created") and (r.get("pending_reason") or r.get("start_estimate")):
            detail = f"({r.get('pending_reason') or 'None'})"
            if r.get("start_estimate"):
                detail += f" est. {_clock(r['start_estimate'], now)}"
        else:
            detail = r.get("slurm_nodes") or "-"
        rows.append(
            [
                r["id"],
                r["name"],
                r["status"],
                r.get("slurm_job_id"),
                r.get("slurm_partition"),
                detail,
                _elapsed(r.get("started_at"), r.get("ended_at"), now),
            ]
        )
    print(render_table(["run", "name", "status", "job", "partition", "nodes (reason)", "elapsed"], rows))
    return 0


def cmd_cancel(args: argparse.Namespace) -> int:
    out = _api(args).cancel_run(args.run)
    print(f"{out['message']}; Slurm's answer will show in `runyard events {args.run}`")
    return 0


def cmd_requeue(args: argparse.Namespace) -> int:
    out = _api(args).requeue_run(args.run)
    print(f"{out['message']}; the run continues as the same run when the job starts again")
    return 0


def _pct(value: float | None) -> str:
    return "" if value is None else f" ({value:.0%})"


def _efficiency_lines(body: dict[str, Any]) -> list[str]:
    t, c, m, g = body["time"], body["cpu"], body["memory"], body["gpu"]
    state = f", Slurm {body['slurm_state']}" if body.get("slurm_state") else ""
    lines = [f"run      {body['run_id']} ({body['status']}{state})"]
    if t["elapsed_s"] is None:
        lines.append(f"time     unknown: {t['note']}")
    else:
        limit = t["time_limit_min"]
        of = f" of a {format_duration(limit * 60)} limit" if limit else ""
        lines.append(f"time     {format_duration(t['elapsed_s'])}{of}{_pct(t['fraction_used'])}")
    if c["avg_cpus_used"] is None or c["efficiency"] is None:
        lines.append(f"cpu      unknown: {c['note']}")
    else:
        lines.append(
            f"cpu      {c['avg_cpus_used']:.1f} of {c['alloc_cpus']} CPUs busy on average"
            f"{_pct(c['efficiency'])}, from {c['source']}"
        )
    if m["max_rss_bytes"] is None or m["fraction_used"] is None:
        peak = "" if m["max_rss_bytes"] is None else f"peak {format_bytes(m['max_rss_bytes'])}; "
        lines.append(f"memory   {peak}unknown: {m['note']}")
    else:
        lines.append(
            f"memory   peak {format_bytes(m['max_rss_bytes'])} of {format_bytes(m['req_mem_bytes'])}"
            f"{_pct(m['fraction_used'])}, from {m['source']}"
        )
    if g["gpus"] is None:
        lines.append(f"gpus     unknown: {g['note']}")
    elif g["gpus"]:
        hours = "" if g["gpu_hours"] is None else f", {g['gpu_hours']:.2f} GPU-hours"
        util = (
            f", {g['util_mean_pct']:.0f}% average utilisation"
            if g["util_mean_pct"] is not None
            else f"; utilisation unknown: {g['note']}"
        )
        lines.append(f"gpus     {g['gpus']}{hours}{util}")
    else:
        lines.append("gpus     none")
    if body["advice"]:
        lines.append("advice:")
        lines += [f"  - {line}" for line in body["advice"]]
    elif body["final"]:
        lines.append("advice:  none: the run used what it asked for")
    return lines


def cmd_efficiency(args: argparse.Namespace) -> int:
    body = _api(args).run_efficiency(args.run)
    if args.json:
        print(json.dumps(body, indent=2))
    else:
        print("\n".join(_efficiency_lines(body)))
    return 0


def add_cluster_commands(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "cluster",
        help="nodes, partitions and the queue with pending reasons and estimated starts",
        description=(
            "Show the cluster as the server's executor sees it: nodes (CPUs, GPUs, memory in use), "
            "partitions (time limits), the queue (pending reasons, Slurm's estimated start, the "
            "Runyard run of each job) and GPU-hours per experiment."
        ),
    )
    p.add_argument("--mine", action="store_true", help="only the queue rows of my runs")
    p.add_argument("--json", action="store_true", help="print the raw JSON")
    _server_flags(p)
    p.set_defaults(func=cmd_cluster)

    p = sub.add_parser("ps", help="my active runs: status, job, partition, reason or estimate, elapsed")
    p.add_argument("-a", "--all", action="store_true", help="also runs that have ended")
    p.add_argument("-n", "--limit", type=int, default=200, help="at most this many runs (default 200)")
    p.add_argument("--json", action="store_true", help="print the raw JSON")
    _server_flags(p)
    p.set_defaults(func=cmd_ps)

    for name, func, text in (
        ("cancel", cmd_cancel, "cancel a run's Slurm job (scancel); the run's owner or an admin"),
        ("requeue", cmd_requeue, "requeue a run's Slurm job (scontrol requeue); the run continues"),
    ):
        p = sub.add_parser(name, help=text)
        p.add_argument("run", help="run id")
        _server_flags(p)
        p.set_defaults(func=func)

    p = sub.add_parser(
        "efficiency",
        help="how a run used its CPUs, memory, time and GPUs, with advice",
        description=(
            "Compare what a run asked Slurm for with what it used (Slurm's accounting, once the job "
            "has ended, and the run's system metrics) and suggest what to ask for next time."
        ),
    )
    p.add_argument("run", help="run id")
    p.add_argument("--json", action="store_true", help="print the raw JSON")
    _server_flags(p)
    p.set_defaults(func=cmd_efficiency)
