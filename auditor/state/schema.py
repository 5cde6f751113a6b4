"""The tables, as SQLAlchemy Core objects the queries use. The migrations create them.

Portable types only (no SQLite-specific upserts, JSON kept as text), so the same queries run on
PostgreSQL when several replicas share one database. Times are stored in UTC.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    Boolean,
    Column,
    DateTime,
    Dialect,
    Float,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
)


class UTCDateTime(TypeDecorator[datetime]):
    """Aware datetimes in, aware UTC datetimes out (SQLite keeps no zone of its own)."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the state store")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        moment: datetime = value
        return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


metadata = MetaData()

# -- revision 0001: runs and results ---------------------------------------------------------

meta = Table(
    "meta",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("value", Text, nullable=False),
)

runs = Table(
    "runs",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("source", String(512), nullable=False, index=True),
    Column("trigger", String(32), nullable=False),
    Column("started_at", UTCDateTime, nullable=False),
    Column("finished_at", UTCDateTime),
    # running | compliant | noncompliant | error | abandoned
    Column("result", String(32), nullable=False),
    Column("targets", Integer, nullable=False, default=0),
    Column("compliant", Integer, nullable=False, default=0),
    Column("noncompliant", Integer, nullable=False, default=0),
    Column("errors", Integer, nullable=False, default=0),
    Column("duration_seconds", Float),
    Column("message", Text),
)

target_results = Table(
    "target_results",
    metadata,
    Column("reference", String(1024), primary_key=True),
    Column("source", String(512), nullable=False, index=True),
    Column("registry", String(512), nullable=False),
    Column("repository", String(512), nullable=False),
    Column("tag", String(256), nullable=False),
    Column("digest", String(256)),
    Column("status", String(32), nullable=False),
    Column("run_id", Integer, nullable=False),
    Column("audited_at", UTCDateTime, nullable=False),
    Column("result", Text, nullable=False),
)

node_status = Table(
    "node_status",
    metadata,
    Column("reference", String(1024), primary_key=True),
    Column("node_digest", String(256), primary_key=True),
    Column("kind", String(32), nullable=False),
    Column("platform", String(128)),
    Column("required", Boolean, nullable=False),
    Column("status", String(32), nullable=False),
    Column("since", UTCDateTime, nullable=False),
    Column("run_id", Integer, nullable=False),
)

node_history = Table(
    "node_history",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("reference", String(1024), nullable=False, index=True),
    Column("node_digest", String(256), nullable=False),
    Column("kind", String(32), nullable=False),
    Column("platform", String(128)),
    Column("status", String(32), nullable=False),
    Column("previous_status", String(32)),
    Column("changed_at", UTCDateTime, nullable=False),
    Column("run_id", Integer, nullable=False),
)

# -- revision 0002: content caches -----------------------------------------------------------

manifest_cache = Table(
    "manifest_cache",
    metadata,
    Column("source", String(512), primary_key=True),
    Column("repository", String(512), primary_key=True),
    Column("digest", String(256), primary_key=True),
    Column("media_type", String(256), nullable=False),
    Column("content", LargeBinary, nullable=False),
    Column("stored_at", UTCDateTime, nullable=False),
)

blob_cache = Table(
    "blob_cache",
    metadata,
    Column("source", String(512), primary_key=True),
    Column("repository", String(512), primary_key=True),
    Column("digest", String(256), primary_key=True),
    Column("content", LargeBinary, nullable=False),
    Column("stored_at", UTCDateTime, nullable=False),
)

verdict_cache = Table(
    "verdict_cache",
    metadata,
    Column("trust_hash", String(64), primary_key=True),
    Column("signature_digest", String(256), primary_key=True),
    # auditor.verdicts.subject_key: the subject's digest, size and media type, not its digest only
    Column("subject_digest", String(256), primary_key=True),
    Column("scope", String(1024), primary_key=True),
    Column("result", Text, nullable=False),
    Column("recheck_at", UTCDateTime),
    Column("stored_at", UTCDateTime, nullable=False),
)

# -- revision 0003: alerts --------------------------------------------------------------------

# What was last alerted per target (the pure diff's AlertState as JSON), so a restart repeats
# nothing; ``source`` finds the targets a whole-source run no longer saw.
alert_states = Table(
    "alert_states",
    metadata,
    Column("reference", String(1024), primary_key=True),
    Column("source", String(512), nullable=False, index=True),
    Column("state", Text, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
)

# Messages decided but not yet delivered, per sink, in the order they were decided. The sink's
# URL and secret are not here: they stay in the configuration.
alert_outbox = Table(
    "alert_outbox",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("sink", String(128), nullable=False, index=True),
    Column("delivery_id", String(64), nullable=False, unique=True),
    Column("reference", String(1024), nullable=False),
    Column("transition", String(32), nullable=False),
    Column("payload", Text, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("attempts", Integer, nullable=False, default=0, server_default="0"),
    Column("last_error", String(512), nullable=True),
)

# -- revision 0004: a run's report per target -------------------------------------------------

# The run's target results for GET /audit/<id>, one row per target in the order the run gave
# them (codec JSON each). Until 0004 the whole list was one ``runs.report`` text: at 10^5 nodes
# writing that one value took the joined string plus SQLite's copy of it (issue 12). A run
# that finished (not ``running``/``abandoned``) has a report, possibly with no rows.
run_targets = Table(
    "run_targets",
    metadata,
    Column("run_id", Integer, primary_key=True, autoincrement=False),
    Column("position", Integer, primary_key=True, autoincrement=False),
    Column("result", Text, nullable=False),
)
