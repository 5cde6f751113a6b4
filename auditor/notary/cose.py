"""COSE_Sign1 (CBOR tag 18) encoding of a Notary Project envelope: decode and assemble.

Decoding is strict where leniency could let two readers disagree: no trailing bytes, no
duplicate map keys, bounded nesting, times only as CBOR tag 1 (epoch) as notation requires.
The protected header is kept as the exact byte string that was signed.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

import cbor2

from auditor.errors import VerificationError
from auditor.notary.crypto import COSE_ALGORITHMS
from auditor.notary.decoded import (
    H_AUTHENTIC_SIGNING_TIME,
    H_EXPIRY,
    H_SIGNING_AGENT,
    H_SIGNING_SCHEME,
    H_SIGNING_TIME,
    H_TIMESTAMP_SIGNATURE,
    Decoded,
    malformed,
)
from auditor.oci import mediatypes as mt

FORMAT = "notation/cose"
COSE_SIGN1_TAG = 18
LABEL_ALG = 1
LABEL_CRIT = 2
LABEL_CONTENT_TYPE = 3
LABEL_X5CHAIN = 33
_STANDARD: set[str | int] = {
    LABEL_ALG,
    LABEL_CRIT,
    LABEL_CONTENT_TYPE,
    H_SIGNING_SCHEME,
    H_SIGNING_TIME,
    H_AUTHENTIC_SIGNING_TIME,
    H_EXPIRY,
}
_MAX_DEPTH = 16


class _NotEpochTime:
    """Stands in for a tag-0 (text) date-time, which the Notary COSE profile does not allow."""


def _tag0(_decoder: object, _value: object) -> _NotEpochTime:
    return _NotEpochTime()


def loads_strict(data: bytes, what: str) -> Any:
    """Decode exactly one CBOR item covering all of ``data``."""
    fp = io.BytesIO(data)
    try:
        decoder = cbor2.CBORDecoder(
            fp,
            semantic_decoders={0: _tag0},
            allow_duplicate_keys=False,
            max_depth=_MAX_DEPTH,
        )
        value = decoder.decode()
    except (cbor2.CBORError, ValueError, TypeError, OverflowError, RecursionError) as exc:
        raise malformed("COSE", f"{what} is not valid CBOR ({exc})") from None
    if fp.tell() != len(data):
        raise malformed("COSE", f"{what} has {len(data) - fp.tell()} trailing bytes")
    return value


def _time(header: Mapping[Any, Any], name: str) -> datetime | None:
    if name not in header:
        return None
    value = header[name]
    if not isinstance(value, datetime) or value.tzinfo is None:
        raise malformed("COSE", f"header {name} must be a tag 1 (epoch) date-time")
    return value.astimezone(UTC)


def _optional_str(header: Mapping[Any, Any], name: str | int) -> str | None:
    value = header.get(name)
    if value is not None and not isinstance(value, str):
        raise malformed("COSE", f"header {name} must be a text string")
    return value


def decode(data: bytes, *, max_chain: int) -> Decoded:
    """Decode a COSE_Sign1_Tagged envelope; no Notary rules are applied yet."""
    item = loads_strict(data, "envelope")
    if not isinstance(item, cbor2.CBORTag) or item.tag != COSE_SIGN1_TAG:
        raise malformed("COSE", "not a COSE_Sign1_Tagged object (tag 18)")
    body = item.value
    if not isinstance(body, list | tuple) or len(body) != 4:
        raise malformed("COSE", "COSE_Sign1 must be an array of 4 items")
    protected_raw, unprotected, payload, signature = body
    if not isinstance(protected_raw, bytes) or not protected_raw:
        raise malformed("COSE", "protected header must be a non-empty byte string")
    if not isinstance(unprotected, Mapping):
        raise malformed("COSE", "unprotected header must be a map")
    if not isinstance(payload, bytes):
        raise malformed("COSE", "payload must be attached as a byte string")
    if not isinstance(signature, bytes):
        raise malformed("COSE", "signature must be a byte string")
    protected = loads_strict(protected_raw, "protected header")
    if not isinstance(protected, Mapping):
        raise malformed("COSE", "protected header is not a map")

    alg_id = protected.get(LABEL_ALG)
    if alg_id is None:
        raise VerificationError("integrity: protected header 'alg' (label 1) is missing")
    alg = COSE_ALGORITHMS.get(alg_id) if isinstance(alg_id, int) else None
    algorithm = alg.name if alg is not None else f"COSE alg {alg_id!r}"
    crit = protected.get(LABEL_CRIT, [])
    if not isinstance(crit, list | tuple) or not all(
        isinstance(c, str) or (isinstance(c, int) and not isinstance(c, bool)) for c in crit
    ):
        raise malformed("COSE", "'crit' must be an array of labels")
    scheme = protected.get(H_SIGNING_SCHEME)
    if scheme is not None and not isinstance(scheme, str):
        raise malformed("COSE", f"header {H_SIGNING_SCHEME} must be a text string")

    x5chain = unprotected.get(LABEL_X5CHAIN, [])
    if not isinstance(x5chain, list | tuple) or not all(isinstance(c, bytes) for c in x5chain):
        raise malformed("COSE", "x5chain (label 33) must be an array of byte strings")
    if len(x5chain) > max_chain:
        raise VerificationError(
            f"integrity: certificate chain has {len(x5chain)} certificates, over the limit "
            f"of {max_chain}"
        )
    token = unprotected.get(H_TIMESTAMP_SIGNATURE)
    if token is not None and not isinstance(token, bytes):
        raise malformed("COSE", f"{H_TIMESTAMP_SIGNATURE} must be a byte string")

    return Decoded(
        media_type=mt.COSE_ENVELOPE,
        format=FORMAT,
        algorithm=algorithm,
        critical=tuple(crit),
        content_type=_optional_str(protected, LABEL_CONTENT_TYPE),
        signing_scheme=scheme,
        signing_time=_time(protected, H_SIGNING_TIME),
        authentic_signing_time=_time(protected, H_AUTHENTIC_SIGNING_TIME),
        expiry=_time(protected, H_EXPIRY),
        extended={k: v for k, v in protected.items() if k not in _STANDARD},
        payload=payload,
        signature=signature,
        signed_bytes=sig_structure(protected_raw, payload),
        chain_der=tuple(x5chain),
        signing_agent=_optional_str(unprotected, H_SIGNING_AGENT),
        timestamp_token=token,
        present=frozenset(protected),
    )


def sig_structure(protected_raw: bytes, payload: bytes) -> bytes:
    """RFC 9052 Sig_structure for COSE_Sign1 with empty external_aad."""
    return cbor2.dumps(["Signature1", protected_raw, b"", payload])


def epoch(when: datetime) -> cbor2.CBORTag:
    """A tag-1 integer epoch time (the spec says no fractional seconds)."""
    return cbor2.CBORTag(1, int(when.astimezone(UTC).timestamp()))


def assemble(
    protected: Mapping[str | int, Any],
    payload: bytes,
    sign: Callable[[bytes], bytes],
    unprotected: Mapping[str | int, Any],
    countersign: Callable[[bytes], Mapping[str | int, Any]] | None = None,
) -> bytes:
    """Encode, sign and wrap a COSE_Sign1_Tagged envelope.

    ``countersign`` gets the signature and returns more unprotected headers (the timestamp).
    """
    protected_raw = cbor2.dumps(dict(protected), canonical=True)
    signature = sign(sig_structure(protected_raw, payload))
    header = dict(unprotected)
    if countersign is not None:
        header.update(countersign(signature))
    message = [protected_raw, header, payload, signature]
    return cbor2.dumps(cbor2.CBORTag(COSE_SIGN1_TAG, message))
