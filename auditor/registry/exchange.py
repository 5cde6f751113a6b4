"""One bounded HTTP exchange: the single place where bytes from a registry or token service
enter memory.

Every request the registry code sends (manifests, blobs, lists, tokens) goes through
:func:`exchange`, which enforces three things on the *whole* exchange, not per read:

- a wall-clock deadline covering headers and body, so a peer that drips one byte just inside
  the per-read timeout still ends;
- a size limit applied to the *decoded* body as it streams (:mod:`auditor.decoding`), so no
  ``Content-Encoding`` lets a small answer grow past its limit;
- no redirect is followed here: callers decide where credentials may go.

We ask for ``Accept-Encoding: identity``; a registry that compresses anyway is handled above.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from dataclasses import dataclass

import httpx

from auditor.decoding import LAYER_SLACK, BoundedDecoder
from auditor.errors import ErrorCategory, RegistryError, TooLarge

ERROR_BODY_LIMIT = 64 * 1024


class DeadlineExceeded(RegistryError):
    """A request (headers and body) did not finish within its deadline."""

    category = ErrorCategory.TIMEOUT


@dataclass(frozen=True)
class Reply:
    """A finished response with its (bounded, decoded) body already read."""

    status: int
    headers: httpx.Headers
    body: bytes
    url: httpx.URL

    @property
    def content_type(self) -> str | None:
        value = self.headers.get("content-type")
        return value.split(";", 1)[0].strip() or None if value else None


def origin(url: httpx.URL) -> tuple[str, str, int | None]:
    """(scheme, host, port) with default ports filled in: what "same origin" compares."""
    port = url.port or {"http": 80, "https": 443}.get(url.scheme)
    return (url.scheme, url.host.lower(), port)


def join_url(base: httpx.URL, reference: str, what: str) -> httpx.URL:
    """``reference`` (a Link or Location value) resolved against ``base``; RegistryError when
    it does not parse or is not http(s)."""
    try:
        url = base.join(reference)
    except (httpx.InvalidURL, ValueError, TypeError):
        raise RegistryError(f"{what}: the registry sent a URL that does not parse") from None
    if url.scheme not in ("http", "https") or not url.host:
        raise RegistryError(f"{what}: the registry sent a URL that is not http(s)")
    return url


def _declared_length(headers: httpx.Headers) -> int | None:
    value = headers.get("content-length", "").strip()
    if value and value.isascii() and value.isdigit():
        return int(value)
    return None


async def exchange(
    http: httpx.AsyncClient,
    method: str,
    url: httpx.URL,
    *,
    what: str,
    limit: int,
    deadline: float,
    headers: Mapping[str, str] | None = None,
    content: bytes | None = None,
    error_limit: int = ERROR_BODY_LIMIT,
) -> Reply:
    """Send one request and read its body, within ``deadline`` seconds and ``limit`` bytes.

    A successful answer over ``limit`` raises TooLarge; an error answer's body is cut at
    ``error_limit`` (only its error code matters). Transport errors propagate as httpx's own
    (the retry loop retries them); passing the deadline raises DeadlineExceeded.
    """
    merged = {"Accept-Encoding": "identity", **dict(headers or {})}
    started = time.monotonic()
    try:
        async with asyncio.timeout(deadline):
            request = http.build_request(method, url, headers=merged, content=content)
            try:
                response = await http.send(request, stream=True, follow_redirects=False)
            except httpx.RemoteProtocolError as exc:
                # httpx parses a redirect's Location even when it will not follow it.
                if "location header" in str(exc).lower():
                    raise RegistryError(
                        f"{what}: the registry sent a Location URL that does not parse"
                    ) from None
                raise
            try:
                body = b"" if method == "HEAD" else await _read(response, limit, error_limit, what)
            finally:
                await response.aclose()
    except TimeoutError:
        elapsed = time.monotonic() - started
        raise DeadlineExceeded(
            f"{what}: no complete answer within the {deadline:g}s request deadline "
            f"(gave up after {elapsed:.1f}s)"
        ) from None
    return Reply(response.status_code, response.headers, body, url)


async def _read(response: httpx.Response, limit: int, error_limit: int, what: str) -> bytes:
    ok = 200 <= response.status_code < 300
    cap = limit if ok else error_limit
    declared = _declared_length(response.headers)
    encoding = response.headers.get("content-encoding")
    if ok and declared is not None and declared > cap and not encoding:
        raise TooLarge(f"{what}: {declared} bytes exceeds the {cap}-byte limit")
    try:
        decoder = BoundedDecoder(encoding, cap, what)
    except RegistryError:
        if ok:
            raise
        return b""  # an error answer in an odd encoding: its status is all we use
    if response.is_stream_consumed:
        # Built in memory (httpx reads a bytes body eagerly, as test transports do): already
        # decoded by httpx, and no bigger than what the caller itself handed over.
        body = response.content
        if len(body) > cap and ok:
            raise TooLarge(decoder.too_large_message())
        return body[:cap]
    chunks: list[bytes] = []
    raw_total = 0
    try:
        async for raw in response.aiter_raw():
            raw_total += len(raw)
            if raw_total > cap + LAYER_SLACK:
                raise TooLarge(decoder.too_large_message())
            chunks.append(decoder.feed(raw))
        chunks.append(decoder.flush())
    except TooLarge:
        if ok:
            raise
        return b"".join(chunks)[:cap]
    except RegistryError:
        if ok:
            raise
        return b""
    return b"".join(chunks)
