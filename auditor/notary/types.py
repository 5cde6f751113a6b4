"""The contract between envelope parsing (envelope.py, timestamp.py) and verification (verifier.py).

An envelope is parsed once into ``Envelope``; the verifier then asks it for integrity and
reads the signed attributes. Nothing here does I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from cryptography import x509


class SigningScheme(StrEnum):
    X509 = "notary.x509"
    SIGNING_AUTHORITY = "notary.x509.signingAuthority"


class Validation(StrEnum):
    """The Notary Project validation types, named as notation names them."""

    INTEGRITY = "integrity"
    AUTHENTICITY = "authenticity"
    AUTHENTIC_TIMESTAMP = "authenticTimestamp"
    EXPIRY = "expiry"
    REVOCATION = "revocation"


@dataclass(frozen=True)
class TargetArtifact:
    """The payload's ``targetArtifact``: what the signer says it signed."""

    media_type: str
    digest: str
    size: int
    annotations: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Envelope:
    """A parsed Notary Project signature envelope (JWS or COSE).

    ``signed_bytes`` and ``signature`` are what the integrity check needs; the chain is leaf first.
    ``timestamp_token`` is the raw RFC 3161 TimeStampToken from the unsigned attributes, if any.
    """

    media_type: str  # application/jose+json or application/cose
    format: str  # "notation/jws" or "notation/cose"
    payload: bytes
    payload_content_type: str
    target: TargetArtifact
    signing_scheme: SigningScheme
    algorithm: str  # PS256 ... ES512
    certificate_chain: tuple[x509.Certificate, ...]
    signing_time: datetime | None
    authentic_signing_time: datetime | None
    expiry: datetime | None
    critical_headers: tuple[str, ...]
    signing_agent: str | None
    timestamp_token: bytes | None
    signature: bytes
    signed_bytes: bytes


@dataclass(frozen=True)
class TimestampResult:
    """A verified RFC 3161 countersignature: the signing happened within ``[earliest, latest]``."""

    gen_time: datetime
    accuracy_seconds: float
    tsa_chain: tuple[x509.Certificate, ...]

    @property
    def earliest(self) -> datetime:
        from datetime import timedelta

        return self.gen_time - timedelta(seconds=self.accuracy_seconds)

    @property
    def latest(self) -> datetime:
        from datetime import timedelta

        return self.gen_time + timedelta(seconds=self.accuracy_seconds)
