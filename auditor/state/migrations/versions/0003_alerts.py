"""Alerts: the last alerted state per target, and the outbox of undelivered messages.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from auditor.state.schema import UTCDateTime

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "alert_states",
        sa.Column("reference", sa.String(1024), primary_key=True),
        sa.Column("source", sa.String(512), nullable=False),
        sa.Column("state", sa.Text, nullable=False),
        sa.Column("updated_at", UTCDateTime, nullable=False),
    )
    op.create_index("ix_alert_states_source", "alert_states", ["source"])
    op.create_table(
        "alert_outbox",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("sink", sa.String(128), nullable=False),
        sa.Column("delivery_id", sa.String(64), nullable=False, unique=True),
        sa.Column("reference", sa.String(1024), nullable=False),
        sa.Column("transition", sa.String(32), nullable=False),
        sa.Column("payload", sa.Text, nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("last_error", sa.String(512), nullable=True),
    )
    op.create_index("ix_alert_outbox_sink", "alert_outbox", ["sink"])


def downgrade() -> None:
    op.drop_index("ix_alert_outbox_sink", "alert_outbox")
    op.drop_table("alert_outbox")
    op.drop_index("ix_alert_states_source", "alert_states")
    op.drop_table("alert_states")
