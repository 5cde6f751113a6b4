"""Registry authentication: basic, anonymous bearer, bearer with credentials, token cache.

The provider learns how a registry wants to be spoken to from its first 401 challenge, then
answers with the right ``Authorization`` header for each scope up front, so later requests do
not pay a 401 round trip. Tokens are cached per (realm, service, scope) until shortly before
``expires_in`` runs out. Nothing here logs or formats a credential or a token.

Where credentials go (the README's security section states the rule): the registry's own
origin, and the token realm named by a challenge *that origin* sent (the transport never
passes us a challenge from a redirect target). A realm may be on another host (Docker Hub,
GHCR do that) but an https registry's realm must be https too. Token requests follow no
redirect to another origin, so neither a password nor a POSTed refresh token is ever re-sent
somewhere the registry did not name. Every token answer is read through the bounded exchange
(size and deadline) and its token must be printable ASCII, or it is an AuthError.
"""

from __future__ import annotations

import asyncio
import base64
import json
import math
import re
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from urllib.parse import urlencode

import httpx

from auditor.errors import AuthError, RegistryError
from auditor.registry.challenge import Challenge, parse_all
from auditor.registry.exchange import Reply, join_url, origin
from auditor.registry.secret import Secret
from auditor.registry.tls import ssl_cause, tls_error

TokenExchange = Callable[
    [str, httpx.URL, Mapping[str, str], bytes | None, int, str], Awaitable[Reply]
]
"""One bounded request to a token service: (method, url, headers, body, limit, what)."""

DEFAULT_TOKEN_LIFETIME = 60.0  # the distribution token spec's default for a missing expires_in
_EXPIRY_MARGIN = 10.0
MAX_TOKEN_RESPONSE = 256 * 1024
MAX_TOKEN_LIFETIME = 24 * 3600.0
_MAX_TOKEN_REDIRECTS = 3
_TOKEN_CHARS = re.compile(r"[\x21-\x7e]{1,65536}")  # printable ASCII: it goes in a header
CLIENT_ID = "registry-auditor"


@dataclass(frozen=True)
class Credentials:
    """What we may present: username/password, or docker's identity (refresh) token."""

    username: str | None = None
    password: Secret | None = None
    identity_token: Secret | None = None

    def __repr__(self) -> str:
        return f"Credentials(username={self.username!r}, secret=***)"


def basic_header(username: str, password: Secret) -> str:
    raw = f"{username}:{password.reveal()}".encode()
    return "Basic " + base64.b64encode(raw).decode("ascii")


@dataclass(frozen=True)
class _CachedToken:
    token: Secret
    expires_at: float


class AuthProvider:
    """Authorization for one registry; anonymous when ``credentials`` is None."""

    def __init__(
        self,
        credentials: Credentials | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._credentials = credentials
        self._clock = clock
        self._challenge: Challenge | None = None
        self._tokens: dict[tuple[str, str, str], _CachedToken] = {}
        self._locks: dict[tuple[str, str, str], asyncio.Lock] = {}

    def __repr__(self) -> str:
        kind = "anonymous" if self._credentials is None else "credentials"
        return f"AuthProvider({kind})"

    @classmethod
    def anonymous(cls) -> AuthProvider:
        return cls(None)

    @classmethod
    def basic(cls, username: str, password: str | Secret) -> AuthProvider:
        secret = password if isinstance(password, Secret) else Secret(password)
        return cls(Credentials(username=username, password=secret))

    async def header(self, http: TokenExchange, scope: str, what: str) -> str | None:
        """The header to send before any challenge is seen for this request, or None."""
        challenge = self._challenge
        if challenge is None:
            return None
        return await self._answer(http, challenge, scope, what)

    async def on_unauthorized(
        self,
        http: TokenExchange,
        headers: httpx.Headers,
        scope: str,
        what: str,
        sent: str | None,
        registry: httpx.URL,
    ) -> str:
        """Answer a 401 from ``registry``'s own origin: learn its challenge and return a new
        header, or raise AuthError.

        ``sent`` is the Authorization header that was refused; a cached token equal to it
        is not offered again. A bearer realm that does not parse, is not http(s), or is plain
        http while the registry is https is refused here, before anything is sent to it.
        """
        challenges = parse_all(headers.get_list("www-authenticate"))
        bearer = next((c for c in challenges if c.scheme == "bearer" and c.get("realm")), None)
        basic = next((c for c in challenges if c.scheme == "basic"), None)
        challenge = bearer or basic
        if challenge is None:
            raise AuthError(f"{what}: unauthorized and the registry sent no usable challenge")
        if challenge.scheme == "bearer":
            realm_url(challenge, registry, what)
        self._challenge = challenge
        header = await self._answer(http, challenge, scope, what, refused=sent or "")
        if header is None or header == sent:
            raise AuthError(f"{what}: the registry refused our credentials")
        return header

    async def _answer(
        self,
        http: TokenExchange,
        challenge: Challenge,
        scope: str,
        what: str,
        refused: str | None = None,
    ) -> str | None:
        if challenge.scheme == "basic":
            creds = self._credentials
            if creds is None or creds.username is None or creds.password is None:
                if refused is not None:
                    raise AuthError(f"{what}: registry requires basic auth; no credentials given")
                return None
            return basic_header(creds.username, creds.password)
        # A challenge's own scope is what the registry wants for this very request.
        wanted = (challenge.get("scope") if refused is not None else None) or scope
        token = await self._token(http, challenge, wanted, what, refused)
        if wanted != scope:
            # Remember it under the scope we will ask with next time, too.
            self._tokens[self._key(challenge, scope)] = self._tokens[self._key(challenge, wanted)]
        return "Bearer " + token.reveal()

    @staticmethod
    def _key(challenge: Challenge, scope: str) -> tuple[str, str, str]:
        return (challenge.get("realm") or "", challenge.get("service") or "", scope)

    async def _token(
        self,
        http: TokenExchange,
        challenge: Challenge,
        scope: str,
        what: str,
        refused: str | None,
    ) -> Secret:
        key = self._key(challenge, scope)
        lock = self._locks.setdefault(key, asyncio.Lock())
        async with lock:
            cached = self._tokens.get(key)
            if (
                cached is not None
                and cached.expires_at > self._clock()
                and "Bearer " + cached.token.reveal() != refused
            ):
                return cached.token
            token, lifetime = await self._fetch_token(http, challenge, scope, what)
            expires_at = self._clock() + max(lifetime - _EXPIRY_MARGIN, lifetime / 2)
            self._tokens[key] = _CachedToken(token, expires_at)
            return token

    async def _fetch_token(
        self, http: TokenExchange, challenge: Challenge, scope: str, what: str
    ) -> tuple[Secret, float]:
        # Checked when the challenge was learnt; parsed again here without a registry.
        realm = realm_url(challenge, None, what)
        service = challenge.get("service")
        scopes = [s for s in scope.split(" ") if s]
        creds = self._credentials
        if creds is not None and creds.identity_token is not None:
            form = {
                "grant_type": "refresh_token",
                "refresh_token": creds.identity_token.reveal(),
                "client_id": CLIENT_ID,
                "scope": " ".join(scopes),
            }
            if service:
                form["service"] = service
            body = urlencode(form).encode("ascii")
            headers = {"Content-Type": "application/x-www-form-urlencoded"}
            reply = await _token_request(http, "POST", realm, headers, body, what)
        else:
            params: list[tuple[str, str | int | float | bool | None]] = (
                [("service", service)] if service else []
            )
            params += [("scope", s) for s in scopes]
            url = realm.copy_merge_params(params) if params else realm
            headers = {}
            if creds is not None and creds.username is not None and creds.password is not None:
                headers["Authorization"] = basic_header(creds.username, creds.password)
            reply = await _token_request(http, "GET", url, headers, None, what)
        host = realm.netloc.decode("ascii")
        if reply.status in (401, 403):
            who = "anonymous access" if creds is None else "the credentials"
            raise AuthError(f"{what}: token service {host} refused {who} (HTTP {reply.status})")
        if reply.status != 200:
            raise AuthError(f"{what}: token service {host} answered HTTP {reply.status}")
        return parse_token_response(reply.body, host, what)


def realm_url(challenge: Challenge, registry: httpx.URL | None, what: str) -> httpx.URL:
    """The challenge's realm as a URL we may send credentials to, or AuthError."""
    text = challenge.get("realm") or ""
    try:
        url = httpx.URL(text)
    except (httpx.InvalidURL, ValueError, TypeError):
        raise AuthError(
            f"{what}: the token realm in the registry's challenge does not parse"
        ) from None
    if url.scheme not in ("http", "https") or not url.host:
        raise AuthError(f"{what}: the token realm {url.host or text[:80]!r} is not an http(s) URL")
    if url.userinfo:
        raise AuthError(f"{what}: the token realm carries userinfo; refused")
    if registry is not None and registry.scheme == "https" and url.scheme == "http":
        raise AuthError(
            f"{what}: the https registry names a plain-http token realm ({url.host}); "
            "credentials are never sent over plain http for an https registry"
        )
    return url


async def _token_request(
    http: TokenExchange,
    method: str,
    url: httpx.URL,
    headers: Mapping[str, str],
    body: bytes | None,
    what: str,
) -> Reply:
    """A token request; redirects followed only within the realm's own origin (and never for
    a POST, whose body may hold a refresh token)."""
    for _ in range(_MAX_TOKEN_REDIRECTS + 1):
        try:
            reply = await http(method, url, headers, body, MAX_TOKEN_RESPONSE, f"{what} token")
        except httpx.TransportError as exc:
            if (cause := ssl_cause(exc)) is not None:
                raise tls_error(cause, f"token service {url.host}", what) from None
            raise RegistryError(
                f"{what}: token service {url.host} unreachable ({type(exc).__name__})"
            ) from None
        location = reply.headers.get("location")
        if reply.status not in (301, 302, 303, 307, 308) or not location:
            return reply
        target = join_url(url, location, f"{what} token")
        if method != "GET" or origin(target) != origin(url):
            raise AuthError(
                f"{what}: token service {url.host} redirected to {target.host}; not followed "
                "(credentials are only sent to the realm the registry named)"
            )
        url = target
    raise AuthError(f"{what}: token service {url.host} redirected too many times")


def parse_token_response(body: bytes, realm_host: str, what: str) -> tuple[Secret, float]:
    """(token, lifetime in seconds) from a token service's JSON answer, or AuthError.

    Never raises anything else: any bytes give a token or an AuthError.
    """
    if len(body) > MAX_TOKEN_RESPONSE:
        raise AuthError(f"{what}: token service {realm_host} sent an oversized answer")
    try:
        doc = json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise AuthError(f"{what}: token service {realm_host} did not answer JSON") from None
    if not isinstance(doc, dict):
        raise AuthError(f"{what}: token service {realm_host} did not answer a JSON object")
    token = doc.get("token") or doc.get("access_token")
    if not isinstance(token, str) or not token:
        raise AuthError(f"{what}: token service {realm_host} answered without a token")
    if not _TOKEN_CHARS.fullmatch(token):
        raise AuthError(
            f"{what}: token service {realm_host} answered a token that is not printable ASCII"
        )
    return Secret(token), _lifetime(doc.get("expires_in"))


def _lifetime(value: object) -> float:
    """``expires_in`` as seconds in (0, MAX_TOKEN_LIFETIME]; the spec's default otherwise."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return DEFAULT_TOKEN_LIFETIME
    if isinstance(value, int):  # may be far too large for a float
        return float(min(value, int(MAX_TOKEN_LIFETIME))) if value > 0 else DEFAULT_TOKEN_LIFETIME
    if not math.isfinite(value) or value <= 0:
        return DEFAULT_TOKEN_LIFETIME
    return min(value, MAX_TOKEN_LIFETIME)
