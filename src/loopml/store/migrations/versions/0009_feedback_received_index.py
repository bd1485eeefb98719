"""Monitoring: an index on the time feedback labels were received, so a monitor run finds out cheaply whether
labels arrived since a window's performance was computed (late labels update windows up to a horizon).

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-04
"""

from __future__ import annotations

from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_feedback_received_at", "feedback", ["received_at"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_feedback_received_at", table_name="feedback")
