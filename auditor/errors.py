"""One small family of named errors.

Every error carries a one-line, user-facing message that names the thing at fault, so the
CLI can print it without a traceback and a report can record it as a node's reason.
"""

from __future__ import annotations


class AuditorError(Exception):
    """Base of every error the auditor raises on purpose."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class UsageError(AuditorError):
    """The command line itself is wrong (exit code 2)."""


class ConfigError(AuditorError):
    """A config file, trust policy or trust store is invalid (exit code 2)."""


class InvalidReference(AuditorError):
    """A string is not a valid image reference."""


class RegistryError(AuditorError):
    """Talking to a registry (or reading a layout) failed."""


class TlsError(RegistryError):
    """The TLS handshake with a registry failed (an untrusted certificate, a protocol
    mismatch): not retried, since it fails the same way every time; the message names the fix."""


class AuthError(RegistryError):
    """The registry refused our credentials or we could not obtain a token."""


class NotFound(RegistryError):
    """The repository, tag, manifest or blob does not exist."""


class RateLimited(RegistryError):
    """The registry kept answering 429 after our bounded retries."""


class DigestMismatch(RegistryError):
    """Content did not hash to the digest it was fetched by or announced with."""


class TooLarge(RegistryError):
    """A manifest or blob exceeded the configured size limit."""


class UnsupportedMediaType(RegistryError):
    """A manifest has a media type the auditor does not understand."""


class MalformedContent(AuditorError):
    """A manifest, index or envelope is not what its media type says."""


class GraphLimitExceeded(AuditorError):
    """A guard tripped: a cycle, excessive nesting, or too many children or referrers."""


class VerificationError(AuditorError):
    """A signature could not be verified (malformed envelope, bad chain, ...)."""


class StateError(AuditorError):
    """The state database cannot be opened, migrated, read or written (locked, read-only,
    damaged, or newer than this program)."""


class SigningError(AuditorError):
    """Producing or attaching a signature failed."""
