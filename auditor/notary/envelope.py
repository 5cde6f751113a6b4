"""Parse a Notary Project signature envelope (JWS or COSE) into the shared ``Envelope``.

The format modules (jws.py, cose.py) only undo the encoding and hand back a ``Decoded``
(decoded.py, which both build on, so neither imports this module); the Notary Project rules
that are the same for both formats live here, once: allowed algorithms, content type, signing
scheme and its time attributes, critical headers, chain bounds and the payload. Every failure
is a one-line ``VerificationError`` starting ``integrity:`` because notation reports a
malformed envelope as an integrity failure.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping, Sequence

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.utils import CryptographyDeprecationWarning

from auditor.errors import VerificationError
from auditor.notary import cose, jws
from auditor.notary.crypto import ALGORITHMS
from auditor.notary.decoded import (
    H_AUTHENTIC_SIGNING_TIME,
    H_EXPIRY,
    H_SIGNING_SCHEME,
    H_SIGNING_TIME,
    H_VERIFICATION_PLUGIN,
    H_VERIFICATION_PLUGIN_MIN_VERSION,
    Decoded,
    go_fields,
    malformed,
    strict_json,
)
from auditor.notary.types import Envelope, SigningScheme, TargetArtifact
from auditor.oci import mediatypes as mt

# The one map from an envelope layer's media type to its format (and its decoder).
ENVELOPE_FORMATS: Mapping[str, str] = {mt.JWS_ENVELOPE: jws.FORMAT, mt.COSE_ENVELOPE: cose.FORMAT}
_DECODERS: Mapping[str, Callable[..., Decoded]] = {
    mt.JWS_ENVELOPE: jws.decode,
    mt.COSE_ENVELOPE: cose.decode,
}

DEFAULT_MAX_CHAIN = 10

# Critical headers this implementation understands and processes.
_UNDERSTOOD_CRITICAL = {H_SIGNING_SCHEME, H_SIGNING_TIME, H_AUTHENTIC_SIGNING_TIME, H_EXPIRY}
_PLUGIN_HEADERS = {H_VERIFICATION_PLUGIN, H_VERIFICATION_PLUGIN_MIN_VERSION}


def parse_envelope(
    media_type: str,
    data: bytes,
    *,
    max_bytes: int | None = None,
    max_chain: int = DEFAULT_MAX_CHAIN,
) -> Envelope:
    """Decode and validate an envelope blob; integrity itself is ``crypto.verify_integrity``.

    ``max_bytes``: refuse a larger blob; None when the caller already bounded the read (the
    notation format fetches at most the configured ``limits.max_envelope_bytes``).
    """
    if max_bytes is not None and len(data) > max_bytes:
        raise VerificationError(
            f"integrity: envelope is {len(data)} bytes, over the {max_bytes}-byte limit"
        )
    decoder = _DECODERS.get(media_type)
    if decoder is None:
        raise VerificationError(
            f"integrity: unsupported signature envelope media type {media_type!r}"
        )
    return finish(decoder(data, max_chain=max_chain), max_chain=max_chain)


def finish(decoded: Decoded, *, max_chain: int = DEFAULT_MAX_CHAIN) -> Envelope:
    """Apply the format-independent Notary Project rules and build the ``Envelope``."""
    fmt = decoded.format.removeprefix("notation/").upper()
    if decoded.algorithm not in ALGORITHMS:
        raise VerificationError(
            f"integrity: signature algorithm {decoded.algorithm!r} is not allowed "
            f"(allowed: {', '.join(ALGORITHMS)})"
        )
    if decoded.content_type != mt.NOTARY_PAYLOAD:
        raise VerificationError(
            f"integrity: payload content type {decoded.content_type!r} is not "
            f"{mt.NOTARY_PAYLOAD}"
        )
    scheme = _signing_scheme(decoded.signing_scheme)
    _check_times(decoded, scheme)
    _check_critical(decoded, scheme)
    chain = _load_chain(fmt, decoded.chain_der, max_chain)
    if not decoded.signature:
        raise malformed(fmt, "signature is empty")
    target = parse_payload(decoded.payload)
    return Envelope(
        media_type=decoded.media_type,
        format=decoded.format,
        payload=decoded.payload,
        payload_content_type=decoded.content_type,
        target=target,
        signing_scheme=scheme,
        algorithm=decoded.algorithm,
        certificate_chain=chain,
        signing_time=decoded.signing_time,
        authentic_signing_time=decoded.authentic_signing_time,
        expiry=decoded.expiry,
        critical_headers=tuple(str(c) for c in decoded.critical),
        signing_agent=decoded.signing_agent,
        timestamp_token=decoded.timestamp_token,
        signature=decoded.signature,
        signed_bytes=decoded.signed_bytes,
    )


def _signing_scheme(value: str | None) -> SigningScheme:
    if value is None:
        raise VerificationError(f"integrity: required header {H_SIGNING_SCHEME} is missing")
    try:
        return SigningScheme(value)
    except ValueError:
        raise VerificationError(f"integrity: unsupported signing scheme {value!r}") from None


def _check_times(decoded: Decoded, scheme: SigningScheme) -> None:
    if scheme is SigningScheme.X509:
        if decoded.authentic_signing_time is not None:
            raise VerificationError(
                f"integrity: {H_AUTHENTIC_SIGNING_TIME} must not be present for {scheme}"
            )
        if decoded.signing_time is None:
            raise VerificationError(f"integrity: {H_SIGNING_TIME} is required for {scheme}")
        signed_at = decoded.signing_time
    else:
        if decoded.signing_time is not None:
            raise VerificationError(f"integrity: {H_SIGNING_TIME} must not be present for {scheme}")
        if decoded.authentic_signing_time is None:
            raise VerificationError(
                f"integrity: {H_AUTHENTIC_SIGNING_TIME} is required for {scheme}"
            )
        signed_at = decoded.authentic_signing_time
    if decoded.expiry is not None and decoded.expiry <= signed_at:
        raise VerificationError("integrity: expiry is not after the signing time")


def _check_critical(decoded: Decoded, scheme: SigningScheme) -> None:
    crit = decoded.critical
    if not crit:
        raise VerificationError("integrity: protected header 'crit' is missing or empty")
    if len(set(crit)) != len(crit):
        raise VerificationError("integrity: 'crit' lists a header more than once")
    for name in crit:
        if name not in decoded.present:
            raise VerificationError(f"integrity: header {name!r} is marked critical but absent")
        if name in _PLUGIN_HEADERS:
            raise VerificationError(
                f"integrity: the signature requires a verification plugin ({name}), "
                "which this verifier does not support"
            )
        if name not in _UNDERSTOOD_CRITICAL:
            raise VerificationError(f"integrity: unknown critical header {name!r}")
    must = {H_SIGNING_SCHEME}
    if decoded.expiry is not None:
        must.add(H_EXPIRY)
    if scheme is SigningScheme.SIGNING_AUTHORITY:
        must.add(H_AUTHENTIC_SIGNING_TIME)
    missing = sorted(must - {c for c in crit if isinstance(c, str)})
    if missing:
        raise VerificationError(
            f"integrity: required headers are not marked critical: {', '.join(missing)}"
        )


def _load_chain(
    fmt: str, chain_der: Sequence[bytes], max_chain: int
) -> tuple[x509.Certificate, ...]:
    if not chain_der:
        raise malformed(fmt, "certificate chain is missing or empty")
    if len(chain_der) > max_chain:
        raise VerificationError(
            f"integrity: certificate chain has {len(chain_der)} certificates, over the limit "
            f"of {max_chain}"
        )
    certs = []
    for i, der in enumerate(chain_der):
        try:
            certs.append(load_certificate(der))
        except CERTIFICATE_ERRORS as exc:
            raise malformed(
                fmt,
                f"certificate {i} in the chain is not a DER certificate that can be parsed "
                f"({type(exc).__name__}: {exc})",
            ) from None
    return tuple(certs)


CERTIFICATE_ERRORS: tuple[type[Exception], ...] = (
    ValueError,
    TypeError,
    UnsupportedAlgorithm,
    x509.DuplicateExtension,
    x509.UnsupportedGeneralNameType,
    x509.InvalidVersion,
)
"""What ``cryptography`` raises on a certificate it refuses, at load or on first use."""


def load_certificate(der: bytes) -> x509.Certificate:
    """A DER certificate parsed in full now, not lazily later.

    ``cryptography`` parses extensions (and some fields) on first access, so a certificate with
    duplicate extensions or a bad encoding would otherwise raise deep inside chain building,
    outside the error family. Raises one of :data:`CERTIFICATE_ERRORS`.

    A negative serial number is refused as Go's crypto/x509 refuses it since Go 1.23 (notation
    is built with it), so no certificate verifies here that notation could not even parse; a
    zero serial, which Go accepts, is accepted. ``cryptography`` only warns about both (and
    says a future release will refuse them), so its warning is silenced and the rule is ours.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CryptographyDeprecationWarning)
        cert = x509.load_der_x509_certificate(der)
        serial = cert.serial_number
    if serial < 0:
        raise ValueError("negative serial number (Go's crypto/x509 refuses it)")
    _ = (cert.subject, cert.issuer, cert.extensions)
    _ = (cert.not_valid_before_utc, cert.not_valid_after_utc, cert.signature_hash_algorithm)
    cert.public_key()
    return cert


_TARGET_FIELDS = ("mediaType", "digest", "size", "annotations")


def parse_payload(payload: bytes) -> TargetArtifact:
    """The payload's ``targetArtifact`` descriptor, strictly typed."""
    doc = strict_json(payload, "payload")
    top = go_fields(doc, ("targetArtifact",), "payload") if isinstance(doc, dict) else {}
    if not isinstance(top.get("targetArtifact"), dict):
        raise VerificationError("integrity: payload has no targetArtifact object")
    ta = go_fields(top["targetArtifact"], _TARGET_FIELDS, "payload targetArtifact")
    media_type, digest, size = ta.get("mediaType"), ta.get("digest"), ta.get("size")
    if not isinstance(media_type, str) or not media_type:
        raise VerificationError("integrity: payload targetArtifact.mediaType is missing")
    if not isinstance(digest, str) or ":" not in digest:
        raise VerificationError("integrity: payload targetArtifact.digest is missing or malformed")
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise VerificationError("integrity: payload targetArtifact.size is missing or invalid")
    annotations = ta.get("annotations")
    if annotations is None:
        annotations = {}
    if not isinstance(annotations, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in annotations.items()
    ):
        raise VerificationError("integrity: payload targetArtifact.annotations must map strings")
    return TargetArtifact(media_type=media_type, digest=digest, size=size, annotations=annotations)
