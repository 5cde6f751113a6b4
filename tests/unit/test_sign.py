"""Signing round trips, the notation shape of what we sign, and the test PKI itself."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import cbor2
import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from auditor.errors import SigningError, VerificationError
from auditor.model import Descriptor
from auditor.notary import jws
from auditor.notary.crypto import verify_integrity
from auditor.notary.envelope import parse_envelope
from auditor.notary.sign import sign_cose, sign_jws, signature_manifest
from auditor.notary.types import SigningScheme, TargetArtifact
from auditor.oci import mediatypes as mt
from devkit.testpki import KEY_TYPES, TestPKI, make_pki
from tests.support.paths import FIXTURES

NOW = datetime(2025, 6, 1, 12, 0, 0, 123456, tzinfo=UTC)
SUBJECT = Descriptor(
    "application/vnd.oci.image.manifest.v1+json", "sha256:" + "cd" * 32, 517, {"purpose": "e2e"}
)
SIGNERS = [(sign_jws, mt.JWS_ENVELOPE), (sign_cose, mt.COSE_ENVELOPE)]
EXPECTED_ALG = {
    "rsa2048": "PS256",
    "rsa3072": "PS384",
    "rsa4096": "PS512",
    "ec256": "ES256",
    "ec384": "ES384",
    "ec521": "ES512",
}


@pytest.fixture(scope="module")
def pki() -> TestPKI:
    return make_pki(key_type="rsa3072", intermediate=True, now=NOW)


@pytest.mark.parametrize("key_type", KEY_TYPES)
@pytest.mark.parametrize(("signer", "media_type"), SIGNERS)
def test_round_trip_every_algorithm(key_type: str, signer: object, media_type: str) -> None:
    pki = make_pki(key_type=key_type, ca_key_type="ec256", now=NOW)
    assert callable(signer)
    data = signer(SUBJECT, pki.leaf.key, pki.chain, signing_time=NOW)
    env = parse_envelope(media_type, data)
    verify_integrity(env)
    assert env.algorithm == EXPECTED_ALG[key_type]
    assert env.target == TargetArtifact(
        SUBJECT.media_type, SUBJECT.digest, SUBJECT.size, {"purpose": "e2e"}
    )
    assert env.signing_time == NOW.replace(microsecond=0)
    assert env.certificate_chain == pki.chain


@pytest.mark.parametrize(("signer", "media_type"), SIGNERS)
@pytest.mark.parametrize("scheme", list(SigningScheme))
def test_round_trip_schemes_and_expiry(
    pki: TestPKI, signer: object, media_type: str, scheme: SigningScheme
) -> None:
    assert callable(signer)
    expiry = NOW + timedelta(days=7)
    data = signer(
        SUBJECT, pki.leaf.key, pki.chain, signing_time=NOW, expiry=expiry, signing_scheme=scheme
    )
    env = parse_envelope(media_type, data)
    verify_integrity(env)
    assert env.signing_scheme is scheme
    assert env.expiry == expiry.replace(microsecond=0)
    signed_at = env.signing_time if scheme is SigningScheme.X509 else env.authentic_signing_time
    assert signed_at == NOW.replace(microsecond=0)
    assert "io.cncf.notary.expiry" in env.critical_headers
    assert (scheme is SigningScheme.SIGNING_AUTHORITY) == (
        "io.cncf.notary.authenticSigningTime" in env.critical_headers
    )


@pytest.mark.parametrize(("signer", "media_type"), SIGNERS)
def test_flipping_any_byte_of_the_signed_part_fails(
    pki: TestPKI, signer: object, media_type: str
) -> None:
    assert callable(signer)
    data = signer(SUBJECT, pki.leaf.key, pki.chain, signing_time=NOW)
    env = parse_envelope(media_type, data)
    # Flip one byte of the signed bytes, then of the signature: both must fail.
    for index in (0, len(env.signed_bytes) // 2, len(env.signed_bytes) - 1):
        bad = dataclasses.replace(env, signed_bytes=_flip(env.signed_bytes, index))
        with pytest.raises(VerificationError, match=r"^integrity: "):
            verify_integrity(bad)
    for index in (0, len(env.signature) // 2, len(env.signature) - 1):
        bad = dataclasses.replace(env, signature=_flip(env.signature, index))
        with pytest.raises(VerificationError, match=r"^integrity: "):
            verify_integrity(bad)


def _flip(value: bytes, index: int) -> bytes:
    tampered = bytearray(value)
    tampered[index] ^= 0x01
    return bytes(tampered)


def test_flipping_a_payload_byte_on_the_wire_fails(pki: TestPKI) -> None:
    data = sign_cose(SUBJECT, pki.leaf.key, pki.chain, signing_time=NOW)
    index = data.index(b'"size":517')
    tampered = data[:index] + b'"size":518' + data[index + len(b'"size":517') :]
    env = parse_envelope(mt.COSE_ENVELOPE, tampered)
    assert env.target.size == 518
    with pytest.raises(VerificationError, match="does not verify"):
        verify_integrity(env)


def test_jws_shape_matches_notation(pki: TestPKI) -> None:
    """Same members, header names and criticality as notation's envelopes."""
    ours = json.loads(sign_jws(SUBJECT, pki.leaf.key, pki.chain, signing_time=NOW))
    theirs = json.loads((FIXTURES / "notation-go/signed-oci-layout/jws_signature.sig").read_bytes())
    assert set(ours) == set(theirs)
    ours_header = json.loads(jws.b64url_decode(ours["protected"], "protected"))
    theirs_header = json.loads(jws.b64url_decode(theirs["protected"], "protected"))
    assert set(ours_header) == set(theirs_header)
    assert ours_header["crit"] == theirs_header["crit"]
    assert ours_header["cty"] == theirs_header["cty"]
    assert set(ours["header"]) == set(theirs["header"])
    assert [base64.b64decode(c) for c in ours["header"]["x5c"]] == [
        c.public_bytes(Encoding.DER) for c in pki.chain
    ]
    assert ours_header["io.cncf.notary.signingTime"] == "2025-06-01T12:00:00Z"


def test_cose_shape_matches_notation(pki: TestPKI) -> None:
    ours = cbor2.loads(sign_cose(SUBJECT, pki.leaf.key, pki.chain, signing_time=NOW))
    theirs = cbor2.loads(
        (FIXTURES / "notation-go/signed-oci-layout/cose_signature.sig").read_bytes()
    )
    assert ours.tag == theirs.tag == 18
    ours_protected = cbor2.loads(ours.value[0])
    theirs_protected = cbor2.loads(theirs.value[0])
    assert set(ours_protected) == set(theirs_protected)
    assert list(ours_protected[2]) == list(theirs_protected[2])
    assert set(ours.value[1]) == set(theirs.value[1])
    assert ours_protected[1] == -38  # PS384 for RSA 3072


def test_signature_manifest_matches_notation_shape(pki: TestPKI) -> None:
    envelope = sign_jws(SUBJECT, pki.leaf.key, pki.chain, signing_time=NOW)
    body, blobs = signature_manifest(SUBJECT, envelope, mt.JWS_ENVELOPE, created=NOW)
    ours = json.loads(body)
    layout = FIXTURES / "notation-e2e/registry/oci_layout/e2e-valid-signature/blobs/sha256"
    theirs = json.loads(
        (layout / "90ceaff260d657d797c408ac73564a9c7bb9d86055877c2a811f0e63b8c6524f").read_bytes()
    )
    assert list(ours) == list(theirs)
    assert ours["config"] == theirs["config"]
    assert list(ours["annotations"]) == list(theirs["annotations"])
    assert ours["layers"] == [
        {
            "mediaType": mt.JWS_ENVELOPE,
            "digest": "sha256:" + hashlib.sha256(envelope).hexdigest(),
            "size": len(envelope),
        }
    ]
    assert ours["subject"] == {
        "mediaType": SUBJECT.media_type,
        "digest": SUBJECT.digest,
        "size": SUBJECT.size,
    }
    thumbs = json.loads(ours["annotations"]["io.cncf.notary.x509chain.thumbprint#S256"])
    assert thumbs == [hashlib.sha256(c.public_bytes(Encoding.DER)).hexdigest() for c in pki.chain]
    assert ours["annotations"]["org.opencontainers.image.created"] == "2025-06-01T12:00:00Z"
    assert blobs == {
        theirs["config"]["digest"]: b"{}",
        ours["layers"][0]["digest"]: envelope,
    }


def test_signature_manifest_refuses_an_invalid_envelope() -> None:
    with pytest.raises(SigningError, match="cannot attach an invalid envelope"):
        signature_manifest(SUBJECT, b"invalid signature\n", mt.JWS_ENVELOPE)


def test_signing_refuses_bad_inputs(pki: TestPKI) -> None:
    other = make_pki(key_type="rsa3072", now=NOW, slot=7, name="other")
    with pytest.raises(SigningError, match="does not match the leaf"):
        sign_jws(SUBJECT, other.leaf.key, pki.chain, signing_time=NOW)
    with pytest.raises(SigningError, match="expiry must be after"):
        sign_jws(SUBJECT, pki.leaf.key, pki.chain, signing_time=NOW, expiry=NOW)
    with pytest.raises(SigningError, match="timezone-aware"):
        sign_cose(SUBJECT, pki.leaf.key, pki.chain, signing_time=datetime(2025, 1, 1))
    with pytest.raises(SigningError, match="certificate chain"):
        sign_cose(SUBJECT, pki.leaf.key, [], signing_time=NOW)
    with pytest.raises(SigningError, match="does not match the leaf"):
        sign_jws(SUBJECT, pki.leaf.key, list(reversed(pki.chain)), signing_time=NOW)
    with pytest.raises(SigningError, match=r"cannot sign: .* is not issued by"):
        sign_jws(SUBJECT, pki.leaf.key, [pki.leaf.cert, pki.root.cert], signing_time=NOW)


def test_test_pki_meets_the_certificate_requirements(pki: TestPKI, tmp_path: Path) -> None:
    assert pki.intermediate is not None
    leaf = pki.leaf.cert
    ku = leaf.extensions.get_extension_for_class(x509.KeyUsage)
    assert ku.critical
    assert ku.value.digital_signature
    assert not ku.value.key_cert_sign
    eku = leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [x509.oid.ExtendedKeyUsageOID.CODE_SIGNING]
    for ca in (pki.root.cert, pki.intermediate.cert):
        bc = ca.extensions.get_extension_for_class(x509.BasicConstraints)
        assert bc.critical
        assert bc.value.ca
    assert leaf.not_valid_before_utc == datetime(2025, 6, 1, 11, 0, tzinfo=UTC)
    path = pki.write_trust_store(tmp_path, "demo")
    assert path == tmp_path / "x509" / "ca" / "demo" / "root.pem"
    assert x509.load_pem_x509_certificate(path.read_bytes()) == pki.root.cert
    tsa = pki.write_trust_store(tmp_path, "demo-sa", "signingAuthority")
    assert tsa.parent.parent.name == "signingAuthority"


def test_expired_leaf_still_has_integrity() -> None:
    """Integrity does not depend on time; expiry of certificates is the verifier's business."""
    old = make_pki(
        key_type="ec256",
        now=datetime(2020, 1, 1, tzinfo=UTC),
        validity=timedelta(days=1),
        slot=3,
    )
    data = sign_jws(SUBJECT, old.leaf.key, old.chain, signing_time=datetime(2020, 1, 1, tzinfo=UTC))
    env = parse_envelope(mt.JWS_ENVELOPE, data)
    verify_integrity(env)
    assert env.certificate_chain[0].not_valid_after_utc < datetime.now(UTC)
