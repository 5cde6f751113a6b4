"""The Notary Project signature format: which referrers are notation signatures, and how one
is fetched and verified.

A notation signature is a referrer with artifact type ``application/vnd.cncf.notary.signature``
whose manifest carries exactly one envelope layer (JWS or COSE). This module knows that layout
of the signature manifest and the envelope's size bound; what the envelope means is the
:class:`~auditor.notary.verifier.Verifier`'s job, given bytes.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Protocol

from auditor.config import DEFAULT_LIMITS
from auditor.errors import AuditorError, MalformedContent
from auditor.model import Descriptor, SignatureResult, SignatureStatus
from auditor.notary.envelope import ENVELOPE_FORMATS
from auditor.oci import mediatypes as mt
from auditor.oci.manifest import ImageManifest
from auditor.source import ManifestSource

NAME = "notation"


class NotationVerifier(Protocol):
    """What the format needs from the Notary verifier; bytes in, verdict out."""

    def verify(
        self,
        scope: str,
        subject: Descriptor,
        signature_manifest: ImageManifest,
        envelope_bytes: bytes,
        signature_digest: str,
    ) -> SignatureResult: ...

    def skips(self, scope: str) -> bool:
        """True when the trust policy's level for ``scope`` is ``skip``."""
        ...


def is_notation_signature(referrer: Descriptor) -> bool:
    """A referrer is a notation signature by its artifact type."""
    return referrer.artifact_type == mt.NOTARY_SIGNATURE


class NotationFormat:
    """Notation's signatures: referrers only, verified by ``verifier`` against the trust policy.

    ``verifier`` is None when no trust configuration exists: signature artifacts are then
    reported ``unverified``, never ``signed``.
    """

    name = NAME

    def __init__(
        self,
        verifier: NotationVerifier | None,
        *,
        max_envelope_bytes: int = DEFAULT_LIMITS.max_envelope_bytes,
    ) -> None:
        self.verifier = verifier
        self.max_envelope_bytes = max_envelope_bytes

    @property
    def verifies(self) -> bool:
        return self.verifier is not None

    def claims(self, referrer: Descriptor) -> bool:
        return is_notation_signature(referrer)

    def signature_tags(self, subject_digest: str) -> Sequence[str]:
        return ()

    def skips(self, scope: str) -> bool:
        return self.verifier is not None and self.verifier.skips(scope)

    async def fetch_and_verify(
        self,
        source: ManifestSource,
        repository: str,
        scope: str,
        subject: Descriptor,
        signature: Descriptor,
    ) -> SignatureResult:
        def verdict(status: SignatureStatus, fmt: str, reason: str) -> SignatureResult:
            failed = "integrity" if status is SignatureStatus.INVALID else None
            return SignatureResult(signature.digest, fmt, status, reason, failed_validation=failed)

        try:
            fetched = await source.get_manifest(repository, signature.digest)
        except MalformedContent as exc:
            # Its bytes are there and digest-checked, but they are no signature manifest (or
            # one that two readers would read two ways): a definite failure, not "unchecked".
            reason = f"signature manifest refused: {exc}"
            return verdict(SignatureStatus.INVALID, NAME, reason)
        except AuditorError as exc:
            reason = f"cannot load signature manifest: {exc}"
            return verdict(SignatureStatus.ERROR, NAME, reason)
        manifest = fetched.manifest
        verifier = self.verifier
        if verifier is not None and verifier.skips(scope) and isinstance(manifest, ImageManifest):
            # notation's skip level judges nothing, not even whether an envelope is there:
            # the verifier's own skipped verdict, before the envelope checks below.
            return verifier.verify(scope, subject, manifest, b"", signature.digest)
        if not isinstance(manifest, ImageManifest):
            reason = "signature artifact is an index, not a signature manifest"
            return verdict(SignatureStatus.INVALID, NAME, reason)
        envelopes = [layer for layer in manifest.layers if layer.media_type in ENVELOPE_FORMATS]
        if len(envelopes) != 1:
            count = len(envelopes)
            reason = f"signature manifest has {count} envelope layers; exactly one is required"
            return verdict(SignatureStatus.INVALID, NAME, reason)
        layer = envelopes[0]
        fmt = ENVELOPE_FORMATS[layer.media_type]
        if verifier is None:
            reason = "no trust policy configured: signature not verified"
            return verdict(SignatureStatus.UNVERIFIED, fmt, reason)
        limit = self.max_envelope_bytes
        if layer.size > limit:
            reason = f"envelope of {layer.size} bytes exceeds the limit of {limit}"
            return verdict(SignatureStatus.INVALID, fmt, reason)
        try:
            envelope = await source.get_blob(repository, layer.digest, limit)
        except AuditorError as exc:
            reason = f"cannot load signature envelope {layer.digest}: {exc}"
            return verdict(SignatureStatus.ERROR, fmt, reason)
        return await asyncio.to_thread(
            verifier.verify, scope, subject, manifest, envelope, signature.digest
        )
