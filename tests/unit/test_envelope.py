"""Envelope parsing and integrity against real notation-made envelopes, plus tampering.

Fixtures are read-only data made by notation / notation-go (see fixtures README). Negative
cases re-sign with a test PKI when the point is a header rule, so the failure can only come
from the rule under test and not from a broken signature.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import cbor2
import pytest

from auditor.errors import VerificationError
from auditor.notary import cose, jws
from auditor.notary.crypto import ALGORITHMS, algorithm_for_key, sign_bytes, verify_integrity
from auditor.notary.envelope import parse_envelope
from auditor.notary.sign import payload_bytes
from auditor.notary.types import Envelope, SigningScheme, TargetArtifact
from auditor.oci import mediatypes as mt
from devkit.testpki import TestPKI, make_pki
from tests.support.paths import FIXTURES

SIGNED_LAYOUT = FIXTURES / "notation-go" / "signed-oci-layout"
E2E_LAYOUTS = FIXTURES / "notation-e2e" / "registry" / "oci_layout"

pytestmark = pytest.mark.skipif(not FIXTURES.is_dir(), reason="shared fixtures not present")

TARGET = TargetArtifact(
    "application/vnd.oci.image.manifest.v1+json", "sha256:" + "ab" * 32, 1234, {"k": "v"}
)
NOW = datetime(2025, 6, 1, 12, 0, 0, tzinfo=UTC)


def parse_and_verify(media_type: str, data: bytes) -> Envelope:
    env = parse_envelope(media_type, data)
    verify_integrity(env)
    return env


def media_type_of(data: bytes) -> str:
    return mt.JWS_ENVELOPE if data[:1] == b"{" else mt.COSE_ENVELOPE


# --- real envelopes -------------------------------------------------------------------------


def _layout_manifest() -> tuple[str, int, str]:
    index = json.loads((SIGNED_LAYOUT / "oci-layout" / "index.json").read_bytes())
    desc = index["manifests"][0]
    blob = SIGNED_LAYOUT / "oci-layout" / "blobs" / "sha256" / desc["digest"].split(":")[1]
    assert "sha256:" + hashlib.sha256(blob.read_bytes()).hexdigest() == desc["digest"]
    return desc["digest"], desc["size"], desc["mediaType"]


@pytest.mark.parametrize(
    ("name", "media_type", "fmt"),
    [
        ("jws_signature.sig", mt.JWS_ENVELOPE, "notation/jws"),
        ("cose_signature.sig", mt.COSE_ENVELOPE, "notation/cose"),
    ],
)
def test_notation_go_envelopes_verify_and_target_the_layout(
    name: str, media_type: str, fmt: str
) -> None:
    env = parse_and_verify(media_type, (SIGNED_LAYOUT / name).read_bytes())
    digest, size, manifest_type = _layout_manifest()
    assert env.format == fmt
    assert (env.target.digest, env.target.size, env.target.media_type) == (
        digest,
        size,
        manifest_type,
    )
    assert env.signing_scheme is SigningScheme.X509
    assert env.algorithm == "PS256"
    assert env.signing_time is not None
    assert env.signing_time.tzinfo is not None
    assert env.critical_headers == ("io.cncf.notary.signingScheme",)
    assert env.timestamp_token is None


def _signature_layer(layout: str) -> tuple[str, bytes, dict[str, Any]]:
    """The envelope blob of the layout's (first) signature manifest, and that manifest."""
    blobs = E2E_LAYOUTS / layout / "blobs" / "sha256"
    for path in sorted(blobs.iterdir()):
        try:
            doc = json.loads(path.read_bytes())
        except (ValueError, UnicodeDecodeError):
            continue
        if isinstance(doc, dict) and doc.get("config", {}).get("mediaType") == (
            "application/vnd.cncf.notary.signature"
        ):
            layer = doc["layers"][0]
            return layer["mediaType"], (blobs / layer["digest"].split(":")[1]).read_bytes(), doc
    raise AssertionError(f"no signature manifest in {layout}")


def test_e2e_valid_signature_envelope_verifies_and_matches_subject() -> None:
    media_type, data, manifest = _signature_layer("e2e-valid-signature")
    env = parse_and_verify(media_type, data)
    assert env.target.digest == manifest["subject"]["digest"]
    assert env.target.size == manifest["subject"]["size"]
    # The manifest's thumbprint annotation lists the chain in envelope order.
    thumbs = json.loads(manifest["annotations"]["io.cncf.notary.x509chain.thumbprint#S256"])
    from cryptography.hazmat.primitives.serialization import Encoding

    assert thumbs == [
        hashlib.sha256(c.public_bytes(Encoding.DER)).hexdigest() for c in env.certificate_chain
    ]


def test_e2e_invalid_signature_layer_is_rejected_clearly() -> None:
    media_type, data, _ = _signature_layer("e2e-invalid-signature")
    assert media_type == "application/vnd.oci.image.layer.v1.tar"
    with pytest.raises(VerificationError, match=r"^integrity: unsupported signature envelope"):
        parse_envelope(media_type, data)
    for envelope_type in (mt.JWS_ENVELOPE, mt.COSE_ENVELOPE):
        with pytest.raises(VerificationError, match=r"^integrity: malformed (JWS|COSE) envelope"):
            parse_envelope(envelope_type, data)


def test_e2e_expired_signature_still_has_integrity_and_reports_expiry() -> None:
    media_type, data, _ = _signature_layer("e2e-expired-signature")
    env = parse_and_verify(media_type, data)
    assert env.expiry is not None
    assert env.signing_time is not None
    assert env.expiry - env.signing_time == timedelta(minutes=1)
    assert "io.cncf.notary.expiry" in env.critical_headers


def test_e2e_blob_signatures_verify() -> None:
    for name in ("blob.jws.sig", "blob.cose.sig"):
        data = (FIXTURES / "notation-e2e" / "signatures" / name).read_bytes()
        env = parse_and_verify(media_type_of(data), data)
        assert env.timestamp_token
    with pytest.raises(VerificationError, match="malformed JWS"):
        parse_envelope(
            mt.JWS_ENVELOPE, (FIXTURES / "notation-e2e/signatures/malformed.jws.sig").read_bytes()
        )


def test_jws_conformance_vector_unknown_critical_header_is_refused() -> None:
    """notation-core-go's JWS vector marks an extension critical that no verifier knows."""
    data = (FIXTURES / "notation-core-go/signature/jws/testdata/conformance.json").read_bytes()
    decoded = jws.decode(data, max_chain=10)
    assert decoded.algorithm == "ES256"
    assert "signedCritKey1" in decoded.critical
    assert decoded.extended["signedKey1"] == "signedValue1"
    with pytest.raises(VerificationError, match="unknown critical header 'signedCritKey1'"):
        parse_envelope(mt.JWS_ENVELOPE, data)


def test_cose_conformance_vector_decodes_to_its_declared_headers() -> None:
    vector = json.loads(
        (FIXTURES / "notation-core-go/signature/cose/testdata/conformance.json").read_bytes()
    )
    data = bytes.fromhex(vector["expectedOutput"]["cborHex"])
    decoded = cose.decode(data, max_chain=10)
    assert decoded.algorithm == "PS384"
    assert decoded.payload == bytes.fromhex(vector["payload"])
    assert decoded.signing_time == datetime.fromtimestamp(vector["signingTime"], UTC)
    assert decoded.expiry == datetime.fromtimestamp(vector["expiry"], UTC)
    assert decoded.signing_agent == "NotationConformanceTest/1.0.0"
    assert set(decoded.critical) == {
        "io.cncf.notary.signingScheme",
        "io.cncf.notary.expiry",
        "signedCritKey1",
    }
    with pytest.raises(VerificationError, match="unknown critical header 'signedCritKey1'"):
        parse_envelope(mt.COSE_ENVELOPE, data)


# --- tampering real envelopes ------------------------------------------------------------------


def _jws_doc() -> dict[str, Any]:
    doc: dict[str, Any] = json.loads((SIGNED_LAYOUT / "jws_signature.sig").read_bytes())
    return doc


def _b64url_json(value: Any) -> str:
    return jws.b64url_encode(json.dumps(value, separators=(",", ":")).encode())


def test_tampered_jws_payload_fails_integrity() -> None:
    doc = _jws_doc()
    payload = json.loads(jws.b64url_decode(doc["payload"], "payload"))
    payload["targetArtifact"]["size"] += 1
    doc["payload"] = _b64url_json(payload)
    env = parse_envelope(mt.JWS_ENVELOPE, json.dumps(doc).encode())
    with pytest.raises(VerificationError, match=r"^integrity: the signature does not verify"):
        verify_integrity(env)


def test_tampered_jws_protected_header_fails_integrity() -> None:
    doc = _jws_doc()
    header = json.loads(jws.b64url_decode(doc["protected"], "protected"))
    header["io.cncf.notary.signingTime"] = "2099-01-01T00:00:00Z"
    doc["protected"] = _b64url_json(header)
    env = parse_envelope(mt.JWS_ENVELOPE, json.dumps(doc).encode())
    with pytest.raises(VerificationError, match=r"^integrity: the signature does not verify"):
        verify_integrity(env)


def test_tampered_cose_payload_and_header_fail_integrity() -> None:
    message = cbor2.loads((SIGNED_LAYOUT / "cose_signature.sig").read_bytes())
    protected, unprotected, payload, signature = message.value
    bad_payload = payload.replace(b'"size":481', b'"size":482')
    assert bad_payload != payload
    for body in (
        [protected, unprotected, bad_payload, signature],
        [protected[:-1] + bytes([protected[-1] ^ 1]), unprotected, payload, signature],
    ):
        data = cbor2.dumps(cbor2.CBORTag(18, body))
        with pytest.raises(VerificationError, match=r"^integrity:"):
            parse_and_verify(mt.COSE_ENVELOPE, data)


def test_flipping_any_signature_byte_fails() -> None:
    doc = _jws_doc()
    sig = bytearray(jws.b64url_decode(doc["signature"], "signature"))
    sig[len(sig) // 2] ^= 0x01
    doc["signature"] = jws.b64url_encode(bytes(sig))
    env = parse_envelope(mt.JWS_ENVELOPE, json.dumps(doc).encode())
    with pytest.raises(VerificationError, match="does not verify"):
        verify_integrity(env)


@pytest.mark.parametrize(
    "mutate",
    [
        lambda d: d[: len(d) // 2],  # truncated
        lambda d: b"\x00\xff garbage \x01",
        lambda d: b"",
        lambda d: d + b"\x00",  # trailing byte after the COSE item
        lambda d: b"\xd2\x84\x40",  # tag 18 around a truncated array
        lambda d: cbor2.dumps(cbor2.CBORTag(17, cbor2.loads(d).value)),  # wrong tag
        lambda d: cbor2.dumps([1, 2, 3]),
    ],
)
def test_truncated_and_garbage_cbor_is_rejected(mutate: Callable[[bytes], bytes]) -> None:
    data = mutate((SIGNED_LAYOUT / "cose_signature.sig").read_bytes())
    with pytest.raises(VerificationError, match=r"^integrity: malformed COSE envelope"):
        parse_envelope(mt.COSE_ENVELOPE, data)


@pytest.mark.parametrize(
    "mutate",
    [
        lambda d: d[: len(d) // 2],
        lambda d: b"garbage",
        lambda d: b"",
        lambda d: b"[]",
        lambda d: d.replace(b'"signature"', b'"sig"'),
        lambda d: d.replace(b'"payload":"', b'"payload":"!'),
        lambda d: b'{"payload":"e30","payload":"e30","protected":"e30","signature":"AA"}',
    ],
)
def test_truncated_and_garbage_json_is_rejected(mutate: Callable[[bytes], bytes]) -> None:
    data = mutate((SIGNED_LAYOUT / "jws_signature.sig").read_bytes())
    with pytest.raises(VerificationError, match=r"^integrity: malformed JWS envelope"):
        parse_envelope(mt.JWS_ENVELOPE, data)


def test_size_and_chain_limits() -> None:
    data = (SIGNED_LAYOUT / "jws_signature.sig").read_bytes()
    with pytest.raises(VerificationError, match="over the 100-byte limit"):
        parse_envelope(mt.JWS_ENVELOPE, data, max_bytes=100)
    pki = make_pki(key_type="ec256", intermediate=True)
    signed = _forge_jws(pki, {})
    with pytest.raises(VerificationError, match="over the limit of 2"):
        parse_envelope(mt.JWS_ENVELOPE, signed, max_chain=2)
    assert parse_envelope(mt.JWS_ENVELOPE, signed, max_chain=3).target == TARGET


def test_unknown_media_type_is_rejected() -> None:
    with pytest.raises(VerificationError, match="unsupported signature envelope media type"):
        parse_envelope("application/pgp-signature", b"{}")


# --- header rules, with validly signed forgeries ----------------------------------------------


def _base_jws_header(pki: TestPKI) -> dict[str, Any]:
    return {
        "alg": algorithm_for_key(pki.leaf.key).name,
        "cty": "application/vnd.cncf.notary.payload.v1+json",
        "io.cncf.notary.signingScheme": "notary.x509",
        "io.cncf.notary.signingTime": "2025-06-01T12:00:00Z",
        "crit": ["io.cncf.notary.signingScheme"],
    }


def _forge_jws(
    pki: TestPKI,
    changes: dict[str, Any],
    *,
    chain: list[bytes] | None = None,
    payload: bytes | None = None,
    alg_for_signing: str | None = None,
) -> bytes:
    """A JWS envelope with the given protected-header changes, correctly signed by the leaf."""
    header = _base_jws_header(pki)
    for key, value in changes.items():
        if value is None:
            header.pop(key, None)
        else:
            header[key] = value
    ders = chain if chain is not None else [c.public_bytes(_DER) for c in pki.chain]
    alg = ALGORITHMS[alg_for_signing or algorithm_for_key(pki.leaf.key).name]
    return jws.assemble(
        header,
        payload if payload is not None else payload_bytes(TARGET),
        lambda data: sign_bytes(pki.leaf.key, alg, data),
        {"x5c": [base64.b64encode(d).decode() for d in ders]},
    )


from cryptography.hazmat.primitives.serialization import Encoding  # noqa: E402

_DER = Encoding.DER


@pytest.fixture(scope="module")
def pki() -> TestPKI:
    return make_pki(key_type="ec256", now=NOW)


def test_forged_baseline_is_accepted(pki: TestPKI) -> None:
    env = parse_and_verify(mt.JWS_ENVELOPE, _forge_jws(pki, {}))
    assert env.target == TARGET


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        (
            {"crit": ["io.cncf.notary.signingScheme", "x-unknown"], "x-unknown": 1},
            "unknown critical",
        ),
        ({"crit": ["io.cncf.notary.signingScheme", "x-absent"]}, "marked critical but absent"),
        ({"crit": None}, "'crit' is missing"),
        ({"crit": []}, "'crit' is missing"),
        (
            {"crit": ["io.cncf.notary.expiry"], "io.cncf.notary.expiry": "2026-01-01T00:00:00Z"},
            "not marked critical: io.cncf.notary.signingScheme",
        ),
        (
            {"io.cncf.notary.expiry": "2026-01-01T00:00:00Z"},
            "not marked critical: io.cncf.notary.expiry",
        ),
        (
            {
                "crit": ["io.cncf.notary.signingScheme", "io.cncf.notary.expiry"],
                "io.cncf.notary.expiry": "2025-06-01T11:00:00Z",
            },
            "expiry is not after the signing time",
        ),
        (
            {
                "crit": ["io.cncf.notary.signingScheme", "io.cncf.notary.verificationPlugin"],
                "io.cncf.notary.verificationPlugin": "com.example.plugin",
            },
            "verification plugin",
        ),
        ({"cty": "application/json"}, "payload content type"),
        ({"cty": None}, "payload content type"),
        ({"io.cncf.notary.signingScheme": None}, "signingScheme is missing"),
        ({"io.cncf.notary.signingScheme": "notary.v2"}, "unsupported signing scheme"),
        ({"io.cncf.notary.signingTime": None}, "signingTime is required"),
        ({"io.cncf.notary.signingTime": "yesterday"}, "not an RFC 3339"),
        ({"io.cncf.notary.signingTime": "2025-06-01"}, "not an RFC 3339"),
        # Out of datetime's range once moved to UTC: a clear refusal, not an OverflowError.
        ({"io.cncf.notary.signingTime": "0001-01-01T00:00:00+01:00"}, "not a valid date-time"),
        ({"io.cncf.notary.signingTime": "9999-12-31T23:59:59-01:00"}, "not a valid date-time"),
        ({"io.cncf.notary.authenticSigningTime": "2025-06-01T12:00:00Z"}, "must not be present"),
        (
            {
                "io.cncf.notary.signingScheme": "notary.x509.signingAuthority",
                "crit": ["io.cncf.notary.signingScheme"],
            },
            "must not be present",
        ),
        (
            {
                "io.cncf.notary.signingScheme": "notary.x509.signingAuthority",
                "io.cncf.notary.signingTime": None,
                "io.cncf.notary.authenticSigningTime": "2025-06-01T12:00:00Z",
            },
            "not marked critical: io.cncf.notary.authenticSigningTime",
        ),
        ({"alg": "RS256"}, "'RS256' is not allowed"),
        ({"alg": "none"}, "'none' is not allowed"),
        ({"alg": "HS256"}, "'HS256' is not allowed"),
        ({"alg": None}, "'alg' is missing"),
    ],
)
def test_header_rules(pki: TestPKI, changes: dict[str, Any], message: str) -> None:
    with pytest.raises(VerificationError, match=message):
        parse_and_verify(mt.JWS_ENVELOPE, _forge_jws(pki, changes))


def test_signing_authority_scheme_is_accepted(pki: TestPKI) -> None:
    data = _forge_jws(
        pki,
        {
            "io.cncf.notary.signingScheme": "notary.x509.signingAuthority",
            "io.cncf.notary.signingTime": None,
            "io.cncf.notary.authenticSigningTime": "2025-06-01T12:00:00Z",
            "crit": ["io.cncf.notary.signingScheme", "io.cncf.notary.authenticSigningTime"],
        },
    )
    env = parse_and_verify(mt.JWS_ENVELOPE, data)
    assert env.signing_scheme is SigningScheme.SIGNING_AUTHORITY
    assert env.authentic_signing_time == NOW
    assert env.signing_time is None


def test_alg_inconsistent_with_the_key_fails_integrity() -> None:
    rsa = make_pki(key_type="rsa2048", now=NOW)
    # Correctly signed with PS384 by a 2048-bit key: a valid PSS signature, wrong algorithm.
    data = _forge_jws(rsa, {"alg": "PS384"}, alg_for_signing="PS384")
    env = parse_envelope(mt.JWS_ENVELOPE, data)
    with pytest.raises(VerificationError, match="alg PS384 does not match the signing key"):
        verify_integrity(env)


def test_leaf_not_first_in_chain_fails(pki: TestPKI) -> None:
    reversed_chain = [c.public_bytes(_DER) for c in reversed(pki.chain)]
    with pytest.raises(VerificationError, match=r"^integrity:"):
        parse_and_verify(mt.JWS_ENVELOPE, _forge_jws(pki, {}, chain=reversed_chain))


def test_unrelated_certificate_in_chain_fails(pki: TestPKI) -> None:
    other = make_pki(key_type="ec256", now=NOW, slot=5, name="other")
    chain = [pki.leaf.cert.public_bytes(_DER), other.root.cert.public_bytes(_DER)]
    with pytest.raises(VerificationError, match="is not issued by"):
        parse_and_verify(mt.JWS_ENVELOPE, _forge_jws(pki, {}, chain=chain))


def test_leaf_alone_without_its_root_fails(pki: TestPKI) -> None:
    with pytest.raises(VerificationError, match="not a self-signed"):
        parse_and_verify(
            mt.JWS_ENVELOPE, _forge_jws(pki, {}, chain=[pki.leaf.cert.public_bytes(_DER)])
        )


def test_missing_or_garbage_chain_fails(pki: TestPKI) -> None:
    with pytest.raises(VerificationError, match="certificate chain is missing"):
        parse_envelope(mt.JWS_ENVELOPE, _forge_jws(pki, {}, chain=[]))
    with pytest.raises(VerificationError, match="not a DER certificate"):
        parse_envelope(mt.JWS_ENVELOPE, _forge_jws(pki, {}, chain=[b"not a cert"]))


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (b"not json", "payload is not valid JSON"),
        (b"{}", "no targetArtifact"),
        (b'{"targetArtifact":{"digest":"sha256:00","size":1}}', "mediaType is missing"),
        (b'{"targetArtifact":{"mediaType":"m","size":1}}', "digest is missing"),
        (b'{"targetArtifact":{"mediaType":"m","digest":"sha256:00","size":"1"}}', "size"),
        (b'{"targetArtifact":{"mediaType":"m","digest":"sha256:00","size":true}}', "size"),
        (b'{"targetArtifact":{"mediaType":"m","digest":"sha256:00","size":-1}}', "size"),
        (
            b'{"targetArtifact":{"mediaType":"m","digest":"sha256:00","size":1,"annotations":{"a":1}}}',
            "annotations",
        ),
        (
            b'{"targetArtifact":{"mediaType":"m","digest":"sha256:00","size":1},'
            b'"targetArtifact":{"mediaType":"m","digest":"sha256:11","size":1}}',
            "duplicate key",
        ),
    ],
)
def test_payload_rules(pki: TestPKI, payload: bytes, message: str) -> None:
    with pytest.raises(VerificationError, match=message):
        parse_envelope(mt.JWS_ENVELOPE, _forge_jws(pki, {}, payload=payload))


def test_duplicate_protected_header_key_is_rejected(pki: TestPKI) -> None:
    doc = json.loads(_forge_jws(pki, {}))
    raw = jws.b64url_decode(doc["protected"], "protected")
    doc["protected"] = jws.b64url_encode(raw[:-1] + b',"alg":"ES256"}')
    with pytest.raises(VerificationError, match="duplicate key 'alg'"):
        parse_envelope(mt.JWS_ENVELOPE, json.dumps(doc).encode())


def test_protected_header_keys_differing_in_case_are_refused(pki: TestPKI) -> None:
    """notation reads "ALG" as alg (Go's struct matching): two of them are two readings."""
    env = _forge_jws(pki, {"ALG": "ES384"})
    with pytest.raises(VerificationError, match="both set field 'alg'"):
        parse_envelope(mt.JWS_ENVELOPE, env)
    expiry = _forge_jws(
        pki, {"io.cncf.notary.expiry": "2030-01-01T00:00:00Z", "IO.CNCF.NOTARY.EXPIRY": "x"}
    )
    with pytest.raises(VerificationError, match=r"both set field 'io\.cncf\.notary\.expiry'"):
        parse_envelope(mt.JWS_ENVELOPE, expiry)


def test_a_header_key_in_another_case_is_read_as_notation_reads_it(pki: TestPKI) -> None:
    env = _forge_jws(pki, {"alg": None, "ALG": algorithm_for_key(pki.leaf.key).name})
    assert parse_and_verify(mt.JWS_ENVELOPE, env).algorithm == algorithm_for_key(pki.leaf.key).name


def test_envelope_members_differing_in_case_are_refused(pki: TestPKI) -> None:
    doc = json.loads(_forge_jws(pki, {}))
    other = json.loads(_forge_jws(pki, {"io.cncf.notary.signingTime": "2025-06-02T12:00:00Z"}))
    doc["Protected"] = other["protected"]
    with pytest.raises(VerificationError, match="both set field 'protected'"):
        parse_envelope(mt.JWS_ENVELOPE, json.dumps(doc).encode())
    doc = json.loads(_forge_jws(pki, {}))
    doc["header"]["X5C"] = doc["header"]["x5c"]
    with pytest.raises(VerificationError, match="both set field 'x5c'"):
        parse_envelope(mt.JWS_ENVELOPE, json.dumps(doc).encode())


# --- COSE header rules ----------------------------------------------------------------------


def _forge_cose(pki: TestPKI, changes: dict[str | int, Any]) -> bytes:
    alg = algorithm_for_key(pki.leaf.key)
    header: dict[str | int, Any] = {
        1: alg.cose_id,
        2: ["io.cncf.notary.signingScheme"],
        3: "application/vnd.cncf.notary.payload.v1+json",
        "io.cncf.notary.signingScheme": "notary.x509",
        "io.cncf.notary.signingTime": cose.epoch(NOW),
    }
    for key, value in changes.items():
        if value is None:
            header.pop(key, None)
        else:
            header[key] = value
    return cose.assemble(
        header,
        payload_bytes(TARGET),
        lambda data: sign_bytes(pki.leaf.key, alg, data),
        {33: [c.public_bytes(_DER) for c in pki.chain]},
    )


def test_cose_forged_baseline_is_accepted(pki: TestPKI) -> None:
    env = parse_and_verify(mt.COSE_ENVELOPE, _forge_cose(pki, {}))
    assert env.signing_time == NOW
    assert env.format == "notation/cose"


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({2: ["io.cncf.notary.signingScheme", 99], 99: 1}, "unknown critical header 99"),
        ({2: ["io.cncf.notary.signingScheme", "x-absent"]}, "marked critical but absent"),
        ({1: -257}, "is not allowed"),  # RS256
        ({1: 5}, "is not allowed"),  # HMAC 256/256
        ({1: "PS256"}, "is not allowed"),
        ({"io.cncf.notary.signingTime": cbor2.CBORTag(0, "2025-06-01T12:00:00Z")}, "tag 1"),
        ({"io.cncf.notary.signingTime": 1748779200}, "tag 1"),
        ({3: None}, "payload content type"),
    ],
)
def test_cose_header_rules(pki: TestPKI, changes: dict[str | int, Any], message: str) -> None:
    with pytest.raises(VerificationError, match=message):
        parse_and_verify(mt.COSE_ENVELOPE, _forge_cose(pki, changes))


def test_cose_duplicate_protected_key_is_rejected(pki: TestPKI) -> None:
    message = cbor2.loads(_forge_cose(pki, {}))
    protected = message.value[0]
    # Append a second "alg" entry by hand: bump the map length and add 01 26 (alg: -7).
    assert protected[0] & 0xE0 == 0xA0
    assert protected[0] & 0x1F < 23
    dup = bytes([protected[0] + 1]) + protected[1:] + b"\x01\x26"
    data = cbor2.dumps(cbor2.CBORTag(18, [dup, *message.value[1:]]))
    with pytest.raises(VerificationError, match="Duplicate map key"):
        parse_envelope(mt.COSE_ENVELOPE, data)


def _cert_with_serial_bytes(serial_der: bytes) -> bytes:
    """A self-signed certificate whose serial INTEGER content is replaced by ``serial_der``
    (same length, so the DER stays well formed; the signature no longer matters here)."""
    from cryptography import x509 as cx509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = cx509.Name([cx509.NameAttribute(NameOID.COMMON_NAME, "serial test")])
    cert = (
        cx509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(0x0A0B0C0D0E0F)
        .not_valid_before(NOW - timedelta(days=1))
        .not_valid_after(NOW + timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    der = cert.public_bytes(serialization.Encoding.DER)
    original = bytes.fromhex("02060a0b0c0d0e0f")
    assert der.count(original) == 1
    return der.replace(original, b"\x02\x06" + serial_der)


def test_negative_serial_number_is_refused_as_go_refuses_it() -> None:
    """Go's crypto/x509 (notation's) refuses a negative serial since Go 1.23; so do we."""
    from auditor.notary.envelope import CERTIFICATE_ERRORS, load_certificate

    positive = load_certificate(_cert_with_serial_bytes(bytes.fromhex("0a0b0c0d0e0f")))
    assert positive.serial_number == 0x0A0B0C0D0E0F
    with pytest.raises(CERTIFICATE_ERRORS, match="negative serial number"):
        load_certificate(_cert_with_serial_bytes(bytes.fromhex("8a0b0c0d0e0f")))
