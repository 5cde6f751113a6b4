"""Digests: validation and computation (sha256 and sha512, as OCI registers them)."""

from __future__ import annotations

import hashlib
import re

from auditor.errors import DigestMismatch

_DIGEST = re.compile(r"^(sha256:[a-f0-9]{64}|sha512:[a-f0-9]{128})$")
_FALLBACK_TAG = re.compile(r"sha256-[a-f0-9]{64}|sha512-[a-f0-9]{128}")
_ALGORITHMS = {"sha256": hashlib.sha256, "sha512": hashlib.sha512}


def is_valid_digest(value: str) -> bool:
    return bool(_DIGEST.match(value))


def compute_digest(data: bytes, algorithm: str = "sha256") -> str:
    return f"{algorithm}:{_ALGORITHMS[algorithm](data).hexdigest()}"


def verify_digest(data: bytes, expected: str, what: str) -> None:
    """Raise DigestMismatch unless ``data`` hashes to ``expected`` (with the same algorithm)."""
    if not is_valid_digest(expected):
        raise DigestMismatch(f"{what}: {expected!r} is not a supported digest")
    algorithm = expected.split(":", 1)[0]
    actual = compute_digest(data, algorithm)
    if actual != expected:
        raise DigestMismatch(f"{what}: content hashes to {actual}, expected {expected}")


def fallback_tag(digest: str) -> str:
    """The referrers fallback tag for a digest: ``<alg>-<hex>``."""
    return digest.replace(":", "-", 1)


def is_fallback_tag(tag: str) -> bool:
    """True for referrers fallback tags (``sha256-<hex>``): attachments, not images."""
    return bool(_FALLBACK_TAG.fullmatch(tag))
