"""Pipeline schedules and their firings (cron ticks, dataset versions, events), one firing per key.

Revision ID: 0011_pipeext
Revises: 0010_pipecore
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011_pipeext"
down_revision = "0010_pipecore"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "pipeline_schedules",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("name", sa.String(length=250), nullable=False),
        sa.Column("project", sa.String(length=250), nullable=False),
        sa.Column("pipeline", sa.Text(), nullable=False),
        sa.Column("params", sa.Text(), nullable=False),
        sa.Column("executor", sa.String(length=64), nullable=False),
        sa.Column("cron", sa.String(length=250), nullable=True),
        sa.Column("dataset", sa.String(length=250), nullable=True),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("created_by", sa.String(length=250), nullable=False),
        sa.Column("last_tick", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_pipeline_schedules")),
        sa.UniqueConstraint("name", name=op.f("uq_pipeline_schedules_name")),
    )
    op.create_table(
        "pipeline_firings",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("schedule_id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=512), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("context", sa.Text(), nullable=False),
        sa.Column("run_id", sa.String(length=32), nullable=True),
        sa.Column("holder", sa.String(length=250), nullable=True),
        sa.Column("fired_at", sa.BigInteger(), nullable=False),
        sa.Column("heartbeat_at", sa.BigInteger(), nullable=False),
        sa.Column("ended_at", sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(
            ["schedule_id"],
            ["pipeline_schedules.id"],
            name=op.f("fk_pipeline_firings_schedule_id_pipeline_schedules"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_pipeline_firings")),
        sa.UniqueConstraint("schedule_id", "key", name=op.f("uq_pipeline_firings_schedule_id_key")),
    )
    op.create_index("ix_pipeline_firings_state", "pipeline_firings", ["state"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_pipeline_firings_state", table_name="pipeline_firings")
    op.drop_table("pipeline_firings")
    op.drop_table("pipeline_schedules")
