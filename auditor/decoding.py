"""Bounded ``Content-Encoding`` decoding for every HTTP body we read (registry, token
service, OCSP/CRL).

httpx decodes a whole raw chunk at once, so a 64 KiB gzip chunk may become 64 MiB in memory
before any size check runs (brotli's ratio is far higher). Bodies are therefore read raw and
decoded here, each decompression step asked for no more than what is left under the limit.
gzip and deflate, stacked up to four times, are decoded; any other encoding (``br``, ``zstd``,
...) is refused rather than passed on undecoded. We ask for ``Accept-Encoding: identity``, so
only a peer that ignores that ever gets here with an encoding.
"""

from __future__ import annotations

import zlib

from auditor.errors import RegistryError, TooLarge

# Compressed intermediate layers may be a little larger than what they decode to.
LAYER_SLACK = 64 * 1024
MAX_LAYERS = 4


class _Overflow(Exception):
    """A decoding layer produced more than its bound."""


class _Inflater:
    """One gzip/deflate layer with a cap on its total output."""

    def __init__(self, bound: int) -> None:
        # 32 + 15: accept a gzip or a zlib header (HTTP "deflate" is zlib-wrapped).
        self._decoder = zlib.decompressobj(32 + zlib.MAX_WBITS)
        self._bound = bound
        self._total = 0

    def feed(self, data: bytes) -> bytes:
        if self._decoder.eof:
            return b""  # trailing bytes after the stream's end are ignored, as Go does
        out = self._decoder.decompress(data, self._bound - self._total + 1)
        self._total += len(out)
        if self._total > self._bound:
            raise _Overflow
        return out

    def flush(self) -> bytes:
        out = self._decoder.flush()
        self._total += len(out)
        if self._total > self._bound:
            raise _Overflow
        return out


class BoundedDecoder:
    """Decodes a ``Content-Encoding`` chain; raises TooLarge past ``cap`` decoded bytes."""

    def __init__(self, content_encoding: str | None, cap: int, what: str) -> None:
        names = [
            name.strip().lower()
            for name in (content_encoding or "").split(",")
            if name.strip() and name.strip().lower() != "identity"
        ]
        for name in names:
            if name not in ("gzip", "x-gzip", "deflate"):
                raise RegistryError(f"{what}: unsupported Content-Encoding {name[:40]!r}")
        if len(names) > MAX_LAYERS:
            raise RegistryError(f"{what}: Content-Encoding stacked {len(names)} times")
        self._cap = cap
        self._what = what
        # Applied in order, so decoded in reverse; the last decoder yields the body itself.
        self._layers = [_Inflater(cap + LAYER_SLACK) for _ in names[1:]] + (
            [_Inflater(cap)] if names else []
        )
        self.total = 0

    def feed(self, raw: bytes) -> bytes:
        try:
            data = raw
            for layer in self._layers:
                data = layer.feed(data)
            return self._count(data)
        except _Overflow:
            raise TooLarge(self.too_large_message()) from None
        except zlib.error:
            raise RegistryError(f"{self._what}: body is not valid compressed data") from None

    def flush(self) -> bytes:
        try:
            data = b""
            for layer in self._layers:
                data = layer.feed(data) + layer.flush()
            return self._count(data)
        except _Overflow:
            raise TooLarge(self.too_large_message()) from None
        except zlib.error:
            raise RegistryError(f"{self._what}: body is not valid compressed data") from None

    def _count(self, data: bytes) -> bytes:
        self.total += len(data)
        if self.total > self._cap:
            raise TooLarge(self.too_large_message())
        return data

    def too_large_message(self) -> str:
        return f"{self._what}: body exceeds the {self._cap}-byte limit"
