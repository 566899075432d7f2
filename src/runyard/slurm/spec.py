"""``JobSpec``: what to run on Slurm, with units in every parameter name.

A spec is checked when it is built: every bad value raises ``InvalidInput`` naming the
field and the rule, so nothing invalid ever reaches ``render_sbatch`` or ``sbatch``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from runyard.errors import InvalidInput

__all__ = ["JobSpec", "check_single_line"]

# "0-9", "0-9%2", "1,3,5", "0-15:4", "1-3,7,10-12%4"
_ARRAY_ITEM = r"\d+(?:-\d+(?::\d+)?)?"
_ARRAY_RE = re.compile(rf"^{_ARRAY_ITEM}(?:,{_ARRAY_ITEM})*(?:%\d+)?$")
# "afterok:12:13", "afterany:5,afterok:7", "singleton", "afterok:12_3"
_DEP_TYPES = "after|afterany|afterburstbuffer|aftercorr|afternotok|afterok"
_DEP_ITEM = rf"(?:(?:{_DEP_TYPES})(?::\d+(?:_\d+)?(?:\+\d+)?)+|singleton)"
_DEPENDENCY_RE = re.compile(rf"^{_DEP_ITEM}(?:[,?]{_DEP_ITEM})*$")
_ENV_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# Slurm names: no whitespace, no separators that sbatch would split on.
_NAME_RE = re.compile(r"^[A-Za-z0-9_.+:@=-]+$")


def check_single_line(value: str, *, field_name: str) -> None:
    """Refuse a value that would break out of its ``#SBATCH`` line."""
    if "\n" in value or "\r" in value or "\x00" in value:
        raise InvalidInput(
            f"{field_name} must be a single line (no newline, carriage return or NUL)", field=field_name
        )


def _positive(value: int, field_name: str, *, minimum: int = 1) -> None:
    # bool is an int: refuse it, True nodes is a bug, not 1 node
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise InvalidInput(f"{field_name} must be an integer >= {minimum}, got {value!r}", field=field_name)


def _slurm_word(value: str | None, field_name: str) -> None:
    if value is None:
        return
    check_single_line(value, field_name=field_name)
    if not _NAME_RE.match(value):
        raise InvalidInput(
            f"{field_name} must be non-empty and use only letters, digits and _.+:@=-, got {value!r}",
            field=field_name,
        )


@dataclass(frozen=True)
class JobSpec:
    """One sbatch submission. ``command`` is an argv tuple, never a shell string."""

    name: str
    command: tuple[str, ...]
    output_dir: str
    partition: str | None = None
    nodes: int = 1
    ntasks_per_node: int = 1
    cpus_per_task: int = 1
    gpus_per_node: int = 0
    mem_gb: float | None = None
    time_limit_min: int | None = None
    signal_before_end_s: int | None = 60
    requeue: bool = True
    array: str | None = None
    dependency: str | None = None
    workdir: str | None = None
    env: dict[str, str] = field(default_factory=dict)
    account: str | None = None
    qos: str | None = None
    # a dependency that can never be met cancels the job (instead of leaving it pending)
    kill_on_invalid_dep: bool = False

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Raise ``InvalidInput(field=...)`` on the first value that breaks a rule."""
        _slurm_word(self.name, "name")
        if not isinstance(self.command, tuple) or not self.command:
            raise InvalidInput("command must be a non-empty tuple of argv strings", field="command")
        for arg in self.command:
            if not isinstance(arg, str):
                raise InvalidInput(f"command items must be strings, got {arg!r}", field="command")
            if "\x00" in arg:
                raise InvalidInput("command items cannot contain NUL bytes", field="command")
        if not self.command[0]:
            raise InvalidInput("command[0] (the program) cannot be empty", field="command")
        _slurm_word(self.partition, "partition")
        _slurm_word(self.account, "account")
        _slurm_word(self.qos, "qos")
        _positive(self.nodes, "nodes")
        _positive(self.ntasks_per_node, "ntasks_per_node")
        _positive(self.cpus_per_task, "cpus_per_task")
        _positive(self.gpus_per_node, "gpus_per_node", minimum=0)
        if self.mem_gb is not None and (
            isinstance(self.mem_gb, bool)
            or not isinstance(self.mem_gb, int | float)
            or not self.mem_gb > 0
            or self.mem_gb == float("inf")
        ):
            raise InvalidInput(f"mem_gb must be a positive number, got {self.mem_gb!r}", field="mem_gb")
        if self.time_limit_min is not None:
            _positive(self.time_limit_min, "time_limit_min")
        if self.signal_before_end_s is not None:
            _positive(self.signal_before_end_s, "signal_before_end_s")
            if self.signal_before_end_s > 65535:
                raise InvalidInput(
                    "signal_before_end_s must be <= 65535 (Slurm's limit)", field="signal_before_end_s"
                )
        if not isinstance(self.requeue, bool):
            raise InvalidInput("requeue must be a bool", field="requeue")
        if self.array is not None:
            check_single_line(self.array, field_name="array")
            if not _ARRAY_RE.match(self.array):
                raise InvalidInput(
                    f"array must look like '0-9', '0-9%2', '1,3,5' or '0-15:4', got {self.array!r}",
                    field="array",
                )
        if self.dependency is not None:
            check_single_line(self.dependency, field_name="dependency")
            if not _DEPENDENCY_RE.match(self.dependency):
                raise InvalidInput(
                    "dependency must look like 'afterok:12:13', 'afterany:5,afternotok:7' or 'singleton', "
                    f"got {self.dependency!r}",
                    field="dependency",
                )
        if not isinstance(self.output_dir, str) or not self.output_dir:
            raise InvalidInput("output_dir must be a non-empty path", field="output_dir")
        check_single_line(self.output_dir, field_name="output_dir")
        if self.workdir is not None:
            if not self.workdir:
                raise InvalidInput("workdir must be a non-empty path or None", field="workdir")
            check_single_line(self.workdir, field_name="workdir")
        for key, value in self.env.items():
            if not isinstance(key, str) or not _ENV_NAME_RE.match(key):
                raise InvalidInput(
                    f"env names must be identifiers ([A-Za-z_][A-Za-z0-9_]*), got {key!r}", field="env"
                )
            if not isinstance(value, str) or "\x00" in value:
                raise InvalidInput(f"env[{key}] must be a string without NUL bytes", field="env")
