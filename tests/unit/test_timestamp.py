"""RFC 3161 countersignature checks, mirroring notation-go's verifier/timestamp_test.go.

The sigEnv envelopes carry GlobalSign TSA tokens; notation-go verifies them against the
``tsa/test-timestamp`` store (GlobalSign Root R6) and rejects them against ``test-mismatch``
(DigiCert). The countersignature/*.p7s tokens are spliced into ``withoutTimestamp.sig`` with a
replaced signature value, exactly as notation-go's tests do.
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography import x509

from auditor.errors import VerificationError
from auditor.notary.envelope import parse_envelope
from auditor.notary.timestamp import check_chain_covers, verify_timestamp
from auditor.notary.types import Envelope, SigningScheme
from auditor.oci import mediatypes as mt
from tests.support.paths import FIXTURES

VERIFIER = FIXTURES / "notation-go" / "verifier"
SIG_ENV = VERIFIER / "testdata" / "timestamp" / "sigEnv"
COUNTERSIG = VERIFIER / "testdata" / "timestamp" / "countersignature"
E2E = FIXTURES / "notation-e2e"

pytestmark = pytest.mark.skipif(not FIXTURES.is_dir(), reason="shared fixtures not present")


def load_cert(path: Path) -> x509.Certificate:
    data = path.read_bytes()
    if data.lstrip().startswith(b"-----"):
        return x509.load_pem_x509_certificate(data)
    return x509.load_der_x509_certificate(data)


@pytest.fixture(scope="module")
def globalsign() -> list[x509.Certificate]:
    return [load_cert(VERIFIER / "testdata/truststore/x509/tsa/test-timestamp/globalsignRoot.cer")]


@pytest.fixture(scope="module")
def digicert() -> list[x509.Certificate]:
    return [
        load_cert(VERIFIER / "testdata/truststore/x509/tsa/test-mismatch/DigiCertTSARootSHA384.cer")
    ]


def envelope(path: Path) -> Envelope:
    data = path.read_bytes()
    return parse_envelope(mt.JWS_ENVELOPE if data[:1] == b"{" else mt.COSE_ENVELOPE, data)


def with_token(token_file: str, signature: bytes) -> Envelope:
    base = envelope(SIG_ENV / "withoutTimestamp.sig")
    return dataclasses.replace(
        base, timestamp_token=(COUNTERSIG / token_file).read_bytes(), signature=signature
    )


@pytest.mark.parametrize(
    "name",
    [
        "jwsWithTimestamp.sig",
        "coseWithTimestamp.sig",
        "jwsExpiredWithTimestamp.sig",
        "coseExpiredWithTimestamp.sig",
    ],
)
def test_valid_timestamps_verify(name: str, globalsign: list[x509.Certificate]) -> None:
    env = envelope(SIG_ENV / name)
    result = verify_timestamp(env, globalsign)
    assert env.signing_time is not None
    assert env.signing_time <= result.earliest < result.gen_time < result.latest
    assert result.accuracy_seconds == 1.0
    assert result.tsa_chain[0].subject.rfc4514_string().startswith("CN=Globalsign TSA")
    assert result.tsa_chain[-1] == globalsign[0]
    # The signing certificate was valid throughout the timestamp range.
    check_chain_covers(result, env.certificate_chain)


def test_expired_cert_is_covered_by_the_timestamp(globalsign: list[x509.Certificate]) -> None:
    env = envelope(SIG_ENV / "coseExpiredWithTimestamp.sig")
    leaf = env.certificate_chain[0]
    assert leaf.not_valid_after_utc < datetime.now(UTC)  # expired today ...
    result = verify_timestamp(env, globalsign)
    assert result.latest <= leaf.not_valid_after_utc  # ... but not when it was stamped


def test_untrusted_tsa_is_rejected(digicert: list[x509.Certificate]) -> None:
    env = envelope(SIG_ENV / "coseWithTimestamp.sig")
    with pytest.raises(VerificationError, match=r"^authenticTimestamp: .*does not verify"):
        verify_timestamp(env, digicert)


def test_no_roots_is_rejected() -> None:
    with pytest.raises(VerificationError, match="no trusted TSA certificate"):
        verify_timestamp(envelope(SIG_ENV / "jwsWithTimestamp.sig"), [])


def test_missing_countersignature(globalsign: list[x509.Certificate]) -> None:
    with pytest.raises(VerificationError, match="no timestamp countersignature was found"):
        verify_timestamp(envelope(SIG_ENV / "withoutTimestamp.sig"), globalsign)


def test_timestamp_before_signing_cert_not_before(globalsign: list[x509.Certificate]) -> None:
    env = envelope(SIG_ENV / "timestampBeforeNotBefore.sig")
    result = verify_timestamp(env, globalsign)
    with pytest.raises(VerificationError, match="lower limit 2024-06-19T09:30:13"):
        check_chain_covers(result, env.certificate_chain)


def test_timestamp_after_signing_cert_not_after(globalsign: list[x509.Certificate]) -> None:
    env = envelope(SIG_ENV / "timestampAfterNotAfter.sig")
    result = verify_timestamp(env, globalsign)
    with pytest.raises(VerificationError, match="upper limit 2024-06-19T09:35:59"):
        check_chain_covers(result, env.certificate_chain)


def test_plain_token_over_notation(globalsign: list[x509.Certificate]) -> None:
    env = dataclasses.replace(with_token("TimeStampToken.p7s", b"notation"), signing_time=None)
    result = verify_timestamp(env, globalsign)
    assert result.gen_time == datetime(2021, 9, 17, 14, 9, 10, tzinfo=UTC)
    assert (result.earliest.second, result.latest.second) == (9, 11)


def test_token_not_after_signing_time(globalsign: list[x509.Certificate]) -> None:
    env = dataclasses.replace(
        with_token("TimeStampToken.p7s", b"notation"),
        signing_time=datetime(3000, 11, 10, 23, 0, tzinfo=UTC),
    )
    with pytest.raises(VerificationError, match="is not after the signing time"):
        verify_timestamp(env, globalsign)


@pytest.mark.parametrize(
    ("token", "signature", "message"),
    [
        ("TimeStampToken.p7s", b"mismatch", "message imprint mismatch"),
        ("TimeStampTokenWithInvalideContentType.p7s", b"notation", "1.2.840.113549.1.7.1, not a"),
        ("TimeStampTokenWithInvalidTSTInfo.p7s", b"notation", "cannot parse the timestamp token"),
        ("TimeStampTokenWithoutCertificate.p7s", b"notation", "signer certificate not found"),
    ],
)
def test_broken_tokens_are_rejected(
    token: str, signature: bytes, message: str, globalsign: list[x509.Certificate]
) -> None:
    env = dataclasses.replace(with_token(token, signature), signing_time=None)
    with pytest.raises(VerificationError, match=rf"^authenticTimestamp: .*{message}"):
        verify_timestamp(env, globalsign)


def test_token_with_invalid_signature_is_rejected() -> None:
    testdata = FIXTURES / "notation-core-go/internal/timestamp/testdata"
    base = envelope(SIG_ENV / "withoutTimestamp.sig")
    env = dataclasses.replace(
        base,
        timestamp_token=(testdata / "TimeStampTokenWithInvalidSignature.p7s").read_bytes(),
        signature=b"notation",
        signing_time=None,
    )
    with pytest.raises(VerificationError, match="does not verify"):
        verify_timestamp(env, [load_cert(testdata / "tsaRootCert.cer")])


@pytest.mark.parametrize("junk", [b"", b"invalid\n", b"\x30\x80", b"\x30\x03\x02\x01\x00"])
def test_garbage_tokens_are_rejected(junk: bytes, globalsign: list[x509.Certificate]) -> None:
    env = dataclasses.replace(envelope(SIG_ENV / "jwsWithTimestamp.sig"), timestamp_token=junk)
    with pytest.raises(VerificationError, match=r"^authenticTimestamp: "):
        verify_timestamp(env, globalsign)


def test_truncated_token_is_rejected(globalsign: list[x509.Certificate]) -> None:
    env = envelope(SIG_ENV / "jwsWithTimestamp.sig")
    assert env.timestamp_token is not None
    cut = dataclasses.replace(env, timestamp_token=env.timestamp_token[:-40])
    with pytest.raises(VerificationError, match="cannot parse the timestamp token"):
        verify_timestamp(cut, globalsign)


def test_timestamp_is_ignored_for_signing_authority(globalsign: list[x509.Certificate]) -> None:
    env = dataclasses.replace(
        envelope(SIG_ENV / "jwsWithTimestamp.sig"), signing_scheme=SigningScheme.SIGNING_AUTHORITY
    )
    with pytest.raises(VerificationError, match=r"only used with notary\.x509"):
        verify_timestamp(env, globalsign)


def _e2e_envelope(layout: str, blob: str) -> Envelope:
    path = E2E / "registry/oci_layout" / layout / "blobs/sha256" / blob
    return parse_envelope(mt.JWS_ENVELOPE, path.read_bytes())


def _staged_tsa_roots() -> list[x509.Certificate]:
    roots = []
    for path in sorted((E2E / "config/timestamp").iterdir()):
        try:
            roots.extend(x509.load_pem_x509_certificates(path.read_bytes()))
        except ValueError:
            try:
                roots.append(x509.load_der_x509_certificate(path.read_bytes()))
            except ValueError:
                continue  # Empty.txt / invalid.crt are deliberately broken fixtures
    return roots


def test_e2e_timestamped_signature_is_microsoft_and_not_trusted_by_staged_roots() -> None:
    """Its TSA root (Microsoft) is not staged in config/timestamp (see EXPECTED_OUTCOMES)."""
    env = _e2e_envelope(
        "e2e-with-timestamped-signature",
        "603ff134e97a79cd7a15560b76137c2c4a10451daab11327a7c6f86dac250fee",
    )
    roots = _staged_tsa_roots()
    assert len(roots) >= 4
    with pytest.raises(VerificationError, match="unable to get local issuer certificate"):
        verify_timestamp(env, roots)


def test_e2e_invalid_timestamped_signature_fails() -> None:
    env = _e2e_envelope(
        "e2e-with-invalid-timestamped-signature",
        "8d2e70ffc2af68b7f2df6f30dfefcb7bcda1db5f9ac2566fc8c6c2248c8d4c5f",
    )
    assert env.timestamp_token == b"invalid\n"
    with pytest.raises(VerificationError, match="cannot parse the timestamp token"):
        verify_timestamp(env, _staged_tsa_roots())
