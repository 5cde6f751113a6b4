"""Rekor (v1) transparency-log proofs of legacy cosign signatures: the Signed Entry Timestamp.

cosign stores the log's answer in the ``dev.sigstore.cosign/bundle`` annotation:
``{"SignedEntryTimestamp": b64, "Payload": {"body", "integratedTime", "logIndex", "logID"}}``.
The SET is the log's ECDSA signature over the RFC 8785 canonical JSON of ``Payload``, by the
log key whose ``logID`` (SHA-256 of its DER public key) the payload names; that key must be
valid at ``integratedTime``. A verified SET proves the log accepted ``body`` at that time, and
``body`` must then describe exactly this signature: same payload hash, same signature bytes,
same key. Otherwise a real SET for another signature could be pasted onto a forged one.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

import rfc8785

from auditor.cosign.jsondoc import integer, obj, strict_json, text
from auditor.cosign.keys import PublicKey
from auditor.errors import VerificationError

# Far enough in the future that no honest log entry has it; keeps datetime conversion bounded.
_MAX_TIME = 2**40


@dataclass(frozen=True)
class LogKey:
    """A transparency log's verification key, with its validity window from the trusted root."""

    log_id: str  # lowercase hex, as cosign writes it
    key: PublicKey
    valid_from: datetime | None = None
    valid_until: datetime | None = None
    base_url: str = ""

    def valid_at(self, when: datetime) -> bool:
        if self.valid_from is not None and when < self.valid_from:
            return False
        return self.valid_until is None or when <= self.valid_until


@dataclass(frozen=True)
class LogEntry:
    """A log entry whose SET verified: the body the log signed, and when it was integrated."""

    body: bytes
    integrated_time: datetime
    log_index: int
    log_id: str
    log_url: str


@dataclass(frozen=True)
class HashedRekord:
    """The parts of a ``hashedrekord`` 0.0.1 body that bind it to one signature."""

    sha256: str  # hex of the signed payload's digest
    signature: bytes
    verifier_pem: bytes  # a PEM public key or a PEM certificate


def b64(value: str, what: str) -> bytes:
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise VerificationError(f"{what} is not valid base64") from None


def verify_set(annotation: str, log_keys: Mapping[str, LogKey]) -> LogEntry:
    """Check the SET in a ``dev.sigstore.cosign/bundle`` annotation; VerificationError says why
    it is not acceptable."""
    doc = obj(strict_json(annotation, "the Rekor bundle annotation"), "the Rekor bundle")
    set_bytes = b64(text(doc.get("SignedEntryTimestamp"), "SignedEntryTimestamp"), "the SET")
    payload = obj(doc.get("Payload"), "the Rekor bundle Payload")
    unknown = set(payload) - {"body", "integratedTime", "logIndex", "logID"}
    if unknown:
        raise VerificationError(f"the Rekor bundle Payload has unknown fields {sorted(unknown)}")
    body_b64 = text(payload.get("body"), "Payload.body")
    integrated = integer(payload.get("integratedTime"), "Payload.integratedTime")
    log_index = integer(payload.get("logIndex"), "Payload.logIndex")
    log_id = text(payload.get("logID"), "Payload.logID")
    if integrated > _MAX_TIME or log_index > 2**53:
        raise VerificationError("Payload.integratedTime or logIndex is out of range")
    log_key = log_keys.get(log_id.lower())
    if log_key is None:
        raise VerificationError(f"transparency log {log_id} is not in the trusted root")
    canonical = rfc8785.dumps(
        {"body": body_b64, "integratedTime": integrated, "logID": log_id, "logIndex": log_index}
    )
    if not log_key.key.verify(set_bytes, canonical):
        raise VerificationError(
            f"the Signed Entry Timestamp does not verify with the key of log {log_id}"
        )
    when = datetime.fromtimestamp(integrated, UTC)
    if not log_key.valid_at(when):
        raise VerificationError(
            f"the key of log {log_id} was not valid at the entry's integrated time "
            f"{when.isoformat()}"
        )
    return LogEntry(
        body=b64(body_b64, "Payload.body"),
        integrated_time=when,
        log_index=log_index,
        log_id=log_id.lower(),
        log_url=log_key.base_url,
    )


def parse_hashedrekord(body: bytes) -> HashedRekord:
    """The hash, signature and verifier of a ``hashedrekord`` 0.0.1 entry body."""
    doc = obj(strict_json(body, "the log entry body"), "the log entry body")
    kind, version = doc.get("kind"), doc.get("apiVersion")
    if (kind, version) != ("hashedrekord", "0.0.1"):
        raise VerificationError(
            f"log entry is {kind}/{version}; a cosign signature needs hashedrekord/0.0.1"
        )
    spec = obj(doc.get("spec"), "the log entry spec")
    data_hash = obj(obj(spec.get("data"), "spec.data").get("hash"), "spec.data.hash")
    if data_hash.get("algorithm") != "sha256":
        raise VerificationError("the log entry's payload hash is not sha256")
    value = text(data_hash.get("value"), "spec.data.hash.value").lower()
    sig = obj(spec.get("signature"), "spec.signature")
    content = b64(text(sig.get("content"), "spec.signature.content"), "spec.signature.content")
    key = obj(sig.get("publicKey"), "spec.signature.publicKey")
    pem = b64(text(key.get("content"), "spec.signature.publicKey.content"), "the entry's key")
    return HashedRekord(sha256=value, signature=content, verifier_pem=pem)


def check_binding(entry: HashedRekord, payload: bytes, signature: bytes) -> None:
    """The log entry must be about this payload and this signature (CVE-2022-36056's lesson)."""
    if entry.sha256 != hashlib.sha256(payload).hexdigest():
        raise VerificationError("the log entry is for another payload (hash differs)")
    if entry.signature != signature:
        raise VerificationError("the log entry records another signature")
