"""The records Runyard stores, as plain frozen dataclasses shared by store, server and client.

Times are POSIX seconds (float, UTC). Ids are opaque strings: runs may be created by a
client that has no network yet, so run ids are generated client-side (32 hex chars) or
derived from the Slurm job identity; the store never invents a run id the client cannot know.
Stdlib-only: the client imports this module.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

__all__ = [
    "ACTIVE_STATUSES",
    "CLEARABLE_RUN_FIELDS",
    "TERMINAL_STATUSES",
    "ApiKey",
    "Artifact",
    "ArtifactCreate",
    "Batch",
    "BatchResult",
    "Experiment",
    "LogLine",
    "MetricColumns",
    "MetricSeries",
    "MetricSummary",
    "Project",
    "Run",
    "RunCreate",
    "RunEvent",
    "RunPage",
    "RunQuery",
    "RunStatus",
    "RunUpdate",
    "User",
    "decode_float",
    "encode_float",
]


class RunStatus(StrEnum):
    CREATED = "created"
    QUEUED = "queued"
    RUNNING = "running"
    REQUEUED = "requeued"
    FINISHED = "finished"
    FAILED = "failed"
    TIMEOUT = "timeout"
    CANCELLED = "cancelled"
    OOM = "oom"
    NODE_FAIL = "node_fail"
    PRUNED = "pruned"  # a sweep's early-stop rule stopped the trial (it did worse than the others)


ACTIVE_STATUSES = frozenset({RunStatus.CREATED, RunStatus.QUEUED, RunStatus.RUNNING, RunStatus.REQUEUED})

TERMINAL_STATUSES = frozenset(
    {
        RunStatus.FINISHED,
        RunStatus.FAILED,
        RunStatus.TIMEOUT,
        RunStatus.CANCELLED,
        RunStatus.OOM,
        RunStatus.NODE_FAIL,
        RunStatus.PRUNED,
    }
)

# JSON has no NaN or infinities; on the wire they are these strings (values only).
_NONFINITE_TO_WIRE = {"nan": "NaN", "inf": "Infinity", "-inf": "-Infinity"}
_WIRE_TO_FLOAT = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}

RUN_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


def encode_float(value: float) -> float | str:
    """A float as JSON can carry it: finite numbers as numbers, the rest as strings."""
    if math.isfinite(value):
        return value
    return _NONFINITE_TO_WIRE[repr(value)]


def decode_float(value: Any) -> float:
    """Inverse of ``encode_float``; raises ValueError for anything else."""
    if isinstance(value, bool):
        raise ValueError("booleans are not metric values")
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str) and value in _WIRE_TO_FLOAT:
        return _WIRE_TO_FLOAT[value]
    raise ValueError(f"{value!r} is not a number (use a number, 'NaN', 'Infinity' or '-Infinity')")


@dataclass(frozen=True, slots=True)
class User:
    id: str
    username: str
    is_admin: bool
    created_at: float


@dataclass(frozen=True, slots=True)
class ApiKey:
    id: str
    user_id: str
    name: str
    prefix: str  # the first characters of the key, shown in listings; never the secret
    created_at: float
    last_used_at: float | None = None
    revoked_at: float | None = None


@dataclass(frozen=True, slots=True)
class Project:
    id: str
    name: str
    description: str
    created_at: float
    owner_id: str | None = None


@dataclass(frozen=True, slots=True)
class Experiment:
    id: str
    project_id: str
    name: str
    description: str
    created_at: float
    updated_at: float
    run_count: int = 0
    running_count: int = 0
    queued_count: int = 0
    last_activity_at: float | None = None


@dataclass(frozen=True, slots=True)
class MetricSummary:
    """Kept on write, so run tables sort and filter by any metric without reading points.

    ``min``/``max`` ignore NaN (None when every value was NaN); ``last`` is the value of the
    most recently *logged* point (insertion order), ``last_step`` its step.
    """

    key: str
    count: int
    last: float
    last_step: int
    last_time: float
    min: float | None
    max: float | None


@dataclass(frozen=True, slots=True)
class Run:
    id: str
    experiment_id: str
    project_id: str
    name: str
    status: RunStatus
    created_at: float
    updated_at: float
    started_at: float | None = None
    ended_at: float | None = None
    user_id: str | None = None
    host: str | None = None
    config: dict[str, Any] = field(default_factory=dict)
    summary: dict[str, Any] = field(default_factory=dict)  # user-set values (run.summary)
    tags: tuple[str, ...] = ()
    notes: str = ""
    exit_code: int | None = None
    gpu_type: str | None = None
    slurm_job_id: str | None = None
    slurm_array_job_id: str | None = None
    slurm_array_task_id: int | None = None
    slurm_nodes: str | None = None
    slurm_partition: str | None = None
    slurm_cluster: str | None = None
    restart_count: int = 0
    # what Slurm last said about the job (see runyard.lifecycle)
    slurm_state: str | None = None  # e.g. PENDING, RUNNING, COMPLETED, TIMEOUT
    pending_reason: str | None = None  # e.g. Resources, Dependency, JobArrayTaskLimit
    start_estimate: float | None = None  # Slurm's expected start of a pending job
    state_unknown_since: float | None = None  # Slurm could not be asked since then
    slurm_done: bool = False  # Slurm's final verdict and accounting are recorded
    # details: requested resources, gpus, time_limit_min, stdout/stderr paths, accounting, …
    slurm: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, MetricSummary] = field(default_factory=dict)
    sweep_id: str | None = None  # the sweep this run is a trial of (its array task id is the trial)


@dataclass(frozen=True, slots=True)
class ExperimentKeys:
    """What the runs of an experiment carry (from its newest ``sampled_runs``): the choices of
    a runs table's column picker and filters."""

    params: tuple[str, ...]
    metrics: tuple[str, ...]
    tags: tuple[str, ...]
    sampled_runs: int


@dataclass(frozen=True, slots=True)
class RunCreate:
    """What a new run starts with. ``id`` None means the store generates one."""

    experiment_id: str
    name: str = ""
    id: str | None = None
    status: RunStatus = RunStatus.RUNNING
    started_at: float | None = None
    user_id: str | None = None
    host: str | None = None
    config: dict[str, Any] = field(default_factory=dict)
    tags: tuple[str, ...] = ()
    notes: str = ""
    gpu_type: str | None = None
    slurm_job_id: str | None = None
    slurm_array_job_id: str | None = None
    slurm_array_task_id: int | None = None
    slurm_nodes: str | None = None
    slurm_partition: str | None = None
    slurm_cluster: str | None = None
    slurm: dict[str, Any] = field(default_factory=dict)
    sweep_id: str | None = None


# RunUpdate fields that ``RunUpdate.clear`` may set back to None
CLEARABLE_RUN_FIELDS = frozenset(
    {"pending_reason", "start_estimate", "state_unknown_since", "exit_code", "ended_at", "slurm_state"}
)


@dataclass(frozen=True, slots=True)
class RunUpdate:
    """A partial update: fields left None are not touched.

    ``config``, ``summary`` and ``slurm`` are merged key by key into what is stored (a key set
    to None stays None: it is not a delete); ``tags`` replaces the tag set; ``tags_add`` adds
    to it. ``clear`` names fields (``CLEARABLE_RUN_FIELDS``) to set back to None.
    """

    name: str | None = None
    status: RunStatus | None = None
    started_at: float | None = None
    ended_at: float | None = None
    exit_code: int | None = None
    host: str | None = None
    notes: str | None = None
    config: dict[str, Any] | None = None
    summary: dict[str, Any] | None = None
    tags: tuple[str, ...] | None = None
    tags_add: tuple[str, ...] | None = None
    gpu_type: str | None = None
    slurm_job_id: str | None = None
    slurm_array_job_id: str | None = None
    slurm_array_task_id: int | None = None
    slurm_nodes: str | None = None
    slurm_partition: str | None = None
    restart_count: int | None = None
    slurm_state: str | None = None
    pending_reason: str | None = None
    start_estimate: float | None = None
    state_unknown_since: float | None = None
    slurm_done: bool | None = None
    slurm: dict[str, Any] | None = None
    clear: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class RunEvent:
    """One entry of a run's history: a status change, a Slurm observation, a signal, …

    ``source`` says who reported it: ``client`` (the training script), ``job`` (the generated
    batch script), ``slurm`` (the watcher), ``epilog`` (the Slurm epilog webhook) or ``user``.
    """

    id: int
    run_id: str
    time: float
    source: str
    kind: str  # "status", "signal", "checkpoint", "submitted", "epilog", …
    status: str | None = None
    message: str = ""
    data: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class MetricColumns:
    """Points of one metric key, as three equally long columns (insertion order).

    The store accepts any sequence type here (lists, ``array.array``, numpy arrays);
    values may be NaN or infinite.
    """

    steps: Any  # Sequence[int]
    times: Any  # Sequence[float]
    values: Any  # Sequence[float]

    def __len__(self) -> int:
        return len(self.values)


@dataclass(frozen=True, slots=True)
class MetricSeries:
    """A metric read back, ordered by step (stable: equal steps keep insertion order).

    ``steps``/``times``/``values`` are numpy arrays on the server side. ``total`` is the
    number of stored points; ``downsampled`` says whether fewer than ``total`` are returned.
    """

    key: str
    steps: Any
    times: Any
    values: Any
    total: int
    downsampled: bool = False


@dataclass(frozen=True, slots=True)
class ArtifactCreate:
    path: str  # a path on shared storage or a URI (s3://…, file://…)
    kind: str = "file"  # "checkpoint", "model", "file", …
    name: str | None = None  # defaults to the path's last component
    size_bytes: int | None = None
    sha256: str | None = None
    step: int | None = None
    stored: bool = False  # True when the server holds the bytes (an upload)


@dataclass(frozen=True, slots=True)
class Artifact:
    id: str
    run_id: str
    name: str
    path: str
    kind: str
    created_at: float
    size_bytes: int | None = None
    sha256: str | None = None
    step: int | None = None
    stored: bool = False


@dataclass(frozen=True, slots=True)
class LogLine:
    """One line a run's process wrote to stdout or stderr, as the client captured it.

    ``host`` is the node (SLURMD_NODENAME or the short host name) and ``rank`` the global
    rank of the process that wrote it (None when the sender did not say). ``id`` is given by
    the store (0 before the line is stored) and orders a run's lines as they arrived.
    """

    time: float
    stream: str  # "stdout" or "stderr"
    line: str
    host: str | None = None
    rank: int | None = None
    id: int = 0


@dataclass(frozen=True, slots=True)
class Batch:
    """One client batch, applied atomically and exactly once per (run, writer, seq).

    ``writer`` identifies one client process (random per ``runyard.init``); ``seq`` counts
    its batches from 1. ``run`` (create-if-missing) carries project/experiment *names* or an
    ``experiment_id``, so a run created offline can be synced later. See docs/protocol.md.
    """

    writer: str
    seq: int
    run: RunCreate | None = None
    project: str | None = None  # with ``experiment`` resolves/creates the experiment
    experiment: str | None = None
    metrics: dict[str, MetricColumns] = field(default_factory=dict)
    update: RunUpdate | None = None
    artifacts: tuple[ArtifactCreate, ...] = ()
    logs: tuple[LogLine, ...] = ()  # captured stdout/stderr lines, in the order written


@dataclass(frozen=True, slots=True)
class BatchResult:
    run_id: str
    seq: int
    duplicate: bool  # True when this (writer, seq) had been applied before: nothing changed
    points: int  # points stored by this call (0 for a duplicate)
    lines: int = 0  # console lines stored by this call (0 for a duplicate)


@dataclass(frozen=True, slots=True)
class RunQuery:
    """A page of runs: filters are ANDed.

    ``filters`` are parsed expressions such as ("params.lr", ">=", 0.01),
    ("metrics.loss.min", "<", 0.5), ("status", "=", "running"), ("tags", "=", "baseline"),
    ("name", "~", "resnet"). Operators: = != < <= > >= ~ (substring). ``sort`` is a field
    like "created_at", "name", "status", "params.lr" or "metrics.loss.last" (also .min .max
    .count); runs missing the sort field come last in either direction.
    """

    experiment_id: str | None = None
    project_id: str | None = None
    filters: tuple[tuple[str, str, Any], ...] = ()
    sort: str = "created_at"
    descending: bool = True
    limit: int = 50
    offset: int = 0
    with_total: bool = False
    metric_keys: tuple[str, ...] | None = None  # summaries to include; None = all


@dataclass(frozen=True, slots=True)
class RunPage:
    runs: tuple[Run, ...]
    offset: int
    limit: int
    next_offset: int | None
    total: int | None = None


@dataclass(frozen=True, slots=True)
class SweepJob:
    """One submission of a sweep's trials: an array job whose task ids are the trial indexes."""

    job_id: str
    base_id: str  # the runs' ids: array_run_id(base_id, task)
    first: int  # first trial index
    count: int
    submitted_at: float


@dataclass(frozen=True, slots=True)
class Sweep:
    """A hyper-parameter search: its spec (the YAML as submitted and what was parsed from it,
    as JSON), its jobs, and whether it was cancelled. Progress and the best trial are read
    from its runs (``Run.sweep_id``)."""

    id: str
    experiment_id: str
    project_id: str
    name: str
    method: str  # grid, random, list, adaptive
    created_at: float
    updated_at: float
    user_id: str | None
    spec_text: str
    spec: dict[str, Any]  # the parsed spec (JSON) the server acts on
    trial_count: int  # trials submitted so far
    jobs: tuple[SweepJob, ...] = ()
    cancelled_at: float | None = None


@dataclass(frozen=True, slots=True)
class PipelineStep:
    name: str
    run_id: str
    job_id: str | None
    after: tuple[tuple[str, str], ...]  # (earlier step, ok|any|notok)
    command: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Pipeline:
    id: str
    experiment_id: str
    project_id: str
    name: str
    created_at: float
    user_id: str | None
    spec_text: str
    steps: tuple[PipelineStep, ...]  # in submission order (every step after those it waits for)
