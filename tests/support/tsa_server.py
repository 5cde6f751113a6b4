"""A real RFC 3161 timestamp authority on 127.0.0.1 for the signing tests.

It parses the DER ``TimeStampReq`` with asn1crypto, builds a ``TSTInfo`` over the request's
message imprint (echoing its nonce), and signs it as CMS SignedData with signed attributes
(content type, message digest, ESS signing-certificate-v2) using a TSA certificate whose only
extended key usage is a critical timeStamping, issued by its own root, as the Notary
Project's timestamping certificate requirements ask. ``mode`` breaks it on purpose.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Literal

from asn1crypto import algos, cms, core, tsp
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

POLICY = "1.3.6.1.4.1.99999.1"


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _ku(*, ca: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=not ca, content_commitment=False, key_encipherment=False,
        data_encipherment=False, key_agreement=False, key_cert_sign=ca, crl_sign=ca,
        encipher_only=False, decipher_only=False,
    )


@dataclass
class Tsa:
    """TSA keys and certificates, the answers given, and how to misbehave."""

    mode: Literal["ok", "http500", "garbage", "wrong_imprint", "rejection"] = "ok"
    hits: int = 0
    port: int = 0
    last_gen_time: datetime | None = None
    root: x509.Certificate = field(init=False)
    cert: x509.Certificate = field(init=False)
    _key: rsa.RSAPrivateKey = field(init=False)

    def __post_init__(self) -> None:
        now = datetime.now(UTC) - timedelta(hours=1)
        root_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.root = (
            x509.CertificateBuilder()
            .subject_name(_name("test TSA root"))
            .issuer_name(_name("test TSA root"))
            .public_key(root_key.public_key())
            .serial_number(1)
            .not_valid_before(now)
            .not_valid_after(now + timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(_ku(ca=True), critical=True)
            .sign(root_key, hashes.SHA256())
        )
        self._key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.cert = (
            x509.CertificateBuilder()
            .subject_name(_name("test TSA"))
            .issuer_name(self.root.subject)
            .public_key(self._key.public_key())
            .serial_number(2)
            .not_valid_before(now)
            .not_valid_after(now + timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(_ku(ca=False), critical=True)
            .add_extension(
                x509.ExtendedKeyUsage([ExtendedKeyUsageOID.TIME_STAMPING]), critical=True
            )
            .sign(root_key, hashes.SHA256())
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/tsa"

    def root_pem(self) -> bytes:
        return self.root.public_bytes(serialization.Encoding.PEM)

    def answer(self, body: bytes) -> tuple[int, bytes]:
        self.hits += 1
        if self.mode == "http500":
            return 500, b"down"
        if self.mode == "garbage":
            return 200, b"not a timestamp response"
        request = tsp.TimeStampReq.load(body)
        if self.mode == "rejection":
            # TimeStampResp { PKIStatusInfo { status rejection(2) } }, no token; written out
            # because asn1crypto insists on a token.
            return 200, bytes.fromhex("3005" "3003" "020102")
        imprint = request["message_imprint"]
        if self.mode == "wrong_imprint":
            imprint = tsp.MessageImprint({
                "hash_algorithm": imprint["hash_algorithm"],
                "hashed_message": hashlib.sha256(b"something else").digest(),
            })
        now = datetime.now(UTC)
        # Millisecond precision and accuracy, like production TSAs: signing times are whole
        # seconds, so a one-second accuracy would reach back before them.
        self.last_gen_time = now.replace(microsecond=now.microsecond // 1000 * 1000)
        info = tsp.TSTInfo({
            "version": "v1",
            "policy": POLICY,
            "message_imprint": imprint,
            "serial_number": self.hits,
            "gen_time": self.last_gen_time,
            "accuracy": {"millis": 1},
            "nonce": request["nonce"].native,
        })
        return 200, self._response(info.dump())

    def _response(self, tst_info: bytes) -> bytes:
        cert_der = self.cert.public_bytes(serialization.Encoding.DER)
        cert = asn1_x509.Certificate.load(cert_der)
        signed_attrs = cms.CMSAttributes([
            cms.CMSAttribute({"type": "content_type", "values": ["tst_info"]}),
            cms.CMSAttribute({
                "type": "message_digest", "values": [hashlib.sha256(tst_info).digest()]
            }),
            cms.CMSAttribute({
                "type": "signing_certificate_v2",
                "values": [{"certs": [{"cert_hash": hashlib.sha256(cert_der).digest()}]}],
            }),
        ])
        signature = self._key.sign(signed_attrs.dump(), padding.PKCS1v15(), hashes.SHA256())
        signer = cms.SignerInfo({
            "version": "v1",
            "sid": cms.SignerIdentifier({
                "issuer_and_serial_number": cms.IssuerAndSerialNumber({
                    "issuer": cert.issuer, "serial_number": cert.serial_number,
                })
            }),
            "digest_algorithm": algos.DigestAlgorithm({"algorithm": "sha256"}),
            "signed_attrs": signed_attrs,
            "signature_algorithm": algos.SignedDigestAlgorithm({"algorithm": "sha256_rsa"}),
            "signature": signature,
        })
        signed_data = cms.SignedData({
            "version": "v3",
            "digest_algorithms": [algos.DigestAlgorithm({"algorithm": "sha256"})],
            "encap_content_info": {
                "content_type": "tst_info",
                "content": core.ParsableOctetString(tst_info),
            },
            "certificates": [cert],
            "signer_infos": [signer],
        })
        token = cms.ContentInfo({"content_type": "signed_data", "content": signed_data})
        status = tsp.PKIStatusInfo({"status": "granted"})
        answer: bytes = tsp.TimeStampResp({"status": status, "time_stamp_token": token}).dump()
        return answer


@contextmanager
def serve_tsa(tsa: Tsa) -> Iterator[Tsa]:
    """Run ``tsa`` on 127.0.0.1 (ephemeral port) until the block ends."""

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            return

        def do_POST(self) -> None:
            length = min(int(self.headers.get("Content-Length", "0")), 64 * 1024)
            try:
                status, body = tsa.answer(self.rfile.read(length))
            except ValueError:
                status, body = 400, b"bad request"
            self.send_response(status)
            self.send_header("Content-Type", "application/timestamp-reply")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    tsa.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield tsa
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
