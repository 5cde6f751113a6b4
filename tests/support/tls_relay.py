"""TLS in front of the real registry: a relay on 127.0.0.1 that terminates TLS with a
certificate from a throw-away CA and passes the bytes to the plain-http docker-registry.

Debian's docker-registry can serve TLS itself, but the test registry is shared plain http;
a relay gives one test an https origin with its own CA (for ``--ca-file`` and ``ca_file``)
without a second registry.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import ipaddress
import selectors
import socket
import socketserver
import ssl
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


@dataclass(frozen=True)
class TlsRelay:
    host: str  # 127.0.0.1:PORT
    ca_file: Path  # the CA that signed the relay's certificate (PEM)


def _name(common: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])


def _certificates(workdir: Path) -> tuple[Path, Path, Path]:
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (
        x509.CertificateBuilder().subject_name(_name("relay test CA")).issuer_name(
            _name("relay test CA"))
        .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1)).not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    leaf = (
        x509.CertificateBuilder().subject_name(_name("127.0.0.1")).issuer_name(ca.subject)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1)).not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    ca_path, cert_path, key_path = workdir / "ca.pem", workdir / "relay.pem", workdir / "relay.key"
    ca_path.write_bytes(ca.public_bytes(pem))
    cert_path.write_bytes(leaf.public_bytes(pem))
    key_path.write_bytes(key.private_bytes(pem, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return ca_path, cert_path, key_path


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    context: ssl.SSLContext
    upstream: tuple[str, int]


class _Relay(socketserver.BaseRequestHandler):
    server: _Server

    def handle(self) -> None:
        try:
            tls = self.server.context.wrap_socket(self.request, server_side=True)
        except (ssl.SSLError, OSError):
            return  # a client that does not trust us: nothing to relay
        with tls, socket.create_connection(self.server.upstream, timeout=30) as upstream:
            selector = selectors.DefaultSelector()
            selector.register(tls, selectors.EVENT_READ, upstream)
            selector.register(upstream, selectors.EVENT_READ, tls)
            while True:
                for key, _ in selector.select(timeout=30):
                    source: socket.socket = key.fileobj  # type: ignore[assignment]
                    try:
                        data = source.recv(65536)
                    except (ssl.SSLError, OSError):
                        return
                    if not data:
                        return
                    key.data.sendall(data)


@contextlib.contextmanager
def tls_relay(workdir: Path, upstream_host: str) -> Iterator[TlsRelay]:
    """https://127.0.0.1:PORT relaying to the plain-http ``upstream_host`` (``host:port``)."""
    workdir.mkdir(parents=True, exist_ok=True)
    ca_path, cert_path, key_path = _certificates(workdir)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_path, key_path)
    host, port = upstream_host.rsplit(":", 1)
    server = _Server(("127.0.0.1", 0), _Relay)
    server.context = context
    server.upstream = (host, int(port))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield TlsRelay(f"127.0.0.1:{server.server_address[1]}", ca_path)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
