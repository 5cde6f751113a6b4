"""Deterministic sample images, written as an OCI image layout, for the demo and the tests.

A user's clone has no fixtures, so the project makes its own multi-platform images: real
gzip'd tar layers, real configs whose ``diff_ids`` match the layers, a buildx-style
attestation manifest, a nested index and a single-manifest tag. Every byte is a function of
the arguments (fixed timestamps, fixed gzip header), so digests are stable across runs.

It also writes referrers into a layout the way notation does (an untagged manifest entry in
``index.json`` plus a ``sha256-<hex>`` fallback tag index), so tests can attach real
signatures and push the result to a registry.
"""

from __future__ import annotations

import gzip
import io
import json
import tarfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from auditor.model import Descriptor, Platform
from auditor.oci import mediatypes as mt
from auditor.oci.digest import compute_digest, fallback_tag
from auditor.oci.manifest import descriptor_json, parse_descriptor

TAG = "v1"
NESTED_TAG = "v1-nested"
SINGLE_TAG = "v1-single"
PLATFORMS = ("linux/amd64", "linux/arm64/v8", "linux/ppc64le")
CREATED = "2024-01-01T00:00:00Z"
_EPOCH = 1704067200  # CREATED as a Unix time, for tar headers
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
IN_TOTO = "application/vnd.in-toto+json"
SLSA_PROVENANCE = "https://slsa.dev/provenance/v0.2"
_ANNOTATION_CREATED = "org.opencontainers.image.created"


@dataclass(frozen=True)
class SampleLayout:
    """Where the sample went and the descriptor of every manifest in it.

    Tags: ``TAG`` -> ``index``; ``NESTED_TAG`` -> ``nested_index`` (an index whose one entry is
    ``index``); ``SINGLE_TAG`` -> ``single`` (a lone linux/amd64 image manifest).
    ``platforms`` is keyed by ``os/arch[/variant]``; ``attestation`` refers to linux/amd64.
    """

    path: Path
    name: str
    index: Descriptor
    platforms: Mapping[str, Descriptor]
    attestation: Descriptor
    nested_index: Descriptor
    single: Descriptor


def write_sample_layout(path: Path, *, name: str = "sample") -> SampleLayout:
    """Write (or add to) a layout at ``path`` with the sample images; ``name`` varies content."""
    path = Path(path)
    init_layout(path)
    platforms: dict[str, Descriptor] = {}
    for text in PLATFORMS:
        platform = Platform.parse(text)
        manifest = _write_image(path, platform, f"hello from {name} on {text}\n")
        platforms[text] = _with(manifest, platform=platform)
    amd64 = platforms["linux/amd64"]
    attestation = _with(
        _write_attestation(path, name, amd64),
        platform=Platform("unknown", "unknown"),
        annotations={
            mt.ANNOTATION_REFERENCE_DIGEST: amd64.digest,
            mt.ANNOTATION_REFERENCE_TYPE: mt.ATTESTATION_MANIFEST,
        },
    )
    index = write_index(path, [*platforms.values(), attestation])
    nested = write_index(path, [index])
    single = _write_image(path, Platform("linux", "amd64"), f"single image of {name}\n")
    tag_manifest(path, index, TAG)
    tag_manifest(path, nested, NESTED_TAG)
    tag_manifest(path, single, SINGLE_TAG)
    return SampleLayout(path, name, index, platforms, attestation, nested, single)


# -- layout primitives (also used by tests to craft layouts) ---------------------------------


def init_layout(path: Path) -> None:
    """Create an empty layout (``oci-layout``, empty ``index.json``) unless one is there."""
    (path / "blobs" / "sha256").mkdir(parents=True, exist_ok=True)
    marker = path / "oci-layout"
    if not marker.exists():
        marker.write_bytes(_json({"imageLayoutVersion": "1.0.0"}))
    index = path / "index.json"
    if not index.exists():
        index.write_bytes(_json({"schemaVersion": 2, "manifests": []}))


def write_blob(path: Path, data: bytes) -> str:
    """Store ``data`` under ``blobs/sha256/`` and return its digest."""
    digest = compute_digest(data)
    target = path / "blobs" / "sha256" / digest.split(":", 1)[1]
    if not target.exists():
        target.write_bytes(data)
    return digest


def write_manifest(path: Path, document: Mapping[str, Any]) -> Descriptor:
    """Serialise a manifest or index, store it, and describe it (artifactType carried over)."""
    raw = _json(document)
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
    index_path.write_bytes(_json(index))


def _ref_name(entry: Mapping[str, Any]) -> str | None:
    name = entry.get("annotations", {}).get(mt.ANNOTATION_REF_NAME)
    return name if isinstance(name, str) else None


# -- referrers, the way notation writes them ------------------------------------------------


def attach_referrer(
    path: Path,
    subject: Descriptor,
    *,
    artifact_type: str,
    layer_media_type: str,
    layer: bytes,
    annotations: Mapping[str, str] | None = None,
    config_media_type: str = mt.OCI_EMPTY,
    set_artifact_type: bool = True,
    update_fallback_tag: bool = True,
) -> Descriptor:
    """Write a referrer manifest of ``subject`` with one layer, record it like notation does.

    notation 1.x writes ``config.mediaType = application/vnd.cncf.notary.signature`` and no
    ``artifactType``; pass ``config_media_type=artifact_type, set_artifact_type=False`` for
    that shape. The returned descriptor always carries ``artifact_type`` and the annotations.
    """
    config = Descriptor(config_media_type, write_blob(path, b"{}"), 2)
    layer_desc = Descriptor(layer_media_type, write_blob(path, layer), len(layer))
    document: dict[str, Any] = {"schemaVersion": 2, "mediaType": mt.OCI_MANIFEST}
    if set_artifact_type:
        document["artifactType"] = artifact_type
    document["config"] = descriptor_json(config)
    document["layers"] = [descriptor_json(layer_desc)]
    document["subject"] = descriptor_json(
        Descriptor(subject.media_type, subject.digest, subject.size)
    )
    if annotations:
        document["annotations"] = dict(annotations)
    written = write_manifest(path, document)
    referrer = Descriptor(
        media_type=written.media_type,
        digest=written.digest,
        size=written.size,
        annotations=annotations or {},
        artifact_type=artifact_type,
    )
    # index.json describes the manifest as it is: artifactType only when the manifest has one.
    tag_manifest(
        path,
        Descriptor(
            written.media_type,
            written.digest,
            written.size,
            annotations=annotations or {},
            artifact_type=written.artifact_type,
        ),
        None,
    )
    if update_fallback_tag:
        add_to_fallback_index(path, subject.digest, referrer)
    return referrer


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


# -- the sample images -----------------------------------------------------------------------


def _write_image(path: Path, platform: Platform, content: str) -> Descriptor:
    tar = _tar({"hello.txt": content.encode()})
    layer = gzip.compress(tar, compresslevel=9, mtime=0)
    layer_desc = Descriptor(OCI_LAYER_GZIP, write_blob(path, layer), len(layer))
    config: dict[str, Any] = {"architecture": platform.architecture, "os": platform.os}
    if platform.variant:
        config["variant"] = platform.variant
    config |= {
        "created": CREATED,
        "config": {"Env": ["PATH=/usr/local/bin:/usr/bin:/bin"], "WorkingDir": "/"},
        "rootfs": {"type": "layers", "diff_ids": [compute_digest(tar)]},
        "history": [{"created": CREATED, "created_by": "registry-auditor samples"}],
    }
    raw_config = _json(config)
    config_desc = Descriptor(OCI_CONFIG, write_blob(path, raw_config), len(raw_config))
    return write_manifest(
        path,
        {
            "schemaVersion": 2,
            "mediaType": mt.OCI_MANIFEST,
            "config": descriptor_json(config_desc),
            "layers": [descriptor_json(layer_desc)],
            "annotations": {_ANNOTATION_CREATED: CREATED},
        },
    )


def _write_attestation(path: Path, name: str, subject: Descriptor) -> Descriptor:
    """A buildx-style attestation manifest: an unknown/unknown image with an in-toto layer."""
    statement = _json(
        {
            "_type": "https://in-toto.io/Statement/v0.1",
            "predicateType": SLSA_PROVENANCE,
            "subject": [
                {
                    "name": f"pkg:docker/{name}@{TAG}?platform=linux%2Famd64",
                    "digest": {"sha256": subject.digest.split(":", 1)[1]},
                }
            ],
            "predicate": {
                "builder": {"id": "registry-auditor samples"},
                "buildType": "https://mobyproject.org/buildkit@v1",
                "metadata": {"buildStartedOn": CREATED, "buildFinishedOn": CREATED},
            },
        }
    )
    layer = Descriptor(
        IN_TOTO,
        write_blob(path, statement),
        len(statement),
        annotations={"in-toto.io/predicate-type": SLSA_PROVENANCE},
    )
    raw_config = _json(
        {
            "architecture": "unknown",
            "os": "unknown",
            "config": {},
            "rootfs": {"type": "layers", "diff_ids": [layer.digest]},
        }
    )
    config = Descriptor(OCI_CONFIG, write_blob(path, raw_config), len(raw_config))
    return write_manifest(
        path,
        {
            "schemaVersion": 2,
            "mediaType": mt.OCI_MANIFEST,
            "config": descriptor_json(config),
            "layers": [descriptor_json(layer)],
        },
    )


def _tar(files: Mapping[str, bytes]) -> bytes:
    """A ustar archive with fixed owners, modes and times, so its bytes never vary."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.USTAR_FORMAT) as archive:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size, info.mtime, info.mode = len(data), _EPOCH, 0o644
            info.uid = info.gid = 0
            info.uname = info.gname = "root"
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def _json(document: Mapping[str, Any]) -> bytes:
    return json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode()


def _with(
    descriptor: Descriptor,
    *,
    platform: Platform | None = None,
    annotations: Mapping[str, str] | None = None,
) -> Descriptor:
    return Descriptor(
        media_type=descriptor.media_type,
        digest=descriptor.digest,
        size=descriptor.size,
        annotations=annotations if annotations is not None else descriptor.annotations,
        platform=platform or descriptor.platform,
        artifact_type=descriptor.artifact_type,
    )
