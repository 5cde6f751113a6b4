"""crawl() + build_graph() over real layouts (the project's samples and the shared fixtures)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from auditor.crawl import crawl
from auditor.errors import DigestMismatch, NotFound
from auditor.layout.reader import OciLayoutSource, open_layout
from auditor.layout.writer import (
    add_to_fallback_index,
    init_layout,
    tag_manifest,
    write_index,
    write_manifest,
)
from auditor.model import Descriptor, ImageGraph, NodeKind
from auditor.oci import mediatypes as mt
from auditor.oci.digest import compute_digest, fallback_tag
from auditor.oci.graph import GraphLimits
from auditor.oci.manifest import FetchedManifest, parse_manifest
from devkit.samples import NESTED_TAG, TAG, attach_referrer, write_sample_layout
from tests.support.graphs import notation_graph
from tests.support.paths import FIXTURES

NOTATION = FIXTURES / "notation-e2e" / "registry" / "oci_layout"
needs_fixtures = pytest.mark.skipif(not FIXTURES.is_dir(), reason="needs ../shared/fixtures")


async def _graph(
    source: OciLayoutSource,
    reference: str,
    limits: GraphLimits | None = None,
    *,
    verify_children_exist: bool = False,
) -> ImageGraph:
    snapshot = await crawl(
        source,
        "",
        reference,
        display=reference,
        limits=limits,
        verify_children_exist=verify_children_exist,
    )
    return notation_graph(snapshot, reference, limits)


@needs_fixtures
async def test_buildx_tar_graph() -> None:
    with open_layout(FIXTURES / "buildx" / "hello-oci-multiplatform-gzip.tar") as source:
        (root,) = source.untagged_roots()
        graph = await _graph(source, root)
    rows = [(n.kind, str(n.platform) if n.platform else None, n.parent) for n in graph.nodes]
    assert rows == [
        (NodeKind.INDEX, None, None),
        (NodeKind.PLATFORM, "linux/amd64", root),
        (NodeKind.PLATFORM, "linux/arm64", root),
        (NodeKind.ATTESTATION, "unknown/unknown", root),
        (NodeKind.ATTESTATION, "unknown/unknown", root),
    ]
    amd64, arm64 = graph.nodes[1].digest, graph.nodes[2].digest
    assert amd64 == "sha256:0f90b7af6b2fef777963e3e1ca4fd66f378af93f5fe46304886943a4c0c7a46b"
    assert arm64 == "sha256:6b2a0dfca3903c0a2022f224f818eedd9d055ebbef7c8208b35cd7d3b4f54088"
    assert [n.attestation_for for n in graph.nodes[3:]] == [amd64, arm64]
    assert all(n.error is None and n.signatures == () for n in graph.nodes)


@needs_fixtures
@pytest.mark.parametrize(
    ("layout", "image", "signatures"),
    [
        (
            "e2e-valid-multiple-signatures",
            "sha256:b8479de3f88fb259a0a9ea82a5b2a052a1ef3c4ebbcfc61482d5ae4c831f8af9",
            [
                "sha256:90ceaff260d657d797c408ac73564a9c7bb9d86055877c2a811f0e63b8c6524f",
                "sha256:c3ebe4a20b6832328fc5078a7795ddc1114b896e13fca2add38109c3866b5fbf",
            ],
        ),
        (
            "e2e-with-timestamped-signature",
            "sha256:53b0191218aed9a3c1f7c661736ac40cfc8eb928642348fd843ba3f0483c0c20",
            ["sha256:6a5cd3a886707a317935dcaf13954fc80ef9aeb665262b6ae4fe469ad7ea3aea"],
        ),
        (
            "e2e-with-invalid-timestamped-signature",
            "sha256:f1da8cd70d6d851fa2313c8d6618f79508cf1e86877edf1c0bfe49a1b0a6467a",
            ["sha256:eee3eec7d2947f77713484753bea67879ff62c08a73a49a41151ed18c4d1c000"],
        ),
        ("e2e", "sha256:b8479de3f88fb259a0a9ea82a5b2a052a1ef3c4ebbcfc61482d5ae4c831f8af9", []),
    ],
)
async def test_notation_layouts_give_a_manifest_root_with_its_signatures(
    layout: str, image: str, signatures: list[str]
) -> None:
    source = OciLayoutSource(NOTATION / layout)
    graph = await _graph(source, "v1")
    (node,) = graph.nodes
    assert node.kind is NodeKind.MANIFEST
    assert node.error is None
    assert [s.digest for s in node.signatures] == signatures
    assert node.digest == image
    assert node.other_referrers == ()


async def test_sample_layout_graph_with_referrers(tmp_path: Path) -> None:
    sample = write_sample_layout(tmp_path)
    arm = sample.platforms["linux/arm64/v8"]
    signature = attach_referrer(
        tmp_path,
        arm,
        artifact_type=mt.NOTARY_SIGNATURE,
        layer_media_type=mt.JWS_ENVELOPE,
        layer=b'{"payload":"x"}',
    )
    sbom = attach_referrer(
        tmp_path,
        sample.index,
        artifact_type="application/spdx+json",
        layer_media_type="application/spdx+json",
        layer=b"{}",
    )
    graph = await _graph(OciLayoutSource(tmp_path), TAG)
    by = {n.digest: n for n in graph.nodes}
    assert [s.digest for s in by[arm.digest].signatures] == [signature.digest]
    assert [o.digest for o in by[sample.index.digest].other_referrers] == [sbom.digest]
    assert by[sample.attestation.digest].kind is NodeKind.ATTESTATION
    assert by[sample.attestation.digest].signatures == ()
    assert all(n.error is None for n in graph.nodes)


async def test_missing_child_becomes_error_node_and_crawl_goes_on(tmp_path: Path) -> None:
    """With ``verify_children_exist`` every child is fetched: one the source lacks is an error."""
    sample = write_sample_layout(tmp_path)
    ppc = sample.platforms["linux/ppc64le"]
    (tmp_path / "blobs" / "sha256" / ppc.digest.split(":")[1]).unlink()
    graph = await _graph(OciLayoutSource(tmp_path), TAG, verify_children_exist=True)
    by = {n.digest: n for n in graph.nodes}
    assert len(graph.nodes) == 5
    assert by[ppc.digest].error == (
        f"oci-layout:{tmp_path}: manifest {ppc.digest} not found in blobs/"
    )
    assert by[ppc.digest].kind is NodeKind.PLATFORM
    assert str(by[ppc.digest].platform) == "linux/ppc64le"
    assert all(n.error is None for d, n in by.items() if d != ppc.digest)


class CountingLayout(OciLayoutSource):
    """A layout source that records every manifest asked for."""

    asked: list[str]

    async def get_manifest(self, repository: str, reference: str) -> FetchedManifest:
        self.asked.append(reference)
        return await super().get_manifest(repository, reference)


async def test_image_manifests_an_index_lists_are_judged_on_their_descriptor(
    tmp_path: Path,
) -> None:
    """By default a platform or attestation manifest is not fetched: its index descriptor
    (what a signature covers) gives its media type and size, and its referrers are still
    looked up. Indexes are always fetched (their children decide what else there is)."""
    sample = write_sample_layout(tmp_path)
    source = CountingLayout(tmp_path)
    source.asked = []
    graph = await _graph(source, NESTED_TAG)
    leaves = {p.digest for p in sample.platforms.values()} | {sample.attestation.digest}
    assert not leaves & set(source.asked)
    assert sample.index.digest in source.asked
    by = {n.digest: n for n in graph.nodes}
    assert set(by) == {sample.nested_index.digest, sample.index.digest} | leaves
    for platform in sample.platforms.values():
        node = by[platform.digest]
        assert (node.media_type, node.size) == (platform.media_type, platform.size)
        assert node.error is None
        assert node.kind is NodeKind.PLATFORM
    assert by[sample.attestation.digest].kind is NodeKind.ATTESTATION

    # A child the layout lacks is then no error: nothing asked for it.
    ppc = sample.platforms["linux/ppc64le"]
    (tmp_path / "blobs" / "sha256" / ppc.digest.split(":")[1]).unlink()
    graph = await _graph(OciLayoutSource(tmp_path), TAG)
    assert all(n.error is None for n in graph.nodes)

    # With verify_children_exist every child is fetched.
    source.asked = []
    await _graph(source, TAG, verify_children_exist=True)
    assert leaves <= set(source.asked)


async def test_unknown_root_raises_named_error(tmp_path: Path) -> None:
    write_sample_layout(tmp_path)
    with pytest.raises(NotFound, match="no tag 'nope'"):
        await crawl(OciLayoutSource(tmp_path), "", "nope", display="x")


async def test_index_claiming_to_list_itself_in_a_layout_is_a_digest_error(tmp_path: Path) -> None:
    """sha256 makes a real self-listing index impossible: the forged blob fails its digest."""
    init_layout(tmp_path)
    forged = "sha256:" + "ab" * 32
    body = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": mt.OCI_INDEX,
            "manifests": [{"mediaType": mt.OCI_INDEX, "digest": forged, "size": 10}],
        }
    ).encode()
    (tmp_path / "blobs" / "sha256" / ("ab" * 32)).write_bytes(body)
    tag_manifest(tmp_path, Descriptor(mt.OCI_INDEX, forged, len(body)), "loop")
    with pytest.raises(DigestMismatch, match=f"manifest {forged}: content hashes to"):
        await crawl(OciLayoutSource(tmp_path), "", "loop", display="loop")


async def test_depth_nine_in_a_layout_is_recorded_not_raised(tmp_path: Path) -> None:
    sample = write_sample_layout(tmp_path)
    outer = sample.single
    for _ in range(9):
        outer = write_index(tmp_path, [outer])
    tag_manifest(tmp_path, outer, "deep")
    graph = await _graph(OciLayoutSource(tmp_path), "deep")
    assert [n.kind for n in graph.nodes] == [NodeKind.INDEX] * 9
    assert graph.nodes[-1].error is not None
    assert "nests deeper than 8 index levels" in graph.nodes[-1].error
    assert all(n.error is None for n in graph.nodes[:-1])


async def test_1001_children_in_a_layout_is_recorded_on_the_index(tmp_path: Path) -> None:
    init_layout(tmp_path)
    children = [
        Descriptor(mt.OCI_MANIFEST, compute_digest(str(i).encode()), 100) for i in range(1001)
    ]
    wide = write_index(tmp_path, children)
    tag_manifest(tmp_path, wide, "wide")
    snapshot = await crawl(OciLayoutSource(tmp_path), "", "wide", display="wide")
    assert list(snapshot.manifests) == [wide.digest]  # no child was even fetched
    assert snapshot.errors[wide.digest] == (
        f"index {wide.digest} lists 1001 manifests, more than the limit of 1000; children not read",
    )
    graph = notation_graph(snapshot, "wide")
    assert len(graph.nodes) == 1
    assert graph.nodes[0].error == snapshot.errors[wide.digest][0]


async def test_1001_referrers_in_a_layout_is_recorded_on_the_node(tmp_path: Path) -> None:
    sample = write_sample_layout(tmp_path)
    fakes = [
        Descriptor(
            mt.OCI_MANIFEST,
            compute_digest(f"sig {i}".encode()),
            700,
            artifact_type=mt.NOTARY_SIGNATURE,
        )
        for i in range(1001)
    ]
    tag_manifest(tmp_path, write_index(tmp_path, fakes), fallback_tag(sample.single.digest))
    graph = await _graph(OciLayoutSource(tmp_path), "v1-single")
    (node,) = graph.nodes
    assert node.signatures == ()
    assert node.error == (
        f"manifest {node.digest} has 1001 referrers, more than the limit of 1000; "
        "referrers not read"
    )


async def test_referrer_without_artifact_type_is_resolved_from_its_manifest(
    tmp_path: Path,
) -> None:
    sample = write_sample_layout(tmp_path)
    # A notation-1.0-shaped signature listed in a fallback index that omits artifactType,
    # and not reachable by subject (not in index.json): only the manifest can tell.
    signature = write_manifest(
        tmp_path,
        {
            "schemaVersion": 2,
            "mediaType": mt.OCI_MANIFEST,
            "config": {
                "mediaType": mt.NOTARY_SIGNATURE,
                "digest": compute_digest(b"{}"),
                "size": 2,
            },
            "layers": [],
            "subject": {
                "mediaType": mt.OCI_MANIFEST,
                "digest": sample.single.digest,
                "size": sample.single.size,
            },
        },
    )
    assert signature.artifact_type is None
    add_to_fallback_index(tmp_path, sample.single.digest, signature)
    graph = await _graph(OciLayoutSource(tmp_path), "v1-single")
    assert [s.digest for s in graph.nodes[0].signatures] == [signature.digest]
    assert graph.nodes[0].signatures[0].artifact_type == mt.NOTARY_SIGNATURE


async def test_unresolvable_referrer_marks_the_node_error(tmp_path: Path) -> None:
    sample = write_sample_layout(tmp_path)
    ghost = Descriptor(mt.OCI_MANIFEST, compute_digest(b"ghost"), 10)
    add_to_fallback_index(tmp_path, sample.single.digest, ghost)
    graph = await _graph(OciLayoutSource(tmp_path), "v1-single")
    (node,) = graph.nodes
    assert node.error is not None
    assert f"referrer {ghost.digest} of {node.digest}" in node.error
    assert "not found" in node.error


class _UncheckedSource:
    """A ManifestSource whose "digests" are labels, not hashes.

    Only for cycles: with real sha256 digests (registry or layout) an index can never list
    itself or an ancestor, so the crawler's loop guard cannot be reached through real data.
    """

    name = "unchecked"

    def __init__(self, documents: Mapping[str, dict[str, Any]]) -> None:
        self.documents = documents
        self.fetches: list[str] = []

    async def list_repositories(self) -> list[str]:
        return [""]

    async def list_tags(self, repository: str) -> list[str]:
        return []

    async def get_manifest(self, repository: str, reference: str) -> FetchedManifest:
        self.fetches.append(reference)
        raw = json.dumps(self.documents[reference]).encode()
        manifest = parse_manifest(raw)
        # size 0, as the index entries say: this source checks nothing, by design.
        return FetchedManifest(Descriptor(manifest.media_type, reference, 0), raw, manifest)

    async def get_blob(self, repository: str, digest: str, max_bytes: int) -> bytes:
        raise NotFound(digest)

    async def get_referrers(
        self, repository: str, digest: str, artifact_type: str | None = None
    ) -> list[Descriptor]:
        return []


def _index_listing(*digests: str) -> dict[str, Any]:
    entry = {"mediaType": mt.OCI_INDEX, "size": 0}
    return {
        "schemaVersion": 2,
        "mediaType": mt.OCI_INDEX,
        "manifests": [{**entry, "digest": d} for d in digests],
    }


async def test_cycles_terminate_and_are_reported() -> None:
    a, b = "sha256:" + "a" * 64, "sha256:" + "b" * 64
    for documents in ({a: _index_listing(a)}, {a: _index_listing(b), b: _index_listing(a)}):
        source = _UncheckedSource(documents)
        snapshot = await crawl(source, "", a, display="cycle")
        assert sorted(source.fetches) == sorted(documents)  # each fetched exactly once
        graph = notation_graph(snapshot, "cycle")
        assert len(graph.nodes) == len(documents)
        errors = [(n.digest, n.error) for n in graph.nodes if n.error]
        closing = graph.nodes[-1].digest
        assert errors == [
            (closing, f"index {closing} lists {a}, which leads back to it (cycle); not followed")
        ]
