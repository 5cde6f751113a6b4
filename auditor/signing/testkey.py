"""``auditor keys generate-test NAME``: a throw-away signing identity in notation's layout.

Like ``notation cert generate-test``: a self-signed code-signing certificate (subject
``C=US, ST=WA, L=Seattle, O=Notary, CN=NAME``, digitalSignature key usage, codeSigning EKU,
no CA flag, exactly the shape of notation's own ``e2e.crt``) and its key under
``localkeys/``, the certificate as trust store ``ca:NAME``; and, beyond notation, a trust
policy statement that trusts it for ``--scope``, so ``auditor sign`` and ``audit now`` work
with nothing else. Existing keys are never overwritten; the key file is created ``0600``.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from auditor.errors import UsageError
from auditor.notary.crypto import PrivateKey

KEY_TYPES = {
    "rsa2048": ("RSA", 2048),
    "rsa3072": ("RSA", 3072),
    "rsa4096": ("RSA", 4096),
    "ec256": ("EC", 256),
    "ec384": ("EC", 384),
    "ec521": ("EC", 521),
}
_CURVES = {256: ec.SECP256R1(), 384: ec.SECP384R1(), 521: ec.SECP521R1()}
_HASH: dict[int, type[hashes.SHA256 | hashes.SHA384 | hashes.SHA512]] = {
    2048: hashes.SHA256,
    3072: hashes.SHA384,
    4096: hashes.SHA512,
    256: hashes.SHA256,
    384: hashes.SHA384,
    521: hashes.SHA512,
}
_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
_MAX_POLICY_BYTES = 1024 * 1024
POLICY_FILE = "trustpolicy.oci.json"


@dataclass(frozen=True)
class GeneratedKey:
    key: Path
    cert: Path
    trust_store_cert: Path
    trust_policy: Path
    subject: str


def _key(key_type: str) -> PrivateKey:
    kind, size = KEY_TYPES[key_type]
    if kind == "RSA":
        return rsa.generate_private_key(public_exponent=65537, key_size=size)
    return ec.generate_private_key(_CURVES[size])


def _certificate(name: str, key: PrivateKey, days: int, now: datetime) -> x509.Certificate:
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "US"),
            x509.NameAttribute(NameOID.STATE_OR_PROVINCE_NAME, "WA"),
            x509.NameAttribute(NameOID.LOCALITY_NAME, "Seattle"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Notary"),
            x509.NameAttribute(NameOID.COMMON_NAME, name),
        ]
    )
    size = key.key_size if isinstance(key, rsa.RSAPrivateKey) else key.curve.key_size
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=days))
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CODE_SIGNING]), critical=False)
        .sign(key, _HASH[size]())
    )


def notation_subject(cert: x509.Certificate) -> str:
    """The subject as trust policies write it: ``C=US, ST=WA, L=Seattle, O=Notary, CN=x``."""
    return ", ".join(reversed(cert.subject.rfc4514_string().split(",")))


def _load_policy(path: Path) -> dict[str, Any]:
    if not path.exists():
        return {"version": "1.0", "trustPolicies": []}
    try:
        if path.stat().st_size > _MAX_POLICY_BYTES:
            raise UsageError(f"{path}: larger than a trust policy can be")
        doc = json.loads(path.read_bytes())
    except (OSError, ValueError) as exc:
        raise UsageError(f"{path}: cannot add a statement, the file is not JSON ({exc})") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("trustPolicies"), list):
        raise UsageError(f"{path}: cannot add a statement, there is no trustPolicies list")
    return doc


def _add_statement(doc: dict[str, Any], statement: dict[str, Any], path: Path) -> None:
    for existing in doc["trustPolicies"]:
        if not isinstance(existing, dict):
            continue
        if existing.get("name") == statement["name"]:
            raise UsageError(f"{path}: already has a statement named {statement['name']!r}")
        scopes = existing.get("registryScopes")
        if isinstance(scopes, list) and set(scopes) & set(statement["registryScopes"]):
            overlap = ", ".join(sorted(set(scopes) & set(statement["registryScopes"])))
            raise UsageError(
                f"{path}: statement {existing.get('name')!r} already covers {overlap}; choose "
                "another --scope (a scope may appear in one statement only)"
            )
    doc["trustPolicies"].append(statement)


def generate_test_key(
    name: str,
    directory: Path,
    *,
    key_type: str = "rsa2048",
    days: int = 365,
    scopes: tuple[str, ...] = ("*",),
    now: datetime | None = None,
) -> GeneratedKey:
    """Write key, certificate, trust store entry and trust policy statement under ``directory``."""
    if not _NAME.match(name):
        raise UsageError(f"keys generate-test: {name!r}: use 1-64 letters, digits, '.', '_', '-'")
    if key_type not in KEY_TYPES:
        raise UsageError(f"--key-type: {key_type!r} is not one of {', '.join(KEY_TYPES)}")
    if not 1 <= days <= 36500:
        raise UsageError("--days: between 1 and 36500")
    keys_dir = directory / "localkeys"
    key_path, cert_path = keys_dir / f"{name}.key", keys_dir / f"{name}.crt"
    store_cert = directory / "truststore" / "x509" / "ca" / name / f"{name}.crt"
    policy_path = directory / POLICY_FILE
    for path in (key_path, cert_path, store_cert):
        if path.exists():
            raise UsageError(f"keys generate-test: {path} exists; not overwriting it")
    policy = _load_policy(policy_path)
    key = _key(key_type)
    cert = _certificate(name, key, days, (now or datetime.now(UTC)).replace(microsecond=0))
    subject = notation_subject(cert)
    _add_statement(
        policy,
        {
            "name": name,
            "registryScopes": list(scopes),
            "signatureVerification": {"level": "strict"},
            "trustStores": [f"ca:{name}"],
            "trustedIdentities": [f"x509.subject: {subject}"],
        },
        policy_path,
    )
    cert_pem = cert.public_bytes(serialization.Encoding.PEM)
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    try:
        keys_dir.mkdir(parents=True, exist_ok=True)
        store_cert.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(key_pem)
        cert_path.write_bytes(cert_pem)
        store_cert.write_bytes(cert_pem)
        temp = policy_path.with_name(policy_path.name + ".tmp")
        temp.write_text(json.dumps(policy, indent=2) + "\n")
        temp.replace(policy_path)
    except OSError as exc:
        raise UsageError(f"keys generate-test: cannot write under {directory}: {exc}") from None
    return GeneratedKey(key_path, cert_path, store_cert, policy_path, subject)
