"""Request and response models: separate Create / Update / Read shapes per resource.

The models document the API in OpenAPI. Small bodies are validated by them; the ingestion
bodies (batches, metric points) are parsed by ``ingest.py`` by hand for speed, and these
models only describe them.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

NAME = Field(min_length=1, max_length=200)
Number = float | str  # finite numbers as numbers; "NaN", "Infinity", "-Infinity" as strings


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


# -- users and keys ----------------------------------------------------------------------
class UserCreate(Strict):
    username: str = NAME
    password: str | None = Field(default=None, min_length=8, max_length=1024)
    is_admin: bool = False


class UserRead(BaseModel):
    id: str
    username: str
    is_admin: bool
    created_at: float


class SessionCreate(Strict):
    """Sign in with an API key, or with a username and password; not both."""

    api_key: str | None = Field(default=None, max_length=200)
    username: str | None = Field(default=None, max_length=64)
    password: str | None = Field(default=None, max_length=1024)


class ApiKeyCreate(Strict):
    name: str = Field(default="", max_length=200)
    user_id: str | None = Field(default=None, description="Admins may create keys for other users")


class ApiKeyRead(BaseModel):
    id: str
    user_id: str
    name: str
    prefix: str
    created_at: float
    last_used_at: float | None = None
    revoked_at: float | None = None


class ApiKeyCreated(ApiKeyRead):
    key: str = Field(description="The secret; shown once, stored only as a hash")


# -- projects and experiments ------------------------------------------------------------
class ProjectCreate(Strict):
    name: str = NAME
    description: str = Field(default="", max_length=10_000)


class ProjectRead(BaseModel):
    id: str
    name: str
    description: str
    created_at: float
    owner_id: str | None = None


class ExperimentCreate(Strict):
    name: str = NAME
    project: str | None = Field(default=None, max_length=200, description="Project name (created if missing)")
    project_id: str | None = None
    description: str = Field(default="", max_length=10_000)
    exist_ok: bool = Field(default=False, description="Return the existing experiment instead of 409")


class ExperimentUpdate(Strict):
    name: str | None = Field(default=None, min_length=1, max_length=200)
    description: str | None = Field(default=None, max_length=10_000)


class ExperimentRead(BaseModel):
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


class ExperimentKeysRead(BaseModel):
    params: list[str]
    metrics: list[str]
    tags: list[str]
    sampled_runs: int


# -- runs --------------------------------------------------------------------------------
class MetricSummaryRead(BaseModel):
    key: str
    count: int
    last: Number | None
    last_step: int
    last_time: float
    min: Number | None
    max: Number | None


class RunRead(BaseModel):
    id: str
    experiment_id: str
    project_id: str
    name: str
    status: str
    created_at: float
    updated_at: float
    started_at: float | None = None
    ended_at: float | None = None
    user_id: str | None = None
    host: str | None = None
    config: dict[str, Any] = {}
    summary: dict[str, Any] = {}
    tags: list[str] = []
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
    slurm_state: str | None = Field(default=None, description="Slurm's last job state, e.g. PENDING")
    pending_reason: str | None = Field(default=None, description="Why a queued job waits, e.g. Resources")
    start_estimate: float | None = Field(default=None, description="Slurm's expected start (POSIX s)")
    state_unknown_since: float | None = Field(
        default=None, description="Slurm could not be asked about this job since then (POSIX s)"
    )
    slurm_done: bool = Field(default=False, description="Slurm's final state and accounting are in")
    slurm: dict[str, Any] = Field(
        default={}, description="Job details: requested resources, gpus, stdout/stderr paths, accounting"
    )
    metrics: dict[str, MetricSummaryRead] = {}
    sweep_id: str | None = Field(default=None, description="The sweep this run is a trial of")


class RunCreated(RunRead):
    run_id: str = Field(description="Same as id (seed 003 reads this key)")


class RunCreateBody(BaseModel):
    """Create a run. Seed 003's body (slurm_job_id, slurm_node, config, gpu_type, seed, …)
    is accepted as is: unknown top-level fields are merged into ``config``."""

    model_config = ConfigDict(extra="allow")
    id: str | None = Field(default=None, description="Client-chosen run id (else generated)")
    name: str = Field(default="", max_length=200)
    config: dict[str, Any] = {}
    tags: list[str] = []
    notes: str = ""
    status: str = "running"
    host: str | None = None
    gpu_type: str | None = None
    slurm_job_id: str | int | None = None
    slurm_node: str | None = None
    slurm_partition: str | None = None


class RunCreateWithExperiment(RunCreateBody):
    experiment_id: str | None = None
    project: str | None = None
    experiment: str | None = None


class RunBulkCreate(Strict):
    runs: list[RunCreateWithExperiment] = Field(min_length=1, max_length=10_000)


class RunUpdateBody(Strict):
    name: str | None = Field(default=None, max_length=200)
    status: str | None = None
    notes: str | None = Field(default=None, max_length=100_000)
    tags: list[str] | None = None
    tags_add: list[str] | None = None
    config: dict[str, Any] | None = None
    summary: dict[str, Any] | None = None
    exit_code: int | None = None
    started_at: float | None = None
    ended_at: float | None = None
    host: str | None = None


class RunBulkCreated(BaseModel):
    runs: list[RunRead]
    run_ids: list[str]


class RunPageRead(BaseModel):
    runs: list[RunRead]
    offset: int
    limit: int
    next_offset: int | None
    total: int | None = None


# -- metrics -----------------------------------------------------------------------------
class Columns(BaseModel):
    steps: list[int]
    times: list[float] | None = Field(default=None, description="POSIX seconds; default: now")
    values: list[Number]


class SlurmInfo(BaseModel):
    job_id: str | None = None
    array_job_id: str | None = None
    array_task_id: int | None = None
    nodes: str | None = None
    partition: str | None = None
    cluster: str | None = None


class BatchRun(BaseModel):
    project: str | None = None
    experiment: str | None = None
    experiment_id: str | None = None
    name: str = ""
    config: dict[str, Any] = {}
    tags: list[str] = []
    notes: str = ""
    host: str | None = None
    status: str = "running"
    started_at: float | None = None
    gpu_type: str | None = None
    slurm: SlurmInfo | None = None


class BatchUpdate(BaseModel):
    name: str | None = None
    status: str | None = None
    exit_code: int | None = None
    ended_at: float | None = None
    started_at: float | None = None
    notes: str | None = None
    config: dict[str, Any] | None = None
    summary: dict[str, Any] | None = None
    tags: list[str] | None = None
    tags_add: list[str] | None = None
    restart_count: int | None = None
    slurm: dict[str, Any] | None = Field(
        default=None,
        description="job_id, array_job_id, array_task_id, nodes, partition, and details such as "
        "stdout/stderr paths (merged key by key)",
    )


class ArtifactBody(BaseModel):
    """Record an artifact by path. Seed 003 sends ``type`` for ``kind``."""

    path: str = Field(min_length=1, max_length=4096)
    kind: str | None = Field(default=None, max_length=100)
    type: str | None = Field(default=None, max_length=100)
    name: str | None = Field(default=None, max_length=500)
    size_bytes: int | None = Field(default=None, ge=0)
    sha256: str | None = Field(default=None, pattern=r"^[0-9a-fA-F]{64}$")
    step: int | None = Field(default=None, ge=0)


class LogColumns(BaseModel):
    """Captured stdout/stderr lines as equally long columns, one entry per line, in the order
    they were written. Only ``lines`` is required."""

    times: list[float] | None = Field(default=None, description="POSIX seconds; default: now")
    streams: list[Literal["stdout", "stderr"]] | None = Field(default=None, description="Default: stdout")
    hosts: list[str | None] | None = Field(default=None, description="SLURMD_NODENAME or the short host name")
    ranks: list[int | None] | None = Field(default=None, description="Global rank of the writing process")
    lines: list[str] = Field(
        max_length=100_000, description="The lines without their newline, each at most 16,384 characters"
    )


class BatchIn(BaseModel):
    writer: str = Field(pattern=r"^[A-Za-z0-9_-]{8,64}$")
    seq: int = Field(ge=1)
    run: BatchRun | None = None
    metrics: dict[str, Columns] = {}
    update: BatchUpdate | None = None
    artifacts: list[ArtifactBody] = []
    logs: LogColumns | None = Field(default=None, description="Console lines the client captured")


class BatchOut(BaseModel):
    run_id: str
    seq: int
    duplicate: bool
    points: int


class ConsoleLineRead(BaseModel):
    id: int = Field(description="Orders a run's lines as they arrived; pass the last one as after_id")
    time: float = Field(description="When the client captured the line (POSIX s)")
    stream: str = Field(description="stdout or stderr")
    host: str | None = Field(description="Node of the process that wrote it")
    rank: int | None = Field(description="Global rank of the process that wrote it")
    line: str = Field(description="The line without its newline; a cut line ends with the client's mark")


class ConsoleRead(BaseModel):
    run_id: str
    stream: str | None = Field(description="The stream asked for; null: both, interleaved")
    lines: list[ConsoleLineRead]
    next_after_id: int = Field(description="Pass back as after_id to continue (follow)")
    more: bool = Field(description="The page is full: ask again at once for the rest")
    final: bool = Field(description="The run had ended when asked (late ranks may still send a few lines)")
    run_status: str


class MetricPointIn(BaseModel):
    name: str | None = Field(default=None, description="Metric key (``key`` is accepted too)")
    key: str | None = None
    value: Number
    step: int = Field(ge=0)
    timestamp: str | float | None = Field(default=None, description="ISO 8601 (naive = UTC) or POSIX s")


class MetricPointsIn(BaseModel):
    points: list[MetricPointIn]


class MetricBatchIn(BaseModel):
    """Seed 003's batch: several metrics at one step."""

    step: int = Field(ge=0)
    metrics: dict[str, Number]
    timestamp: str | float | None = None


class LoggedOut(BaseModel):
    points: int


class SeriesRead(BaseModel):
    key: str
    steps: list[int]
    times: list[float]
    values: list[Number]
    total: int
    downsampled: bool


class ErrorBody(BaseModel):
    code: str
    message: str
    field: str | None = None


class SeriesOfRunRead(SeriesRead):
    run_id: str


class SeriesErrorRead(BaseModel):
    run_id: str
    key: str
    error: ErrorBody


class SeriesBatchRead(BaseModel):
    series: list[SeriesOfRunRead | SeriesErrorRead] = Field(
        description="One entry per requested run, in the order asked: the series, or why there is none"
    )


class ArtifactRead(BaseModel):
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


# -- Slurm -------------------------------------------------------------------------------
class WebhookBody(BaseModel):
    """What the epilog script sends (JSON), or seed 003's form fields."""

    job_id: str = Field(description="Slurm job id (SLURM_JOB_ID)")
    array_job_id: str | None = Field(default=None, description="SLURM_ARRAY_JOB_ID of an array task")
    array_task_id: str | None = Field(default=None, description="SLURM_ARRAY_TASK_ID of an array task")
    exit_code: str | None = Field(default=None, description="3 or Slurm's 3:0 (code:signal)")
    restart_count: str | None = None
    status: str | None = Field(
        default=None, description="Seed 003: completed, failed, timeout, cancelled, oom, node_fail, …"
    )


class WebhookResult(BaseModel):
    received: bool
    runs: list[str] = Field(description="Runs of this job")
    source: str = Field(description="epilog (signed call) or user (admin API key)")
