"""``SqlStore``: the ``Store`` interface on SQLAlchemy Core, for SQLite and PostgreSQL.

This class only opens transactions and delegates; the SQL lives in one module per concern
(users, projects, runs, metrics, series, search, artifacts, batch). Every method runs in one
transaction (``Database.write`` or ``Database.read``), so a method that raises changes nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
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
from runyard.errors import InvalidInput
from runyard.lifecycle import NewEvent
from runyard.store.base import SchemaState, Store
from runyard.store.sql import artifacts as artifacts_sql
from runyard.store.sql import batch as batch_sql
from runyard.store.sql import console as console_sql
from runyard.store.sql import events as events_sql
from runyard.store.sql import migrate
from runyard.store.sql import projects as projects_sql
from runyard.store.sql import runs as runs_sql
from runyard.store.sql import sessions as sessions_sql
from runyard.store.sql import sweeps as sweeps_sql
from runyard.store.sql import users as users_sql
from runyard.store.sql.engine import Database
from runyard.store.sql.metrics import DEFAULT_CHUNK_SIZE, ROLLUP_SIZE, load_summaries
from runyard.store.sql.search import search_runs
from runyard.store.sql.series import read_series

__all__ = ["SqlStore"]


class SqlStore(Store):
    """A store on ``sqlite:///PATH`` or ``postgresql+psycopg://…``.

    ``chunk_size`` is the number of points per stored chunk for metric keys created from now
    on (existing keys keep the size they were created with); a multiple of 64.
    The schema is not created or migrated here: call ``upgrade()`` (``runyard db upgrade``).
    """

    def __init__(self, url: str, *, chunk_size: int = DEFAULT_CHUNK_SIZE) -> None:
        if chunk_size < ROLLUP_SIZE or chunk_size % ROLLUP_SIZE:
            raise InvalidInput(f"chunk_size must be a positive multiple of {ROLLUP_SIZE}", field="chunk_size")
        self._db = Database(url)
        self._chunk_size = chunk_size

    def __repr__(self) -> str:
        return f"SqlStore({self._db.url.render_as_string(hide_password=True)!r})"

    @property
    def database(self) -> Database:
        return self._db

    # -- lifecycle ---------------------------------------------------------------------
    def schema_state(self) -> SchemaState:
        return migrate.schema_state(self._db)

    def upgrade(self) -> None:
        migrate.upgrade(self._db)

    def close(self) -> None:
        self._db.dispose()

    # -- users and API keys ------------------------------------------------------------
    def create_user(self, username: str, *, password: str | None = None, is_admin: bool = False) -> User:
        with self._db.write() as conn:
            return users_sql.create_user(self._db, conn, username, password, is_admin)

    def get_user(self, user_id: str) -> User:
        with self._db.read() as conn:
            return users_sql.get_user(conn, user_id)

    def get_user_by_name(self, username: str) -> User:
        with self._db.read() as conn:
            return users_sql.get_user_by_name(conn, username)

    def list_users(self) -> list[User]:
        with self._db.read() as conn:
            return users_sql.list_users(conn)

    def check_password(self, username: str, password: str) -> User:
        return users_sql.check_password(self._db, username, password)

    def create_api_key(self, user_id: str, name: str = "") -> tuple[ApiKey, str]:
        with self._db.write() as conn:
            return users_sql.create_api_key(conn, user_id, name)

    def list_api_keys(self, user_id: str | None = None) -> list[ApiKey]:
        with self._db.read() as conn:
            return users_sql.list_api_keys(conn, user_id)

    def revoke_api_key(self, key_id: str) -> ApiKey:
        with self._db.write() as conn:
            return users_sql.revoke_api_key(conn, key_id)

    def authenticate(self, secret: str) -> User:
        return users_sql.authenticate(self._db, secret)

    def authenticate_key(self, secret: str) -> tuple[User, str]:
        return users_sql.authenticate_key(self._db, secret)

    # -- browser sessions --------------------------------------------------------------
    def create_session(
        self, user_id: str, *, lifetime_s: float, key_id: str | None = None
    ) -> tuple[str, float]:
        return sessions_sql.create_session(self._db, user_id, lifetime_s, key_id)

    def get_session_user(self, token: str, *, lifetime_s: float) -> User:
        return sessions_sql.get_session_user(self._db, token, lifetime_s)

    def delete_session(self, token: str) -> bool:
        return sessions_sql.delete_session(self._db, token)

    # -- projects and experiments ------------------------------------------------------
    def create_project(self, name: str, *, description: str = "", owner_id: str | None = None) -> Project:
        with self._db.write() as conn:
            return projects_sql.create_project(self._db, conn, name, description, owner_id)

    def get_project(self, project_id: str) -> Project:
        with self._db.read() as conn:
            return projects_sql.get_project(conn, project_id)

    def get_project_by_name(self, name: str) -> Project:
        with self._db.read() as conn:
            return projects_sql.get_project_by_name(conn, name)

    def list_projects(self) -> list[Project]:
        with self._db.read() as conn:
            return projects_sql.list_projects(conn)

    def create_experiment(self, project_id: str, name: str, *, description: str = "") -> Experiment:
        with self._db.write() as conn:
            return projects_sql.create_experiment(self._db, conn, project_id, name, description)

    def get_experiment(self, experiment_id: str) -> Experiment:
        with self._db.read() as conn:
            return projects_sql.get_experiment(conn, experiment_id)

    def get_experiment_by_name(self, project_id: str, name: str) -> Experiment:
        with self._db.read() as conn:
            return projects_sql.get_experiment_by_name(conn, project_id, name)

    def list_experiments(self, project_id: str | None = None) -> list[Experiment]:
        with self._db.read() as conn:
            return projects_sql.list_experiments(conn, project_id)

    def experiment_keys(self, experiment_id: str, *, sample: int = 1000) -> ExperimentKeys:
        with self._db.read() as conn:
            return projects_sql.experiment_keys(conn, experiment_id, sample)

    def update_experiment(
        self, experiment_id: str, *, name: str | None = None, description: str | None = None
    ) -> Experiment:
        with self._db.write() as conn:
            return projects_sql.update_experiment(conn, experiment_id, name, description)

    def ensure_experiment(self, project: str, experiment: str, *, owner_id: str | None = None) -> Experiment:
        with self._db.write() as conn:
            return projects_sql.ensure_experiment(self._db, conn, project, experiment, owner_id)

    # -- runs --------------------------------------------------------------------------
    def create_run(self, run: RunCreate) -> Run:
        with self._db.write() as conn:
            _, values = runs_sql.insert_run(self._db, conn, run)
            assert values is not None  # without if_missing an existing id raises
            return runs_sql.run_from_row(values)

    def create_runs(self, runs: list[RunCreate]) -> list[Run]:
        with self._db.write() as conn:
            return [runs_sql.run_from_row(values) for values in runs_sql.insert_runs(self._db, conn, runs)]

    def get_run(self, run_id: str, *, with_metrics: bool = True) -> Run:
        with self._db.read() as conn:
            row = runs_sql.get_run_row(conn, run_id)
            metrics = load_summaries(conn, [run_id])[run_id] if with_metrics else None
            return runs_sql.run_from_row(row, metrics)

    def get_runs(self, run_ids: Sequence[str]) -> list[Run]:
        with self._db.read() as conn:
            return runs_sql.get_runs(conn, run_ids)

    def find_runs_by_slurm_job(self, slurm_job_id: str) -> list[Run]:
        with self._db.read() as conn:
            rows = runs_sql.find_by_slurm_job(conn, slurm_job_id)
            summaries = load_summaries(conn, [r["id"] for r in rows])
            return [runs_sql.run_from_row(r, summaries[r["id"]]) for r in rows]

    def update_run(self, run_id: str, update: RunUpdate) -> Run:
        with self._db.write() as conn:
            runs_sql.update_run(conn, run_id, update)
            row = runs_sql.get_run_row(conn, run_id)
            return runs_sql.run_from_row(row, load_summaries(conn, [run_id])[run_id])

    def search_runs(self, query: RunQuery) -> RunPage:
        with self._db.read() as conn:
            return search_runs(conn, query)

    # -- run history and the Slurm watcher ------------------------------------------------
    def transition_run(
        self, run_id: str, decide: Callable[[Run], tuple[RunUpdate | None, list[NewEvent]]]
    ) -> tuple[Run, bool]:
        with self._db.write() as conn:
            run, changed = events_sql.transition(conn, run_id, decide)
            assert run is not None
            return run, changed

    def transition_runs(
        self, decisions: Sequence[tuple[str, Callable[[Run], tuple[RunUpdate | None, list[NewEvent]]]]]
    ) -> int:
        with self._db.write() as conn:
            return events_sql.transition_many(conn, decisions)

    def record_events(self, run_id: str, events: list[NewEvent]) -> None:
        with self._db.write() as conn:
            runs_sql.get_run_row(conn, run_id)
            events_sql.insert_events(conn, run_id, events)

    def list_run_events(self, run_id: str, *, after_id: int = 0, limit: int = 1000) -> list[RunEvent]:
        with self._db.read() as conn:
            return events_sql.list_events(conn, run_id, after_id, limit)

    def slurm_tracked_runs(self, limit: int | None = None) -> list[Run]:
        with self._db.read() as conn:
            return events_sql.slurm_tracked(conn, limit)

    def mark_state_unknown(self, run_ids: list[str], since: float) -> int:
        with self._db.write() as conn:
            return events_sql.mark_state_unknown(conn, run_ids, since)

    # -- metrics -----------------------------------------------------------------------
    def log_metrics(self, run_id: str, metrics: dict[str, MetricColumns]) -> int:
        with self._db.write() as conn:
            return batch_sql.log_metrics(conn, run_id, metrics, self._chunk_size)

    def apply_batch(self, run_id: str, batch: Batch) -> BatchResult:
        with self._db.write() as conn:
            return batch_sql.apply_batch(self._db, conn, run_id, batch, self._chunk_size)

    def list_log_lines(
        self,
        run_id: str,
        *,
        stream: str | None = None,
        after_id: int = 0,
        limit: int = 1000,
        newest: bool = False,
    ) -> list[LogLine]:
        with self._db.read() as conn:
            return console_sql.list_log_lines(
                conn, run_id, stream=stream, after_id=after_id, limit=limit, newest=newest
            )

    def metric_summaries(self, run_id: str) -> list[MetricSummary]:
        with self._db.read() as conn:
            runs_sql.get_run_row(conn, run_id)
            return list(load_summaries(conn, [run_id])[run_id].values())

    def metric_series(
        self,
        run_id: str,
        key: str,
        *,
        max_points: int | None = None,
        step_min: int | None = None,
        step_max: int | None = None,
    ) -> MetricSeries:
        with self._db.read() as conn:
            return read_series(conn, run_id, key, max_points=max_points, step_min=step_min, step_max=step_max)

    # -- artifacts ---------------------------------------------------------------------
    def create_artifact(self, run_id: str, artifact: ArtifactCreate) -> Artifact:
        with self._db.write() as conn:
            if runs_sql.lock_run(conn, run_id) is None:
                runs_sql.get_run_row(conn, run_id)  # raises NotFound
            art = artifacts_sql.insert_artifact(conn, run_id, artifact)
            runs_sql.touch_run(conn, run_id)
            return art

    def list_artifacts(self, run_id: str) -> list[Artifact]:
        with self._db.read() as conn:
            runs_sql.get_run_row(conn, run_id)
            return artifacts_sql.list_artifacts(conn, run_id)

    def get_artifact(self, artifact_id: str) -> Artifact:
        with self._db.read() as conn:
            return artifacts_sql.get_artifact(conn, artifact_id)

    # -- sweeps and pipelines ------------------------------------------------------------
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
    ) -> Sweep:
        with self._db.write() as conn:
            return sweeps_sql.insert_sweep(
                conn,
                experiment_id=experiment_id,
                user_id=user_id,
                name=name,
                method=method,
                spec_text=spec_text,
                spec=spec,
                sweep_id=sweep_id,
            )

    def get_sweep(self, sweep_id: str) -> Sweep:
        with self._db.read() as conn:
            return sweeps_sql.get_sweep(conn, sweep_id)

    def list_sweeps(self, experiment_id: str) -> list[Sweep]:
        with self._db.read() as conn:
            return sweeps_sql.list_sweeps(conn, experiment_id)

    def add_sweep_job(self, sweep_id: str, job: SweepJob) -> Sweep:
        with self._db.write() as conn:
            return sweeps_sql.add_sweep_job(conn, sweep_id, job)

    def cancel_sweep(self, sweep_id: str) -> Sweep:
        with self._db.write() as conn:
            return sweeps_sql.cancel_sweep(conn, sweep_id)

    def sweep_runs(self, sweep_id: str, metric_keys: Sequence[str] = ()) -> list[Run]:
        with self._db.read() as conn:
            return sweeps_sql.sweep_runs(conn, sweep_id, metric_keys)

    def create_pipeline(
        self,
        *,
        pipeline_id: str,
        experiment_id: str,
        user_id: str | None,
        name: str,
        spec_text: str,
        steps: Sequence[PipelineStep],
    ) -> Pipeline:
        with self._db.write() as conn:
            return sweeps_sql.insert_pipeline(
                conn,
                pipeline_id=pipeline_id,
                experiment_id=experiment_id,
                user_id=user_id,
                name=name,
                spec_text=spec_text,
                steps=steps,
            )

    def get_pipeline(self, pipeline_id: str) -> Pipeline:
        with self._db.read() as conn:
            return sweeps_sql.get_pipeline(conn, pipeline_id)

    def list_pipelines(self, experiment_id: str) -> list[Pipeline]:
        with self._db.read() as conn:
            return sweeps_sql.list_pipelines(conn, experiment_id)
