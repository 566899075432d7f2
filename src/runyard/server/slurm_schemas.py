"""Response models of the job endpoints (logs, events, cluster, cancel/requeue, efficiency).

They document the answers in OpenAPI; handlers build the JSON themselves (``JsonResponse``).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from runyard.server.schemas import RunRead

__all__ = [
    "ClusterRead",
    "EfficiencyRead",
    "EventsRead",
    "JobActionRead",
    "LogsRead",
    "MyRunsRead",
]


class LogLine(BaseModel):
    offset: int = Field(description="Byte offset of the line in the file")
    text: str


class LogsRead(BaseModel):
    run_id: str
    stream: str = Field(description="stdout or stderr")
    path: str = Field(description="The file read, symlinks resolved")
    same_file: bool = Field(description="stdout and stderr go to this one file")
    offset: int = Field(description="Where this window starts (0 after a reset)")
    next_offset: int = Field(description="Pass back as offset to continue (follow)")
    size: int = Field(description="The file's size when read")
    eof: bool = Field(
        description="The window reached the end of the file (a partial last line may wait there): "
        "a follower pauses before asking again"
    )
    reset: bool = Field(description="The file was shorter than the offset asked: read again from 0")
    final: bool = Field(description="The run has ended: nothing more will be written")
    run_status: str
    lines: list[LogLine] = Field(description="Whole lines; a partial last line waits unless final")


class EventRead(BaseModel):
    id: int
    run_id: str
    time: float
    source: str = Field(description="client, job, slurm, epilog, user or server")
    kind: str
    status: str | None = None
    message: str = ""
    data: dict[str, Any] = {}


class EventsRead(BaseModel):
    run_id: str
    events: list[EventRead]
    next_after_id: int = Field(description="Pass back as after_id to get only newer events")


class NodeRead(BaseModel):
    name: str
    state: str
    cpus_alloc: int
    cpus_total: int
    gpus_used: int
    gpus_total: int
    memory_alloc_mb: int
    memory_total_mb: int
    partitions: list[str]
    reason: str | None = None


class PartitionRead(BaseModel):
    name: str
    state: str
    default: bool
    max_time_min: int | None = Field(description="None: no limit")
    default_time_min: int | None
    nodes: str | None
    total_nodes: int
    total_cpus: int
    gpus: int
    memory_mb: int | None


class QueueRow(BaseModel):
    id: str = Field(description="As squeue shows it: 123, 123_4, or 123_[5-9%2] for an array's pending rest")
    job_id: int
    array_job_id: int | None
    array_task_id: int | None
    name: str
    user: str | None
    state: str
    reason: str | None = Field(description="Why a pending job waits, e.g. Resources, Priority")
    partition: str | None
    nodes: str | None
    gpus_per_node: int
    time_limit_min: int | None
    submit_time: int | None
    start_time: int | None
    start_estimate: int | None = Field(description="Slurm's expected start of a pending job (POSIX s)")
    restart_count: int
    run_id: str | None = Field(description="The Runyard run of this job, when it is tracked")
    run_ids: list[str]


class ExperimentGpuHours(BaseModel):
    experiment_id: str
    experiment: str | None
    project_id: str
    runs: int
    gpu_hours: float
    my_gpu_hours: float


class GpuHoursRead(BaseModel):
    experiments: list[ExperimentGpuHours]
    scanned_runs: int
    truncated: bool = Field(description="More ended runs exist than were scanned")


class ClusterRead(BaseModel):
    executor: str = Field(description="slurm or local")
    taken_at: float
    nodes: list[NodeRead]
    partitions: list[PartitionRead]
    queue: list[QueueRow]
    mine: list[QueueRow] = Field(description="The queue rows of the requesting user's runs")
    gpu_hours: GpuHoursRead = Field(description="GPU-hours of ended runs with Slurm accounting")
    errors: dict[str, str] = Field(description="nodes / partitions / queue: why that part is empty")


class MyRunsRead(BaseModel):
    runs: list[RunRead]


class JobActionRead(BaseModel):
    run_id: str
    job_id: str
    action: str = Field(description="cancel or requeue")
    message: str


class EfficiencyRead(BaseModel):
    run_id: str
    status: str
    slurm_state: str | None
    final: bool = Field(description="Slurm's final accounting is in")
    time: dict[str, Any] = Field(description="elapsed_s, time_limit_min, fraction_used, note")
    cpu: dict[str, Any] = Field(
        description="alloc_cpus, total_cpu_s, avg_cpus_used, efficiency, source, note"
    )
    memory: dict[str, Any] = Field(description="max_rss_bytes, req_mem_bytes, fraction_used, source, note")
    gpu: dict[str, Any] = Field(description="gpus, gpu_hours, util_mean_pct, util_by_device, note")
    advice: list[str]
