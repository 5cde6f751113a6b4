"""Verifier: every validation under every level and override, with real signed envelopes."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from auditor.errors import ConfigError
from auditor.model import Descriptor, NodeStatus, SignatureResult, SignatureStatus
from auditor.notary.revocation import RevocationChecker
from auditor.notary.sign import sign_cose, sign_jws, signature_manifest
from auditor.notary.trustconfig import load_trust_config
from auditor.notary.trustpolicy import LEVEL_ACTIONS, Action, Level, parse_trust_policy
from auditor.notary.types import SigningScheme, Validation
from auditor.notary.verifier import Verifier
from auditor.oci import mediatypes as mt
from auditor.oci.manifest import ImageManifest, parse_manifest
from devkit.testpki import TestPKI, make_pki
from tests.support.nodes import status_of

NOW = datetime.now(UTC).replace(second=0, microsecond=0)
SCOPE = "registry.example/team/app"
SUBJECT = Descriptor(
    media_type="application/vnd.oci.image.manifest.v1+json",
    digest="sha256:" + "ab" * 32,
    size=1234,
)
OTHER = Descriptor(media_type=SUBJECT.media_type, digest="sha256:" + "cd" * 32, size=1234)


def _no_network(url: str) -> str:
    raise AssertionError(f"unexpected revocation fetch {url}")


def _policy(
    level: str = "strict",
    *,
    override: dict[str, str] | None = None,
    stores: list[str] | None = None,
    identities: list[str] | None = None,
    scopes: list[str] | None = None,
    **verification: str,
) -> Any:
    sv: dict[str, Any] = {"level": level, **verification}
    if override:
        sv["override"] = override
    statement: dict[str, Any] = {
        "name": "app",
        "registryScopes": scopes or ["*"],
        "signatureVerification": sv,
    }
    if level != "skip":
        statement["trustStores"] = stores or ["ca:acme"]
        statement["trustedIdentities"] = identities or ["*"]
    return parse_trust_policy(json.dumps({"version": "1.0", "trustPolicies": [statement]}))


def _signed(
    pki: TestPKI,
    *,
    target: Descriptor = SUBJECT,
    expiry: datetime | None = None,
    signing_time: datetime = NOW,
    media_type: str = mt.JWS_ENVELOPE,
    scheme: SigningScheme = SigningScheme.X509,
) -> tuple[ImageManifest, bytes]:
    sign = sign_jws if media_type == mt.JWS_ENVELOPE else sign_cose
    envelope = sign(
        target,
        pki.leaf.key,
        pki.chain,
        signing_time=signing_time,
        expiry=expiry,
        signing_scheme=scheme,
    )
    raw, _blobs = signature_manifest(SUBJECT, envelope, media_type)
    manifest = parse_manifest(raw)
    assert isinstance(manifest, ImageManifest)
    return manifest, envelope


@pytest.fixture(scope="module")
def pki() -> TestPKI:
    return make_pki(key_type="rsa2048", name="signer", intermediate=True)


@pytest.fixture(scope="module")
def stranger() -> TestPKI:
    return make_pki(key_type="ec256", name="stranger", slot=5)


@pytest.fixture
def store(tmp_path: Path, pki: TestPKI) -> Path:
    pki.write_trust_store(tmp_path, "acme")
    return tmp_path


def _verify(
    policy: Any,
    store: Path,
    signed: tuple[ImageManifest, bytes],
    *,
    now: datetime = NOW,
    revocation: bool = True,
    subject: Descriptor = SUBJECT,
    scope: str = SCOPE,
) -> SignatureResult:
    checker = RevocationChecker(url_rewrite=_no_network) if revocation else None
    verifier = Verifier(policy, store, revocation=checker, now=lambda: now)
    manifest, envelope = signed
    return verifier.verify(scope, subject, manifest, envelope, "sha256:" + "ee" * 32)


def test_valid_signature(store: Path, pki: TestPKI) -> None:
    result = _verify(_policy(), store, _signed(pki, expiry=NOW + timedelta(days=1)))
    assert result.status is SignatureStatus.VALID, result.reason
    assert result.warnings == ()
    assert result.signer == "CN=signer,O=Notary,L=Seattle,ST=WA,C=US"
    assert result.signing_time == NOW
    assert result.expiry == NOW + timedelta(days=1)
    assert result.format == "notation/jws"
    assert not result.timestamped
    assert status_of([result])[0] is NodeStatus.SIGNED
    # The one-day signature expiry comes before any certificate of the chain expires.
    assert result.valid_until == NOW + timedelta(days=1)


def test_valid_until_is_the_first_certificate_expiry_without_timestamp(
    store: Path, pki: TestPKI
) -> None:
    result = _verify(_policy(), store, _signed(pki))
    assert result.status is SignatureStatus.VALID, result.reason
    assert result.expiry is None
    assert result.valid_until == min(c.not_valid_after_utc for c in pki.chain)


def test_invalid_signature_has_no_valid_until(store: Path, pki: TestPKI) -> None:
    result = _verify(_policy(), store, _signed(pki, target=OTHER))
    assert result.status is SignatureStatus.INVALID
    assert result.valid_until is None


def test_valid_cose_signature(store: Path, pki: TestPKI) -> None:
    result = _verify(_policy(), store, _signed(pki, media_type=mt.COSE_ENVELOPE))
    assert result.status is SignatureStatus.VALID, result.reason
    assert result.format == "notation/cose"


@pytest.mark.parametrize("level", ["strict", "permissive", "audit"])
def test_signature_over_another_digest_is_invalid_at_every_level(
    store: Path, pki: TestPKI, level: str
) -> None:
    result = _verify(_policy(level), store, _signed(pki, target=OTHER))
    assert result.status is SignatureStatus.INVALID
    assert result.failed_validation == "integrity"
    assert "content descriptor mismatch" in result.reason


def test_signature_manifest_for_another_subject_is_invalid(store: Path, pki: TestPKI) -> None:
    result = _verify(_policy("audit"), store, _signed(pki), subject=OTHER)
    assert result.status is SignatureStatus.INVALID
    assert result.failed_validation == "integrity"


@pytest.mark.parametrize(
    "mutate",
    [
        lambda data: b"not an envelope",
        lambda data: data[: len(data) // 2],
        lambda data: data.replace(b'"signature":"', b'"signature":"AAAA'),
    ],
    ids=["garbage", "truncated", "tampered-signature"],
)
def test_broken_envelopes_fail_integrity(
    store: Path, pki: TestPKI, mutate: Callable[[bytes], bytes]
) -> None:
    manifest, envelope = _signed(pki)
    result = _verify(_policy("audit"), store, (manifest, mutate(envelope)))
    assert result.status is SignatureStatus.INVALID
    assert result.failed_validation == "integrity"


# --- the level x validation matrix -----------------------------------------------------------


def _scenario(
    validation: Validation, pki: TestPKI, stranger: TestPKI, store: Path
) -> tuple[tuple[ImageManifest, bytes], datetime, bool, Path]:
    """(signed, now, revocation checker on?, store) where exactly ``validation`` fails."""
    if validation is Validation.AUTHENTICITY:
        return _signed(stranger), NOW, True, store
    if validation is Validation.EXPIRY:
        return (
            _signed(pki, expiry=NOW + timedelta(minutes=1)),
            NOW + timedelta(hours=1),
            True,
            store,
        )
    if validation is Validation.AUTHENTIC_TIMESTAMP:
        short = make_pki(key_type="rsa2048", name="short", leaf_validity=timedelta(hours=2), slot=7)
        short.write_trust_store(store, "acme-short")
        (store / "x509" / "ca" / "acme").rename(store / "x509" / "ca" / "acme-old")
        (store / "x509" / "ca" / "acme-short").rename(store / "x509" / "ca" / "acme")
        return _signed(short), NOW + timedelta(days=2), True, store
    return _signed(pki), NOW, False, store  # revocation status cannot be determined


MATRIX = [
    (level, validation, override)
    for level in ("strict", "permissive", "audit")
    for validation in (
        Validation.AUTHENTICITY,
        Validation.EXPIRY,
        Validation.AUTHENTIC_TIMESTAMP,
        Validation.REVOCATION,
    )
    for override in (None, "enforce", "log", "skip")
    if not (override == "skip" and validation is not Validation.REVOCATION)
]


@pytest.mark.parametrize(("level", "validation", "override"), MATRIX)
def test_level_and_override_decide_enforce_log_skip(
    store: Path,
    pki: TestPKI,
    stranger: TestPKI,
    level: str,
    validation: Validation,
    override: str | None,
) -> None:
    signed, now, with_revocation, store = _scenario(validation, pki, stranger, store)
    policy = _policy(level, override={validation.value: override} if override else None)
    result = _verify(policy, store, signed, now=now, revocation=with_revocation)
    action = Action(override) if override else LEVEL_ACTIONS[Level(level)][validation]
    if action is Action.ENFORCE:
        assert result.status is not SignatureStatus.VALID
        assert result.failed_validation == validation.value
        assert result.reason.startswith(f"{validation.value} validation failed.")
        expected = SignatureStatus.ERROR if validation is Validation.REVOCATION else None
        assert result.status is (expected or SignatureStatus.INVALID)
    elif action is Action.LOG:
        assert result.status is SignatureStatus.VALID, result.reason
        assert any(w.startswith(f'{validation.value} was set to "log"') for w in result.warnings)
    else:
        assert result.status is SignatureStatus.VALID, result.reason
        assert result.warnings == ()


def test_identity_mismatch_is_an_authenticity_failure(store: Path, pki: TestPKI) -> None:
    policy = _policy(identities=["x509.subject: C=US, ST=WA, O=Notary, CN=someone-else"])
    result = _verify(policy, store, _signed(pki))
    assert result.status is SignatureStatus.INVALID
    assert result.failed_validation == "authenticity"
    assert "does not match the X.509 trusted identities" in result.reason


def test_identity_subset_match(store: Path, pki: TestPKI) -> None:
    policy = _policy(identities=["x509.subject: C=US, S=WA, O=Notary"])
    assert _verify(policy, store, _signed(pki)).status is SignatureStatus.VALID


def test_pinned_intermediate_is_a_trust_anchor(tmp_path: Path, pki: TestPKI) -> None:
    assert pki.intermediate is not None
    folder = tmp_path / "x509" / "ca" / "acme"
    folder.mkdir(parents=True)
    (folder / "intermediate.pem").write_bytes(pki.intermediate.cert_pem())
    assert _verify(_policy(), tmp_path, _signed(pki)).status is SignatureStatus.VALID


def test_signing_authority_needs_a_signing_authority_store(tmp_path: Path, pki: TestPKI) -> None:
    pki.write_trust_store(tmp_path, "acme", store_type="signingAuthority")
    pki.write_trust_store(tmp_path, "acme")
    signed = _signed(pki, scheme=SigningScheme.SIGNING_AUTHORITY)
    good = _verify(_policy(stores=["signingAuthority:acme"]), tmp_path, signed)
    assert good.status is SignatureStatus.VALID, good.reason
    bad = _verify(_policy(stores=["ca:acme"]), tmp_path, signed)
    assert bad.failed_validation == "authenticity"
    assert "no trust store of type 'signingAuthority'" in bad.reason


def test_timestamp_required_when_a_tsa_store_is_configured(
    store: Path, pki: TestPKI, stranger: TestPKI
) -> None:
    stranger.write_trust_store(store, "tsa-roots", store_type="tsa")
    policy = _policy(stores=["ca:acme", "tsa:tsa-roots"])
    result = _verify(policy, store, _signed(pki))
    assert result.failed_validation == "authenticTimestamp"
    assert "no timestamp countersignature" in result.reason
    # afterCertExpiry: the chain is unexpired, so no timestamp is needed.
    relaxed = _policy(stores=["ca:acme", "tsa:tsa-roots"], verifyTimestamp="afterCertExpiry")
    assert _verify(relaxed, store, _signed(pki)).status is SignatureStatus.VALID


def test_skip_level(store: Path, pki: TestPKI) -> None:
    result = _verify(_policy("skip", scopes=[SCOPE]), store, _signed(pki, target=OTHER))
    assert result.status is SignatureStatus.SKIPPED
    assert status_of([result])[0] is NodeStatus.SKIPPED


def test_exact_scope_wins_and_no_statement_is_an_error(store: Path, pki: TestPKI) -> None:
    policy = _policy(scopes=["registry.example/other"])
    result = _verify(policy, store, _signed(pki))
    assert result.status is SignatureStatus.ERROR
    assert "no applicable trust policy" in result.reason
    assert _verify(policy, store, _signed(pki), scope="registry.example/other").status is (
        SignatureStatus.VALID
    )


def test_missing_trust_store_is_an_error_verdict_naming_it(store: Path, pki: TestPKI) -> None:
    """A store the applicable statement names but that is not there: the signature cannot be
    checked (``error``, never ``invalid`` or ``valid``), and the reason names the store."""
    result = _verify(_policy(stores=["ca:nope"]), store, _signed(pki))
    assert result.status is SignatureStatus.ERROR
    assert 'the trust store "nope" of type "ca" does not exist' in result.reason
    assert "trust policy statement" in result.reason


def test_a_broken_store_of_another_statement_is_never_read(store: Path, pki: TestPKI) -> None:
    """notation loads the applicable statement's stores only: a missing store named by the
    statement for another repository changes nothing here."""
    statements = [
        {"name": name, "registryScopes": [scope], "signatureVerification": {"level": "strict"},
         "trustStores": [ref], "trustedIdentities": ["*"]}
        for name, scope, ref in (("app", SCOPE, "ca:acme"),
                                 ("other", "registry.example/other", "ca:nope"))
    ]
    policy = parse_trust_policy(json.dumps({"version": "1.0", "trustPolicies": statements}))
    assert _verify(policy, store, _signed(pki)).status is SignatureStatus.VALID
    other = _verify(policy, store, _signed(pki), scope="registry.example/other")
    assert other.status is SignatureStatus.ERROR
    assert "statement 'other'" in other.reason
    assert '"nope"' in other.reason


def _result(status: SignatureStatus, reason: str = "r") -> SignatureResult:
    return SignatureResult(
        digest="sha256:" + "0" * 64, format="notation/jws", status=status, reason=reason
    )


def test_load_trust_config_defaults_to_notation_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    with pytest.raises(ConfigError, match="no trust policy given"):
        load_trust_config(None, None)
    notation = tmp_path / "notation"
    (notation / "truststore").mkdir(parents=True)
    doc = {
        "version": "1.0",
        "trustPolicies": [
            {"name": "x", "registryScopes": ["*"], "signatureVerification": {"level": "skip"}}
        ],
    }
    (notation / "trustpolicy.json").write_text(json.dumps(doc))
    assert load_trust_config(None, None).policy_path == notation / "trustpolicy.json"
    (notation / "trustpolicy.oci.json").write_text(json.dumps(doc))
    config = load_trust_config(None, None)
    assert config.policy_path == notation / "trustpolicy.oci.json"
    assert config.store_path == notation / "truststore"
    with pytest.raises(ConfigError, match="does not exist"):
        load_trust_config(None, tmp_path / "missing")
