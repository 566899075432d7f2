"""Initial schema: users, API keys, projects, experiments, runs (tags, params), exactly-once
batch marks, artifacts, metric summaries and chunked metric points.

Revision ID: 0001_initial
Revises:
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001_initial"
down_revision = None
branch_labels = None
depends_on = None


def _time(name: str, nullable: bool = False) -> sa.Column[float]:
    return sa.Column(name, sa.Double(), nullable=nullable)


def _pk(table: str, *cols: str) -> sa.PrimaryKeyConstraint:
    return sa.PrimaryKeyConstraint(*cols, name=f"pk_{table}")


def _fk(table: str, col: str, target: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint([col], [f"{target}.id"], name=f"fk_{table}_{col}_{target}")


def upgrade() -> None:
    op.create_table(
        "users",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("username", sa.String(64), nullable=False),
        sa.Column("password_hash", sa.Text(), nullable=True),
        sa.Column("is_admin", sa.Boolean(), nullable=False),
        _time("created_at"),
        _pk("users", "id"),
        sa.UniqueConstraint("username", name="uq_users_username"),
    )
    op.create_table(
        "api_keys",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("user_id", sa.String(32), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("prefix", sa.String(16), nullable=False),
        sa.Column("secret_hash", sa.String(64), nullable=False),
        _time("created_at"),
        _time("last_used_at", True),
        _time("revoked_at", True),
        _pk("api_keys", "id"),
        _fk("api_keys", "user_id", "users"),
        sa.UniqueConstraint("secret_hash", name="uq_api_keys_secret_hash"),
    )
    op.create_index("ix_api_keys_user_id", "api_keys", ["user_id"])
    op.create_table(
        "projects",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        _time("created_at"),
        sa.Column("owner_id", sa.String(32), nullable=True),
        _pk("projects", "id"),
        _fk("projects", "owner_id", "users"),
        sa.UniqueConstraint("name", name="uq_projects_name"),
    )
    op.create_table(
        "experiments",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("project_id", sa.String(32), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        _time("created_at"),
        _time("updated_at"),
        _pk("experiments", "id"),
        _fk("experiments", "project_id", "projects"),
        sa.UniqueConstraint("project_id", "name", name="uq_experiments_project_id_name"),
    )
    op.create_table(
        "runs",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("experiment_id", sa.String(32), nullable=False),
        sa.Column("project_id", sa.String(32), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        _time("created_at"),
        _time("updated_at"),
        _time("started_at", True),
        _time("ended_at", True),
        sa.Column("user_id", sa.String(32), nullable=True),
        sa.Column("host", sa.Text(), nullable=True),
        sa.Column("config", sa.Text(), nullable=False),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.Column("tags", sa.Text(), nullable=False),
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
        _pk("runs", "id"),
        _fk("runs", "experiment_id", "experiments"),
        _fk("runs", "project_id", "projects"),
        _fk("runs", "user_id", "users"),
    )
    for name, cols in (
        ("ix_runs_experiment_created", ["experiment_id", "created_at", "id"]),
        ("ix_runs_experiment_updated", ["experiment_id", "updated_at"]),
        ("ix_runs_experiment_status", ["experiment_id", "status", "updated_at"]),
        ("ix_runs_experiment_name", ["experiment_id", "name"]),
        ("ix_runs_project_created", ["project_id", "created_at", "id"]),
        ("ix_runs_created", ["created_at", "id"]),
        ("ix_runs_slurm_job", ["slurm_job_id"]),
        ("ix_runs_slurm_array", ["slurm_array_job_id", "slurm_array_task_id"]),
        ("ix_runs_user", ["user_id"]),
    ):
        op.create_index(name, "runs", cols)
    op.create_table(
        "run_tags",
        sa.Column("run_id", sa.String(64), nullable=False),
        sa.Column("tag", sa.String(200), nullable=False),
        _pk("run_tags", "run_id", "tag"),
        _fk("run_tags", "run_id", "runs"),
        sqlite_with_rowid=False,
    )
    op.create_index("ix_run_tags_tag", "run_tags", ["tag", "run_id"])
    op.create_table(
        "run_params",
        sa.Column("run_id", sa.String(64), nullable=False),
        sa.Column("key", sa.String(250), nullable=False),
        sa.Column("num_value", sa.Double(), nullable=True),
        sa.Column("text_value", sa.Text(), nullable=True),
        _pk("run_params", "run_id", "key"),
        _fk("run_params", "run_id", "runs"),
        sqlite_with_rowid=False,
    )
    op.create_index("ix_run_params_num", "run_params", ["key", "num_value", "run_id"])
    op.create_index("ix_run_params_text", "run_params", ["key", "text_value", "run_id"])
    op.create_table(
        "applied_batches",
        sa.Column("run_id", sa.String(64), nullable=False),
        sa.Column("writer", sa.String(64), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        _time("applied_at"),
        _pk("applied_batches", "run_id", "writer", "seq"),
        sqlite_with_rowid=False,
    )
    op.create_table(
        "artifacts",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("run_id", sa.String(64), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("path", sa.Text(), nullable=False),
        sa.Column("kind", sa.String(64), nullable=False),
        _time("created_at"),
        sa.Column("size_bytes", sa.BigInteger(), nullable=True),
        sa.Column("sha256", sa.String(64), nullable=True),
        sa.Column("step", sa.BigInteger(), nullable=True),
        sa.Column("stored", sa.Boolean(), nullable=False),
        _pk("artifacts", "id"),
        _fk("artifacts", "run_id", "runs"),
    )
    op.create_index("ix_artifacts_run_id", "artifacts", ["run_id"])
    op.create_table(
        "metric_summaries",
        sa.Column("run_id", sa.String(64), nullable=False),
        sa.Column("key", sa.String(250), nullable=False),
        sa.Column("chunk_size", sa.Integer(), nullable=False),
        sa.Column("count", sa.BigInteger(), nullable=False),
        sa.Column("last", sa.Double(), nullable=True),
        sa.Column("last_step", sa.BigInteger(), nullable=False),
        _time("last_time"),
        sa.Column("min", sa.Double(), nullable=True),
        sa.Column("max", sa.Double(), nullable=True),
        _pk("metric_summaries", "run_id", "key"),
        _fk("metric_summaries", "run_id", "runs"),
        sqlite_with_rowid=False,
    )
    for stat in ("last", "min", "max"):
        op.create_index(f"ix_metric_summaries_{stat}", "metric_summaries", ["key", stat, "run_id"])
    op.create_table(
        "metric_chunks",
        sa.Column("run_id", sa.String(64), nullable=False),
        sa.Column("key", sa.String(250), nullable=False),
        sa.Column("chunk_no", sa.Integer(), nullable=False),
        sa.Column("n", sa.Integer(), nullable=False),
        sa.Column("step_min", sa.BigInteger(), nullable=False),
        sa.Column("step_max", sa.BigInteger(), nullable=False),
        sa.Column("sorted", sa.Boolean(), nullable=False),
        sa.Column("rollup", sa.LargeBinary(), nullable=False),
        sa.Column("steps", sa.LargeBinary(), nullable=False),
        sa.Column("vals", sa.LargeBinary(), nullable=False),
        sa.Column("times", sa.LargeBinary(), nullable=False),
        _pk("metric_chunks", "run_id", "key", "chunk_no"),
        _fk("metric_chunks", "run_id", "runs"),
    )
    if op.get_bind().dialect.name == "postgresql":
        # Packed numbers barely compress: store them out of line uncompressed (no pglz cost).
        for col in ("rollup", "steps", "vals", "times"):
            op.execute(f"ALTER TABLE metric_chunks ALTER COLUMN {col} SET STORAGE EXTERNAL")


def downgrade() -> None:
    for table in (
        "metric_chunks",
        "metric_summaries",
        "artifacts",
        "applied_batches",
        "run_params",
        "run_tags",
        "runs",
        "experiments",
        "projects",
        "api_keys",
        "users",
    ):
        op.drop_table(table)
