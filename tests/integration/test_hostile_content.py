"""Hostile content, end to end: what the registry or the layout holds is written by an attacker.

Each class of issue 7's parsing half, through Debian's docker-registry (which validates what it
stores with Go's encoding/json, so everything pushed here is what a Go registry accepts) and
through ``oci-layout:``: two readers must not see two images; every index entry counts with its
own platform; attachment-named tags are skipped only for what they really hold; layouts read
only regular files; parsers never raise outside the error family. Every audit runs under a time
bound and asserts the target's verdict, the exit code and that no traceback escaped.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import asn1crypto.x509 as asn1_x509
import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from auditor.layout.writer import tag_manifest, write_blob, write_index
from auditor.model import Descriptor, Platform
from auditor.notary import jws
from auditor.notary.crypto import algorithm_for_key
from auditor.notary.sign import sign_jws
from auditor.oci import mediatypes as mt
from auditor.oci.digest import fallback_tag
from auditor.oci.manifest import descriptor_json
from tests.support.attacks import (
    Auditing,
    Scene,
    forge_jws,
    forge_jws_header,
    node,
    only_target,
    signature_results,
    target_of,
    write_image,
)
from tests.support.hostile_content import Stage, within
from tests.support.scenarios import CliRun, audit_json, isolate_environment

pytestmark = pytest.mark.registry

AMD64, ARM64, PPC64LE = "linux/amd64", "linux/arm64/v8", "linux/ppc64le"
EXIT = {"compliant": 0, "noncompliant": 1, "error": 3}
INVALID_INTEGRITY = [("invalid", "integrity")]


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    isolate_environment(monkeypatch, tmp_path / "env")


@pytest.fixture(params=["registry", "layout"])
def stage(request: pytest.FixtureRequest, tmp_path: Path) -> Stage:
    scene = Scene.build(tmp_path / "scene")
    if request.param == "registry":
        return Stage(Auditing("registry", request.getfixturevalue("registry")), scene)
    return Stage(Auditing("layout", None), scene)


@pytest.fixture
def layout_stage(tmp_path: Path) -> Stage:
    return Stage(Auditing("layout", None), Scene.build(tmp_path / "scene"))


def verdict(run: CliRun, status: str) -> dict[str, Any]:
    """The one target has ``status``, the exit code says so, no traceback reached stderr."""
    assert "Traceback" not in run.stderr, run.stderr
    target = only_target(run)
    assert target["status"] == status, json.dumps(target, indent=1)[:4000]
    assert run.code == EXIT[status], run.stderr
    return target


def sign_all_but(stage: Stage, *unsigned: str) -> None:
    """Trusted signatures on the index and every platform except ``unsigned``."""
    stage.scene.sign(stage.scene.index)
    for name, descriptor in stage.scene.sample.platforms.items():
        if name not in unsigned:
            stage.scene.sign(descriptor)


def entry_json(descriptor: Descriptor, platform: str | None = None) -> dict[str, Any]:
    out = descriptor_json(descriptor)
    if platform is not None:
        p = Platform.parse(platform)
        out["platform"] = {"architecture": p.architecture, "os": p.os}
    return out


# --- two readers, two meanings ----------------------------------------------------------------


def _case_variant_list(doc: dict[str, Any], evil: Descriptor) -> bytes:
    doc["Manifests"] = [entry_json(evil, AMD64)]
    return json.dumps(doc).encode()


def _duplicate_key(doc: dict[str, Any], evil: Descriptor) -> bytes:
    text = json.dumps(doc)
    return (text[:-1] + ', "manifests": ' + json.dumps([entry_json(evil, AMD64)]) + "}").encode()


def _case_variant_platform(doc: dict[str, Any], evil: Descriptor) -> bytes:
    doc["manifests"][0]["Platform"] = {"architecture": "s390x", "os": "linux"}
    return json.dumps(doc).encode()


@pytest.mark.parametrize(
    ("rewrite", "message"),
    [
        (_case_variant_list, "keys 'manifests' and 'Manifests' both set field 'manifests'"),
        (_duplicate_key, "duplicate key 'manifests'"),
        (_case_variant_platform, "keys 'platform' and 'Platform' both set field 'platform'"),
    ],
)
def test_an_index_go_reads_differently_is_refused_even_when_signed(
    stage: Stage, rewrite: Callable[[dict[str, Any], Descriptor], bytes], message: str
) -> None:
    """The publisher signed an index whose JSON has two readings: Go's (the registry's and the
    runtime's) lists an unsigned image, a naive reading lists the signed platforms. The
    auditor refuses it, naming the keys; it never picks the signed reading."""
    scene = stage.scene
    sign_all_but(stage)
    evil = write_image(scene.layout, "evil payload")
    tag_manifest(scene.layout, evil, "evil")
    ambiguous = stage.put(
        rewrite(scene.manifest_json(scene.index.digest), evil), mt.OCI_INDEX, "v1"
    )
    stage.sign(ambiguous)
    target = verdict(stage.audit(":v1"), "error")
    assert message in target["error"]
    assert ambiguous.digest in target["error"] or "v1" in target["reference"]


def test_a_signature_manifest_go_reads_differently_is_invalid(stage: Stage) -> None:
    """A trusted envelope over arm64 under ``layers``, an unrelated blob under ``Layers``:
    notation (Go) reads the second, so the signature is refused as invalid, not counted."""
    scene = stage.scene
    sign_all_but(stage, ARM64)
    arm64 = scene.platform(ARM64)
    envelope = sign_jws(
        target_of(arm64), scene.trusted.leaf.key, scene.trusted.chain, signing_time=scene.now
    )
    other = b"not the envelope"
    config = Descriptor(mt.NOTARY_SIGNATURE, write_blob(scene.layout, b"{}"), 2)
    layer = Descriptor(mt.JWS_ENVELOPE, write_blob(scene.layout, envelope), len(envelope))
    decoy = Descriptor(mt.JWS_ENVELOPE, write_blob(scene.layout, other), len(other))
    doc = {
        "schemaVersion": 2,
        "mediaType": mt.OCI_MANIFEST,
        "artifactType": mt.NOTARY_SIGNATURE,
        "config": descriptor_json(config),
        "layers": [descriptor_json(layer)],
        "Layers": [descriptor_json(decoy)],
        "subject": descriptor_json(Descriptor(arm64.media_type, arm64.digest, arm64.size)),
    }
    signature = stage.put(json.dumps(doc).encode(), mt.OCI_MANIFEST)
    listed = Descriptor(
        signature.media_type, signature.digest, signature.size, artifact_type=mt.NOTARY_SIGNATURE
    )
    fallback = write_index(scene.layout, [listed])
    stage.put(scene.blob(fallback.digest), mt.OCI_INDEX, fallback_tag(arm64.digest))
    target = verdict(stage.audit(":v1"), "noncompliant")
    arm = node(target, arm64.digest)
    assert arm["status"] == "invalid"
    assert signature_results(target, arm64.digest) == INVALID_INTEGRITY
    assert "both set field 'layers'" in arm["signatures"][0]["reason"]


def test_a_protected_header_go_reads_differently_is_invalid(stage: Stage) -> None:
    """Validly signed by the trusted key, but ``cty`` twice in two cases: refused (integrity)."""
    scene = stage.scene
    sign_all_but(stage, ARM64)
    arm64 = scene.platform(ARM64)
    protected = {
        "alg": algorithm_for_key(scene.trusted.leaf.key).name,
        "cty": mt.NOTARY_PAYLOAD,
        "CTY": "application/octet-stream",
        "io.cncf.notary.signingScheme": "notary.x509",
        "io.cncf.notary.signingTime": scene.now.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "crit": ["io.cncf.notary.signingScheme"],
    }
    envelope = forge_jws_header(
        target_of(arm64), scene.trusted.leaf.key, scene.trusted.chain, protected
    )
    scene.forged(envelope, subject=arm64)
    target = verdict(stage.audit(":v1"), "noncompliant")
    assert node(target, arm64.digest)["status"] == "invalid"
    assert signature_results(target, arm64.digest) == INVALID_INTEGRITY
    assert "both set field 'cty'" in node(target, arm64.digest)["signatures"][0]["reason"]


# --- every index entry is its own edge -------------------------------------------------------


def test_a_digest_listed_as_attestation_and_as_platform_is_a_platform(stage: Stage) -> None:
    """ppc64le listed first as a buildx attestation (unknown/unknown + annotation), then as
    linux/ppc64le: a runtime pulls it for ppc64le, so it must be signed."""
    scene = stage.scene
    amd64, arm64, ppc = (scene.platform(p) for p in (AMD64, ARM64, PPC64LE))
    attestation = Descriptor(
        ppc.media_type,
        ppc.digest,
        ppc.size,
        annotations={
            mt.ANNOTATION_REFERENCE_TYPE: mt.ATTESTATION_MANIFEST,
            mt.ANNOTATION_REFERENCE_DIGEST: amd64.digest,
        },
        platform=Platform("unknown", "unknown"),
    )
    entries = [
        attestation,
        Descriptor(amd64.media_type, amd64.digest, amd64.size, platform=Platform.parse(AMD64)),
        Descriptor(arm64.media_type, arm64.digest, arm64.size, platform=Platform.parse(ARM64)),
        Descriptor(ppc.media_type, ppc.digest, ppc.size, platform=Platform.parse(PPC64LE)),
    ]
    index = write_index(scene.layout, entries)
    tag_manifest(scene.layout, index, "v1")
    for signed in (index, amd64, arm64):
        scene.sign(signed)
    target = verdict(stage.audit(":v1"), "noncompliant")
    ppc_node = node(target, ppc.digest)
    assert (ppc_node["kind"], ppc_node["status"], ppc_node["required"]) == (
        "platform",
        "unsigned",
        True,
    )
    assert [(f["kind"], f["node"]) for f in target["findings"]] == [
        ("unsigned-platform", ppc.digest)
    ]


# --- attachment-named tags --------------------------------------------------------------------


def test_attachment_named_tags_are_skipped_only_for_what_they_hold(stage: Stage) -> None:
    """Genuine fallback tags and a genuine cosign signature are not targets; an image pushed
    under ``sha256-<hex>``, an index of non-referrers under a fallback name and an image under
    ``sha256-<hex>.sig`` are pullable content and are audited like any tag."""
    scene = stage.scene
    scene.sign_required()
    amd64 = scene.platform(AMD64)
    evil = write_image(scene.layout, "pulled from an attachment tag")
    runnable = Descriptor(mt.OCI_MANIFEST, evil.digest, evil.size, platform=Platform.parse(AMD64))
    evil_index = write_index(scene.layout, [runnable])
    simplesigning = b'{"critical": {}}'
    cosign_sig = {
        "schemaVersion": 2,
        "mediaType": mt.OCI_MANIFEST,
        "config": descriptor_json(Descriptor(mt.OCI_EMPTY, write_blob(scene.layout, b"{}"), 2)),
        "layers": [
            descriptor_json(
                Descriptor(
                    mt.COSIGN_SIMPLESIGNING,
                    write_blob(scene.layout, simplesigning),
                    len(simplesigning),
                )
            )
        ],
    }
    raw_sig = json.dumps(cosign_sig).encode()
    genuine_cosign = Descriptor(mt.OCI_MANIFEST, write_blob(scene.layout, raw_sig), len(raw_sig))
    impostors = {
        "sha256-" + "e" * 64: evil,
        fallback_tag(evil.digest): evil_index,
        fallback_tag(scene.index.digest) + ".sig": evil,
    }
    for tag, descriptor in impostors.items():
        stage.forward(descriptor, tag)
    stage.forward(genuine_cosign, fallback_tag(amd64.digest) + ".sig")
    run = stage.audit("")
    assert "Traceback" not in run.stderr, run.stderr
    by_tag = {t["reference"].rsplit(":", 1)[1]: t for t in run.report["targets"]}
    for tag in impostors:
        assert by_tag[tag]["status"] == "noncompliant", by_tag[tag]
    assert by_tag["v1"]["status"] == "compliant"
    genuine = {fallback_tag(d.digest) for d in (scene.index, *scene.sample.platforms.values())}
    genuine.add(fallback_tag(amd64.digest) + ".sig")
    assert not genuine & set(by_tag), sorted(genuine & set(by_tag))
    assert run.code == 1


# --- OCI layouts: only regular files ----------------------------------------------------------


def _fifo(path: Path) -> None:
    path.unlink()
    os.mkfifo(path)


def _dev_zero(path: Path) -> None:
    path.unlink()
    path.symlink_to("/dev/zero")


def _blob_path(scene: Scene, digest: str) -> Path:
    return scene.layout / "blobs" / "sha256" / digest.split(":", 1)[1]


@pytest.mark.parametrize(
    ("where", "replace", "kind"),
    [
        ("index.json", _fifo, "a FIFO"),
        ("index.json", _dev_zero, "a character device"),
        ("oci-layout", _fifo, "a FIFO"),
        ("oci-layout", _dev_zero, "a character device"),
        ("arm64 manifest", _fifo, "a FIFO"),
        ("arm64 manifest", _dev_zero, "a character device"),
    ],
)
def test_special_files_in_a_layout_neither_block_nor_fill_memory(
    layout_stage: Stage, where: str, replace: Callable[[Path], None], kind: str
) -> None:
    scene = layout_stage.scene
    scene.sign_required()
    paths = {
        "index.json": scene.layout / "index.json",
        "oci-layout": scene.layout / "oci-layout",
        "arm64 manifest": _blob_path(scene, scene.platform(ARM64).digest),
    }
    replace(paths[where])
    target = verdict(layout_stage.audit(":v1", seconds=20), "error")
    reasons = [target["error"] or "", *(n["reason"] for n in target["nodes"])]
    assert any(f"is {kind}, not a regular file" in r for r in reasons), reasons


def test_a_fifo_given_as_a_layout_tar_does_not_block(tmp_path: Path) -> None:
    fifo = tmp_path / "layout.tar"
    os.mkfifo(fifo)
    run = within(20, lambda: audit_json(f"oci-layout:{fifo}:v1"))
    target = verdict(run, "error")
    assert "is a FIFO, not a layout directory or tar" in target["error"]


# --- parsers never raise outside the error family ---------------------------------------------

DEEP = b'{"a":' * 100_000 + b"1" + b"}" * 100_000


def test_an_envelope_nested_100000_deep_is_an_invalid_signature(stage: Stage) -> None:
    scene = stage.scene
    sign_all_but(stage, ARM64)
    arm64 = scene.platform(ARM64)
    scene.forged(DEEP, subject=arm64)
    target = verdict(stage.audit(":v1"), "noncompliant")
    assert node(target, arm64.digest)["status"] == "invalid"
    assert signature_results(target, arm64.digest) == INVALID_INTEGRITY


def test_a_protected_header_nested_100000_deep_is_an_invalid_signature(stage: Stage) -> None:
    scene = stage.scene
    sign_all_but(stage, ARM64)
    arm64 = scene.platform(ARM64)
    envelope = json.loads(
        forge_jws(
            target_of(arm64), scene.trusted.leaf.key, scene.trusted.chain, signing_time=scene.now
        )
    )
    envelope["protected"] = jws.b64url_encode(b"[" * 100_000 + b"]" * 100_000)
    scene.forged(json.dumps(envelope).encode(), subject=arm64)
    target = verdict(stage.audit(":v1"), "noncompliant")
    assert signature_results(target, arm64.digest) == INVALID_INTEGRITY


def test_a_layout_index_nested_100000_deep_is_a_named_error(layout_stage: Stage) -> None:
    scene = layout_stage.scene
    deep = Descriptor(mt.OCI_INDEX, write_blob(scene.layout, DEEP), len(DEEP))
    tag_manifest(scene.layout, deep, "v1")
    target = verdict(layout_stage.audit(":v1", seconds=20), "error")
    assert "nested deeper than" in target["error"]


def _duplicate_extension(der: bytes) -> bytes:
    cert = asn1_x509.Certificate.load(der)
    extensions = cert["tbs_certificate"]["extensions"]
    extensions.append(asn1_x509.Extension.load(extensions[0].dump()))
    cert["tbs_certificate"]["extensions"] = extensions
    return bytes(cert.dump(force=True))


def _garbage_extension(der: bytes) -> bytes:
    """keyUsage's BIT STRING retagged as an INTEGER (same length): well-formed DER around an
    extension value no X.509 parser accepts."""
    key_usage_oid = bytes.fromhex("0603551d0f")
    at = der.index(key_usage_oid) + len(key_usage_oid)
    if der[at : at + 3] == bytes.fromhex("0101ff"):  # critical: TRUE
        at += 3
    assert der[at] == 0x04  # the OCTET STRING holding the extension value
    value = at + 2
    assert der[value] == 0x03  # BIT STRING
    return der[:value] + b"\x02" + der[value + 1 :]


@pytest.mark.parametrize("breaks", [_duplicate_extension, _garbage_extension])
def test_a_certificate_cryptography_refuses_is_an_invalid_signature(
    stage: Stage, breaks: Callable[[bytes], bytes]
) -> None:
    """The trusted leaf re-encoded with a duplicate extension or an undecodable one: Go's x509
    refuses both, and so must we, as an integrity failure, not a crash."""
    scene = stage.scene
    sign_all_but(stage, ARM64)
    arm64 = scene.platform(ARM64)
    bad_leaf = x509.load_der_x509_certificate(
        breaks(scene.trusted.leaf.cert.public_bytes(Encoding.DER))
    )
    envelope = forge_jws(
        target_of(arm64),
        scene.trusted.leaf.key,
        [bad_leaf, *scene.trusted.chain[1:]],
        signing_time=scene.now,
    )
    scene.forged(envelope, subject=arm64)
    target = verdict(stage.audit(":v1"), "noncompliant")
    arm = node(target, arm64.digest)
    assert arm["status"] == "invalid"
    assert signature_results(target, arm64.digest) == INVALID_INTEGRITY
    assert "certificate 0 in the chain" in arm["signatures"][0]["reason"]


def test_a_trust_policy_go_reads_differently_is_a_config_error(layout_stage: Stage) -> None:
    scene = layout_stage.scene
    doc = json.loads(scene.policy.read_text())
    statement = doc["trustPolicies"][0]
    statement["SignatureVerification"] = {"level": "skip"}
    scene.policy.write_text(json.dumps(doc))
    run = layout_stage.audit(":v1", seconds=20)
    assert "Traceback" not in run.stderr
    assert run.code == 2
    assert "both set field 'signatureVerification'" in run.stderr
