"""TLS failures from a registry or its token service, as one line that names the fix.

httpx raises a transport error whose cause chain holds the ``ssl`` error; :func:`ssl_cause`
finds it and :func:`tls_error` words it (an untrusted certificate: give ``ca_file`` or
``--ca-file``, or ``insecure``; a peer that answers a TLS hello in plain text: it serves
plain http). Such failures are never retried: they fail the same way every time.
"""

from __future__ import annotations

import ssl

from auditor.errors import TlsError

# OpenSSL's reasons when the peer of a TLS client answers in plain text.
PLAIN_PEER_REASONS = frozenset(
    {"WRONG_VERSION_NUMBER", "HTTP_REQUEST", "PACKET_LENGTH_TOO_LONG", "RECORD_LAYER_FAILURE",
     "UNKNOWN_PROTOCOL"}
)
_TLS_FIX = (
    "give the registry's CA certificate with ca_file: in its registries entry of the config "
    "(or --ca-file FILE), or, for a registry you control, set insecure: true (or "
    "--insecure-registry) to skip verification"
)


def ssl_cause(exc: BaseException) -> ssl.SSLError | None:
    """The ``ssl.SSLError`` behind an httpx transport error, if a TLS failure caused it."""
    current: BaseException | None = exc
    for _ in range(8):
        if current is None:
            return None
        if isinstance(current, ssl.SSLError):
            return current
        current = current.__cause__ or current.__context__
    return None


def tls_error(exc: ssl.SSLError, host: str, what: str) -> TlsError:
    """A TLS failure as one line naming the fix."""
    if isinstance(exc, ssl.SSLCertVerificationError):
        detail = exc.verify_message or exc.reason or "certificate verify failed"
        return TlsError(
            f"{what}: TLS: the certificate of {host} is not trusted ({detail}); {_TLS_FIX}"
        )
    detail = exc.reason or type(exc).__name__
    if detail in PLAIN_PEER_REASONS:
        return TlsError(
            f"{what}: TLS: {host} does not speak TLS on this port ({detail}); use an http:// "
            "url with insecure: true in its registries entry (or --insecure-registry) if the "
            "registry really serves plain http"
        )
    return TlsError(f"{what}: TLS handshake with {host} failed ({detail}); {_TLS_FIX}")
