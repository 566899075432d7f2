"""Pure helpers of ``runyard launch``: reading sbatch scripts, array and time specs, patterns.

Nothing here does I/O. ``parse_sbatch_script`` reads a script's ``#SBATCH`` directives the
way sbatch does (they end at the first line that is neither blank nor a comment; long and
short forms, ``--flag=value`` and ``--flag value``, unique prefixes of long names) into the
resources the job requests, keeping the lines verbatim so the submitted job sees exactly what
the user wrote. ``plan_launch`` turns a launch request into a checked ``JobSpec`` plus what
the server stores on each run; every bad value raises ``InvalidInput`` naming the field.
"""

from __future__ import annotations

import math
import re
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from runyard.errors import InvalidInput
from runyard.slurm.spec import JobSpec

__all__ = [
    "MAX_ARRAY_TASKS",
    "ArraySpec",
    "LaunchPlan",
    "ScriptHeader",
    "default_job_name",
    "dependency_string",
    "expand_pattern",
    "looks_like_batch_script",
    "parse_after",
    "parse_array",
    "parse_array_spec",
    "parse_dependency",
    "parse_mem_gb",
    "parse_sbatch_script",
    "parse_time_limit",
    "plan_launch",
]

MAX_ARRAY_TASKS = 10_000  # one run per task, created in one transaction
MAX_ARRAY_TASK_ID = 4_000_000  # Slurm's own ceiling of MaxArraySize
MAX_SCRIPT_BYTES = 1024 * 1024

_JOB_REF_RE = re.compile(r"^\d{1,10}(?:_\d{1,7})?$")
_NAME_OK = re.compile(r"[^A-Za-z0-9_.+:@=-]")

# --------------------------------------------------------------------------- time, memory


def parse_time_limit(text: str, *, field: str = "time") -> int | None:
    """Slurm's ``--time`` in whole minutes (seconds round up, as Slurm does); ``0``,
    ``INFINITE`` and ``UNLIMITED`` mean no limit (None).

    Formats: ``M``, ``M:S``, ``H:M:S``, ``D-H``, ``D-H:M``, ``D-H:M:S``.
    """
    value = str(text).strip()
    if value.upper() in ("INFINITE", "UNLIMITED"):
        return None
    rule = f"{field} must be minutes or a Slurm time (M, M:S, H:M:S, D-H, D-H:M, D-H:M:S), got {text!r}"
    days = 0
    rest = value
    if "-" in value:
        head, _, rest = value.partition("-")
        if not head.isdigit() or not rest:
            raise InvalidInput(rule, field=field)
        days = int(head)
    parts = rest.split(":")
    if not 1 <= len(parts) <= 3 or not all(p.isdigit() for p in parts):
        raise InvalidInput(rule, field=field)
    numbers = [int(p) for p in parts]
    if "-" in value:  # D-H[:M[:S]]
        hours, minutes, seconds = [*numbers, 0, 0][:3]
    elif len(numbers) == 3:
        hours, minutes, seconds = numbers
    elif len(numbers) == 2:  # M:S
        hours, (minutes, seconds) = 0, numbers
    else:
        hours, minutes, seconds = 0, numbers[0], 0
    total = days * 1440 + hours * 60 + minutes + (1 if seconds else 0)
    return total or None  # Slurm: a time limit of zero means none


_MEM_UNITS = {"K": 1 / 1024 / 1024, "M": 1 / 1024, "G": 1.0, "T": 1024.0}


def parse_mem_gb(text: str, *, field: str = "mem") -> float:
    """Slurm's ``--mem`` (``500M``, ``4G``, ``1T``, ``100K``; a bare number is MB) in GB."""
    value = str(text).strip().upper()
    match = re.fullmatch(r"(\d+(?:\.\d+)?)([KMGT]?)B?", value)
    if not match:
        raise InvalidInput(
            f"{field} must be a size like 500M, 4G or 1T (a bare number is MB), got {text!r}", field=field
        )
    number = float(match.group(1)) * _MEM_UNITS[match.group(2) or "M"]
    if not math.isfinite(number):
        raise InvalidInput(f"{field} is too large, got {text!r}", field=field)
    return number


# --------------------------------------------------------------------------- arrays


@dataclass(frozen=True)
class ArraySpec:
    task_ids: tuple[int, ...]  # sorted, unique
    throttle: int | None  # ``%K``: at most K tasks at once


def parse_array_spec(spec: str, *, field: str = "array") -> ArraySpec:
    """``0-9``, ``0-9%2``, ``1,3,5-7``, ``0-10:2`` → the task ids and the throttle."""
    text = str(spec).strip()
    rule = f"{field} must look like 0-9, 0-9%2, 1,3,5-7 or 0-10:2, got {spec!r}"
    throttle: int | None = None
    if "%" in text:
        text, _, limit = text.partition("%")
        if not limit.isdigit() or int(limit) < 1:
            raise InvalidInput(
                f"{field}: the %K throttle must be a whole number >= 1, got {spec!r}", field=field
            )
        throttle = int(limit)
    if not text:
        raise InvalidInput(rule, field=field)
    tasks: set[int] = set()
    for part in text.split(","):
        match = re.fullmatch(r"(\d+)(?:-(\d+)(?::(\d+))?)?", part.strip())
        if not match:
            raise InvalidInput(rule, field=field)
        first = int(match.group(1))
        last = int(match.group(2)) if match.group(2) is not None else first
        step = int(match.group(3)) if match.group(3) is not None else 1
        if last < first:
            raise InvalidInput(f"{field}: range {part!r} ends before it starts", field=field)
        if step < 1:
            raise InvalidInput(f"{field}: the step in {part!r} must be >= 1", field=field)
        if last > MAX_ARRAY_TASK_ID:
            raise InvalidInput(f"{field}: task ids must be <= {MAX_ARRAY_TASK_ID}, got {last}", field=field)
        if (last - first) // step + 1 + len(tasks) > MAX_ARRAY_TASKS:
            raise InvalidInput(f"{field}: at most {MAX_ARRAY_TASKS} tasks per array, got more", field=field)
        tasks.update(range(first, last + 1, step))
    return ArraySpec(task_ids=tuple(sorted(tasks)), throttle=throttle)


def parse_array(spec: str, *, field: str = "array") -> list[int]:
    """The task ids of an array spec (sorted, unique); see ``parse_array_spec``."""
    return list(parse_array_spec(spec, field=field).task_ids)


# --------------------------------------------------------------------------- dependencies

_DEP_TYPES = ("after", "afterany", "afterok", "afternotok")
_AFTER_KINDS = {"ok": "afterok", "any": "afterany", "notok": "afternotok"}


def parse_dependency(text: str, *, field: str = "dependency") -> tuple[str, list[tuple[str, str]]]:
    """``afterok:12:13,afterany:14_2`` → ("all", [("afterok", "12"), ...]); ``?`` separated
    items give "any". Only the types a local executor can judge are accepted."""
    value = str(text).strip()
    if "," in value and "?" in value:
        raise InvalidInput(f"{field} cannot mix ',' (all) and '?' (any): {text!r}", field=field)
    mode = "any" if "?" in value else "all"
    items: list[tuple[str, str]] = []
    for item in value.split("?" if mode == "any" else ","):
        kind, *refs = item.strip().split(":")
        if kind not in _DEP_TYPES or not refs:
            raise InvalidInput(
                f"{field} items must be {'/'.join(_DEP_TYPES)}:JOB[:JOB...], got {item!r}", field=field
            )
        for ref in refs:
            if not _JOB_REF_RE.match(ref):
                raise InvalidInput(f"{field}: job ids look like 123 or 123_4, got {ref!r}", field=field)
            items.append((kind, ref))
    return mode, items


def parse_after(ref: str, *, field: str = "after") -> tuple[str, str, bool]:
    """``RUN_ID|JOB_ID[:ok|any|notok]`` → (target, Slurm dependency type, target is a job id)."""
    text = str(ref).strip()
    target, sep, kind = text.rpartition(":")
    if not sep:
        target, kind = text, "ok"
    if kind not in _AFTER_KINDS:
        raise InvalidInput(
            f"{field} items look like RUN_ID or JOB_ID, optionally with :ok, :any or :notok, got {ref!r}",
            field=field,
        )
    if not target or not re.fullmatch(r"[A-Za-z0-9_.-]{1,64}", target):
        raise InvalidInput(f"{field}: {target!r} is neither a run id nor a Slurm job id", field=field)
    return target, _AFTER_KINDS[kind], bool(_JOB_REF_RE.match(target))


def dependency_string(items: Sequence[tuple[str, str]]) -> str | None:
    """[("afterok", "12"), ("afterok", "13"), ("afterany", "14")] → ``afterok:12:13,afterany:14``."""
    grouped: dict[str, list[str]] = {}
    for kind, job in items:
        jobs = grouped.setdefault(kind, [])
        if job not in jobs:
            jobs.append(job)
    return ",".join(f"{kind}:{':'.join(jobs)}" for kind, jobs in grouped.items()) or None


# --------------------------------------------------------------------------- output patterns


def expand_pattern(
    pattern: str,
    *,
    job_name: str,
    job_id: str | None,
    array_job_id: str | None = None,
    array_task_id: int | None = None,
    user: str | None = None,
    node: str | None = None,
) -> str:
    """Slurm's filename pattern: ``%x`` name, ``%j`` job id, ``%A`` array job id, ``%a`` task
    id, ``%u`` user, ``%N`` node, ``%%``; a number after ``%`` pads with zeros (``%3a``).
    What is not known (None) stays as written."""

    def one(match: re.Match[str]) -> str:
        width, letter = match.group(1), match.group(2)
        if letter == "%":
            return "%"
        value: str | None
        if letter == "x":
            value = job_name
        elif letter == "j":
            value = job_id
        elif letter == "A":
            value = array_job_id if array_job_id is not None else job_id
        elif letter == "a":
            value = None if array_task_id is None else str(array_task_id)
        elif letter == "u":
            value = user
        else:
            value = node
        if value is None:
            return match.group(0)
        return value.zfill(int(width)) if width and letter in "jAa" else value

    return re.sub(r"%(\d*)([%xjAauN])", one, pattern)


# --------------------------------------------------------------------------- sbatch scripts

# sbatch's short options that take a value, by their long names
_SHORT = {
    "A": "account",
    "a": "array",
    "B": "extra-node-info",
    "b": "begin",
    "C": "constraint",
    "c": "cpus-per-task",
    "D": "chdir",
    "d": "dependency",
    "e": "error",
    "F": "nodefile",
    "G": "gpus",
    "i": "input",
    "J": "job-name",
    "L": "licenses",
    "M": "clusters",
    "m": "distribution",
    "N": "nodes",
    "n": "ntasks",
    "o": "output",
    "p": "partition",
    "q": "qos",
    "S": "core-spec",
    "t": "time",
    "w": "nodelist",
    "x": "exclude",
}
_SHORT_FLAGS = {"H": "hold", "h": "help", "k": "no-kill", "O": "overcommit", "Q": "quiet",
                "s": "oversubscribe", "V": "version", "v": "verbose", "W": "wait"}  # fmt: skip
# long options without a value, or whose value is optional (then only as --flag=value)
_LONG_FLAGS = frozenset(
    {"contiguous", "exclusive", "get-user-env", "help", "hold", "ignore-pbs", "no-kill", "no-requeue", "nice",
     "overcommit", "oversubscribe", "parsable", "propagate", "quiet", "reboot", "requeue", "spread-job",
     "test-only", "usage", "use-min-nodes", "verbose", "version", "wait"}
)  # fmt: skip
_LONG_VALUED = frozenset(
    {"account", "acctg-freq", "array", "batch", "begin", "bb", "bbf", "chdir", "clusters", "comment",
     "constraint", "core-spec", "cores-per-socket", "cpu-freq", "cpus-per-gpu", "cpus-per-task", "deadline",
     "delay-boot", "dependency", "distribution", "error", "exclude", "export", "export-file",
     "extra-node-info", "gid", "gpu-bind", "gpu-freq", "gpus", "gpus-per-node", "gpus-per-socket",
     "gpus-per-task", "gres", "gres-flags", "hint", "input", "job-name", "kill-on-invalid-dep", "licenses",
     "mail-type", "mail-user", "mcs-label", "mem", "mem-bind", "mem-per-cpu", "mem-per-gpu", "mincpus",
     "network", "nodefile", "nodelist", "nodes", "ntasks", "ntasks-per-core", "ntasks-per-gpu",
     "ntasks-per-node", "ntasks-per-socket", "open-mode", "output", "partition", "power", "priority",
     "profile", "qos", "reservation", "signal", "sockets-per-node", "switches", "thread-spec",
     "threads-per-core", "time", "time-min", "tmp", "uid", "wckey", "wrap"}
)  # fmt: skip
_ALIASES = {"workdir": "chdir", "name": "job-name"}
_KNOWN_LONG = _LONG_FLAGS | _LONG_VALUED


def _long_name(name: str) -> str:
    """The canonical long option (aliases, and unique prefixes as getopt_long allows)."""
    name = _ALIASES.get(name, name)
    if name in _KNOWN_LONG:
        return name
    matches = [known for known in _KNOWN_LONG if known.startswith(name)]
    return matches[0] if len(matches) == 1 else name


@dataclass(frozen=True)
class ScriptHeader:
    """The ``#SBATCH`` directives of a script: verbatim lines, options, requested resources."""

    shebang: str | None
    directives: tuple[str, ...]  # the #SBATCH lines as written
    options: dict[str, str | None] = field(default_factory=dict)  # long name -> last value
    job_name: str | None = None
    partition: str | None = None
    nodes: int | None = None
    ntasks: int | None = None
    ntasks_per_node: int | None = None
    cpus_per_task: int | None = None
    gpus_per_node: int | None = None
    gpus: int | None = None
    gpu_type: str | None = None
    mem_gb: float | None = None
    mem_per_cpu_gb: float | None = None
    time_limit_min: int | None = None
    array: str | None = None
    dependency: str | None = None
    output: str | None = None
    error: str | None = None
    requeue: bool | None = None
    signal: str | None = None
    chdir: str | None = None
    account: str | None = None
    qos: str | None = None

    def sets(self, option: str) -> bool:
        """Whether the script sets ``option`` (a long name such as ``output``)."""
        return option in self.options

    def requested(self) -> dict[str, Any]:
        """The resources the script asks for (only those it sets), for the run's records."""
        keys = ("partition", "nodes", "ntasks", "ntasks_per_node", "cpus_per_task", "gpus_per_node", "gpus",
                "gpu_type", "mem_gb", "mem_per_cpu_gb", "time_limit_min", "account", "qos")  # fmt: skip
        return {k: getattr(self, k) for k in keys if getattr(self, k) is not None}


def looks_like_batch_script(text: str) -> bool:
    """A file ``runyard launch FILE`` submits as a script: it starts with ``#!`` or has ``#SBATCH`` lines."""
    return text.startswith("#!") or any(_is_directive(line) for line in text.splitlines())


def _is_directive(line: str) -> bool:
    return line.startswith("#SBATCH") and (len(line) == 7 or line[7].isspace())


def _header_lines(text: str) -> tuple[str | None, list[tuple[int, str]]]:
    lines = text.splitlines()
    shebang = lines[0] if lines and lines[0].startswith("#!") else None
    found: list[tuple[int, str]] = []
    for number, line in enumerate(lines, start=1):
        if number == 1 and shebang is not None:
            continue
        if _is_directive(line):
            found.append((number, line))
            continue
        stripped = line.strip()
        if stripped and not stripped.startswith("#"):
            break  # sbatch stops reading directives at the first command
    return shebang, found


def _tokens(text: str, number: int) -> list[tuple[str, str | None]]:
    """(long name, value) pairs of one directive's words."""
    try:
        words = shlex.split(text, comments=True)
    except ValueError as exc:
        raise InvalidInput(f"script line {number}: {exc} in {text.strip()!r}", field="script") from None
    pairs: list[tuple[str, str | None]] = []
    i = 0
    while i < len(words):
        word = words[i]
        i += 1
        if word.startswith("--") and len(word) > 2:
            name, eq, value = word[2:].partition("=")
            name = _long_name(name)
            if eq:
                pairs.append((name, value))
            elif name in _LONG_FLAGS:
                pairs.append((name, None))
            elif i < len(words):
                pairs.append((name, words[i]))
                i += 1
            else:
                raise InvalidInput(f"script line {number}: --{name} needs a value", field="script")
        elif word.startswith("-") and len(word) > 1:
            letter, attached = word[1], word[2:]
            if letter in _SHORT_FLAGS and not attached:
                pairs.append((_SHORT_FLAGS[letter], None))
            elif letter in _SHORT:
                if attached:
                    pairs.append((_SHORT[letter], attached.removeprefix("=")))
                elif i < len(words):
                    pairs.append((_SHORT[letter], words[i]))
                    i += 1
                else:
                    raise InvalidInput(f"script line {number}: -{letter} needs a value", field="script")
            else:
                pairs.append((word, None))  # unknown: kept verbatim, nothing read from it
        else:
            raise InvalidInput(
                f"script line {number}: {word!r} is not an sbatch option (#SBATCH lines hold options only)",
                field="script",
            )
    return pairs


def _int_at(value: str | None, option: str, number: int, *, minimum: int = 1) -> int:
    text = (value or "").strip()
    if option == "nodes" and re.fullmatch(r"\d+-\d+", text):
        text = text.split("-", 1)[0]  # a range of node counts: the minimum is what is asked for
    if not text.isdigit() or int(text) < minimum:
        raise InvalidInput(
            f"script line {number}: --{option} must be a whole number >= {minimum}, got {value!r}",
            field="script",
        )
    return int(text)


def _gpu_count(value: str, option: str, number: int) -> tuple[int, str | None]:
    """``[type:]N`` → (N, type)."""
    kind, _, count = value.rpartition(":")
    if not count.isdigit():
        raise InvalidInput(
            f"script line {number}: --{option} must look like 2 or a100:2, got {value!r}", field="script"
        )
    return int(count), kind or None


def _gres_gpus(value: str) -> tuple[int, str | None] | None:
    """``gpu:2`` / ``gpu:a100:2`` / ``gpu`` in a --gres list → (per-node count, type)."""
    for item in value.split(","):
        parts = item.strip().removeprefix("gres/").removeprefix("gres:").split(":")
        if parts[0] != "gpu":
            continue
        if len(parts) == 1:
            return 1, None
        if parts[-1].isdigit():
            return int(parts[-1]), (parts[1] if len(parts) == 3 else None)
        return 1, parts[1]
    return None


def parse_sbatch_script(text: str) -> ScriptHeader:
    """The ``#SBATCH`` header of ``text`` (see the module docstring); bad values raise
    ``InvalidInput(field="script")`` naming the line and the option."""
    if not isinstance(text, str):
        raise InvalidInput("script must be text", field="script")
    if "\x00" in text:
        raise InvalidInput("script cannot contain NUL bytes", field="script")
    if len(text.encode("utf-8", "surrogateescape")) > MAX_SCRIPT_BYTES:
        raise InvalidInput(f"script must be at most {MAX_SCRIPT_BYTES // 1024} KiB", field="script")
    shebang, lines = _header_lines(text)
    options: dict[str, str | None] = {}
    values: dict[str, Any] = {}
    for number, line in lines:
        for name, value in _tokens(line[7:], number):
            options[name] = value
            v = value or ""
            if name in ("nodes", "ntasks", "ntasks-per-node", "cpus-per-task"):
                values[name.replace("-", "_")] = _int_at(value, name, number)
            elif name == "gpus-per-node":
                values["gpus_per_node"], values["gpu_type"] = _gpu_count(v, name, number)
            elif name == "gpus":
                values["gpus"], gpu_type = _gpu_count(v, name, number)
                values["gpu_type"] = gpu_type or values.get("gpu_type")
            elif name == "gres":
                gres = _gres_gpus(v)
                if gres is not None:
                    values["gpus_per_node"], gpu_type = gres
                    values["gpu_type"] = gpu_type or values.get("gpu_type")
            elif name in ("mem", "mem-per-cpu"):
                key = "mem_gb" if name == "mem" else "mem_per_cpu_gb"
                try:
                    values[key] = parse_mem_gb(v, field=f"--{name}") or None  # --mem=0: the whole node
                except InvalidInput as exc:
                    raise InvalidInput(f"script line {number}: {exc.message}", field="script") from None
            elif name == "time":
                try:
                    values["time_limit_min"] = parse_time_limit(v, field="--time")
                except InvalidInput as exc:
                    raise InvalidInput(f"script line {number}: {exc.message}", field="script") from None
            elif name == "array":
                try:
                    parse_array_spec(v, field="--array")
                except InvalidInput as exc:
                    raise InvalidInput(f"script line {number}: {exc.message}", field="script") from None
                values["array"] = v
            elif name in ("requeue", "no-requeue"):
                values["requeue"] = name == "requeue"
            elif name in ("job-name", "partition", "dependency", "output", "error", "signal", "chdir",
                          "account", "qos"):  # fmt: skip
                values[name.replace("-", "_") if name != "job-name" else "job_name"] = v
    return ScriptHeader(
        shebang=shebang, directives=tuple(line for _, line in lines), options=options, **values
    )


# --------------------------------------------------------------------------- launch plans


def default_job_name(command: Sequence[str] | None, header: ScriptHeader | None) -> str:
    """The script's ``--job-name``, else the first ``*.py``/``*.sh`` argument's stem, else the
    program's name; made into a valid Slurm name."""
    if header is not None and header.job_name:
        raw = header.job_name
    else:
        args = list(command or ())
        pick = next((a for a in args if a.endswith((".py", ".sh"))), args[0] if args else "job")
        raw = pick.rstrip("/").rsplit("/", 1)[-1].removesuffix(".py").removesuffix(".sh")
    name = _NAME_OK.sub("_", raw)[:64].strip("_") or "job"
    return name


@dataclass(frozen=True)
class LaunchPlan:
    """A checked launch: the spec to render, and what each run records."""

    spec: JobSpec
    header: ScriptHeader | None  # the user's script, when one was given
    overrides: frozenset[str]  # JobSpec fields the request sets explicitly (win over the script)
    task_ids: tuple[int, ...] | None  # array tasks; None for a single job
    job_name: str  # what %x expands to
    output_pattern: str  # absolute, with %x %j %A %a
    error_pattern: str
    requested: dict[str, Any]


_RESOURCE_FIELDS = ("partition", "nodes", "ntasks_per_node", "cpus_per_task", "gpus_per_node", "mem_gb",
                    "time_limit_min", "account", "qos")  # fmt: skip
_SPEC_FIELD_NAMES = {name: f"resources.{name}" for name in _RESOURCE_FIELDS}


def _absolute(path: str, base: str) -> str:
    if path.startswith("/"):
        return path
    return base.rstrip("/") + "/" + path


def plan_launch(
    *,
    name: str | None,
    command: Sequence[str] | None,
    script: str | None,
    workdir: str,
    output_dir: str,
    resources: Mapping[str, Any],
    array: str | None = None,
    dependency: str | None = None,
    requeue: bool | None = None,
    signal_before_end_s: int | None = None,
    env: Mapping[str, str] | None = None,
    script_path: str | None = None,
) -> LaunchPlan:
    """Check a launch and build its ``JobSpec``. Exactly one of ``command`` (argv) and
    ``script`` (an sbatch script's text, run from ``script_path``) is given. ``resources``
    holds the ``JobSpec`` resource fields the request sets; with a script they override its
    directives. ``signal_before_end_s`` 0 means no USR1 warning; None the default (60 s, or
    the script's own ``--signal``)."""
    if (command is None) == (script is None):
        raise InvalidInput(
            "give either command (a list of arguments) or script (sbatch script text)", field="command"
        )
    header = parse_sbatch_script(script) if script is not None else None
    if header is not None and script_path is None:
        raise InvalidInput("a script launch needs the path its script is saved to", field="script")
    if command is not None and (not isinstance(command, list | tuple) or not command):
        raise InvalidInput("command must be a non-empty list of arguments", field="command")
    for key in ("workdir", "output_dir"):
        value = workdir if key == "workdir" else output_dir
        if not isinstance(value, str) or not value.startswith("/"):
            raise InvalidInput(f"{key} must be an absolute path, got {value!r}", field=key)
    unknown = set(resources) - set(_RESOURCE_FIELDS)
    if unknown:
        raise InvalidInput(f"unknown resource {sorted(unknown)[0]!r}", field="resources")
    overrides = {k for k, v in resources.items() if v is not None}
    if name is not None and (not isinstance(name, str) or not name or _NAME_OK.search(name)):
        raise InvalidInput(
            f"name must be non-empty and use only letters, digits and _.+:@=-, got {name!r}", field="name"
        )
    if header is not None and header.job_name:
        job_name = header.job_name  # the script's own --job-name is what Slurm uses (and %x)
        spec_name = _NAME_OK.sub("_", job_name)[:64] or "job"  # never rendered: theirs stays
    else:
        job_name = spec_name = name or default_job_name(command, header)
    if array is not None:
        overrides.add("array")
    effective_array = array if array is not None else (header.array if header else None)
    arr = parse_array_spec(effective_array, field="array") if effective_array is not None else None
    if dependency is not None:
        overrides.add("dependency")
    if requeue is not None:
        overrides.add("requeue")
    effective_requeue = requeue if requeue is not None else (header.requeue if header else None)
    if signal_before_end_s is not None and (isinstance(signal_before_end_s, bool) or signal_before_end_s < 0):
        raise InvalidInput(
            "signal_before_end_s must be >= 0 (0: no warning signal)", field="signal_before_end_s"
        )
    if signal_before_end_s is not None:
        overrides.add("signal_before_end_s")
    signal = 60 if signal_before_end_s is None else (signal_before_end_s or None)
    fields: dict[str, Any] = {k: v for k, v in resources.items() if v is not None}
    argv: tuple[str, ...] = tuple(command or ())
    if header is not None and script_path is not None:  # the saved copy runs by its own #! line
        argv = (script_path,) if header.shebang is not None else ("/bin/bash", script_path)
    try:
        spec = JobSpec(
            name=spec_name,
            command=argv,
            output_dir=output_dir,
            signal_before_end_s=signal,
            requeue=True if effective_requeue is None else effective_requeue,
            array=effective_array,
            dependency=dependency,
            workdir=workdir if header is None else None,
            env=dict(env or {}),
            **fields,
        )
    except InvalidInput as exc:
        field = _SPEC_FIELD_NAMES.get(exc.field or "", exc.field)
        message = exc.message
        if exc.field and field != exc.field and message.startswith(exc.field):
            message = f"{field}{message[len(exc.field) :]}"
        raise InvalidInput(message, field=field) from None
    pattern = "%x-%A_%a" if arr is not None else "%x-%j"
    ours_out = output_dir.rstrip("/") + f"/{pattern}.out"
    ours_err = output_dir.rstrip("/") + f"/{pattern}.err"
    if header is None:
        out, err = ours_out, ours_err
        requested: dict[str, Any] = {
            "nodes": spec.nodes,
            "ntasks_per_node": spec.ntasks_per_node,
            "cpus_per_task": spec.cpus_per_task,
        }
    else:
        cwd = _absolute(header.chdir, workdir) if header.chdir else workdir
        if header.output and not header.error:
            out = err = _absolute(header.output, cwd)  # stderr joins stdout, Slurm's default
        else:  # ours for whichever of the two the script does not set
            out = _absolute(header.output, cwd) if header.output else ours_out
            err = _absolute(header.error, cwd) if header.error else ours_err
        requested = header.requested()
    requested.update({k: fields[k] for k in _RESOURCE_FIELDS if k in fields})
    if header is None and spec.gpus_per_node:
        requested["gpus_per_node"] = spec.gpus_per_node
    return LaunchPlan(
        spec=spec,
        header=header,
        overrides=frozenset(overrides),
        task_ids=arr.task_ids if arr is not None else None,
        job_name=job_name,
        output_pattern=out,
        error_pattern=err,
        requested=requested,
    )
