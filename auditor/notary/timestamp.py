"""RFC 3161 timestamp countersignatures on Notary Project envelopes.

The token in the unsigned attributes proves the envelope's *signature value* existed at the
TSA's time: its message imprint is a hash of the raw signature bytes (the JWS signature after
base64url decoding, the COSE_Sign1 signature bstr), as notation computes it. CMS signature and
TSA chain verification are done by ``rfc3161-client``; ``asn1crypto`` only re-encodes the
token to DER first, because real TSAs (GlobalSign, Microsoft) ship certificate SETs that are
not DER-sorted and the strict DER parser would refuse them. On top come the Notary Project
rules: the TSA chain's certificate requirements and "the timestamp is not before the claimed
signing time". Every failure is ``VerificationError("authenticTimestamp: ...")``.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from datetime import datetime

import rfc3161_client
from asn1crypto import cms, tsp
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from auditor.errors import VerificationError
from auditor.notary.crypto import (
    is_issued_by,
    require_valid_at,
    subject_of,
    validate_timestamping_chain,
)
from auditor.notary.envelope import CERTIFICATE_ERRORS, load_certificate
from auditor.notary.types import Envelope, SigningScheme, TimestampResult

_HASHES = {
    "2.16.840.1.101.3.4.2.1": hashlib.sha256,
    "2.16.840.1.101.3.4.2.2": hashlib.sha384,
    "2.16.840.1.101.3.4.2.3": hashlib.sha512,
}
# ETSI EN 319 422 baseline time-stamp policy: an absent accuracy means one second (RFC 3628).
_BASELINE_POLICY = "0.4.0.2023.1.1"
_MAX_TSA_CHAIN = 10
_OPENSSL_DETAIL = re.compile(r'(?:data|reason): "([^"]+)"')
_TSTINFO_OID = "1.2.840.113549.1.9.16.1.4"


def _fail(detail: str) -> VerificationError:
    return VerificationError(f"authenticTimestamp: {detail}")


def _der_length(n: int) -> bytes:
    if n < 0x80:
        return bytes([n])
    raw = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(raw)]) + raw


def _normalize(token: bytes) -> bytes:
    """Check the token is CMS SignedData over a TSTInfo and re-encode it as DER."""
    try:
        info = cms.ContentInfo.load(token, strict=True)
        if info["content_type"].native != "signed_data":
            raise _fail(f"token content type is {info['content_type'].dotted}, not signedData")
        signed = info["content"]
        encap = signed["encap_content_info"]
        if encap["content_type"].dotted != _TSTINFO_OID:
            raise _fail(f"token holds {encap['content_type'].dotted}, not a TSTInfo")
        # Fully parse the TSTInfo of a separate copy, so garbage fails here and the copy we
        # re-encode keeps the TSTInfo's original (signed) bytes.
        content = cms.ContentInfo.load(token)["content"]["encap_content_info"]["content"]
        _ = tsp.TSTInfo.load(bytes(content), strict=True).native
        certs = signed["certificates"]
        if len(certs):
            ordered = sorted(c.dump() for c in certs)
            signed["certificates"] = cms.CertificateSet(
                [cms.CertificateChoices.load(der) for der in ordered]
            )
        der: bytes = info.dump()
    except VerificationError:
        raise
    except (ValueError, TypeError, KeyError, OverflowError) as exc:
        raise _fail(f"cannot parse the timestamp token: {_first_line(exc)}") from None
    return der


def _precise_gen_time(token: bytes, coarse: datetime) -> datetime:
    """``genTime`` with its fractional seconds, which rfc3161-client drops.

    A signing time and a timestamp in the same second are ordered only by the fraction: cut
    off, a millisecond-accurate token looks earlier than the signature it countersigns.
    """
    try:
        info = cms.ContentInfo.load(token)["content"]["encap_content_info"]["content"]
        precise = tsp.TSTInfo.load(bytes(info))["gen_time"].native
    except (ValueError, TypeError, KeyError):
        return coarse
    if not isinstance(precise, datetime) or precise.replace(microsecond=0) != coarse:
        return coarse  # two parsers disagreeing beyond the fraction: keep the verified value
    return precise


def _decode(token: bytes) -> rfc3161_client.TimeStampResponse:
    der = _normalize(token)
    body = bytes.fromhex("3003020100") + der  # PKIStatusInfo{granted}, then the token
    try:
        return rfc3161_client.decode_timestamp_response(b"\x30" + _der_length(len(body)) + body)
    except ValueError as exc:
        raise _fail(f"cannot parse the timestamp token: {_first_line(exc)}") from None


def _first_line(exc: Exception) -> str:
    return (str(exc).splitlines() or [type(exc).__name__])[0]


def _brief(exc: Exception) -> str:
    """OpenSSL error stacks are long; keep the part a person can act on."""
    text = str(exc)
    found = _OPENSSL_DETAIL.findall(text)
    return "; ".join(dict.fromkeys(found)) if found else text.splitlines()[0][:300]


def _accuracy(info: rfc3161_client.TimeStampTokenInfo) -> float:
    try:
        acc = info.accuracy
        seconds = float(acc.seconds or 0) + (acc.millis or 0) / 1e3 + (acc.micros or 0) / 1e6
    except (ValueError, AttributeError):
        seconds = 0.0
    if seconds == 0 and info.policy.dotted_string == _BASELINE_POLICY:
        return 1.0
    return seconds


def _tsa_chain(
    resp: rfc3161_client.TimeStampResponse, roots: Sequence[x509.Certificate]
) -> tuple[x509.Certificate, ...]:
    """Leaf (the signer) up to the trusted root, using the token's own certificates."""
    try:
        embedded = [load_certificate(der) for der in resp.signed_data.certificates]
    except CERTIFICATE_ERRORS as exc:
        raise _fail(f"a certificate in the timestamp token cannot be parsed: {exc}") from None
    signers = list(resp.signed_data.signer_infos)
    if len(signers) != 1:
        raise _fail(f"token has {len(signers)} signer infos; exactly one is required")
    sid = signers[0]
    leaf = next(
        (c for c in embedded if c.issuer == sid.issuer and c.serial_number == sid.serial_number),
        None,
    )
    if leaf is None:
        raise _fail("signing certificate not found in the timestamp token")
    root_ders = {r.public_bytes(Encoding.DER) for r in roots}
    chain = [leaf]
    while chain[-1].public_bytes(Encoding.DER) not in root_ders:
        if len(chain) >= _MAX_TSA_CHAIN:
            raise _fail("TSA certificate chain is too long")
        current = chain[-1]
        # A trusted root that issued ``current`` ends the path; only otherwise climb through
        # the token's certificates (which may hold cross-certificates leading elsewhere).
        parent = next((r for r in roots if is_issued_by(current, r)), None) or next(
            (c for c in embedded if c not in chain and is_issued_by(current, c)), None
        )
        if parent is None:
            raise _fail(
                f"TSA certificate {subject_of(current)!r} does not chain to a trusted TSA root"
            )
        chain.append(parent)
    return tuple(chain)


def verify_timestamp(envelope: Envelope, tsa_roots: Sequence[x509.Certificate]) -> TimestampResult:
    """Verify the envelope's countersignature against ``tsa_roots`` and return its time range."""
    token = envelope.timestamp_token
    if not token:
        raise _fail("no timestamp countersignature was found in the signature envelope")
    if envelope.signing_scheme is not SigningScheme.X509:
        raise _fail(f"timestamp countersignatures are only used with {SigningScheme.X509}")
    resp = _decode(token)
    info = resp.tst_info
    try:
        if info.version != 1:
            raise _fail(f"TSTInfo version is {info.version}, not 1")
        hash_oid = info.message_imprint.hash_algorithm.dotted_string
        imprint = info.message_imprint.message
        gen_time = _precise_gen_time(token, info.gen_time)
    except ValueError as exc:
        raise _fail(f"cannot read the TSTInfo: {exc}") from None
    hasher = _HASHES.get(hash_oid)
    if hasher is None:
        raise _fail(f"unsupported message imprint hash algorithm {hash_oid}")
    if hasher(envelope.signature).digest() != imprint:
        raise _fail("the timestamp does not cover this signature (message imprint mismatch)")
    if not tsa_roots:
        raise _fail("no trusted TSA certificate found in the trust store")

    builder = rfc3161_client.VerifierBuilder()
    seen: set[bytes] = set()
    for root in tsa_roots:
        der = root.public_bytes(Encoding.DER)
        if der not in seen:
            seen.add(der)
            builder = builder.add_root_certificate(root)
    try:
        builder.build().verify(resp, imprint)
    except (rfc3161_client.VerificationError, ValueError) as exc:
        raise _fail(f"the timestamp countersignature does not verify: {_brief(exc)}") from None

    chain = _tsa_chain(resp, tsa_roots)
    try:
        validate_timestamping_chain(chain)
    except VerificationError as exc:
        raise _fail(f"invalid TSA certificate chain: {exc}") from None
    try:
        require_valid_at(chain, gen_time)
    except VerificationError as exc:
        raise _fail(f"TSA certificate not valid at the timestamp: {exc}") from None

    result = TimestampResult(gen_time=gen_time, accuracy_seconds=_accuracy(info), tsa_chain=chain)
    signed_at = envelope.signing_time
    if signed_at is not None and result.earliest < signed_at:
        raise _fail(
            f"timestamp [{result.earliest.isoformat()}, {result.latest.isoformat()}] is not "
            f"after the signing time {signed_at.isoformat()}"
        )
    return result


def check_chain_covers(result: TimestampResult, chain: Sequence[x509.Certificate]) -> None:
    """The whole timestamp range lies within every signing certificate's validity.

    notation's final timestamp step: a timestamp proves the signature was made while the
    certificates were valid only if even its earliest and latest possible times were.
    """
    for cert in chain:
        if result.earliest < cert.not_valid_before_utc:
            raise _fail(
                f"timestamp lower limit {result.earliest.isoformat()} is before certificate "
                f"{subject_of(cert)!r} validity, which starts "
                f"{cert.not_valid_before_utc.isoformat()}"
            )
        if result.latest > cert.not_valid_after_utc:
            raise _fail(
                f"timestamp upper limit {result.latest.isoformat()} is after certificate "
                f"{subject_of(cert)!r} validity, which ended {cert.not_valid_after_utc.isoformat()}"
            )
