"""Hostile *content*: manifests an attacker writes byte for byte, served by the real registry or
an OCI layout, and audits bounded in time.

A :class:`Stage` wraps an attack :class:`~tests.support.attacks.Scene`. Valid documents go
through the scene as usual; raw ones (ambiguous JSON that Go's encoding/json, and so Debian's
docker-registry, still accepts) are written into the layout as they are, or, for the registry,
PUT after the scene was pushed, children and blobs first, in the order given. Everything is
audited with ``auditor audit now --format json`` in a thread that must finish within a bound,
so a hang fails the test instead of stalling the suite.
"""

from __future__ import annotations

import asyncio
import json
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import httpx

from auditor.layout.writer import tag_manifest, write_blob
from auditor.model import Descriptor
from auditor.oci import mediatypes as mt
from auditor.oci.digest import fallback_tag
from auditor.registry.client import RegistryClient
from auditor.registry.push import push_blob, push_manifest
from tests.support.attacks import Auditing, Scene
from tests.support.scenarios import CliRun, audit_json, push

T = TypeVar("T")
AUDIT_BOUND_SECONDS = 60.0


def within(seconds: float, job: Callable[[], T]) -> T:
    """``job()``, which must finish within ``seconds`` (run in a daemon thread)."""
    box: dict[str, Any] = {}

    def run() -> None:
        try:
            box["value"] = job()
        except BaseException as exc:  # re-raised in the test's thread
            box["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), f"still running after {seconds} s: a hang"
    if "error" in box:
        raise box["error"]
    result: T = box["value"]
    return result


@dataclass
class Stage:
    """A scene plus raw manifests, published through one source (``auditing.mode``)."""

    auditing: Auditing
    scene: Scene
    queued: list[tuple[str, str | None]] = field(default_factory=list)
    repository: str | None = None

    @property
    def layout_mode(self) -> bool:
        return self.auditing.mode == "layout"

    def put(self, raw: bytes, media_type: str, tag: str | None = None) -> Descriptor:
        """Store ``raw`` exactly as given, tagged ``tag`` if any."""
        digest = write_blob(self.scene.layout, raw)
        descriptor = Descriptor(media_type, digest, len(raw))
        self.forward(descriptor, tag)
        return descriptor

    def forward(self, descriptor: Descriptor, tag: str | None = None) -> None:
        """Make a manifest of the layout reachable: tagged in the layout, PUT to the registry."""
        if self.layout_mode:
            if tag is not None:
                tag_manifest(self.scene.layout, descriptor, tag)
        else:
            self.queued.append((descriptor.digest, tag))

    def sign(self, subject: Descriptor) -> Descriptor:
        """A trusted signature on ``subject`` (which may be a raw manifest of this stage)."""
        signature = self.scene.sign(subject)
        if not self.layout_mode:
            tag = fallback_tag(subject.digest)
            entry = next(
                e
                for e in json.loads((self.scene.layout / "index.json").read_bytes())["manifests"]
                if (e.get("annotations") or {}).get(mt.ANNOTATION_REF_NAME) == tag
            )
            self.queued.append((signature.digest, None))
            self.queued.append((entry["digest"], tag))
        return signature

    def reference(self, suffix: str = "") -> str:
        """``oci-layout:PATH`` or ``host/repository`` (pushed once), plus ``suffix``."""
        if self.layout_mode:
            return f"oci-layout:{self.scene.layout}{suffix}"
        registry = self.auditing.registry
        assert registry is not None
        if self.repository is None:
            self.repository = f"hostile/{uuid.uuid4().hex[:12]}"
            push(registry.host, self.scene.layout, self.repository)
            asyncio.run(self._put_queued(registry.host, self.repository))
        return f"{registry.host}/{self.repository}{suffix}"

    def audit(self, suffix: str, *extra: str, seconds: float = AUDIT_BOUND_SECONDS) -> CliRun:
        reference = self.reference(suffix)
        return within(seconds, lambda: audit_json(reference, *self.scene.trust_args(), *extra))

    async def _put_queued(self, host: str, repository: str) -> None:
        async with httpx.AsyncClient(timeout=30.0) as http:
            client = RegistryClient(host, http)
            done: set[str] = set()
            for digest, tag in self.queued:
                await self._put_tree(client, repository, digest, done)
                if tag is not None:
                    raw = self.scene.blob(digest)
                    await push_manifest(client, repository, tag, raw, _media_type(raw))

    async def _put_tree(
        self, client: RegistryClient, repository: str, digest: str, done: set[str]
    ) -> None:
        """A manifest by digest, after every blob and manifest it names under any key case."""
        if digest in done:
            return
        done.add(digest)
        raw = self.scene.blob(digest)
        for child in _descriptors(json.loads(raw)):
            path = self.scene.layout / "blobs" / "sha256" / child["digest"].split(":", 1)[1]
            if not path.is_file():
                continue
            if child.get("mediaType") in mt.MANIFEST_TYPES:
                await self._put_tree(client, repository, child["digest"], done)
            else:
                await push_blob(client, repository, path.read_bytes(), child["digest"])
        await push_manifest(client, repository, digest, raw, _media_type(raw))


def _media_type(raw: bytes) -> str:
    doc = json.loads(raw)
    media_type = next((v for k, v in doc.items() if k.lower() == "mediatype"), mt.OCI_MANIFEST)
    return str(media_type)


def _descriptors(doc: Any) -> list[dict[str, Any]]:
    """Every descriptor-looking object in a manifest, whatever the case of the keys above it."""
    found: list[dict[str, Any]] = []
    if isinstance(doc, dict):
        lowered = {k.lower(): v for k, v in doc.items()}
        if isinstance(lowered.get("digest"), str) and lowered["digest"].startswith("sha256:"):
            found.append({"digest": lowered["digest"], "mediaType": lowered.get("mediatype")})
        for key, value in doc.items():
            if key.lower() in ("config", "layers", "manifests", "subject"):
                found.extend(_descriptors(value))
    elif isinstance(doc, list):
        for item in doc:
            found.extend(_descriptors(item))
    return found
