"""The pure graph builder over hand-made snapshots (no source, no I/O)."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

from auditor.config import DEFAULT_LIMITS
from auditor.errors import ErrorCategory
from auditor.model import Descriptor, NodeKind, OtherReferrer, Platform
from auditor.notary.format import is_notation_signature
from auditor.oci import mediatypes as mt
from auditor.oci.digest import compute_digest
from auditor.oci.graph import split_referrers
from auditor.oci.manifest import FetchedManifest, parse_manifest
from auditor.oci.snapshot import Snapshot
from tests.support.graphs import notation_graph

CONFIG = {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": "", "size": 2}


def _digest(label: str) -> str:
    return compute_digest(label.encode())


def _image(label: str) -> dict[str, Any]:
    return {
        "schemaVersion": 2,
        "mediaType": mt.OCI_MANIFEST,
        "config": {**CONFIG, "digest": _digest("config " + label)},
        "layers": [],
    }


def _index(children: list[dict[str, Any]], media_type: str = mt.OCI_INDEX) -> dict[str, Any]:
    return {"schemaVersion": 2, "mediaType": media_type, "manifests": children}


def _fetched(document: dict[str, Any], digest: str | None = None) -> FetchedManifest:
    """Snapshot entry; ``digest`` may be forced, to build shapes sha256 makes impossible."""
    raw = json.dumps(document).encode()
    manifest = parse_manifest(raw)
    descriptor = Descriptor(manifest.media_type, digest or compute_digest(raw), len(raw))
    return FetchedManifest(descriptor, raw, manifest)


def _entry(
    fetched: FetchedManifest,
    platform: str | None = None,
    annotations: dict[str, str] | None = None,
) -> dict[str, Any]:
    out: dict[str, Any] = {
        "mediaType": fetched.descriptor.media_type,
        "digest": fetched.descriptor.digest,
        "size": fetched.descriptor.size,
    }
    if platform:
        p = Platform.parse(platform)
        out["platform"] = {"os": p.os, "architecture": p.architecture}
        if p.variant:
            out["platform"]["variant"] = p.variant
    if annotations:
        out["annotations"] = annotations
    return out


def _snapshot(
    root: FetchedManifest,
    *others: FetchedManifest,
    referrers: dict[str, tuple[Descriptor, ...]] | None = None,
    errors: dict[str, tuple[str, ...]] | None = None,
) -> Snapshot:
    manifests = {m.descriptor.digest: m for m in (root, *others)}
    return Snapshot("example:v1", root.descriptor.digest, manifests, referrers or {}, errors or {})


def _sig(label: str, artifact_type: str | None = mt.NOTARY_SIGNATURE) -> Descriptor:
    return Descriptor(mt.OCI_MANIFEST, _digest(label), 700, artifact_type=artifact_type)


def test_buildx_shape_platforms_and_attestations() -> None:
    amd, arm = _fetched(_image("amd")), _fetched(_image("arm"))
    att_amd, att_arm = _fetched(_image("att amd")), _fetched(_image("att arm"))

    def attestation(target: FetchedManifest) -> dict[str, str]:
        return {
            mt.ANNOTATION_REFERENCE_TYPE: mt.ATTESTATION_MANIFEST,
            mt.ANNOTATION_REFERENCE_DIGEST: target.descriptor.digest,
        }

    index = _fetched(
        _index(
            [
                _entry(amd, "linux/amd64"),
                _entry(arm, "linux/arm64"),
                _entry(att_amd, "unknown/unknown", attestation(amd)),
                _entry(att_arm, "unknown/unknown", attestation(arm)),
            ]
        )
    )
    graph = notation_graph(_snapshot(index, amd, arm, att_amd, att_arm), "example:v1")
    root = index.descriptor.digest
    assert graph.reference == "example:v1"
    assert graph.root == root
    rows = [
        (n.kind, str(n.platform) if n.platform else None, n.parent, n.depth) for n in graph.nodes
    ]
    assert rows == [
        (NodeKind.INDEX, None, None, 0),
        (NodeKind.PLATFORM, "linux/amd64", root, 1),
        (NodeKind.PLATFORM, "linux/arm64", root, 1),
        (NodeKind.ATTESTATION, "unknown/unknown", root, 1),
        (NodeKind.ATTESTATION, "unknown/unknown", root, 1),
    ]
    assert graph.nodes[3].attestation_for == amd.descriptor.digest
    assert graph.nodes[4].attestation_for == arm.descriptor.digest
    assert graph.nodes[1].attestation_for is None
    assert all(n.error is None for n in graph.nodes)
    assert graph.nodes[2].size == arm.descriptor.size


def test_single_manifest_root_with_signatures_split_and_sorted() -> None:
    image = _fetched(_image("solo"))
    sig_b, sig_a = _sig("sig b"), _sig("sig a")
    legacy = _sig("legacy", None)
    cosign = _sig("cosign", "application/vnd.dev.cosign.artifact.sig.v1+json")
    referrers = (sig_b, cosign, sig_a, sig_b, legacy)
    graph = notation_graph(
        _snapshot(image, referrers={image.descriptor.digest: referrers}), "example:v1"
    )
    (node,) = graph.nodes
    assert node.kind is NodeKind.MANIFEST
    assert node.platform is None
    assert [s.digest for s in node.signatures] == sorted([sig_a.digest, sig_b.digest])
    assert set(node.other_referrers) == {
        OtherReferrer(cosign.digest, cosign.artifact_type),
        OtherReferrer(legacy.digest, None),
    }
    assert [o.digest for o in node.other_referrers] == sorted([cosign.digest, legacy.digest])


def test_split_prefers_the_descriptor_that_knows_its_artifact_type() -> None:
    untyped, typed = _sig("x", None), _sig("x")
    signatures, others = split_referrers([untyped, typed], is_notation_signature)
    assert signatures == (typed,)
    assert others == ()


def test_docker_manifest_list_and_nested_index_inherit_platform() -> None:
    leaf = _fetched(_image("leaf"))
    inner = _fetched(_index([_entry(leaf)]))
    outer = _fetched(_index([_entry(inner, "linux/arm64/v8")], mt.DOCKER_MANIFEST_LIST))
    graph = notation_graph(_snapshot(outer, inner, leaf), "example:v1")
    kinds = [(n.kind, str(n.platform) if n.platform else None, n.depth) for n in graph.nodes]
    assert kinds == [
        (NodeKind.INDEX, None, 0),
        (NodeKind.INDEX, "linux/arm64/v8", 1),
        (NodeKind.PLATFORM, "linux/arm64/v8", 2),
    ]
    assert graph.nodes[0].media_type == mt.DOCKER_MANIFEST_LIST
    assert graph.children(inner.descriptor.digest) == (graph.nodes[2],)


def test_shared_child_appears_once_where_first_reached() -> None:
    leaf = _fetched(_image("shared"))
    inner = _fetched(_index([_entry(leaf, "linux/amd64")]))
    root = _fetched(_index([_entry(inner), _entry(leaf, "linux/amd64"), _entry(leaf)]))
    graph = notation_graph(_snapshot(root, inner, leaf), "example:v1")
    assert [n.digest for n in graph.nodes] == [
        root.descriptor.digest,
        inner.descriptor.digest,
        leaf.descriptor.digest,
    ]
    assert graph.nodes[2].parent == root.descriptor.digest
    assert all(n.error is None for n in graph.nodes)


def test_unfetched_child_is_an_error_node_with_its_recorded_reason() -> None:
    ok = _fetched(_image("ok"))
    gone_digest = _digest("gone")
    gone = {"mediaType": mt.OCI_MANIFEST, "digest": gone_digest, "size": 10}
    nested_gone = {"mediaType": mt.OCI_INDEX, "digest": _digest("gone index"), "size": 5}
    root = _fetched(_index([_entry(ok, "linux/amd64"), gone, nested_gone]))
    reason = f"oci-layout:/x: manifest {gone_digest} not found in blobs/"
    graph = notation_graph(_snapshot(root, ok, errors={gone_digest: (reason,)}), "example:v1")
    by = {n.digest: n for n in graph.nodes}
    assert by[gone_digest].error == reason
    assert by[gone_digest].kind is NodeKind.PLATFORM
    assert by[gone_digest].size == 10
    assert by[_digest("gone index")].kind is NodeKind.INDEX
    assert by[_digest("gone index")].error == f"manifest {_digest('gone index')} was not fetched"
    assert by[ok.descriptor.digest].error is None


def test_index_listing_itself_is_a_cycle_error() -> None:
    me = _digest("self")
    doc = _index([{"mediaType": mt.OCI_INDEX, "digest": me, "size": 1}])
    graph = notation_graph(_snapshot(_fetched(doc, digest=me)), "example:v1")
    (node,) = graph.nodes
    assert node.error == f"index {me} lists {me}, which leads back to it (cycle); not followed"


def test_two_indexes_listing_each_other_is_a_cycle_error() -> None:
    a, b = _digest("a"), _digest("b")
    index_a = _fetched(_index([{"mediaType": mt.OCI_INDEX, "digest": b, "size": 1}]), digest=a)
    index_b = _fetched(_index([{"mediaType": mt.OCI_INDEX, "digest": a, "size": 1}]), digest=b)
    graph = notation_graph(_snapshot(index_a, index_b), "example:v1")
    assert [n.digest for n in graph.nodes] == [a, b]
    assert graph.nodes[0].error is None
    assert graph.nodes[1].error is not None
    assert "cycle" in graph.nodes[1].error
    assert f"lists {a}" in graph.nodes[1].error


def _chain(levels: int) -> tuple[list[FetchedManifest], FetchedManifest]:
    """``levels`` nested indexes around one image manifest; returns (outermost first, leaf)."""
    leaf = _fetched(_image("deep"))
    chain = [leaf]
    for _ in range(levels):
        chain.append(_fetched(_index([_entry(chain[-1])])))
    return list(reversed(chain[1:])), leaf


def test_eight_index_levels_are_fine_nine_are_an_error() -> None:
    indexes, leaf = _chain(8)
    graph = notation_graph(_snapshot(indexes[0], *indexes[1:], leaf), "example:v1")
    assert len(graph.nodes) == 9
    assert graph.nodes[-1].digest == leaf.descriptor.digest
    assert graph.nodes[-1].depth == 8
    assert all(n.error is None for n in graph.nodes)

    indexes, leaf = _chain(9)
    graph = notation_graph(_snapshot(indexes[0], *indexes[1:], leaf), "example:v1")
    assert len(graph.nodes) == 9  # the ninth index is there, its child is not read
    deepest = graph.nodes[-1]
    assert deepest.depth == 8
    assert deepest.kind is NodeKind.INDEX
    assert deepest.error == (
        f"index {deepest.digest} nests deeper than 8 index levels; children not read"
    )


def _wide(count: int) -> FetchedManifest:
    return _fetched(
        _index(
            [
                {"mediaType": mt.OCI_MANIFEST, "digest": _digest(f"c{i}"), "size": 1}
                for i in range(count)
            ]
        )
    )


def test_more_than_1000_children_is_an_error_on_the_index() -> None:
    root = _wide(1001)
    graph = notation_graph(_snapshot(root), "example:v1")
    (node,) = graph.nodes
    assert node.error == (
        f"index {node.digest} lists 1001 manifests, more than the limit of 1000; children not read"
    )
    graph = notation_graph(_snapshot(_wide(1000)), "example:v1")
    assert len(graph.nodes) == 1001
    assert graph.nodes[0].error is None


def test_more_than_1000_referrers_is_an_error_on_the_node() -> None:
    image = _fetched(_image("popular"))
    many = tuple(_sig(f"s{i}") for i in range(1001))
    snapshot = _snapshot(image, referrers={image.descriptor.digest: many})
    graph = notation_graph(snapshot, "example:v1")
    (node,) = graph.nodes
    assert node.signatures == ()
    assert node.error == (
        f"manifest {node.digest} has 1001 referrers, more than the limit of 1000; "
        "referrers not read"
    )
    graph = notation_graph(
        _snapshot(image, referrers={image.descriptor.digest: many[:1000]}), "example:v1"
    )
    assert len(graph.nodes[0].signatures) == 1000
    assert graph.nodes[0].error is None


def test_custom_limits_and_crawl_messages_are_not_duplicated() -> None:
    root = _wide(3)
    message = (
        f"index {root.descriptor.digest} lists 3 manifests, more than the limit of 2; "
        "children not read"
    )
    snapshot = _snapshot(root, errors={root.descriptor.digest: (message,)})
    graph = notation_graph(
        snapshot, "example:v1", replace(DEFAULT_LIMITS.graph_limits(), max_children=2)
    )
    assert graph.nodes[0].error == message


def test_attestation_annotation_alone_does_not_hide_a_platform_image() -> None:
    """Runtimes pick entries by platform, not by annotation: only unknown/unknown is exempt."""
    marker = {
        mt.ANNOTATION_REFERENCE_TYPE: mt.ATTESTATION_MANIFEST,
        mt.ANNOTATION_REFERENCE_DIGEST: _digest("x"),
    }
    real = _fetched(_image("real attestation"))
    disguised = _fetched(_image("riscv image"))
    bare = _fetched(_image("no platform"))
    root = _fetched(
        _index(
            [
                _entry(real, "unknown/unknown", marker),
                _entry(disguised, "linux/riscv64", marker),
                _entry(bare, None, marker),
            ]
        )
    )
    graph = notation_graph(_snapshot(root, real, disguised, bare), "example:v1")
    kinds = {n.digest: n.kind for n in graph.nodes}
    assert kinds[real.descriptor.digest] is NodeKind.ATTESTATION
    assert kinds[disguised.descriptor.digest] is NodeKind.PLATFORM
    assert kinds[bare.descriptor.digest] is NodeKind.PLATFORM


def test_an_image_manifest_known_by_its_descriptor_alone_is_a_node_without_error() -> None:
    """``described`` (not fetched, verify_children_exist off): media type and size come from
    the index descriptor, the very one the node was reached by; anything else stays an error."""
    amd, arm = _fetched(_image("amd")), _fetched(_image("arm"))
    index = _fetched(_index([_entry(amd, "linux/amd64"), _entry(arm, "linux/arm64")]))
    listed = {
        d["digest"]: Descriptor(
            d["mediaType"], d["digest"], d["size"], platform=Platform.parse(p)
        )
        for d, p in zip(json.loads(index.raw)["manifests"], ("linux/amd64", "linux/arm64"),
                        strict=True)
    }
    sig = _sig("amd signature")
    amd_digest, arm_digest = amd.descriptor.digest, arm.descriptor.digest
    snapshot = Snapshot(
        "example:v1",
        index.descriptor.digest,
        {index.descriptor.digest: index},
        {amd_digest: (sig,)},
        {},
        described=listed,
    )
    by = {n.digest: n for n in notation_graph(snapshot, "example:v1").nodes}
    assert by[amd_digest].error is None
    assert by[arm_digest].error is None
    assert by[amd_digest].media_type == mt.OCI_MANIFEST
    assert by[amd_digest].size == amd.descriptor.size
    assert by[amd_digest].kind is NodeKind.PLATFORM
    assert by[amd_digest].signatures == (sig,)

    # A described entry that is not the descriptor the node was reached by (a replayed or
    # hand-made snapshot) does not count: the node was not fetched, which is an error.
    other = {**listed, arm_digest: replace(listed[arm_digest], size=listed[arm_digest].size + 1)}
    snapshot = Snapshot(
        "example:v1", index.descriptor.digest, {index.descriptor.digest: index}, described=other
    )
    by = {n.digest: n for n in notation_graph(snapshot, "example:v1").nodes}
    assert by[amd_digest].error is None
    assert by[arm_digest].error == f"manifest {arm_digest} was not fetched"


def test_a_node_error_keeps_the_kind_of_its_first_failure() -> None:
    ok = _fetched(_image("ok"))
    gone_digest = _digest("gone")
    gone = {"mediaType": mt.OCI_MANIFEST, "digest": gone_digest, "size": 10}
    root = _fetched(_index([_entry(ok, "linux/amd64"), gone]))
    snapshot = replace(
        _snapshot(root, ok, errors={gone_digest: ("timed out",)}),
        error_categories={gone_digest: ErrorCategory.TIMEOUT},
    )
    by = {n.digest: n for n in notation_graph(snapshot, "example:v1").nodes}
    assert by[gone_digest].error_category is ErrorCategory.TIMEOUT
    assert by[ok.descriptor.digest].error_category is None
    me = _digest("self")
    doc = _index([{"mediaType": mt.OCI_INDEX, "digest": me, "size": 1}])
    (cycle,) = notation_graph(_snapshot(_fetched(doc, digest=me)), "example:v1").nodes
    assert cycle.error_category is ErrorCategory.INVALID  # a guard the graph tripped
