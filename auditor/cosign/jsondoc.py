"""Strict JSON for signed documents: one reading for every parser, or a refusal.

Go's encoding/json (what cosign and the registries run) keeps the *last* of duplicate keys and
matches field names case-insensitively; Python keeps the last key but is case-sensitive. A
document with ``critical`` and ``Critical`` could therefore mean two things, so any two keys
that are equal ignoring case are refused, as are NaN and Infinity.
"""

from __future__ import annotations

import json
from typing import Any

from auditor.errors import VerificationError


def _pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    folded: set[str] = set()
    for key, value in pairs:
        if key.casefold() in folded:
            raise ValueError(f"duplicate key {key!r} (keys are compared ignoring case)")
        folded.add(key.casefold())
        out[key] = value
    return out


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def strict_json(data: bytes | str, what: str) -> Any:
    """Parse ``data``; VerificationError names ``what`` when it is not one unambiguous document."""
    try:
        text = data.decode("utf-8") if isinstance(data, bytes) else data
        return json.loads(text, object_pairs_hook=_pairs, parse_constant=_no_constant)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise VerificationError(f"{what} is not valid JSON: {exc}") from None


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
