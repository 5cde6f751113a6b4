"""The sample image generator: byte-stable, real images, and the graph the demo relies on."""

from __future__ import annotations

import gzip
import io
import json
import tarfile
from pathlib import Path

from auditor.crawl import crawl
from auditor.layout.reader import OciLayoutSource
from auditor.model import NodeKind
from auditor.oci import mediatypes as mt
from auditor.oci.digest import compute_digest, fallback_tag
from auditor.oci.manifest import ImageIndex, ImageManifest
from devkit.samples import (
    IN_TOTO,
    NESTED_TAG,
    SINGLE_TAG,
    TAG,
    SampleLayout,
    attach_referrer,
    write_sample_layout,
)
from tests.support.graphs import notation_graph


def _files(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


def test_byte_stable_across_runs(tmp_path: Path) -> None:
    first = write_sample_layout(tmp_path / "a")
    second = write_sample_layout(tmp_path / "b")
    assert _files(tmp_path / "a") == _files(tmp_path / "b")
    assert len(_files(tmp_path / "a")) > 10
    assert first.index == second.index
    assert dict(first.platforms) == dict(second.platforms)
    other = write_sample_layout(tmp_path / "c", name="other")
    assert other.index.digest != first.index.digest


def test_every_blob_matches_its_name_and_layers_match_diff_ids(tmp_path: Path) -> None:
    sample = write_sample_layout(tmp_path)
    for name, data in _files(tmp_path / "blobs").items():
        assert compute_digest(data) == "sha256:" + name.split("/")[1]
    source = OciLayoutSource(tmp_path)
    for text, descriptor in sample.platforms.items():
        manifest = source.fetch_manifest(descriptor.digest).manifest
        assert isinstance(manifest, ImageManifest)
        config = json.loads(
            (tmp_path / "blobs" / "sha256" / manifest.config.digest[7:]).read_bytes()
        )
        assert (
            "/".join(filter(None, [config["os"], config["architecture"], config.get("variant")]))
            == text
        )
        (layer,) = manifest.layers
        tar = gzip.decompress((tmp_path / "blobs" / "sha256" / layer.digest[7:]).read_bytes())
        assert config["rootfs"]["diff_ids"] == [compute_digest(tar)]
        with tarfile.open(fileobj=io.BytesIO(tar)) as archive:
            member = archive.extractfile("hello.txt")
            assert member is not None
            assert member.read() == f"hello from sample on {text}\n".encode(
)


def test_attestation_is_buildx_shaped(tmp_path: Path) -> None:
    sample = write_sample_layout(tmp_path)
    source = OciLayoutSource(tmp_path)
    index = source.fetch_manifest(TAG).manifest
    assert isinstance(index, ImageIndex)
    entry = index.manifests[-1]
    assert entry.digest == sample.attestation.digest
    assert entry.platform is not None
    assert entry.platform.is_unknown
    assert entry.annotations[mt.ANNOTATION_REFERENCE_TYPE] == mt.ATTESTATION_MANIFEST
    assert (
        entry.annotations[mt.ANNOTATION_REFERENCE_DIGEST] == sample.platforms["linux/amd64"].digest
    )
    manifest = source.fetch_manifest(entry.digest).manifest
    assert isinstance(manifest, ImageManifest)
    (layer,) = manifest.layers
    assert layer.media_type == IN_TOTO
    statement = json.loads((tmp_path / "blobs" / "sha256" / layer.digest[7:]).read_bytes())
    assert statement["subject"][0]["digest"]["sha256"] == sample.platforms["linux/amd64"].digest[7:]


async def _graph(
    sample: SampleLayout, tag: str
) -> list[tuple[str, NodeKind, str | None, str | None]]:
    source = OciLayoutSource(sample.path)
    graph = notation_graph(await crawl(source, "", tag, display=tag), tag)
    assert all(n.error is None for n in graph.nodes)
    return [
        (n.digest, n.kind, str(n.platform) if n.platform else None, n.parent) for n in graph.nodes
    ]


async def test_expected_graphs(tmp_path: Path) -> None:
    s = write_sample_layout(tmp_path)
    p = s.platforms
    platform_rows = [
        (p["linux/amd64"].digest, NodeKind.PLATFORM, "linux/amd64", s.index.digest),
        (p["linux/arm64/v8"].digest, NodeKind.PLATFORM, "linux/arm64/v8", s.index.digest),
        (p["linux/ppc64le"].digest, NodeKind.PLATFORM, "linux/ppc64le", s.index.digest),
        (s.attestation.digest, NodeKind.ATTESTATION, "unknown/unknown", s.index.digest),
    ]
    assert await _graph(s, TAG) == [(s.index.digest, NodeKind.INDEX, None, None), *platform_rows]
    assert await _graph(s, NESTED_TAG) == [
        (s.nested_index.digest, NodeKind.INDEX, None, None),
        (s.index.digest, NodeKind.INDEX, None, s.nested_index.digest),
        *platform_rows,
    ]
    assert await _graph(s, SINGLE_TAG) == [(s.single.digest, NodeKind.MANIFEST, None, None)]
    assert s.single.digest not in {d.digest for d in p.values()}


async def test_attach_referrer_maintains_fallback_tag_like_notation(tmp_path: Path) -> None:
    s = write_sample_layout(tmp_path)
    amd64 = s.platforms["linux/amd64"]
    notation_style = attach_referrer(
        tmp_path,
        amd64,
        artifact_type=mt.NOTARY_SIGNATURE,
        layer_media_type=mt.JWS_ENVELOPE,
        layer=b'{"sig":1}',
        annotations={"org.opencontainers.image.created": "2024-01-02T00:00:00Z"},
        config_media_type=mt.NOTARY_SIGNATURE,
        set_artifact_type=False,
    )
    oci11_style = attach_referrer(
        tmp_path,
        amd64,
        artifact_type=mt.NOTARY_SIGNATURE,
        layer_media_type=mt.COSE_ENVELOPE,
        layer=b"\xd2",
    )
    source = OciLayoutSource(tmp_path)
    tags = await source.list_tags("")
    assert tags.count(fallback_tag(amd64.digest)) == 1
    fallback = source.fetch_manifest(fallback_tag(amd64.digest)).manifest
    assert isinstance(fallback, ImageIndex)
    assert [(d.digest, d.artifact_type) for d in fallback.manifests] == [
        (notation_style.digest, mt.NOTARY_SIGNATURE),
        (oci11_style.digest, mt.NOTARY_SIGNATURE),
    ]
    assert (
        fallback.manifests[0].annotations["org.opencontainers.image.created"]
        == "2024-01-02T00:00:00Z"
    )
    legacy = source.fetch_manifest(notation_style.digest).manifest
    assert isinstance(legacy, ImageManifest)
    assert legacy.artifact_type is None
    assert legacy.config.media_type == mt.NOTARY_SIGNATURE
    assert legacy.subject is not None
    assert legacy.subject.digest == amd64.digest
    # Attaching the same bytes again changes nothing (idempotent, as a re-sign of equal bytes).
    before = _files(tmp_path)
    attach_referrer(
        tmp_path,
        amd64,
        artifact_type=mt.NOTARY_SIGNATURE,
        layer_media_type=mt.COSE_ENVELOPE,
        layer=b"\xd2",
    )
    assert _files(tmp_path) == before
    graph = notation_graph(await crawl(source, "", TAG, display=TAG), TAG)
    assert [sig.digest for sig in graph.node(amd64.digest).signatures] == sorted(
        [notation_style.digest, oci11_style.digest]
    )
