"""Write into an OCI image layout: blobs, manifests, ``index.json`` entries, fallback indexes.

The counterpart of :mod:`auditor.layout.reader`. An OCI layout is not a registry, so this
lives beside the reader, not in ``registry/``. Referrers are recorded the way notation (via
oras) records them in a layout: the referrer manifest listed untagged in ``index.json`` and
added to the subject's ``sha256-<hex>`` referrers fallback tag index. Serialisation is compact
JSON, so every byte (and every digest) is a function of the document.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from auditor.errors import MalformedContent
from auditor.model import Descriptor
from auditor.oci import mediatypes as mt
from auditor.oci.digest import compute_digest, fallback_tag
from auditor.oci.manifest import (
    descriptor_json,
    parse_descriptor,
    parse_manifest,
    referrer_descriptor,
)


def init_layout(path: Path) -> None:
    """Create an empty layout (``oci-layout``, empty ``index.json``) unless one is there."""
    (path / "blobs" / "sha256").mkdir(parents=True, exist_ok=True)
    marker = path / "oci-layout"
    if not marker.exists():
        marker.write_bytes(encode_json({"imageLayoutVersion": "1.0.0"}))
    index = path / "index.json"
    if not index.exists():
        index.write_bytes(encode_json({"schemaVersion": 2, "manifests": []}))


def write_blob(path: Path, data: bytes) -> str:
    """Store ``data`` under ``blobs/sha256/`` and return its digest."""
    digest = compute_digest(data)
    target = path / "blobs" / "sha256" / digest.split(":", 1)[1]
    if not target.exists():
        target.write_bytes(data)
    return digest


def write_manifest(path: Path, document: Mapping[str, Any]) -> Descriptor:
    """Serialise a manifest or index, store it, and describe it (artifactType carried over)."""
    raw = encode_json(document)
    artifact_type = document.get("artifactType")
    return Descriptor(
        media_type=str(document["mediaType"]),
        digest=write_blob(path, raw),
        size=len(raw),
        artifact_type=artifact_type if isinstance(artifact_type, str) else None,
    )


def write_index(
    path: Path, manifests: list[Descriptor], *, annotations: Mapping[str, str] | None = None
) -> Descriptor:
    """An OCI image index over ``manifests`` (their platforms and annotations kept)."""
    document: dict[str, Any] = {
        "schemaVersion": 2,
        "mediaType": mt.OCI_INDEX,
        "manifests": [descriptor_json(d) for d in manifests],
    }
    if annotations:
        document["annotations"] = dict(annotations)
    return write_manifest(path, document)


def tag_manifest(path: Path, descriptor: Descriptor, tag: str | None) -> None:
    """Add ``descriptor`` to ``index.json``; a tag replaces whatever held that tag before.

    Untagged entries are added once per digest (notation records signature manifests so).
    """
    index_path = path / "index.json"
    index = json.loads(index_path.read_bytes())
    entries: list[dict[str, Any]] = index["manifests"]
    entry = descriptor_json(descriptor)
    if tag is None:
        if any(e.get("digest") == descriptor.digest and _ref_name(e) is None for e in entries):
            return
    else:
        entry["annotations"] = {**entry.get("annotations", {}), mt.ANNOTATION_REF_NAME: tag}
        entries = [
            e for e in entries if e.get("annotations", {}).get(mt.ANNOTATION_REF_NAME) != tag
        ]
    entries.append(entry)
    index["manifests"] = entries
    index_path.write_bytes(encode_json(index))


def add_to_fallback_index(path: Path, subject_digest: str, referrer: Descriptor) -> Descriptor:
    """Append ``referrer`` to the ``sha256-<hex>`` tag index of ``subject_digest`` and retag it.

    Like notation (via oras): read the current tag index if any, add the new descriptor unless
    already listed, write a new index and move the tag to it.
    """
    tag = fallback_tag(subject_digest)
    current: list[Descriptor] = []
    index = json.loads((path / "index.json").read_bytes())
    for entry in index["manifests"]:
        if _ref_name(entry) == tag:
            blob = path / "blobs" / "sha256" / entry["digest"].split(":", 1)[1]
            listed = json.loads(blob.read_bytes())["manifests"]
            current = [parse_descriptor(d, f"fallback index {tag}") for d in listed]
    if all(d.digest != referrer.digest for d in current):
        current.append(referrer)
    new_index = write_index(path, current)
    tag_manifest(path, new_index, tag)
    return new_index


def write_referrer(path: Path, raw: bytes, blobs: Mapping[str, bytes]) -> Descriptor:
    """Store a referrer manifest (``raw``, with its ``blobs``) and record it as notation does.

    The manifest must carry a ``subject``; it is listed untagged in ``index.json`` and added to
    the subject's fallback tag index. Returns the referrer's descriptor (artifact type and
    annotations as a referrers API would list them).
    """
    for blob in blobs.values():
        write_blob(path, blob)
    digest = write_blob(path, raw)
    manifest = parse_manifest(raw, mt.OCI_MANIFEST)
    if manifest.subject is None:
        raise MalformedContent(f"referrer manifest {digest} has no subject")
    descriptor = referrer_descriptor(manifest, digest, len(raw))
    tag_manifest(path, Descriptor(mt.OCI_MANIFEST, digest, len(raw), manifest.annotations), None)
    add_to_fallback_index(path, manifest.subject.digest, descriptor)
    return descriptor


def encode_json(document: Mapping[str, Any]) -> bytes:
    """Compact JSON, so a document's bytes (and digest) never vary."""
    return json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode()


def _ref_name(entry: Mapping[str, Any]) -> str | None:
    name = entry.get("annotations", {}).get(mt.ANNOTATION_REF_NAME)
    return name if isinstance(name, str) else None
