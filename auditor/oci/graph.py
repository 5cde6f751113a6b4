"""Build an image's graph (index -> platforms / attestations, with referrers) from a Snapshot.

Pure: no I/O. The crawler decides what to fetch; this module decides what each node *is*.
Guards are applied here too, with the same messages the crawler records, so a hand-made or
replayed snapshot can never make the builder loop or grow without bound.

Order: breadth-first from the root (parents before children; children in index order), each
digest once, where it is first reached. Referrers are deduplicated and sorted by digest, so
the same image gives the same node list whichever source (registry or layout) it came from.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

from auditor.errors import ErrorCategory
from auditor.model import (
    Descriptor,
    GraphNode,
    ImageGraph,
    IndexEntry,
    NodeKind,
    OtherReferrer,
    Platform,
)
from auditor.oci import mediatypes as mt
from auditor.oci.manifest import ImageIndex
from auditor.oci.snapshot import Snapshot

__all__ = [
    "GraphLimits",
    "Snapshot",
    "build_graph",
    "children_limit_message",
    "depth_limit_message",
    "referrers_limit_message",
    "split_referrers",
    "unique_children",
]


@dataclass(frozen=True)
class GraphLimits:
    """Bounds that keep a hostile or broken image from exhausting the auditor.

    ``max_depth``: indexes may nest this many levels (the root index is level 1). No defaults
    here: the config model (``config.LimitsConfig``) holds them, the composition root passes them.
    """

    max_depth: int
    max_children: int
    max_referrers: int


def depth_limit_message(digest: str, limits: GraphLimits) -> str:
    return f"index {digest} nests deeper than {limits.max_depth} index levels; children not read"


def children_limit_message(digest: str, count: int, limits: GraphLimits) -> str:
    return (
        f"index {digest} lists {count} manifests, more than the limit of "
        f"{limits.max_children}; children not read"
    )


def referrers_limit_message(digest: str, count: int, limits: GraphLimits) -> str:
    return (
        f"manifest {digest} has {count} referrers, more than the limit of "
        f"{limits.max_referrers}; referrers not read"
    )


def cycle_message(digest: str, child: str) -> str:
    return f"index {digest} lists {child}, which leads back to it (cycle); not followed"


def unique_children(index: ImageIndex) -> list[Descriptor]:
    """An index's entries, first occurrence of each digest kept, in index order."""
    seen: set[str] = set()
    out: list[Descriptor] = []
    for desc in index.manifests:
        if desc.digest not in seen:
            seen.add(desc.digest)
            out.append(desc)
    return out


def split_referrers(
    referrers: Iterable[Descriptor], is_signature: Callable[[Descriptor], bool]
) -> tuple[tuple[Descriptor, ...], tuple[OtherReferrer, ...]]:
    """(Signatures, everything else), each deduplicated by digest and sorted by digest.

    ``is_signature`` comes from the registered signature formats (a referrer is a signature when
    one of them claims it); the graph itself knows no signature format.
    """
    by_digest: dict[str, Descriptor] = {}
    for desc in referrers:
        known = by_digest.get(desc.digest)
        if known is None or (known.artifact_type is None and desc.artifact_type is not None):
            by_digest[desc.digest] = desc
    ordered = [by_digest[d] for d in sorted(by_digest)]
    signatures = tuple(d for d in ordered if is_signature(d))
    others = tuple(
        OtherReferrer(d.digest, d.artifact_type) for d in ordered if not is_signature(d)
    )
    return signatures, others


@dataclass
class _Pending:
    digest: str
    parent: str | None
    depth: int
    descriptor: Descriptor | None
    inherited: Platform | None


def is_attestation_entry(desc: Descriptor) -> bool:
    """buildx's attestation entry: the annotation *and* platform unknown/unknown.

    Runtimes pick index entries by platform (or, with none given, by the image config), never
    by annotation: only an unknown/unknown entry is out of their reach, so the annotation alone
    must not exempt a pullable manifest from coverage.
    """
    return (
        desc.annotations.get(mt.ANNOTATION_REFERENCE_TYPE) == mt.ATTESTATION_MANIFEST
        and desc.platform is not None
        and desc.platform.is_unknown
    )


def _platform_key(platform: Platform) -> tuple[str, str, str | None, str | None]:
    normal = platform.normalized()
    return normal.os, normal.architecture, normal.variant, platform.os_version


def index_entries(
    index_digest: str, index: ImageIndex, inherited: Platform | None
) -> list[tuple[str, IndexEntry]]:
    """(child digest, entry) for every entry of ``index``, duplicates of a digest included.

    An entry without a platform inherits the index's own (nested indexes). An entry is
    ``shadowed`` when an earlier one in the same index has the same platform.
    """
    seen: set[tuple[str, str, str | None, str | None]] = set()
    out: list[tuple[str, IndexEntry]] = []
    for position, desc in enumerate(index.manifests):
        attestation = is_attestation_entry(desc)
        platform = desc.platform or inherited
        shadowed = False
        if platform is not None and not attestation:
            key = _platform_key(platform)
            shadowed = key in seen
            seen.add(key)
        out.append(
            (desc.digest, IndexEntry(index_digest, position, platform, attestation, shadowed))
        )
    return out


def build_graph(
    snapshot: Snapshot,
    display_reference: str,
    limits: GraphLimits,
    *,
    is_signature: Callable[[Descriptor], bool],
) -> ImageGraph:
    """The nodes of ``snapshot`` in breadth-first order, each with kind, platform and referrers.

    ``is_signature`` says which referrers are signatures (see :func:`split_referrers`).
    A digest is one node however often it is listed, but every listing is one of its
    ``entries``: a digest listed anywhere as a real platform is a platform (an attestation
    entry for the same digest does not hide it), and each entry keeps its own platform.
    """
    errors: dict[str, list[str]] = {d: list(m) for d, m in snapshot.errors.items()}
    edges: dict[str, list[str]] = {}
    entries: dict[str, list[IndexEntry]] = {}
    items: list[_Pending] = []
    claimed = {snapshot.root}
    queue = deque([_Pending(snapshot.root, None, 0, None, None)])
    while queue:
        item = queue.popleft()
        items.append(item)
        fetched = snapshot.manifests.get(item.digest)
        manifest = fetched.manifest if fetched else None
        described = _described(snapshot, item)
        if fetched is None and not described and not errors.get(item.digest):
            _add(errors, item.digest, f"manifest {item.digest} was not fetched")
        if not isinstance(manifest, ImageIndex):
            continue
        children = unique_children(manifest)
        if item.depth >= limits.max_depth:
            _add(errors, item.digest, depth_limit_message(item.digest, limits))
        elif len(children) > limits.max_children:
            _add(errors, item.digest, children_limit_message(item.digest, len(children), limits))
        else:
            edges[item.digest] = [c.digest for c in children]
            platform = _own_platform(item)
            for child_digest, entry in index_entries(item.digest, manifest, platform):
                entries.setdefault(child_digest, []).append(entry)
            for child in children:
                if child.digest in claimed:
                    continue
                claimed.add(child.digest)
                queue.append(_Pending(child.digest, item.digest, item.depth + 1, child, platform))
    back = _back_edges(snapshot.root, edges)
    for source, target in back:
        _add(errors, source, cycle_message(source, target))
    cut = set(back)
    nodes = [
        _node(
            snapshot,
            item,
            tuple(e for e in entries.get(item.digest, ()) if (e.parent, item.digest) not in cut),
            limits,
            errors,
            is_signature,
        )
        for item in items
    ]
    categories = snapshot.error_categories
    final = tuple(
        _with_error(n, errors.get(n.digest), categories.get(n.digest, ErrorCategory.INVALID))
        for n in nodes
    )
    return ImageGraph(reference=display_reference, root=snapshot.root, nodes=final)


def _described(snapshot: Snapshot, item: _Pending) -> bool:
    """Whether ``item`` is an image manifest known by its index descriptor alone (not fetched,
    on purpose): the very descriptor it was reached by, with an image manifest's media type."""
    desc = item.descriptor
    known = snapshot.described.get(item.digest)
    return (
        desc is not None
        and known is not None
        and known == desc
        and desc.media_type in mt.IMAGE_MANIFEST_TYPES
    )


def _own_platform(item: _Pending) -> Platform | None:
    desc = item.descriptor
    return (desc.platform if desc else None) or item.inherited


def _node(
    snapshot: Snapshot,
    item: _Pending,
    node_entries: tuple[IndexEntry, ...],
    limits: GraphLimits,
    errors: dict[str, list[str]],
    is_signature: Callable[[Descriptor], bool],
) -> GraphNode:
    fetched = snapshot.manifests.get(item.digest)
    manifest = fetched.manifest if fetched else None
    desc = item.descriptor
    is_index = isinstance(manifest, ImageIndex) or (
        manifest is None and desc is not None and desc.media_type in mt.INDEX_TYPES
    )
    kind = _kind(item, is_index, node_entries)
    platform = _own_platform(item)
    attestation_for = None
    if kind is NodeKind.ATTESTATION and desc is not None:
        platform = desc.platform
        attestation_for = desc.annotations.get(mt.ANNOTATION_REFERENCE_DIGEST)
    elif kind is NodeKind.PLATFORM:
        real = [e for e in node_entries if not e.attestation]
        platform = real[0].platform if real else platform
    referrers: Sequence[Descriptor] = snapshot.referrers.get(item.digest, ())
    if len(referrers) > limits.max_referrers:
        _add(errors, item.digest, referrers_limit_message(item.digest, len(referrers), limits))
        referrers = ()
    signatures, others = split_referrers(referrers, is_signature)
    return GraphNode(
        digest=item.digest,
        media_type=(
            manifest.media_type if manifest is not None else (desc.media_type if desc else "")
        ),
        size=fetched.descriptor.size if fetched else (desc.size if desc else 0),
        kind=kind,
        platform=platform,
        parent=item.parent,
        depth=item.depth,
        signatures=signatures,
        other_referrers=others,
        attestation_for=attestation_for,
        entries=node_entries,
    )


def _kind(item: _Pending, is_index: bool, node_entries: Sequence[IndexEntry]) -> NodeKind:
    if is_index:
        return NodeKind.INDEX
    if item.parent is None:
        return NodeKind.MANIFEST
    if node_entries and all(e.attestation for e in node_entries):
        return NodeKind.ATTESTATION
    return NodeKind.PLATFORM


def _add(errors: dict[str, list[str]], digest: str, message: str) -> None:
    messages = errors.setdefault(digest, [])
    if message not in messages:
        messages.append(message)


def _with_error(
    node: GraphNode, messages: Sequence[str] | None, category: ErrorCategory
) -> GraphNode:
    if not messages:
        return node
    return GraphNode(
        digest=node.digest,
        media_type=node.media_type,
        size=node.size,
        kind=node.kind,
        platform=node.platform,
        parent=node.parent,
        depth=node.depth,
        signatures=node.signatures,
        other_referrers=node.other_referrers,
        attestation_for=node.attestation_for,
        error="; ".join(messages),
        entries=node.entries,
        error_category=category,
    )


def _back_edges(root: str, edges: Mapping[str, Sequence[str]]) -> list[tuple[str, str]]:
    """Edges that point to an ancestor on the current depth-first path: each one closes a cycle."""
    found: list[tuple[str, str]] = []
    on_path: set[str] = {root}
    done: set[str] = set()
    stack: list[tuple[str, int]] = [(root, 0)]
    while stack:
        digest, position = stack[-1]
        children = edges.get(digest, ())
        if position >= len(children):
            stack.pop()
            on_path.discard(digest)
            done.add(digest)
            continue
        stack[-1] = (digest, position + 1)
        child = children[position]
        if child in on_path:
            found.append((digest, child))
        elif child not in done:
            on_path.add(child)
            stack.append((child, 0))
    return found
