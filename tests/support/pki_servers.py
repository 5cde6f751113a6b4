"""Real revocation servers on 127.0.0.1 for tests: a CRL file server and an OCSP responder.

The notation e2e PKI (../shared/fixtures/notation-e2e/config/{crl,ocsp}) names fixed URLs
(http://localhost:10086/leaf.crl, http://localhost:10087); tests bind these servers to
ephemeral ports and hand the checker a URL rewrite instead, so parallel runs never collide.

The OCSP responder is a genuine one: it parses the DER request with ``cryptography`` and signs
a fresh response with the configured responder key (the fixture's delegated ``ocsp.crt`` or
the issuing root itself), answering per certificate serial.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Literal

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.types import CertificateIssuerPrivateKeyTypes
from cryptography.x509 import ocsp

from tests.support.paths import FIXTURES

FIXTURES = FIXTURES / "notation-e2e" / "config"
CRL_DIR = FIXTURES / "crl"
OCSP_DIR = FIXTURES / "ocsp"

OcspAnswer = Literal["good", "revoked", "unknown"]


@dataclass
class CrlServer:
    """Serves ``files[path]`` for GET ``path``; 404 otherwise. ``hits`` counts requests."""

    files: dict[str, bytes] = field(default_factory=dict)
    hits: list[str] = field(default_factory=list)
    port: int = 0

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@dataclass
class OcspResponder:
    """Answers OCSP POSTs; ``answers`` maps serial -> status (missing serials: unknown)."""

    issuer: x509.Certificate
    responder_cert: x509.Certificate
    responder_key: CertificateIssuerPrivateKeyTypes
    answers: dict[int, OcspAnswer] = field(default_factory=dict)
    revoked_at: datetime = field(default_factory=lambda: datetime(2025, 3, 1, tzinfo=UTC))
    next_update: timedelta | None = timedelta(hours=1)
    this_update_offset: timedelta = timedelta(0)
    mode: Literal["ok", "http500", "garbage", "try_later"] = "ok"
    hits: list[bytes] = field(default_factory=list)
    port: int = 0

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def respond(self, body: bytes) -> tuple[int, bytes]:
        self.hits.append(body)
        if self.mode == "http500":
            return 500, b"responder down"
        if self.mode == "garbage":
            return 200, b"this is not an OCSP response"
        if self.mode == "try_later":
            unsuccessful = ocsp.OCSPResponseBuilder.build_unsuccessful(
                ocsp.OCSPResponseStatus.TRY_LATER
            )
            return 200, unsuccessful.public_bytes(serialization.Encoding.DER)
        request = ocsp.load_der_ocsp_request(body)
        now = datetime.now(UTC).replace(microsecond=0) + self.this_update_offset
        answer = self.answers.get(request.serial_number, "unknown")
        status = {
            "good": ocsp.OCSPCertStatus.GOOD,
            "revoked": ocsp.OCSPCertStatus.REVOKED,
            "unknown": ocsp.OCSPCertStatus.UNKNOWN,
        }[answer]
        # The responder needs the subject certificate only for its serial and issuer hashes;
        # add_response_by_hash keeps the answer independent of which certificate was asked about.
        builder = ocsp.OCSPResponseBuilder().add_response_by_hash(
            issuer_name_hash=request.issuer_name_hash,
            issuer_key_hash=request.issuer_key_hash,
            serial_number=request.serial_number,
            algorithm=request.hash_algorithm,
            cert_status=status,
            this_update=now,
            next_update=now + self.next_update if self.next_update is not None else None,
            revocation_time=self.revoked_at if answer == "revoked" else None,
            revocation_reason=None,
        )
        builder = builder.responder_id(ocsp.OCSPResponderEncoding.NAME, self.responder_cert)
        if self.responder_cert != self.issuer:
            builder = builder.certificates([self.responder_cert])
        response = builder.sign(self.responder_key, hashes.SHA256())
        return 200, response.public_bytes(serialization.Encoding.DER)


def _handler(
    crl: CrlServer | None, responder: OcspResponder | None
) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            return

        def _send(self, status: int, body: bytes, content_type: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            if crl is None:
                self._send(404, b"", "text/plain")
                return
            crl.hits.append(self.path)
            body = crl.files.get(self.path)
            if body is None:
                self._send(404, b"not found", "text/plain")
            else:
                self._send(200, body, "application/pkix-crl")

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            body = self.rfile.read(length)
            if responder is None:
                self._send(404, b"", "text/plain")
                return
            try:
                status, answer = responder.respond(body)
            except ValueError:
                status, answer = 400, b"bad request"
            self._send(status, answer, "application/ocsp-response")

    return Handler


@contextmanager
def serve(
    crl: CrlServer | None = None, responder: OcspResponder | None = None
) -> Iterator[ThreadingHTTPServer]:
    """Run one HTTP server on 127.0.0.1 (ephemeral port) for the given roles."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(crl, responder))
    port = server.server_address[1]
    if crl is not None:
        crl.port = port
    if responder is not None:
        responder.port = port
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def load_cert(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def load_chain(path: Path) -> list[x509.Certificate]:
    return x509.load_pem_x509_certificates(path.read_bytes())


def load_key(path: Path) -> CertificateIssuerPrivateKeyTypes:
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    assert not isinstance(key, bytes)
    return key  # type: ignore[return-value]


def crl_bytes(name: str) -> bytes:
    return (CRL_DIR / name).read_bytes()
