"""Retraining policies and their loops (one active loop per policy, one loop per trigger key).

Revision ID: 0016_retrain
Revises: 0015_evalgate
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0016_retrain"
down_revision = "0015_evalgate"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "retrain_policies",
        sa.Column("name", sa.String(length=250), nullable=False),
        sa.Column("project", sa.String(length=250), nullable=False),
        sa.Column("spec", sa.Text(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("last_tick", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_retrain_policies")),
    )
    op.create_table(
        "retrain_loops",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("policy", sa.String(length=250), nullable=False),
        sa.Column("project", sa.String(length=250), nullable=False),
        sa.Column("state", sa.String(length=32), nullable=False),
        sa.Column("active_policy", sa.String(length=250), nullable=True),
        sa.Column("trigger_key", sa.String(length=512), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("context", sa.Text(), nullable=False),
        sa.Column("pipeline_run_id", sa.String(length=32), nullable=True),
        sa.Column("version", sa.Integer(), nullable=True),
        sa.Column("gate", sa.Text(), nullable=True),
        sa.Column("rollout", sa.Text(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("holder", sa.String(length=250), nullable=True),
        sa.Column("heartbeat_at", sa.BigInteger(), nullable=True),
        sa.Column("events", sa.Text(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_retrain_loops")),
        sa.UniqueConstraint("active_policy", name=op.f("uq_retrain_loops_active_policy")),
        sa.UniqueConstraint("policy", "trigger_key", name=op.f("uq_retrain_loops_policy_trigger_key")),
    )
    op.create_index("ix_retrain_loops_policy_created", "retrain_loops", ["policy", "created_at"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_retrain_loops_policy_created", table_name="retrain_loops")
    op.drop_table("retrain_loops")
    op.drop_table("retrain_policies")
