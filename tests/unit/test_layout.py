"""OciLayoutSource over the real notation and buildx layouts, and safe tar extraction."""

from __future__ import annotations

import io
import json
import shutil
import tarfile
from pathlib import Path

import pytest

from auditor.errors import DigestMismatch, MalformedContent, NotFound, TooLarge
from auditor.layout.reader import OciLayoutSource, open_layout
from auditor.oci import mediatypes as mt
from auditor.oci.digest import compute_digest, is_fallback_tag
from auditor.oci.manifest import ImageIndex, ImageManifest
from tests.support.paths import FIXTURES

NOTATION = FIXTURES / "notation-e2e" / "registry" / "oci_layout"
BUILDX_TAR = FIXTURES / "buildx" / "hello-oci-multiplatform-gzip.tar"
E2E_IMAGE = "sha256:b8479de3f88fb259a0a9ea82a5b2a052a1ef3c4ebbcfc61482d5ae4c831f8af9"
SIG_A = "sha256:90ceaff260d657d797c408ac73564a9c7bb9d86055877c2a811f0e63b8c6524f"
SIG_B = "sha256:c3ebe4a20b6832328fc5078a7795ddc1114b896e13fca2add38109c3866b5fbf"
TS_IMAGE = "sha256:53b0191218aed9a3c1f7c661736ac40cfc8eb928642348fd843ba3f0483c0c20"
TS_SIG = "sha256:6a5cd3a886707a317935dcaf13954fc80ef9aeb665262b6ae4fe469ad7ea3aea"
BUILDX_INDEX = "sha256:5ac2d3ac39878329a6328eba5b2a6e5e7a06279244eea0f2ea893f76cefff26c"

pytestmark = pytest.mark.skipif(not FIXTURES.is_dir(), reason="needs ../shared/fixtures")


async def test_tags_include_fallback_tags_like_a_registry() -> None:
    source = OciLayoutSource(NOTATION / "e2e-valid-multiple-signatures")
    tags = await source.list_tags("")
    assert tags == ["v1", "sha256-" + E2E_IMAGE.split(":")[1]]
    assert [is_fallback_tag(t) for t in tags] == [False, True]
    assert await source.list_repositories() == [""]
    assert source.name == f"oci-layout:{NOTATION / 'e2e-valid-multiple-signatures'}"


async def test_manifest_by_tag_and_by_digest_agree() -> None:
    source = OciLayoutSource(NOTATION / "e2e-valid-signature")
    by_tag = await source.get_manifest("", "v1")
    by_digest = await source.get_manifest("", E2E_IMAGE)
    assert by_tag.descriptor.digest == by_digest.descriptor.digest == E2E_IMAGE
    assert by_tag.raw == by_digest.raw
    assert compute_digest(by_tag.raw) == E2E_IMAGE
    assert isinstance(by_tag.manifest, ImageManifest)
    assert by_tag.descriptor.size == 517


async def test_referrers_union_finds_signature_missing_from_fallback_index() -> None:
    source = OciLayoutSource(NOTATION / "e2e-valid-multiple-signatures")
    fallback = await source.get_manifest("", "sha256-" + E2E_IMAGE.split(":")[1])
    assert isinstance(fallback.manifest, ImageIndex)
    assert [d.digest for d in fallback.manifest.manifests] == [SIG_A]  # the inconsistency
    referrers = await source.get_referrers("", E2E_IMAGE)
    assert [d.digest for d in referrers] == [SIG_A, SIG_B]
    assert all(d.artifact_type == mt.NOTARY_SIGNATURE for d in referrers)
    second = referrers[1]
    assert second.size == 728
    assert second.media_type == mt.OCI_MANIFEST
    assert second.annotations["org.opencontainers.image.created"] == "2025-02-17T08:17:09Z"


async def test_referrers_found_only_through_subject_without_fallback_tag() -> None:
    source = OciLayoutSource(NOTATION / "e2e-with-timestamped-signature")
    assert await source.list_tags("") == ["v1"]
    referrers = await source.get_referrers("", TS_IMAGE)
    assert [(d.digest, d.artifact_type) for d in referrers] == [(TS_SIG, mt.NOTARY_SIGNATURE)]
    assert await source.get_referrers("", TS_IMAGE, artifact_type="application/spdx+json") == []
    assert await source.get_referrers("", TS_SIG) == []


async def test_unsigned_layout_has_no_referrers() -> None:
    source = OciLayoutSource(NOTATION / "e2e")
    assert await source.get_referrers("", E2E_IMAGE) == []


async def test_blob_is_digest_checked_and_bounded() -> None:
    source = OciLayoutSource(NOTATION / "e2e-valid-signature")
    envelope = "sha256:c9af07e038b2b1a463e648986ad7273157511ffeba0b689f33e5472bae471f50"
    data = await source.get_blob("", envelope, 1 << 20)
    assert compute_digest(data) == envelope
    with pytest.raises(TooLarge, match=envelope):
        await source.get_blob("", envelope, 100)


async def test_buildx_tar_reads_as_layout_and_is_cleaned_up() -> None:
    source = open_layout(BUILDX_TAR)
    workdir = source.path
    try:
        assert source.name == f"oci-layout:{BUILDX_TAR}"
        assert await source.list_tags("") == []
        assert source.untagged_roots() == [BUILDX_INDEX]
        root = await source.get_manifest("", BUILDX_INDEX)
        assert isinstance(root.manifest, ImageIndex)
        assert len(root.manifest.manifests) == 4
    finally:
        source.close()
    assert not workdir.exists()


async def test_missing_things_are_named_errors(tmp_path: Path) -> None:
    source = OciLayoutSource(NOTATION / "e2e")
    with pytest.raises(NotFound, match=r"oci-layout:.*/e2e: no tag 'v2'"):
        await source.get_manifest("", "v2")
    absent = "sha256:" + "0" * 64
    with pytest.raises(NotFound, match=f"manifest {absent} not found"):
        await source.get_manifest("", absent)
    with pytest.raises(NotFound, match="no oci-layout file"):
        OciLayoutSource(tmp_path)
    with pytest.raises(NotFound, match="no such file"):
        open_layout(tmp_path / "nowhere")


def _copy(name: str, tmp_path: Path) -> Path:
    target = tmp_path / name
    shutil.copytree(NOTATION / name, target)
    for path in target.rglob("*"):
        path.chmod(0o755 if path.is_dir() else 0o644)
    return target


async def test_corrupt_manifest_is_digest_mismatch(tmp_path: Path) -> None:
    layout = _copy("e2e-valid-signature", tmp_path)
    blob = layout / "blobs" / "sha256" / E2E_IMAGE.split(":")[1]
    blob.write_bytes(blob.read_bytes().replace(b"e2e.txt", b"e2e.TXT"))
    source = OciLayoutSource(layout)
    with pytest.raises(DigestMismatch, match=f"manifest {E2E_IMAGE}: content hashes to"):
        await source.get_manifest("", "v1")


async def test_oversized_manifest_is_refused(tmp_path: Path) -> None:
    source = OciLayoutSource(NOTATION / "e2e", max_manifest_bytes=100)
    with pytest.raises(TooLarge, match=f"manifest {E2E_IMAGE} is 517 bytes, limit 100"):
        await source.get_manifest("", "v1")


def test_bad_layout_version_and_index_are_malformed(tmp_path: Path) -> None:
    (tmp_path / "oci-layout").write_text('{"imageLayoutVersion": "2.0.0"}')
    (tmp_path / "index.json").write_text('{"schemaVersion": 2, "manifests": []}')
    with pytest.raises(MalformedContent, match="imageLayoutVersion"):
        OciLayoutSource(tmp_path)
    (tmp_path / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
    (tmp_path / "index.json").write_text('{"schemaVersion": 2, "manifests": "x"}')
    with pytest.raises(MalformedContent, match=r"index\.json: index has no manifests list"):
        OciLayoutSource(tmp_path)


def _tar_with(path: Path, members: list[tarfile.TarInfo], data: bytes = b"x") -> Path:
    with tarfile.open(path, "w") as archive:
        layout = json.dumps({"imageLayoutVersion": "1.0.0"}).encode()
        info = tarfile.TarInfo("oci-layout")
        info.size = len(layout)
        archive.addfile(info, io.BytesIO(layout))
        for member in members:
            if member.isfile():
                member.size = len(data)
                archive.addfile(member, io.BytesIO(data))
            else:
                archive.addfile(member)
    return path


@pytest.mark.parametrize(
    ("name", "kind", "message"),
    [
        ("../evil", tarfile.REGTYPE, "path escapes the layout"),
        ("blobs/../../evil", tarfile.REGTYPE, "path escapes the layout"),
        ("/tmp/evil", tarfile.REGTYPE, "absolute tar member"),
        ("blobs/sha256/link", tarfile.SYMTYPE, "refusing link member"),
        ("index.json", tarfile.LNKTYPE, "refusing link member"),
        ("blobs/fifo", tarfile.FIFOTYPE, "refusing special member"),
    ],
)
def test_unsafe_tar_members_are_refused(
    tmp_path: Path, name: str, kind: bytes, message: str
) -> None:
    member = tarfile.TarInfo(name)
    member.type = kind
    if kind in (tarfile.SYMTYPE, tarfile.LNKTYPE):
        member.linkname = "/etc/passwd"
    archive = _tar_with(tmp_path / "bad.tar", [member])
    with pytest.raises(MalformedContent, match=message):
        open_layout(archive)
    assert not (tmp_path / "evil").exists()
    assert not Path("/tmp/evil").exists()


def test_tar_size_bound(tmp_path: Path) -> None:
    member = tarfile.TarInfo("blobs/sha256/" + "a" * 64)
    archive = _tar_with(tmp_path / "big.tar", [member], data=b"y" * 5000)
    with pytest.raises(TooLarge, match="layout exceeds 1000 bytes"):
        open_layout(archive, max_tar_bytes=1000)


def test_tar_without_layout_marker_and_non_tar_file(tmp_path: Path) -> None:
    archive = tmp_path / "empty.tar"
    with tarfile.open(archive, "w"):
        pass
    with pytest.raises(MalformedContent, match="no oci-layout file"):
        open_layout(archive)
    junk = tmp_path / "junk.bin"
    junk.write_bytes(b"not a tar at all" * 100)
    with pytest.raises(MalformedContent, match="not a layout directory or readable tar"):
        open_layout(junk)
