"""Parse manifest bytes into typed objects at the boundary, so nothing passes bare dicts around."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from auditor.errors import MalformedContent, UnsupportedMediaType
from auditor.model import Descriptor, Platform
from auditor.oci import mediatypes as mt
from auditor.oci.digest import is_valid_digest


@dataclass(frozen=True)
class ImageManifest:
    media_type: str
    config: Descriptor
    layers: tuple[Descriptor, ...]
    subject: Descriptor | None
    artifact_type: str | None
    annotations: Mapping[str, str]

    @property
    def effective_artifact_type(self) -> str:
        """artifactType, or the config media type as the OCI spec says for older artifacts."""
        return self.artifact_type or self.config.media_type


@dataclass(frozen=True)
class ImageIndex:
    media_type: str
    manifests: tuple[Descriptor, ...]
    subject: Descriptor | None
    artifact_type: str | None
    annotations: Mapping[str, str]

    @property
    def effective_artifact_type(self) -> str | None:
        return self.artifact_type


Manifest = ImageManifest | ImageIndex


@dataclass(frozen=True)
class FetchedManifest:
    """A manifest whose bytes were checked against its digest before parsing."""

    descriptor: Descriptor
    raw: bytes
    manifest: Manifest


def _str_map(value: Any, where: str) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        raise MalformedContent(f"{where}: annotations must map strings to strings")
    return dict(value)


def parse_platform(value: Any, where: str) -> Platform | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise MalformedContent(f"{where}: platform must be an object")
    os_, arch = value.get("os"), value.get("architecture")
    variant, os_version = value.get("variant"), value.get("os.version")
    if not isinstance(os_, str) or not isinstance(arch, str):
        raise MalformedContent(f"{where}: platform needs string os and architecture")
    if variant is not None and not isinstance(variant, str):
        raise MalformedContent(f"{where}: platform variant must be a string")
    if os_version is not None and not isinstance(os_version, str):
        raise MalformedContent(f"{where}: platform os.version must be a string")
    return Platform(os_, arch, variant or None, os_version)


def parse_descriptor(value: Any, where: str) -> Descriptor:
    """Validate one descriptor object; ``where`` names it in the error."""
    if not isinstance(value, dict):
        raise MalformedContent(f"{where}: descriptor must be an object")
    media_type, digest, size = value.get("mediaType"), value.get("digest"), value.get("size")
    if not isinstance(media_type, str) or not media_type:
        raise MalformedContent(f"{where}: descriptor has no mediaType")
    if not isinstance(digest, str) or not is_valid_digest(digest):
        raise MalformedContent(f"{where}: descriptor digest {digest!r} is not a valid digest")
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise MalformedContent(f"{where}: descriptor size must be a non-negative integer")
    artifact_type = value.get("artifactType")
    if artifact_type is not None and not isinstance(artifact_type, str):
        raise MalformedContent(f"{where}: artifactType must be a string")
    return Descriptor(
        media_type=media_type,
        digest=digest,
        size=size,
        annotations=_str_map(value.get("annotations"), where),
        platform=parse_platform(value.get("platform"), where),
        artifact_type=artifact_type,
    )


def parse_manifest(raw: bytes, media_type: str | None = None, where: str = "manifest") -> Manifest:
    """Parse an image manifest or index.

    ``media_type`` is what the registry's Content-Type said; the body's own ``mediaType`` wins
    when present, and the two must not contradict each other.
    """
    try:
        doc = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise MalformedContent(f"{where}: not valid JSON ({exc})") from None
    if not isinstance(doc, dict):
        raise MalformedContent(f"{where}: top level is not a JSON object")
    body_type = doc.get("mediaType")
    if body_type is not None and not isinstance(body_type, str):
        raise MalformedContent(f"{where}: mediaType must be a string")
    if body_type and media_type and media_type in mt.MANIFEST_TYPES and body_type != media_type:
        raise MalformedContent(
            f"{where}: body mediaType {body_type} contradicts Content-Type {media_type}"
        )
    kind = body_type or media_type
    if kind is None:
        # OCI allows mediaType to be omitted; decide by shape.
        kind = mt.OCI_INDEX if "manifests" in doc else mt.OCI_MANIFEST
    if doc.get("schemaVersion") != 2:
        raise MalformedContent(f"{where}: schemaVersion must be 2")
    annotations = _str_map(doc.get("annotations"), where)
    subject = parse_descriptor(doc["subject"], f"{where} subject") if "subject" in doc else None
    artifact_type = doc.get("artifactType")
    if artifact_type is not None and not isinstance(artifact_type, str):
        raise MalformedContent(f"{where}: artifactType must be a string")
    if kind in mt.INDEX_TYPES:
        entries = doc.get("manifests")
        if not isinstance(entries, list):
            raise MalformedContent(f"{where}: index has no manifests list")
        return ImageIndex(
            media_type=kind,
            manifests=tuple(
                parse_descriptor(e, f"{where} manifests[{i}]") for i, e in enumerate(entries)
            ),
            subject=subject,
            artifact_type=artifact_type,
            annotations=annotations,
        )
    if kind in mt.IMAGE_MANIFEST_TYPES:
        if "config" not in doc:
            raise MalformedContent(f"{where}: image manifest has no config")
        layers = doc.get("layers", [])
        if not isinstance(layers, list):
            raise MalformedContent(f"{where}: layers must be a list")
        return ImageManifest(
            media_type=kind,
            config=parse_descriptor(doc["config"], f"{where} config"),
            layers=tuple(parse_descriptor(e, f"{where} layers[{i}]") for i, e in enumerate(layers)),
            subject=subject,
            artifact_type=artifact_type,
            annotations=annotations,
        )
    raise UnsupportedMediaType(f"{where}: unsupported manifest media type {kind}")


def descriptor_json(descriptor: Descriptor) -> dict[str, Any]:
    """A descriptor as OCI JSON, the inverse of parse_descriptor (for manifests we write)."""
    out: dict[str, Any] = {
        "mediaType": descriptor.media_type,
        "digest": descriptor.digest,
        "size": descriptor.size,
    }
    if descriptor.annotations:
        out["annotations"] = dict(descriptor.annotations)
    if descriptor.artifact_type:
        out["artifactType"] = descriptor.artifact_type
    if descriptor.platform is not None:
        platform: dict[str, str] = {
            "architecture": descriptor.platform.architecture,
            "os": descriptor.platform.os,
        }
        if descriptor.platform.variant:
            platform["variant"] = descriptor.platform.variant
        if descriptor.platform.os_version:
            platform["os.version"] = descriptor.platform.os_version
        out["platform"] = platform
    return out


def referrer_descriptor(manifest: Manifest, digest: str, size: int) -> Descriptor:
    """How a referrer is listed in a referrers (or fallback tag) index: with its artifactType
    (the config media type for older artifacts) and its annotations."""
    return Descriptor(
        media_type=manifest.media_type,
        digest=digest,
        size=size,
        annotations=manifest.annotations,
        artifact_type=manifest.effective_artifact_type,
    )
