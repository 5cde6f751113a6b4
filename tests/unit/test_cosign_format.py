"""The cosign format plug-in on real OCI layouts (auditor.layout.reader): what it claims, the
tags it names, and hostile signature manifests (bounded, never valid, each with its reason)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from auditor.cosign.format import CosignFormat, legacy_tag
from auditor.cosign.keys import load_pem_public_key
from auditor.cosign.trust import CosignRule, CosignTrust, parse_trusted_root
from auditor.layout.reader import OciLayoutSource
from auditor.layout.writer import init_layout, tag_manifest, write_blob
from auditor.model import Descriptor, SignatureResult, SignatureStatus
from auditor.oci import mediatypes as mt
from auditor.oci.digest import compute_digest
from tests.support.cosign_fixtures import CONTAINERS_IMAGE, TRUSTED_ROOT, legacy_signature
from tests.support.cosign_images import (
    bundle_image,
    fixture_legacy_image,
    sig_manifest,
    write_layout,
)

SCOPE = "oci-layout:/x"


@pytest.fixture(scope="module")
def trust() -> CosignTrust:
    key = load_pem_public_key((CONTAINERS_IMAGE / "cosign.pub").read_bytes(), "cosign.pub")
    rule = CosignRule("keys", (SCOPE,), keys=(key,), ignore_tlog=True)
    return CosignTrust((rule,), parse_trusted_root(TRUSTED_ROOT.read_bytes(), "root"))


def _legacy_desc(digest: str, subject: str) -> Descriptor:
    return Descriptor(
        mt.OCI_MANIFEST, digest, 1, annotations={mt.ANNOTATION_REF_NAME: legacy_tag(subject) or ""}
    )


def _legacy(stored: Descriptor, subject: str) -> Descriptor:
    return _legacy_desc(stored.digest, subject)


def test_claims_and_tags() -> None:
    fmt = CosignFormat(None)
    subject = "sha256:" + "a" * 64
    assert list(fmt.signature_tags(subject)) == [f"sha256-{'a' * 64}.sig"]
    assert list(fmt.signature_tags("sha512:" + "a" * 128)) == []
    assert fmt.claims(_legacy_desc("sha256:" + "1" * 64, subject))
    bundle = Descriptor(
        mt.OCI_MANIFEST, "sha256:" + "2" * 64, 1, artifact_type=mt.SIGSTORE_BUNDLE_V03
    )
    assert fmt.claims(bundle)
    signature = Descriptor(
        mt.OCI_MANIFEST,
        "sha256:" + "3" * 64,
        1,
        annotations={mt.ANNOTATION_BUNDLE_PREDICATE: mt.COSIGN_SIGN_PREDICATE},
        artifact_type=mt.SIGSTORE_BUNDLE_V03,
    )
    assert fmt.claims(signature)
    attestation = Descriptor(
        mt.OCI_MANIFEST,
        "sha256:" + "4" * 64,
        1,
        annotations={mt.ANNOTATION_BUNDLE_PREDICATE: "https://slsa.dev/provenance/v1"},
        artifact_type=mt.SIGSTORE_BUNDLE_V03,
    )
    assert not fmt.claims(attestation)
    notation = Descriptor(
        mt.OCI_MANIFEST, "sha256:" + "5" * 64, 1, artifact_type=mt.NOTARY_SIGNATURE
    )
    assert not fmt.claims(notation)
    assert not fmt.claims(
        Descriptor(
            mt.OCI_MANIFEST, "sha256:" + "6" * 64, 1, annotations={mt.ANNOTATION_REF_NAME: "v1.sig"}
        )
    )


async def _verify(
    fmt: CosignFormat, layout: Path, subject: str, signature: Descriptor, scope: str = SCOPE
) -> SignatureResult:
    source = OciLayoutSource(layout)
    try:
        return await fmt.fetch_and_verify(
            source, "", scope, Descriptor(mt.DOCKER_MANIFEST, subject, 1), signature
        )
    finally:
        source.close()


def _store_sig(layout: Path, raw: bytes, blobs: dict[str, bytes]) -> Descriptor:
    for blob in blobs.values():
        write_blob(layout, blob)
    digest = write_blob(layout, raw)
    tag_manifest(layout, Descriptor(mt.OCI_MANIFEST, digest, len(raw)), None)
    return Descriptor(mt.OCI_MANIFEST, digest, len(raw))


async def test_valid_legacy_and_no_trust_or_no_rule(tmp_path: Path, trust: CosignTrust) -> None:
    image = fixture_legacy_image("dir-img-cosign-valid-2")
    layout = write_layout(tmp_path / "l", [image])
    desc = _legacy_desc(image.signatures[0], image.subject)
    valid = await _verify(CosignFormat(trust), layout, image.subject, desc)
    assert valid.status is SignatureStatus.VALID, valid.reason
    assert valid.reason.startswith("layer 1 of 2: ")
    unverified = await _verify(CosignFormat(None), layout, image.subject, desc)
    assert unverified.status is SignatureStatus.UNVERIFIED
    assert unverified.format == "cosign/legacy"
    no_rule = await _verify(CosignFormat(trust), layout, image.subject, desc, scope="other")
    assert no_rule.status is SignatureStatus.ERROR
    assert "no cosign rule applies to 'other'" in no_rule.reason


async def test_too_many_layers_is_unchecked(tmp_path: Path, trust: CosignTrust) -> None:
    init_layout(tmp_path)
    sig = legacy_signature("dir-img-cosign-valid")
    raw, blobs = sig_manifest([sig] * 3)
    subject = "sha256:" + "7" * 64
    desc = _store_sig(tmp_path, raw, blobs)
    result = await _verify(
        CosignFormat(trust, max_layers=2), tmp_path, subject, _legacy(desc, subject)
    )
    assert result.status is SignatureStatus.ERROR
    assert "more than the limit of 2" in result.reason


async def test_oversized_and_lying_layers_are_invalid(tmp_path: Path, trust: CosignTrust) -> None:
    init_layout(tmp_path)
    sig = legacy_signature("dir-img-cosign-valid")
    raw, blobs = sig_manifest([sig])
    subject = json.loads(sig.payload)["critical"]["image"]["docker-manifest-digest"]
    desc = _store_sig(tmp_path, raw, blobs)
    big = await _verify(
        CosignFormat(trust, max_blob_bytes=16), tmp_path, subject, _legacy(desc, subject)
    )
    assert big.status is SignatureStatus.INVALID
    assert "exceeds the limit of 16" in big.reason
    doc = json.loads(raw)
    doc["layers"][0]["size"] -= 1
    lying = json.dumps(doc).encode()
    ldesc = _store_sig(tmp_path, lying, {})
    result = await _verify(CosignFormat(trust), tmp_path, subject, _legacy(ldesc, subject))
    assert result.status is SignatureStatus.INVALID, result.reason
    assert "its descriptor says" in result.reason
    doc["layers"][0]["digest"] = "sha256:" + "9" * 64
    doc["layers"][0]["size"] += 1
    absent = _store_sig(tmp_path, json.dumps(doc).encode(), {})
    missing = await _verify(CosignFormat(trust), tmp_path, subject, _legacy(absent, subject))
    assert missing.status is SignatureStatus.ERROR
    assert "cannot load layer" in missing.reason


async def test_empty_sig_manifest_and_index_are_invalid(tmp_path: Path, trust: CosignTrust) -> None:
    init_layout(tmp_path)
    subject = "sha256:" + "8" * 64
    raw, blobs = sig_manifest([])
    empty = _store_sig(tmp_path, raw, blobs)
    result = await _verify(CosignFormat(trust), tmp_path, subject, _legacy(empty, subject))
    assert result.status is SignatureStatus.INVALID
    assert "no layers" in result.reason
    index = json.dumps({"schemaVersion": 2, "mediaType": mt.OCI_INDEX, "manifests": []}).encode()
    idesc = _store_sig(tmp_path, index, {})
    result = await _verify(CosignFormat(trust), tmp_path, subject, _legacy(idesc, subject))
    assert result.status is SignatureStatus.INVALID


async def test_bundle_manifest_for_another_subject_or_without_bundle(
    tmp_path: Path, trust: CosignTrust
) -> None:
    one, two = bundle_image(1), bundle_image(2)
    layout = write_layout(tmp_path / "l", [one, two])
    referrer = Descriptor(
        mt.OCI_MANIFEST, one.signatures[0], 1, artifact_type=mt.SIGSTORE_BUNDLE_V03
    )
    result = await _verify(CosignFormat(trust), layout, two.subject, referrer)
    assert result.status is SignatureStatus.INVALID
    assert f"refers to {one.subject}, not to {two.subject}" in result.reason
    raw = next(r for r, _, _ in one.manifests if compute_digest(r) == one.signatures[0])
    doc = json.loads(raw)
    doc["layers"][0]["mediaType"] = "application/octet-stream"
    odd = _store_sig(layout, json.dumps(doc).encode(), {})
    bare = Descriptor(mt.OCI_MANIFEST, odd.digest, odd.size, artifact_type=mt.SIGSTORE_BUNDLE_V03)
    result = await _verify(CosignFormat(trust), layout, one.subject, bare)
    assert result.status is SignatureStatus.INVALID
    assert "0 bundle layers" in result.reason
