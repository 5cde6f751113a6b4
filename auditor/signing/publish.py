"""Attach a finished signature manifest to its subject: in a registry, or in an OCI layout.

Registry: blobs first, then the manifest PUT by digest. A registry with the OCI 1.1 referrers
API answers that PUT with ``OCI-Subject: <subject digest>``; then it indexes the signature
itself and nothing else is written. Otherwise the subject's ``sha256-<hex>`` fallback tag
index is updated as a read-modify-write that keeps every entry already there. Two signers
doing that at once can overwrite each other (distribution 2.8 has no conditional PUT), so:

1. the tag is read again just before the PUT, and the merge starts over if it moved;
2. after the PUT the tag is read back after a short, jittered settle delay, and the merge
   starts over if our entry is gone (another signer wrote over it from an older read);
3. when the whole run is done (:meth:`RegistryPublisher.confirm`), every fallback tag we
   wrote is checked again at growing intervals (about 1.5 s in all) and repaired where our
   entry went missing, so a concurrent signer whose write was delayed past step 2 is caught.

Each signer thus repairs its own entry, whichever write lands last, within bounded attempts
(a failure after them is a named error, never a silent loss). The window that remains is a
concurrent write delayed by longer than the confirmation rounds: no registry without
conditional PUTs lets a client close it completely.

Layout: blobs and the manifest are written into the layout, listed untagged in ``index.json``
and added to the fallback tag index, as notation does for ``oci-layout`` targets, under an
exclusive lock on the layout so two local signers serialise.
"""

from __future__ import annotations

import asyncio
import fcntl
import random
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from auditor.errors import AuditorError, MalformedContent, NotFound, SigningError
from auditor.layout.writer import write_referrer
from auditor.model import Descriptor
from auditor.oci import mediatypes as mt
from auditor.oci.digest import compute_digest, fallback_tag
from auditor.oci.manifest import ImageIndex, parse_manifest, referrer_descriptor
from auditor.registry.client import RegistryClient
from auditor.registry.push import fallback_index, push_blob, put_manifest

FALLBACK_ATTEMPTS = 8
SETTLE_SECONDS = 0.05
CONFIRM_DELAYS = (0.1, 0.3, 0.9)


@dataclass(frozen=True)
class Published:
    """Where a signature went: its manifest digest and how it was made findable."""

    digest: str
    via: str  # "referrers API" | "fallback tag" (the subject's sha256-<hex> index)


class Publisher(Protocol):
    """Writes one signature manifest (and its blobs) next to its subject."""

    @property
    def name(self) -> str: ...

    async def publish(
        self, subject: Descriptor, manifest: bytes, blobs: Mapping[str, bytes]
    ) -> Published: ...

    async def confirm(self) -> list[str]:
        """After all publishing: check the signatures are still findable; problems, if any."""
        ...


def _referrer(raw: bytes, where: str) -> tuple[str, Descriptor]:
    digest = compute_digest(raw)
    manifest = parse_manifest(raw, mt.OCI_MANIFEST, where=where)
    return digest, referrer_descriptor(manifest, digest, len(raw))


class RegistryPublisher:
    """Publishes into one repository of one registry."""

    def __init__(
        self,
        client: RegistryClient,
        repository: str,
        *,
        attempts: int = FALLBACK_ATTEMPTS,
        settle_seconds: float = SETTLE_SECONDS,
        confirm_delays: tuple[float, ...] = CONFIRM_DELAYS,
    ) -> None:
        self.client = client
        self.repository = repository
        self.attempts = attempts
        self.settle_seconds = settle_seconds
        self.confirm_delays = confirm_delays
        self._listed: dict[str, tuple[str, Descriptor]] = {}  # signature -> (subject, entry)

    @property
    def name(self) -> str:
        return f"{self.client.name}/{self.repository}"

    async def publish(
        self, subject: Descriptor, manifest: bytes, blobs: Mapping[str, bytes]
    ) -> Published:
        for digest, blob in blobs.items():
            await push_blob(self.client, self.repository, blob, digest)
        digest, referrer = _referrer(manifest, f"{self.name} signature manifest")
        put = await put_manifest(
            self.client, self.repository, digest, manifest, mt.OCI_MANIFEST, subject=subject.digest
        )
        if put.subject_accepted:
            self.client.referrers_api = True
            return Published(digest, "referrers API")
        await self._add_to_fallback(subject.digest, referrer)
        self._listed[digest] = (subject.digest, referrer)
        return Published(digest, "fallback tag")

    async def confirm(self) -> list[str]:
        """Re-check every fallback entry we wrote, at growing intervals; repair lost ones."""
        problems: list[str] = []
        for delay in self.confirm_delays:
            if not self._listed:
                break
            await asyncio.sleep(delay)
            for digest, (subject, referrer) in list(self._listed.items()):
                try:
                    _, entries = await self._current(fallback_tag(subject))
                    if all(e.digest != digest for e in entries):
                        await self._add_to_fallback(subject, referrer)
                except AuditorError as exc:
                    problems.append(f"{digest}: {exc}")
                    del self._listed[digest]
        return problems

    async def _current(self, tag: str) -> tuple[str | None, list[Descriptor]]:
        try:
            fetched = await self.client.get_manifest(self.repository, tag)
        except NotFound:
            return None, []
        if not isinstance(fetched.manifest, ImageIndex):
            raise MalformedContent(f"{self.name}:{tag}: fallback tag does not point at an index")
        return fetched.descriptor.digest, list(fetched.manifest.manifests)

    async def _add_to_fallback(self, subject: str, referrer: Descriptor) -> str:
        tag = fallback_tag(subject)
        for _ in range(self.attempts):
            read_digest, entries = await self._current(tag)
            if all(e.digest != referrer.digest for e in entries):
                raw = fallback_index([*entries, referrer])
                again, _ = await self._current(tag)
                if again != read_digest:
                    continue  # moved between our read and our write: merge again
                await put_manifest(self.client, self.repository, tag, raw, mt.OCI_INDEX)
            # Another signer may have read before our write and write after it: look again
            # once its write would have landed, and repair our entry if it is gone.
            await asyncio.sleep(self.settle_seconds * (1 + random.random()))  # noqa: S311
            _, after = await self._current(tag)
            if any(e.digest == referrer.digest for e in after):
                return tag
        raise SigningError(
            f"{self.name}:{tag}: the fallback tag kept changing under us; the signature "
            f"{referrer.digest} is pushed but not listed after {self.attempts} attempts"
        )


class LayoutPublisher:
    """Publishes into an OCI image layout directory (a tar cannot be changed in place)."""

    def __init__(self, path: Path) -> None:
        if not path.is_dir():
            raise SigningError(
                f"oci-layout:{path}: signing writes into the layout, so it must be a directory "
                "(extract the tar first)"
            )
        self.path = path

    @property
    def name(self) -> str:
        return f"oci-layout:{self.path}"

    async def publish(
        self, subject: Descriptor, manifest: bytes, blobs: Mapping[str, bytes]
    ) -> Published:
        with self._locked():
            referrer = write_referrer(self.path, manifest, blobs)
        return Published(referrer.digest, "fallback tag")

    async def confirm(self) -> list[str]:
        """Layout writes are serialised by the lock: nothing can have been lost."""
        return []

    @contextmanager
    def _locked(self) -> Iterator[None]:
        lock_path = self.path / ".auditor-sign.lock"
        try:
            handle = lock_path.open("a")
        except OSError as exc:
            raise SigningError(f"{self.name}: cannot lock the layout ({exc.strerror})") from None
        with handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)
