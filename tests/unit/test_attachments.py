"""Attachment-named tags are skipped only when their content is what the name says (pure rule)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from auditor.model import Descriptor
from auditor.oci import mediatypes as mt
from auditor.oci.attachments import attachment_tag, impostor_reason
from auditor.oci.manifest import Manifest, parse_manifest

SUBJECT = "sha256:" + "a" * 64
OTHER = "sha256:" + "b" * 64
TAG = "sha256-" + "a" * 64


def desc(media_type: str, digest: str = OTHER, size: int = 10) -> dict[str, Any]:
    return {"mediaType": media_type, "digest": digest, "size": size}


def image(*layer_types: str) -> Manifest:
    doc = {
        "schemaVersion": 2,
        "mediaType": mt.OCI_MANIFEST,
        "config": desc("application/vnd.oci.image.config.v1+json"),
        "layers": [desc(t) for t in layer_types],
    }
    return parse_manifest(json.dumps(doc).encode())


def index(*entries: dict[str, Any], media_type: str = mt.OCI_INDEX) -> Manifest:
    doc = {"schemaVersion": 2, "mediaType": media_type, "manifests": list(entries)}
    return parse_manifest(json.dumps(doc).encode())


def claim(suffix: str = "") -> Any:
    found = attachment_tag(TAG + suffix)
    assert found is not None
    return found


def test_a_genuine_fallback_index_lists_referrers_of_its_digest() -> None:
    listed = index(desc(mt.OCI_MANIFEST), desc(mt.OCI_MANIFEST, SUBJECT[:-1] + "c"))
    subject = Descriptor(mt.OCI_MANIFEST, SUBJECT, 10)
    assert impostor_reason(claim(), listed, [subject, subject]) is None
    assert impostor_reason(claim(), index(), []) is None  # every referrer deleted


@pytest.mark.parametrize(
    ("content", "subjects", "why"),
    [
        (image("application/vnd.oci.image.layer.v1.tar+gzip"), [], "not an OCI image index"),
        (index(desc(mt.OCI_MANIFEST), media_type=mt.DOCKER_MANIFEST_LIST), [None], "not an OCI"),
        (index(desc(mt.OCI_MANIFEST)), [None], "does not refer to"),
        (index(desc(mt.OCI_MANIFEST)), [Descriptor(mt.OCI_MANIFEST, OTHER, 1)], "does not refer"),
        (index(desc(mt.OCI_MANIFEST)), [], "not all read"),
    ],
)
def test_anything_else_under_a_fallback_name_is_audited(
    content: Manifest, subjects: list[Descriptor | None], why: str
) -> None:
    reason = impostor_reason(claim(), content, subjects)
    assert reason is not None
    assert why in reason


def test_cosign_tags() -> None:
    assert impostor_reason(claim(".sig"), image(mt.COSIGN_SIMPLESIGNING)) is None
    assert impostor_reason(claim(".att"), image(mt.DSSE_ENVELOPE, mt.DSSE_ENVELOPE)) is None
    assert impostor_reason(claim(".sbom"), image("text/spdx+json")) is None
    runnable = image("application/vnd.oci.image.layer.v1.tar+gzip")
    docker_layer = image(
        mt.COSIGN_SIMPLESIGNING, "application/vnd.docker.image.rootfs.diff.tar.gzip"
    )
    for suffix, content in (
        (".sig", runnable),
        (".att", runnable),
        (".sbom", runnable),
        (".sig", docker_layer),
        (".sig", image(mt.DSSE_ENVELOPE)),
        (".att", image(mt.COSIGN_SIMPLESIGNING)),
        (".sig", image()),
        (".sig", index(desc(mt.OCI_MANIFEST))),
    ):
        assert impostor_reason(claim(suffix), content) is not None, (suffix, content)
