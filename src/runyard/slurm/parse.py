"""Pure parsers for ``squeue --json``, ``sacct --json``, ``sinfo --json``, ``squeue --start`` and
``scontrol show partition --oneliner``.

Written against Slurm 22.05 (openapi v0.0.38, see docs/slurm-local.md section 6) and tested on
output recorded from the project's dev cluster (``tests/slurm/data``). Missing keys give
``None``/0 instead of errors, and the ``{"set", "infinite", "number"}`` number objects and
list-valued states of later Slurm versions are read as well. Text that is not the expected JSON
raises ``InvalidInput(field="slurm_output")``; a JSON document whose ``errors`` list is not
empty raises ``SlurmError`` (22.05's squeue exits 0 with slurmctld down).

Known 22.05 quirks handled here:
- squeue's ``exit_code`` is the raw wait status (768 = exit 3); it is decoded.
- sacct's JSON reports ``return_code`` 0 for a FAILED job that exited 3 (``sacct -o ExitCode``
  says 3:0). A FAILED job whose JSON exit code is 0 therefore gets ``exit_code=None`` (unknown)
  rather than a wrong 0.
- sacct's job-level ``time.total`` is 0: CPU time and MaxRSS live on the steps.
"""

from __future__ import annotations

import contextlib
import gc
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from runyard.errors import InvalidInput, SlurmError

__all__ = [
    "AccountingJob",
    "NodeInfo",
    "PartitionInfo",
    "QueueJob",
    "StartEstimate",
    "parse_gres",
    "parse_partitions",
    "parse_sacct_json",
    "parse_sinfo_json",
    "parse_squeue_json",
    "parse_start_estimates",
    "parse_time_min",
]

_MB = 1024 * 1024
_FAILED_STATES = {"FAILED", "OUT_OF_MEMORY", "NODE_FAIL"}


@dataclass(frozen=True)
class QueueJob:
    """One row of ``squeue --json``. Times are epoch seconds (None when not set)."""

    job_id: int
    array_job_id: int | None
    array_task_id: int | None
    array_task_string: str | None  # pending tasks of an array leader, e.g. "2-3%2"
    name: str
    state: str
    reason: str | None
    nodes: str | None
    partition: str | None
    submit_time: int | None
    start_time: int | None
    end_time: int | None
    time_limit_min: int | None
    restart_count: int
    requeue: bool | None
    tres_per_node: str | None  # as requested, e.g. "gres:gpu:2"
    tres_alloc: dict[str, str]  # e.g. {"cpu": "1", "mem": "500M", "gres/gpu": "2"}
    gpus_per_node: int
    user: str | None
    exit_code: int | None
    signal: int | None

    @property
    def display_id(self) -> str:
        """The id squeue prints: ``17_0`` for an array task, ``17_[2-3%2]`` for the pending rest."""
        if self.array_job_id is None:
            return str(self.job_id)
        if self.array_task_id is not None:
            return f"{self.array_job_id}_{self.array_task_id}"
        return f"{self.array_job_id}_[{self.array_task_string or ''}]"


@dataclass(frozen=True)
class AccountingJob:
    """One job of ``sacct --json``. ``job_id`` is the id users see (``17_3`` for array tasks)."""

    job_id: str
    raw_job_id: int
    array_job_id: int | None
    array_task_id: int | None
    name: str
    state: str
    reason: str | None
    exit_code: int | None
    signal: int | None
    elapsed_s: int
    time_limit_min: int | None
    alloc_cpus: int
    total_cpu_s: float  # summed over steps
    max_rss_bytes: int | None  # max over steps; None when no step recorded it
    req_mem_bytes: int | None
    gpus: int
    nodes: str | None
    submit_time: int | None
    start_time: int | None
    end_time: int | None
    partition: str | None
    user: str | None
    step_ids: tuple[str, ...]


@dataclass(frozen=True)
class NodeInfo:
    """One node of ``sinfo --json``."""

    name: str
    state: str
    cpus: int
    alloc_cpus: int
    gpus_total: int
    gpus_used: int
    real_memory_mb: int
    alloc_memory_mb: int
    partitions: tuple[str, ...]
    reason: str | None


@dataclass(frozen=True)
class PartitionInfo:
    """One partition of ``scontrol show partition --oneliner``. Times in minutes, None = no limit."""

    name: str
    state: str
    default: bool
    max_time_min: int | None
    default_time_min: int | None
    nodes: str | None  # Slurm's node list, e.g. "n[1-3]"
    total_nodes: int
    total_cpus: int
    gpus: int
    memory_mb: int | None


@dataclass(frozen=True)
class StartEstimate:
    """One line of ``squeue --start --noheader -o "%i|%S|%R"``; start is cluster-local time."""

    job_id: str
    start_time: datetime | None
    reason: str | None


# --------------------------------------------------------------------------- helpers


_NOTHING_FOUND = 9003  # sacct's "Nothing found with query": no such jobs, not a failure


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """The cyclic garbage collector paused for a burst of allocation: a 10,000-job squeue
    document is a million small objects, and the collections their allocation triggers (which
    can free none of them, and walk all of them) cost as much as the parsing itself."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _json_loads(text: str) -> Any:
    """orjson when the server's dependencies are installed (faster on big documents)."""
    try:
        import orjson
    except ImportError:
        return json.loads(text)
    return orjson.loads(text)


def _load(text: str, key: str) -> list[dict[str, Any]]:
    try:
        data = _json_loads(text)
    except (json.JSONDecodeError, TypeError, ValueError) as exc:
        raise InvalidInput(f"Slurm output is not valid JSON: {exc}", field="slurm_output") from exc
    if not isinstance(data, dict):
        raise InvalidInput("Slurm JSON output must be an object", field="slurm_output")
    errors = [
        e
        for e in data.get("errors") or []
        if not (isinstance(e, dict) and e.get("error_number") == _NOTHING_FOUND)
    ]
    if errors:
        # e.g. squeue with slurmctld down: exit status 0, no jobs, and this list says why
        first = errors[0] if isinstance(errors[0], dict) else {}
        what = "; ".join(str(first.get(k)) for k in ("source", "description", "error") if first.get(k))
        raise SlurmError(f"Slurm reported an error: {what or errors[0]!r}")
    items = data.get(key, [])
    if items is None:
        return []
    if not isinstance(items, list):
        raise InvalidInput(f"Slurm JSON output: '{key}' must be a list", field="slurm_output")
    return [item for item in items if isinstance(item, dict)]


def _num(value: Any) -> int | None:
    """An int from 22.05's plain numbers or later versions' ``{"set", "infinite", "number"}``."""
    if isinstance(value, dict):
        if value.get("infinite") or value.get("set") is False:
            return None
        value = value.get("number")
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value)
    if isinstance(value, str):
        try:
            return int(value)
        except ValueError:
            return None
    return None


def _epoch(value: Any) -> int | None:
    number = _num(value)
    return number if number else None  # 0 means "not yet"


def _str(value: Any) -> str | None:
    if isinstance(value, list):
        value = value[0] if value else None
    if value is None:
        return None
    text = str(value)
    return text if text and text != "None" else None


def _nodes(value: Any) -> str | None:
    text = _str(value)
    return None if text == "None assigned" else text  # sacct's word for a job that never ran


def _state(value: Any) -> str:
    if isinstance(value, dict):
        value = value.get("current")
    return _str(value) or "UNKNOWN"


def _node_state(node: dict[str, Any]) -> str:
    """sinfo's state with its flags, as scontrol writes it: ``idle+drain``, ``mixed+completing``
    (22.05 puts DRAIN, NOT_RESPONDING… in ``state_flags``; later versions make ``state`` a list)."""
    value = node.get("state")
    words = [str(v) for v in value] if isinstance(value, list) else [_state(value)]
    flags = node.get("state_flags")
    if isinstance(flags, list):
        words += [str(f) for f in flags if str(f) not in words]
    return "+".join(w.lower() for w in words if w) or "unknown"


def _dig(data: Any, *keys: str) -> Any:
    for key in keys:
        if not isinstance(data, dict):
            return None
        data = data.get(key)
    return data


def parse_gres(text: str | None) -> dict[str, int]:
    """``gpu:4`` / ``gpu:tesla:2(IDX:0-1),mps:100`` → ``{"gpu": 4}`` / ``{"gpu": 2, "mps": 100}``."""
    result: dict[str, int] = {}
    if not text or text == "(null)":
        return result
    items: list[str] = []
    depth, current = 0, ""
    for char in text:  # split on top-level commas only: "(IDX:0,2)" holds commas
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        if char == "," and depth == 0:
            items.append(current)
            current = ""
        else:
            current += char
    items.append(current)
    for item in items:
        head = item.split("(", 1)[0].strip()
        if head.startswith("gres:") or head.startswith("gres/"):
            head = head[5:]
        parts = head.replace("=", ":").split(":")
        if not parts or not parts[0]:
            continue
        count = _num(parts[-1]) if len(parts) > 1 else 1
        result[parts[0]] = result.get(parts[0], 0) + (count if count is not None else 1)
    return result


def _tres_dict(text: str | None) -> dict[str, str]:
    result: dict[str, str] = {}
    for item in (text or "").split(","):
        key, sep, value = item.partition("=")
        if sep:
            result[key.strip()] = value.strip()
    return result


def _decode_exit(value: Any) -> tuple[int | None, int | None]:
    """(exit code, signal) from a raw wait status (22.05) or an ``{status, return_code}`` object."""
    if isinstance(value, dict):
        code = _num(value.get("return_code"))
        signal = _num(_dig(value, "signal", "signal_id")) or _num(_dig(value, "signal", "id"))
        return code, signal
    raw = _num(value)
    if raw is None:
        return None, None
    signal = raw & 0x7F
    if signal:
        return None, signal
    return (raw >> 8) & 0xFF, None


# --------------------------------------------------------------------------- squeue


def parse_squeue_json(text: str) -> list[QueueJob]:
    """Every job in ``squeue --json`` (which ignores ``-j``/``-u`` filters in 22.05: filter here)."""
    with gc_paused():
        return _parse_squeue_json(text)


def _parse_squeue_json(text: str) -> list[QueueJob]:

    jobs: list[QueueJob] = []
    for job in _load(text, "jobs"):
        job_id = _num(job.get("job_id"))
        if job_id is None:
            continue
        array_job_id = _num(job.get("array_job_id")) or None
        tres_per_node = _str(job.get("tres_per_node"))
        tres_alloc = _tres_dict(_str(job.get("tres_alloc_str")))
        gpus = parse_gres(tres_per_node).get("gpu", 0)
        if not gpus and "gres/gpu" in tres_alloc:
            nodes_count = _num(job.get("node_count")) or 1
            gpus = (_num(tres_alloc["gres/gpu"]) or 0) // max(nodes_count, 1)
        exit_code, signal = _decode_exit(job.get("exit_code"))
        requeue = job.get("requeue")
        jobs.append(
            QueueJob(
                job_id=job_id,
                array_job_id=array_job_id,
                array_task_id=_num(job.get("array_task_id")) if array_job_id else None,
                array_task_string=_str(job.get("array_task_string")),
                name=_str(job.get("name")) or "",
                state=_state(job.get("job_state")),
                reason=_str(job.get("state_reason")),
                nodes=_str(job.get("nodes")),
                partition=_str(job.get("partition")),
                submit_time=_epoch(job.get("submit_time")),
                start_time=_epoch(job.get("start_time")),
                end_time=_epoch(job.get("end_time")),
                time_limit_min=_num(job.get("time_limit")),
                restart_count=_num(job.get("restart_cnt")) or 0,
                requeue=requeue if isinstance(requeue, bool) else None,
                tres_per_node=tres_per_node,
                tres_alloc=tres_alloc,
                gpus_per_node=gpus,
                user=_str(job.get("user_name")),
                exit_code=exit_code,
                signal=signal,
            )
        )
    return jobs


# --------------------------------------------------------------------------- sacct


def _tres_count(items: Any, type_: str, name: str | None = None) -> int | None:
    if not isinstance(items, list):
        return None
    for item in items:
        if (
            isinstance(item, dict)
            and item.get("type") == type_
            and (name is None or item.get("name") == name)
        ):
            return _num(item.get("count"))
    return None


def _seconds(value: Any) -> float:
    if not isinstance(value, dict):
        return 0.0
    return float(_num(value.get("seconds")) or 0) + float(_num(value.get("microseconds")) or 0) / 1e6


def parse_sacct_json(text: str) -> list[AccountingJob]:
    """Every job in ``sacct --json``, with CPU time summed and MaxRSS maxed over its steps."""
    with gc_paused():
        return _parse_sacct_json(text)


def _parse_sacct_json(text: str) -> list[AccountingJob]:

    jobs: list[AccountingJob] = []
    for job in _load(text, "jobs"):
        raw_id = _num(job.get("job_id"))
        if raw_id is None:
            continue
        array_job_id = _num(_dig(job, "array", "job_id")) or None
        array_task_id = _num(_dig(job, "array", "task_id")) if array_job_id else None
        if array_job_id is not None and array_task_id is not None:
            job_id = f"{array_job_id}_{array_task_id}"
        else:
            job_id = str(raw_id)
        state = _state(job.get("state"))
        exit_code, signal = _decode_exit(job.get("exit_code"))
        steps = [step for step in job.get("steps") or [] if isinstance(step, dict)]
        if signal is None:
            for step in steps:
                _, step_signal = _decode_exit(step.get("exit_code"))
                signal = signal or step_signal
        if state in _FAILED_STATES and not exit_code:
            exit_code = None  # 22.05's JSON loses the real code (see module docstring)
        rss = [_tres_count(_dig(step, "tres", "requested", "max"), "mem") for step in steps]
        rss_known = [value for value in rss if value is not None]
        allocated = _dig(job, "tres", "allocated")
        requested = _dig(job, "tres", "requested")
        req_mem_mb = _tres_count(requested, "mem")
        if req_mem_mb is None:
            req_mem_mb = _num(_dig(job, "required", "memory"))
        raw_time = job.get("time")
        time: dict[str, Any] = raw_time if isinstance(raw_time, dict) else {}
        jobs.append(
            AccountingJob(
                job_id=job_id,
                raw_job_id=raw_id,
                array_job_id=array_job_id,
                array_task_id=array_task_id,
                name=_str(job.get("name")) or "",
                state=state,
                reason=_str(_dig(job, "state", "reason")),
                exit_code=exit_code,
                signal=signal,
                elapsed_s=_num(time.get("elapsed")) or 0,
                time_limit_min=_num(time.get("limit")),
                alloc_cpus=_tres_count(allocated, "cpu") or 0,
                total_cpu_s=sum(_seconds(_dig(step, "time", "total")) for step in steps),
                max_rss_bytes=max(rss_known) if rss_known else None,
                req_mem_bytes=req_mem_mb * _MB if req_mem_mb is not None else None,
                gpus=_tres_count(allocated, "gres", "gpu") or 0,
                nodes=_nodes(job.get("nodes")),
                submit_time=_epoch(time.get("submission")),
                start_time=_epoch(time.get("start")),
                end_time=_epoch(time.get("end")),
                partition=_str(job.get("partition")),
                user=_str(job.get("user")),
                step_ids=tuple(str(_dig(step, "step", "id")) for step in steps),
            )
        )
    return jobs


# --------------------------------------------------------------------------- sinfo


def parse_sinfo_json(text: str) -> list[NodeInfo]:
    """Every node in ``sinfo --json``; GPUs come from ``gres`` / ``gres_used``."""
    nodes: list[NodeInfo] = []
    for node in _load(text, "nodes"):
        name = _str(node.get("name"))
        if name is None:
            continue
        partitions = node.get("partitions")
        nodes.append(
            NodeInfo(
                name=name,
                state=_node_state(node),
                cpus=_num(node.get("cpus")) or 0,
                alloc_cpus=_num(node.get("alloc_cpus")) or 0,
                gpus_total=parse_gres(_str(node.get("gres"))).get("gpu", 0),
                gpus_used=parse_gres(_str(node.get("gres_used"))).get("gpu", 0),
                real_memory_mb=_num(node.get("real_memory")) or 0,
                alloc_memory_mb=_num(node.get("alloc_memory")) or 0,
                partitions=tuple(str(p) for p in partitions) if isinstance(partitions, list) else (),
                reason=_str(node.get("reason")),
            )
        )
    return nodes


# --------------------------------------------------------------------------- squeue --start

_NO_TIME = {"N/A", "Unknown", "None", ""}


def parse_start_estimates(text: str) -> list[StartEstimate]:
    """Lines of ``squeue --start --noheader -o "%i|%S|%R"``; ``N/A`` becomes ``None``."""
    estimates: list[StartEstimate] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        parts = line.strip().split("|")
        if len(parts) != 3:
            raise InvalidInput(
                f"squeue --start line {number} must be 'id|start|reason', got {line!r}", field="slurm_output"
            )
        job_id, start, reason = (part.strip() for part in parts)
        start_time: datetime | None = None
        if start not in _NO_TIME:
            try:
                start_time = datetime.fromisoformat(start)
            except ValueError as exc:
                raise InvalidInput(
                    f"squeue --start line {number}: bad start time {start!r}", field="slurm_output"
                ) from exc
        if reason.startswith("(") and reason.endswith(")"):
            reason = reason[1:-1]
        estimates.append(StartEstimate(job_id=job_id, start_time=start_time, reason=_str(reason)))
    return estimates


# --------------------------------------------------------------------------- scontrol show partition

_NO_LIMIT = {"UNLIMITED", "INFINITE", "NONE", "N/A", "(null)", ""}
_MEM_UNITS = {"K": 1 / 1024, "M": 1, "G": 1024, "T": 1024 * 1024, "P": 1024**3}


def parse_time_min(text: str | None) -> int | None:
    """Slurm's ``[D-]HH:MM:SS`` / ``MM:SS`` / ``MM`` in whole minutes (seconds round up);
    ``UNLIMITED`` and friends give None. Anything else raises ``InvalidInput``."""
    value = (text or "").strip()
    if value.upper() in _NO_LIMIT:
        return None
    days = 0
    if "-" in value:
        head, _, value = value.partition("-")
        if not head.isdigit():
            raise InvalidInput(f"bad Slurm time {text!r}", field="slurm_output")
        days = int(head)
    parts = value.split(":")
    if not 1 <= len(parts) <= 3 or not all(part.isdigit() for part in parts):
        raise InvalidInput(f"bad Slurm time {text!r}", field="slurm_output")
    numbers = [int(part) for part in parts]
    if days or len(numbers) == 3:  # [D-]HH[:MM[:SS]] when days are given
        hours, minutes, seconds = [*numbers, 0, 0][:3]
    elif len(numbers) == 2:  # MM:SS
        hours, (minutes, seconds) = 0, numbers
    else:  # MM
        hours, minutes, seconds = 0, numbers[0], 0
    return days * 1440 + hours * 60 + minutes + (1 if seconds else 0)


def _mem_mb(text: str | None) -> int | None:
    value = (text or "").strip()
    if not value:
        return None
    unit = value[-1].upper()
    scale = _MEM_UNITS.get(unit)
    number = value[:-1] if scale is not None else value
    try:
        return int(float(number) * (scale if scale is not None else 1))
    except ValueError:
        return None


def _key_values(line: str) -> dict[str, str]:
    """``A=1 B=x y C=2`` → {A: "1", B: "x y", C: "2"} (a word without ``=`` continues a value)."""
    fields: dict[str, str] = {}
    last: str | None = None
    for word in line.split():
        key, sep, value = word.partition("=")
        if sep and key:
            fields[key] = value
            last = key
        elif last is not None:
            fields[last] += " " + word
    return fields


def parse_partitions(text: str) -> list[PartitionInfo]:
    """Every partition in ``scontrol show partition --oneliner`` (one ``PartitionName=`` line each).

    GPUs and memory come from the partition's ``TRES`` (``gres/gpu=12``, ``mem=12000M``).
    """
    partitions: list[PartitionInfo] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        fields = _key_values(line)
        name = fields.get("PartitionName")
        if not name:
            raise InvalidInput(
                f"scontrol show partition line {number} has no PartitionName: {line[:80]!r}",
                field="slurm_output",
            )
        tres = _tres_dict(fields.get("TRES"))
        partitions.append(
            PartitionInfo(
                name=name,
                state=fields.get("State", "UNKNOWN"),
                default=fields.get("Default", "NO").upper() == "YES",
                max_time_min=parse_time_min(fields.get("MaxTime")),
                default_time_min=parse_time_min(fields.get("DefaultTime")),
                nodes=_str(fields.get("Nodes")) if fields.get("Nodes") != "(null)" else None,
                total_nodes=_num(fields.get("TotalNodes")) or 0,
                total_cpus=_num(fields.get("TotalCPUs")) or 0,
                gpus=_num(tres.get("gres/gpu")) or 0,
                memory_mb=_mem_mb(tres.get("mem")),
            )
        )
    return partitions
