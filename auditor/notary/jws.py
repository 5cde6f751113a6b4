"""JWS JSON (flattened) serialization of a Notary Project envelope: decode and assemble.

Only the encoding lives here. The signing input is rebuilt from the envelope's own base64url
strings, exactly as transmitted, so no re-serialization can change what is verified.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from auditor.errors import VerificationError
from auditor.notary.decoded import (
    H_AUTHENTIC_SIGNING_TIME,
    H_EXPIRY,
    H_SIGNING_AGENT,
    H_SIGNING_SCHEME,
    H_SIGNING_TIME,
    H_TIMESTAMP_SIGNATURE,
    Decoded,
    go_fields,
    malformed,
    strict_json,
)
from auditor.oci import mediatypes as mt

FORMAT = "notation/jws"
_B64URL = re.compile(r"^[A-Za-z0-9_-]*$")
_RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$")
_ENVELOPE_FIELDS = ("protected", "payload", "signature", "header")
_UNPROTECTED_FIELDS = ("x5c", H_SIGNING_AGENT, H_TIMESTAMP_SIGNATURE)
_STANDARD = {
    "alg",
    "crit",
    "cty",
    H_SIGNING_SCHEME,
    H_SIGNING_TIME,
    H_AUTHENTIC_SIGNING_TIME,
    H_EXPIRY,
}


def b64url_encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str, what: str) -> bytes:
    """Strict unpadded base64url (RFC 7515 section 2)."""
    if not _B64URL.match(text) or len(text) % 4 == 1:
        raise malformed("JWS", f"{what} is not base64url")
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise malformed("JWS", f"{what} is not base64url") from None


def _b64std_decode(text: object, what: str) -> bytes:
    if not isinstance(text, str):
        raise malformed("JWS", f"{what} must be a base64 string")
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise malformed("JWS", f"{what} is not base64") from None


def _time(header: Mapping[str, Any], name: str) -> datetime | None:
    if name not in header:
        return None
    value = header[name]
    if not isinstance(value, str) or not _RFC3339.match(value):
        raise malformed("JWS", f"header {name} is not an RFC 3339 date-time")
    try:
        return datetime.fromisoformat(value.upper().replace("Z", "+00:00")).astimezone(UTC)
    except (ValueError, OverflowError):  # OverflowError: e.g. year 1 at +01:00 has no UTC form
        raise malformed("JWS", f"header {name} is not a valid date-time") from None


def _optional_str(header: Mapping[str, Any], name: str) -> str | None:
    value = header.get(name)
    if value is not None and not isinstance(value, str):
        raise malformed("JWS", f"header {name} must be a string")
    return value


def decode(data: bytes, *, max_chain: int) -> Decoded:
    """Decode a flattened JWS JSON envelope; no Notary rules are applied yet."""
    try:
        doc = strict_json(data, "JWS envelope")
    except VerificationError:
        raise malformed("JWS", "not a JSON document") from None
    if not isinstance(doc, dict):
        raise malformed("JWS", "not a JSON object")
    members = go_fields(doc, _ENVELOPE_FIELDS, "JWS envelope")
    fields = {}
    for name in ("protected", "payload", "signature"):
        value = members.get(name)
        if not isinstance(value, str):
            raise malformed("JWS", f"member {name!r} is missing or not a string")
        fields[name] = value
    protected_raw = b64url_decode(fields["protected"], "protected header")
    payload = b64url_decode(fields["payload"], "payload")
    signature = b64url_decode(fields["signature"], "signature")
    protected_doc = strict_json(protected_raw, "JWS protected header")
    if not isinstance(protected_doc, dict):
        raise malformed("JWS", "protected header is not a JSON object")
    # notation-core-go reads the protected header twice: into a struct (keys matched as Go does)
    # and into a map for the extended attributes; both readings are kept, with the same rules.
    protected = {**protected_doc, **go_fields(protected_doc, _STANDARD, "JWS protected header")}
    unprotected_doc = members.get("header")
    if unprotected_doc is None:
        unprotected_doc = {}
    if not isinstance(unprotected_doc, dict):
        raise malformed("JWS", "unprotected header is not a JSON object")
    unprotected = go_fields(unprotected_doc, _UNPROTECTED_FIELDS, "JWS unprotected header")

    alg = protected.get("alg")
    if not isinstance(alg, str):
        raise VerificationError("integrity: protected header 'alg' is missing")
    crit = protected.get("crit", [])
    if not isinstance(crit, list) or not all(isinstance(c, str) for c in crit):
        raise malformed("JWS", "'crit' must be an array of strings")
    scheme = protected.get(H_SIGNING_SCHEME)
    if scheme is not None and not isinstance(scheme, str):
        raise malformed("JWS", f"header {H_SIGNING_SCHEME} must be a string")

    x5c = unprotected.get("x5c", [])
    if not isinstance(x5c, list):
        raise malformed("JWS", "x5c must be an array")
    if len(x5c) > max_chain:
        raise VerificationError(
            f"integrity: certificate chain has {len(x5c)} certificates, "
            f"over the limit of {max_chain}"
        )
    chain = tuple(_b64std_decode(c, f"x5c[{i}]") for i, c in enumerate(x5c))
    token_text = unprotected.get(H_TIMESTAMP_SIGNATURE)
    token = None if token_text is None else _b64std_decode(token_text, H_TIMESTAMP_SIGNATURE)

    return Decoded(
        media_type=mt.JWS_ENVELOPE,
        format=FORMAT,
        algorithm=alg,
        critical=tuple(crit),
        content_type=_optional_str(protected, "cty"),
        signing_scheme=scheme,
        signing_time=_time(protected, H_SIGNING_TIME),
        authentic_signing_time=_time(protected, H_AUTHENTIC_SIGNING_TIME),
        expiry=_time(protected, H_EXPIRY),
        extended={k: v for k, v in protected_doc.items() if k not in _STANDARD},
        payload=payload,
        signature=signature,
        signed_bytes=f"{fields['protected']}.{fields['payload']}".encode("ascii"),
        chain_der=chain,
        signing_agent=_optional_str(unprotected, H_SIGNING_AGENT),
        timestamp_token=token,
        present=frozenset(protected_doc) | frozenset(protected.keys() & _STANDARD),
    )


def rfc3339(when: datetime) -> str:
    """Second-precision UTC time, as the spec recommends (no fractional seconds)."""
    return when.astimezone(UTC).replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")


def assemble(
    protected: Mapping[str, Any],
    payload: bytes,
    sign: Callable[[bytes], bytes],
    unprotected: Mapping[str, Any],
    countersign: Callable[[bytes], Mapping[str, Any]] | None = None,
) -> bytes:
    """Serialize, sign and wrap a flattened JWS JSON envelope (compact, sorted keys).

    ``countersign`` gets the raw signature and returns more unprotected headers (the RFC 3161
    timestamp token, which must be over the signature and so can only come after it).
    """
    protected_b64 = b64url_encode(
        json.dumps(dict(protected), sort_keys=True, separators=(",", ":")).encode("utf-8")
    )
    payload_b64 = b64url_encode(payload)
    signature = sign(f"{protected_b64}.{payload_b64}".encode("ascii"))
    header = dict(unprotected)
    if countersign is not None:
        header.update(countersign(signature))
    doc = {
        "payload": payload_b64,
        "protected": protected_b64,
        "header": header,
        "signature": b64url_encode(signature),
    }
    return json.dumps(doc, separators=(",", ":")).encode("utf-8")
