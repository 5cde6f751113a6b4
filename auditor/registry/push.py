"""Write to a registry: blobs, manifests, and whole OCI image layouts with their signatures.

Used by the tests, the demo and signing. :func:`push_layout` pushes what ``notation`` (via
oras) would have left in a registry for that layout: same digests, tags from
``org.opencontainers.image.ref.name``, children before parents (distribution rejects an
index whose children are missing), blobs before manifests, every manifest in the layout whose
``subject`` is something pushed (signatures, and signatures of those), and the referrers
fallback tag ``sha256-<hex>`` for every subject that has referrers.

Fallback tags, the one deliberate choice: a fallback tag that the layout itself carries is
pushed exactly as the layout has it, even when it lists fewer referrers than the layout holds
(``e2e-valid-multiple-signatures`` lists one of its two signatures; that inconsistency is real
and the auditor must see it). For subjects whose referrers the layout does *not* index under a
fallback tag, the tag is maintained the way notation maintains it when it attaches a
signature: the existing index in the registry (if any) is merged with the new referrers. With
``update_fallback_tags=True`` every fallback tag, the layout's own included, is merged so it
lists all referrers found through ``subject``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

from auditor.config import DEFAULT_LIMITS
from auditor.errors import DigestMismatch, GraphLimitExceeded, MalformedContent, NotFound
from auditor.model import Descriptor
from auditor.oci import mediatypes as mt
from auditor.oci.digest import (
    compute_digest,
    fallback_tag,
    is_fallback_tag,
    is_valid_digest,
    verify_digest,
)
from auditor.oci.manifest import (
    ImageIndex,
    Manifest,
    descriptor_json,
    parse_manifest,
    referrer_descriptor,
)
from auditor.registry.client import RegistryClient
from auditor.registry.transport import raise_for_status

MAX_PUSH_BLOB = 512 * 1024 * 1024
_SCAN_LIMIT = 4 * 1024 * 1024


def _push_scope(repository: str) -> str:
    return f"repository:{repository}:pull,push"


async def blob_exists(client: RegistryClient, repository: str, digest: str) -> bool:
    what = f"{client.name}/{repository}@{digest}"
    reply = await client.transport.request(
        "HEAD",
        f"/v2/{repository}/blobs/{digest}",
        scope=_push_scope(repository),
        what=what,
        limit=0,
    )
    if reply.status == 404:
        return False
    raise_for_status(reply, what)
    return True


async def push_blob(
    client: RegistryClient, repository: str, data: bytes, digest: str | None = None
) -> str:
    """Upload ``data`` monolithically (POST then PUT) unless the blob exists; returns its digest."""
    digest = digest or compute_digest(data)
    what = f"{client.name}/{repository}@{digest}"
    verify_digest(data, digest, what)
    if await blob_exists(client, repository, digest):
        return digest
    scope = _push_scope(repository)
    started = await client.transport.request(
        "POST", f"/v2/{repository}/blobs/uploads/", scope=scope, what=what, limit=64 * 1024
    )
    raise_for_status(started, f"{what} upload", expected=(202,))
    location = started.headers.get("location")
    if not location:
        raise MalformedContent(f"{what} upload: registry sent no Location")
    done = await client.transport.request(
        "PUT",
        client.transport.url(location),
        scope=scope,
        what=what,
        limit=64 * 1024,
        params={"digest": digest},
        headers={"Content-Type": "application/octet-stream"},
        content=data,
    )
    raise_for_status(done, f"{what} upload", expected=(201,))
    return digest


async def push_manifest(
    client: RegistryClient, repository: str, reference: str, raw: bytes, media_type: str
) -> str:
    """PUT a manifest by tag or digest; returns its digest, checked against the registry's."""
    return (await put_manifest(client, repository, reference, raw, media_type)).digest


@dataclass(frozen=True)
class PutManifest:
    """What a manifest PUT told us: the digest, and whether the registry took the subject.

    ``subject_accepted``: the ``OCI-Subject`` response header (OCI distribution 1.1) says the
    registry indexed the manifest's ``subject`` in its referrers API, so no fallback tag is
    needed.
    """

    digest: str
    subject_accepted: bool


async def put_manifest(
    client: RegistryClient,
    repository: str,
    reference: str,
    raw: bytes,
    media_type: str,
    *,
    headers: dict[str, str] | None = None,
    subject: str | None = None,
) -> PutManifest:
    """:func:`push_manifest` with the answer's referrers header read (and extra headers sent)."""
    digest = compute_digest(raw)
    what = f"{client.name}/{repository}{'@' if is_valid_digest(reference) else ':'}{reference}"
    if is_valid_digest(reference):
        verify_digest(raw, reference, what)
    reply = await client.transport.request(
        "PUT",
        f"/v2/{repository}/manifests/{quote(reference, safe=':')}",
        scope=_push_scope(repository),
        what=what,
        limit=64 * 1024,
        headers={"Content-Type": media_type, **(headers or {})},
        content=raw,
    )
    raise_for_status(reply, what, expected=(200, 201))
    announced = reply.headers.get("docker-content-digest")
    if announced and announced != digest:
        raise DigestMismatch(f"{what}: registry stored {announced}, we sent {digest}")
    acknowledged = reply.headers.get("oci-subject")
    return PutManifest(digest, subject is not None and acknowledged == subject)


def fallback_index(referrers: list[Descriptor]) -> bytes:
    doc = {
        "schemaVersion": 2,
        "mediaType": mt.OCI_INDEX,
        "manifests": [descriptor_json(d) for d in referrers],
    }
    return json.dumps(doc, separators=(",", ":")).encode()


async def update_fallback_tag(
    client: RegistryClient, repository: str, subject: str, referrers: list[Descriptor]
) -> str:
    """Add ``referrers`` to the ``sha256-<hex>`` index of ``subject``, keeping what is there.

    Returns the digest of the index the tag points at afterwards (unchanged when every
    referrer was already listed).
    """
    tag = fallback_tag(subject)
    what = f"{client.name}/{repository}:{tag}"
    try:
        fetched = await client.get_manifest(repository, tag)
    except NotFound:
        current_digest, current = None, []
    else:
        if not isinstance(fetched.manifest, ImageIndex):
            raise MalformedContent(f"{what}: fallback tag does not point at an index")
        current_digest, current = fetched.descriptor.digest, list(fetched.manifest.manifests)
    known = {d.digest for d in current}
    added = [d for d in referrers if d.digest not in known]
    if current_digest is not None and not added:
        return current_digest
    return await push_manifest(
        client, repository, tag, fallback_index(current + added), mt.OCI_INDEX
    )


async def push_referrer(client: RegistryClient, repository: str, raw: bytes) -> str:
    """Push a manifest that has a ``subject`` (a signature) and list it in the fallback tag."""
    digest = compute_digest(raw)
    manifest = parse_manifest(raw, None, where=f"{client.name}/{repository}@{digest}")
    if manifest.subject is None:
        raise MalformedContent(f"{client.name}/{repository}@{digest}: manifest has no subject")
    await push_manifest(client, repository, digest, raw, manifest.media_type)
    referrer = referrer_descriptor(manifest, digest, len(raw))
    await update_fallback_tag(client, repository, manifest.subject.digest, [referrer])
    return digest


@dataclass
class PushedLayout:
    """What :func:`push_layout` wrote: manifest digests in push order, tags and fallback tags."""

    repository: str
    manifests: list[str] = field(default_factory=list)
    blobs: list[str] = field(default_factory=list)
    tags: dict[str, str] = field(default_factory=dict)
    fallback_tags: dict[str, str] = field(default_factory=dict)


class _Layout:
    """Just enough of an OCI layout for pushing: digest-checked reads of ``blobs/``."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._manifests: dict[str, tuple[bytes, Manifest]] = {}

    def path(self, digest: str) -> Path:
        if not is_valid_digest(digest):
            raise MalformedContent(f"oci-layout:{self.root}: invalid digest {digest!r}")
        algorithm, hex_ = digest.split(":", 1)
        return self.root / "blobs" / algorithm / hex_

    def read(self, digest: str) -> bytes:
        path = self.path(digest)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise NotFound(f"oci-layout:{self.root}: blob {digest} is missing") from None
        verify_digest(data, digest, f"oci-layout:{self.root}@{digest}")
        return data

    def manifest(self, digest: str, media_type: str | None) -> tuple[bytes, Manifest]:
        if digest not in self._manifests:
            raw = self.read(digest)
            where = f"oci-layout:{self.root}@{digest}"
            self._manifests[digest] = (raw, parse_manifest(raw, media_type, where=where))
        return self._manifests[digest]

    def index(self) -> ImageIndex:
        where = f"oci-layout:{self.root} index.json"
        try:
            raw = (self.root / "index.json").read_bytes()
        except FileNotFoundError:
            raise NotFound(f"{where} is missing") from None
        index = parse_manifest(raw, mt.OCI_INDEX, where=where)
        if not isinstance(index, ImageIndex):
            raise MalformedContent(f"{where} is not an image index")
        return index

    def subject_manifests(self) -> dict[str, tuple[bytes, Manifest]]:
        """Every manifest blob in the layout that has a ``subject`` (signatures, SBOMs...)."""
        found: dict[str, tuple[bytes, Manifest]] = {}
        blobs = self.root / "blobs"
        for path in sorted(blobs.glob("*/*")):
            if not path.is_file() or path.stat().st_size > _SCAN_LIMIT:
                continue
            digest = f"{path.parent.name}:{path.name}"
            if not is_valid_digest(digest):
                continue
            head = path.read_bytes()
            if b'"subject"' not in head:
                continue
            try:
                raw, manifest = self.manifest(digest, None)
            except (MalformedContent, ValueError):
                continue  # a blob that merely mentions "subject" is not a manifest
            if manifest.subject is not None:
                found[digest] = (raw, manifest)
        return found


class _Pusher:
    def __init__(self, client: RegistryClient, layout: _Layout, repository: str) -> None:
        self.client = client
        self.layout = layout
        self.repository = repository
        self.result = PushedLayout(repository)
        self.pushed: set[str] = set()
        self._blobs: set[str] = set()

    async def tree(self, digest: str, media_type: str | None, depth: int = 0) -> Manifest:
        """Push a manifest after everything it needs; returns it parsed."""
        raw, manifest = self.layout.manifest(digest, media_type)
        if digest in self.pushed:
            return manifest
        if depth > DEFAULT_LIMITS.max_depth:
            raise GraphLimitExceeded(f"oci-layout:{self.layout.root}@{digest}: nested too deep")
        if isinstance(manifest, ImageIndex):
            for child in manifest.manifests:
                if child.media_type in mt.MANIFEST_TYPES:
                    await self.tree(child.digest, child.media_type, depth + 1)
                else:
                    await self.blob(child.digest)
        else:
            for blob in (manifest.config, *manifest.layers):
                await self.blob(blob.digest)
        await push_manifest(self.client, self.repository, digest, raw, manifest.media_type)
        self.pushed.add(digest)
        self.result.manifests.append(digest)
        return manifest

    async def blob(self, digest: str) -> None:
        if digest in self._blobs:
            return
        await push_blob(self.client, self.repository, self.layout.read(digest), digest)
        self._blobs.add(digest)
        self.result.blobs.append(digest)

    async def tag(self, tag: str, digest: str) -> None:
        raw, manifest = self.layout.manifest(digest, None)
        await push_manifest(self.client, self.repository, tag, raw, manifest.media_type)


async def push_layout(
    client: RegistryClient,
    layout_dir: Path,
    repository: str,
    *,
    tags: list[str] | None = None,
    default_tag: str | None = None,
    update_fallback_tags: bool = False,
) -> PushedLayout:
    """Copy an OCI image layout into ``repository`` keeping every digest.

    ``tags`` limits which tagged entries of ``index.json`` are pushed (None: all of them);
    ``default_tag`` tags untagged entries that are not referrers themselves (a buildx
    layout's single index has no ref name). See the module docstring for fallback tags.
    """
    layout = _Layout(layout_dir)
    pusher = _Pusher(client, layout, repository)
    index = layout.index()
    layout_fallbacks: dict[str, Descriptor] = {}
    for entry in index.manifests:
        ref = entry.annotations.get(mt.ANNOTATION_REF_NAME)
        if ref is not None and is_fallback_tag(ref):
            layout_fallbacks[ref] = entry
            continue
        if tags is not None and ref not in tags:
            continue
        manifest = await pusher.tree(entry.digest, entry.media_type)
        tag = ref or (default_tag if manifest.subject is None else None)
        if tag is not None:
            await pusher.tag(tag, entry.digest)
            pusher.result.tags[tag] = entry.digest

    # Referrers: repeat until nothing new refers to what is pushed (signatures of signatures).
    candidates = layout.subject_manifests()
    by_subject: dict[str, list[Descriptor]] = {}
    progress = True
    while progress:
        progress = False
        for digest, (_raw, manifest) in candidates.items():
            subject_pushed = (
                manifest.subject is not None and manifest.subject.digest in pusher.pushed
            )
            if not subject_pushed or digest in pusher.pushed:
                continue
            await pusher.tree(digest, manifest.media_type)
            progress = True
    for digest, (raw, manifest) in candidates.items():
        if digest in pusher.pushed and manifest.subject is not None:
            by_subject.setdefault(manifest.subject.digest, []).append(
                referrer_descriptor(manifest, digest, len(raw))
            )

    for tag, entry in layout_fallbacks.items():
        subject = tag.replace("-", ":", 1)
        if subject not in pusher.pushed:
            continue
        await pusher.tree(entry.digest, entry.media_type)
        await pusher.tag(tag, entry.digest)
        pusher.result.fallback_tags[tag] = entry.digest

    for subject, found in by_subject.items():
        if fallback_tag(subject) in layout_fallbacks and not update_fallback_tags:
            continue
        digest = await update_fallback_tag(client, repository, subject, found)
        pusher.result.fallback_tags[fallback_tag(subject)] = digest
    return pusher.result
