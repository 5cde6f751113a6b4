"""Signing keys and chains (auditor/signing/keys.py) and ``keys generate-test`` (testkey.py)."""

from __future__ import annotations

import json
import stat
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from auditor.errors import SigningError, UsageError
from auditor.model import Descriptor
from auditor.notary.crypto import verify_integrity
from auditor.notary.envelope import parse_envelope
from auditor.notary.sign import sign_jws
from auditor.notary.trustpolicy import load_trust_policy
from auditor.oci import mediatypes as mt
from auditor.signing.keys import load_signing_key
from auditor.signing.testkey import generate_test_key
from devkit.testpki import make_pki
from tests.support.paths import FIXTURES

LOCALKEYS = FIXTURES / "notation-e2e" / "config" / "localkeys"


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def test_e2e_key_and_certificate_load() -> None:
    key = load_signing_key(LOCALKEYS / "e2e.key", LOCALKEYS / "e2e.crt")
    assert key.algorithm.name == "PS256"
    assert key.thumbprint.startswith("e38aea13")  # what notation's own e2e signatures list
    assert "e2e" in key.subject
    assert "key=" not in repr(key)  # the key is kept out of reprs (and so out of logs)


def test_encrypted_key_needs_its_passphrase_from_the_environment(tmp_path: Path) -> None:
    pki = make_pki(key_type="ec384", intermediate=True)
    encrypted = pki.leaf.key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"correct horse"),
    )
    key_path = _write(tmp_path / "k.pem", encrypted)
    chain = b"".join(c.public_bytes(serialization.Encoding.PEM) for c in pki.chain)
    cert_path = _write(tmp_path / "chain.pem", chain)

    with pytest.raises(UsageError, match="encrypted; name the environment variable"):
        load_signing_key(key_path, cert_path)
    with pytest.raises(UsageError, match="SIGN_PASS is not set"):
        load_signing_key(key_path, cert_path, passphrase_env="SIGN_PASS", env={})
    with pytest.raises(UsageError, match="passphrase is wrong") as wrong:
        load_signing_key(key_path, cert_path, passphrase_env="P", env={"P": "nope"})
    assert "nope" not in str(wrong.value)
    loaded = load_signing_key(key_path, cert_path, passphrase_env="P", env={"P": "correct horse"})
    assert loaded.algorithm.name == "ES384"
    assert len(loaded.chain) == 3


def test_chain_must_start_with_the_keys_certificate(tmp_path: Path) -> None:
    pki = make_pki(key_type="ec256", intermediate=True)
    key_path = _write(tmp_path / "k.pem", pki.leaf.key_pem())
    reversed_chain = b"".join(
        c.public_bytes(serialization.Encoding.PEM) for c in reversed(pki.chain)
    )
    with pytest.raises(UsageError, match=r"must start with the certificate of --key .* it is "
                       r"certificate 3 of 3; put it first"):
        load_signing_key(key_path, _write(tmp_path / "rev.pem", reversed_chain))
    other = make_pki(key_type="ec256", slot=5)
    with pytest.raises(UsageError, match="no certificate in the file is the key's"):
        load_signing_key(key_path, _write(tmp_path / "other.pem", other.leaf.cert_pem()))


def test_unusable_keys_and_files_are_named(tmp_path: Path) -> None:
    cert = _write(tmp_path / "c.pem", (LOCALKEYS / "e2e.crt").read_bytes())
    ed = ed25519.Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    with pytest.raises(UsageError, match=r"RSA .* or EC"):
        load_signing_key(_write(tmp_path / "ed.pem", ed), cert)
    junk = _write(tmp_path / "junk.pem", b"-----BEGIN PRIVATE KEY-----\nAAAA\n")
    with pytest.raises(UsageError, match="not a readable PEM private key"):
        load_signing_key(junk, cert)
    with pytest.raises(UsageError, match="no such file"):
        load_signing_key(tmp_path / "missing.pem", cert)
    with pytest.raises(UsageError, match=r"not a PEM certificate chain|holds no certificate"):
        load_signing_key(LOCALKEYS / "e2e.key", _write(tmp_path / "empty.pem", b"nothing"))


def test_a_chain_that_breaks_the_certificate_rules_is_refused(tmp_path: Path) -> None:
    pki = make_pki(key_type="rsa2048", intermediate=True)
    key_path = _write(tmp_path / "k.pem", pki.leaf.key_pem())
    leaf_then_root = pki.leaf.cert_pem() + pki.root.cert_pem()  # intermediate missing
    with pytest.raises(SigningError, match="--cert"):
        load_signing_key(key_path, _write(tmp_path / "gap.pem", leaf_then_root))


@pytest.mark.parametrize("key_type", ["rsa2048", "ec256"])
def test_generate_test_writes_notations_layout_and_a_policy(tmp_path: Path, key_type: str) -> None:
    made = generate_test_key("release", tmp_path, key_type=key_type, scopes=("r.example/app",))
    assert made.key == tmp_path / "localkeys" / "release.key"
    assert stat.S_IMODE(made.key.stat().st_mode) == 0o600
    assert made.trust_store_cert == tmp_path / "truststore/x509/ca/release/release.crt"
    assert made.trust_store_cert.read_bytes() == made.cert.read_bytes()
    policy = load_trust_policy(made.trust_policy)  # the product's own strict policy parser
    statement = policy.statements[0]
    assert statement.name == "release"
    assert made.subject == "C=US, ST=WA, L=Seattle, O=Notary, CN=release"
    # What it makes signs envelopes the verifier's integrity checks accept.
    key = load_signing_key(made.key, made.cert)
    envelope = sign_jws(
        Descriptor(mt.OCI_MANIFEST, "sha256:" + "1" * 64, 3), key.key, key.chain,
        signing_time=datetime.now(UTC),
    )
    verify_integrity(parse_envelope(mt.JWS_ENVELOPE, envelope))


def test_generate_test_adds_to_a_policy_and_never_overwrites(tmp_path: Path) -> None:
    generate_test_key("one", tmp_path, scopes=("a.example/x",))
    generate_test_key("two", tmp_path, scopes=("b.example/y",))
    doc = json.loads((tmp_path / "trustpolicy.oci.json").read_text())
    assert [s["name"] for s in doc["trustPolicies"]] == ["one", "two"]
    with pytest.raises(UsageError, match="exists; not overwriting"):
        generate_test_key("one", tmp_path, scopes=("c.example/z",))
    with pytest.raises(UsageError, match=r"already covers a\.example/x"):
        generate_test_key("three", tmp_path, scopes=("a.example/x",))
    with pytest.raises(UsageError, match="letters, digits"):
        generate_test_key("../evil", tmp_path)
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "trustpolicy.oci.json").write_text("{not json")
    with pytest.raises(UsageError, match="not JSON"):
        generate_test_key("x", tmp_path / "bad")
