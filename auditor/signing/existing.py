"""Has this certificate already signed this node? What makes ``auditor sign`` idempotent.

A node counts as already signed when one of its Notary signatures (a) carries our leaf
certificate as the envelope's signer, and (b) passes: under the trust configuration when one
is given (the verifier's verdict ``valid``, exactly what ``audit now`` would say), else by the
envelope's own integrity, our certificate's validity and the envelope's expiry. The signature
manifest's thumbprint annotation is not trusted for (a): it is registry-controlled text; the
envelope's chain is what the signature proves. Everything read is bounded and digest-checked
by the source; a signature that cannot be read is simply not ours.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

from cryptography.hazmat.primitives.serialization import Encoding

from auditor.errors import AuditorError, VerificationError
from auditor.model import Descriptor, GraphNode, SignatureStatus
from auditor.notary.crypto import require_valid_at, verify_integrity
from auditor.notary.envelope import ENVELOPE_FORMATS, parse_envelope
from auditor.notary.format import NotationVerifier
from auditor.oci.manifest import ImageManifest
from auditor.signing.keys import SigningKey
from auditor.source import ManifestSource


@dataclass(frozen=True)
class Bounds:
    """How much of a node's existing signatures is read (from the config's limits)."""

    max_envelope_bytes: int
    max_signatures_per_node: int


class _Now(Protocol):
    def __call__(self) -> datetime: ...


def _utcnow() -> datetime:
    return datetime.now(UTC)


async def own_signature(
    source: ManifestSource,
    repository: str,
    scope: str,
    node: GraphNode,
    key: SigningKey,
    *,
    verifier: NotationVerifier | None,
    bounds: Bounds,
    now: _Now = _utcnow,
) -> str | None:
    """A sentence naming a valid signature of ``node`` by ``key``'s certificate, or None."""
    subject = Descriptor(node.media_type, node.digest, node.size)
    for signature in node.signatures[: bounds.max_signatures_per_node]:
        found = await _check(
            source, repository, scope, subject, signature, key, verifier, bounds, now
        )
        if found is not None:
            return found
    return None


async def _check(
    source: ManifestSource,
    repository: str,
    scope: str,
    subject: Descriptor,
    signature: Descriptor,
    key: SigningKey,
    verifier: NotationVerifier | None,
    bounds: Bounds,
    now: _Now,
) -> str | None:
    try:
        fetched = await source.get_manifest(repository, signature.digest)
        manifest = fetched.manifest
        if not isinstance(manifest, ImageManifest) or len(manifest.layers) != 1:
            return None
        layer = manifest.layers[0]
        if layer.media_type not in ENVELOPE_FORMATS or layer.size > bounds.max_envelope_bytes:
            return None
        blob = await source.get_blob(repository, layer.digest, bounds.max_envelope_bytes)
        envelope = parse_envelope(layer.media_type, blob)
    except (AuditorError, ValueError):
        return None
    leaf = envelope.certificate_chain[0].public_bytes(Encoding.DER)
    if leaf != key.leaf_der:
        return None
    short = signature.digest[:19]
    if verifier is not None:
        result = verifier.verify(scope, subject, manifest, blob, signature.digest)
        if result.status is SignatureStatus.VALID:
            return f"already signed by this certificate ({short}..., valid under the trust policy)"
        return None
    target = envelope.target
    if (target.media_type, target.digest, target.size) != (
        subject.media_type,
        subject.digest,
        subject.size,
    ):
        return None
    moment = now()
    try:
        verify_integrity(envelope)
        require_valid_at(envelope.certificate_chain, moment)
    except VerificationError:
        return None
    if envelope.expiry is not None and envelope.expiry <= moment:
        return None
    return f"already signed by this certificate ({short}..., intact; no trust policy given)"
