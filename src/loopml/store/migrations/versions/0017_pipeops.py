"""Pipeline runs submitted to a server: the process running each (holder) and its heartbeat, so a sweep fails a
run whose process died; and one retry per pipeline run (concurrent retries of one run: one wins).

Revision ID: 0017_pipeops
Revises: 0016_retrain
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0017_pipeops"
down_revision = "0016_retrain"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("pipeline_runs") as batch:
        batch.add_column(sa.Column("holder", sa.String(length=250), nullable=True))
        batch.add_column(sa.Column("heartbeat_at", sa.BigInteger(), nullable=True))
    op.create_index("ux_pipeline_runs_retry_of", "pipeline_runs", ["retry_of"], unique=True)
    op.create_index("ix_pipeline_runs_heartbeat", "pipeline_runs", ["heartbeat_at"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_pipeline_runs_heartbeat", table_name="pipeline_runs")
    op.drop_index("ux_pipeline_runs_retry_of", table_name="pipeline_runs")
    with op.batch_alter_table("pipeline_runs") as batch:
        batch.drop_column("heartbeat_at")
        batch.drop_column("holder")
