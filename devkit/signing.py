"""Attach notation-compatible signatures to manifests in an OCI image layout.

The demo and the tests sign chosen nodes of their sample images with it, so the verifier meets
envelopes produced the way notation produces them. Demo and test material: not shipped.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

from cryptography import x509

from auditor.layout.writer import write_referrer
from auditor.model import Descriptor
from auditor.notary.crypto import PrivateKey
from auditor.notary.envelope import ENVELOPE_FORMATS
from auditor.notary.sign import sign_cose, sign_jws, signature_manifest
from auditor.oci import mediatypes as mt

# "jws" / "cose" -> the envelope media type, from the one envelope map.
_MEDIA_TYPES = {fmt.removeprefix("notation/"): media for media, fmt in ENVELOPE_FORMATS.items()}


def sign_in_layout(
    layout: Path,
    subject: Descriptor,
    key: PrivateKey,
    chain: Sequence[x509.Certificate],
    *,
    signing_time: datetime,
    envelope_format: str = "jws",
    expiry: datetime | None = None,
) -> Descriptor:
    """Sign ``subject`` and record the signature manifest in the layout at ``layout``.

    Like notation: the signature manifest is listed untagged in ``index.json`` and added to the
    subject's ``sha256-<hex>`` referrers fallback tag index. Returns the signature descriptor.
    """
    media_type = _MEDIA_TYPES[envelope_format]
    signer = sign_jws if media_type == mt.JWS_ENVELOPE else sign_cose
    envelope = signer(subject, key, chain, signing_time=signing_time, expiry=expiry)
    raw, blobs = signature_manifest(subject, envelope, media_type, created=signing_time)
    return write_referrer(layout, raw, blobs)
