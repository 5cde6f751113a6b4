"""Read JSON the way the Go programs that act on it do, or refuse it: one reader for every document
whose fields decide a verdict (manifests, indexes, descriptors, platforms, annotations, fallback
indexes, signature manifests, JWS envelopes, their protected headers and payloads, trust
policies).

Registries (distribution), runtimes (containerd, docker) and notation read these documents with
Go's ``encoding/json``. Go decodes an object into a struct by matching each key to a field
*exactly, else case-insensitively*, and when several keys land on one field the last one wins
(for a nested struct or map, the values are even merged). Python's ``dict.get`` sees only the
exact key and, for exact duplicates, the last one. So ``{"manifests": [A], "Manifests": [B]}``
is index B to a runtime and index A to a naive Python reader: two readers, two images.

The rule here, applied by every parser through :func:`loads` and :func:`fields`:

* bytes must be UTF-8 without a BOM (Go rejects UTF-16 and BOMs; Python would accept them), no
  ``NaN``/``Infinity`` (not JSON; Go rejects them), no lone UTF-16 surrogate escapes (Go would
  silently replace them), nesting at most :data:`MAX_DEPTH` deep;
* an object with the same key twice is refused (struct or map: one reading only);
* a struct field is read from the key that names it exactly *or* differs only in ASCII case,
  exactly as Go reads it (``"Platform"`` alone is the platform);
* two keys that land on the same field (``manifests`` and ``Manifests``) are refused: Go would
  keep the last, with merge rules for nested objects that no second reader should imitate;
* a key that reaches a field only through Go's Unicode folding (``manifests`` spelt with
  U+017F LONG S, the Kelvin sign for ``k``, dotted/dotless i) is refused: Go versions disagree
  on some of these and no legitimate document uses them.

A refusal raises :class:`~auditor.errors.MalformedContent` naming the document and the keys, so
the manifest is ``invalid``/``error`` for its node and the audit never picks one reading silently.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from auditor.errors import MalformedContent

MAX_DEPTH = 64
"""Deepest nesting accepted. Real manifests, envelopes and policies nest fewer than 8 levels."""

# Non-ASCII runes that Go's encoding/json folds onto an ASCII letter (ToUpper(ToLower(r)) in
# Go >= 1.21; U+212A and U+017F also in older versions' equalFold). Only these can make a
# non-ASCII key match one of our (ASCII) field names.
_FOLDS_TO_ASCII = {"\u212a": "K", "\u017f": "S", "\u0130": "I", "\u0131": "I"}


def go_fold(name: str) -> str:
    """Go's folded form of a key, as far as it matters for matching ASCII field names."""
    return "".join(_FOLDS_TO_ASCII.get(c, c.upper() if c.isascii() else c) for c in name)


def _pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise _Refused(f"duplicate key {key!r} in one object")
        out[key] = value
    return out


def _pairs_no_case_twins(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out = _pairs(pairs)
    folded: dict[str, str] = {}
    for key in out:
        for form in {go_fold(key), key.casefold()}:
            twin = folded.setdefault(form, key)
            if twin != key:
                raise _Refused(
                    f"duplicate key {key!r} ({twin!r} differs only in case; Go reads either)"
                )
    return out


def _constant(name: str) -> Any:
    raise _Refused(f"{name} is not a JSON value")


def _number(text: str) -> float:
    value = float(text)
    if value in (float("inf"), float("-inf")):
        raise _Refused(f"number {text[:40]} is out of range")
    return value


class _Refused(ValueError):
    """Internal: raised from inside the json module's hooks, turned into MalformedContent."""


def loads(data: bytes | str, what: str, *, case_twins: bool = False) -> Any:
    """Parse one JSON document strictly (see the module docstring); ``what`` names it in errors.

    ``case_twins=True`` refuses, in every object, two keys that differ only in case, maps
    included: for documents read field by field with exact keys (cosign's), where no map key
    may legitimately differ from another only in case.
    """
    if isinstance(data, bytes):
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise MalformedContent(f"{what} is not valid JSON (not UTF-8: {exc.reason})") from None
    else:
        text = data
    try:
        doc = json.loads(
            text,
            object_pairs_hook=_pairs_no_case_twins if case_twins else _pairs,
            parse_constant=_constant,
            parse_float=_number,
        )
    except _Refused as exc:
        raise MalformedContent(f"{what}: refused JSON: {exc}") from None
    except RecursionError:
        raise MalformedContent(
            f"{what}: refused JSON: nested deeper than {MAX_DEPTH} levels"
        ) from None
    except ValueError as exc:  # JSONDecodeError, huge integers
        raise MalformedContent(f"{what} is not valid JSON ({_one_line(str(exc))})") from None
    _check_tree(doc, what)
    return doc


def _one_line(text: str, limit: int = 160) -> str:
    return " ".join(text.split())[:limit]


def _check_tree(doc: Any, what: str) -> None:
    """Depth bound and no lone surrogates, iteratively (no recursion on hostile input)."""
    stack: list[tuple[Any, int]] = [(doc, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, str):
            _check_text(value, what)
        elif isinstance(value, dict | list):
            if depth > MAX_DEPTH:
                raise MalformedContent(
                    f"{what}: refused JSON: nested deeper than {MAX_DEPTH} levels"
                )
            if isinstance(value, dict):
                for key, item in value.items():
                    _check_text(key, what)
                    stack.append((item, depth + 1))
            else:
                stack.extend((item, depth + 1) for item in value)


def _check_text(text: str, what: str) -> None:
    if text.isascii():
        return
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise MalformedContent(
            f"{what}: refused JSON: a string holds an unpaired UTF-16 surrogate escape"
        ) from None


def fields(obj: Mapping[str, Any], names: Iterable[str], where: str) -> dict[str, Any]:
    """The struct fields ``names`` of a decoded object, each read from the key Go would use.

    Keys that name no field are ignored, as Go ignores them. Raises MalformedContent when two
    keys set one field or a key reaches a field only through Unicode folding.
    """
    wanted = frozenset(names)
    by_fold = {go_fold(n): n for n in wanted}
    found: dict[str, str] = {}
    out: dict[str, Any] = {}
    for key, value in obj.items():
        name = key if key in wanted else by_fold.get(go_fold(key))
        if name is None:
            continue
        if not key.isascii():
            raise MalformedContent(
                f"{where}: key {key!r} names field {name!r} only through Unicode case folding "
                "(Go reads it as that field); refused"
            )
        if name in found:
            raise MalformedContent(
                f"{where}: keys {found[name]!r} and {key!r} both set field {name!r} (Go matches "
                "keys case-insensitively and keeps the last); refused as ambiguous"
            )
        found[name] = key
        out[name] = value
    return out
