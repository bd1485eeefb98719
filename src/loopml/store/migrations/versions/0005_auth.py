"""Authorization scoped by project: each audit row records the project of its entity, so a project-scoped admin
reads only its project's rows. Rows written before this revision have no project (global admins read them).

Revision ID: 0005_auth
Revises: 0004
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005_auth"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("audit_log") as batch:
        batch.add_column(sa.Column("project", sa.String(length=250), nullable=True))
    op.create_index("ix_audit_log_project_seq", "audit_log", ["project", "seq"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_audit_log_project_seq", table_name="audit_log")
    with op.batch_alter_table("audit_log") as batch:
        batch.drop_column("project")
