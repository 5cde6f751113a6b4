"""Parse ``WWW-Authenticate`` headers (RFC 7235) into challenges.

Hand-written because realms and scopes are quoted strings that may contain commas, and one
header may carry several challenges (``Bearer realm="a,b",scope="x", Basic realm="r"``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z/-]+")


@dataclass(frozen=True)
class Challenge:
    """One challenge: ``scheme`` lower-cased, parameter names lower-cased."""

    scheme: str
    params: Mapping[str, str] = field(default_factory=dict)

    def get(self, name: str) -> str | None:
        return self.params.get(name)


def _quoted(text: str, pos: int) -> tuple[str, int]:
    """Read a quoted-string starting at the opening quote; returns (value, next position)."""
    out: list[str] = []
    i = pos + 1
    while i < len(text):
        ch = text[i]
        if ch == "\\" and i + 1 < len(text):
            out.append(text[i + 1])
            i += 2
            continue
        if ch == '"':
            return "".join(out), i + 1
        out.append(ch)
        i += 1
    return "".join(out), i  # unterminated: take the rest rather than fail


def parse_challenges(header: str) -> list[Challenge]:
    """Every challenge in one header value; unparseable fragments are skipped, never raised."""
    challenges: list[Challenge] = []
    scheme: str | None = None
    params: dict[str, str] = {}
    i, n = 0, len(header)
    while i < n:
        if header[i] in " \t,":
            i += 1
            continue
        match = _TOKEN.match(header, i)
        if match is None:
            i += 1  # stray character: skip it
            continue
        word, i = match.group(), match.end()
        j = i
        while j < n and header[j] in " \t":
            j += 1
        if j < n and header[j] == "=" and scheme is not None:
            j += 1
            while j < n and header[j] in " \t":
                j += 1
            if j < n and header[j] == '"':
                value, i = _quoted(header, j)
            else:
                value_match = _TOKEN.match(header, j)
                value, i = (value_match.group(), value_match.end()) if value_match else ("", j)
                while i < n and header[i] == "=":  # token68 padding
                    i += 1
            params[word.lower()] = value
            continue
        if scheme is not None:
            challenges.append(Challenge(scheme, params))
        scheme, params = word.lower(), {}
    if scheme is not None:
        challenges.append(Challenge(scheme, params))
    return challenges


def parse_all(headers: Iterable[str]) -> list[Challenge]:
    """Challenges from every ``WWW-Authenticate`` header of a response."""
    return [challenge for header in headers for challenge in parse_challenges(header)]
