"""``runyard sweep`` and ``runyard pipeline``: submit and follow searches and workflows.

    runyard sweep sweep.yaml              # check the spec, submit its trials as ONE job array
    runyard sweep sweep.yaml --dry-run    # check and show the first trials; submit nothing
    runyard sweep status ID | cancel ID | extend ID --count N
    runyard pipeline run pipeline.yaml    # submit the steps chained with --dependency
    runyard pipeline status ID | cancel ID

The YAML goes to the server as text: the server parses and checks it (errors name the line
and the rule), so this client needs no YAML library. A relative ``workdir`` in the spec is
relative to the spec file's folder.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from typing import Any

from runyard.cli.launch import _api
from runyard.errors import InvalidInput

__all__ = ["add_pipeline_command", "add_sweep_command"]

_SWEEP_ACTIONS = ("run", "status", "cancel", "extend")
_PIPELINE_ACTIONS = ("run", "status", "cancel")
_MAX_SPEC = 1024 * 1024


def _read(path: str) -> tuple[str, str, str]:
    """(text, file name, absolute folder) of a spec file."""
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read(_MAX_SPEC + 1)
    except OSError as exc:
        raise InvalidInput(f"cannot read {path!r}: {exc.strerror}", field="spec") from None
    except UnicodeDecodeError:
        raise InvalidInput(f"{path!r} is not UTF-8 text", field="spec") from None
    if len(text) > _MAX_SPEC:
        raise InvalidInput(f"{path!r} is larger than 1 MiB", field="spec")
    return text, os.path.basename(path), os.path.dirname(os.path.abspath(path))


def _submit(args: argparse.Namespace, path: str, create: Any) -> tuple[dict[str, Any], str]:
    """Send the spec file at ``path`` through ``create`` (the client's create_sweep or
    create_pipeline); the server's answer and the file's name."""
    text, source, folder = _read(path)
    out: dict[str, Any] = create(
        text,
        source=source,
        base_dir=folder,
        project=args.project,
        experiment=args.experiment,
        dry_run=args.dry_run,
    )
    return out, source


def _split(words: list[str], actions: tuple[str, ...], command: str) -> tuple[str, str]:
    if not words:
        raise InvalidInput(f"usage: runyard {command} FILE | {' | '.join(a + ' …' for a in actions)}")
    if words[0] in actions:
        if len(words) != 2:
            raise InvalidInput(f"usage: runyard {command} {words[0]} {'FILE' if words[0] == 'run' else 'ID'}")
        return words[0], words[1]
    if len(words) != 1:
        raise InvalidInput(f"unexpected arguments {words[1:]!r}; usage: runyard {command} FILE")
    return "run", words[0]


def _number(value: Any) -> str:
    return f"{value:.6g}" if isinstance(value, float) else str(value)


def _print_sweep(sweep: dict[str, Any]) -> None:
    metric = sweep.get("metric")
    jobs = ", ".join(sweep.get("job_ids") or []) or "none"
    print(
        f"sweep {sweep['name']} ({sweep['id']})  {sweep['method']}  {sweep['state']}  "
        f"{sweep['trial_count']} trials  job {jobs}"
    )
    print("  " + "  ".join(f"{k} {v}" for k, v in sweep["counts"].items()))
    best = sweep.get("best")
    if best is not None and metric is not None:
        params = " ".join(f"{k}={_number(v)}" for k, v in best["params"].items())
        print(
            f"  best: trial {best['index']}  {metric['name']} {_number(best['value'])} ({metric['goal']})  "
            f"{params}  run {best['run_id']}"
        )
    elif metric is not None:
        print(f"  best: none yet ({metric['name']}, {metric['goal']})")


def _wait(get: Any, item_id: str, poll_s: float) -> dict[str, Any]:
    delay = min(poll_s, 1.0)
    while True:
        found: dict[str, Any] = get(item_id)
        if found["state"] != "running":
            return found
        time.sleep(delay)
        delay = min(delay * 1.5, poll_s)


def cmd_sweep(args: argparse.Namespace) -> int:
    action, target = _split(args.words, _SWEEP_ACTIONS, "sweep")
    api = _api(args)
    if action == "run":
        out, source = _submit(args, target, api.create_sweep)
        if args.json:
            print(json.dumps(out, indent=2))
        elif args.dry_run:
            print(
                f"{source}: sweep {out['name']} is valid: {out['method']}, {out['trial_count']} trials, "
                f"project {out['project']!r}, experiment {out['experiment']!r}"
            )
            for trial in out["trials"]:
                shown = " ".join(trial["argv"]) if trial["argv"] else "(params asked from the server)"
                print(f"  trial {trial['index']}: {shown}")
        else:
            trials = f"{out['trial_count']} trials"
            print(f"submitted sweep {out['name']} ({out['id']}): {trials} as job {out['job_id']}")
            print(f"follow it: runyard sweep status {out['id']}", file=sys.stderr)
        if args.wait and not args.dry_run:
            _print_sweep(_wait(api.get_sweep, out["id"], args.poll))
        return 0
    if action == "status":
        sweep = api.get_sweep(target)
    elif action == "cancel":
        sweep = api.cancel_sweep(target)
    else:
        if args.count is None:
            raise InvalidInput("extend needs --count N (how many more trials)", field="count")
        sweep = api.extend_sweep(target, args.count)
        print(f"submitted {args.count} more trials as job {sweep['job_id']}")
    if args.json:
        print(json.dumps(sweep, indent=2))
    else:
        _print_sweep(sweep)
    return 0


def _print_pipeline(pipeline: dict[str, Any]) -> None:
    print(f"pipeline {pipeline['name']} ({pipeline['id']})  {pipeline['state']}")
    for step in pipeline.get("steps", []):
        after = ", ".join(f"{a['step']}:{a['when']}" for a in step["after"]) or "-"
        line = f"  {step['name']:<20} {step['state']:<9} job {step['slurm_job_id'] or '-':<10} after {after}"
        if step.get("reason"):
            line += f"  ({step['reason']})"
        print(line)


def cmd_pipeline(args: argparse.Namespace) -> int:
    action, target = _split(args.words, _PIPELINE_ACTIONS, "pipeline")
    api = _api(args)
    if action == "run":
        pipeline, source = _submit(args, target, api.create_pipeline)
        if args.dry_run and not args.json:
            print(f"{source}: pipeline {pipeline['name']} is valid: {len(pipeline['steps'])} steps")
            for step in pipeline["steps"]:
                after = ", ".join(f"{dep}:{when}" for dep, when in step["after"]) or "-"
                print(f"  {step['name']}: {' '.join(step['command'])}  (after {after})")
            return 0
        if args.wait and not args.dry_run:
            pipeline = _wait(api.get_pipeline, pipeline["id"], args.poll)
    elif action == "status":
        pipeline = api.get_pipeline(target)
    else:
        api.cancel_pipeline(target)
        pipeline = api.get_pipeline(target)  # with its steps
    if args.json:
        print(json.dumps(pipeline, indent=2))
    else:
        _print_pipeline(pipeline)
    return 0


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="print the server's answer as JSON")
    p.add_argument(
        "--url", help="server URL (default: RUNYARD_URL, TRACKER_API, config file, http://127.0.0.1:8765)"
    )
    p.add_argument("--api-key", help="API key (default: RUNYARD_API_KEY, TRACKER_API_KEY, config file)")
    p.add_argument("--poll", type=float, default=5.0, help=argparse.SUPPRESS)


def _submit_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--project", help="project name (overrides the spec's)")
    p.add_argument("--experiment", help="experiment name (overrides the spec's; default: the spec's name)")
    p.add_argument("--dry-run", action="store_true", help="check the spec and show it; submit nothing")
    p.add_argument("--wait", action="store_true", help="wait until it has ended, then print its status")


def add_sweep_command(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "sweep",
        help="run a hyper-parameter sweep (YAML) as one Slurm job array; status, cancel, extend",
        description=(
            "runyard sweep FILE checks the sweep spec (see docs/sweeps.md) and submits its trials as "
            "one job array, one run per trial, at most `concurrency` at once; each task gets its "
            "trial's params as arguments and as the run's config. runyard sweep status|cancel ID; "
            "runyard sweep extend ID --count N adds trials to a random or adaptive sweep."
        ),
    )
    p.add_argument("words", nargs="+", metavar="FILE | status ID | cancel ID | extend ID")
    p.add_argument("--count", type=int, help="extend: how many more trials")
    _submit_options(p)
    _common(p)
    p.set_defaults(func=cmd_sweep)


def add_pipeline_command(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "pipeline",
        help="run a pipeline (YAML): steps as Slurm jobs chained with --dependency; status, cancel",
        description=(
            "runyard pipeline run FILE checks the pipeline spec (see docs/sweeps.md) and submits "
            "every step as a job that waits for the steps in its `after:` (ok, any or notok). "
            "runyard pipeline status|cancel ID."
        ),
    )
    p.add_argument("words", nargs="+", metavar="run FILE | status ID | cancel ID")
    _submit_options(p)
    _common(p)
    p.set_defaults(func=cmd_pipeline)
