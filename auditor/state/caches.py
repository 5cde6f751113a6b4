"""Content caches on the state store: what makes a re-audit of an unchanged registry cheap.

* ``CachingSource`` wraps a registry source: manifests and envelopes fetched *by digest* are
  immutable, so they are kept by (source, repository, digest) and served from the store the
  next time (digest-checked again on the way out: a database file is not trusted more than a
  registry). Tags, tag lists, the catalog and referrers always go to the registry: they are
  what changes. A re-audit costs one request per tag plus the referrer checks; a tag the last
  audit saw at a digest whose manifest is kept is asked with ``If-None-Match`` (a 304 carries
  no body: it saves the bytes, not the request).
* ``StoreVerdictCache`` keeps signature verdicts by (trust hash, signature digest, subject
  digest, scope) until their ``recheck_at``; a changed trust policy or trust store changes the
  trust hash, so no verdict made under other trust files is ever reused.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from contextlib import suppress
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from auditor.errors import AuditorError, StateError
from auditor.listed import referrers_api_of
from auditor.model import Descriptor, SignatureResult
from auditor.oci import mediatypes as mt
from auditor.oci.attachments import attachment_tag
from auditor.oci.digest import is_valid_digest, verify_digest
from auditor.oci.manifest import parse_manifest
from auditor.source import FetchedManifest, ManifestSource
from auditor.verdicts import VerdictKey, still_good, utcnow

if TYPE_CHECKING:  # the store (SQLAlchemy) is imported by whoever opens one: --state, the daemon
    from auditor.state.store import Store

MAX_TRUST_FILE_BYTES = 16 * 1024 * 1024
_T = TypeVar("_T")


class CachingSource:
    """A ManifestSource that answers digest-addressed reads from the state store when it can.

    A store that fails (locked, read-only) never fails the audit: the read goes to the
    registry and ``store_errors`` counts what was lost.
    """

    def __init__(self, inner: ManifestSource, store: Store, key: str) -> None:
        self.inner = inner
        self.store = store
        self.key = key
        self.hits = 0
        self.not_modified = 0
        self.store_errors = 0

    @property
    def name(self) -> str:
        return self.inner.name

    @property
    def referrers_api(self) -> bool | None:
        """What the registry behind said about the referrers API (auditor/listed.py)."""
        return referrers_api_of(self.inner)

    async def list_repositories(self) -> list[str]:
        return await self.inner.list_repositories()

    async def list_tags(self, repository: str) -> list[str]:
        return await self.inner.list_tags(repository)

    async def get_referrers(
        self, repository: str, digest: str, artifact_type: str | None = None
    ) -> list[Descriptor]:
        return await self.inner.get_referrers(repository, digest, artifact_type)

    async def get_manifest(self, repository: str, reference: str) -> FetchedManifest:
        if not is_valid_digest(reference):
            return await self._by_tag(repository, reference)
        cached = self._cached_manifest(repository, reference)
        if cached is not None:
            self.hits += 1
            return cached
        fetched = await self.inner.get_manifest(repository, reference)
        if fetched.descriptor.digest == reference:
            self._keep(repository, fetched)
        return fetched

    def _keep(self, repository: str, fetched: FetchedManifest) -> None:
        """Cache a manifest under its digest (the client checked the bytes against it)."""
        descriptor = fetched.descriptor
        if descriptor.media_type in mt.MANIFEST_TYPES and is_valid_digest(descriptor.digest):
            self._write(
                lambda: self.store.cache_manifest(
                    self.key, repository, descriptor.digest, descriptor.media_type, fetched.raw
                )
            )

    async def _by_tag(self, repository: str, tag: str) -> FetchedManifest:
        """A tag, asked conditionally when the last audit saw it at a digest whose manifest
        is in the cache: the registry then answers "not modified" without the body (a
        registry client that cannot ask so, or an unknown tag, is asked plainly)."""
        if attachment_tag(tag) is not None:
            # A fallback or signature tag is no audited target: no last digest to ask with,
            # and keeping each one would rewrite the cache at every run.
            return await self.inner.get_manifest(repository, tag)
        unless = getattr(self.inner, "get_manifest_unless", None)
        known = self._read(lambda: self.store.last_digest(self.inner.name, repository, tag))
        held = self._cached_manifest(repository, known) if known and unless else None
        if held is None or unless is None:
            fetched = await self.inner.get_manifest(repository, tag)
        else:
            answer = await unless(repository, tag, held.descriptor.digest)
            if answer is None:
                self.not_modified += 1
                return held
            if not isinstance(answer, FetchedManifest):
                raise TypeError(f"{self.inner.name}: get_manifest_unless returned {answer!r}")
            fetched = answer
        # Kept by digest: the next audit asks for the tag "unless it is still this".
        self._keep(repository, fetched)
        return fetched

    def _cached_manifest(self, repository: str, digest: str) -> FetchedManifest | None:
        """The manifest ``digest`` from the store, digest-checked and parsed again (a database
        file is not trusted more than a registry); None when absent or damaged."""
        cached = self._read(lambda: self.store.cached_manifest(self.key, repository, digest))
        if cached is None:
            return None
        media_type, raw = cached
        try:
            verify_digest(raw, digest, f"cached manifest {digest}")
            manifest = parse_manifest(raw, media_type, where=f"cached manifest {digest}")
        except AuditorError:
            return None  # a damaged entry is a miss
        return FetchedManifest(
            Descriptor(
                media_type=media_type,
                digest=digest,
                size=len(raw),
                artifact_type=manifest.artifact_type,
                annotations=manifest.annotations,
            ),
            raw,
            manifest,
        )

    async def get_blob(self, repository: str, digest: str, max_bytes: int) -> bytes:
        cached = self._read(lambda: self.store.cached_blob(self.key, repository, digest))
        if cached is not None and len(cached) <= max_bytes:
            try:
                verify_digest(cached, digest, f"cached blob {digest}")
            except AuditorError:
                pass
            else:
                self.hits += 1
                return cached
        body = await self.inner.get_blob(repository, digest, max_bytes)
        self._write(lambda: self.store.cache_blob(self.key, repository, digest, body))
        return body

    def _read(self, job: Callable[[], _T]) -> _T | None:
        try:
            return job()
        except StateError:
            self.store_errors += 1
            return None

    def _write(self, job: Callable[[], None]) -> None:
        try:
            job()
        except StateError:
            self.store_errors += 1


class StoreVerdictCache:
    """Signature verdicts in the state store, under the current trust files' hash."""

    def __init__(
        self, store: Store, trust_hash: str, *, now: Callable[[], datetime] = utcnow
    ) -> None:
        self.store = store
        self.trust_hash = trust_hash
        self._now = now
        self.hits = 0

    def get(self, key: VerdictKey) -> SignatureResult | None:
        signature, subject, scope = key
        try:
            cached = self.store.cached_verdict(self.trust_hash, signature, subject, scope)
        except StateError:
            return None
        if cached is None or not still_good(cached[0], self._now()):
            return None
        self.hits += 1
        return cached[0]

    def put(self, key: VerdictKey, result: SignatureResult) -> None:
        signature, subject, scope = key
        # A cache that cannot write costs time, never a verdict.
        with suppress(StateError):
            self.store.cache_verdict(self.trust_hash, signature, subject, scope, result)


def trust_fingerprint(paths: Sequence[Path | None], settings: str = "") -> str:
    """A hash of every trust file (names and bytes; a directory counts with all its files)
    and of the trust settings kept in the config itself (``settings``).

    Computed at every run: editing a policy, adding, removing or replacing a certificate or a
    key changes it, and with it every verdict cache key.
    """
    digest = hashlib.sha256(b"settings\0" + settings.encode() + b"\0")
    for root in paths:
        if root is None:
            digest.update(b"none\0")
            continue
        digest.update(b"path\0" + str(root).encode() + b"\0")
        files = sorted(p for p in root.rglob("*") if p.is_file()) if root.is_dir() else [root]
        for path in files:
            digest.update(b"file\0" + str(path).encode() + b"\0")
            digest.update(hashlib.sha256(_read_limited(path)).digest())
    return digest.hexdigest()


def _read_limited(path: Path) -> bytes:
    try:
        with path.open("rb") as handle:
            return handle.read(MAX_TRUST_FILE_BYTES)
    except OSError:
        return b"<unreadable>"
