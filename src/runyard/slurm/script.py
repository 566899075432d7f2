"""``render_sbatch``: a pure function from a ``JobSpec`` to the text of an sbatch script.

No I/O here: the runner writes the text and calls ``sbatch``. Values in ``#SBATCH`` lines are
single-line (checked) and quoted with ``shlex.quote``, which sbatch's own line parser
understands; the command is one ``shlex.join`` line, so argv arrives intact.

With ``signal_before_end_s`` the batch shell gets ``USR1`` that many seconds before the time
limit (``--signal=B:USR1@N``). The command then runs as a child of the batch shell, which
forwards ``USR1`` to it and waits until it has really exited, keeping its exit status.
"""

from __future__ import annotations

import math
import re
import shlex

from runyard.errors import InvalidInput
from runyard.slurm.spec import JobSpec, check_single_line

__all__ = ["format_mem", "format_time_limit", "render_sbatch"]

_ENV_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


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


def render_sbatch(spec: JobSpec, *, run_env: dict[str, str]) -> str:
    """The sbatch script for ``spec``; ``run_env`` (e.g. the run id) is exported after ``spec.env``."""
    spec.validate()
    for key, value in run_env.items():
        if not _ENV_NAME_RE.match(key):
            raise InvalidInput(f"run_env names must be identifiers, got {key!r}", field="run_env")
        if "\x00" in value:
            raise InvalidInput(f"run_env[{key}] cannot contain NUL bytes", field="run_env")

    pattern = "%x-%A_%a" if spec.array is not None else "%x-%j"
    lines = ["#!/bin/bash"]
    lines.append(_sbatch_line("job-name", spec.name, field_name="name"))
    if spec.partition is not None:
        lines.append(_sbatch_line("partition", spec.partition, field_name="partition"))
    if spec.account is not None:
        lines.append(_sbatch_line("account", spec.account, field_name="account"))
    if spec.qos is not None:
        lines.append(_sbatch_line("qos", spec.qos, field_name="qos"))
    lines.append(_sbatch_line("nodes", spec.nodes, field_name="nodes"))
    lines.append(_sbatch_line("ntasks-per-node", spec.ntasks_per_node, field_name="ntasks_per_node"))
    lines.append(_sbatch_line("cpus-per-task", spec.cpus_per_task, field_name="cpus_per_task"))
    if spec.gpus_per_node:
        lines.append(_sbatch_line("gpus-per-node", spec.gpus_per_node, field_name="gpus_per_node"))
    if spec.mem_gb is not None:
        lines.append(_sbatch_line("mem", format_mem(spec.mem_gb), field_name="mem_gb"))
    if spec.time_limit_min is not None:
        lines.append(
            _sbatch_line("time", format_time_limit(spec.time_limit_min), field_name="time_limit_min")
        )
    if spec.signal_before_end_s is not None:
        lines.append(
            _sbatch_line("signal", f"B:USR1@{spec.signal_before_end_s}", field_name="signal_before_end_s")
        )
    lines.append("#SBATCH --requeue" if spec.requeue else "#SBATCH --no-requeue")
    if spec.array is not None:
        lines.append(_sbatch_line("array", spec.array, field_name="array"))
    if spec.dependency is not None:
        lines.append(_sbatch_line("dependency", spec.dependency, field_name="dependency"))
    lines.append(
        _sbatch_line("output", _join_path(spec.output_dir, pattern + ".out"), field_name="output_dir")
    )
    lines.append(
        _sbatch_line("error", _join_path(spec.output_dir, pattern + ".err"), field_name="output_dir")
    )
    if spec.workdir is not None:
        lines.append(_sbatch_line("chdir", spec.workdir, field_name="workdir"))

    lines.append("")
    merged = {**spec.env, **run_env}
    for key in sorted(merged):
        lines.append(f"export {key}={shlex.quote(merged[key])}")
    if merged:
        lines.append("")

    command = shlex.join(spec.command)
    if spec.signal_before_end_s is None:
        lines.append(f"exec {command}")
    else:
        lines += [
            "# Slurm sends USR1 to this shell before the time limit; pass it on to the command.",
            "trap 'kill -USR1 \"$child\" 2>/dev/null || true' USR1",
            f"{command} &",
            "child=$!",
            "# a trapped signal interrupts wait: wait again until the command has really exited,",
            "# then once more for its exit status (bash remembers it), which becomes the job's",
            'wait "$child"',
            'while kill -0 "$child" 2>/dev/null; do',
            '    wait "$child"',
            "done",
            'wait "$child"',
        ]
    return "\n".join(lines) + "\n"
