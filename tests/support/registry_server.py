"""Run Debian's real ``docker-registry`` (distribution 2.8) on 127.0.0.1 for tests.

Three flavours, all with filesystem storage in a temporary folder and deletes enabled:
anonymous, htpasswd basic auth (distribution 2.8 accepts htpasswd over plain http; it only
warns), and token auth against :class:`TokenServer`, a tiny real token issuer on 127.0.0.1
whose signing certificate is the registry's ``rootcertbundle``.
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import json
import ssl
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import bcrypt
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID

from devkit.devregistry import binary_path, local_registry

registry_binary = binary_path


@dataclass
class RunningRegistry:
    """A started registry: ``url`` is ``http://127.0.0.1:PORT``, ``host`` is ``127.0.0.1:PORT``."""

    url: str
    host: str
    root: Path
    username: str | None = None
    password: str | None = None
    token_server: TokenServer | None = None


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


@dataclass
class TokenServer:
    """A minimal Docker token service (the registry's ``auth: token`` realm).

    Anonymous requests get ``anonymous_actions`` on what they ask for; requests with the right
    basic credentials (or a POSTed ``refresh_token`` grant) get every action they ask for;
    wrong credentials get 401. Tokens are
    RS256 JWTs carrying the signing certificate in ``x5c``, which distribution checks against
    its ``rootcertbundle``. ``field_name`` chooses ``token`` or ``access_token`` in the answer.
    """

    workdir: Path
    username: str | None = None
    password: str | None = None
    anonymous_actions: tuple[str, ...] = ("pull",)
    field_name: str = "token"
    refresh_token: str | None = None
    expires_in: int = 300
    service: str = "test-registry"
    issuer: str = "test-token-issuer"
    requests: list[dict[str, Any]] = field(default_factory=list)
    # (certificate, key) PEM files: the realm is served over https with them.
    tls: tuple[Path, Path] | None = None
    _server: ThreadingHTTPServer | None = None
    _thread: threading.Thread | None = None

    def __post_init__(self) -> None:
        self._key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test token issuer")])
        now = dt.datetime.now(dt.UTC)
        self._cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(self._key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(hours=1))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(self._key, hashes.SHA256())
        )
        self.cert_path = self.workdir / "token-root.pem"
        self.cert_path.write_bytes(self._cert.public_bytes(serialization.Encoding.PEM))

    @property
    def realm(self) -> str:
        assert self._server is not None
        scheme = "https" if self.tls else "http"
        return f"{scheme}://127.0.0.1:{self._server.server_address[1]}/token"

    def issue(self, scopes: list[str], authenticated: bool) -> str:
        access = []
        for scope in scopes:
            kind, _, rest = scope.partition(":")
            name, _, actions = rest.rpartition(":")
            wanted = [a for a in actions.split(",") if a]
            granted = (
                wanted if authenticated else [a for a in wanted if a in self.anonymous_actions]
            )
            access.append({"type": kind, "name": name, "actions": granted})
        now = int(time.time())
        header = {
            "typ": "JWT",
            "alg": "RS256",
            "x5c": [base64.b64encode(self._cert.public_bytes(serialization.Encoding.DER)).decode()],
        }
        claims = {
            "iss": self.issuer,
            "sub": self.username if authenticated else "",
            "aud": self.service,
            "exp": now + self.expires_in,
            "nbf": now - 60,
            "iat": now,
            "jti": uuid.uuid4().hex,
            "access": access,
        }
        signing_input = (
            _b64url(json.dumps(header).encode()) + "." + _b64url(json.dumps(claims).encode())
        )
        signature = self._key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
        return signing_input + "." + _b64url(signature)

    def _check_credentials(self, header: str | None) -> bool | None:
        """True: valid credentials; False: none given; None: wrong credentials."""
        if header is None:
            return False
        scheme, _, value = header.partition(" ")
        if scheme.lower() != "basic":
            return None
        try:
            user, _, password = base64.b64decode(value).decode().partition(":")
        except ValueError:
            return None
        if self.username is not None and (user, password) == (self.username, self.password):
            return True
        return None

    def start(self) -> None:
        server_self = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                url = urlparse(self.path)
                query = parse_qs(url.query)
                authenticated = server_self._check_credentials(self.headers.get("Authorization"))
                server_self.requests.append(
                    {
                        "scope": query.get("scope", []),
                        "service": query.get("service", [""])[0],
                        "authenticated": authenticated,
                    }
                )
                if url.path != "/token":
                    self._reply(404, {"error": "not found"})
                    return
                if authenticated is None:
                    self._reply(401, {"error": "bad credentials"})
                    return
                token = server_self.issue(query.get("scope", []), authenticated)
                self._reply(
                    200, {server_self.field_name: token, "expires_in": server_self.expires_in}
                )

            def do_POST(self) -> None:
                """OAuth2 refresh-token grant, as docker uses for identity tokens."""
                length = int(self.headers.get("Content-Length") or 0)
                form = parse_qs(self.rfile.read(length).decode())
                scopes = " ".join(form.get("scope", [])).split()
                grant = form.get("grant_type", [""])[0]
                given = form.get("refresh_token", [""])[0]
                valid = server_self.refresh_token is not None and given == server_self.refresh_token
                server_self.requests.append(
                    {
                        "scope": scopes,
                        "service": form.get("service", [""])[0],
                        "authenticated": valid,
                        "grant_type": grant,
                    }
                )
                if urlparse(self.path).path != "/token" or grant != "refresh_token" or not valid:
                    self._reply(401, {"error": "invalid_grant"})
                    return
                token = server_self.issue(scopes, authenticated=True)
                self._reply(200, {"access_token": token, "expires_in": server_self.expires_in})

            def _reply(self, status: int, body: dict[str, Any]) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                return

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        if self.tls is not None:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(str(self.tls[0]), str(self.tls[1]))
            self._server.socket = context.wrap_socket(self._server.socket, server_side=True)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)


@contextlib.contextmanager
def registry_server(
    workdir: Path,
    *,
    basic_auth: tuple[str, str] | None = None,
    token_server: TokenServer | None = None,
    notifications: dict[str, Any] | None = None,
    tls: tuple[Path, Path] | None = None,
) -> Iterator[RunningRegistry]:
    """Start a registry in ``workdir`` (storage, config, log) and stop it on exit; with
    ``tls`` (certificate and key PEM files) it serves https only."""
    workdir.mkdir(parents=True, exist_ok=True)
    auth: dict[str, Any] | None = None
    credentials: tuple[str | None, str | None] = (None, None)
    if basic_auth is not None:
        user, password = basic_auth
        hashed = bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=4)).decode()
        (workdir / "htpasswd").write_text(f"{user}:{hashed}\n")
        auth = {"htpasswd": {"realm": "test-registry", "path": str(workdir / "htpasswd")}}
        credentials = basic_auth
    if token_server is not None:
        token_server.start()
        auth = {
            "token": {
                "realm": token_server.realm,
                "service": token_server.service,
                "issuer": token_server.issuer,
                "rootcertbundle": str(token_server.cert_path),
            }
        }
        credentials = (token_server.username, token_server.password)
    try:
        with local_registry(workdir, auth, notifications, tls=tls) as running:
            yield RunningRegistry(
                url=running.url,
                host=running.host,
                root=workdir,
                username=credentials[0],
                password=credentials[1],
                token_server=token_server,
            )
    finally:
        if token_server is not None:
            token_server.stop()


def registry_blob_path(registry: RunningRegistry, digest: str) -> Path:
    """Where distribution's filesystem driver keeps a blob (manifests are blobs too)."""
    hex_ = digest.split(":", 1)[1]
    return registry.root / "data/docker/registry/v2/blobs/sha256" / hex_[:2] / hex_ / "data"
