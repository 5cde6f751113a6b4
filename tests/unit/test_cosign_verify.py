"""cosign verification on the reference fixtures: legacy simple-signing layers (containers/image)
and sigstore bundles v0.3 (cosign 3 in GitHub Actions, cosign's own testdata).

Expected verdicts are the references': containers/image's policy tests accept
dir-img-cosign-valid(-2) with cosign.pub, dir-img-cosign-key-rekor-valid with cosign2.pub and
rekor.pub, and reject the modified manifest, the other attachment and the digest-error case;
the actions-toolkit bundles were produced and verified by cosign v3 for the identity below.
Nothing here may touch the network: every test runs with socket connections refused.
"""

from __future__ import annotations

import base64
import json
import re
import socket
import subprocess
import sys
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest

from auditor.cosign.bundle import verify_bundle
from auditor.cosign.identity import KeylessIdentity, Matcher
from auditor.cosign.keys import PublicKey, load_pem_public_key
from auditor.cosign.legacy import LegacyLayer, verify_legacy
from auditor.cosign.trust import CosignRule, TrustRoot, parse_trusted_root
from auditor.model import SignatureResult, SignatureStatus
from auditor.oci.digest import compute_digest
from tests.support.cosign_fixtures import (
    ATTESTATION_BUNDLE,
    ATTESTATION_ROOT,
    CONTAINERS_IMAGE,
    TOOLKIT_IDENTITY,
    TOOLKIT_ISSUER,
    TRUSTED_ROOT,
    legacy_manifest,
    legacy_signature,
    toolkit_output,
    toolkit_output_path,
)

VALID_DIGEST = compute_digest(legacy_manifest("dir-img-cosign-valid"), "sha256")
REKOR_DIGEST = compute_digest(legacy_manifest("dir-img-cosign-key-rekor-valid"), "sha256")


@pytest.fixture(autouse=True)
def _no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError(f"network access attempted: {args!r}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)


@pytest.fixture(scope="module")
def root() -> TrustRoot:
    return parse_trusted_root(TRUSTED_ROOT.read_bytes(), "public-good")


def key(name: str) -> PublicKey:
    return load_pem_public_key((CONTAINERS_IMAGE / name).read_bytes(), name)


def key_rule(*names: str, ignore_tlog: bool = False) -> CosignRule:
    return CosignRule("keys", ("*",), keys=tuple(key(n) for n in names), ignore_tlog=ignore_tlog)


def keyless_rule(identity: Matcher, issuer: Matcher) -> CosignRule:
    return CosignRule("release", ("*",), keyless=KeylessIdentity(identity, issuer))


TOOLKIT_RULE = keyless_rule(Matcher(exact=TOOLKIT_IDENTITY), Matcher(exact=TOOLKIT_ISSUER))


def legacy(
    folder: str,
    subject: str,
    rule: CosignRule,
    root: TrustRoot,
    n: int = 1,
    annotations: dict[str, str] | None = None,
) -> SignatureResult:
    sig = legacy_signature(folder, n)
    merged = {**sig.annotations, **(annotations or {})}
    layer = LegacyLayer(sig.media_type, sig.payload, {k: v for k, v in merged.items() if v})
    return verify_legacy(
        subject_digest=subject, layer=layer, rule=rule, root=root, digest="sha256:" + "0" * 64
    )


# --- legacy: what containers/image accepts -------------------------------------------------


def test_key_signature_without_tlog_is_valid_when_the_rule_waives_the_log(root: TrustRoot) -> None:
    rule = key_rule("cosign.pub", ignore_tlog=True)
    result = legacy("dir-img-cosign-valid", VALID_DIGEST, rule, root)
    assert result.status is SignatureStatus.VALID, result.reason
    assert result.format == "cosign/legacy"
    assert result.signer is not None
    assert result.signer.startswith("key cosign.pub (sha256:")
    assert not result.timestamped


@pytest.mark.parametrize("n", [1, 2])
def test_both_signatures_of_valid_2_verify(root: TrustRoot, n: int) -> None:
    rule = key_rule("cosign2.pub", "cosign.pub", ignore_tlog=True)
    result = legacy("dir-img-cosign-valid-2", VALID_DIGEST, rule, root, n)
    assert result.status is SignatureStatus.VALID, result.reason


def test_key_and_rekor_set_verify_with_the_public_good_log_key(root: TrustRoot) -> None:
    result = legacy("dir-img-cosign-key-rekor-valid", REKOR_DIGEST, key_rule("cosign2.pub"), root)
    assert result.status is SignatureStatus.VALID, result.reason
    assert result.signing_time == datetime.fromtimestamp(1674251859, UTC)
    assert result.timestamped


# --- legacy: what it rejects, and the negative cases of the issue -------------------------


def test_missing_tlog_entry_is_invalid_by_default(root: TrustRoot) -> None:
    result = legacy("dir-img-cosign-valid", VALID_DIGEST, key_rule("cosign.pub"), root)
    assert result.status is SignatureStatus.INVALID
    assert result.failed_validation == "transparency log"
    assert "ignore_tlog" in result.reason


def test_wrong_key_is_invalid(root: TrustRoot) -> None:
    result = legacy("dir-img-cosign-key-rekor-valid", REKOR_DIGEST, key_rule("cosign.pub"), root)
    assert result.status is SignatureStatus.INVALID
    assert result.failed_validation == "authenticity"


def test_modified_manifest_payload_names_another_digest(root: TrustRoot) -> None:
    modified = compute_digest(legacy_manifest("dir-img-cosign-modified-manifest"), "sha256")
    rule = key_rule("cosign.pub", ignore_tlog=True)
    result = legacy("dir-img-cosign-modified-manifest", modified, rule, root)
    assert result.status is SignatureStatus.INVALID
    assert f"signs {VALID_DIGEST}, not {modified}" in result.reason


def test_manifest_digest_error_case_is_rejected(root: TrustRoot) -> None:
    # containers/image pairs this signature with a schema-1 manifest whose digest cannot be
    # computed (the file is not among the shared fixtures): the signature never matches it.
    rule = key_rule("cosign.pub", ignore_tlog=True)
    other = "sha256:" + "ab" * 32
    result = legacy("dir-img-cosign-manifest-digest-error", other, rule, root)
    assert result.status is SignatureStatus.INVALID


def test_other_attachment_is_not_a_signature(root: TrustRoot) -> None:
    rule = key_rule("cosign.pub", ignore_tlog=True)
    result = legacy("dir-img-cosign-other-attachment", VALID_DIGEST, rule, root)
    assert result.status is SignatureStatus.INVALID
    assert "text/plain" in result.reason


def test_tampered_set_is_invalid(root: TrustRoot) -> None:
    sig = legacy_signature("dir-img-cosign-key-rekor-valid")
    bundle = json.loads(sig.annotations["dev.sigstore.cosign/bundle"])
    raw = bytearray(base64.b64decode(bundle["SignedEntryTimestamp"]))
    raw[-5] ^= 0x01
    bundle["SignedEntryTimestamp"] = base64.b64encode(bytes(raw)).decode()
    tampered = json.dumps(bundle)
    result = legacy(
        "dir-img-cosign-key-rekor-valid",
        REKOR_DIGEST,
        key_rule("cosign2.pub"),
        root,
        annotations={"dev.sigstore.cosign/bundle": tampered},
    )
    assert result.status is SignatureStatus.INVALID
    assert "Signed Entry Timestamp does not verify" in result.reason


def test_tampered_log_time_breaks_the_set(root: TrustRoot) -> None:
    sig = legacy_signature("dir-img-cosign-key-rekor-valid")
    bundle = json.loads(sig.annotations["dev.sigstore.cosign/bundle"])
    bundle["Payload"]["integratedTime"] += 1
    result = legacy(
        "dir-img-cosign-key-rekor-valid",
        REKOR_DIGEST,
        key_rule("cosign2.pub"),
        root,
        annotations={"dev.sigstore.cosign/bundle": json.dumps(bundle)},
    )
    assert result.status is SignatureStatus.INVALID


def test_a_real_set_of_another_signature_does_not_transfer(root: TrustRoot) -> None:
    # containers/image's case: cosign.pub signed the image, the SET is cosign2.pub's entry.
    other_set = legacy_signature("dir-img-cosign-key-rekor-valid").annotations[
        "dev.sigstore.cosign/bundle"
    ]
    result = legacy(
        "dir-img-cosign-valid",
        VALID_DIGEST,
        key_rule("cosign.pub", "cosign2.pub"),
        root,
        annotations={"dev.sigstore.cosign/bundle": other_set},
    )
    assert result.status is SignatureStatus.INVALID
    assert result.failed_validation == "transparency log"


def test_log_not_in_the_trusted_root_is_invalid(root: TrustRoot) -> None:
    bare = replace(root, log_keys={})
    result = legacy("dir-img-cosign-key-rekor-valid", REKOR_DIGEST, key_rule("cosign2.pub"), bare)
    assert result.status is SignatureStatus.INVALID
    assert "not in the trusted root" in result.reason


def test_log_key_must_be_valid_at_integrated_time(root: TrustRoot) -> None:
    (log_id, log_key), *_ = [(k, v) for k, v in root.log_keys.items() if k.startswith("c0d23d")]
    late = replace(log_key, valid_from=datetime(2024, 1, 1, tzinfo=UTC))
    shifted = replace(root, log_keys={log_id: late})
    result = legacy(
        "dir-img-cosign-key-rekor-valid", REKOR_DIGEST, key_rule("cosign2.pub"), shifted
    )
    assert result.status is SignatureStatus.INVALID
    assert "was not valid at" in result.reason


def test_bare_key_signature_never_satisfies_a_keyless_rule(root: TrustRoot) -> None:
    rule = replace(TOOLKIT_RULE, ignore_tlog=True)
    result = legacy("dir-img-cosign-valid", VALID_DIGEST, rule, root)
    assert result.status is SignatureStatus.INVALID
    assert result.failed_validation == "authenticity"
    assert "bare key" in result.reason


def test_keyless_legacy_signature_is_unchecked_not_valid(root: TrustRoot) -> None:
    result = legacy(
        "dir-img-cosign-valid",
        VALID_DIGEST,
        TOOLKIT_RULE,
        root,
        annotations={"dev.sigstore.cosign/certificate": "-----BEGIN CERTIFICATE-----"},
    )
    assert result.status is SignatureStatus.ERROR


@pytest.mark.parametrize(
    ("payload", "why"),
    [
        (b"not json", "not valid JSON"),
        (
            b'{"critical":{"type":"cosign container image signature","image":'
            b'{"docker-manifest-digest":"X"}},"Critical":{}}',
            "duplicate key",
        ),
        (b'{"critical":{"type":"other","image":{"docker-manifest-digest":"X"}}}', "type"),
        (b'{"critical":{"type":"cosign container image signature"}}', "critical.image"),
    ],
)
def test_hostile_payloads_are_invalid(root: TrustRoot, payload: bytes, why: str) -> None:
    sig = legacy_signature("dir-img-cosign-valid")
    layer = LegacyLayer(sig.media_type, payload, sig.annotations)
    result = verify_legacy(
        subject_digest=VALID_DIGEST,
        layer=layer,
        rule=key_rule("cosign.pub", ignore_tlog=True),
        root=root,
        digest="sha256:" + "1" * 64,
    )
    assert result.status is SignatureStatus.INVALID
    assert why in result.reason


@pytest.mark.parametrize(
    ("annotation", "why"),
    [("", "no dev.cosignproject.cosign/signature"), ("%%%", "not valid base64")],
)
def test_hostile_signature_annotations(root: TrustRoot, annotation: str, why: str) -> None:
    sig = legacy_signature("dir-img-cosign-valid")
    annotations = {**sig.annotations, "dev.cosignproject.cosign/signature": annotation}
    annotations = {k: v for k, v in annotations.items() if v}
    result = verify_legacy(
        subject_digest=VALID_DIGEST,
        layer=LegacyLayer(sig.media_type, sig.payload, annotations),
        rule=key_rule("cosign.pub", ignore_tlog=True),
        root=root,
        digest="sha256:" + "1" * 64,
    )
    assert result.status is SignatureStatus.INVALID
    assert why in result.reason


# --- bundles ---------------------------------------------------------------------------------


def bundle_result(
    data: bytes, subject: str, rule: CosignRule, root: TrustRoot
) -> SignatureResult:
    return verify_bundle(
        subject_digest=subject, data=data, rule=rule, root=root, digest="sha256:" + "2" * 64
    )


@pytest.mark.parametrize("n", [1, 2])
def test_toolkit_bundles_verify_keyless(root: TrustRoot, n: int) -> None:
    out = toolkit_output(n)
    result = bundle_result(out.bundle, out.subject_digest, TOOLKIT_RULE, root)
    assert result.status is SignatureStatus.VALID, result.reason
    assert result.format == "cosign/bundle"
    assert result.signer == f"{TOOLKIT_IDENTITY} ({TOOLKIT_ISSUER})"
    assert result.signing_time is not None
    assert result.signing_time.year == 2025


def test_regexp_identity_and_issuer(root: TrustRoot) -> None:
    out = toolkit_output(1)
    rule = keyless_rule(
        Matcher(regexp=re.compile(r"^https://github\.com/docker/github-builder-experimental/")),
        Matcher(regexp=re.compile(r"^https://token\.actions\.githubusercontent\.com$")),
    )
    assert bundle_result(out.bundle, out.subject_digest, rule, root).status is SignatureStatus.VALID


@pytest.mark.parametrize(
    ("identity", "issuer"),
    [
        (Matcher(exact=TOOLKIT_IDENTITY + "x"), Matcher(exact=TOOLKIT_ISSUER)),
        (Matcher(regexp=re.compile(r"^https://github\.com/acme/")), Matcher(exact=TOOLKIT_ISSUER)),
        (Matcher(exact=TOOLKIT_IDENTITY), Matcher(exact="https://accounts.google.com")),
        (Matcher(exact=TOOLKIT_IDENTITY), Matcher(regexp=re.compile(r"^https://gitlab\.com$"))),
    ],
    ids=["identity", "identity-regexp", "issuer", "issuer-regexp"],
)
def test_wrong_identity_or_issuer_is_invalid(
    root: TrustRoot, identity: Matcher, issuer: Matcher
) -> None:
    out = toolkit_output(1)
    result = bundle_result(out.bundle, out.subject_digest, keyless_rule(identity, issuer), root)
    assert result.status is SignatureStatus.INVALID
    assert result.failed_validation == "authenticity"


def test_github_claims_are_extra_matches(root: TrustRoot) -> None:
    out = toolkit_output(1)
    identity = KeylessIdentity(Matcher(exact=TOOLKIT_IDENTITY), Matcher(exact=TOOLKIT_ISSUER))
    good = replace(
        TOOLKIT_RULE,
        keyless=replace(
            identity, claims=(("github_workflow_repository", "docker/github-builder-test"),)
        ),
    )
    bad = replace(
        TOOLKIT_RULE,
        keyless=replace(identity, claims=(("github_workflow_ref", "refs/heads/release"),)),
    )
    valid = bundle_result(out.bundle, out.subject_digest, good, root)
    assert valid.status is SignatureStatus.VALID
    invalid = bundle_result(out.bundle, out.subject_digest, bad, root)
    assert invalid.status is SignatureStatus.INVALID
    assert "github_workflow_ref" in invalid.reason


def test_bundle_whose_subject_is_another_digest(root: TrustRoot) -> None:
    one, two = toolkit_output(1), toolkit_output(2)
    result = bundle_result(one.bundle, two.subject_digest, TOOLKIT_RULE, root)
    assert result.status is SignatureStatus.INVALID
    assert f"not {two.subject_digest}" in result.reason


def test_attestation_bundle_offered_as_a_signature_is_invalid() -> None:
    root = parse_trusted_root(ATTESTATION_ROOT.read_bytes(), "cosign testdata")
    rule = keyless_rule(
        Matcher(exact="cody@soyland.com"), Matcher(exact="https://github.com/login/oauth")
    )
    subject = "sha256:732112270d7e59418a8c080b134b24cabd67d250d0d0147a97ed95ba5c280aa4"
    result = bundle_result(ATTESTATION_BUNDLE.read_bytes(), subject, rule, root)
    assert result.status is SignatureStatus.INVALID
    assert "is an attestation (https://cosign.sigstore.dev/attestation/v1)" in result.reason


def _edited(data: bytes, edit: Any) -> bytes:
    doc = json.loads(data)
    edit(doc)
    return json.dumps(doc).encode()


def test_tampered_bundle_set_is_invalid(root: TrustRoot) -> None:
    out = toolkit_output(1)

    def tamper(doc: dict[str, Any]) -> None:
        promise = doc["verificationMaterial"]["tlogEntries"][0]["inclusionPromise"]
        raw = bytearray(base64.b64decode(promise["signedEntryTimestamp"]))
        raw[-3] ^= 0x01
        promise["signedEntryTimestamp"] = base64.b64encode(bytes(raw)).decode()

    result = bundle_result(_edited(out.bundle, tamper), out.subject_digest, TOOLKIT_RULE, root)
    assert result.status is SignatureStatus.INVALID


def test_bundle_without_tlog_entry_is_invalid(root: TrustRoot) -> None:
    out = toolkit_output(1)

    def drop(doc: dict[str, Any]) -> None:
        doc["verificationMaterial"]["tlogEntries"] = []

    result = bundle_result(_edited(out.bundle, drop), out.subject_digest, TOOLKIT_RULE, root)
    assert result.status is SignatureStatus.INVALID
    assert "log entry" in result.reason


def test_expired_certificate_without_a_timestamp_is_invalid(root: TrustRoot) -> None:
    # Fulcio certificates live ten minutes; without the log's integrated time (and no TSA
    # timestamp) nothing proves the signature was made while the certificate was valid.
    out = toolkit_output(1)

    def no_log_time(doc: dict[str, Any]) -> None:
        entry = doc["verificationMaterial"]["tlogEntries"][0]
        entry.pop("inclusionPromise")
        entry["integratedTime"] = "0"

    def untime(doc: dict[str, Any]) -> None:
        no_log_time(doc)
        doc["verificationMaterial"].pop("timestampVerificationData")

    result = bundle_result(_edited(out.bundle, untime), out.subject_digest, TOOLKIT_RULE, root)
    assert result.status is SignatureStatus.INVALID
    assert "time" in result.reason
    # The same bundle keeping its RFC 3161 timestamp (from the trusted root's TSA) is valid:
    # the timestamp alone proves when it was signed.
    timestamped = _edited(out.bundle, no_log_time)
    result = bundle_result(timestamped, out.subject_digest, TOOLKIT_RULE, root)
    assert result.status is SignatureStatus.VALID, result.reason


def test_bundle_with_a_bare_key_never_satisfies_a_keyless_rule(root: TrustRoot) -> None:
    out = toolkit_output(1)

    def bare(doc: dict[str, Any]) -> None:
        doc["verificationMaterial"].pop("certificate")
        doc["verificationMaterial"]["publicKey"] = {"hint": "a key"}

    result = bundle_result(_edited(out.bundle, bare), out.subject_digest, TOOLKIT_RULE, root)
    assert result.status is SignatureStatus.INVALID
    assert result.failed_validation == "authenticity"


def test_key_rule_on_a_bundle_is_unchecked_not_valid(root: TrustRoot) -> None:
    out = toolkit_output(1)
    result = bundle_result(out.bundle, out.subject_digest, key_rule("cosign.pub"), root)
    assert result.status is SignatureStatus.ERROR


@pytest.mark.parametrize(
    "data",
    [b"", b"not json", b"[]", b'{"mediaType": "application/vnd.dev.sigstore.bundle.v0.3+json"}'],
)
def test_hostile_bundles_are_invalid(root: TrustRoot, data: bytes) -> None:
    result = bundle_result(data, "sha256:" + "3" * 64, TOOLKIT_RULE, root)
    assert result.status is SignatureStatus.INVALID
    assert result.failed_validation == "integrity"


def test_import_and_verify_in_a_process_without_network() -> None:
    """Importing sigstore (and the auditor) and verifying a bundle opens no socket at all."""
    out = toolkit_output(1)
    script = f"""
import socket
def refuse(*a, **k):
    raise SystemExit("network access attempted")
socket.socket.connect = refuse
socket.create_connection = refuse
socket.getaddrinfo = refuse
import auditor.cli
from pathlib import Path
from auditor.cosign.bundle import verify_bundle
from auditor.cosign.identity import KeylessIdentity, Matcher
from auditor.cosign.material import load_trusted_root
from auditor.cosign.trust import CosignRule
rule = CosignRule("r", ("*",), keyless=KeylessIdentity(
    Matcher(exact={TOOLKIT_IDENTITY!r}), Matcher(exact={TOOLKIT_ISSUER!r})))
for root in (load_trusted_root(None), load_trusted_root(Path({str(TRUSTED_ROOT)!r}))):
    result = verify_bundle(subject_digest={out.subject_digest!r},
        data=Path({str(toolkit_output_path(1))!r}).read_bytes(), rule=rule, root=root, digest="d")
    assert result.status.value == "valid", result.reason
print("ok")
"""
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "ok"
