"""Monitoring: reference profiles, registered request-log segments, monitors and their windows, feedback
labels and alerts.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "reference_profiles",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("model", sa.String(length=250), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("profile", sa.Text(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("created_by", sa.String(length=250), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reference_profiles")),
        sa.UniqueConstraint("model", "version", name=op.f("uq_reference_profiles_model_version")),
    )
    op.create_table(
        "request_log_segments",
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=1024), nullable=False),
        sa.Column("deployments", sa.Text(), nullable=False),
        sa.Column("min_time", sa.BigInteger(), nullable=False),
        sa.Column("max_time", sa.BigInteger(), nullable=False),
        sa.Column("rows", sa.BigInteger(), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("sha256", name=op.f("pk_request_log_segments")),
    )
    op.create_index("ix_request_log_segments_max_time", "request_log_segments", ["max_time"], unique=False)
    op.create_table(
        "monitors",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("name", sa.String(length=250), nullable=False),
        sa.Column("deployment", sa.String(length=250), nullable=False),
        sa.Column("model", sa.String(length=250), nullable=True),
        sa.Column("version", sa.Integer(), nullable=True),
        sa.Column("window_seconds", sa.BigInteger(), nullable=True),
        sa.Column("window_rows", sa.BigInteger(), nullable=True),
        sa.Column("label_delay_seconds", sa.BigInteger(), nullable=False),
        sa.Column("consecutive", sa.Integer(), nullable=False),
        sa.Column("thresholds", sa.Text(), nullable=False),
        sa.Column("alerts", sa.Text(), nullable=False),
        sa.Column("options", sa.Text(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("created_by", sa.String(length=250), nullable=False),
        sa.Column("last_run_at", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_monitors")),
        sa.UniqueConstraint("name", name=op.f("uq_monitors_name")),
    )
    op.create_table(
        "monitor_windows",
        sa.Column("monitor_id", sa.Integer(), nullable=False),
        sa.Column("start_time", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("end_time", sa.BigInteger(), nullable=False),
        sa.Column("rows", sa.BigInteger(), nullable=False),
        sa.Column("labelled_rows", sa.BigInteger(), nullable=False),
        sa.Column("model", sa.String(length=250), nullable=True),
        sa.Column("version", sa.Integer(), nullable=True),
        sa.Column("drift", sa.Text(), nullable=True),
        sa.Column("performance", sa.Text(), nullable=True),
        sa.Column("breaches", sa.Text(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["monitor_id"], ["monitors.id"], name=op.f("fk_monitor_windows_monitor_id_monitors")),
        sa.PrimaryKeyConstraint("monitor_id", "start_time", name=op.f("pk_monitor_windows")),
    )
    op.create_table(
        "feedback",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("request_id", sa.String(length=250), nullable=True),
        sa.Column("business_key", sa.String(length=250), nullable=True),
        sa.Column("label", sa.Text(), nullable=False),
        sa.Column("label_time", sa.BigInteger(), nullable=False),
        sa.Column("received_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_feedback")),
        sa.UniqueConstraint("request_id", name=op.f("uq_feedback_request_id")),
        sa.UniqueConstraint("business_key", name=op.f("uq_feedback_business_key")),
    )
    op.create_table(
        "alerts",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("monitor_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=64), nullable=False),
        sa.Column("dedupe_key", sa.String(length=512), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("first_window", sa.BigInteger(), nullable=False),
        sa.Column("last_window", sa.BigInteger(), nullable=False),
        sa.Column("details", sa.Text(), nullable=False),
        sa.Column("opened_at", sa.BigInteger(), nullable=False),
        sa.Column("resolved_at", sa.BigInteger(), nullable=True),
        sa.Column("delivered", sa.Boolean(), nullable=False),
        sa.Column("delivered_state", sa.String(length=16), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(["monitor_id"], ["monitors.id"], name=op.f("fk_alerts_monitor_id_monitors")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alerts")),
        sa.UniqueConstraint("dedupe_key", name=op.f("uq_alerts_dedupe_key")),
    )
    op.create_index("ix_alerts_monitor_state", "alerts", ["monitor_id", "state"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_alerts_monitor_state", table_name="alerts")
    op.drop_table("alerts")
    op.drop_table("feedback")
    op.drop_table("monitor_windows")
    op.drop_table("monitors")
    op.drop_index("ix_request_log_segments_max_time", table_name="request_log_segments")
    op.drop_table("request_log_segments")
    op.drop_table("reference_profiles")
