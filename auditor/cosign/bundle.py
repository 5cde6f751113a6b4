"""Sigstore bundle v0.3 signatures (cosign 3's default), verified by sigstore-python.

A bundle attached to a node is a DSSE envelope holding an in-toto statement. sigstore's
``Verifier.verify_dsse`` establishes the signing time (Rekor integrated time with its
inclusion promise, or RFC 3161 timestamps), checks the Fulcio chain at that time, the SCT,
the codeSigning EKU, the identity policy, the log entry (inclusion proof, checkpoint,
promise) and that the entry is about this envelope. What it leaves to the caller, and this
module does: the statement's subject must be this node's digest, and its predicate type must
be cosign's signature predicate. Any other predicate is an attestation: cosign itself does
not filter by predicate type, the auditor does, so an SBOM or provenance bundle is never
counted as a signature.

Key-based bundles (a public-key hint instead of a certificate) are not verified by
sigstore-python 4; they are reported ``error`` ("not supported") under a key rule and
``invalid`` under a keyless rule (a bare key is never accepted as an identity).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sigstore.errors import Error as SigstoreError
from sigstore.models import Bundle

from auditor.cosign.identity import IdentityMismatch, signer_of
from auditor.cosign.jsondoc import obj, strict_json
from auditor.cosign.names import BUNDLE_FORMAT
from auditor.cosign.trust import CosignRule, TrustRoot
from auditor.errors import VerificationError
from auditor.model import SignatureResult, SignatureStatus
from auditor.oci import mediatypes as mt

FORMAT = BUNDLE_FORMAT
_STATEMENT_TYPES = ("https://in-toto.io/Statement/v1", "https://in-toto.io/Statement/v0.1")


@dataclass(frozen=True)
class Statement:
    subjects: tuple[str, ...]  # "sha256:<hex>" of every subject
    predicate_type: str


def parse_statement(payload_type: str, payload: bytes) -> Statement:
    if payload_type != mt.IN_TOTO:
        raise VerificationError(f"the DSSE payload is {payload_type!r}, not an in-toto statement")
    doc = obj(strict_json(payload, "the in-toto statement"), "the in-toto statement")
    if doc.get("_type") not in _STATEMENT_TYPES:
        raise VerificationError(f"statement _type {doc.get('_type')!r} is not in-toto's")
    predicate = doc.get("predicateType")
    if not isinstance(predicate, str) or not predicate:
        raise VerificationError("the statement has no predicateType")
    subjects = doc.get("subject")
    if not isinstance(subjects, list) or not subjects:
        raise VerificationError("the statement has no subject")
    digests: list[str] = []
    for i, subject in enumerate(subjects):
        digest = obj(obj(subject, f"subject[{i}]").get("digest"), f"subject[{i}].digest")
        for algorithm, value in digest.items():
            if isinstance(value, str):
                digests.append(f"{algorithm.lower()}:{value.lower()}")
    return Statement(tuple(digests), predicate)


def integrated_time(data: bytes) -> datetime | None:
    """The Rekor integrated time recorded in the bundle (informational; sigstore checked it)."""
    try:
        doc = obj(strict_json(data, "bundle"), "bundle")
        entries = obj(doc.get("verificationMaterial"), "m").get("tlogEntries")
        value = int(entries[0]["integratedTime"])  # type: ignore[index]
    except (VerificationError, TypeError, KeyError, IndexError, ValueError):
        return None
    return datetime.fromtimestamp(value, UTC) if 0 < value < 2**40 else None


def verify_bundle(
    *,
    subject_digest: str,
    data: bytes,
    rule: CosignRule,
    root: TrustRoot,
    digest: str,
) -> SignatureResult:
    """The verdict on one sigstore bundle offered as a signature of ``subject_digest``."""

    def invalid(validation: str, message: str) -> SignatureResult:
        return SignatureResult(
            digest=digest,
            format=FORMAT,
            status=SignatureStatus.INVALID,
            reason=f"{validation} validation failed: {message} (cosign rule {rule.name!r})",
            failed_validation=validation,
        )

    try:
        strict_json(data, "the sigstore bundle")
        bundle = Bundle.from_json(data)
    except (VerificationError, SigstoreError, ValueError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        if "certificate" in first and rule.keyless is not None:
            return invalid(
                "authenticity",
                "the bundle carries no certificate (a bare key), but the rule requires a "
                "certificate identity",
            )
        return invalid("integrity", f"not a valid sigstore bundle: {first}")
    if rule.keyless is None:
        return SignatureResult(
            digest,
            FORMAT,
            SignatureStatus.ERROR,
            f"cosign rule {rule.name!r} is key-based; key-based verification of sigstore bundles "
            "is not supported by this version (use a keyless rule)",
        )
    try:
        verifier = root.verifier()
    except VerificationError as exc:
        return SignatureResult(digest, FORMAT, SignatureStatus.ERROR, str(exc))
    try:
        payload_type, payload = verifier.verify_dsse(bundle, rule.keyless)
    except IdentityMismatch as exc:
        return invalid("authenticity", str(exc))
    except SigstoreError as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        return invalid("integrity", first)
    except (ValueError, TypeError) as exc:
        return invalid("integrity", f"the bundle could not be verified: {exc}")
    try:
        statement = parse_statement(payload_type, payload)
    except VerificationError as exc:
        return invalid("integrity", str(exc))
    if subject_digest.lower() not in statement.subjects:
        return invalid(
            "integrity",
            f"the statement is about {', '.join(statement.subjects)}, not {subject_digest}",
        )
    if statement.predicate_type != mt.COSIGN_SIGN_PREDICATE:
        return invalid(
            "integrity",
            f"the bundle is an attestation ({statement.predicate_type}), not a signature "
            f"({mt.COSIGN_SIGN_PREDICATE})",
        )
    return SignatureResult(
        digest=digest,
        format=FORMAT,
        status=SignatureStatus.VALID,
        reason=f"verified under cosign rule {rule.name!r} (keyless, logged in Rekor)",
        signer=signer_of(bundle.signing_certificate),
        signing_time=integrated_time(data),
        timestamped=True,
    )
