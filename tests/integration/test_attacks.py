"""Adversarial end-to-end tests: an attacker who controls the registry, not the trust store.

The one property under test: the auditor never reports a node ``signed`` (or a target
``compliant``) that notation would not accept, and never turns "could not check" into a pass.
Each attack rewrites a signed sample (tests/support/attacks.py) and runs ``auditor audit now
--format json`` through the real docker-registry *and* through ``oci-layout:``; each asserts
the exact node status, signature verdicts, target status and exit code. Expectations come
from the Notary Project specification and notation's behaviour, not from earlier output.
"""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

import auditor.app
from auditor.layout.writer import tag_manifest, write_index
from auditor.model import Descriptor, Platform
from auditor.notary.sign import sign_cose, sign_jws
from auditor.oci import mediatypes as mt
from auditor.oci.digest import fallback_tag
from tests.support.attacks import (
    Auditing,
    Scene,
    certificate,
    forge_jws,
    forge_jws_header,
    node,
    only_target,
    signature_results,
    statement,
    tamper_file,
    target_of,
    write_config,
    write_image,
)
from tests.support.registry_server import registry_blob_path
from tests.support.scenarios import CliRun, audit_json, isolate_environment

pytestmark = pytest.mark.registry

AMD64, ARM64, PPC64LE = "linux/amd64", "linux/arm64/v8", "linux/ppc64le"
EXIT = {"compliant": 0, "noncompliant": 1, "error": 3}
INVALID_INTEGRITY = [("invalid", "integrity")]


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    isolate_environment(monkeypatch, tmp_path / "env")


@pytest.fixture(params=["registry", "layout"])
def auditing(request: pytest.FixtureRequest) -> Auditing:
    """Each attack through the real registry and through ``oci-layout:``."""
    if request.param == "registry":
        return Auditing("registry", request.getfixturevalue("registry"))
    return Auditing("layout", None)


@pytest.fixture
def registry_auditing(request: pytest.FixtureRequest) -> Auditing:
    return Auditing("registry", request.getfixturevalue("registry"))


@pytest.fixture
def scene(tmp_path: Path) -> Scene:
    return Scene.build(tmp_path / "scene")


def assert_target(run: CliRun, status: str) -> dict[str, Any]:
    """The one target has ``status`` and the exit code says so; no traceback on stderr."""
    assert "Traceback" not in run.stderr, run.stderr
    target = only_target(run)
    assert target["status"] == status, json.dumps(target, indent=1)[:4000]
    assert run.code == EXIT[status], run.stderr
    return target


def findings(target: dict[str, Any]) -> set[tuple[str, str | None]]:
    return {(f["kind"], f["node"]) for f in target["findings"]}


def reset_fallback(scene: Scene, subject: Descriptor, referrers: list[Descriptor]) -> None:
    """Leave exactly ``referrers`` (claimed to be signatures) attached to ``subject``.

    The fallback tag index lists them, and every other manifest whose ``subject`` is it is
    dropped from ``index.json``, so neither the registry nor the layout's subject scan sees
    more than the attacker left.
    """
    index_path = scene.layout / "index.json"
    index = json.loads(index_path.read_bytes())
    keep = {r.digest for r in referrers}
    entries = []
    for entry in index["manifests"]:
        ref = (entry.get("annotations") or {}).get(mt.ANNOTATION_REF_NAME)
        if ref == fallback_tag(subject.digest):
            continue
        if ref is None and entry["digest"] not in keep:
            body = scene.manifest_json(entry["digest"])
            if (body.get("subject") or {}).get("digest") == subject.digest:
                continue
        entries.append(entry)
    index["manifests"] = entries
    index_path.write_text(json.dumps(index))
    listed = [
        Descriptor(r.media_type, r.digest, r.size, artifact_type=mt.NOTARY_SIGNATURE)
        for r in referrers
    ]
    tag_manifest(scene.layout, write_index(scene.layout, listed), fallback_tag(subject.digest))


def arm64_only(scene: Scene, *referrers: Descriptor) -> Descriptor:
    """Every required node signed by the trusted key, except arm64: it carries ``referrers``."""
    scene.sign_required()
    arm64 = scene.platform(ARM64)
    reset_fallback(scene, arm64, list(referrers))
    return arm64


# --- control ----------------------------------------------------------------------------------


def test_baseline_every_required_node_signed_is_compliant(scene: Scene, auditing: Auditing) -> None:
    """Without an attack the scene is compliant: each attack below is what makes it fail."""
    signed = scene.sign_required()
    target = assert_target(auditing.run(scene), "compliant")
    for name in (AMD64, ARM64, PPC64LE):
        verdict = node(target, scene.platform(name).digest)
        assert verdict["status"] == "signed"
        assert [s["digest"] for s in verdict["signatures"]] == [signed[name].digest]
    assert node(target, scene.index.digest)["status"] == "signed"


# --- signatures that belong to something else -------------------------------------------------


def test_signature_of_another_node_copied_into_fallback_index(
    scene: Scene, auditing: Auditing
) -> None:
    """amd64's genuine signature listed under arm64 (its subject still says amd64)."""
    signed = scene.sign_required()
    arm64 = scene.platform(ARM64)
    reset_fallback(scene, arm64, [signed[AMD64]])
    target = assert_target(auditing.run(scene), "noncompliant")
    verdict = node(target, arm64.digest)
    assert verdict["status"] == "invalid"
    assert [s["digest"] for s in verdict["signatures"]] == [signed[AMD64].digest]
    assert signature_results(target, arm64.digest) == INVALID_INTEGRITY
    assert f"refers to {scene.platform(AMD64).digest}" in verdict["signatures"][0]["reason"]
    assert node(target, scene.platform(AMD64).digest)["status"] == "signed"
    assert findings(target) == {("invalid-signature", arm64.digest)}


@pytest.mark.parametrize("fmt", ["jws", "cose"])
def test_subject_rewritten_but_payload_targets_another_node(
    scene: Scene, auditing: Auditing, fmt: str
) -> None:
    """A new signature manifest whose ``subject`` is arm64, carrying amd64's envelope."""
    amd64_sig = scene.sign(scene.platform(AMD64), fmt=fmt)
    media_type, envelope = scene.envelope_of(amd64_sig)
    arm64 = scene.platform(ARM64)
    forged = scene.forged(envelope, subject=arm64, media_type=media_type)
    arm64_only(scene, forged)
    target = assert_target(auditing.run(scene), "noncompliant")
    verdict = node(target, arm64.digest)
    assert verdict["status"] == "invalid"
    assert [s["digest"] for s in verdict["signatures"]] == [forged.digest]
    assert signature_results(target, arm64.digest) == INVALID_INTEGRITY
    assert "content descriptor mismatch" in verdict["signatures"][0]["reason"]


@pytest.mark.parametrize("field", ["size", "media_type", "digest"])
def test_payload_descriptor_differs_from_node(scene: Scene, auditing: Auditing, field: str) -> None:
    """A trusted signer's envelope on arm64 whose payload has one descriptor field wrong."""
    arm64 = scene.platform(ARM64)
    changes: dict[str, dict[str, Any]] = {
        "size": {"size": arm64.size + 1},
        "media_type": {"media_type": mt.DOCKER_MANIFEST},
        "digest": {"digest": scene.platform(AMD64).digest},
    }
    change = changes[field]
    envelope = sign_jws(
        target_of(arm64, **change),
        scene.trusted.leaf.key,
        scene.trusted.chain,
        signing_time=scene.now,
    )
    forged = scene.forged(envelope, subject=arm64)
    arm64_only(scene, forged)
    target = assert_target(auditing.run(scene), "noncompliant")
    assert node(target, arm64.digest)["status"] == "invalid"
    assert signature_results(target, arm64.digest) == INVALID_INTEGRITY
    assert "content descriptor mismatch" in node(target, arm64.digest)["signatures"][0]["reason"]


# --- referrers that lie about what they are ---------------------------------------------------


def test_referrers_claiming_to_be_signatures_but_are_not(scene: Scene, auditing: Auditing) -> None:
    """Fallback index entries typed as Notary signatures that point at an image and an index."""
    image = write_image(scene.layout, "not a signature")
    tag_manifest(scene.layout, image, "decoy-image")
    index = write_index(scene.layout, [image])
    tag_manifest(scene.layout, index, "decoy-index")
    arm64 = arm64_only(scene, image, index)
    target = assert_target(auditing.run(scene), "noncompliant")
    verdict = node(target, arm64.digest)
    assert verdict["status"] == "invalid"
    reasons = {s["digest"]: s["reason"] for s in verdict["signatures"]}
    assert "0 envelope layers" in reasons[image.digest]
    assert "is an index" in reasons[index.digest]
    assert signature_results(target, arm64.digest) == INVALID_INTEGRITY * 2


@pytest.mark.parametrize(
    "layers",
    [
        [("jws", "jws"), ("jws", "jws2")],
        [("cose", "cose"), ("jws", "jws")],
        [("jws", "jws"), ("application/octet-stream", "jws")],
    ],
    ids=["two-jws", "cose-and-jws", "envelope-plus-other-layer"],
)
def test_signature_manifest_with_more_than_one_layer(
    scene: Scene, auditing: Auditing, layers: list[tuple[str, str]]
) -> None:
    """Every layer is a genuine envelope for arm64; notation still demands exactly one."""
    arm64 = scene.platform(ARM64)
    key, chain = scene.trusted.leaf.key, scene.trusted.chain
    blobs = {
        "jws": sign_jws(arm64, key, chain, signing_time=scene.now),
        "jws2": sign_jws(arm64, key, chain, signing_time=scene.now - timedelta(seconds=5)),
        "cose": sign_cose(arm64, key, chain, signing_time=scene.now),
    }
    types = {"jws": mt.JWS_ENVELOPE, "cose": mt.COSE_ENVELOPE}
    forged = scene.signature_manifest(
        subject=arm64,
        layers=[(types.get(t, t), blobs[b]) for t, b in layers],
        listed_under=None,
    )
    arm64_only(scene, forged)
    target = assert_target(auditing.run(scene), "noncompliant")
    assert node(target, arm64.digest)["status"] == "invalid"
    assert signature_results(target, arm64.digest) == INVALID_INTEGRITY


@pytest.mark.parametrize(
    ("made", "labelled"),
    [
        ("cose", mt.JWS_ENVELOPE),
        ("jws", mt.COSE_ENVELOPE),
        ("jws", "application/octet-stream"),
    ],
    ids=["cose-labelled-jws", "jws-labelled-cose", "jws-labelled-octet-stream"],
)
def test_envelope_media_type_lies(
    scene: Scene, auditing: Auditing, made: str, labelled: str
) -> None:
    """A genuine trusted envelope for arm64 whose layer media type is not what it is."""
    arm64 = scene.platform(ARM64)
    signer = sign_jws if made == "jws" else sign_cose
    envelope = signer(arm64, scene.trusted.leaf.key, scene.trusted.chain, signing_time=scene.now)
    forged = scene.forged(envelope, subject=arm64, media_type=labelled)
    arm64_only(scene, forged)
    target = assert_target(auditing.run(scene), "noncompliant")
    assert node(target, arm64.digest)["status"] == "invalid"
    assert signature_results(target, arm64.digest) == INVALID_INTEGRITY


# --- what a signed index does and does not prove ----------------------------------------------


def _swapped_index(scene: Scene) -> tuple[Descriptor, Descriptor]:
    """A new index, signed by the trusted key, whose arm64 entry is another (unsigned) image;
    the genuine arm64 stays signed but is no longer in the image. The swapped manifest's
    fallback index carries the genuine arm64's signature, for good measure."""
    signed = scene.sign_required()
    genuine = scene.platform(ARM64)
    swapped = write_image(scene.layout, "swapped arm64")
    swapped = Descriptor(
        swapped.media_type, swapped.digest, swapped.size, platform=Platform.parse(ARM64)
    )
    entries = [
        scene.platform(AMD64),
        swapped,
        scene.platform(PPC64LE),
        scene.sample.attestation,
    ]
    index = write_index(scene.layout, entries)
    tag_manifest(scene.layout, index, "v1")
    scene.sign(index)
    reset_fallback(scene, swapped, [signed[ARM64]])
    assert genuine.digest != swapped.digest
    return index, swapped


@pytest.mark.parametrize("require", ["both", "platforms", "either"])
def test_platform_swapped_under_signed_index(
    scene: Scene, auditing: Auditing, require: str
) -> None:
    """The swapped arm64 is not signed, whoever signed the index; ``covered_by`` is all it gets."""
    index, swapped = _swapped_index(scene)
    run = auditing.run(scene, "--require", require)
    expected = "compliant" if require == "either" else "noncompliant"
    target = assert_target(run, expected)
    assert node(target, index.digest)["status"] == "signed"
    verdict = node(target, swapped.digest)
    assert verdict["status"] == "invalid"
    assert verdict["covered_by"] == index.digest
    assert signature_results(target, swapped.digest) == INVALID_INTEGRITY
    assert scene.platform(ARM64).digest not in {n["digest"] for n in target["nodes"]}
    if require != "either":
        assert findings(target) == {("invalid-signature", swapped.digest)}


def test_index_signature_does_not_count_for_platforms(scene: Scene, auditing: Auditing) -> None:
    scene.sign(scene.index)
    target = assert_target(auditing.run(scene, "--require", "platforms"), "noncompliant")
    for name in (AMD64, ARM64, PPC64LE):
        verdict = node(target, scene.platform(name).digest)
        assert verdict["status"] == "unsigned"
        assert verdict["required"] is True
        assert verdict["covered_by"] == scene.index.digest
    assert findings(target) == {
        ("unsigned-platform", scene.platform(n).digest) for n in (AMD64, ARM64, PPC64LE)
    }


@pytest.mark.parametrize("require", ["platforms", "either"])
@pytest.mark.parametrize("platform", ["linux/riscv64", None], ids=["riscv64", "no-platform"])
def test_platform_disguised_as_attestation(
    scene: Scene, auditing: Auditing, require: str, platform: str | None
) -> None:
    """An unsigned image annotated as a buildx attestation, in an unsigned index.

    Runtimes choose index entries by platform (without one, by the image's config), never by
    annotation: a riscv64 host pulls the first. Only ``unknown/unknown`` entries are out of a
    runtime's reach, so only they are attestations; these are platforms and must be signed.
    """
    scene.sign_required()
    evil = write_image(scene.layout, f"evil {platform}")
    disguised = Descriptor(
        evil.media_type,
        evil.digest,
        evil.size,
        platform=Platform.parse(platform) if platform else None,
        annotations={
            mt.ANNOTATION_REFERENCE_TYPE: mt.ATTESTATION_MANIFEST,
            mt.ANNOTATION_REFERENCE_DIGEST: scene.platform(AMD64).digest,
        },
    )
    entries = [*scene.sample.platforms.values(), scene.sample.attestation, disguised]
    tag_manifest(scene.layout, write_index(scene.layout, entries), "v1")
    target = assert_target(auditing.run(scene, "--require", require), "noncompliant")
    verdict = node(target, evil.digest)
    assert verdict["kind"] == "platform"
    assert verdict["status"] == "unsigned"
    assert verdict["required"] is True
    assert ("unsigned-platform", evil.digest) in findings(target)
    # The real buildx attestation (unknown/unknown) is still an attestation.
    assert node(target, scene.sample.attestation.digest)["kind"] == "attestation"


def test_platformless_entry_is_required_under_a_platform_selector(
    scene: Scene, auditing: Auditing, tmp_path: Path
) -> None:
    """An index entry without ``platform`` could be any platform (containerd reads its config
    to decide), so a selector cannot rule it out: it must be signed too."""
    scene.sign_required()
    anonymous = write_image(scene.layout, "no platform field")
    entries = [*scene.sample.platforms.values(), anonymous]
    tag_manifest(scene.layout, write_index(scene.layout, entries), "v1")
    config = write_config(
        tmp_path / "auditor.yaml",
        {"coverage": [{"scope": "*", "require": "platforms", "platforms": [AMD64]}]},
    )
    target = assert_target(auditing.run(scene, "--config", str(config)), "noncompliant")
    verdict = node(target, anonymous.digest)
    assert (verdict["status"], verdict["required"], verdict["platform"]) == ("unsigned", True, None)
    assert node(target, scene.platform(ARM64).digest)["required"] is False
    assert findings(target) == {("unsigned-platform", anonymous.digest)}


# --- trust policy scope confusion -------------------------------------------------------------


def _stranger_signs_arm64(scene: Scene) -> Descriptor:
    arm64 = scene.platform(ARM64)
    scene.sign_required()
    stranger = scene.sign(arm64, trusted=False)
    reset_fallback(scene, arm64, [stranger])
    return arm64


@pytest.mark.parametrize(
    ("lax_scope", "level", "expected"),
    [
        ("{host}/other/repo", "audit", "invalid"),
        ("{host}/other/repo", "skip", "invalid"),
        ("localhost:{port}/{repo}", "audit", "invalid"),
        ("127.0.0.1/{repo}", "audit", "invalid"),
        ("{host}/{repo}/sub", "audit", "invalid"),
        ("{host}/{repo}", "audit", "signed"),
    ],
    ids=["other-repo", "other-repo-skip", "localhost-alias", "no-port", "child-repo", "exact"],
)
def test_lax_statement_applies_to_its_scope_only(
    scene: Scene, registry_auditing: Auditing, lax_scope: str, level: str, expected: str
) -> None:
    """A lax statement for some scope, strict ``*`` for the rest; a stranger signed arm64."""
    arm64 = _stranger_signs_arm64(scene)
    scope = registry_auditing.push(scene)
    host, repo = scope.split("/", 1)
    port = host.rsplit(":", 1)[1]
    lax = lax_scope.format(host=host, port=port, repo=repo)
    scene.write_policy([statement("lax", [lax], level), statement("strict", ["*"], "strict")])
    run = audit_json(f"{scope}:v1", *scene.trust_args())
    target = assert_target(run, "compliant" if expected == "signed" else "noncompliant")
    verdict = node(target, arm64.digest)
    assert verdict["status"] == expected
    if expected == "signed":
        (sig,) = verdict["signatures"]
        assert len(sig["warnings"]) == 1
        assert "authenticity" in sig["warnings"][0]
    else:
        assert signature_results(target, arm64.digest) == [("invalid", "authenticity")]


def test_strict_statement_for_the_repository_beats_a_lax_wildcard(
    scene: Scene, registry_auditing: Auditing
) -> None:
    arm64 = _stranger_signs_arm64(scene)
    scope = registry_auditing.push(scene)
    scene.write_policy([statement("lax", ["*"], "skip"), statement("strict", [scope], "strict")])
    target = assert_target(audit_json(f"{scope}:v1", *scene.trust_args()), "noncompliant")
    assert node(target, arm64.digest)["status"] == "invalid"
    assert signature_results(target, arm64.digest) == [("invalid", "authenticity")]


@pytest.mark.parametrize("trick", ["upper-case", "trailing-slash", "tag", "scheme"])
def test_malformed_scope_tricks_are_a_config_error(
    scene: Scene, registry_auditing: Auditing, trick: str
) -> None:
    """Scopes notation refuses (it would not verify at all) are refused: exit 2, no report."""
    _stranger_signs_arm64(scene)
    scope = registry_auditing.push(scene)
    host, repo = scope.split("/", 1)
    lax = {
        "upper-case": f"{host}/{repo.upper()}",
        "trailing-slash": f"{scope}/",
        "tag": f"{scope}:v1",
        "scheme": f"http://{scope}",
    }[trick]
    scene.write_policy([statement("lax", [lax], "audit"), statement("strict", ["*"], "strict")])
    run = audit_json(f"{scope}:v1", *scene.trust_args())
    assert (run.code, run.stdout) == (2, "")
    assert "registry scope" in run.stderr
    assert "Traceback" not in run.stderr


# --- certificate chains -----------------------------------------------------------------------


def _chain_attack(scene: Scene, attack: str) -> tuple[Any, list[Any]]:
    trusted, stranger = scene.trusted, scene.stranger
    root_name = trusted.root.cert.subject
    if attack == "trusted-root-appended":
        return stranger.leaf.key, [*stranger.chain, trusted.root.cert]
    if attack == "trusted-root-as-issuer":
        return stranger.leaf.key, [stranger.leaf.cert, trusted.root.cert]
    if attack == "trusted-leaf-other-key":
        return stranger.leaf.key, list(trusted.chain)
    if attack == "self-signed-leaf-named-like-root":
        key = stranger.leaf.key
        leaf = certificate(
            subject=root_name,
            key=key,
            issuer_name=root_name,
            issuer_key=key,
            not_before=scene.now - timedelta(hours=1),
            not_after=scene.now + timedelta(days=1),
            ca=False,
            serial=trusted.root.cert.serial_number,
        )
        return key, [leaf]
    if attack == "forged-root-same-name":
        forged_root = certificate(
            subject=root_name,
            key=stranger.root.key,
            issuer_name=root_name,
            issuer_key=stranger.root.key,
            not_before=trusted.root.cert.not_valid_before_utc,
            not_after=trusted.root.cert.not_valid_after_utc,
            ca=True,
            serial=trusted.root.cert.serial_number,
        )
        leaf = certificate(
            subject=trusted.leaf.cert.subject,
            key=stranger.leaf.key,
            issuer_name=root_name,
            issuer_key=stranger.root.key,
            not_before=scene.now - timedelta(hours=1),
            not_after=scene.now + timedelta(days=1),
            ca=False,
            serial=trusted.leaf.cert.serial_number,
        )
        return stranger.leaf.key, [leaf, forged_root]
    if attack == "chain-too-long":
        return trusted.leaf.key, [*trusted.chain] * 6
    raise AssertionError(attack)


@pytest.mark.parametrize(
    ("attack", "failed"),
    [
        ("trusted-root-appended", "integrity"),
        ("trusted-root-as-issuer", "integrity"),
        ("trusted-leaf-other-key", "integrity"),
        ("self-signed-leaf-named-like-root", "authenticity"),
        ("forged-root-same-name", "authenticity"),
        ("chain-too-long", "integrity"),
    ],
)
def test_certificate_chain_attacks(
    scene: Scene, auditing: Auditing, attack: str, failed: str
) -> None:
    arm64 = scene.platform(ARM64)
    key, chain = _chain_attack(scene, attack)
    envelope = forge_jws(arm64, key, chain, signing_time=scene.now)
    arm64_only(scene, scene.forged(envelope, subject=arm64))
    target = assert_target(auditing.run(scene), "noncompliant")
    assert node(target, arm64.digest)["status"] == "invalid"
    assert signature_results(target, arm64.digest) == [("invalid", failed)]


# --- time -------------------------------------------------------------------------------------


def test_expired_leaf_without_timestamp_under_strict(scene: Scene, auditing: Auditing) -> None:
    arm64 = scene.platform(ARM64)
    leaf = scene.leaf(
        scene.trusted.root,
        common_name="attacks-expired",
        not_before=scene.now - timedelta(minutes=50),
        not_after=scene.now - timedelta(minutes=10),
    )
    envelope = sign_jws(
        arm64,
        leaf.key,
        [leaf.cert, scene.trusted.root.cert],
        signing_time=scene.now - timedelta(minutes=30),
    )
    arm64_only(scene, scene.forged(envelope, subject=arm64))
    target = assert_target(auditing.run(scene), "noncompliant")
    assert node(target, arm64.digest)["status"] == "invalid"
    assert signature_results(target, arm64.digest) == [("invalid", "authenticTimestamp")]


def test_signature_expiry_in_the_past(scene: Scene, auditing: Auditing) -> None:
    arm64 = scene.platform(ARM64)
    envelope = sign_jws(
        arm64,
        scene.trusted.leaf.key,
        scene.trusted.chain,
        signing_time=scene.now - timedelta(minutes=30),
        expiry=scene.now - timedelta(minutes=1),
    )
    arm64_only(scene, scene.forged(envelope, subject=arm64))
    target = assert_target(auditing.run(scene), "noncompliant")
    assert node(target, arm64.digest)["status"] == "invalid"
    assert signature_results(target, arm64.digest) == [("invalid", "expiry")]


def test_signing_time_in_the_future_is_accepted_like_notation(
    scene: Scene, auditing: Auditing
) -> None:
    """notation does not judge notary.x509's (unauthenticated) signing time: without a
    timestamp only the certificates' validity *now* counts. So this is signed; the control
    that the time is merely reported, not trusted."""
    arm64 = scene.platform(ARM64)
    future = scene.now + timedelta(days=2)
    envelope = sign_jws(arm64, scene.trusted.leaf.key, scene.trusted.chain, signing_time=future)
    arm64_only(scene, scene.forged(envelope, subject=arm64))
    target = assert_target(auditing.run(scene), "compliant")
    (sig,) = node(target, arm64.digest)["signatures"]
    assert (sig["status"], sig["timestamped"]) == ("valid", False)
    assert sig["signing_time"] == future.strftime("%Y-%m-%dT%H:%M:%SZ")


@pytest.mark.parametrize(
    "when", ["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00", "2024-02-30T00:00:00Z"]
)
def test_unrepresentable_signing_time_is_invalid_not_a_crash(
    scene: Scene, auditing: Auditing, when: str
) -> None:
    """The protected header is parsed before any signature check: anyone can send this."""
    arm64 = scene.platform(ARM64)
    protected = {
        "alg": "PS384",
        "cty": mt.NOTARY_PAYLOAD,
        "io.cncf.notary.signingScheme": "notary.x509",
        "io.cncf.notary.signingTime": when,
        "crit": ["io.cncf.notary.signingScheme"],
    }
    envelope = forge_jws_header(
        target_of(arm64), scene.stranger.leaf.key, scene.stranger.chain, protected
    )
    arm64_only(scene, scene.forged(envelope, subject=arm64))
    target = assert_target(auditing.run(scene), "noncompliant")
    assert node(target, arm64.digest)["status"] == "invalid"
    assert signature_results(target, arm64.digest) == INVALID_INTEGRITY


# --- size bounds ------------------------------------------------------------------------------


def test_envelope_over_the_size_limit(scene: Scene, auditing: Auditing, tmp_path: Path) -> None:
    """A genuine envelope bigger than ``limits.max_envelope_bytes`` is not read, so not signed."""
    scene.sign_required()
    config = write_config(tmp_path / "auditor.yaml", {"limits": {"max_envelope_bytes": 1024}})
    target = assert_target(auditing.run(scene, "--config", str(config)), "noncompliant")
    for digest in (scene.index.digest, *(d.digest for d in scene.sample.platforms.values())):
        assert node(target, digest)["status"] == "invalid"
        (sig,) = node(target, digest)["signatures"]
        assert "exceeds the limit of 1024" in sig["reason"]


@pytest.mark.parametrize("delta", [-100, 100])
def test_envelope_layer_descriptor_lies_about_its_size(
    scene: Scene, auditing: Auditing, delta: int
) -> None:
    """The envelope is genuine, its layer descriptor's size is not: notation's fetch of the
    blob fails its size check, so the signature is not accepted."""
    arm64 = scene.platform(ARM64)
    envelope = sign_jws(arm64, scene.trusted.leaf.key, scene.trusted.chain, signing_time=scene.now)
    forged = scene.signature_manifest(
        subject=arm64,
        layers=[(mt.JWS_ENVELOPE, envelope)],
        layer_sizes=[len(envelope) + delta],
        listed_under=None,
    )
    arm64_only(scene, forged)
    target = assert_target(auditing.run(scene), "noncompliant")
    assert node(target, arm64.digest)["status"] == "invalid"
    assert signature_results(target, arm64.digest) == INVALID_INTEGRITY


def test_index_nested_past_the_depth_limit_is_an_error(scene: Scene, auditing: Auditing) -> None:
    """Nine signed index levels around the signed sample: the innermost index's children are
    never read, so the target is not compliant, though every node that was read is signed."""
    scene.sign_required()
    outer = scene.index
    wrappers = []
    for _ in range(8):
        outer = write_index(scene.layout, [outer])
        scene.sign(outer)
        wrappers.append(outer)
    tag_manifest(scene.layout, outer, "deep")
    target = assert_target(auditing.run(scene, tag="deep"), "error")
    assert all(node(target, w.digest)["status"] == "signed" for w in wrappers)
    inner = node(target, scene.index.digest)
    assert inner["status"] == "error"
    assert "nests deeper than 8" in inner["reason"]
    assert findings(target) == {("unchecked", scene.index.digest)}
    assert len(target["nodes"]) == 9


def test_valid_signature_beyond_the_per_node_bound_is_not_tried(
    scene: Scene, auditing: Auditing, tmp_path: Path
) -> None:
    """Three junk signatures sort before arm64's genuine one; with a bound of 3 it is never
    tried (notation gives up too). With a bound of 4 the same image is compliant."""
    arm64 = scene.platform(ARM64)
    key, chain = scene.trusted.leaf.key, scene.trusted.chain
    seconds = 0
    while True:  # a genuine signature whose digest sorts in the upper half
        envelope = sign_jws(arm64, key, chain, signing_time=scene.now - timedelta(seconds=seconds))
        genuine = scene.forged(envelope, subject=arm64)
        if genuine.digest > "sha256:8":
            break
        seconds += 1
    junk: list[Descriptor] = []
    nonce = 0
    while len(junk) < 3:
        nonce += 1
        candidate = scene.signature_manifest(
            subject=arm64, layers=[(mt.JWS_ENVELOPE, b"{}")], listed_under=None, nonce=str(nonce)
        )
        if candidate.digest < genuine.digest:
            junk.append(candidate)
    arm64_only(scene, *junk, genuine)

    bounded = write_config(tmp_path / "bound3.yaml", {"limits": {"max_signatures_per_node": 3}})
    target = assert_target(auditing.run(scene, "--config", str(bounded)), "noncompliant")
    verdict = node(target, arm64.digest)
    assert verdict["status"] == "invalid"
    assert signature_results(target, arm64.digest) == [
        ("error", None),
        *INVALID_INTEGRITY * 3,
    ]
    (untried,) = [s for s in verdict["signatures"] if s["status"] == "error"]
    assert untried["digest"] == genuine.digest
    assert "1 more signatures not tried: limit of 3 per node" in untried["reason"]

    enough = write_config(tmp_path / "bound4.yaml", {"limits": {"max_signatures_per_node": 4}})
    target = assert_target(auditing.run(scene, "--config", str(enough)), "compliant")
    assert node(target, arm64.digest)["status"] == "signed"


# --- registry failures and tampered storage ---------------------------------------------------


class _EnvelopeFault(httpx.AsyncBaseTransport):
    """Forwards to the real registry, except requests for one blob: those fail.

    Injected (not a real registry behaviour we can provoke): distribution cannot be made to
    answer 503 or cut the connection for one blob on demand.
    """

    def __init__(self, digest: str, fault: str) -> None:
        self.inner = httpx.AsyncHTTPTransport()
        self.digest = digest
        self.fault = fault
        self.hits = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith(f"/blobs/{self.digest}"):
            self.hits += 1
            if self.fault == "503":
                return httpx.Response(503, request=request, text="unavailable")
            raise httpx.RemoteProtocolError("connection cut by the test", request=request)
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self.inner.aclose()


@pytest.mark.parametrize("fault", ["503", "cut"])
def test_envelope_blob_unavailable_is_an_error(
    scene: Scene,
    registry_auditing: Auditing,
    monkeypatch: pytest.MonkeyPatch,
    fault: str,
) -> None:
    signed = scene.sign_required()
    _, envelope = scene.envelope_of(signed[AMD64])
    (layer,) = scene.manifest_json(signed[AMD64].digest)["layers"]
    transport = _EnvelopeFault(str(layer["digest"]), fault)

    class FaultyApp(auditor.app.App):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, transport=transport, **kwargs)

    monkeypatch.setattr(auditor.app, "App", FaultyApp)
    scope = registry_auditing.push(scene)
    target = assert_target(audit_json(f"{scope}:v1", *scene.trust_args()), "error")
    assert transport.hits >= 2  # retried, then given up
    amd64 = scene.platform(AMD64).digest
    assert node(target, amd64)["status"] == "error"
    assert signature_results(target, amd64) == [("error", None)]
    assert findings(target) == {("unchecked", amd64)}
    assert len(envelope) == layer["size"]


def _tampered(
    scene: Scene, auditing: Auditing, digest: str, *, verify_children: bool = False
) -> CliRun:
    """Audit after the stored bytes of ``digest`` were changed (same length); with
    ``verify_children``, under ``verify_children_exist: true``."""
    extra: list[str] = []
    if verify_children:
        config = write_config(scene.layout.parent / "verify.yaml", {"verify_children_exist": True})
        extra = ["--config", str(config)]
    if auditing.mode == "layout":
        tamper_file(scene.layout / "blobs" / "sha256" / digest.split(":", 1)[1])
        return auditing.run(scene, *extra)
    assert auditing.registry is not None
    scope = auditing.push(scene)
    tamper_file(registry_blob_path(auditing.registry, digest))
    return audit_json(f"{scope}:v1", *scene.trust_args(), *extra)


def test_tampered_platform_manifest_is_an_error(scene: Scene, auditing: Auditing) -> None:
    """Under ``verify_children_exist: true`` every platform manifest is fetched and checked."""
    scene.sign_required()
    arm64 = scene.platform(ARM64).digest
    target = assert_target(_tampered(scene, auditing, arm64, verify_children=True), "error")
    verdict = node(target, arm64)
    assert verdict["status"] == "error"
    assert "hashes to" in verdict["reason"]
    assert ("unchecked", arm64) in findings(target)
    assert all(n["status"] in ("signed", "error", "unsigned") for n in target["nodes"])
    assert not any(f["kind"] != "unchecked" for f in target["findings"])


def test_tampered_platform_manifest_not_fetched_is_judged_on_its_index_descriptor(
    scene: Scene, registry_auditing: Auditing
) -> None:
    """By default a platform manifest is not fetched: its signature covers the descriptor in
    the index (digest, media type, size), which is what the node is judged on, as ``notation
    verify REPO@DIGEST`` resolves the digest without reading the body. The tampered bytes
    cannot be pulled (a runtime checks the digest), so nothing unsigned runs: the verdict is
    the signature's. (A layout is read whole to find referrers by ``subject``, so there the
    tampered blob is an error either way: test above.)"""
    scene.sign_required()
    arm64 = scene.platform(ARM64).digest
    target = assert_target(_tampered(scene, registry_auditing, arm64), "compliant")
    verdict = node(target, arm64)
    assert verdict["status"] == "signed"
    assert signature_results(target, arm64) == [("valid", None)]
    assert not target["findings"]


@pytest.mark.parametrize("part", ["envelope", "signature-manifest"])
def test_tampered_signature_is_an_error(scene: Scene, auditing: Auditing, part: str) -> None:
    signed = scene.sign_required()
    amd64 = scene.platform(AMD64).digest
    (layer,) = scene.manifest_json(signed[AMD64].digest)["layers"]
    digest = str(layer["digest"]) if part == "envelope" else signed[AMD64].digest
    target = assert_target(_tampered(scene, auditing, digest), "error")
    assert node(target, amd64)["status"] == "error"
    if auditing.mode == "layout" and part == "signature-manifest":
        # A corrupt manifest listed in index.json could hide any node's signatures, so the
        # layout's referrer scan fails as a whole: every node is unchecked, none is signed.
        assert {n["status"] for n in target["nodes"]} == {"error"}
        assert all("hashes to" in n["reason"] for n in target["nodes"])
        return
    assert signature_results(target, amd64) == [("error", None)]
    assert findings(target) == {("unchecked", amd64)}

