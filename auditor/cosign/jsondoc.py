"""Strict JSON for signed documents: one reading for every parser, or a refusal.

Go's encoding/json (what cosign and the registries run) keeps the *last* of duplicate keys and
matches field names case-insensitively; Python keeps the last key but is case-sensitive. A
document with ``critical`` and ``Critical`` could therefore mean two things, so any two keys
that are equal ignoring case are refused, as are NaN and Infinity; the reading itself is the
project's one strict reader, :mod:`auditor.gojson`.
"""

from __future__ import annotations

from typing import Any

from auditor import gojson
from auditor.errors import MalformedContent, VerificationError


def strict_json(data: bytes | str, what: str) -> Any:
    """Parse ``data``; VerificationError names ``what`` when it is not one unambiguous document.

    The one strict reader (auditor.gojson), with keys that differ only in case refused in every
    object, since the fields here are read by their exact names.
    """
    try:
        return gojson.loads(data, what, case_twins=True)
    except MalformedContent as exc:
        raise VerificationError(str(exc)) from None


def obj(value: Any, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise VerificationError(f"{what} must be a JSON object")
    return value


def text(value: Any, what: str) -> str:
    if not isinstance(value, str) or not value:
        raise VerificationError(f"{what} must be a non-empty string")
    return value


def integer(value: Any, what: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise VerificationError(f"{what} must be a non-negative integer")
    return value
