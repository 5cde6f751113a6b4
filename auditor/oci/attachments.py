"""Tags named like attachments: skipped only when their content is what the name says (pure).

Registries without a referrers API keep referrers under a fallback tag ``sha256-<hex>`` (an OCI
index listing the referrers of that digest), and cosign keeps signatures, attestations and SBOMs
under ``sha256-<hex>.sig|.att|.sbom``. Such tags name no image to audit. But a tag is only a
name: anyone who can push can put a runnable image under ``sha256-<hex>`` and have it pulled
from there. So a tag is skipped as an attachment only when its content matches its name;
anything else under such a name is audited like any tag.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from auditor.model import Descriptor
from auditor.oci import mediatypes as mt
from auditor.oci.manifest import ImageIndex, ImageManifest, Manifest

_NAME = re.compile(r"(sha256-[a-f0-9]{64}|sha512-[a-f0-9]{128})(?:\.(sig|att|sbom))?")
_COSIGN_LAYERS = {"sig": mt.COSIGN_SIMPLESIGNING, "att": mt.DSSE_ENVELOPE}


@dataclass(frozen=True)
class AttachmentTag:
    """What a tag's name claims: the referrers of ``subject`` (``kind`` ``referrers``) or a
    cosign ``sig`` / ``att`` / ``sbom`` attached to it."""

    tag: str
    subject: str
    kind: str


def attachment_tag(tag: str) -> AttachmentTag | None:
    """The claim made by an attachment-like tag name, or None for an ordinary tag."""
    match = _NAME.fullmatch(tag)
    if match is None:
        return None
    return AttachmentTag(tag, match.group(1).replace("-", ":", 1), match.group(2) or "referrers")


def is_filesystem_layer(descriptor: Descriptor) -> bool:
    return descriptor.media_type.startswith(mt.FILESYSTEM_LAYER_PREFIXES)


def impostor_reason(
    claim: AttachmentTag,
    manifest: Manifest,
    entry_subjects: Sequence[Descriptor | None] = (),
) -> str | None:
    """None when ``manifest`` is what ``claim`` says; otherwise why it must be audited.

    ``entry_subjects``: for a referrers claim, the ``subject`` of each index entry's manifest,
    in entry order (the caller fetched them).
    """
    if claim.kind == "referrers":
        if not isinstance(manifest, ImageIndex) or manifest.media_type != mt.OCI_INDEX:
            return f"tag {claim.tag} is not an OCI image index of referrers"
        if len(entry_subjects) != len(manifest.manifests):
            return f"tag {claim.tag}: the referrers it lists were not all read"
        for entry, subject in zip(manifest.manifests, entry_subjects, strict=True):
            if subject is None or subject.digest != claim.subject:
                return (
                    f"tag {claim.tag} lists {entry.digest}, which does not refer to {claim.subject}"
                )
        return None
    if not isinstance(manifest, ImageManifest):
        return f"tag {claim.tag} is an index, not a cosign {claim.kind} manifest"
    if not manifest.layers:
        return f"tag {claim.tag} has no layers, so it is no cosign {claim.kind} manifest"
    wanted = _COSIGN_LAYERS.get(claim.kind)
    for layer in manifest.layers:
        if (wanted is not None and layer.media_type != wanted) or is_filesystem_layer(layer):
            return (
                f"tag {claim.tag} has a {layer.media_type} layer, which a cosign "
                f"{claim.kind} manifest does not have"
            )
    return None
