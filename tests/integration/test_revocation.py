"""Revocation against real OCSP / CRL servers on 127.0.0.1, using the notation e2e test PKI."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.x509.oid import NameOID

from auditor.notary.revocation import RevocationChecker, RevocationStatus
from tests.support.pki_servers import (
    CRL_DIR,
    OCSP_DIR,
    CrlServer,
    OcspResponder,
    crl_bytes,
    load_cert,
    load_chain,
    load_key,
    serve,
)

CLOSED = "http://127.0.0.1:9"  # discard port: nothing listens, the connection is refused


def _rewriter(mapping: dict[str, str]) -> Callable[[str], str]:
    def rewrite(url: str) -> str:
        for prefix, target in mapping.items():
            if url.startswith(prefix):
                return target + url[len(prefix) :]
        raise AssertionError(f"test would leave 127.0.0.1: {url}")

    return rewrite


@pytest.fixture
def ocsp_chain() -> list[x509.Certificate]:
    return load_chain(OCSP_DIR / "certchain_with_ocsp.pem")


@pytest.fixture
def responder(ocsp_chain: list[x509.Certificate]) -> Iterator[OcspResponder]:
    leaf = ocsp_chain[0]
    server = OcspResponder(
        issuer=load_cert(OCSP_DIR / "root.crt"),
        responder_cert=load_cert(OCSP_DIR / "ocsp.crt"),
        responder_key=load_key(OCSP_DIR / "ocsp.key"),
        answers={leaf.serial_number: "good"},
    )
    with serve(responder=server):
        yield server


def _ocsp_checker(responder: OcspResponder, cache: Path | None = None) -> RevocationChecker:
    return RevocationChecker(
        cache_dir=cache,
        url_rewrite=_rewriter({"http://localhost:10087": responder.base}),
    )


def test_ocsp_good_from_delegated_responder(
    responder: OcspResponder, ocsp_chain: list[x509.Certificate]
) -> None:
    with _ocsp_checker(responder) as checker:
        result = checker.check_chain(ocsp_chain)
    assert result.status is RevocationStatus.GOOD
    assert [c.status for c in result.certificates] == [
        RevocationStatus.GOOD,
        RevocationStatus.NON_REVOCABLE,
    ]
    assert result.certificates[0].method == "ocsp"
    assert len(responder.hits) == 1


def test_ocsp_good_signed_by_issuer_itself(
    responder: OcspResponder, ocsp_chain: list[x509.Certificate]
) -> None:
    responder.responder_cert = load_cert(OCSP_DIR / "root.crt")
    responder.responder_key = load_key(OCSP_DIR / "root.key")
    with _ocsp_checker(responder) as checker:
        assert checker.check_chain(ocsp_chain).status is RevocationStatus.GOOD


def test_ocsp_revoked(responder: OcspResponder, ocsp_chain: list[x509.Certificate]) -> None:
    responder.answers[ocsp_chain[0].serial_number] = "revoked"
    with _ocsp_checker(responder) as checker:
        result = checker.check_chain(ocsp_chain)
    assert result.status is RevocationStatus.REVOKED
    assert "CN=LeafCert" in result.reason()
    assert "is revoked" in result.reason()


def test_ocsp_revoked_after_authentic_signing_time_is_good(
    responder: OcspResponder, ocsp_chain: list[x509.Certificate]
) -> None:
    responder.answers[ocsp_chain[0].serial_number] = "revoked"
    signed = responder.revoked_at - timedelta(days=1)
    with _ocsp_checker(responder) as checker:
        assert checker.check_chain(ocsp_chain, signing_time=signed).status is RevocationStatus.GOOD
        later = responder.revoked_at + timedelta(days=1)
        result = checker.check_chain(ocsp_chain, signing_time=later)
        assert result.status is RevocationStatus.REVOKED


def test_ocsp_unknown_certificate(
    responder: OcspResponder, ocsp_chain: list[x509.Certificate]
) -> None:
    responder.answers.clear()
    with _ocsp_checker(responder) as checker:
        result = checker.check_chain(ocsp_chain)
    assert result.status is RevocationStatus.UNKNOWN
    assert "revocation status is unknown" in result.reason()


def _self_signed_impostor() -> tuple[x509.Certificate, object]:
    key = load_key(CRL_DIR / "leaf.key")
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "impostor")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(7)
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(
            x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.OCSP_SIGNING]), critical=True
        )
        .sign(key, hashes.SHA256())
    )
    return cert, key


def test_ocsp_response_from_unauthorized_signer_is_not_trusted(
    responder: OcspResponder, ocsp_chain: list[x509.Certificate]
) -> None:
    cert, key = _self_signed_impostor()
    responder.responder_cert = cert
    responder.responder_key = key  # type: ignore[assignment]
    with _ocsp_checker(responder) as checker:
        result = checker.check_chain(ocsp_chain)
    assert result.status is RevocationStatus.UNKNOWN
    assert "not signed by the issuer" in result.certificates[0].detail


def test_ocsp_stale_response_is_unknown(
    responder: OcspResponder, ocsp_chain: list[x509.Certificate]
) -> None:
    responder.this_update_offset = timedelta(hours=-3)
    with _ocsp_checker(responder) as checker:
        result = checker.check_chain(ocsp_chain)
    assert result.status is RevocationStatus.UNKNOWN
    assert "expired" in result.certificates[0].detail


@pytest.mark.parametrize("mode", ["http500", "garbage", "try_later"])
def test_ocsp_broken_responder_is_unknown(
    responder: OcspResponder, ocsp_chain: list[x509.Certificate], mode: str
) -> None:
    responder.mode = mode  # type: ignore[assignment]
    with _ocsp_checker(responder) as checker:
        assert checker.check_chain(ocsp_chain).status is RevocationStatus.UNKNOWN


def test_ocsp_unreachable_is_unknown_within_the_timeout(
    ocsp_chain: list[x509.Certificate],
) -> None:
    checker = RevocationChecker(
        ocsp_timeout=0.5, url_rewrite=_rewriter({"http://localhost:10087": CLOSED})
    )
    started = time.monotonic()
    with checker:
        result = checker.check_chain(ocsp_chain)
    assert result.status is RevocationStatus.UNKNOWN
    assert time.monotonic() - started < 5


def test_ocsp_cache_on_disk_is_reused_until_stale(
    responder: OcspResponder, ocsp_chain: list[x509.Certificate], tmp_path: Path
) -> None:
    with _ocsp_checker(responder, tmp_path) as checker:
        assert checker.check_chain(ocsp_chain).status is RevocationStatus.GOOD
    assert len(responder.hits) == 1
    assert list(tmp_path.glob("*.der"))
    with _ocsp_checker(responder, tmp_path) as checker:
        assert checker.check_chain(ocsp_chain).status is RevocationStatus.GOOD
    assert len(responder.hits) == 1  # answered from the disk cache
    later = datetime.now(UTC) + timedelta(hours=2)  # past the cached nextUpdate
    checker = RevocationChecker(
        cache_dir=tmp_path,
        url_rewrite=_rewriter({"http://localhost:10087": responder.base}),
        now=lambda: later,
    )
    with checker:
        checker.check_chain(ocsp_chain)
    assert len(responder.hits) == 2


def test_tampered_cache_entry_is_refetched(
    responder: OcspResponder, ocsp_chain: list[x509.Certificate], tmp_path: Path
) -> None:
    with _ocsp_checker(responder, tmp_path) as checker:
        checker.check_chain(ocsp_chain)
    for entry in tmp_path.glob("*.der"):
        entry.write_bytes(b"tampered")
    with _ocsp_checker(responder, tmp_path) as checker:
        assert checker.check_chain(ocsp_chain).status is RevocationStatus.GOOD
    assert len(responder.hits) == 2


# --- CRL ------------------------------------------------------------------------------------


@pytest.fixture
def crl_chain() -> list[x509.Certificate]:
    return load_chain(CRL_DIR / "certchain_with_crl.pem")


@pytest.fixture
def crl_server() -> Iterator[CrlServer]:
    server = CrlServer(
        files={
            "/leaf.crl": crl_bytes("leaf.crl"),
            "/intermediate.crl": crl_bytes("intermediate.crl"),
        }
    )
    with serve(crl=server):
        yield server


def _crl_checker(server: CrlServer, cache: Path | None = None) -> RevocationChecker:
    # The intermediate also names an OCSP URL on localhost.test: refused here, so the spec's
    # fallback to its CRL is exercised.
    return RevocationChecker(
        cache_dir=cache,
        url_rewrite=_rewriter(
            {"http://localhost:10086": server.base, "http://localhost.test": CLOSED}
        ),
    )


def test_crl_good_chain_with_ocsp_fallback(
    crl_server: CrlServer, crl_chain: list[x509.Certificate]
) -> None:
    with _crl_checker(crl_server) as checker:
        result = checker.check_chain(crl_chain)
    assert result.status is RevocationStatus.GOOD
    assert [c.method for c in result.certificates] == ["crl", "crl", None]
    assert sorted(crl_server.hits) == ["/intermediate.crl", "/leaf.crl"]


def test_crl_revoked_leaf(crl_server: CrlServer, crl_chain: list[x509.Certificate]) -> None:
    crl_server.files["/leaf.crl"] = crl_bytes("leaf_revoked.crl")
    with _crl_checker(crl_server) as checker:
        result = checker.check_chain(crl_chain)
    assert result.status is RevocationStatus.REVOKED
    assert result.problem is not None
    assert "CN=LeafCert" in result.problem.subject


def test_crl_revoked_intermediate(crl_server: CrlServer, crl_chain: list[x509.Certificate]) -> None:
    crl_server.files["/intermediate.crl"] = crl_bytes("intermediate_revoked.crl")
    with _crl_checker(crl_server) as checker:
        result = checker.check_chain(crl_chain)
    assert result.status is RevocationStatus.REVOKED
    assert result.problem is not None
    assert "CN=IntermediateCA" in result.problem.subject


def test_crl_past_next_update_is_unknown(
    crl_server: CrlServer, crl_chain: list[x509.Certificate]
) -> None:
    after_next_update = datetime(2124, 12, 1, tzinfo=UTC)  # leaf.crl's nextUpdate is 2124-10-18
    checker = RevocationChecker(
        url_rewrite=_rewriter(
            {"http://localhost:10086": crl_server.base, "http://localhost.test": CLOSED}
        ),
        now=lambda: after_next_update,
    )
    with checker:
        result = checker.check_chain(crl_chain)
    assert result.status is RevocationStatus.UNKNOWN
    assert "expired" in result.certificates[0].detail


def test_crl_from_an_older_pki_is_unknown(
    crl_server: CrlServer, crl_chain: list[x509.Certificate]
) -> None:
    # leaf_expired.crl names the same issuer but was signed by an earlier key of it.
    crl_server.files["/leaf.crl"] = crl_bytes("leaf_expired.crl")
    with _crl_checker(crl_server) as checker:
        result = checker.check_chain(crl_chain)
    assert result.status is RevocationStatus.UNKNOWN
    assert "signature does not verify" in result.certificates[0].detail


def test_crl_missing_is_unknown(crl_server: CrlServer, crl_chain: list[x509.Certificate]) -> None:
    del crl_server.files["/leaf.crl"]
    with _crl_checker(crl_server) as checker:
        result = checker.check_chain(crl_chain)
    assert result.status is RevocationStatus.UNKNOWN
    assert "HTTP 404" in result.certificates[0].detail


def test_crl_from_another_issuer_is_not_trusted(
    crl_server: CrlServer, crl_chain: list[x509.Certificate]
) -> None:
    # intermediate.crl is genuine but signed by the root, not by the leaf's issuer.
    crl_server.files["/leaf.crl"] = crl_bytes("intermediate.crl")
    with _crl_checker(crl_server) as checker:
        result = checker.check_chain(crl_chain)
    assert result.status is RevocationStatus.UNKNOWN


def test_crl_cache_on_disk(
    crl_server: CrlServer, crl_chain: list[x509.Certificate], tmp_path: Path
) -> None:
    with _crl_checker(crl_server, tmp_path) as checker:
        checker.check_chain(crl_chain)
    with _crl_checker(crl_server, tmp_path) as checker:
        assert checker.check_chain(crl_chain).status is RevocationStatus.GOOD
    assert len(crl_server.hits) == 2  # the second run used the cache


def test_certificate_without_revocation_info_is_non_revocable() -> None:
    cert = load_cert(CRL_DIR.parent / "localkeys" / "e2e.crt")
    with RevocationChecker(url_rewrite=_rewriter({})) as checker:
        result = checker.check_chain([cert])
    assert result.status is RevocationStatus.GOOD
    assert result.certificates[0].status is RevocationStatus.NON_REVOCABLE
