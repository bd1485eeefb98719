"""Audit log: an index on (action, entity_id), so `audit verify` can look up the creation row of every
entity without scanning the log once per entity.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-04
"""

from __future__ import annotations

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_audit_log_action_entity", "audit_log", ["action", "entity_id"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_audit_log_action_entity", table_name="audit_log")
