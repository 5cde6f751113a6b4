"""The registry client and layout pusher against the real docker-registry (distribution 2.8)."""

from __future__ import annotations

import json
import tarfile
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from auditor.errors import DigestMismatch, NotFound, TooLarge
from auditor.oci import mediatypes as mt
from auditor.oci.digest import compute_digest, fallback_tag
from auditor.oci.manifest import ImageIndex, ImageManifest
from auditor.registry.client import RegistryClient
from auditor.registry.push import (
    blob_exists,
    push_blob,
    push_layout,
    push_manifest,
    push_referrer,
)
from auditor.registry.transport import RepositoryNotFound
from tests.support.paths import FIXTURES
from tests.support.registry_server import RunningRegistry, registry_blob_path

pytestmark = pytest.mark.registry

LAYOUTS = FIXTURES / "notation-e2e" / "registry" / "oci_layout"
BUILDX_TAR = FIXTURES / "buildx" / "hello-oci-multiplatform-gzip.tar"
IMAGE = "sha256:b8479de3f88fb259a0a9ea82a5b2a052a1ef3c4ebbcfc61482d5ae4c831f8af9"
SIG_A = "sha256:90ceaff260d657d797c408ac73564a9c7bb9d86055877c2a811f0e63b8c6524f"
SIG_B = "sha256:c3ebe4a20b6832328fc5078a7795ddc1114b896e13fca2add38109c3866b5fbf"
TS_IMAGE = "sha256:53b0191218aed9a3c1f7c661736ac40cfc8eb928642348fd843ba3f0483c0c20"
TS_SIG = "sha256:6a5cd3a886707a317935dcaf13954fc80ef9aeb665262b6ae4fe469ad7ea3aea"
BUILDX_INDEX = "sha256:5ac2d3ac39878329a6328eba5b2a6e5e7a06279244eea0f2ea893f76cefff26c"


def _repo(name: str) -> str:
    return f"test/{name}-{uuid.uuid4().hex[:8]}"


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=10.0) as client:
        yield client


@pytest.fixture
def client(registry: RunningRegistry, http: httpx.AsyncClient) -> RegistryClient:
    return RegistryClient(registry.host, http)


async def test_scheme_is_http_for_loopback(
    client: RegistryClient, registry: RunningRegistry
) -> None:
    assert client.base_url == registry.url
    assert client.name == registry.host


async def test_push_signed_layout_and_read_back(client: RegistryClient) -> None:
    repo = _repo("valid")
    pushed = await push_layout(client, LAYOUTS / "e2e-valid-signature", repo)
    assert pushed.tags == {"v1": IMAGE}
    assert set(pushed.manifests) == {IMAGE, SIG_A, pushed.fallback_tags[fallback_tag(IMAGE)]}
    # Blobs before manifests and children before parents: the image precedes its signature.
    assert pushed.manifests.index(IMAGE) < pushed.manifests.index(SIG_A)

    assert sorted(await client.list_tags(repo)) == sorted(["v1", fallback_tag(IMAGE)])
    by_tag = await client.get_manifest(repo, "v1")
    assert by_tag.descriptor.digest == IMAGE
    assert by_tag.descriptor.media_type == mt.OCI_MANIFEST
    assert by_tag.descriptor.size == len(by_tag.raw) == 517
    assert compute_digest(by_tag.raw) == IMAGE
    by_digest = await client.get_manifest(repo, IMAGE)
    assert by_digest.raw == by_tag.raw
    assert isinstance(by_digest.manifest, ImageManifest)

    # distribution 2.8 answers the referrers API with a plain-text 404: the fallback tag is used.
    refs = await client.get_referrers(repo, IMAGE)
    assert client.referrers_api is False
    assert [d.digest for d in refs] == [SIG_A]
    assert refs[0].artifact_type == mt.NOTARY_SIGNATURE
    assert await client.get_referrers(repo, IMAGE, mt.NOTARY_SIGNATURE) == refs
    assert await client.get_referrers(repo, IMAGE, "application/spdx+json") == []
    assert await client.get_referrers(repo, SIG_A) == []  # no fallback tag: no referrers

    signature = await client.get_manifest(repo, SIG_A)
    assert isinstance(signature.manifest, ImageManifest)
    assert signature.manifest.subject is not None
    assert signature.manifest.subject.digest == IMAGE
    envelope = signature.manifest.layers[0]
    data = await client.get_blob(repo, envelope.digest, 1024 * 1024)
    assert compute_digest(data) == envelope.digest
    assert len(data) == envelope.size
    assert json.loads(data)["protected"]


async def test_layout_fallback_tag_is_pushed_as_is(client: RegistryClient) -> None:
    """e2e-valid-multiple-signatures's own fallback index lists one of two signatures."""
    layout = LAYOUTS / "e2e-valid-multiple-signatures"
    repo = _repo("multi")
    pushed = await push_layout(client, layout, repo)
    assert {SIG_A, SIG_B} <= set(pushed.manifests)
    assert [d.digest for d in await client.get_referrers(repo, IMAGE)] == [SIG_A]

    merged_repo = _repo("multi-merged")
    await push_layout(client, layout, merged_repo, update_fallback_tags=True)
    refs = await client.get_referrers(merged_repo, IMAGE)
    assert sorted(d.digest for d in refs) == sorted([SIG_A, SIG_B])
    assert all(d.artifact_type == mt.NOTARY_SIGNATURE for d in refs)


async def test_missing_fallback_tag_is_created_and_merged(client: RegistryClient) -> None:
    """The timestamp layouts have no fallback tag: it is created as notation would."""
    repo = _repo("ts")
    pushed = await push_layout(client, LAYOUTS / "e2e-with-timestamped-signature", repo)
    assert pushed.tags == {"v1": TS_IMAGE}
    refs = await client.get_referrers(repo, TS_IMAGE)
    assert [d.digest for d in refs] == [TS_SIG]
    assert refs[0].artifact_type == mt.NOTARY_SIGNATURE
    assert refs[0].size == 729
    assert "io.cncf.notary.x509chain.thumbprint#S256" in refs[0].annotations
    index = await client.get_manifest(repo, fallback_tag(TS_IMAGE))
    assert isinstance(index.manifest, ImageIndex)
    assert index.descriptor.digest == pushed.fallback_tags[fallback_tag(TS_IMAGE)]

    # A referrer pushed later is merged into the existing index, not clobbering it.
    doc = json.loads((await client.get_manifest(repo, TS_SIG)).raw)
    doc["annotations"] = {"org.opencontainers.image.created": "2030-01-01T00:00:00Z"}
    raw = json.dumps(doc).encode()
    extra = await push_referrer(client, repo, raw)
    refs = await client.get_referrers(repo, TS_IMAGE)
    assert [d.digest for d in refs] == [TS_SIG, extra]
    assert refs[1].annotations == doc["annotations"]
    # Pushing the same layout again changes nothing.
    again = await push_layout(client, LAYOUTS / "e2e-with-timestamped-signature", repo)
    assert [d.digest for d in await client.get_referrers(repo, TS_IMAGE)] == [TS_SIG, extra]
    assert again.fallback_tags[fallback_tag(TS_IMAGE)] != index.descriptor.digest


def _extract(tar: Path, dest: Path) -> Path:
    with tarfile.open(tar) as archive:
        archive.extractall(dest, filter="data")
    return dest


async def test_buildx_layout_round_trip(client: RegistryClient, tmp_path: Path) -> None:
    layout = _extract(BUILDX_TAR, tmp_path / "buildx")
    repo = _repo("buildx")
    pushed = await push_layout(client, layout, repo, default_tag="latest")
    assert pushed.tags == {"latest": BUILDX_INDEX}
    assert pushed.manifests[-1] == BUILDX_INDEX  # children first, the index last
    assert len(pushed.manifests) == 5

    index = await client.get_manifest(repo, "latest")
    assert index.descriptor.digest == BUILDX_INDEX
    assert index.descriptor.media_type == mt.OCI_INDEX
    assert isinstance(index.manifest, ImageIndex)
    platforms = sorted(str(d.platform) for d in index.manifest.manifests)
    assert platforms == ["linux/amd64", "linux/arm64", "unknown/unknown", "unknown/unknown"]
    for child in index.manifest.manifests:
        fetched = await client.get_manifest(repo, child.digest)
        assert fetched.descriptor.digest == child.digest
        assert fetched.descriptor.size == child.size
        assert isinstance(fetched.manifest, ImageManifest)
        config = await client.get_blob(repo, fetched.manifest.config.digest, 1024 * 1024)
        assert compute_digest(config) == fetched.manifest.config.digest
        assert await blob_exists(client, repo, fetched.manifest.layers[0].digest)
    # No fallback tags: nothing refers to anything here.
    assert await client.list_tags(repo) == ["latest"]
    assert await client.get_referrers(repo, BUILDX_INDEX) == []


async def test_catalog_pages_follow_link(
    registry: RunningRegistry, http: httpx.AsyncClient
) -> None:
    """distribution 2.8 paginates the catalog with Link (it ignores ``n`` on tags/list)."""
    seen: list[httpx.URL] = []

    async def record(request: httpx.Request) -> None:
        seen.append(request.url)

    http.event_hooks["request"] = [record]
    client = RegistryClient(registry.host, http, page_size=2)
    prefix = f"cat{uuid.uuid4().hex[:6]}"
    names = [f"{prefix}/r{i}" for i in range(5)]
    blob = await push_blob(client, names[0], b"{}")
    for name in names:
        await push_blob(client, name, b"{}")
        assert await blob_exists(client, name, blob)
    seen.clear()
    repositories = await client.list_repositories()
    assert [r for r in repositories if r.startswith(prefix)] == names
    catalog_requests = [u for u in seen if u.path == "/v2/_catalog"]
    assert len(catalog_requests) >= 3
    assert all(u.params.get("n") == "2" for u in catalog_requests)


async def test_many_tags_listed(client: RegistryClient) -> None:
    repo = _repo("tags")
    await push_layout(client, LAYOUTS / "e2e", repo)
    raw = (await client.get_manifest(repo, "v1")).raw
    for tag in ["a", "b", "c", "d"]:
        assert await push_manifest(client, repo, tag, raw, mt.OCI_MANIFEST) == IMAGE
    assert sorted(await client.list_tags(repo)) == ["a", "b", "c", "d", "v1"]


async def test_not_found_errors_name_the_target(
    client: RegistryClient, registry: RunningRegistry
) -> None:
    repo = _repo("nf")
    await push_layout(client, LAYOUTS / "e2e", repo)
    with pytest.raises(
        NotFound, match=rf"^{registry.host}/{repo}:nope: not found \(MANIFEST_UNKNOWN"
    ):
        await client.get_manifest(repo, "nope")
    with pytest.raises(RepositoryNotFound, match="NAME_UNKNOWN"):
        await client.list_tags("test/does-not-exist")
    with pytest.raises(NotFound, match="BLOB_UNKNOWN"):
        await client.get_blob(repo, "sha256:" + "0" * 64, 100)


def _tamper(registry: RunningRegistry, digest: str) -> None:
    """Flip bytes of a stored blob in the registry's own storage (same length)."""
    path = registry_blob_path(registry, digest)
    data = path.read_bytes()
    path.write_bytes(data.replace(b"linux", b"LINUX") if b"linux" in data else data[::-1])


async def test_tampered_content_is_a_digest_mismatch(
    client: RegistryClient, registry: RunningRegistry
) -> None:
    """A real registry serving bytes that do not match their digest (storage tampered)."""
    repo = _repo("tamper")
    blob = await push_blob(client, repo, b"0123456789-" + repo.encode())
    manifest = {
        "schemaVersion": 2,
        "mediaType": mt.OCI_MANIFEST,
        "config": {"mediaType": mt.OCI_EMPTY, "digest": blob, "size": 11 + len(repo)},
        "layers": [],
        "annotations": {"os": "linux"},
    }
    raw = json.dumps(manifest).encode()
    digest = await push_manifest(client, repo, "v1", raw, mt.OCI_MANIFEST)
    _tamper(registry, blob)
    _tamper(registry, digest)
    with pytest.raises(DigestMismatch, match=f"{repo}@{blob}: content hashes to"):
        await client.get_blob(repo, blob, 1000)
    with pytest.raises(DigestMismatch, match=f"{repo}@{digest}: content hashes to"):
        await client.get_manifest(repo, digest)
    with pytest.raises(DigestMismatch, match=f"{repo}:v1 \\(Docker-Content-Digest\\)"):
        await client.get_manifest(repo, "v1")


async def test_blob_size_limit(client: RegistryClient) -> None:
    repo = _repo("big")
    data = b"x" * 5000
    digest = await push_blob(client, repo, data)
    assert await client.get_blob(repo, digest, 5000) == data
    with pytest.raises(TooLarge, match=f"{repo}@{digest}"):
        await client.get_blob(repo, digest, 4999)


async def test_manifest_size_limit(registry: RunningRegistry, http: httpx.AsyncClient) -> None:
    client = RegistryClient(registry.host, http, max_manifest_bytes=516)
    repo = _repo("bigm")
    await push_layout(RegistryClient(registry.host, http), LAYOUTS / "e2e", repo)
    with pytest.raises(TooLarge, match="516-byte limit"):
        await client.get_manifest(repo, "v1")
