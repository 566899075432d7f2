"""The one storage interface. ``SqlStore`` (store/sql/) implements it on SQLite and PostgreSQL.

All methods are synchronous and thread-safe: the server calls them from its thread pool.
"Not found" is raised here (``NotFound``), never re-checked by callers. Bad input that only
the store can judge (duplicate names, unknown run in a batch) raises ``InvalidInput`` /
``AlreadyExists`` naming the field; nothing stored is changed by a call that raises.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from runyard.entities import (
    ApiKey,
    Artifact,
    ArtifactCreate,
    Batch,
    BatchResult,
    Experiment,
    ExperimentKeys,
    LogLine,
    MetricColumns,
    MetricSeries,
    MetricSummary,
    Pipeline,
    PipelineStep,
    Project,
    Run,
    RunCreate,
    RunEvent,
    RunPage,
    RunQuery,
    RunUpdate,
    Sweep,
    SweepJob,
    User,
)
from runyard.lifecycle import NewEvent

__all__ = ["SchemaState", "Store"]


@dataclass(frozen=True, slots=True)
class SchemaState:
    current: str | None  # None: empty database, nothing created yet
    head: str  # the revision this Runyard needs

    @property
    def up_to_date(self) -> bool:
        return self.current == self.head


class Store(abc.ABC):
    # -- lifecycle ---------------------------------------------------------------------
    @abc.abstractmethod
    def schema_state(self) -> SchemaState: ...

    @abc.abstractmethod
    def upgrade(self) -> None:
        """Create or migrate the schema to head (``runyard db upgrade``)."""

    @abc.abstractmethod
    def close(self) -> None: ...

    # -- users and API keys --------------------------------------------------------------
    @abc.abstractmethod
    def create_user(self, username: str, *, password: str | None = None, is_admin: bool = False) -> User: ...

    @abc.abstractmethod
    def get_user(self, user_id: str) -> User: ...

    @abc.abstractmethod
    def get_user_by_name(self, username: str) -> User: ...

    @abc.abstractmethod
    def list_users(self) -> list[User]: ...

    @abc.abstractmethod
    def check_password(self, username: str, password: str) -> User:
        """The user, or ``Unauthorized`` (same message for unknown user and wrong password)."""

    @abc.abstractmethod
    def create_api_key(self, user_id: str, name: str = "") -> tuple[ApiKey, str]:
        """A new key and its secret, which is returned once and stored only as a hash."""

    @abc.abstractmethod
    def list_api_keys(self, user_id: str | None = None) -> list[ApiKey]: ...

    @abc.abstractmethod
    def revoke_api_key(self, key_id: str) -> ApiKey: ...

    @abc.abstractmethod
    def authenticate(self, secret: str) -> User:
        """The owner of a live key, or ``Unauthorized``."""

    @abc.abstractmethod
    def authenticate_key(self, secret: str) -> tuple[User, str]:
        """``authenticate``, plus the key's id."""

    # -- browser sessions ----------------------------------------------------------------
    @abc.abstractmethod
    def create_session(
        self, user_id: str, *, lifetime_s: float, key_id: str | None = None
    ) -> tuple[str, float]:
        """A new session token (returned once, stored as its SHA-256) and its expiry time;
        expired sessions are deleted. ``key_id``: the API key signed in with, if any."""

    @abc.abstractmethod
    def get_session_user(self, token: str, *, lifetime_s: float) -> User:
        """The owner of a live session, sliding its expiry to now + ``lifetime_s``;
        ``Unauthorized`` when unknown, expired, or the API key it signed in with is revoked."""

    @abc.abstractmethod
    def delete_session(self, token: str) -> bool:
        """Sign out; whether there was such a session."""

    # -- projects and experiments --------------------------------------------------------
    @abc.abstractmethod
    def create_project(self, name: str, *, description: str = "", owner_id: str | None = None) -> Project: ...

    @abc.abstractmethod
    def get_project(self, project_id: str) -> Project: ...

    @abc.abstractmethod
    def get_project_by_name(self, name: str) -> Project: ...

    @abc.abstractmethod
    def list_projects(self) -> list[Project]: ...

    @abc.abstractmethod
    def create_experiment(self, project_id: str, name: str, *, description: str = "") -> Experiment: ...

    @abc.abstractmethod
    def get_experiment(self, experiment_id: str) -> Experiment:
        """With run_count / running_count / queued_count / last_activity_at filled in."""

    @abc.abstractmethod
    def get_experiment_by_name(self, project_id: str, name: str) -> Experiment: ...

    @abc.abstractmethod
    def list_experiments(self, project_id: str | None = None) -> list[Experiment]: ...

    @abc.abstractmethod
    def experiment_keys(self, experiment_id: str, *, sample: int = 1000) -> ExperimentKeys:
        """Param keys, metric keys and tags of the experiment's newest ``sample`` runs."""

    @abc.abstractmethod
    def update_experiment(
        self, experiment_id: str, *, name: str | None = None, description: str | None = None
    ) -> Experiment: ...

    @abc.abstractmethod
    def ensure_experiment(self, project: str, experiment: str, *, owner_id: str | None = None) -> Experiment:
        """Get or create project and experiment by name (race-safe)."""

    # -- runs --------------------------------------------------------------------------
    @abc.abstractmethod
    def create_run(self, run: RunCreate) -> Run:
        """``AlreadyExists`` when ``run.id`` is taken; ``NotFound`` for an unknown experiment."""

    @abc.abstractmethod
    def create_runs(self, runs: list[RunCreate]) -> list[Run]:
        """Create several runs in one transaction (a sweep's trials): all or none."""

    @abc.abstractmethod
    def get_run(self, run_id: str, *, with_metrics: bool = True) -> Run: ...

    @abc.abstractmethod
    def get_runs(self, run_ids: Sequence[str]) -> list[Run]:
        """Several runs (without metric summaries) in the order asked; unknown ids are left out."""

    @abc.abstractmethod
    def find_runs_by_slurm_job(self, slurm_job_id: str) -> list[Run]: ...

    @abc.abstractmethod
    def update_run(self, run_id: str, update: RunUpdate) -> Run: ...

    @abc.abstractmethod
    def search_runs(self, query: RunQuery) -> RunPage: ...

    # -- run history and the Slurm watcher ------------------------------------------------
    @abc.abstractmethod
    def transition_run(
        self, run_id: str, decide: Callable[[Run], tuple[RunUpdate | None, list[NewEvent]]]
    ) -> tuple[Run, bool]:
        """Apply ``decide(run)`` (a pure rule of ``runyard.lifecycle``) under the run's lock, in
        one transaction with its events; returns (the run after, whether anything changed)."""

    @abc.abstractmethod
    def transition_runs(
        self, decisions: Sequence[tuple[str, Callable[[Run], tuple[RunUpdate | None, list[NewEvent]]]]]
    ) -> int:
        """``transition_run`` for many runs in one transaction (the watcher's cycle); how many
        changed. A run that no longer exists is skipped."""

    @abc.abstractmethod
    def record_events(self, run_id: str, events: list[NewEvent]) -> None: ...

    @abc.abstractmethod
    def list_run_events(self, run_id: str, *, after_id: int = 0, limit: int = 1000) -> list[RunEvent]:
        """A run's history, oldest first; ``after_id`` pages (and follows) it."""

    @abc.abstractmethod
    def slurm_tracked_runs(self, limit: int | None = None) -> list[Run]:
        """Runs with a Slurm job whose final state and accounting are not recorded yet (no metrics)."""

    @abc.abstractmethod
    def mark_state_unknown(self, run_ids: list[str], since: float) -> int:
        """Slurm could not be asked about these runs since ``since`` (first failure kept)."""

    # -- metrics -----------------------------------------------------------------------
    @abc.abstractmethod
    def log_metrics(self, run_id: str, metrics: dict[str, MetricColumns]) -> int:
        """Append points (not deduplicated; see ``apply_batch``); returns the number stored."""

    @abc.abstractmethod
    def apply_batch(self, run_id: str, batch: Batch) -> BatchResult:
        """Apply a client batch atomically, exactly once per (run_id, writer, seq).

        Creates the run first when ``batch.run`` is set and the run does not exist (resolving
        ``batch.project``/``batch.experiment`` names when ``batch.run.experiment_id`` is
        empty); then metrics, then ``batch.update``, then artifacts, then console lines. A
        replayed batch returns ``duplicate=True`` and changes nothing.
        """

    @abc.abstractmethod
    def list_log_lines(
        self,
        run_id: str,
        *,
        stream: str | None = None,
        after_id: int = 0,
        limit: int = 1000,
        newest: bool = False,
    ) -> list[LogLine]:
        """The console lines the client captured (with their ``id``), oldest first, with
        ``id > after_id`` (which pages and follows them); ``stream`` keeps one of stdout and
        stderr; ``newest`` gives the last ``limit`` lines instead of the first."""

    @abc.abstractmethod
    def metric_summaries(self, run_id: str) -> list[MetricSummary]: ...

    @abc.abstractmethod
    def metric_series(
        self,
        run_id: str,
        key: str,
        *,
        max_points: int | None = None,
        step_min: int | None = None,
        step_max: int | None = None,
    ) -> MetricSeries:
        """The series ordered by step; with ``max_points`` a min/max-preserving downsample."""

    # -- artifacts ---------------------------------------------------------------------
    @abc.abstractmethod
    def create_artifact(self, run_id: str, artifact: ArtifactCreate) -> Artifact: ...

    @abc.abstractmethod
    def list_artifacts(self, run_id: str) -> list[Artifact]: ...

    @abc.abstractmethod
    def get_artifact(self, artifact_id: str) -> Artifact: ...

    # -- sweeps and pipelines ------------------------------------------------------------
    @abc.abstractmethod
    def create_sweep(
        self,
        *,
        experiment_id: str,
        user_id: str | None,
        name: str,
        method: str,
        spec_text: str,
        spec: dict[str, Any],
        sweep_id: str | None = None,
    ) -> Sweep: ...

    @abc.abstractmethod
    def get_sweep(self, sweep_id: str) -> Sweep: ...

    @abc.abstractmethod
    def list_sweeps(self, experiment_id: str) -> list[Sweep]:
        """Newest first."""

    @abc.abstractmethod
    def add_sweep_job(self, sweep_id: str, job: SweepJob) -> Sweep:
        """Record a submitted array job; the trial count grows to cover its tasks."""

    @abc.abstractmethod
    def cancel_sweep(self, sweep_id: str) -> Sweep:
        """Mark the sweep cancelled (once; a second call changes nothing)."""

    @abc.abstractmethod
    def sweep_runs(self, sweep_id: str, metric_keys: Sequence[str] = ()) -> list[Run]:
        """The sweep's trials in trial order, with the summaries of ``metric_keys`` only."""

    @abc.abstractmethod
    def create_pipeline(
        self,
        *,
        pipeline_id: str,
        experiment_id: str,
        user_id: str | None,
        name: str,
        spec_text: str,
        steps: Sequence[PipelineStep],
    ) -> Pipeline: ...

    @abc.abstractmethod
    def get_pipeline(self, pipeline_id: str) -> Pipeline: ...

    @abc.abstractmethod
    def list_pipelines(self, experiment_id: str) -> list[Pipeline]:
        """Newest first."""
