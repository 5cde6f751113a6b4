"""Content caches: manifests and envelopes by digest, signature verdicts by key.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from auditor.state.schema import UTCDateTime

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "manifest_cache",
        sa.Column("source", sa.String(512), primary_key=True),
        sa.Column("repository", sa.String(512), primary_key=True),
        sa.Column("digest", sa.String(256), primary_key=True),
        sa.Column("media_type", sa.String(256), nullable=False),
        sa.Column("content", sa.LargeBinary, nullable=False),
        sa.Column("stored_at", UTCDateTime, nullable=False),
    )
    op.create_table(
        "blob_cache",
        sa.Column("source", sa.String(512), primary_key=True),
        sa.Column("repository", sa.String(512), primary_key=True),
        sa.Column("digest", sa.String(256), primary_key=True),
        sa.Column("content", sa.LargeBinary, nullable=False),
        sa.Column("stored_at", UTCDateTime, nullable=False),
    )
    op.create_table(
        "verdict_cache",
        sa.Column("trust_hash", sa.String(64), primary_key=True),
        sa.Column("signature_digest", sa.String(256), primary_key=True),
        sa.Column("subject_digest", sa.String(256), primary_key=True),
        sa.Column("scope", sa.String(1024), primary_key=True),
        sa.Column("result", sa.Text, nullable=False),
        sa.Column("recheck_at", UTCDateTime),
        sa.Column("stored_at", UTCDateTime, nullable=False),
    )


def downgrade() -> None:
    for table in ("verdict_cache", "blob_cache", "manifest_cache"):
        op.drop_table(table)
