"""``runyard launch``: submit a command or an sbatch script as tracked runs, through the server.

    runyard launch -p gpu -G 1 -t 4:00:00 --array 0-9%2 -- python train.py --lr 0.1
    runyard launch job.sbatch            # its #SBATCH lines are kept; flags given here win

The working directory is the current one. ``--wait`` polls until every run has ended and
exits with the first non-zero exit code (0 when all finished), for scripts and CI.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import time
from pathlib import Path
from typing import Any

from runyard.config import client_setting
from runyard.entities import TERMINAL_STATUSES
from runyard.errors import InvalidInput

__all__ = ["add_launch_command", "exit_code_of", "read_script"]

_TERMINAL = frozenset(str(s) for s in TERMINAL_STATUSES)
_NAME_OK = re.compile(r"[^A-Za-z0-9_.+:@=-]")
_SETTLE_S = 60.0


def _api(args: argparse.Namespace) -> Any:
    from runyard.client.api import ApiClient

    url = client_setting(args.url, ("RUNYARD_URL", "TRACKER_API"), "url")
    key = client_setting(args.api_key, ("RUNYARD_API_KEY", "TRACKER_API_KEY"), "api_key")
    return ApiClient(url or "", key)


def read_script(path: str) -> str | None:
    """The text of ``path`` when it is an sbatch script to submit as is (an existing file
    starting with ``#!`` or holding ``#SBATCH`` lines); None when it is not."""
    from runyard.slurm.launch import looks_like_batch_script

    if not os.path.isfile(path):
        return None
    try:
        with open(path, encoding="utf-8", errors="surrogateescape") as handle:
            text = handle.read(1024 * 1024 + 1)
    except OSError as exc:
        raise InvalidInput(f"cannot read script {path!r}: {exc.strerror}", field="script") from None
    if "\x00" in text[:4096]:
        return None  # a binary program, not a script
    return text if looks_like_batch_script(text) else None


def _env(items: list[str] | None) -> dict[str, str]:
    env: dict[str, str] = {}
    for item in items or ():
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise InvalidInput(f"--env takes NAME=VALUE, got {item!r}", field="env")
        env[key] = value
    return env


def _resources(args: argparse.Namespace) -> dict[str, Any]:
    from runyard.slurm.launch import parse_mem_gb, parse_time_limit

    return {
        "partition": args.partition,
        "nodes": args.nodes,
        "ntasks_per_node": args.ntasks_per_node,
        "cpus_per_task": args.cpus_per_task,
        "gpus_per_node": args.gpus_per_node,
        "mem_gb": parse_mem_gb(args.mem, field="mem") if args.mem is not None else None,
        "time_limit_min": parse_time_limit(args.time, field="time") if args.time is not None else None,
        "account": args.account,
        "qos": args.qos,
    }


def exit_code_of(run: dict[str, Any]) -> int:
    """What ``--wait`` exits with for an ended run: its exit code, else 0 for finished, 1 for
    any other end (failed, timeout, cancelled, …)."""
    code = run.get("exit_code")
    if isinstance(code, int) and not isinstance(code, bool) and code != 0:
        return code
    return 0 if run.get("status") == "finished" else 1


def _settled(run: dict[str, Any], ended_since: float | None) -> bool:
    """An ended run whose exit code is in: the client may report "finished" a moment before
    the job's exit report or Slurm's accounting brings the code (given ``_SETTLE_S`` at most)."""
    if run["status"] not in _TERMINAL:
        return False
    if run.get("exit_code") is not None or run.get("slurm_done"):
        return True
    return ended_since is not None and time.monotonic() - ended_since > _SETTLE_S


def _wait(api: Any, run_ids: list[str], poll_s: float) -> int:
    seen: dict[str, str] = {}
    ended_since: dict[str, float] = {}
    ended: dict[str, dict[str, Any]] = {}
    delay = min(poll_s, 0.5)
    while len(ended) < len(run_ids):
        for run_id in run_ids:
            if run_id in ended:
                continue
            run = api.get_run(run_id)
            if seen.get(run_id) != run["status"]:
                seen[run_id] = run["status"]
                print(f"run {run_id}: {run['status']}", file=sys.stderr, flush=True)
            if run["status"] in _TERMINAL:
                ended_since.setdefault(run_id, time.monotonic())
            if _settled(run, ended_since.get(run_id)):
                ended[run_id] = run
        if len(ended) < len(run_ids):
            time.sleep(delay)
            delay = min(delay * 1.5, poll_s)
    codes = [exit_code_of(ended[run_id]) for run_id in run_ids]
    return next((code for code in codes if code != 0), 0)


def cmd_launch(args: argparse.Namespace) -> int:
    argv = list(args.command or ())
    if argv[:1] == ["--"]:
        argv = argv[1:]
    if not argv:
        raise InvalidInput(
            "nothing to launch: give a command after -- (runyard launch -- python train.py) or a script file",
            field="command",
        )
    script = read_script(argv[0]) if len(argv) == 1 else None
    name = args.name
    if script is not None and name is None:
        from runyard.slurm.launch import parse_sbatch_script

        if not parse_sbatch_script(script).job_name:
            name = _NAME_OK.sub("_", Path(argv[0]).stem)[:64].strip("_") or None
    project = client_setting(args.project, ("RUNYARD_PROJECT",), "project", "default")
    experiment = client_setting(args.experiment, ("RUNYARD_EXPERIMENT",), "experiment", "default")
    api = _api(args)
    out = api.launch(
        project=str(project),
        experiment=str(experiment),
        workdir=os.getcwd(),
        command=None if script is not None else argv,
        script=script,
        name=name,
        resources=_resources(args),
        array=args.array,
        after=args.after or (),
        requeue=args.requeue,
        max_restarts=args.max_restarts,
        signal_before_end_s=args.signal_before_end,
        env=_env(args.env),
        output_dir=os.path.abspath(args.output_dir) if args.output_dir else None,
        tags=args.tag or (),
    )
    what = "script" if script is not None else "command"
    print(f"submitted {what} as {out['executor']} job {out['job_id']} ({len(out['run_ids'])} run(s))")
    for run in out["runs"]:
        print(f"run {run['run_id']}  job {run['slurm_job_id']}  stdout {run['stdout']}")
    print(f"follow it: runyard logs {out['run_ids'][0]} -f", file=sys.stderr)
    sys.stdout.flush()
    if not args.wait:
        return 0
    return _wait(api, list(out["run_ids"]), args.poll)


def add_launch_command(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "launch",
        help="submit a command or an sbatch script as tracked runs",
        description=(
            "Submit COMMAND (after --) or an sbatch script FILE to Slurm (or the server's local "
            "executor) as tracked runs, one per array task, from the current directory. The job "
            "reports its start and exit to Runyard and, when the time limit nears (USR1), requeues "
            "itself and continues as the same run. A FILE's #SBATCH lines are kept; the flags given "
            "here win over them. Examples: runyard launch -p gpu -G 1 -t 4:00:00 -- python train.py; "
            "runyard launch --array 0-9%2 job.sbatch"
        ),
    )
    p.add_argument("-p", "--partition", help="Slurm partition")
    p.add_argument("-N", "--nodes", type=int, help="nodes (default 1)")
    p.add_argument("--ntasks-per-node", type=int, help="tasks per node (default 1)")
    p.add_argument("-c", "--cpus-per-task", type=int, help="CPUs per task (default 1)")
    p.add_argument("-G", "--gpus-per-node", type=int, help="GPUs per node")
    p.add_argument("--mem", help="memory per node: 4G, 500M (a bare number is MB)")
    p.add_argument("-t", "--time", help="time limit: minutes, or H:M:S, D-H:M:S, ... as in sbatch")
    p.add_argument("-A", "--account", help="Slurm account")
    p.add_argument("-q", "--qos", help="Slurm QOS")
    p.add_argument("--array", help="job array, e.g. 0-9 or 0-9%%2 (at most 2 at once): one run per task")
    p.add_argument(
        "--after",
        action="append",
        metavar="RUN|JOB[:ok|any|notok]",
        help="start after this run or Slurm job ended (ok: successfully, the default); repeatable",
    )
    p.add_argument(
        "--requeue",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="near the time limit, requeue and continue as the same run (default: on)",
    )
    p.add_argument("--max-restarts", type=int, help="most requeues the job does itself (default 5)")
    p.add_argument(
        "--signal-before-end",
        type=int,
        metavar="S",
        help="send the command USR1 S seconds before the time limit (default 60; 0: never)",
    )
    p.add_argument("--name", help="job and run name (default: the script's or the program's)")
    p.add_argument("--project", help="project name (default: RUNYARD_PROJECT, config file, 'default')")
    p.add_argument(
        "--experiment", help="experiment name (default: RUNYARD_EXPERIMENT, config file, 'default')"
    )
    p.add_argument("--output-dir", help="where the job's output goes (default ./runyard-logs)")
    p.add_argument("--env", action="append", metavar="NAME=VALUE", help="job environment; repeatable")
    p.add_argument("--tag", action="append", help="run tag; repeatable")
    p.add_argument(
        "--wait",
        action="store_true",
        help="wait until every run ended; exit with the first non-zero exit code",
    )
    p.add_argument("--poll", type=float, default=2.0, help=argparse.SUPPRESS)
    p.add_argument(
        "--url", help="server URL (default: RUNYARD_URL, TRACKER_API, config file, http://127.0.0.1:8765)"
    )
    p.add_argument("--api-key", help="API key (default: RUNYARD_API_KEY, TRACKER_API_KEY, config file)")
    p.add_argument("command", nargs=argparse.REMAINDER, metavar="-- COMMAND ... | FILE", help="what to run")
    p.set_defaults(func=cmd_launch)
