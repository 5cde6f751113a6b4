"""Trust store layout and certificate rules, on notation-go's own trust store fixtures."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from auditor.errors import ConfigError
from auditor.notary.trustpolicy import StoreType, TrustStoreRef
from auditor.notary.truststore import TrustStore, read_certificates
from tests.support.paths import FIXTURES

NOTATION_GO = FIXTURES / "notation-go/verifier/testdata/truststore"
CORE_X509 = FIXTURES / "notation-core-go/x509/testdata"
LOCALKEYS = FIXTURES / "notation-e2e/config/localkeys"


def _store(tmp_path: Path, store_type: str, name: str, *files: Path) -> TrustStore:
    folder = tmp_path / "x509" / store_type / name
    folder.mkdir(parents=True)
    for file in files:
        shutil.copyfile(file, folder / file.name)
    return TrustStore(tmp_path)


def test_notation_go_valid_stores_load() -> None:
    store = TrustStore(NOTATION_GO)
    ca = store.certificates(TrustStoreRef(StoreType.CA, "valid-trust-store"))
    assert len(ca) >= 6  # PEM files and a DER file
    sa = store.certificates(TrustStoreRef(StoreType.SIGNING_AUTHORITY, "valid-trust-store"))
    assert sa
    assert store.certificates(TrustStoreRef(StoreType.TSA, "test-timestamp"))
    self_signed = store.certificates(TrustStoreRef(StoreType.CA, "valid-trust-store-self-signed"))
    assert len(self_signed) == 1
    # cached: the same tuple comes back
    assert store.certificates(TrustStoreRef(StoreType.CA, "valid-trust-store")) is ca


@pytest.mark.parametrize(
    ("store_type", "name", "message"),
    [
        (StoreType.CA, "trust-store-with-leaf-certs", "is not a CA certificate or self-signed"),
        (StoreType.CA, "trust-store-with-leaf-certs-in-single-file", "is not a CA certificate"),
        (StoreType.CA, "trust-store-with-invalid-certs", "failed to read the trusted certificate"),
        (StoreType.TSA, "test-nonCA", "not a root CA certificate"),
        (StoreType.TSA, "test-nonSelfIssued", "not a root CA certificate"),
        (
            StoreType.CA,
            "no-such-store",
            'the trust store "no-such-store" of type "ca" does not exist',
        ),
    ],
)
def test_notation_go_broken_stores_are_rejected(
    store_type: StoreType, name: str, message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        TrustStore(NOTATION_GO).certificates(TrustStoreRef(store_type, name))


def test_subdirectories_and_symlinks_are_rejected(tmp_path: Path) -> None:
    store = _store(tmp_path, "ca", "acme", LOCALKEYS / "e2e.crt")
    (tmp_path / "x509/ca/acme/sub").mkdir()
    with pytest.raises(ConfigError, match="not a regular file"):
        store.certificates(TrustStoreRef(StoreType.CA, "acme"))
    (tmp_path / "x509/ca/linked").symlink_to(tmp_path / "x509/ca/acme")
    with pytest.raises(ConfigError, match="not a regular directory"):
        store.certificates(TrustStoreRef(StoreType.CA, "linked"))


def test_empty_store_is_rejected(tmp_path: Path) -> None:
    store = _store(tmp_path, "ca", "empty")
    with pytest.raises(ConfigError, match="no x509 certificates were found"):
        store.certificates(TrustStoreRef(StoreType.CA, "empty"))


def test_self_signed_leaf_is_allowed_in_a_ca_store(tmp_path: Path) -> None:
    # notation's e2e tests trust their self-signed, CA:FALSE signing certificates this way.
    store = _store(tmp_path, "ca", "e2e", LOCALKEYS / "new_e2e.crt", LOCALKEYS / "e2e.crt")
    assert len(store.certificates(TrustStoreRef(StoreType.CA, "e2e"))) == 2


def test_certificate_file_formats() -> None:
    assert len(read_certificates((CORE_X509 / "multi-pem.crt").read_bytes())) > 1
    assert len(read_certificates((CORE_X509 / "multi-der.der").read_bytes())) > 1
    assert len(read_certificates((CORE_X509 / "der.der").read_bytes())) == 1
    assert len(read_certificates((CORE_X509 / "pem.crt").read_bytes())) == 1
    with pytest.raises(ValueError):  # noqa: PT011 - any parse error is fine
        read_certificates(b"garbage")
