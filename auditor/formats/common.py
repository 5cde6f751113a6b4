"""Small helpers the formats share: timestamps and digests as people and parsers read them."""

from __future__ import annotations

from datetime import UTC, datetime


def rfc3339(moment: datetime) -> str:
    """UTC with a ``Z``, second precision; a naive datetime is taken to be UTC already."""
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC)
    return moment.replace(tzinfo=None, microsecond=0).isoformat() + "Z"


def short_digest(digest: str | None, length: int = 12) -> str:
    """``sha256:0123456789ab``: enough to tell nodes apart in a table."""
    if not digest:
        return "-"
    algorithm, _, encoded = digest.partition(":")
    return f"{algorithm}:{encoded[:length]}" if encoded else digest[:length]
