"""What a Notary envelope decoder (jws.py, cose.py) hands back, and what both decoders share.

The Notary Project header names, the ``Decoded`` record, the malformed-envelope error and a
duplicate-refusing JSON parser. Kept apart from envelope.py so the decoders and the rules that
use them import in one direction only (envelope -> jws/cose -> decoded).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from auditor import gojson
from auditor.errors import MalformedContent, VerificationError

H_SIGNING_SCHEME = "io.cncf.notary.signingScheme"
H_SIGNING_TIME = "io.cncf.notary.signingTime"
H_AUTHENTIC_SIGNING_TIME = "io.cncf.notary.authenticSigningTime"
H_EXPIRY = "io.cncf.notary.expiry"
H_VERIFICATION_PLUGIN = "io.cncf.notary.verificationPlugin"
H_VERIFICATION_PLUGIN_MIN_VERSION = "io.cncf.notary.verificationPluginMinVersion"
H_SIGNING_AGENT = "io.cncf.notary.signingAgent"
H_TIMESTAMP_SIGNATURE = "io.cncf.notary.timestampSignature"


@dataclass(frozen=True)
class Decoded:
    """What a format decoder found, before the Notary Project rules are applied.

    ``extended`` holds the protected header entries that are not standard Notary headers
    (their keys are strings, or ints for COSE labels); ``critical`` is the raw ``crit`` list.
    """

    media_type: str
    format: str
    algorithm: str
    critical: tuple[str | int, ...]
    content_type: str | None
    signing_scheme: str | None
    signing_time: datetime | None
    authentic_signing_time: datetime | None
    expiry: datetime | None
    extended: Mapping[str | int, Any]
    payload: bytes
    signature: bytes
    signed_bytes: bytes
    chain_der: tuple[bytes, ...]
    signing_agent: str | None
    timestamp_token: bytes | None
    present: frozenset[str | int] = field(default_factory=frozenset)  # protected header keys


def malformed(fmt: str, detail: str) -> VerificationError:
    """The error for an envelope that is not what its media type says."""
    return VerificationError(f"integrity: malformed {fmt} envelope: {detail}")


def strict_json(data: bytes, what: str) -> Any:
    """Parse JSON as Go reads it or refuse it (auditor.gojson): two parsers never see two
    documents."""
    try:
        return gojson.loads(data, what)
    except MalformedContent as exc:
        raise VerificationError(f"integrity: {exc}") from None


def go_fields(obj: Mapping[str, Any], names: Iterable[str], where: str) -> dict[str, Any]:
    """Struct fields of a decoded JSON object as notation (Go) reads them, or refused."""
    try:
        return gojson.fields(obj, names, where)
    except MalformedContent as exc:
        raise VerificationError(f"integrity: {exc}") from None
