"""A small X.509 PKI for tests and the demo: root CA, optional intermediate, code-signing leaf.

Certificates follow the Notary Project certificate requirements (critical basicConstraints and
keyUsage on CAs, digitalSignature-only critical keyUsage and codeSigning EKU on the leaf), so
what they sign verifies exactly as a real notation signature would. Keys are generated once
per process and key type (RSA generation is slow); names, serials and validity are fixed by the
arguments, so tests are repeatable.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from auditor.notary.crypto import PrivateKey

KEY_TYPES = ("rsa2048", "rsa3072", "rsa4096", "ec256", "ec384", "ec521")
_CURVES: dict[str, ec.EllipticCurve] = {
    "ec256": ec.SECP256R1(),
    "ec384": ec.SECP384R1(),
    "ec521": ec.SECP521R1(),
}


@dataclass(frozen=True)
class Issued:
    """A certificate and its private key."""

    cert: x509.Certificate
    key: PrivateKey

    def cert_pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)

    def key_pem(self) -> bytes:
        return self.key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )


@dataclass(frozen=True)
class TestPKI:
    """Root, optional intermediate and leaf; ``chain`` is leaf first, as envelopes carry it."""

    __test__ = False  # not a pytest test class

    root: Issued
    intermediate: Issued | None
    leaf: Issued

    @property
    def chain(self) -> tuple[x509.Certificate, ...]:
        middle = (self.intermediate.cert,) if self.intermediate else ()
        return (self.leaf.cert, *middle, self.root.cert)

    def write_trust_store(self, base: Path, name: str, store_type: str = "ca") -> Path:
        """Write the root as ``<base>/x509/<store_type>/<name>/root.pem`` (notation layout)."""
        folder = base / "x509" / store_type / name
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / "root.pem"
        path.write_bytes(self.root.cert_pem())
        return path


@functools.lru_cache(maxsize=32)
def make_key(key_type: str = "rsa3072", slot: int = 0) -> PrivateKey:
    """A private key of ``key_type`` (see KEY_TYPES); ``slot`` gives distinct keys of one type."""
    if key_type.startswith("rsa"):
        return rsa.generate_private_key(public_exponent=65537, key_size=int(key_type[3:]))
    if key_type in _CURVES:
        return ec.generate_private_key(_CURVES[key_type])
    raise ValueError(f"unknown key type {key_type!r}; use one of {', '.join(KEY_TYPES)}")


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "US"),
            x509.NameAttribute(NameOID.STATE_OR_PROVINCE_NAME, "WA"),
            x509.NameAttribute(NameOID.LOCALITY_NAME, "Seattle"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Notary"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _hash_for(key: PrivateKey) -> hashes.SHA256 | hashes.SHA384 | hashes.SHA512:
    size = key.key_size if isinstance(key, rsa.RSAPrivateKey) else key.curve.key_size
    if size >= 4096 or size == 521:
        return hashes.SHA512()
    if size >= 3072 or size == 384:
        return hashes.SHA384()
    return hashes.SHA256()


def _build(
    *,
    subject: x509.Name,
    key: PrivateKey,
    issuer: Issued | None,
    serial: int,
    not_before: datetime,
    not_after: datetime,
    ca: bool,
    path_length: int | None = None,
    eku: list[x509.ObjectIdentifier] | None = None,
) -> Issued:
    signer_key = issuer.key if issuer else key
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer.cert.subject if issuer else subject)
        .public_key(key.public_key())
        .serial_number(serial)
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=ca, path_length=path_length), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=not ca,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=ca,
                crl_sign=ca,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    )
    if issuer is not None:
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer.key.public_key()),
            critical=False,
        )
    if eku:
        builder = builder.add_extension(x509.ExtendedKeyUsage(eku), critical=False)
    cert = builder.sign(signer_key, _hash_for(signer_key))
    return Issued(cert=cert, key=key)


def make_pki(
    *,
    key_type: str = "rsa3072",
    ca_key_type: str | None = None,
    intermediate: bool = False,
    name: str = "test",
    now: datetime | None = None,
    not_before: datetime | None = None,
    validity: timedelta = timedelta(days=365),
    leaf_validity: timedelta | None = None,
    slot: int = 0,
) -> TestPKI:
    """Build a PKI whose leaf signs with ``key_type``.

    ``now`` (default: the current minute) anchors validity: certificates start one hour
    before it unless ``not_before`` is given. ``slot`` selects a different set of keys, so two
    PKIs with the same key type do not share keys.
    """
    anchor = (now or datetime.now(UTC)).replace(second=0, microsecond=0)
    start = not_before or anchor - timedelta(hours=1)
    ca_type = ca_key_type or "rsa3072"
    root = _build(
        subject=_name(f"{name} root CA"),
        key=make_key(ca_type, slot * 3),
        issuer=None,
        serial=1000 + slot,
        not_before=start,
        not_after=start + validity + timedelta(days=1),
        ca=True,
        path_length=1 if intermediate else 0,
    )
    parent = root
    inter = None
    if intermediate:
        inter = _build(
            subject=_name(f"{name} intermediate CA"),
            key=make_key(ca_type, slot * 3 + 1),
            issuer=root,
            serial=2000 + slot,
            not_before=start,
            not_after=start + validity + timedelta(days=1),
            ca=True,
            path_length=0,
        )
        parent = inter
    leaf = _build(
        subject=_name(name),
        key=make_key(key_type, slot * 3 + 2),
        issuer=parent,
        serial=3000 + slot,
        not_before=start,
        not_after=start + (leaf_validity or validity),
        ca=False,
        eku=[ExtendedKeyUsageOID.CODE_SIGNING],
    )
    return TestPKI(root=root, intermediate=inter, leaf=leaf)
