"""Deterministic sample images, written as an OCI image layout, for the demo and the tests.

A user's clone has no fixtures, so the project makes its own multi-platform images: real
gzip'd tar layers, real configs whose ``diff_ids`` match the layers, a buildx-style
attestation manifest, a nested index and a single-manifest tag. Every byte is a function of
the arguments (fixed timestamps, fixed gzip header), so digests are stable across runs.

It also attaches arbitrary one-layer referrers (recorded the way notation records them, through
:mod:`auditor.layout.writer`), so tests can craft referrers of any artifact type. Demo and test
material: not shipped in the wheel.
"""

from __future__ import annotations

import gzip
import io
import tarfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from auditor.layout.writer import (
    add_to_fallback_index,
    encode_json,
    init_layout,
    tag_manifest,
    write_blob,
    write_index,
    write_manifest,
)
from auditor.model import Descriptor, Platform
from auditor.oci import mediatypes as mt
from auditor.oci.digest import compute_digest
from auditor.oci.manifest import descriptor_json

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
    raw_config = encode_json(config)
    config_desc = Descriptor(OCI_CONFIG, write_blob(path, raw_config), len(raw_config))
    return write_manifest(
        path,
        {
            "schemaVersion": 2,
            "mediaType": mt.OCI_MANIFEST,
            "config": descriptor_json(config_desc),
            "layers": [descriptor_json(layer_desc)],
            "annotations": {mt.ANNOTATION_CREATED: CREATED},
        },
    )


def _write_attestation(path: Path, name: str, subject: Descriptor) -> Descriptor:
    """A buildx-style attestation manifest: an unknown/unknown image with an in-toto layer."""
    statement = encode_json(
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
    raw_config = encode_json(
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
