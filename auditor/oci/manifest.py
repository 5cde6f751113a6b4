"""Parse manifest bytes into typed objects at the boundary, so nothing passes bare dicts around."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from auditor import gojson
from auditor.errors import MalformedContent, UnsupportedMediaType
from auditor.gojson import fields
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


_MAX_SIZE = 2**63 - 1  # Go reads sizes as int64; anything larger is an error there

_DESCRIPTOR_FIELDS = ("mediaType", "digest", "size", "annotations", "platform", "artifactType")
_PLATFORM_FIELDS = ("os", "architecture", "variant", "os.version")
_MANIFEST_FIELDS = (
    "schemaVersion",
    "mediaType",
    "artifactType",
    "manifests",
    "config",
    "layers",
    "subject",
    "annotations",
)


def _str_map(value: Any, where: str) -> dict[str, str]:
    """A map of strings (annotations): Go map keys are exact, and gojson refused duplicates."""
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        raise MalformedContent(f"{where}: annotations must map strings to strings")
    return dict(value)


def _optional_str(value: Any, where: str, name: str) -> str | None:
    if value is not None and not isinstance(value, str):
        raise MalformedContent(f"{where}: {name} must be a string")
    return value


def parse_platform(value: Any, where: str) -> Platform | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise MalformedContent(f"{where}: platform must be an object")
    doc = fields(value, _PLATFORM_FIELDS, f"{where} platform")
    os_, arch = doc.get("os"), doc.get("architecture")
    if not isinstance(os_, str) or not isinstance(arch, str):
        raise MalformedContent(f"{where}: platform needs string os and architecture")
    variant = _optional_str(doc.get("variant"), where, "platform variant")
    os_version = _optional_str(doc.get("os.version"), where, "platform os.version")
    return Platform(os_, arch, variant or None, os_version)


def parse_descriptor(value: Any, where: str) -> Descriptor:
    """Validate one descriptor object; ``where`` names it in the error."""
    if not isinstance(value, dict):
        raise MalformedContent(f"{where}: descriptor must be an object")
    doc = fields(value, _DESCRIPTOR_FIELDS, where)
    media_type, digest, size = doc.get("mediaType"), doc.get("digest"), doc.get("size")
    if not isinstance(media_type, str) or not media_type:
        raise MalformedContent(f"{where}: descriptor has no mediaType")
    if not isinstance(digest, str) or not is_valid_digest(digest):
        raise MalformedContent(f"{where}: descriptor digest {digest!r} is not a valid digest")
    if not isinstance(size, int) or isinstance(size, bool) or not 0 <= size <= _MAX_SIZE:
        raise MalformedContent(f"{where}: descriptor size must be a non-negative 64-bit integer")
    return Descriptor(
        media_type=media_type,
        digest=digest,
        size=size,
        annotations=_str_map(doc.get("annotations"), where),
        platform=parse_platform(doc.get("platform"), where),
        artifact_type=_optional_str(doc.get("artifactType"), where, "artifactType"),
    )


def parse_manifest(raw: bytes, media_type: str | None = None, where: str = "manifest") -> Manifest:
    """Parse an image manifest or index, reading its JSON as Go does (or refusing it).

    ``media_type`` is what the registry's Content-Type said; the body's own ``mediaType`` wins
    when present, and the two must not contradict each other.
    """
    top = gojson.loads(raw, where)
    if not isinstance(top, dict):
        raise MalformedContent(f"{where}: top level is not a JSON object")
    doc = fields(top, _MANIFEST_FIELDS, where)
    body_type = _optional_str(doc.get("mediaType"), where, "mediaType")
    if body_type and media_type and media_type in mt.MANIFEST_TYPES and body_type != media_type:
        raise MalformedContent(
            f"{where}: body mediaType {body_type} contradicts Content-Type {media_type}"
        )
    kind = body_type or media_type
    if kind is None:
        # OCI allows mediaType to be omitted; decide by shape.
        kind = mt.OCI_INDEX if "manifests" in doc else mt.OCI_MANIFEST
    version = doc.get("schemaVersion")
    if not isinstance(version, int) or isinstance(version, bool) or version != 2:
        raise MalformedContent(f"{where}: schemaVersion must be 2")
    annotations = _str_map(doc.get("annotations"), where)
    subject = doc.get("subject")
    subject_desc = parse_descriptor(subject, f"{where} subject") if subject is not None else None
    artifact_type = _optional_str(doc.get("artifactType"), where, "artifactType")
    if kind in mt.INDEX_TYPES:
        entries = doc.get("manifests")
        if not isinstance(entries, list):
            raise MalformedContent(f"{where}: index has no manifests list")
        return ImageIndex(
            media_type=kind,
            manifests=tuple(
                parse_descriptor(e, f"{where} manifests[{i}]") for i, e in enumerate(entries)
            ),
            subject=subject_desc,
            artifact_type=artifact_type,
            annotations=annotations,
        )
    if kind in mt.IMAGE_MANIFEST_TYPES:
        if doc.get("config") is None:
            raise MalformedContent(f"{where}: image manifest has no config")
        layers = doc.get("layers")
        if layers is None:
            layers = []
        if not isinstance(layers, list):
            raise MalformedContent(f"{where}: layers must be a list")
        return ImageManifest(
            media_type=kind,
            config=parse_descriptor(doc["config"], f"{where} config"),
            layers=tuple(parse_descriptor(e, f"{where} layers[{i}]") for i, e in enumerate(layers)),
            subject=subject_desc,
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
