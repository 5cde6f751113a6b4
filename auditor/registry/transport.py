"""One registry's HTTP edge: URLs, auth, retries, concurrency, size limits, error mapping.

Every request reads its whole body (bounded by a limit) inside the retry loop, so a
connection cut mid-body is retried like any other transport error. Redirects are followed by
hand, and the Authorization header only ever goes to the registry's own origin.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import httpx

from auditor.errors import AuthError, NotFound, RateLimited, RegistryError, TooLarge
from auditor.oci.reference import is_loopback
from auditor.registry.auth import AuthProvider
from auditor.registry.retry import RetryPolicy

ERROR_BODY_LIMIT = 64 * 1024
_MAX_REDIRECTS = 5
_REDIRECTS = frozenset({301, 302, 303, 307, 308})


def scheme_for(host: str, insecure: bool) -> str:
    """Plain http for loopback hosts or registries marked insecure; https otherwise."""
    return "http" if insecure or is_loopback(host) else "https"


@dataclass(frozen=True)
class Reply:
    """A finished response with its (bounded) body already read."""

    status: int
    headers: httpx.Headers
    body: bytes
    url: httpx.URL

    @property
    def content_type(self) -> str | None:
        value = self.headers.get("content-type")
        return value.split(";", 1)[0].strip() or None if value else None


class RepositoryNotFound(NotFound):
    """A 404 whose error code is NAME_UNKNOWN: the repository itself does not exist."""


def error_codes(body: bytes) -> list[tuple[str, str]]:
    """(code, message) pairs from a distribution JSON error body; [] for anything else."""
    try:
        doc = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return []
    errors = doc.get("errors") if isinstance(doc, dict) else None
    if not isinstance(errors, list):
        return []
    out = []
    for entry in errors:
        if isinstance(entry, dict) and isinstance(entry.get("code"), str):
            message = entry.get("message")
            out.append((entry["code"], message if isinstance(message, str) else ""))
    return out


def _one_line(text: str, limit: int = 160) -> str:
    return " ".join(text.split())[:limit]


def raise_for_status(reply: Reply, what: str, expected: Sequence[int] = (200,)) -> None:
    """Map an unexpected status to the typed error family, with a one-line message."""
    if reply.status in expected:
        return
    codes = error_codes(reply.body)
    detail = ", ".join(
        f"{code}: {_one_line(message)}" if message else code for code, message in codes
    )
    suffix = f" ({detail})" if detail else ""
    if reply.status in (401, 403):
        raise AuthError(f"{what}: access denied, HTTP {reply.status}{suffix}")
    if reply.status == 404:
        if any(code == "NAME_UNKNOWN" for code, _ in codes):
            raise RepositoryNotFound(f"{what}: repository not found{suffix}")
        raise NotFound(f"{what}: not found{suffix or ' (HTTP 404)'}")
    if reply.status == 429:
        raise RateLimited(f"{what}: rate limited (HTTP 429) after retries{suffix}")
    raise RegistryError(f"{what}: unexpected HTTP {reply.status}{suffix}")


class RegistryTransport:
    """Requests to one registry; shared ``httpx.AsyncClient`` owned by the caller."""

    def __init__(
        self,
        host: str,
        http: httpx.AsyncClient,
        *,
        auth: AuthProvider,
        insecure: bool = False,
        scheme: str | None = None,
        retry: RetryPolicy | None = None,
        max_concurrency: int,
    ) -> None:
        self.host = host
        self.http = http
        self.auth = auth
        self.retry = retry or RetryPolicy()
        # A configured URL's scheme wins; otherwise loopback and insecure mean plain http.
        self.base_url = httpx.URL(f"{scheme or scheme_for(host, insecure)}://{host}")
        self._semaphore = asyncio.Semaphore(max_concurrency)

    def url(self, path: str) -> httpx.URL:
        """Resolve a path or a (Link/Location) URL against the registry, same origin only."""
        url = self.base_url.join(path)
        if (url.scheme, url.netloc) != (self.base_url.scheme, self.base_url.netloc):
            raise RegistryError(
                f"{self.host}: refusing to follow a URL to another origin ({url.host})"
            )
        return url

    async def request(
        self,
        method: str,
        path: str | httpx.URL,
        *,
        scope: str,
        what: str,
        limit: int,
        headers: Mapping[str, str] | None = None,
        params: Mapping[str, str] | None = None,
        content: bytes | None = None,
    ) -> Reply:
        """Send with auth (one retry after a challenge) and retries; body read up to ``limit``.

        Raises TooLarge past ``limit`` for successful answers; error bodies are cut short
        instead, since only their error code matters.
        """
        url = path if isinstance(path, httpx.URL) else self.url(path)
        if params:
            url = url.copy_merge_params(dict(params))
        sent = await self.auth.header(self.http, scope, what)
        reply = await self._send_retrying(method, url, headers, content, sent, limit, what)
        if reply.status == 401:
            sent = await self.auth.on_unauthorized(self.http, reply.headers, scope, what, sent)
            reply = await self._send_retrying(method, url, headers, content, sent, limit, what)
        return reply

    async def _send_retrying(
        self,
        method: str,
        url: httpx.URL,
        headers: Mapping[str, str] | None,
        content: bytes | None,
        authorization: str | None,
        limit: int,
        what: str,
    ) -> Reply:
        async def attempt() -> Reply:
            async with self._semaphore:
                return await self._send_following(
                    method, url, headers, content, authorization, limit, what
                )

        reply = await self.retry.run(
            attempt, lambda r: (r.status, r.headers.get("retry-after")), what
        )
        if reply.status == 429:
            raise_for_status(reply, what)
        if reply.status >= 500:
            raise RegistryError(
                f"{what}: HTTP {reply.status} after {self.retry.max_attempts} attempt(s)"
            )
        return reply

    async def _send_following(
        self,
        method: str,
        url: httpx.URL,
        headers: Mapping[str, str] | None,
        content: bytes | None,
        authorization: str | None,
        limit: int,
        what: str,
    ) -> Reply:
        for _ in range(_MAX_REDIRECTS + 1):
            merged = dict(headers or {})
            same_origin = (url.scheme, url.netloc) == (self.base_url.scheme, self.base_url.netloc)
            if authorization is not None and same_origin:
                merged["Authorization"] = authorization
            request = self.http.build_request(method, url, headers=merged, content=content)
            response = await self.http.send(request, stream=True, follow_redirects=False)
            try:
                location = response.headers.get("location")
                if response.status_code in _REDIRECTS and location and method in ("GET", "HEAD"):
                    url = url.join(location)
                    if url.scheme not in ("http", "https"):
                        raise RegistryError(f"{what}: redirect to unsupported URL scheme")
                    continue
                # HEAD announces the resource's length but carries no body.
                body = b"" if method == "HEAD" else await _read_limited(response, limit, what)
                return Reply(response.status_code, response.headers, body, url)
            finally:
                await response.aclose()
        raise RegistryError(f"{what}: more than {_MAX_REDIRECTS} redirects")


async def _read_limited(response: httpx.Response, limit: int, what: str) -> bytes:
    ok = 200 <= response.status_code < 300
    cap = limit if ok else ERROR_BODY_LIMIT
    declared = response.headers.get("content-length")
    if ok and declared is not None and declared.isdigit() and int(declared) > cap:
        raise TooLarge(f"{what}: {declared} bytes exceeds the {cap}-byte limit")
    chunks: list[bytes] = []
    total = 0
    async for chunk in response.aiter_bytes():
        total += len(chunk)
        if total > cap:
            if ok:
                raise TooLarge(f"{what}: body exceeds the {cap}-byte limit")
            chunks.append(chunk[: cap - (total - len(chunk))])
            break
        chunks.append(chunk)
    return b"".join(chunks)
