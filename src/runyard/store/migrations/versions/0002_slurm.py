"""Slurm tracking: what Slurm last said about a run's job, each run's history, and the
stdout/stderr lines the client captured; browser sign-in sessions.

Revision ID: 0002_slurm
Revises: 0001_initial
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002_slurm"
down_revision = "0001_initial"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # plain ADD COLUMN (SQLite does it in place, with constant defaults): a batch "move and copy"
    # would drop the runs table, which the tables that reference it forbid
    op.add_column("runs", sa.Column("slurm_state", sa.String(32), nullable=True))
    op.add_column("runs", sa.Column("pending_reason", sa.Text(), nullable=True))
    op.add_column("runs", sa.Column("start_estimate", sa.Double(), nullable=True))
    op.add_column("runs", sa.Column("state_unknown_since", sa.Double(), nullable=True))
    op.add_column("runs", sa.Column("slurm_done", sa.Boolean(), nullable=False, server_default=sa.false()))
    op.add_column("runs", sa.Column("slurm", sa.Text(), nullable=False, server_default="{}"))
    op.create_index("ix_runs_slurm_pending", "runs", ["slurm_done", "slurm_job_id"])
    op.create_table(
        "run_events",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("run_id", sa.String(64), nullable=False),
        sa.Column("time", sa.Double(), nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("status", sa.String(16), nullable=True),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("data", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_run_events"),
        sa.ForeignKeyConstraint(["run_id"], ["runs.id"], name="fk_run_events_run_id_runs"),
    )
    op.create_index("ix_run_events_run", "run_events", ["run_id", "id"])
    op.create_table(
        "run_logs",
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False
        ),
        sa.Column("run_id", sa.String(64), nullable=False),
        sa.Column("time", sa.Double(), nullable=False),
        sa.Column("stream", sa.String(8), nullable=False),
        sa.Column("host", sa.String(255), nullable=True),
        sa.Column("rank", sa.Integer(), nullable=True),
        sa.Column("line", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_run_logs"),
        sa.ForeignKeyConstraint(["run_id"], ["runs.id"], name="fk_run_logs_run_id_runs"),
    )
    op.create_index("ix_run_logs_run", "run_logs", ["run_id", "id"])
    op.create_table(
        "sessions",
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("user_id", sa.String(32), nullable=False),
        sa.Column("key_id", sa.String(32), nullable=True),
        sa.Column("created_at", sa.Double(), nullable=False),
        sa.Column("expires_at", sa.Double(), nullable=False),
        sa.Column("last_seen_at", sa.Double(), nullable=False),
        sa.PrimaryKeyConstraint("token_hash", name="pk_sessions"),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name="fk_sessions_user_id_users"),
        sa.ForeignKeyConstraint(["key_id"], ["api_keys.id"], name="fk_sessions_key_id_api_keys"),
    )
    op.create_index("ix_sessions_user_id", "sessions", ["user_id"])
    op.create_index("ix_sessions_expires_at", "sessions", ["expires_at"])


def downgrade() -> None:
    op.drop_index("ix_sessions_expires_at", table_name="sessions")
    op.drop_index("ix_sessions_user_id", table_name="sessions")
    op.drop_table("sessions")
    op.drop_index("ix_run_logs_run", table_name="run_logs")
    op.drop_table("run_logs")
    op.drop_index("ix_run_events_run", table_name="run_events")
    op.drop_table("run_events")
    op.drop_index("ix_runs_slurm_pending", table_name="runs")
    with op.batch_alter_table("runs") as batch:
        for name in (
            "slurm",
            "slurm_done",
            "state_unknown_since",
            "start_estimate",
            "pending_reason",
            "slurm_state",
        ):
            batch.drop_column(name)
