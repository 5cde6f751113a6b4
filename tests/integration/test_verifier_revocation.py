"""The verifier's revocation step against a real OCSP responder on 127.0.0.1.

The signature is made with the notation e2e OCSP test PKI (leaf.key + certchain_with_ocsp.pem),
whose leaf names http://localhost:10087 as its OCSP responder; the checker rewrites that URL to
the local responder.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from auditor.model import Descriptor, SignatureStatus
from auditor.notary.revocation import RevocationChecker
from auditor.notary.sign import sign_jws, signature_manifest
from auditor.notary.trustpolicy import parse_trust_policy
from auditor.notary.verifier import Verifier
from auditor.oci import mediatypes as mt
from auditor.oci.manifest import ImageManifest, parse_manifest
from tests.support.pki_servers import (
    OCSP_DIR,
    OcspResponder,
    load_cert,
    load_chain,
    load_key,
    serve,
)

SUBJECT = Descriptor(
    media_type="application/vnd.oci.image.manifest.v1+json",
    digest="sha256:" + "12" * 32,
    size=321,
)


def _policy(level: str, **override: str) -> object:
    sv: dict[str, object] = {"level": level}
    if override:
        sv["override"] = override
    return parse_trust_policy(
        json.dumps(
            {
                "version": "1.0",
                "trustPolicies": [
                    {
                        "name": "ocsp",
                        "registryScopes": ["*"],
                        "signatureVerification": sv,
                        "trustStores": ["ca:ocsp-root"],
                        "trustedIdentities": ["x509.subject: C=US, ST=State, O=Organization"],
                    }
                ],
            }
        )
    )


@pytest.fixture
def responder() -> Iterator[OcspResponder]:
    chain = load_chain(OCSP_DIR / "certchain_with_ocsp.pem")
    server = OcspResponder(
        issuer=load_cert(OCSP_DIR / "root.crt"),
        responder_cert=load_cert(OCSP_DIR / "ocsp.crt"),
        responder_key=load_key(OCSP_DIR / "ocsp.key"),
        answers={chain[0].serial_number: "good"},
    )
    with serve(responder=server):
        yield server


@pytest.fixture
def store(tmp_path: Path) -> Path:
    folder = tmp_path / "x509" / "ca" / "ocsp-root"
    folder.mkdir(parents=True)
    (folder / "root.crt").write_bytes((OCSP_DIR / "root.crt").read_bytes())
    return tmp_path


@pytest.fixture(scope="module")
def signed() -> tuple[ImageManifest, bytes]:
    chain = load_chain(OCSP_DIR / "certchain_with_ocsp.pem")
    key = load_key(OCSP_DIR / "leaf.key")
    envelope = sign_jws(SUBJECT, key, chain, signing_time=datetime.now(UTC))  # type: ignore[arg-type]
    raw, _ = signature_manifest(SUBJECT, envelope, mt.JWS_ENVELOPE)
    manifest = parse_manifest(raw)
    assert isinstance(manifest, ImageManifest)
    return manifest, envelope


def _verify(
    policy: object, store: Path, responder: OcspResponder, signed: tuple[ImageManifest, bytes]
) -> tuple[SignatureStatus, str | None, str, tuple[str, ...]]:
    checker = RevocationChecker(
        url_rewrite=lambda url: url.replace("http://localhost:10087", responder.base)
    )
    with checker:
        verifier = Verifier(policy, store, revocation=checker)  # type: ignore[arg-type]
        result = verifier.verify(
            "r.example/app", SUBJECT, signed[0], signed[1], "sha256:" + "9" * 64
        )
    return result.status, result.failed_validation, result.reason, result.warnings


def test_good_ocsp_answer_verifies(
    store: Path, responder: OcspResponder, signed: tuple[ImageManifest, bytes]
) -> None:
    status, failed, reason, _ = _verify(_policy("strict"), store, responder, signed)
    assert status is SignatureStatus.VALID, reason
    assert failed is None
    assert len(responder.hits) == 1


def test_revoked_signing_certificate_is_invalid_under_strict(
    store: Path, responder: OcspResponder, signed: tuple[ImageManifest, bytes]
) -> None:
    responder.answers = dict.fromkeys(responder.answers, "revoked")
    status, failed, reason, _ = _verify(_policy("strict"), store, responder, signed)
    assert status is SignatureStatus.INVALID
    assert failed == "revocation"
    assert "is revoked" in reason


def test_revoked_is_a_warning_under_permissive(
    store: Path, responder: OcspResponder, signed: tuple[ImageManifest, bytes]
) -> None:
    responder.answers = dict.fromkeys(responder.answers, "revoked")
    status, _, _, warnings = _verify(_policy("permissive"), store, responder, signed)
    assert status is SignatureStatus.VALID
    assert any(w.startswith('revocation was set to "log"') for w in warnings)


def test_unreachable_responder_is_an_error_when_enforced(
    store: Path, responder: OcspResponder, signed: tuple[ImageManifest, bytes]
) -> None:
    responder.mode = "http500"
    status, failed, reason, _ = _verify(_policy("strict"), store, responder, signed)
    assert status is SignatureStatus.ERROR
    assert failed == "revocation"
    assert "revocation status is unknown" in reason
    skipped = _verify(_policy("strict", revocation="skip"), store, responder, signed)
    assert skipped[0] is SignatureStatus.VALID
