"""Fetch everything one image's graph needs into a Snapshot, through any ManifestSource.

Breadth-first, one level at a time, so every digest is first reached at its shallowest depth
and the result does not depend on which request finished first. A failure below the root is
recorded against its digest and the crawl goes on; only a root that cannot be fetched fails
the whole target (there is nothing to audit without it).

An image manifest listed by an index (a platform, an attestation) is not fetched unless
``verify_children_exist``: what a signature covers is the descriptor (media type, digest, size),
and the index already holds it, so the node is judged on that descriptor, as a runtime pulling
the platform resolves it. Its referrers are still looked up. What only the fetch can tell (the
registry really has it, its bytes match the descriptor's size, its body is not something else)
is checked with ``verify_children_exist: true``. Indexes, and children of any other media type,
are always fetched: their content decides what else there is.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

from auditor.config import DEFAULT_LIMITS, DEFAULT_VERIFY_CHILDREN
from auditor.errors import AuditorError, ErrorCategory, NotFound
from auditor.model import Descriptor
from auditor.oci import mediatypes as mt
from auditor.oci.graph import (
    GraphLimits,
    children_limit_message,
    depth_limit_message,
    referrers_limit_message,
    unique_children,
)
from auditor.oci.manifest import FetchedManifest, ImageIndex, ImageManifest
from auditor.oci.snapshot import Snapshot
from auditor.source import ManifestSource

T = TypeVar("T")


@dataclass
class _State:
    source: ManifestSource
    repository: str
    limits: GraphLimits
    semaphore: asyncio.Semaphore
    signature_tags: Callable[[str], Sequence[str]]
    manifests: dict[str, FetchedManifest]
    described: dict[str, Descriptor]
    referrers: dict[str, tuple[Descriptor, ...]]
    errors: dict[str, list[str]]
    error_categories: dict[str, ErrorCategory] = field(default_factory=dict)

    def fail(
        self, digest: str, message: str, category: ErrorCategory = ErrorCategory.INVALID
    ) -> None:
        """Record why ``digest`` could not be checked; its first failure's kind is the node's
        category (a guard that tripped: ``invalid``; a failed read: the error's own)."""
        messages = self.errors.setdefault(digest, [])
        if message not in messages:
            messages.append(message)
        self.error_categories.setdefault(digest, category)

    async def bounded(self, job: Awaitable[T]) -> T:
        async with self.semaphore:
            return await job


async def crawl(
    source: ManifestSource,
    repository: str,
    reference: str,
    *,
    display: str,
    limits: GraphLimits | None = None,
    concurrency: int = DEFAULT_LIMITS.concurrency_per_registry,
    signature_tags: Callable[[str], Sequence[str]] | None = None,
    verify_children_exist: bool = DEFAULT_VERIFY_CHILDREN,
) -> Snapshot:
    """Root (tag or digest), every index child recursively, and the referrers of every node.

    ``signature_tags(digest)`` names tags where signature formats keep signatures of a node
    outside the referrers API (cosign's legacy ``sha256-<hex>.sig``); a manifest found under
    one is added to the node's referrers, its descriptor carrying the tag as
    ``org.opencontainers.image.ref.name`` so the format that named the tag can claim it.
    ``verify_children_exist`` fetches every child, image manifests included (see above).
    Raises the source's AuditorError when the root itself cannot be fetched.
    """
    limits = limits or DEFAULT_LIMITS.graph_limits()
    state = _State(
        source=source,
        repository=repository,
        limits=limits,
        semaphore=asyncio.Semaphore(max(1, concurrency)),
        signature_tags=signature_tags or _no_tags,
        manifests={},
        described={},
        referrers={},
        errors={},
    )
    root = await state.bounded(source.get_manifest(repository, reference))
    root_digest = root.descriptor.digest
    state.manifests[root_digest] = root
    claimed = {root_digest}
    level: list[tuple[str, Descriptor | None, int]] = [(root_digest, None, 0)]
    while level:
        children = [desc for _, desc, _ in level if desc is not None]
        if not verify_children_exist:
            for desc in children:
                if desc.media_type in mt.IMAGE_MANIFEST_TYPES:
                    state.described[desc.digest] = desc
        await asyncio.gather(
            *(_fetch_child(state, d) for d in children if d.digest not in state.described)
        )
        await asyncio.gather(
            *(
                _fetch_referrers(state, d)
                for d, _, _ in level
                if d in state.manifests or d in state.described
            )
        )
        next_level: list[tuple[str, Descriptor | None, int]] = []
        for digest, _, depth in level:
            for child in _children_to_follow(state, digest, depth):
                if child.digest not in claimed:
                    claimed.add(child.digest)
                    next_level.append((child.digest, child, depth + 1))
        level = next_level
    return Snapshot(
        reference=display,
        root=root_digest,
        manifests=state.manifests,
        described=state.described,
        referrers=state.referrers,
        errors={d: tuple(m) for d, m in state.errors.items()},
        error_categories=state.error_categories,
    )


def _children_to_follow(state: _State, digest: str, depth: int) -> list[Descriptor]:
    """An index's children, unless a guard trips on it (then the guard is recorded instead)."""
    fetched = state.manifests.get(digest)
    if fetched is None or not isinstance(fetched.manifest, ImageIndex):
        return []
    children = unique_children(fetched.manifest)
    if depth >= state.limits.max_depth:
        state.fail(digest, depth_limit_message(digest, state.limits))
        return []
    if len(children) > state.limits.max_children:
        state.fail(digest, children_limit_message(digest, len(children), state.limits))
        return []
    return children


async def _fetch_child(state: _State, desc: Descriptor) -> None:
    try:
        fetched = await state.bounded(state.source.get_manifest(state.repository, desc.digest))
    except AuditorError as exc:
        state.fail(desc.digest, str(exc), exc.category)
        return
    if fetched.descriptor.digest != desc.digest:
        state.fail(
            desc.digest,
            f"{state.source.name}: asked for {desc.digest}, got {fetched.descriptor.digest}",
        )
        return
    if fetched.descriptor.size != desc.size:
        state.fail(
            desc.digest,
            f"manifest {desc.digest} is {fetched.descriptor.size} bytes, "
            f"its index descriptor says {desc.size}",
        )
    state.manifests[desc.digest] = fetched


async def _fetch_referrers(state: _State, digest: str) -> None:
    try:
        found = await state.bounded(state.source.get_referrers(state.repository, digest))
    except AuditorError as exc:
        state.fail(digest, f"referrers of {digest}: {exc}", exc.category)
        return
    tagged = await asyncio.gather(
        *(_tagged_signature(state, digest, tag) for tag in state.signature_tags(digest))
    )
    found = [*found, *(d for d in tagged if d is not None)]
    if len(found) > state.limits.max_referrers:
        state.fail(digest, referrers_limit_message(digest, len(found), state.limits))
        state.referrers[digest] = ()
        return
    resolved = await asyncio.gather(*(_with_artifact_type(state, digest, d) for d in found))
    state.referrers[digest] = tuple(resolved)


async def _tagged_signature(state: _State, subject: str, tag: str) -> Descriptor | None:
    """The manifest under a format's signature tag of ``subject``, if the tag exists."""
    try:
        fetched = await state.bounded(state.source.get_manifest(state.repository, tag))
    except NotFound:
        return None
    except AuditorError as exc:
        state.fail(subject, f"signature tag {tag} of {subject}: {exc}", exc.category)
        return None
    return Descriptor(
        media_type=fetched.descriptor.media_type,
        digest=fetched.descriptor.digest,
        size=fetched.descriptor.size,
        annotations={mt.ANNOTATION_REF_NAME: tag},
        artifact_type=fetched.manifest.effective_artifact_type,
    )


def _no_tags(subject_digest: str) -> Sequence[str]:
    return ()


async def _with_artifact_type(state: _State, subject: str, desc: Descriptor) -> Descriptor:
    """Fill in a referrer's missing artifactType from its manifest, so no signature hides.

    Some fallback tag indexes omit artifactType; without it a Notary signature would pass
    for an "other referrer" and the node would look unsigned instead of unchecked. Others
    (cosign's, via go-containerregistry) write the config media type, the empty descriptor
    type, which says nothing either: those are resolved the same way, and an artifact whose
    manifest says no more than "empty" is typed by its first layer's media type (the OCI
    artifact guidance), so a sigstore bundle is recognised whichever index listed it. The
    manifest's annotations (a bundle's predicate type) are carried onto the descriptor.
    """
    if desc.artifact_type is not None and desc.artifact_type != mt.OCI_EMPTY:
        return desc
    try:
        fetched = await state.bounded(state.source.get_manifest(state.repository, desc.digest))
    except AuditorError as exc:
        state.fail(subject, f"referrer {desc.digest} of {subject}: {exc}", exc.category)
        return desc
    manifest = fetched.manifest
    artifact_type = manifest.effective_artifact_type
    if artifact_type == mt.OCI_EMPTY and isinstance(manifest, ImageManifest) and manifest.layers:
        artifact_type = manifest.layers[0].media_type
    return Descriptor(
        media_type=desc.media_type,
        digest=desc.digest,
        size=desc.size,
        annotations={**desc.annotations, **manifest.annotations},
        platform=desc.platform,
        artifact_type=artifact_type,
    )
