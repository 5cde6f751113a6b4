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


# --- URLs from signed material: only for anchored chains, bounded in time and number --------


def _checker(base: str, **kwargs: object) -> RevocationChecker:
    return RevocationChecker(
        url_rewrite=lambda url: url.replace("http://localhost:10087", base),
        **kwargs,  # type: ignore[arg-type]
    )


def test_unanchored_chain_urls_are_not_fetched(
    tmp_path: Path, responder: OcspResponder, signed: tuple[ImageManifest, bytes]
) -> None:
    """The trust store holds another root: the envelope's OCSP URL is the signer's to choose,
    so nothing is fetched; under ``audit`` that changes nothing (both are logged)."""
    from tests.support.pki_servers import CRL_DIR

    other = tmp_path / "x509" / "ca" / "ocsp-root"
    other.mkdir(parents=True)
    (other / "root.crt").write_bytes((CRL_DIR / "root.crt").read_bytes())
    with _checker(responder.base) as checker:
        verifier = Verifier(_policy("audit"), tmp_path, revocation=checker)  # type: ignore[arg-type]
        result = verifier.verify(
            "r.example/app", SUBJECT, signed[0], signed[1], "sha256:" + "9" * 64
        )
    assert responder.hits == []
    assert result.status is SignatureStatus.VALID
    assert any("OCSP/CRL URLs are not fetched" in w for w in result.warnings)


def test_revocation_fetches_are_capped_per_run(
    store: Path, responder: OcspResponder, signed: tuple[ImageManifest, bytes]
) -> None:
    with _checker(responder.base, max_fetches=1) as checker:
        verifier = Verifier(_policy("strict"), store, revocation=checker)  # type: ignore[arg-type]
        first = verifier.verify(
            "r.example/app", SUBJECT, signed[0], signed[1], "sha256:" + "8" * 64
        )
        second = verifier.verify(
            "r.example/app", SUBJECT, signed[0], signed[1], "sha256:" + "7" * 64
        )
    assert first.status is SignatureStatus.VALID, first.reason
    assert second.status is SignatureStatus.ERROR
    assert "limits.max_revocation_fetches" in second.reason
    assert len(responder.hits) == 1


def test_dripping_responder_ends_at_its_deadline(
    store: Path, signed: tuple[ImageManifest, bytes]
) -> None:
    """Scripted: an OCSP answer dripping one byte every 0.2 s (inside the 1 s read timeout)."""
    import time

    from tests.support.hostile import Response, hostile_server

    with hostile_server(lambda r: Response(200, [], b"0" * 200, drip=0.2)) as slow:
        started = time.monotonic()
        with _checker(slow.url, ocsp_timeout=1.0, crl_timeout=1.0) as checker:
            verifier = Verifier(_policy("strict"), store, revocation=checker)  # type: ignore[arg-type]
            result = verifier.verify(
                "r.example/app", SUBJECT, signed[0], signed[1], "sha256:" + "6" * 64
            )
        elapsed = time.monotonic() - started
        assert len(slow.requests) == 1
    assert result.status is SignatureStatus.ERROR
    assert "no complete answer within 1s" in result.reason
    assert elapsed < 5
