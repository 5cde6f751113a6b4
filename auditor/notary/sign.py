"""Produce Notary Project signatures the way notation does: envelope and signature manifest.

The envelope headers, criticality and payload shape are notation's, so notation verifies what
this signs. Every envelope is parsed and integrity-checked by our own verifier before it is
returned: a signer that emits something the verifier rejects fails loudly here, not later.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Protocol

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from auditor.errors import SigningError, VerificationError
from auditor.model import Descriptor
from auditor.notary import cose, jws
from auditor.notary.crypto import (
    Algorithm,
    PrivateKey,
    algorithm_for_key,
    sign_bytes,
    validate_code_signing_chain,
    verify_integrity,
)
from auditor.notary.decoded import (
    H_AUTHENTIC_SIGNING_TIME,
    H_EXPIRY,
    H_SIGNING_AGENT,
    H_SIGNING_SCHEME,
    H_SIGNING_TIME,
    H_TIMESTAMP_SIGNATURE,
)
from auditor.notary.envelope import parse_envelope
from auditor.notary.types import SigningScheme
from auditor.oci import mediatypes as mt

SIGNING_AGENT = "registry-auditor/0.1.0"
_EMPTY_CONFIG = b"{}"


Timestamper = Callable[[bytes], bytes]
"""Raw signature bytes in, an RFC 3161 TimeStampToken (DER) over them out."""


class TargetLike(Protocol):
    """Anything that describes the signed artifact: a Descriptor or a TargetArtifact."""

    @property
    def media_type(self) -> str: ...
    @property
    def digest(self) -> str: ...
    @property
    def size(self) -> int: ...
    @property
    def annotations(self) -> Mapping[str, str]: ...


def payload_bytes(target: TargetLike) -> bytes:
    """The Notary payload ``{"targetArtifact": descriptor}`` (sorted, compact, like notation)."""
    descriptor: dict[str, Any] = {
        "mediaType": target.media_type,
        "digest": target.digest,
        "size": target.size,
    }
    if target.annotations:
        descriptor["annotations"] = dict(target.annotations)
    return json.dumps(
        {"targetArtifact": descriptor}, sort_keys=True, separators=(",", ":")
    ).encode()


def _prepare(
    key: PrivateKey,
    chain: Sequence[x509.Certificate],
    signing_time: datetime,
    expiry: datetime | None,
    signing_scheme: SigningScheme,
) -> tuple[Algorithm, datetime, datetime | None]:
    if not chain:
        raise SigningError("signing needs a certificate chain (leaf first)")
    if signing_time.tzinfo is None or (expiry is not None and expiry.tzinfo is None):
        raise SigningError("signing time and expiry must be timezone-aware")
    leaf_key = chain[0].public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    if key.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo) != leaf_key:
        raise SigningError("the signing key does not match the leaf certificate")
    try:
        alg = algorithm_for_key(key)
        validate_code_signing_chain(tuple(chain))
    except VerificationError as exc:
        raise SigningError(f"cannot sign: {exc}") from None
    signed_at = signing_time.astimezone(UTC).replace(microsecond=0)
    until = expiry.astimezone(UTC).replace(microsecond=0) if expiry is not None else None
    if until is not None and until <= signed_at:
        raise SigningError("expiry must be after the signing time")
    if not isinstance(signing_scheme, SigningScheme):
        raise SigningError(f"unsupported signing scheme {signing_scheme!r}")
    return alg, signed_at, until


def _self_check(media_type: str, envelope: bytes) -> bytes:
    try:
        verify_integrity(parse_envelope(media_type, envelope))
    except VerificationError as exc:
        raise SigningError(f"produced envelope failed verification: {exc}") from None
    return envelope


def sign_jws(
    payload_descriptor: TargetLike,
    key: PrivateKey,
    chain: Sequence[x509.Certificate],
    *,
    signing_time: datetime,
    expiry: datetime | None = None,
    signing_scheme: SigningScheme = SigningScheme.X509,
    signing_agent: str = SIGNING_AGENT,
    timestamper: Timestamper | None = None,
) -> bytes:
    """A flattened JWS JSON envelope (``application/jose+json``) over the descriptor.

    ``timestamper``: countersign the signature (only with the ``notary.x509`` scheme); the
    token goes into the unprotected header, base64-encoded, as notation puts it.
    """
    alg, signed_at, until = _prepare(key, chain, signing_time, expiry, signing_scheme)
    crit = [H_SIGNING_SCHEME]
    protected: dict[str, Any] = {
        "alg": alg.name,
        "cty": mt.NOTARY_PAYLOAD,
        H_SIGNING_SCHEME: str(signing_scheme),
    }
    if signing_scheme is SigningScheme.X509:
        protected[H_SIGNING_TIME] = jws.rfc3339(signed_at)
    else:
        protected[H_AUTHENTIC_SIGNING_TIME] = jws.rfc3339(signed_at)
        crit.append(H_AUTHENTIC_SIGNING_TIME)
    if until is not None:
        protected[H_EXPIRY] = jws.rfc3339(until)
        crit.append(H_EXPIRY)
    protected["crit"] = crit
    unprotected = {
        "x5c": [_b64(c.public_bytes(Encoding.DER)) for c in chain],
        H_SIGNING_AGENT: signing_agent,
    }
    stamp = _stamper(timestamper, signing_scheme)
    envelope = jws.assemble(
        protected,
        payload_bytes(payload_descriptor),
        lambda data: sign_bytes(key, alg, data),
        unprotected,
        None if stamp is None else lambda sig: {H_TIMESTAMP_SIGNATURE: _b64(stamp(sig))},
    )
    return _self_check(mt.JWS_ENVELOPE, envelope)


def sign_cose(
    payload_descriptor: TargetLike,
    key: PrivateKey,
    chain: Sequence[x509.Certificate],
    *,
    signing_time: datetime,
    expiry: datetime | None = None,
    signing_scheme: SigningScheme = SigningScheme.X509,
    signing_agent: str = SIGNING_AGENT,
    timestamper: Timestamper | None = None,
) -> bytes:
    """A COSE_Sign1_Tagged envelope (``application/cose``) over the descriptor.

    ``timestamper``: as for :func:`sign_jws`; the token is a byte string header.
    """
    alg, signed_at, until = _prepare(key, chain, signing_time, expiry, signing_scheme)
    crit: list[str | int] = [H_SIGNING_SCHEME]
    protected: dict[str | int, Any] = {
        cose.LABEL_ALG: alg.cose_id,
        cose.LABEL_CONTENT_TYPE: mt.NOTARY_PAYLOAD,
        H_SIGNING_SCHEME: str(signing_scheme),
    }
    if signing_scheme is SigningScheme.X509:
        protected[H_SIGNING_TIME] = cose.epoch(signed_at)
    else:
        protected[H_AUTHENTIC_SIGNING_TIME] = cose.epoch(signed_at)
        crit.append(H_AUTHENTIC_SIGNING_TIME)
    if until is not None:
        protected[H_EXPIRY] = cose.epoch(until)
        crit.append(H_EXPIRY)
    protected[cose.LABEL_CRIT] = crit
    unprotected: dict[str | int, Any] = {
        cose.LABEL_X5CHAIN: [c.public_bytes(Encoding.DER) for c in chain],
        H_SIGNING_AGENT: signing_agent,
    }
    stamp = _stamper(timestamper, signing_scheme)
    envelope = cose.assemble(
        protected,
        payload_bytes(payload_descriptor),
        lambda data: sign_bytes(key, alg, data),
        unprotected,
        None if stamp is None else lambda sig: {H_TIMESTAMP_SIGNATURE: stamp(sig)},
    )
    return _self_check(mt.COSE_ENVELOPE, envelope)


def _stamper(timestamper: Timestamper | None, scheme: SigningScheme) -> Timestamper | None:
    if timestamper is not None and scheme is not SigningScheme.X509:
        raise SigningError(f"timestamps are only used with the {SigningScheme.X509} scheme")
    return timestamper


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def signature_manifest(
    subject: Descriptor,
    envelope: bytes,
    envelope_media_type: str,
    *,
    created: datetime | None = None,
) -> tuple[bytes, dict[str, bytes]]:
    """The OCI signature manifest notation pushes, and the blobs it references by digest.

    Shape copied from real notation output: config ``application/vnd.cncf.notary.signature``
    holding ``{}``, one envelope layer, the subject, and the chain-thumbprint and created
    annotations. Returns ``(manifest bytes, {digest: blob})`` for the config and envelope.
    """
    try:
        parsed = parse_envelope(envelope_media_type, envelope)
    except VerificationError as exc:
        raise SigningError(f"cannot attach an invalid envelope: {exc}") from None
    thumbprints = [
        hashlib.sha256(c.public_bytes(Encoding.DER)).hexdigest() for c in parsed.certificate_chain
    ]
    when = (created or datetime.now(UTC)).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    config_digest = _sha256(_EMPTY_CONFIG)
    layer_digest = _sha256(envelope)
    manifest = {
        "schemaVersion": 2,
        "mediaType": mt.OCI_MANIFEST,
        "config": {
            "mediaType": mt.NOTARY_SIGNATURE,
            "digest": config_digest,
            "size": len(_EMPTY_CONFIG),
        },
        "layers": [
            {"mediaType": envelope_media_type, "digest": layer_digest, "size": len(envelope)}
        ],
        "subject": {
            "mediaType": subject.media_type,
            "digest": subject.digest,
            "size": subject.size,
        },
        "annotations": {
            mt.ANNOTATION_NOTARY_THUMBPRINT: json.dumps(thumbprints, separators=(",", ":")),
            mt.ANNOTATION_CREATED: when,
        },
    }
    body = json.dumps(manifest, separators=(",", ":")).encode()
    return body, {config_digest: _EMPTY_CONFIG, layer_digest: envelope}
