"""The tables, as SQLAlchemy Core ``MetaData``. Alembic migrations create them; this module
must describe exactly what ``migrations/versions`` builds (a test compares the two).

Conventions:
- ids are ``String(32)`` uuid4 hex, except run ids (``String(64)``), which clients may choose;
- times are POSIX seconds as ``Double``;
- JSON documents (run config, summary, tags) are ``Text`` written with ``json.dumps``;
- SQLite: small tables keyed by a composite primary key are ``WITHOUT ROWID`` so the key is
  the clustered order (all params, summaries and batch marks of a run sit together).

Metric points live in ``metric_chunks``: chunk ``k`` of a (run, key) holds points
``[k*C, (k+1)*C)`` in insertion order, where ``C`` is that key's ``chunk_size`` recorded in
``metric_summaries``. Each chunk stores its columns as raw little-endian arrays (int64 steps,
float64 values and times) plus a rollup (min and max point of every 64-point block) that
downsampled reads use instead of the points. Blob columns come last in each row and the
rollup before the big arrays: SQLite then reads a chunk's metadata and rollup without
walking the overflow pages of its points.
"""

from __future__ import annotations

import sqlalchemy as sa

__all__ = [
    "api_keys",
    "applied_batches",
    "artifacts",
    "experiments",
    "metadata",
    "metric_chunks",
    "metric_summaries",
    "pipelines",
    "projects",
    "run_events",
    "run_logs",
    "run_params",
    "run_tags",
    "runs",
    "sessions",
    "sweeps",
    "users",
]

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = sa.MetaData(naming_convention=NAMING)

ID = sa.String(32)
RUN_ID = sa.String(64)
NAME = sa.String(200)
METRIC_KEY = sa.String(250)


def _time(name: str, *, nullable: bool = False) -> sa.Column[float]:
    return sa.Column(name, sa.Double(), nullable=nullable)


users = sa.Table(
    "users",
    metadata,
    sa.Column("id", ID, primary_key=True),
    sa.Column("username", sa.String(64), nullable=False, unique=True),
    sa.Column("password_hash", sa.Text(), nullable=True),
    sa.Column("is_admin", sa.Boolean(), nullable=False),
    _time("created_at"),
)

api_keys = sa.Table(
    "api_keys",
    metadata,
    sa.Column("id", ID, primary_key=True),
    sa.Column("user_id", ID, sa.ForeignKey("users.id"), nullable=False, index=True),
    sa.Column("name", NAME, nullable=False),
    sa.Column("prefix", sa.String(16), nullable=False),
    # sha256 hex of the whole secret; the secret itself is never stored
    sa.Column("secret_hash", sa.String(64), nullable=False, unique=True),
    _time("created_at"),
    _time("last_used_at", nullable=True),
    _time("revoked_at", nullable=True),
)

# Browser sign-in sessions (added by 0002_slurm). Like API keys, only the sha256 hex of the
# cookie's token is stored. ``key_id``: the API key signed in with (None for a password); the
# session ends when that key is revoked.
sessions = sa.Table(
    "sessions",
    metadata,
    sa.Column("token_hash", sa.String(64), primary_key=True),
    sa.Column("user_id", ID, sa.ForeignKey("users.id"), nullable=False, index=True),
    sa.Column("key_id", ID, sa.ForeignKey("api_keys.id"), nullable=True),
    _time("created_at"),
    _time("expires_at"),
    _time("last_seen_at"),
    sa.Index("ix_sessions_expires_at", "expires_at"),
)

projects = sa.Table(
    "projects",
    metadata,
    sa.Column("id", ID, primary_key=True),
    sa.Column("name", NAME, nullable=False, unique=True),
    sa.Column("description", sa.Text(), nullable=False),
    _time("created_at"),
    sa.Column("owner_id", ID, sa.ForeignKey("users.id"), nullable=True),
)

experiments = sa.Table(
    "experiments",
    metadata,
    sa.Column("id", ID, primary_key=True),
    sa.Column("project_id", ID, sa.ForeignKey("projects.id"), nullable=False),
    sa.Column("name", NAME, nullable=False),
    sa.Column("description", sa.Text(), nullable=False),
    _time("created_at"),
    _time("updated_at"),
    sa.UniqueConstraint("project_id", "name"),
)

runs = sa.Table(
    "runs",
    metadata,
    sa.Column("id", RUN_ID, primary_key=True),
    sa.Column("experiment_id", ID, sa.ForeignKey("experiments.id"), nullable=False),
    sa.Column("project_id", ID, sa.ForeignKey("projects.id"), nullable=False),
    sa.Column("name", NAME, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    _time("created_at"),
    _time("updated_at"),
    _time("started_at", nullable=True),
    _time("ended_at", nullable=True),
    sa.Column("user_id", ID, sa.ForeignKey("users.id"), nullable=True),
    sa.Column("host", sa.Text(), nullable=True),
    sa.Column("config", sa.Text(), nullable=False),  # JSON object
    sa.Column("summary", sa.Text(), nullable=False),  # JSON object
    sa.Column("tags", sa.Text(), nullable=False),  # JSON list, display order; run_tags filters
    sa.Column("notes", sa.Text(), nullable=False),
    sa.Column("exit_code", sa.Integer(), nullable=True),
    sa.Column("gpu_type", sa.Text(), nullable=True),
    sa.Column("slurm_job_id", sa.String(64), nullable=True),
    sa.Column("slurm_array_job_id", sa.String(64), nullable=True),
    sa.Column("slurm_array_task_id", sa.Integer(), nullable=True),
    sa.Column("slurm_nodes", sa.Text(), nullable=True),
    sa.Column("slurm_partition", sa.Text(), nullable=True),
    sa.Column("slurm_cluster", sa.Text(), nullable=True),
    sa.Column("restart_count", sa.Integer(), nullable=False),
    # added by 0002_slurm: what Slurm last said, and the details (JSON object)
    sa.Column("slurm_state", sa.String(32), nullable=True),
    sa.Column("pending_reason", sa.Text(), nullable=True),
    sa.Column("start_estimate", sa.Double(), nullable=True),
    sa.Column("state_unknown_since", sa.Double(), nullable=True),
    sa.Column("slurm_done", sa.Boolean(), nullable=False, server_default=sa.false()),
    sa.Column("slurm", sa.Text(), nullable=False, server_default="{}"),
    sa.Column("sweep_id", ID, nullable=True),  # a sweep's trial (its array task id is the trial index)
    # the run table's default order and the experiment counters are index-only
    sa.Index("ix_runs_experiment_created", "experiment_id", "created_at", "id"),
    sa.Index("ix_runs_experiment_updated", "experiment_id", "updated_at"),
    sa.Index("ix_runs_experiment_status", "experiment_id", "status", "updated_at"),
    sa.Index("ix_runs_experiment_name", "experiment_id", "name"),
    sa.Index("ix_runs_project_created", "project_id", "created_at", "id"),
    sa.Index("ix_runs_created", "created_at", "id"),
    sa.Index("ix_runs_slurm_job", "slurm_job_id"),
    sa.Index("ix_runs_slurm_array", "slurm_array_job_id", "slurm_array_task_id"),
    sa.Index("ix_runs_user", "user_id"),
    # the watcher's question: which jobs still need Slurm's word
    sa.Index("ix_runs_slurm_pending", "slurm_done", "slurm_job_id"),
    sa.Index("ix_runs_sweep", "sweep_id", "slurm_array_task_id"),
)

# A hyper-parameter search: the YAML as submitted, the parsed spec (JSON) and its array jobs
# (JSON list). Its trials are the runs with its ``sweep_id``.
sweeps = sa.Table(
    "sweeps",
    metadata,
    sa.Column("id", ID, primary_key=True),
    sa.Column("experiment_id", ID, sa.ForeignKey("experiments.id"), nullable=False),
    sa.Column("project_id", ID, sa.ForeignKey("projects.id"), nullable=False),
    sa.Column("user_id", ID, sa.ForeignKey("users.id"), nullable=True),
    sa.Column("name", NAME, nullable=False),
    sa.Column("method", sa.String(16), nullable=False),
    _time("created_at"),
    _time("updated_at"),
    sa.Column("spec_text", sa.Text(), nullable=False),
    sa.Column("spec", sa.Text(), nullable=False),
    sa.Column("trial_count", sa.Integer(), nullable=False),
    sa.Column("jobs", sa.Text(), nullable=False),
    _time("cancelled_at", nullable=True),
    sa.Index("ix_sweeps_experiment_created", "experiment_id", "created_at"),
)

# Steps submitted as Slurm jobs chained with --dependency: the YAML and, per step (JSON list),
# its run, job and the steps it waits for.
pipelines = sa.Table(
    "pipelines",
    metadata,
    sa.Column("id", ID, primary_key=True),
    sa.Column("experiment_id", ID, sa.ForeignKey("experiments.id"), nullable=False),
    sa.Column("project_id", ID, sa.ForeignKey("projects.id"), nullable=False),
    sa.Column("user_id", ID, sa.ForeignKey("users.id"), nullable=True),
    sa.Column("name", NAME, nullable=False),
    _time("created_at"),
    sa.Column("spec_text", sa.Text(), nullable=False),
    sa.Column("steps", sa.Text(), nullable=False),
    sa.Index("ix_pipelines_experiment_created", "experiment_id", "created_at"),
)

# A run's history, oldest first (``id`` orders it).
run_events = sa.Table(
    "run_events",
    metadata,
    sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
    sa.Column("run_id", RUN_ID, sa.ForeignKey("runs.id"), nullable=False),
    _time("time"),
    sa.Column("source", sa.String(16), nullable=False),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("status", sa.String(16), nullable=True),
    sa.Column("message", sa.Text(), nullable=False),
    sa.Column("data", sa.Text(), nullable=False),  # JSON object
    sa.Index("ix_run_events_run", "run_id", "id"),
)

# Lines the client captured from the run's stdout/stderr, in the order they arrived (``id``).
# BIGINT on PostgreSQL (a busy server stores billions of lines); SQLite's INTEGER PRIMARY KEY
# is its 64-bit rowid.
LOG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

run_logs = sa.Table(
    "run_logs",
    metadata,
    sa.Column("id", LOG_ID, primary_key=True, autoincrement=True),
    sa.Column("run_id", RUN_ID, sa.ForeignKey("runs.id"), nullable=False),
    _time("time"),
    sa.Column("stream", sa.String(8), nullable=False),
    sa.Column("host", sa.String(255), nullable=True),
    sa.Column("rank", sa.Integer(), nullable=True),
    sa.Column("line", sa.Text(), nullable=False),
    sa.Index("ix_run_logs_run", "run_id", "id"),
)

run_tags = sa.Table(
    "run_tags",
    metadata,
    sa.Column("run_id", RUN_ID, sa.ForeignKey("runs.id"), primary_key=True),
    sa.Column("tag", NAME, primary_key=True),
    sa.Index("ix_run_tags_tag", "tag", "run_id"),
    sqlite_with_rowid=False,
)

# The run config flattened to dotted keys (``optimizer.lr``), one row per leaf, so that
# ``params.lr >= 0.01`` and ``params.opt = adam`` filter through an index.
run_params = sa.Table(
    "run_params",
    metadata,
    sa.Column("run_id", RUN_ID, sa.ForeignKey("runs.id"), primary_key=True),
    sa.Column("key", METRIC_KEY, primary_key=True),
    sa.Column("num_value", sa.Double(), nullable=True),  # numbers (and numeric strings)
    sa.Column("text_value", sa.Text(), nullable=True),  # text form, cut to 500 chars
    sa.Index("ix_run_params_num", "key", "num_value", "run_id"),
    sa.Index("ix_run_params_text", "key", "text_value", "run_id"),
    sqlite_with_rowid=False,
)

# Exactly-once: a batch is applied in the transaction that inserts its mark. No foreign
# key: the mark is inserted first, before the batch may create its run.
applied_batches = sa.Table(
    "applied_batches",
    metadata,
    sa.Column("run_id", RUN_ID, primary_key=True),
    sa.Column("writer", sa.String(64), primary_key=True),
    sa.Column("seq", sa.BigInteger(), primary_key=True),
    _time("applied_at"),
    sqlite_with_rowid=False,
)

artifacts = sa.Table(
    "artifacts",
    metadata,
    sa.Column("id", ID, primary_key=True),
    sa.Column("run_id", RUN_ID, sa.ForeignKey("runs.id"), nullable=False, index=True),
    sa.Column("name", sa.Text(), nullable=False),
    sa.Column("path", sa.Text(), nullable=False),
    sa.Column("kind", sa.String(64), nullable=False),
    _time("created_at"),
    sa.Column("size_bytes", sa.BigInteger(), nullable=True),
    sa.Column("sha256", sa.String(64), nullable=True),
    sa.Column("step", sa.BigInteger(), nullable=True),
    sa.Column("stored", sa.Boolean(), nullable=False),
)

# One row per (run, key), updated in the transaction that appends points. ``last`` is NULL
# when the last value was NaN; ``min``/``max`` ignore NaN (NULL when every value was NaN).
metric_summaries = sa.Table(
    "metric_summaries",
    metadata,
    sa.Column("run_id", RUN_ID, sa.ForeignKey("runs.id"), primary_key=True),
    sa.Column("key", METRIC_KEY, primary_key=True),
    sa.Column("chunk_size", sa.Integer(), nullable=False),
    sa.Column("count", sa.BigInteger(), nullable=False),
    sa.Column("last", sa.Double(), nullable=True),
    sa.Column("last_step", sa.BigInteger(), nullable=False),
    _time("last_time"),
    sa.Column("min", sa.Double(), nullable=True),
    sa.Column("max", sa.Double(), nullable=True),
    # run tables sort by a metric: walk these in order instead of sorting every run
    sa.Index("ix_metric_summaries_last", "key", "last", "run_id"),
    sa.Index("ix_metric_summaries_min", "key", "min", "run_id"),
    sa.Index("ix_metric_summaries_max", "key", "max", "run_id"),
    sqlite_with_rowid=False,
)

metric_chunks = sa.Table(
    "metric_chunks",
    metadata,
    sa.Column("run_id", RUN_ID, sa.ForeignKey("runs.id"), primary_key=True),
    sa.Column("key", METRIC_KEY, primary_key=True),
    sa.Column("chunk_no", sa.Integer(), primary_key=True),
    sa.Column("n", sa.Integer(), nullable=False),
    sa.Column("step_min", sa.BigInteger(), nullable=False),
    sa.Column("step_max", sa.BigInteger(), nullable=False),
    sa.Column("sorted", sa.Boolean(), nullable=False),  # steps non-decreasing inside the chunk
    sa.Column("rollup", sa.LargeBinary(), nullable=False),
    sa.Column("steps", sa.LargeBinary(), nullable=False),
    sa.Column("vals", sa.LargeBinary(), nullable=False),
    sa.Column("times", sa.LargeBinary(), nullable=False),
)
