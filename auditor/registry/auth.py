"""Registry authentication: basic, anonymous bearer, bearer with credentials, token cache.

The provider learns how a registry wants to be spoken to from its first 401 challenge, then
answers with the right ``Authorization`` header for each scope up front, so later requests do
not pay a 401 round trip. Tokens are cached per (realm, service, scope) until shortly before
``expires_in`` runs out. Nothing here logs or formats a credential or a token.
"""

from __future__ import annotations

import asyncio
import base64
import time
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx

from auditor.errors import AuthError, RegistryError
from auditor.registry.challenge import Challenge, parse_all
from auditor.registry.secret import Secret

DEFAULT_TOKEN_LIFETIME = 60.0  # the distribution token spec's default for a missing expires_in
_EXPIRY_MARGIN = 10.0
_MAX_TOKEN_RESPONSE = 1024 * 1024
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

    async def header(self, http: httpx.AsyncClient, scope: str, what: str) -> str | None:
        """The header to send before any challenge is seen for this request, or None."""
        challenge = self._challenge
        if challenge is None:
            return None
        return await self._answer(http, challenge, scope, what)

    async def on_unauthorized(
        self,
        http: httpx.AsyncClient,
        headers: httpx.Headers,
        scope: str,
        what: str,
        sent: str | None,
    ) -> str:
        """Answer a 401: learn its challenge and return a new header, or raise AuthError.

        ``sent`` is the Authorization header that was refused; a cached token equal to it
        is not offered again.
        """
        challenges = parse_all(headers.get_list("www-authenticate"))
        bearer = next((c for c in challenges if c.scheme == "bearer" and c.get("realm")), None)
        basic = next((c for c in challenges if c.scheme == "basic"), None)
        challenge = bearer or basic
        if challenge is None:
            raise AuthError(f"{what}: unauthorized and the registry sent no usable challenge")
        self._challenge = challenge
        header = await self._answer(http, challenge, scope, what, refused=sent or "")
        if header is None or header == sent:
            raise AuthError(f"{what}: the registry refused our credentials")
        return header

    async def _answer(
        self,
        http: httpx.AsyncClient,
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
        http: httpx.AsyncClient,
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
        self, http: httpx.AsyncClient, challenge: Challenge, scope: str, what: str
    ) -> tuple[Secret, float]:
        realm = challenge.get("realm") or ""
        parts = urlsplit(realm)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise AuthError(f"{what}: token realm {realm!r} is not an http(s) URL")
        service = challenge.get("service")
        scopes = [s for s in scope.split(" ") if s]
        creds = self._credentials
        try:
            if creds is not None and creds.identity_token is not None:
                form = {
                    "grant_type": "refresh_token",
                    "refresh_token": creds.identity_token.reveal(),
                    "client_id": CLIENT_ID,
                    "scope": " ".join(scopes),
                }
                if service:
                    form["service"] = service
                response = await http.post(realm, data=form)
            else:
                params: list[tuple[str, str | int | float | bool | None]] = (
                    [("service", service)] if service else []
                )
                params += [("scope", s) for s in scopes]
                headers = {}
                if creds is not None and creds.username is not None and creds.password is not None:
                    headers["Authorization"] = basic_header(creds.username, creds.password)
                response = await http.get(realm, params=params, headers=headers)
        except httpx.TransportError as exc:
            raise RegistryError(
                f"{what}: token service {parts.netloc} unreachable ({type(exc).__name__})"
            ) from None
        if response.status_code in (401, 403):
            who = "anonymous access" if creds is None else "the credentials"
            raise AuthError(
                f"{what}: token service {parts.netloc} refused {who} (HTTP {response.status_code})"
            )
        if response.status_code != 200:
            raise AuthError(
                f"{what}: token service {parts.netloc} answered HTTP {response.status_code}"
            )
        return _parse_token_response(response, parts.netloc, what)


def _parse_token_response(
    response: httpx.Response, realm_host: str, what: str
) -> tuple[Secret, float]:
    if len(response.content) > _MAX_TOKEN_RESPONSE:
        raise AuthError(f"{what}: token service {realm_host} sent an oversized answer")
    try:
        body = response.json()
    except ValueError:
        raise AuthError(f"{what}: token service {realm_host} did not answer JSON") from None
    if not isinstance(body, dict):
        raise AuthError(f"{what}: token service {realm_host} did not answer a JSON object")
    token = body.get("token") or body.get("access_token")
    if not isinstance(token, str) or not token:
        raise AuthError(f"{what}: token service {realm_host} answered without a token")
    lifetime = body.get("expires_in")
    if not isinstance(lifetime, int | float) or isinstance(lifetime, bool) or lifetime <= 0:
        lifetime = DEFAULT_TOKEN_LIFETIME
    return Secret(token), float(lifetime)
