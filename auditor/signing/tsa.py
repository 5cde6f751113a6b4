"""RFC 3161 timestamps for new signatures: ask a TSA, check its answer, return the token.

The TSA is a remote party like a registry: its answer is bounded in size and time, parsed
strictly, and must be ``granted``, carry our nonce and imprint, and verify against the root
given with ``--timestamp-root-cert`` (the check notation makes at signing time). The finished
envelope is then verified once more by the auditor's own timestamp verifier.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import httpx
import rfc3161_client
from asn1crypto import tsp
from cryptography import x509

from auditor.decoding import BoundedDecoder
from auditor.errors import AuditorError, SigningError, TooLarge

MAX_RESPONSE_BYTES = 256 * 1024
_QUERY = "application/timestamp-query"
_REPLY = "application/timestamp-reply"


@dataclass(frozen=True)
class TimestampAuthority:
    """Where to ask and whom to trust for the answer."""

    url: str
    root: x509.Certificate
    timeout_seconds: float = 10.0


def _request(signature: bytes) -> tuple[bytes, int | None]:
    request = (
        rfc3161_client.TimestampRequestBuilder()
        .data(signature)
        .hash_algorithm(rfc3161_client.HashAlgorithm.SHA256)
        .nonce(nonce=True)
        .cert_request(cert_request=True)
        .build()
    )
    nonce: int | None = request.nonce
    return request.as_bytes(), nonce


def request_token(tsa: TimestampAuthority, signature: bytes, http: httpx.Client) -> bytes:
    """A TimeStampToken (DER) over ``signature``; SigningError on any failure, naming the TSA."""
    what = f"timestamp authority {tsa.url}"
    body, nonce = _request(signature)
    try:
        with http.stream(
            "POST",
            tsa.url,
            content=body,
            headers={"Content-Type": _QUERY, "Accept": _REPLY, "Accept-Encoding": "identity"},
            timeout=tsa.timeout_seconds,
        ) as reply:
            if reply.status_code != 200:
                raise SigningError(f"{what}: HTTP {reply.status_code}")
            # Read raw and decode with a bound per step: a Content-Encoding cannot grow it.
            decoder = BoundedDecoder(
                reply.headers.get("content-encoding"), MAX_RESPONSE_BYTES, what
            )
            chunks = [decoder.feed(raw) for raw in reply.iter_raw()]
            chunks.append(decoder.flush())
            data = b"".join(chunks)
    except TooLarge:
        raise SigningError(f"{what}: answer exceeds {MAX_RESPONSE_BYTES} bytes") from None
    except AuditorError as exc:
        raise SigningError(str(exc)) from None
    except httpx.HTTPError as exc:
        raise SigningError(f"{what}: {type(exc).__name__}: {exc}") from None
    return _token(what, data, signature, tsa.root, nonce)


def _token(
    what: str, data: bytes, signature: bytes, root: x509.Certificate, nonce: int | None
) -> bytes:
    try:
        response = rfc3161_client.decode_timestamp_response(data)
    except ValueError as exc:
        raise SigningError(f"{what}: not a timestamp response ({exc})") from None
    if response.status != rfc3161_client.PKIStatus.GRANTED:
        raise SigningError(f"{what}: request not granted (status {response.status})")
    imprint = hashlib.sha256(signature).digest()
    if response.tst_info.message_imprint.message != imprint:
        raise SigningError(f"{what}: the token is not over this signature")
    if nonce is not None and response.tst_info.nonce != nonce:
        raise SigningError(f"{what}: the answer does not carry our nonce (a replayed answer?)")
    try:
        rfc3161_client.VerifierBuilder().add_root_certificate(root).build().verify(
            response, imprint
        )
    except (rfc3161_client.VerificationError, ValueError) as exc:
        first = (str(exc).splitlines() or ["verification failed"])[0][:200]
        raise SigningError(
            f"{what}: the answer does not verify against --timestamp-root-cert: {first}"
        ) from None
    try:
        token: bytes = tsp.TimeStampResp.load(data)["time_stamp_token"].dump()
    except (ValueError, TypeError, KeyError) as exc:
        raise SigningError(f"{what}: cannot extract the token ({exc})") from None
    return token


def load_root(path: Path) -> x509.Certificate:
    """The TSA root certificate (PEM or DER) for ``--timestamp-root-cert``."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise SigningError(f"--timestamp-root-cert {path}: {exc.strerror or exc}") from None
    try:
        if b"-----BEGIN" in data:
            return x509.load_pem_x509_certificate(data)
        return x509.load_der_x509_certificate(data)
    except ValueError:
        raise SigningError(f"--timestamp-root-cert {path}: not a certificate") from None
