"""Feature store: definition versions, training-set lineage, materialization progress and pushed rows.

Revision ID: 0012_features
Revises: 0011_pipeext
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012_features"
down_revision = "0011_pipeext"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "feature_definitions",
        sa.Column("project_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=250), nullable=False),
        sa.Column("version", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("spec", sa.Text(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("created_by", sa.String(length=250), nullable=False),
        sa.Column("deleted_at", sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(
            ["project_id"], ["projects.id"], name=op.f("fk_feature_definitions_project_id_projects")
        ),
        sa.PrimaryKeyConstraint("project_id", "kind", "name", "version", name=op.f("pk_feature_definitions")),
    )
    op.create_table(
        "feature_training_sets",
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("project_id", sa.Integer(), nullable=False),
        sa.Column("view", sa.String(length=250), nullable=False),
        sa.Column("version", sa.Integer(), autoincrement=False, nullable=False),
        sa.ForeignKeyConstraint(["digest"], ["datasets.digest"], name=op.f("fk_feature_training_sets_digest_datasets")),
        sa.ForeignKeyConstraint(
            ["project_id"], ["projects.id"], name=op.f("fk_feature_training_sets_project_id_projects")
        ),
        sa.PrimaryKeyConstraint("digest", "project_id", "view", "version", name=op.f("pk_feature_training_sets")),
    )
    op.create_table(
        "feature_materializations",
        sa.Column("project_id", sa.Integer(), nullable=False),
        sa.Column("view", sa.String(length=250), nullable=False),
        sa.Column("store", sa.String(length=250), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("start_ms", sa.BigInteger(), nullable=False),
        sa.Column("end_ms", sa.BigInteger(), nullable=False),
        sa.Column("buckets", sa.Integer(), nullable=False),
        sa.Column("done_buckets", sa.Integer(), nullable=False),
        sa.Column("rows", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("watermark_ms", sa.BigInteger(), nullable=True),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["project_id"], ["projects.id"], name=op.f("fk_feature_materializations_project_id_projects")
        ),
        sa.PrimaryKeyConstraint("project_id", "view", "store", name=op.f("pk_feature_materializations")),
    )
    op.create_table(
        "feature_pushes",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("project_id", sa.Integer(), nullable=False),
        sa.Column("view", sa.String(length=250), nullable=False),
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("rows", sa.BigInteger(), nullable=False),
        sa.Column("min_ts", sa.BigInteger(), nullable=False),
        sa.Column("max_ts", sa.BigInteger(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["project_id"], ["projects.id"], name=op.f("fk_feature_pushes_project_id_projects")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_feature_pushes")),
    )
    op.create_index("ix_feature_pushes_project_view", "feature_pushes", ["project_id", "view"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_feature_pushes_project_view", table_name="feature_pushes")
    op.drop_table("feature_pushes")
    op.drop_table("feature_materializations")
    op.drop_table("feature_training_sets")
    op.drop_table("feature_definitions")
