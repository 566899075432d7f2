"""``render_sbatch``: a pure function from a ``JobSpec`` to the text of an sbatch script.

No I/O here: the runner writes the text and calls ``sbatch``. Values in ``#SBATCH`` lines are
single-line (checked) and quoted with ``shlex.quote``, which sbatch's own line parser
understands; the command is one ``shlex.join`` line, so argv arrives intact.

With ``signal_before_end_s`` the batch shell gets ``USR1`` that many seconds before the time
limit (``--signal=B:USR1@N``). The command then runs as a child of the batch shell, which
forwards ``USR1`` to it and waits until it has really exited, keeping its exit status.

With a ``JobReport`` (what ``runyard launch`` submits) the script also reports the job to
Runyard through ``python -m runyard.client.jobreport``: ``start`` before the command (it
prints the run id), ``exit CODE`` after it. When the early ``USR1`` came, the attempt ends
``--status requeued`` and the script runs ``scontrol requeue`` itself, so a time-limited job
goes on as the same run in its next attempt (up to ``RUNYARD_MAX_RESTARTS`` restarts);
without requeue it ends ``--status timeout``. The API key is never written into the script:
it reaches the job through the submitting environment.

With a ``ScriptHeader`` (``runyard launch job.sbatch``) the user's ``#SBATCH`` lines are kept
verbatim; Runyard's defaults (job name, output, error, signal, requeue) are added only where
the script sets none, and the request's explicit settings (``overrides``) come after the
user's lines, so they win (sbatch takes the last value of an option).
"""

from __future__ import annotations

import math
import re
import shlex
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass

from runyard.errors import InvalidInput
from runyard.slurm.launch import ScriptHeader
from runyard.slurm.spec import JobSpec, check_single_line

__all__ = ["JobReport", "Trials", "format_mem", "format_time_limit", "render_sbatch"]

_ENV_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


@dataclass(frozen=True)
class Trials:
    """A sweep's array job: each task runs the command with its trial's arguments.

    ``argv``: the full argv of each task, by array task id (grid, random and list sweeps:
    written into the script, so the job needs no server to know its parameters). ``ask``:
    an adaptive sweep's task asks the server for its trial once it has started
    (``python -m runyard.client.trial``), and runs the argv it answers."""

    argv: Mapping[int, Sequence[str]] | None = None
    ask: bool = False


def _trial_lines(trials: Trials) -> list[str]:
    """Set the positional parameters to this task's argv (quoted: never re-parsed)."""
    if trials.argv is not None:
        lines = [
            "# this task's trial: its command and arguments, by array task id",
            'case "${SLURM_ARRAY_TASK_ID:-}" in',
        ]
        for task in sorted(trials.argv):
            argv = list(trials.argv[task])
            if not argv:
                raise InvalidInput(f"trial {task} has an empty command", field="command")
            for arg in argv:
                if "\x00" in arg:
                    raise InvalidInput(f"trial {task}: arguments cannot contain NUL bytes", field="command")
            lines.append(f"    {int(task)}) set -- {shlex.join(argv)} ;;")
        lines += [
            '    *) echo "runyard: no trial for array task ${SLURM_ARRAY_TASK_ID:-}" >&2; exit 2 ;;',
            "esac",
            "",
        ]
        return lines
    return [
        "# an adaptive sweep: ask the server for this trial's parameters (NUL-separated argv)",
        "runyard_argv_file=$(mktemp) || exit 1",
        'if ! "$runyard_py" -m runyard.client.trial >"$runyard_argv_file"; then',
        '    echo "runyard: could not get this trial\'s parameters from the server" >&2',
        '    rm -f "$runyard_argv_file"',
        '    "$runyard_py" -m runyard.client.jobreport exit 1',
        "    exit 1",
        "fi",
        'mapfile -d "" -t runyard_argv <"$runyard_argv_file"',
        'rm -f "$runyard_argv_file"',
        'set -- "${runyard_argv[@]}"',
        "",
    ]


@dataclass(frozen=True)
class JobReport:
    """How a launched job reports to Runyard: the server, the interpreter that runs
    ``runyard.client.jobreport`` on the compute node, and the run (or array base) id."""

    url: str
    python: str
    run_id: str | None = None
    array_base_id: str | None = None  # arrays: task N logs into array_run_id(base, N)
    max_restarts: int = 5

    def validate(self, spec: JobSpec) -> None:
        for name in ("url", "python"):
            value = getattr(self, name)
            if not isinstance(value, str) or not value:
                raise InvalidInput(f"report {name} must be a non-empty string", field=f"report.{name}")
            check_single_line(value, field_name=f"report.{name}")
        if spec.array is not None and not self.array_base_id:
            raise InvalidInput("an array job reports under an array_base_id", field="report.array_base_id")
        if spec.array is None and not self.run_id:
            raise InvalidInput("a single job reports under a run_id", field="report.run_id")
        if (
            isinstance(self.max_restarts, bool)
            or not isinstance(self.max_restarts, int)
            or self.max_restarts < 0
        ):
            raise InvalidInput("max_restarts must be an integer >= 0", field="report.max_restarts")

    def env(self, spec: JobSpec) -> dict[str, str]:
        out = {
            "RUNYARD_URL": self.url,
            "RUNYARD_REQUEUE": "1" if spec.requeue else "0",
            "RUNYARD_MAX_RESTARTS": str(self.max_restarts),
        }
        if spec.array is not None:
            out["RUNYARD_ARRAY_BASE_ID"] = str(self.array_base_id)
        else:
            out["RUNYARD_RUN_ID"] = str(self.run_id)
        return out


def format_time_limit(minutes: int) -> str:
    """Slurm's ``--time``: ``HH:MM:SS`` under a day, ``D-HH:MM:SS`` from one day on."""
    days, rest = divmod(minutes, 24 * 60)
    hours, mins = divmod(rest, 60)
    return f"{days}-{hours:02d}:{mins:02d}:00" if days else f"{hours:02d}:{mins:02d}:00"


def format_mem(mem_gb: float) -> str:
    """Slurm's ``--mem``: whole gigabytes as ``<N>G``, anything else rounded up to ``<N>M``."""
    if float(mem_gb).is_integer():
        return f"{int(mem_gb)}G"
    return f"{math.ceil(mem_gb * 1024)}M"


def _sbatch_line(flag: str, value: str | int | None = None, *, field_name: str) -> str:
    if value is None:
        return f"#SBATCH --{flag}"
    text = str(value)
    check_single_line(text, field_name=field_name)
    return f"#SBATCH --{flag}={shlex.quote(text)}"


def _join_path(directory: str, name: str) -> str:
    return directory.rstrip("/") + "/" + name if directory != "/" else "/" + name


def _directives(spec: JobSpec) -> list[tuple[str, str]]:
    """(key, line) for every directive of ``spec``, in a fixed order; keys are the ``JobSpec``
    field names plus ``output`` and ``error``."""
    pattern = "%x-%A_%a" if spec.array is not None else "%x-%j"
    out: list[tuple[str, str]] = [("name", _sbatch_line("job-name", spec.name, field_name="name"))]
    for key, flag in (("partition", "partition"), ("account", "account"), ("qos", "qos")):
        value = getattr(spec, key)
        if value is not None:
            out.append((key, _sbatch_line(flag, value, field_name=key)))
    out.append(("nodes", _sbatch_line("nodes", spec.nodes, field_name="nodes")))
    out.append(
        (
            "ntasks_per_node",
            _sbatch_line("ntasks-per-node", spec.ntasks_per_node, field_name="ntasks_per_node"),
        )
    )
    out.append(
        ("cpus_per_task", _sbatch_line("cpus-per-task", spec.cpus_per_task, field_name="cpus_per_task"))
    )
    if spec.gpus_per_node:
        out.append(
            ("gpus_per_node", _sbatch_line("gpus-per-node", spec.gpus_per_node, field_name="gpus_per_node"))
        )
    if spec.mem_gb is not None:
        out.append(("mem_gb", _sbatch_line("mem", format_mem(spec.mem_gb), field_name="mem_gb")))
    if spec.time_limit_min is not None:
        line = _sbatch_line("time", format_time_limit(spec.time_limit_min), field_name="time_limit_min")
        out.append(("time_limit_min", line))
    if spec.signal_before_end_s is not None:
        line = _sbatch_line("signal", f"B:USR1@{spec.signal_before_end_s}", field_name="signal_before_end_s")
        out.append(("signal_before_end_s", line))
    out.append(("requeue", "#SBATCH --requeue" if spec.requeue else "#SBATCH --no-requeue"))
    if spec.array is not None:
        out.append(("array", _sbatch_line("array", spec.array, field_name="array")))
    if spec.dependency is not None:
        out.append(("dependency", _sbatch_line("dependency", spec.dependency, field_name="dependency")))
    if spec.kill_on_invalid_dep:
        out.append(("kill_on_invalid_dep", "#SBATCH --kill-on-invalid-dep=yes"))
    out.append(
        (
            "output",
            _sbatch_line("output", _join_path(spec.output_dir, pattern + ".out"), field_name="output_dir"),
        )
    )
    out.append(
        (
            "error",
            _sbatch_line("error", _join_path(spec.output_dir, pattern + ".err"), field_name="output_dir"),
        )
    )
    if spec.workdir is not None:
        out.append(("workdir", _sbatch_line("chdir", spec.workdir, field_name="workdir")))
    return out


# the header options that stand for each of Runyard's defaults
_DEFAULT_KEYS = {
    "name": ("job-name",),
    "output": ("output",),
    "error": ("error", "output"),  # --output alone sends stderr there too: leave it so
    "signal_before_end_s": ("signal",),
    "requeue": ("requeue", "no-requeue"),
}


def _script_directives(spec: JobSpec, header: ScriptHeader, overrides: Collection[str]) -> list[str]:
    ours = _directives(spec)
    lines = list(header.directives)
    defaults = [
        line
        for key, line in ours
        if key in _DEFAULT_KEYS
        and key not in overrides
        and not any(header.sets(o) for o in _DEFAULT_KEYS[key])
    ]
    if defaults:
        lines.append("# runyard launch: defaults for what the script does not set")
        lines += defaults
    explicit = [line for key, line in ours if key in overrides]
    if explicit:
        lines.append("# runyard launch: settings given at launch (they win over the script's)")
        lines += explicit
    return lines


def _check_env(run_env: Mapping[str, str]) -> None:
    for key, value in run_env.items():
        if not _ENV_NAME_RE.match(key):
            raise InvalidInput(f"run_env names must be identifiers, got {key!r}", field="run_env")
        if "\x00" in value:
            raise InvalidInput(f"run_env[{key}] cannot contain NUL bytes", field="run_env")


_WAIT_FOR_CHILD = [
    "child=$!",
    "# a trapped signal interrupts wait: wait again until the command has really exited,",
    "# then once more for its exit status (bash remembers it), which becomes the job's",
    'wait "$child"',
    'while kill -0 "$child" 2>/dev/null; do',
    '    wait "$child"',
    "done",
    'wait "$child"',
]


def _plain_body(spec: JobSpec, command: str) -> list[str]:
    if spec.signal_before_end_s is None:
        return [f"exec {command}"]
    return [
        "# Slurm sends USR1 to this shell before the time limit; pass it on to the command.",
        "trap 'kill -USR1 \"$child\" 2>/dev/null || true' USR1",
        f"{command} &",
        *_WAIT_FOR_CHILD,
    ]


def _report_body(
    spec: JobSpec, command: str, report: JobReport, *, trap_usr1: bool, trials: Trials | None = None
) -> list[str]:
    lines = [f"runyard_py={shlex.quote(report.python)}"]
    if trials is not None and trials.argv is not None:
        lines += _trial_lines(trials)
    if trap_usr1:
        lines += [
            "# Slurm sends USR1 to this shell before the time limit: pass it on to the command and note",
            "# it. The trap comes first: on a short job USR1 may come before the command runs, and then",
            "# it is only logged (the command would die of it before it could handle it).",
            "runyard_usr1=0",
            "child=",
            "runyard_on_usr1() {",
            '    if [ -z "$child" ]; then',
            '        echo "runyard: USR1 came before the command started; not passed on" >&2',
            "        return",
            "    fi",
            "    runyard_usr1=1",
            '    kill -USR1 "$child" 2>/dev/null || true',
            "}",
            "trap runyard_on_usr1 USR1",
        ]
    lines += [
        "# tell Runyard the job started; it prints the run id (and never fails the job)",
        'runyard_id=$("$runyard_py" -m runyard.client.jobreport start) || true',
        'if [ -n "$runyard_id" ]; then RUNYARD_RUN_ID=$runyard_id; export RUNYARD_RUN_ID; fi',
        "",
    ]
    if trials is not None and trials.ask:
        lines += _trial_lines(trials)
    if not trap_usr1:
        lines += [command, "code=$?"]
    else:
        lines += [f"{command} &", *_WAIT_FOR_CHILD, "code=$?"]
    lines.append("")
    if trap_usr1:
        lines += [
            'if [ "$runyard_usr1" = 1 ] && [ "$RUNYARD_REQUEUE" = 1 ] \\',
            '    && [ "${SLURM_RESTART_COUNT:-0}" -lt "$RUNYARD_MAX_RESTARTS" ]; then',
            "    # the time limit is near: this attempt ends here and the job comes back as the same run",
            '    "$runyard_py" -m runyard.client.jobreport exit "$code" --status requeued',
            '    scontrol requeue "$SLURM_JOB_ID" \\',
            '        || echo "runyard: scontrol requeue failed; this attempt is the last" >&2',
            'elif [ "$runyard_usr1" = 1 ]; then',
            '    "$runyard_py" -m runyard.client.jobreport exit "$code" --status timeout',
            "else",
            '    "$runyard_py" -m runyard.client.jobreport exit "$code"',
            "fi",
        ]
    else:
        lines.append('"$runyard_py" -m runyard.client.jobreport exit "$code"')
    lines.append('exit "$code"')
    return lines


def render_sbatch(
    spec: JobSpec,
    *,
    run_env: Mapping[str, str],
    report: JobReport | None = None,
    user_script: ScriptHeader | None = None,
    overrides: Collection[str] = (),
    trials: Trials | None = None,
) -> str:
    """The sbatch script for ``spec``; ``run_env`` (e.g. the run id) is exported after ``spec.env``.

    ``report``: the job reports its start and exit to Runyard (see the module docstring).
    ``user_script``: the header of the user's own script, whose lines are kept; ``overrides``
    names the ``JobSpec`` fields set explicitly at launch, which are added after them.
    ``trials``: a sweep's array, whose tasks run their own trial's argv (see ``Trials``).
    """
    spec.validate()
    _check_env(run_env)
    if report is not None:
        report.validate(spec)

    lines = ["#!/bin/bash"]
    if user_script is None:
        lines += [line for _, line in _directives(spec)]
    else:
        lines += _script_directives(spec, user_script, overrides)

    lines.append("")
    merged = {**spec.env, **run_env, **(report.env(spec) if report is not None else {})}
    for key in sorted(merged):
        lines.append(f"export {key}={shlex.quote(merged[key])}")
    if merged:
        lines.append("")

    command = shlex.join(spec.command) if trials is None else '"$@"'
    if trials is not None and (spec.array is None or report is None):
        raise InvalidInput("a sweep's trials run as a reporting job array", field="array")
    if report is None:
        lines += _plain_body(spec, command)
    else:
        # a script's own --signal=B:USR1@N reaches this shell too: it must not kill it
        trap = spec.signal_before_end_s is not None or (
            user_script is not None and user_script.sets("signal")
        )
        lines += _report_body(spec, command, report, trap_usr1=trap, trials=trials)
    return "\n".join(lines) + "\n"
