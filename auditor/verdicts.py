"""Where the audit keeps signature verdicts between targets and runs.

A verdict is keyed by everything it depends on (:func:`verdict_key`): the signature digest (a
content address that pins the envelope), the subject's *whole* descriptor (media type, digest
and size: a signature binds all three, so the same digest announced with another media type or
size must be verified again) and the repository scope that picks the trust-policy statement.
It is used again only until its ``recheck_at`` (an expiry, a certificate becoming valid,
revocation data going stale): after that the signature is verified again. Errors are never
cached (they are transient). The in-memory cache lives as long as one App; the state store's
cache (auditor/state/caches.py) survives restarts and is also keyed by a hash of the trust
files.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Protocol

from auditor.model import Descriptor, SignatureResult

VerdictKey = tuple[str, str, str]  # (signature digest, subject key, scope)


def subject_key(subject: Descriptor) -> str:
    """The subject's whole descriptor as one bounded string: ``digest size media-type-hash``."""
    media_type = hashlib.sha256(subject.media_type.encode("utf-8", "replace")).hexdigest()[:32]
    return f"{subject.digest} {subject.size} {media_type}"


def verdict_key(signature_digest: str, subject: Descriptor, scope: str) -> VerdictKey:
    return (signature_digest, subject_key(subject), scope)


def utcnow() -> datetime:
    return datetime.now(UTC)


def still_good(result: SignatureResult, now: datetime) -> bool:
    """A cached verdict may be used while nothing it depends on has passed."""
    return result.recheck_at is None or now < result.recheck_at


class VerdictCache(Protocol):
    def get(self, key: VerdictKey) -> SignatureResult | None: ...

    def put(self, key: VerdictKey, result: SignatureResult) -> None: ...


class MemoryVerdictCache:
    """A dict, bounded in entries; a full cache forgets its oldest half."""

    def __init__(self, *, max_entries: int = 100_000, now: Callable[[], datetime] = utcnow):
        self._entries: dict[VerdictKey, SignatureResult] = {}
        self._max = max_entries
        self._now = now

    def get(self, key: VerdictKey) -> SignatureResult | None:
        result = self._entries.get(key)
        if result is None or still_good(result, self._now()):
            return result
        del self._entries[key]
        return None

    def put(self, key: VerdictKey, result: SignatureResult) -> None:
        if len(self._entries) >= self._max:
            for old in list(self._entries)[: self._max // 2]:
                del self._entries[old]
        self._entries[key] = result

    def clear(self) -> None:
        self._entries.clear()
