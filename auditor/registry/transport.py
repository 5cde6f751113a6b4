"""One registry's HTTP edge: URLs, auth, retries, concurrency, size limits, error mapping.

Every request reads its whole body (bounded in bytes and in time by
:func:`auditor.registry.exchange.exchange`) inside the retry loop, so a connection cut
mid-body is retried like any other transport error. Redirects are followed by hand, under the
credentials rule of the README's security section: the Authorization header only ever goes to
the registry's own origin (scheme, host and port), a 401 from any other origin (a redirect
target) is never answered, and https is never followed to plain http.

TLS failures are not retried (they fail the same way every time) and become a TlsError that
names the fix. A loopback registry may speak the other scheme than the one configured or
defaulted (plain http for loopback): when its answer says so (Go's and nginx's "HTTP request
to an HTTPS server" 400, a TLS record where an HTTP answer was due, or the reverse), the other
scheme is tried once and kept for the rest of the run if it answers, as Docker and containerd
do for localhost. Never beyond loopback: there a scheme change is a downgrade to refuse.
"""

from __future__ import annotations

import asyncio
import json
import ssl
from collections.abc import Mapping, Sequence
from dataclasses import replace

import httpx

from auditor.config import DEFAULT_LIMITS
from auditor.errors import (
    AuthError,
    ErrorCategory,
    NotFound,
    RateLimited,
    RegistryError,
    TlsError,
)
from auditor.oci.reference import is_loopback
from auditor.registry.auth import AuthProvider
from auditor.registry.exchange import (
    ERROR_BODY_LIMIT,
    DeadlineExceeded,
    Reply,
    exchange,
    join_url,
    origin,
)
from auditor.registry.retry import RegistryHealth, RetryPolicy
from auditor.registry.tls import PLAIN_PEER_REASONS, ssl_cause, tls_error

_MAX_REDIRECTS = 5
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
# What a TLS server answers to a plain http request: Go's net/http (distribution, zot,
# Harbor's core) and nginx.
_PLAIN_TO_TLS_ANSWERS = (
    b"Client sent an HTTP request to an HTTPS server",
    b"The plain HTTP request was sent to HTTPS port",
)
def _answers_like_tls_server(reply: Reply) -> bool:
    """A plain http request answered as a TLS server answers it."""
    return reply.status == 400 and any(text in reply.body for text in _PLAIN_TO_TLS_ANSWERS)


def scheme_for(host: str, insecure: bool) -> str:
    """Plain http for loopback hosts or registries marked insecure; https otherwise."""
    return "http" if insecure or is_loopback(host) else "https"


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


def without_credentials(reply: Reply, *sent: str | None) -> Reply:
    """An error answer with every Authorization value we sent cut out of its body.

    Error messages from the body go into reports (raise_for_status), which get published; a
    proxy or a hostile registry quoting the header it got would otherwise put our basic
    credentials or token there. The value is replaced as sent and as JSON may escape it.
    """
    if reply.status < 400:
        return reply
    body = reply.body
    for header in sent:
        credential = (header or "").partition(" ")[2].strip() or (header or "")
        if len(credential) < 4:
            continue
        for form in {credential, credential.replace("/", "\\/")}:
            body = body.replace(form.encode(), b"***")
    return reply if body == reply.body else replace(reply, body=body)


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
        request_deadline: float = DEFAULT_LIMITS.request_deadline_seconds,
        health: RegistryHealth | None = None,
    ) -> None:
        self.host = host
        self.http = http
        self.auth = auth
        self.retry = retry or RetryPolicy()
        self.request_deadline = request_deadline
        self.health = health or RegistryHealth(host)
        # A configured URL's scheme wins; otherwise loopback and insecure mean plain http.
        self.base_url = httpx.URL(f"{scheme or scheme_for(host, insecure)}://{host}")
        self._semaphore = asyncio.Semaphore(max_concurrency)
        # Only a loopback registry may turn out to speak the other scheme (see the module
        # docstring); once tried, the answer stands for the transport's life.
        self._loopback = is_loopback(host)
        self._scheme_settled = not self._loopback
        self._scheme_lock = asyncio.Lock()

    def url(self, path: str) -> httpx.URL:
        """Resolve a path or a (Link/Location) URL against the registry, same origin only."""
        url = join_url(self.base_url, path, self.host)
        if not self.same_origin(url):
            raise RegistryError(
                f"{self.host}: refusing to follow a URL to another origin ({url.host})"
            )
        return url

    def same_origin(self, url: httpx.URL) -> bool:
        return origin(url) == origin(self.base_url)

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
        instead, since only their error code matters. Raises RegistryDown at once when this
        registry has been marked down in this run.
        """
        self.health.check(what)
        url = path if isinstance(path, httpx.URL) else self.url(path)
        if params:
            url = url.copy_merge_params(dict(params))
        sent = await self.auth.header(self._token_exchange, scope, what)
        reply = await self._send_retrying(method, url, headers, content, sent, limit, what)
        if reply.status == 401:
            self._refuse_foreign_challenge(reply, what)
            first = sent
            sent = await self.auth.on_unauthorized(
                self._token_exchange, reply.headers, scope, what, sent, self.base_url
            )
            reply = await self._send_retrying(method, url, headers, content, sent, limit, what)
            if reply.status == 401:
                self._refuse_foreign_challenge(reply, what)
            return without_credentials(reply, first, sent)
        return without_credentials(reply, sent)

    def _refuse_foreign_challenge(self, reply: Reply, what: str) -> None:
        """A 401 from a redirect target: its challenge is never answered (neither our
        credentials nor the token realm it names are its to have)."""
        if not self.same_origin(reply.url):
            raise AuthError(
                f"{what}: {reply.url.host}, reached by a redirect, asks for "
                f"authentication; credentials are only sent to {self.base_url.host}"
            )

    async def _token_exchange(
        self,
        method: str,
        url: httpx.URL,
        headers: Mapping[str, str],
        content: bytes | None,
        limit: int,
        what: str,
    ) -> Reply:
        """One bounded exchange with a token service (used by the auth provider)."""
        return await exchange(
            self.http,
            method,
            url,
            what=what,
            limit=limit,
            deadline=self.request_deadline,
            headers=headers,
            content=content,
        )

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
        attempts = 0

        async def attempt() -> Reply:
            nonlocal attempts, url
            attempts += 1
            async with self._semaphore:
                self.health.check(what)
                try:
                    reply = await self._send_tls_checked(
                        method, url, headers, content, authorization, limit, what
                    )
                except httpx.TransportError as exc:
                    if not await self._other_scheme_answers(url, error=exc):
                        cause = ssl_cause(exc)
                        if cause is not None:
                            raise tls_error(cause, url.host, what) from None
                        raise
                else:
                    if not await self._other_scheme_answers(url, reply=reply):
                        return reply
                url = self._rebased(url)
                return await self._send_tls_checked(
                    method, url, headers, content, authorization, limit, what
                )

        try:
            reply = await self.retry.run(
                attempt, lambda r: (r.status, r.headers.get("retry-after")), what
            )
        except DeadlineExceeded as exc:
            self.health.failed(str(exc), exc.category)
            raise
        except RegistryError as exc:
            if type(exc) in (RegistryError, TlsError):  # transport errors after retries
                self.health.failed(str(exc), exc.category)
            raise
        if reply.status == 429:
            self.health.failed(f"HTTP 429 after retries ({what})", ErrorCategory.RATE_LIMITED)
            raise_for_status(reply, what)
        if reply.status >= 500:
            message = f"{what}: HTTP {reply.status} after {attempts} attempt(s)"
            self.health.failed(message)
            raise RegistryError(message)
        self.health.succeeded()
        return reply

    async def _send_tls_checked(
        self,
        method: str,
        url: httpx.URL,
        headers: Mapping[str, str] | None,
        content: bytes | None,
        authorization: str | None,
        limit: int,
        what: str,
    ) -> Reply:
        """One send (redirects followed); a TLS failure becomes a TlsError, which the retry
        loop does not retry, unless it may mean a loopback registry speaks plain http (the
        caller decides that first)."""
        try:
            return await self._send_following(
                method, url, headers, content, authorization, limit, what
            )
        except httpx.TransportError as exc:
            cause = ssl_cause(exc)
            if cause is None or self._may_switch(url, exc) or self._switched(url):
                raise
            raise tls_error(cause, url.host, what) from None

    def _switched(self, url: httpx.URL) -> bool:
        """True when another request moved the registry to the other scheme after ``url``
        was built: the caller resends on the new one."""
        rebased = self._rebased(url)
        return rebased.scheme != url.scheme and self.same_origin(rebased)

    def _may_switch(self, url: httpx.URL, exc: httpx.TransportError | None) -> bool:
        """Whether this failure may mean the registry speaks the other scheme (loopback only,
        for requests to its own origin; whether it was already tried is decided under the
        lock)."""
        if not self._loopback or not self.same_origin(url):
            return False
        # Plain http to a TLS server is recognised by its answer (a 400, checked on the reply),
        # never by a cut connection: that is retried as the transport error it is.
        cause = ssl_cause(exc) if exc is not None and url.scheme == "https" else None
        return cause is not None and (cause.reason or "") in PLAIN_PEER_REASONS

    def _rebased(self, url: httpx.URL) -> httpx.URL:
        """``url`` on the registry's (possibly switched) scheme."""
        if (url.host, url.port) == (self.base_url.host, self.base_url.port):
            return url.copy_with(scheme=self.base_url.scheme)
        return url

    async def _other_scheme_answers(
        self,
        url: httpx.URL,
        *,
        error: httpx.TransportError | None = None,
        reply: Reply | None = None,
    ) -> bool:
        """True when the loopback registry speaks the other scheme, now ``base_url``'s.

        Asked only when the answer (``reply``) or failure (``error``) says the scheme is
        wrong; the other scheme is probed once with ``GET /v2/``: any HTTP answer, or for
        https a handshake that fails on the server's certificate (it does speak TLS; the
        resend then says how to trust it), settles it.
        """
        if self._switched(url):
            return True  # another request switched the scheme meanwhile
        if reply is not None:
            if not self._loopback or url.scheme != "http" or not self.same_origin(url):
                return False
            if not _answers_like_tls_server(reply):
                return False
        elif not self._may_switch(url, error):
            return False
        # Requests that meet the wrong scheme together wait here for the one probe.
        async with self._scheme_lock:
            if self._switched(url):
                return True
            if self._scheme_settled:
                return False
            self._scheme_settled = True
            other = "https" if url.scheme == "http" else "http"
            probe_url = self.base_url.copy_with(scheme=other, path="/v2/")
            try:
                await exchange(
                    self.http,
                    "GET",
                    probe_url,
                    what=f"{self.host}: probing {other}",
                    limit=ERROR_BODY_LIMIT,
                    deadline=self.request_deadline,
                )
            except httpx.TransportError as exc:
                # The handshake got as far as the server's certificate: it speaks TLS.
                if other != "https" or not isinstance(
                    ssl_cause(exc), ssl.SSLCertVerificationError
                ):
                    return False
            except RegistryError:
                return False
            self.base_url = self.base_url.copy_with(scheme=other)
            return True

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
            if authorization is not None and self.same_origin(url):
                merged["Authorization"] = authorization
            reply = await exchange(
                self.http,
                method,
                url,
                what=what,
                limit=limit,
                deadline=self.request_deadline,
                headers=merged,
                content=content,
            )
            location = reply.headers.get("location")
            if reply.status in _REDIRECTS and location and method in ("GET", "HEAD"):
                target = join_url(url, location, what)
                if url.scheme == "https" and target.scheme == "http":
                    raise RegistryError(
                        f"{what}: refusing a redirect from https to plain http ({target.host})"
                    )
                url = target
                continue
            return reply
        raise RegistryError(f"{what}: more than {_MAX_REDIRECTS} redirects")
