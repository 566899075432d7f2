"""Sweeps and pipelines: a sweep's spec and array jobs, a pipeline's steps, and which sweep a
run is a trial of.

Revision ID: 0003_sweeps
Revises: 0002_slurm
Create Date: 2026-11-22
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0003_sweeps"
down_revision = "0002_slurm"
branch_labels = None
depends_on = None


def _owned(table: str) -> list[Any]:
    """The columns and keys sweeps and pipelines share: id, experiment, project, user, name."""
    return [
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("experiment_id", sa.String(32), nullable=False),
        sa.Column("project_id", sa.String(32), nullable=False),
        sa.Column("user_id", sa.String(32), nullable=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.PrimaryKeyConstraint("id", name=f"pk_{table}"),
        sa.ForeignKeyConstraint(
            ["experiment_id"], ["experiments.id"], name=f"fk_{table}_experiment_id_experiments"
        ),
        sa.ForeignKeyConstraint(["project_id"], ["projects.id"], name=f"fk_{table}_project_id_projects"),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=f"fk_{table}_user_id_users"),
    ]


def upgrade() -> None:
    # plain ADD COLUMN: SQLite does it in place (see 0002)
    op.add_column("runs", sa.Column("sweep_id", sa.String(32), nullable=True))
    op.create_index("ix_runs_sweep", "runs", ["sweep_id", "slurm_array_task_id"])
    op.create_table(
        "sweeps",
        *_owned("sweeps"),
        sa.Column("method", sa.String(16), nullable=False),
        sa.Column("created_at", sa.Double(), nullable=False),
        sa.Column("updated_at", sa.Double(), nullable=False),
        sa.Column("spec_text", sa.Text(), nullable=False),
        sa.Column("spec", sa.Text(), nullable=False),
        sa.Column("trial_count", sa.Integer(), nullable=False),
        sa.Column("jobs", sa.Text(), nullable=False),
        sa.Column("cancelled_at", sa.Double(), nullable=True),
    )
    op.create_index("ix_sweeps_experiment_created", "sweeps", ["experiment_id", "created_at"])
    op.create_table(
        "pipelines",
        *_owned("pipelines"),
        sa.Column("created_at", sa.Double(), nullable=False),
        sa.Column("spec_text", sa.Text(), nullable=False),
        sa.Column("steps", sa.Text(), nullable=False),
    )
    op.create_index("ix_pipelines_experiment_created", "pipelines", ["experiment_id", "created_at"])


def downgrade() -> None:
    op.drop_index("ix_pipelines_experiment_created", table_name="pipelines")
    op.drop_table("pipelines")
    op.drop_index("ix_sweeps_experiment_created", table_name="sweeps")
    op.drop_table("sweeps")
    op.drop_index("ix_runs_sweep", table_name="runs")
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("sweep_id")
