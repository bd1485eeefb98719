"""Authorization scoped by project: each audit row records the project of its entity, so a project-scoped admin
reads only its project's rows. Rows written before this revision have no project (global admins read them).
Feedback labels record the project of the token that sent them ("" for a global token, as every label stored
before this revision): a label is unique per project and request id (or business key).

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("audit_log") as batch:
        batch.add_column(sa.Column("project", sa.String(length=250), nullable=True))
    op.create_index("ix_audit_log_project_seq", "audit_log", ["project", "seq"], unique=False)
    with op.batch_alter_table("feedback") as batch:
        batch.add_column(sa.Column("project", sa.String(length=250), server_default="", nullable=False))
        batch.drop_constraint("uq_feedback_request_id", type_="unique")
        batch.drop_constraint("uq_feedback_business_key", type_="unique")
        batch.create_unique_constraint("uq_feedback_project_request_id", ["project", "request_id"])
        batch.create_unique_constraint("uq_feedback_project_business_key", ["project", "business_key"])


def downgrade() -> None:
    # labels of several projects for one request id cannot all be kept under the old unique constraints
    op.execute("DELETE FROM feedback WHERE project <> ''")
    with op.batch_alter_table("feedback") as batch:
        batch.drop_constraint("uq_feedback_project_business_key", type_="unique")
        batch.drop_constraint("uq_feedback_project_request_id", type_="unique")
        batch.create_unique_constraint("uq_feedback_business_key", ["business_key"])
        batch.create_unique_constraint("uq_feedback_request_id", ["request_id"])
        batch.drop_column("project")
    op.drop_index("ix_audit_log_project_seq", table_name="audit_log")
    with op.batch_alter_table("audit_log") as batch:
        batch.drop_column("project")
