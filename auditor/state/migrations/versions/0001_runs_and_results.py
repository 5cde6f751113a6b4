"""Runs, the latest result per target, node status and its history.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from auditor.state.schema import UTCDateTime

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "meta",
        sa.Column("key", sa.String(64), primary_key=True),
        sa.Column("value", sa.Text, nullable=False),
    )
    op.create_table(
        "runs",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("source", sa.String(512), nullable=False, index=True),
        sa.Column("trigger", sa.String(32), nullable=False),
        sa.Column("started_at", UTCDateTime, nullable=False),
        sa.Column("finished_at", UTCDateTime),
        sa.Column("result", sa.String(32), nullable=False),
        sa.Column("targets", sa.Integer, nullable=False),
        sa.Column("compliant", sa.Integer, nullable=False),
        sa.Column("noncompliant", sa.Integer, nullable=False),
        sa.Column("errors", sa.Integer, nullable=False),
        sa.Column("duration_seconds", sa.Float),
        sa.Column("message", sa.Text),
        sa.Column("report", sa.Text),
    )
    op.create_table(
        "target_results",
        sa.Column("reference", sa.String(1024), primary_key=True),
        sa.Column("source", sa.String(512), nullable=False, index=True),
        sa.Column("registry", sa.String(512), nullable=False),
        sa.Column("repository", sa.String(512), nullable=False),
        sa.Column("tag", sa.String(256), nullable=False),
        sa.Column("digest", sa.String(256)),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("run_id", sa.Integer, nullable=False),
        sa.Column("audited_at", UTCDateTime, nullable=False),
        sa.Column("result", sa.Text, nullable=False),
    )
    op.create_table(
        "node_status",
        sa.Column("reference", sa.String(1024), primary_key=True),
        sa.Column("node_digest", sa.String(256), primary_key=True),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("platform", sa.String(128)),
        sa.Column("required", sa.Boolean, nullable=False),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("since", UTCDateTime, nullable=False),
        sa.Column("run_id", sa.Integer, nullable=False),
    )
    op.create_table(
        "node_history",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("reference", sa.String(1024), nullable=False, index=True),
        sa.Column("node_digest", sa.String(256), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("platform", sa.String(128)),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("previous_status", sa.String(32)),
        sa.Column("changed_at", UTCDateTime, nullable=False),
        sa.Column("run_id", sa.Integer, nullable=False),
    )


def downgrade() -> None:
    for table in ("node_history", "node_status", "target_results", "runs", "meta"):
        op.drop_table(table)
