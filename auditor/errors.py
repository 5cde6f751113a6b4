"""One small family of named errors.

Every error carries a one-line, user-facing message that names the thing at fault, so the
CLI can print it without a traceback and a report can record it as a node's reason.
"""

from __future__ import annotations

from enum import StrEnum


class ErrorCategory(StrEnum):
    """What kind of failure stopped a target, as reports and CI scripts branch on it.

    Each error class below has one (``category``); a transport failure after its retries is
    ``connect``, ``tls`` or ``timeout`` by what httpx raised (registry/retry.py). ``other`` is
    the documented fallback: an HTTP 5xx answer, a redirect loop, a configuration problem met
    during a run, anything that fits none of the named kinds.
    """

    CONNECT = "connect"  # refused, reset or cut connection; DNS failure
    TLS = "tls"  # handshake or certificate failure (https to a plain port, unknown CA)
    AUTH = "auth"  # 401/403, no token
    NOT_FOUND = "not-found"  # repository, tag or manifest missing; nothing to audit
    RATE_LIMITED = "rate-limited"  # 429 after the bounded retries
    TIMEOUT = "timeout"  # request, target or run deadline passed
    INVALID = "invalid"  # content refused: malformed, too large, wrong digest, over a limit
    OTHER = "other"  # the fallback


class AuditorError(Exception):
    """Base of every error the auditor raises on purpose.

    ``category`` is the class's kind of failure; ``category=`` overrides it for one error
    (a transport failure wrapped in a plain RegistryError says whether it was TLS).
    """

    category: ErrorCategory = ErrorCategory.OTHER

    def __init__(self, message: str, *, category: ErrorCategory | None = None) -> None:
        super().__init__(message)
        self.message = message
        if category is not None:
            self.category = category

    def __str__(self) -> str:
        return self.message


class UsageError(AuditorError):
    """The command line itself is wrong (exit code 2)."""


class ConfigError(AuditorError):
    """A config file, trust policy or trust store is invalid (exit code 2)."""


class InvalidReference(AuditorError):
    """A string is not a valid image reference."""

    category = ErrorCategory.INVALID


class RegistryError(AuditorError):
    """Talking to a registry (or reading a layout) failed."""


class TlsError(RegistryError):
    """The TLS handshake with a registry failed (an untrusted certificate, a protocol
    mismatch): not retried, since it fails the same way every time; the message names the fix."""

    category = ErrorCategory.TLS


class AuthError(RegistryError):
    """The registry refused our credentials or we could not obtain a token."""

    category = ErrorCategory.AUTH


class NotFound(RegistryError):
    """The repository, tag, manifest or blob does not exist."""

    category = ErrorCategory.NOT_FOUND


class RateLimited(RegistryError):
    """The registry kept answering 429 after our bounded retries."""

    category = ErrorCategory.RATE_LIMITED


class DigestMismatch(RegistryError):
    """Content did not hash to the digest it was fetched by or announced with."""

    category = ErrorCategory.INVALID


class TooLarge(RegistryError):
    """A manifest or blob exceeded the configured size limit."""

    category = ErrorCategory.INVALID


class UnsupportedMediaType(RegistryError):
    """A manifest has a media type the auditor does not understand."""

    category = ErrorCategory.INVALID


class MalformedContent(AuditorError):
    """A manifest, index or envelope is not what its media type says."""

    category = ErrorCategory.INVALID


class GraphLimitExceeded(AuditorError):
    """A guard tripped: a cycle, excessive nesting, or too many children or referrers."""

    category = ErrorCategory.INVALID


class VerificationError(AuditorError):
    """A signature could not be verified (malformed envelope, bad chain, ...)."""

    category = ErrorCategory.INVALID


class StateError(AuditorError):
    """The state database cannot be opened, migrated, read or written (locked, read-only,
    damaged, or newer than this program)."""


class SigningError(AuditorError):
    """Producing or attaching a signature failed."""
