"""What ``auditor sign`` produces, field by field against the references.

* Envelopes: the header fields of notation-core-go's JWS and COSE conformance vectors
  (../shared/fixtures/notation-core-go/signature/{jws,cose}/testdata/conformance.json), less
  the vectors' own made-up ``signedKey*``/``signedCritKey1`` test fields, are exactly the
  fields our envelopes carry, with the same criticality.
* Signature manifests: the reference signature manifests notation pushed for its e2e suite
  (../shared/fixtures/notation-e2e) have the same media types, config, annotation keys and
  subject shape as ours.
"""

from __future__ import annotations

import base64
import io
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import cbor2
import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding, load_pem_private_key

from auditor.model import Descriptor
from auditor.notary.crypto import PrivateKey
from auditor.notary.sign import sign_cose, sign_jws, signature_manifest
from auditor.oci import mediatypes as mt
from tests.support.paths import FIXTURES

CONFORMANCE = FIXTURES / "notation-core-go" / "signature"
E2E = FIXTURES / "notation-e2e"
LOCALKEYS = E2E / "config" / "localkeys"
NOW = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
SUBJECT = Descriptor(mt.OCI_INDEX, "sha256:" + "ab" * 32, 1234)

pytestmark = pytest.mark.skipif(not CONFORMANCE.is_dir(), reason="../shared/fixtures not present")


def _test_only(name: object) -> bool:
    """The conformance vectors add made-up fields to prove unknown headers survive."""
    return isinstance(name, str) and name.startswith(("signedKey", "signedCritKey"))


def _e2e_key() -> tuple[PrivateKey, tuple[x509.Certificate, ...]]:
    key = load_pem_private_key((LOCALKEYS / "e2e.key").read_bytes(), None)
    assert not isinstance(key, str)
    cert = x509.load_pem_x509_certificate((LOCALKEYS / "e2e.crt").read_bytes())
    return key, (cert,)  # type: ignore[return-value]


def _b64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def test_jws_envelope_has_the_conformance_vector_fields() -> None:
    vector = json.loads((CONFORMANCE / "jws" / "testdata" / "conformance.json").read_text())
    ref_protected = json.loads(_b64url(vector["protected"]))
    key, chain = _e2e_key()
    ours = json.loads(sign_jws(SUBJECT, key, chain, signing_time=NOW, expiry=NOW + timedelta(1)))

    assert set(ours) == set(vector)  # payload, protected, header, signature: nothing else
    protected = json.loads(_b64url(ours["protected"]))
    assert {k for k in ref_protected if not _test_only(k)} == set(protected)
    assert [c for c in ref_protected["crit"] if not _test_only(c)] == protected["crit"]
    assert protected["cty"] == ref_protected["cty"] == mt.NOTARY_PAYLOAD
    assert protected["io.cncf.notary.signingScheme"] == "notary.x509"
    # Unprotected: the vector's signing agent, plus the chain the vector leaves to the signer.
    assert set(ours["header"]) == set(vector["header"]) | {"x5c"}
    assert ours["header"]["x5c"] == [
        base64.b64encode(c.public_bytes(Encoding.DER)).decode()
        for c in chain
    ]
    payload = json.loads(_b64url(ours["payload"]))
    assert payload == {
        "targetArtifact": {"mediaType": mt.OCI_INDEX, "digest": SUBJECT.digest, "size": 1234}
    }


def _tagged(data: bytes) -> Any:
    """CBOR with tag-1 times kept visible as ("tag 1", seconds)."""
    decoder = cbor2.CBORDecoder(
        io.BytesIO(data), semantic_decoders={1: lambda _dec, value: ("tag 1", value)}
    )
    return decoder.decode()


def test_cose_envelope_has_the_conformance_vector_fields() -> None:
    vector = json.loads((CONFORMANCE / "cose" / "testdata" / "conformance.json").read_text())
    ref_unprotected = cbor2.loads(bytes.fromhex(vector["unprotectedHeaders"]["cborHex"]))
    ref_message = cbor2.loads(bytes.fromhex(vector["expectedOutput"]["cborHex"]))
    key, chain = _e2e_key()
    raw = sign_cose(SUBJECT, key, chain, signing_time=NOW, expiry=NOW + timedelta(1))
    message = cbor2.loads(raw)

    assert message.tag == ref_message.tag == 18  # COSE_Sign1_Tagged
    assert len(message.value) == len(ref_message.value) == 4
    # Decode the times as tags, not as datetimes, to compare the encoding itself.
    protected = _tagged(message.value[0])
    ref_protected = _tagged(bytes.fromhex(vector["protectedHeaders"]["cborHex"]))
    assert {k for k in ref_protected if not _test_only(k)} == set(protected)
    assert sorted(c for c in ref_protected[2] if not _test_only(c)) == sorted(protected[2])
    for label in ("io.cncf.notary.signingTime", "io.cncf.notary.expiry"):
        assert protected[label][0] == ref_protected[label][0] == "tag 1"  # epoch date-time
    assert protected[3] == ref_protected[3]
    assert protected["io.cncf.notary.signingScheme"] == "notary.x509"
    unprotected = message.value[1]
    assert set(unprotected) == set(ref_unprotected) | {33}  # + x5chain (label 33)
    assert len(unprotected[33]) == len(chain)  # the chain, leaf first


def _notation_signature_manifests() -> list[dict[str, Any]]:
    found = []
    for blob in sorted((E2E / "registry" / "oci_layout").glob("*/blobs/sha256/*")):
        if blob.stat().st_size > 4096:
            continue
        try:
            doc = json.loads(blob.read_bytes())
        except ValueError:
            continue
        if (
            isinstance(doc, dict)
            and doc.get("config", {}).get("mediaType") == mt.NOTARY_SIGNATURE
            and "subject" in doc
            and doc["layers"][0]["mediaType"] in (mt.JWS_ENVELOPE, mt.COSE_ENVELOPE)
        ):  # e2e-invalid-signature's "envelope" is a text file on purpose: not a reference
            found.append(doc)
    return found


@pytest.mark.parametrize("media_type", [mt.JWS_ENVELOPE, mt.COSE_ENVELOPE])
def test_signature_manifest_matches_notations_field_by_field(media_type: str) -> None:
    references = _notation_signature_manifests()
    assert len(references) >= 5
    key, chain = _e2e_key()
    sign = sign_jws if media_type == mt.JWS_ENVELOPE else sign_cose
    envelope = sign(SUBJECT, key, chain, signing_time=NOW)
    raw, blobs = signature_manifest(SUBJECT, envelope, media_type, created=NOW)
    ours = json.loads(raw)
    for ref in references:
        assert set(ours) == set(ref)
        assert ours["mediaType"] == ref["mediaType"] == mt.OCI_MANIFEST
        assert ours["config"] == ref["config"]  # {} under the notary signature media type
        assert len(ours["layers"]) == len(ref["layers"]) == 1
        assert set(ours["layers"][0]) == set(ref["layers"][0])
        assert set(ours["subject"]) == set(ref["subject"]) == {"mediaType", "digest", "size"}
        assert set(ours["annotations"]) == set(ref["annotations"])
        assert len(ours["annotations"]["org.opencontainers.image.created"]) == len(
            ref["annotations"]["org.opencontainers.image.created"]
        )
    assert ours["layers"][0]["mediaType"] == media_type
    assert ours["subject"] == {"mediaType": mt.OCI_INDEX, "digest": SUBJECT.digest, "size": 1234}
    # The e2e certificate's thumbprint is exactly what notation wrote for it.
    e2e_ref = next(r for r in references if "e38aea13" in r["annotations"][
        "io.cncf.notary.x509chain.thumbprint#S256"])
    assert ours["annotations"]["io.cncf.notary.x509chain.thumbprint#S256"] == (
        e2e_ref["annotations"]["io.cncf.notary.x509chain.thumbprint#S256"]
    )
    assert set(blobs) == {ours["config"]["digest"], ours["layers"][0]["digest"]}
