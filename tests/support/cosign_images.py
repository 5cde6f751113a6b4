"""The cosign fixtures in their native shape, for the real registry and for OCI layouts.

* legacy: the signed image manifest under a tag, and beside it the ``sha256-<hex>.sig`` tag
  holding an OCI manifest with one simple-signing layer per containers/image signature file
  (blob = payload, layer annotations = the file's annotations), as cosign pushes it.
* bundle: the signed manifest, the bundle blob and the referrer manifest exactly as cosign v3
  pushed them (byte for byte, so every digest is the logged one), plus the ``sha256-<hex>``
  fallback index written the way cosign writes it: the entry's artifactType is
  ``application/vnd.oci.empty.v1+json`` (the config media type), with the manifest's
  annotations.

The fixtures carry manifests but not the image layers they list (nor does the auditor ever
read image layers). distribution refuses a manifest whose blobs it does not hold, so for the
registry the absent layers are stood in for by placeholder files written straight into the
registry's filesystem storage (``seed_absent_blob``); the manifest bytes stay exact. Layouts
need no placeholders: the layout reader reads manifests and signature blobs only.
"""

from __future__ import annotations

import asyncio
import base64
import json
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from auditor.layout.writer import init_layout, tag_manifest, write_blob
from auditor.model import Descriptor
from auditor.oci import mediatypes as mt
from auditor.oci.digest import compute_digest, fallback_tag
from auditor.oci.manifest import ImageManifest, parse_manifest
from auditor.registry.client import RegistryClient
from auditor.registry.push import push_blob, push_manifest
from tests.support.cosign_fixtures import (
    ATTESTATION_BUNDLE,
    LegacySignature,
    legacy_manifest,
    legacy_signature,
    toolkit_output,
)
from tests.support.registry_server import RunningRegistry, registry_blob_path

EMPTY_CONFIG = b"{}"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"


@dataclass
class NativeImage:
    """What to store: blobs, manifests (with a tag or by digest only), absent image layers."""

    subject: str  # digest of the signed manifest
    tag: str
    blobs: dict[str, bytes] = field(default_factory=dict)
    manifests: list[tuple[bytes, str, str | None]] = field(default_factory=list)
    absent: list[str] = field(default_factory=list)
    signatures: list[str] = field(default_factory=list)  # digests of signature manifests


def _compact(document: object) -> bytes:
    return json.dumps(document, separators=(",", ":")).encode()


def sig_manifest(signatures: list[LegacySignature]) -> tuple[bytes, dict[str, bytes]]:
    """A ``.sig`` manifest as cosign builds it: config listing the layers, one layer each."""
    layers = []
    blobs: dict[str, bytes] = {}
    for sig in signatures:
        digest = compute_digest(sig.payload)
        blobs[digest] = sig.payload
        layers.append(
            {
                "mediaType": sig.media_type,
                "size": len(sig.payload),
                "digest": digest,
                "annotations": sig.annotations,
            }
        )
    config = _compact(
        {
            "architecture": "",
            "config": {},
            "created": "0001-01-01T00:00:00Z",
            "history": [{"created": "0001-01-01T00:00:00Z"}],
            "os": "",
            "rootfs": {"type": "layers", "diff_ids": [layer["digest"] for layer in layers]},
        }
    )
    blobs[compute_digest(config)] = config
    manifest = {
        "schemaVersion": 2,
        "mediaType": mt.OCI_MANIFEST,
        "config": {"mediaType": OCI_CONFIG, "size": len(config), "digest": compute_digest(config)},
        "layers": layers,
    }
    return _compact(manifest), blobs


def _image_blobs(raw: bytes) -> list[str]:
    manifest = parse_manifest(raw)
    assert isinstance(manifest, ImageManifest)
    return [manifest.config.digest, *(layer.digest for layer in manifest.layers)]


def legacy_image(
    subject_raw: bytes, signatures: list[LegacySignature], tag: str = "v1"
) -> NativeImage:
    subject = compute_digest(subject_raw)
    media_type = json.loads(subject_raw)["mediaType"]
    image = NativeImage(subject=subject, tag=tag, absent=_image_blobs(subject_raw))
    image.manifests.append((subject_raw, media_type, tag))
    raw, blobs = sig_manifest(signatures)
    image.blobs.update(blobs)
    sig_tag = f"{subject.replace(':', '-')}.sig"
    image.manifests.append((raw, mt.OCI_MANIFEST, sig_tag))
    image.signatures.append(compute_digest(raw))
    return image


def fixture_legacy_image(folder: str, subject_folder: str | None = None) -> NativeImage:
    """A containers/image fixture: its manifest (or ``subject_folder``'s) and its signatures."""
    sigs = []
    n = 1
    while True:
        try:
            sigs.append(legacy_signature(folder, n))
        except FileNotFoundError:
            break
        n += 1
    return legacy_image(legacy_manifest(subject_folder or folder), sigs)


def cosign_fallback_index(referrers: list[tuple[bytes, str]]) -> bytes:
    """The fallback index cosign (go-containerregistry) writes: artifactType from the config."""
    entries = []
    for raw, digest in referrers:
        doc = json.loads(raw)
        entry = {
            "mediaType": doc["mediaType"],
            "size": len(raw),
            "digest": digest,
            "artifactType": doc["config"]["mediaType"],
        }
        if doc.get("annotations"):
            entry["annotations"] = doc["annotations"]
        entries.append(entry)
    return _compact({"schemaVersion": 2, "mediaType": mt.OCI_INDEX, "manifests": entries})


def referrer_manifest(bundle: bytes, subject_raw: bytes, predicate: str | None) -> bytes:
    """A bundle referrer in cosign v3's shape, for bundles the fixtures carry without one."""
    subject = json.loads(subject_raw)
    annotations = {"dev.sigstore.bundle.content": "dsse-envelope"}
    if predicate is not None:
        annotations[mt.ANNOTATION_BUNDLE_PREDICATE] = predicate
    return _compact(
        {
            "schemaVersion": 2,
            "mediaType": mt.OCI_MANIFEST,
            "config": {
                "mediaType": mt.OCI_EMPTY,
                "size": 2,
                "digest": compute_digest(EMPTY_CONFIG),
                "artifactType": mt.SIGSTORE_BUNDLE_V03,
            },
            "layers": [
                {
                    "mediaType": mt.SIGSTORE_BUNDLE_V03,
                    "size": len(bundle),
                    "digest": compute_digest(bundle),
                }
            ],
            "annotations": annotations,
            "subject": {
                "mediaType": subject["mediaType"],
                "size": len(subject_raw),
                "digest": compute_digest(subject_raw),
            },
            "artifactType": mt.SIGSTORE_BUNDLE_V03,
        }
    )


def bundle_image(
    n: int,
    *,
    tag: str = "v1",
    attach: list[tuple[bytes, bytes]] | None = None,
    own_bundle: bool = True,
) -> NativeImage:
    """actions-toolkit output ``n`` with its own bundle (unless ``own_bundle`` is False) and any
    extra (bundle, referrer manifest) pairs."""
    out = toolkit_output(n)
    absent = [d for d in _image_blobs(out.subject) if d != compute_digest(EMPTY_CONFIG)]
    image = NativeImage(subject=out.subject_digest, tag=tag, absent=absent)
    image.blobs[compute_digest(EMPTY_CONFIG)] = EMPTY_CONFIG
    image.manifests.append((out.subject, mt.OCI_MANIFEST, tag))
    referrers = [*([(out.bundle, out.referrer)] if own_bundle else []), *(attach or [])]
    listed = []
    for bundle, referrer in referrers:
        image.blobs[compute_digest(bundle)] = bundle
        digest = compute_digest(referrer)
        image.manifests.append((referrer, mt.OCI_MANIFEST, None))
        predicate = json.loads(referrer).get("annotations", {}).get(mt.ANNOTATION_BUNDLE_PREDICATE)
        if predicate in (None, mt.COSIGN_SIGN_PREDICATE):
            image.signatures.append(digest)  # an attestation is listed, never a signature
        listed.append((referrer, digest))
    image.manifests.append(
        (cosign_fallback_index(listed), mt.OCI_INDEX, fallback_tag(out.subject_digest))
    )
    return image


def attestation_referrer(subject_raw: bytes, predicate: str | None) -> tuple[bytes, bytes]:
    bundle = ATTESTATION_BUNDLE.read_bytes()
    return bundle, referrer_manifest(bundle, subject_raw, predicate)


# --- storing ---------------------------------------------------------------------------------


def write_layout(path: Path, images: list[NativeImage]) -> Path:
    """All ``images`` in one OCI layout (tags in index.json, referrers listed untagged)."""
    init_layout(path)
    for image in images:
        for blob in image.blobs.values():
            write_blob(path, blob)
        for raw, media_type, tag in image.manifests:
            digest = write_blob(path, raw)
            tag_manifest(path, Descriptor(media_type, digest, len(raw)), tag)
    return path


def seed_absent_blob(registry: RunningRegistry, repository: str, digest: str) -> None:
    """Stand in for an image layer the fixture does not carry (see the module docstring)."""
    data = registry_blob_path(registry, digest)
    data.parent.mkdir(parents=True, exist_ok=True)
    if not data.exists():
        data.write_bytes(b"placeholder: layer not carried by the fixture")
    hexdigest = digest.split(":", 1)[1]
    link = (
        registry.root
        / "data/docker/registry/v2/repositories"
        / repository
        / "_layers/sha256"
        / hexdigest
        / "link"
    )
    link.parent.mkdir(parents=True, exist_ok=True)
    link.write_text(digest)


def push_images(registry: RunningRegistry, repository: str, images: list[NativeImage]) -> None:
    for image in images:
        for digest in image.absent:
            seed_absent_blob(registry, repository, digest)

    async def run() -> None:
        async with httpx.AsyncClient(timeout=30.0) as http:
            client = RegistryClient(registry.host, http)
            for image in images:
                for digest, blob in image.blobs.items():
                    await push_blob(client, repository, blob, digest)
                for raw, media_type, tag in image.manifests:
                    reference = tag or compute_digest(raw)
                    await push_manifest(client, repository, reference, raw, media_type)

    asyncio.run(run())


# --- cosign-signing our own images (for the mixed-format coverage tests) --------------------


def simple_signing_payload(digest: str, reference: str) -> bytes:
    return _compact(
        {
            "critical": {
                "identity": {"docker-reference": reference},
                "image": {"docker-manifest-digest": digest},
                "type": "cosign container image signature",
            },
            "optional": None,
        }
    )


def cosign_sign(digest: str, key: ec.EllipticCurvePrivateKey, reference: str) -> LegacySignature:
    """A key-based legacy signature (no transparency log) as ``cosign sign --key`` makes one."""
    payload = simple_signing_payload(digest, reference)
    signature = key.sign(payload, ec.ECDSA(hashes.SHA256()))
    return LegacySignature(
        mt.COSIGN_SIMPLESIGNING,
        payload,
        {"dev.cosignproject.cosign/signature": base64.b64encode(signature).decode()},
    )


def cosign_sign_in_layout(
    path: Path, digest: str, key: ec.EllipticCurvePrivateKey, reference: str = "local/image"
) -> str:
    """Attach a legacy cosign signature of ``digest`` in the layout; returns the .sig manifest's
    digest."""
    raw, blobs = sig_manifest([cosign_sign(digest, key, reference)])
    for blob in blobs.values():
        write_blob(path, blob)
    sig = write_blob(path, raw)
    tag_manifest(
        path, Descriptor(mt.OCI_MANIFEST, sig, len(raw)), f"{digest.replace(':', '-')}.sig"
    )
    return sig
