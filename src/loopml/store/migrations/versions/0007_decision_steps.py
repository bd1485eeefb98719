"""Rollout decisions count canary steps from 1, as `loopml deploy status` and the decisions' reasons do.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-04
"""

from __future__ import annotations

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("UPDATE rollout_decisions SET step = step + 1")


def downgrade() -> None:
    op.execute("UPDATE rollout_decisions SET step = step - 1")
