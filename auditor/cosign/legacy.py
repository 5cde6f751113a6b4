"""Legacy cosign signatures: one simple-signing layer of a ``sha256-<hex>.sig`` manifest.

The layer's blob is the signed payload (``{"critical": {"identity", "image":
{"docker-manifest-digest"}, "type": "cosign container image signature"}, "optional"}``); its
annotations carry the signature (``dev.cosignproject.cosign/signature``, base64), the
certificate and chain for keyless signing, and the Rekor SET (``dev.sigstore.cosign/bundle``).
Order of checks: the payload names this node, the signature verifies with a key of the rule,
then the transparency-log proof (unless the rule waives it) binds to this very signature.

Keyless legacy signatures (a Fulcio certificate in the annotations) are reported ``error``
("not supported"), never ``valid``: chain, SCT and identity checks for them are not built
yet; use cosign's bundle format, which is fully verified (``bundle.py``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization

from auditor.cosign.jsondoc import obj, strict_json, text
from auditor.cosign.keys import PublicKey, check_key
from auditor.cosign.rekor import b64, check_binding, parse_hashedrekord, verify_set
from auditor.cosign.trust import CosignRule, TrustRoot
from auditor.errors import VerificationError
from auditor.model import SignatureResult, SignatureStatus
from auditor.oci import mediatypes as mt

FORMAT = "cosign/legacy"
SIGNATURE_TYPE = "cosign container image signature"
ANNOTATION_SIGNATURE = "dev.cosignproject.cosign/signature"
ANNOTATION_CERTIFICATE = "dev.sigstore.cosign/certificate"
ANNOTATION_CHAIN = "dev.sigstore.cosign/chain"
ANNOTATION_BUNDLE = "dev.sigstore.cosign/bundle"


@dataclass(frozen=True)
class LegacyLayer:
    """One layer of a ``.sig`` manifest: its media type, its blob and its annotations."""

    media_type: str
    payload: bytes
    annotations: Mapping[str, str]


class _Invalid(Exception):
    """The signature is not acceptable; ``validation`` is which check refused it."""

    def __init__(self, validation: str, message: str) -> None:
        super().__init__(message)
        self.validation = validation
        self.message = message


def payload_digest(payload: bytes) -> str:
    """``critical.image.docker-manifest-digest`` of a simple-signing payload, strictly read."""
    doc = obj(strict_json(payload, "the simple-signing payload"), "the simple-signing payload")
    critical = obj(doc.get("critical"), "payload critical")
    kind = critical.get("type")
    if kind != SIGNATURE_TYPE:
        raise VerificationError(f"payload critical.type is {kind!r}, not {SIGNATURE_TYPE!r}")
    image = obj(critical.get("image"), "payload critical.image")
    return text(image.get("docker-manifest-digest"), "critical.image.docker-manifest-digest")


def verify_legacy(
    *,
    subject_digest: str,
    layer: LegacyLayer,
    rule: CosignRule,
    root: TrustRoot,
    digest: str,
) -> SignatureResult:
    """The verdict on one legacy cosign signature layer hanging on ``subject_digest``."""
    try:
        signer, when = _verify(subject_digest, layer, rule, root)
    except _Invalid as bad:
        return SignatureResult(
            digest=digest,
            format=FORMAT,
            status=SignatureStatus.INVALID,
            reason=f"{bad.validation} validation failed: {bad.message} (cosign rule {rule.name!r})",
            failed_validation=bad.validation,
        )
    except _Unsupported as gap:
        return SignatureResult(digest, FORMAT, SignatureStatus.ERROR, str(gap))
    tlog = "without transparency-log proof (ignore_tlog)" if when is None else "logged in Rekor"
    return SignatureResult(
        digest=digest,
        format=FORMAT,
        status=SignatureStatus.VALID,
        reason=f"verified under cosign rule {rule.name!r}, {tlog}",
        signer=signer,
        signing_time=when,
        timestamped=when is not None,
    )


class _Unsupported(Exception):
    pass


def _verify(
    subject_digest: str, layer: LegacyLayer, rule: CosignRule, root: TrustRoot
) -> tuple[str, datetime | None]:
    if layer.media_type != mt.COSIGN_SIMPLESIGNING:
        raise _Invalid(
            "integrity",
            f"layer of type {layer.media_type!r} is not a cosign signature "
            f"({mt.COSIGN_SIMPLESIGNING})",
        )
    try:
        named = payload_digest(layer.payload)
    except VerificationError as exc:
        raise _Invalid("integrity", str(exc)) from None
    if named != subject_digest:
        raise _Invalid("integrity", f"the payload signs {named}, not {subject_digest}")
    encoded = layer.annotations.get(ANNOTATION_SIGNATURE)
    if not encoded:
        raise _Invalid("integrity", f"the layer has no {ANNOTATION_SIGNATURE} annotation")
    try:
        signature = b64(encoded, "the signature annotation")
    except VerificationError as exc:
        raise _Invalid("integrity", str(exc)) from None
    if rule.keyless is not None:
        if ANNOTATION_CERTIFICATE not in layer.annotations:
            raise _Invalid(
                "authenticity",
                "signed with a bare key, but the rule requires a certificate identity",
            )
        raise _Unsupported(
            "keyless legacy (.sig) signatures are not verified by this version; "
            "sign with cosign's bundle format"
        )
    key = next((k for k in rule.keys if k.verify(signature, layer.payload)), None)
    if key is None:
        labels = ", ".join(k.label for k in rule.keys)
        raise _Invalid(
            "authenticity", f"the signature does not verify with the rule's keys ({labels})"
        )
    signer = f"key {key.label} ({key.fingerprint[:19]})"
    if rule.ignore_tlog:
        return signer, None
    return signer, _check_tlog(layer, signature, key, root)


def _check_tlog(
    layer: LegacyLayer, signature: bytes, key: PublicKey, root: TrustRoot
) -> datetime:
    annotation = layer.annotations.get(ANNOTATION_BUNDLE)
    if not annotation:
        raise _Invalid(
            "transparency log",
            f"no transparency-log entry ({ANNOTATION_BUNDLE}); the rule requires one "
            "(ignore_tlog: false)",
        )
    try:
        entry = verify_set(annotation, root.log_keys)
        body = parse_hashedrekord(entry.body)
        check_binding(body, layer.payload, signature)
    except VerificationError as exc:
        raise _Invalid("transparency log", str(exc)) from None
    try:
        logged = check_key(serialization.load_pem_public_key(body.verifier_pem), "logged key")
    except (ValueError, UnsupportedAlgorithm, VerificationError):
        raise _Invalid(
            "transparency log", "the log entry's verifier is not a public key of this rule"
        ) from None
    if not logged.same_key(key):
        raise _Invalid("transparency log", "the log entry records another key")
    return entry.integrated_time
