"""Property-based tests (hypothesis) for the parsers of hostile content.

Two properties:

* any input to the manifest/index, JSON, JWS and COSE parsers yields a value or an error of the
  family (``AuditorError``), never anything else;
* a mutation of anything a verdict depends on, in a valid signature (its signed bytes, its
  leaf certificate) or in its signature manifest (the subject's digest, the envelope's
  descriptor), in place or as a second key Go would read instead, never verifies. What no
  verdict depends on is left alone (the unsigned signing agent, the manifest's config and
  annotations, the subject's size and media type): changing it leaves a valid signature valid
  for notation too.
"""

from __future__ import annotations

import base64
import contextlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import cbor2
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from auditor import gojson
from auditor.errors import AuditorError
from auditor.model import Descriptor, SignatureStatus
from auditor.notary import cose, jws
from auditor.notary.envelope import parse_envelope
from auditor.notary.revocation import RevocationChecker
from auditor.notary.sign import sign_cose, sign_jws
from auditor.notary.trustpolicy import parse_trust_policy
from auditor.notary.verifier import Verifier
from auditor.oci import mediatypes as mt
from auditor.oci.digest import compute_digest
from auditor.oci.manifest import ImageManifest, parse_manifest
from devkit.testpki import TestPKI, make_pki

PROPERTY = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# JSON values, biased towards the keys and shapes the parsers look at.
KEYS = st.sampled_from(
    [
        "schemaVersion",
        "mediaType",
        "manifests",
        "Manifests",
        "config",
        "layers",
        "subject",
        "digest",
        "size",
        "platform",
        "os",
        "architecture",
        "annotations",
        "artifactType",
        "protected",
        "payload",
        "signature",
        "header",
        "x5c",
        "targetArtifact",
        "MEDIATYPE",
        "manife\u017fts",
        "\u017fize",
    ]
) | st.text(max_size=8)
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.sampled_from([mt.OCI_INDEX, mt.OCI_MANIFEST, "sha256:" + "a" * 64, 2])
    | st.text(max_size=20)
)
JSON_VALUES = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(KEYS, inner, max_size=6),
    max_leaves=30,
)


def _family(job: Callable[[], object]) -> None:
    """``job`` returns or raises an AuditorError; anything else fails the property."""
    with contextlib.suppress(AuditorError):
        job()


@PROPERTY
@given(st.binary(max_size=2048))
def test_any_bytes_are_a_manifest_or_a_family_error(data: bytes) -> None:
    _family(lambda: parse_manifest(data))
    _family(lambda: parse_manifest(data, mt.OCI_INDEX))
    _family(lambda: gojson.loads(data, "doc"))


@PROPERTY
@given(JSON_VALUES, st.sampled_from([None, mt.OCI_INDEX, mt.OCI_MANIFEST, mt.DOCKER_MANIFEST]))
def test_any_json_is_a_manifest_or_a_family_error(doc: Any, media_type: str | None) -> None:
    raw = json.dumps(doc, ensure_ascii=False).encode("utf-8", "surrogatepass")
    _family(lambda: parse_manifest(raw, media_type))


@PROPERTY
@given(st.binary(max_size=2048))
def test_any_bytes_are_an_envelope_or_a_family_error(data: bytes) -> None:
    _family(lambda: parse_envelope(mt.JWS_ENVELOPE, data))
    _family(lambda: parse_envelope(mt.COSE_ENVELOPE, data))


def _b64(value: Any) -> str:
    raw = value if isinstance(value, bytes) else json.dumps(value).encode()
    return jws.b64url_encode(raw)


@PROPERTY
@given(JSON_VALUES, JSON_VALUES, JSON_VALUES, st.binary(max_size=64))
def test_any_jws_shape_is_an_envelope_or_a_family_error(
    protected: Any, payload: Any, header: Any, signature: bytes
) -> None:
    doc = {
        "protected": _b64(protected),
        "payload": _b64(payload),
        "header": header,
        "signature": jws.b64url_encode(signature),
    }
    _family(lambda: parse_envelope(mt.JWS_ENVELOPE, json.dumps(doc).encode()))


CBOR_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**64), max_value=2**64)
    | st.binary(max_size=16)
    | st.text(max_size=12)
    | st.sampled_from([1, 2, 3, 33, -7, -37, "io.cncf.notary.signingScheme"]),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.integers(-40, 40) | st.text(max_size=6), inner, max_size=5)
        | st.builds(cbor2.CBORTag, st.sampled_from([0, 1, 18, 55799]), inner)
    ),
    max_leaves=25,
)


@PROPERTY
@given(CBOR_VALUES, CBOR_VALUES, st.binary(max_size=64), st.binary(max_size=64))
def test_any_cose_shape_is_an_envelope_or_a_family_error(
    protected: Any, unprotected: Any, payload: bytes, signature: bytes
) -> None:
    try:
        protected_raw = cbor2.dumps(protected)
        data = cbor2.dumps(cbor2.CBORTag(18, [protected_raw, unprotected, payload, signature]))
    except (cbor2.CBOREncodeError, TypeError, ValueError):
        return  # hypothesis built something cbor2 itself cannot encode
    _family(lambda: parse_envelope(mt.COSE_ENVELOPE, data))


# --- mutations of a valid signature ----------------------------------------------------------

NOW = datetime.now(UTC).replace(microsecond=0)
SUBJECT = Descriptor(mt.OCI_MANIFEST, compute_digest(b"the subject"), 1234)


@dataclass(frozen=True)
class Signed:
    """One valid signature: its envelope, its signature manifest and a verifier that accepts it."""

    verifier: Verifier
    envelope_type: str
    envelope: bytes
    manifest: dict[str, Any]

    def verdict(self, envelope: bytes, manifest: dict[str, Any] | None = None) -> SignatureStatus:
        doc = manifest if manifest is not None else self.with_envelope(envelope)
        raw = json.dumps(doc).encode()
        try:
            parsed = parse_manifest(raw)
        except AuditorError:
            return SignatureStatus.INVALID
        assert isinstance(parsed, ImageManifest)
        result = self.verifier.verify("127.0.0.1:5000/app", SUBJECT, parsed, envelope, "sha256:x")
        return result.status

    def with_envelope(self, envelope: bytes) -> dict[str, Any]:
        doc: dict[str, Any] = json.loads(json.dumps(self.manifest))
        doc["layers"][0]["digest"] = compute_digest(envelope)
        doc["layers"][0]["size"] = len(envelope)
        return doc


def _signed(tmp: Path, pki: TestPKI, envelope_type: str) -> Signed:
    pki.write_trust_store(tmp / "store", "props")
    policy = parse_trust_policy(
        json.dumps(
            {
                "version": "1.0",
                "trustPolicies": [
                    {
                        "name": "all",
                        "registryScopes": ["*"],
                        "signatureVerification": {"level": "strict"},
                        "trustStores": ["ca:props"],
                        "trustedIdentities": ["*"],
                    }
                ],
            }
        )
    )
    verifier = Verifier(policy, tmp / "store", revocation=RevocationChecker())
    sign = sign_jws if envelope_type == mt.JWS_ENVELOPE else sign_cose
    envelope = sign(SUBJECT, pki.leaf.key, pki.chain, signing_time=NOW)
    manifest = {
        "schemaVersion": 2,
        "mediaType": mt.OCI_MANIFEST,
        "artifactType": mt.NOTARY_SIGNATURE,
        "config": {"mediaType": mt.OCI_EMPTY, "digest": compute_digest(b"{}"), "size": 2},
        "layers": [
            {"mediaType": envelope_type, "digest": compute_digest(envelope), "size": len(envelope)}
        ],
        "subject": {
            "mediaType": SUBJECT.media_type,
            "digest": SUBJECT.digest,
            "size": SUBJECT.size,
        },
    }
    signed = Signed(verifier, envelope_type, envelope, manifest)
    assert signed.verdict(envelope) is SignatureStatus.VALID
    return signed


@pytest.fixture(scope="module")
def pki() -> TestPKI:
    return make_pki(key_type="ec256", name="properties", now=NOW, validity=timedelta(days=30))


@pytest.fixture(scope="module")
def signed_jws(tmp_path_factory: pytest.TempPathFactory, pki: TestPKI) -> Signed:
    return _signed(tmp_path_factory.mktemp("jws"), pki, mt.JWS_ENVELOPE)


@pytest.fixture(scope="module")
def signed_cose(tmp_path_factory: pytest.TempPathFactory, pki: TestPKI) -> Signed:
    return _signed(tmp_path_factory.mktemp("cose"), pki, mt.COSE_ENVELOPE)


MUTATION = st.tuples(
    st.sampled_from(["flip", "drop", "insert", "truncate"]),
    st.integers(min_value=0, max_value=10**6),
    st.integers(min_value=1, max_value=255),
)


def mutate(data: bytes, mutation: tuple[str, int, int]) -> bytes:
    kind, where, value = mutation
    if not data:
        return bytes([value])
    at = where % len(data)
    if kind == "flip":
        return data[:at] + bytes([data[at] ^ value]) + data[at + 1 :]
    if kind == "drop":
        return data[:at] + data[at + 1 :]
    if kind == "insert":
        return data[:at] + bytes([value]) + data[at:]
    return data[:at]


@PROPERTY
@given(st.sampled_from(["protected", "payload", "signature", "leaf"]), MUTATION)
def test_mutated_jws_never_verifies(
    signed_jws: Signed, part: str, mutation: tuple[str, int, int]
) -> None:
    doc = json.loads(signed_jws.envelope)
    if part == "leaf":
        leaf = base64.b64decode(doc["header"]["x5c"][0])
        changed = mutate(leaf, mutation)
        doc["header"]["x5c"][0] = base64.b64encode(changed).decode()
    else:
        original = jws.b64url_decode(doc[part], part)
        changed = mutate(original, mutation)
        doc[part] = jws.b64url_encode(changed)
    envelope = json.dumps(doc).encode()
    assert signed_jws.verdict(envelope) is not SignatureStatus.VALID


@PROPERTY
@given(st.sampled_from(["protected", "payload", "signature", "leaf"]), MUTATION)
def test_mutated_cose_never_verifies(
    signed_cose: Signed, part: str, mutation: tuple[str, int, int]
) -> None:
    tag = cbor2.loads(signed_cose.envelope)
    protected, unprotected, payload, signature = tag.value
    if part == "protected":
        protected = mutate(protected, mutation)
    elif part == "payload":
        payload = mutate(payload, mutation)
    elif part == "signature":
        signature = mutate(signature, mutation)
    else:
        chain = list(unprotected[cose.LABEL_X5CHAIN])
        chain[0] = mutate(chain[0], mutation)
        unprotected = {**unprotected, cose.LABEL_X5CHAIN: chain}
    envelope = cbor2.dumps(cbor2.CBORTag(18, [protected, unprotected, payload, signature]))
    assert signed_cose.verdict(envelope) is not SignatureStatus.VALID


MANIFEST_FIELDS = st.sampled_from(
    [
        ("subject", "digest"),
        ("layer", "digest"),
        ("layer", "size"),
        ("layer", "mediaType"),
    ]
)


def _changed(value: Any, mutation: tuple[str, int, int]) -> Any:
    if isinstance(value, int):
        return value + 1 + mutation[1] % 1000
    text = mutate(value.encode(), mutation).decode("utf-8", "replace")
    return text if text != value else value + "x"


@PROPERTY
@given(
    st.sampled_from(["jws", "cose"]),
    MANIFEST_FIELDS,
    MUTATION,
    st.booleans(),
)
def test_mutated_signature_manifest_never_verifies(
    signed_jws: Signed,
    signed_cose: Signed,
    which: str,
    target: tuple[str, str],
    mutation: tuple[str, int, int],
    case_variant: bool,
) -> None:
    """Each field a verdict depends on, changed in place or added again under a key that Go
    would read instead (``Subject``, ``Layers``): never valid."""
    signed = signed_jws if which == "jws" else signed_cose
    doc = json.loads(json.dumps(signed.manifest))
    section, name = target
    holder = doc["subject"] if section == "subject" else doc["layers"][0]
    if case_variant:
        twin = dict(holder)
        twin[name] = _changed(holder[name], mutation)
        if section == "subject":
            doc["Subject"] = twin
        else:
            doc["Layers"] = [twin]
    else:
        holder[name] = _changed(holder[name], mutation)
    assert signed.verdict(signed.envelope, doc) is not SignatureStatus.VALID
