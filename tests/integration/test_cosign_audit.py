"""cosign fixtures end to end: pushed into the real registry in their native shape, and written
as OCI layouts, then audited with ``auditor audit now`` under a ``cosign:`` config.

Expected verdicts are the reference tools': containers/image accepts dir-img-cosign-valid(-2)
with cosign.pub and dir-img-cosign-key-rekor-valid with cosign2.pub + the Rekor SET, and
rejects the modified manifest, the other attachment and the digest-error case (whose schema-1
manifest is not among the shared fixtures: its signature is offered here for a manifest it
does not name); cosign v3 signed both actions-toolkit bundles keylessly for the workflow
identity below. cosign's attestation bundle is listed, never counted.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from auditor.oci import mediatypes as mt
from tests.support.cosign_fixtures import (
    CONTAINERS_IMAGE,
    COSIGN,
    TOOLKIT_IDENTITY,
    TOOLKIT_ISSUER,
    TRUSTED_ROOT,
    toolkit_output,
)
from tests.support.cosign_images import (
    NativeImage,
    attestation_referrer,
    bundle_image,
    fixture_legacy_image,
    push_images,
    write_layout,
)
from tests.support.registry_server import RunningRegistry
from tests.support.scenarios import audit_json, isolate_environment

pytestmark = [
    pytest.mark.registry,
    pytest.mark.skipif(not COSIGN.is_dir(), reason="../shared/fixtures not present"),
]

ATTESTATION_PREDICATE = "https://cosign.sigstore.dev/attestation/v1"


@dataclass(frozen=True)
class Case:
    name: str
    build: Callable[[], NativeImage]
    status: str
    formats: tuple[str, ...]
    reason: str = ""
    other_referrers: int = 0


CASES = [
    Case("legacy-valid", lambda: fixture_legacy_image("dir-img-cosign-valid"), "signed",
         ("cosign/legacy",)),
    Case("legacy-valid-2", lambda: fixture_legacy_image("dir-img-cosign-valid-2"), "signed",
         ("cosign/legacy",)),
    Case("keyrekor", lambda: fixture_legacy_image("dir-img-cosign-key-rekor-valid"), "signed",
         ("cosign/legacy",)),
    Case("legacy-modified",
         lambda: fixture_legacy_image("dir-img-cosign-modified-manifest"), "invalid",
         ("cosign/legacy",), "the payload signs sha256:634a8f35"),
    Case("legacy-attachment",
         lambda: fixture_legacy_image("dir-img-cosign-other-attachment"), "invalid",
         ("cosign/legacy",), "'text/plain' is not a cosign signature"),
    Case("legacy-digest-error",
         lambda: fixture_legacy_image(
             "dir-img-cosign-manifest-digest-error", "dir-img-cosign-key-rekor-valid"
         ),
         "invalid", ("cosign/legacy",), "the payload signs sha256:634a8f35"),
    Case("bundle-1",
         lambda: bundle_image(
             1, attach=[attestation_referrer(toolkit_output(1).subject, ATTESTATION_PREDICATE)]
         ),
         "signed", ("cosign/bundle",), other_referrers=1),
    Case("bundle-2", lambda: bundle_image(2), "signed", ("cosign/bundle",)),
    Case("attestation-offered",
         lambda: bundle_image(
             1,
             own_bundle=False,
             attach=[attestation_referrer(toolkit_output(1).subject, mt.COSIGN_SIGN_PREDICATE)],
         ),
         "invalid", ("cosign/bundle",), "not sha256:8fe63f8b"),
]  # fmt: skip


def write_config(path: Path) -> Path:
    config = {
        "cosign": {
            "trusted_root": str(TRUSTED_ROOT),
            "rules": [
                {
                    "name": "rekor",
                    "scopes": ["*keyrekor*"],
                    "key": str(CONTAINERS_IMAGE / "cosign2.pub"),
                },
                {
                    "name": "keys",
                    "scopes": ["*legacy-*"],
                    "key": [str(CONTAINERS_IMAGE / "cosign.pub")],
                    "ignore_tlog": True,
                },
                {
                    # cosign's testdata attestation was signed by this identity: it verifies
                    # as far as its statement, whose subject is not the node it was hung on.
                    "name": "attestation",
                    "scopes": ["*attestation-offered*"],
                    "keyless": {
                        "identity": "cody@soyland.com",
                        "issuer": "https://github.com/login/oauth",
                    },
                },
                {
                    "name": "release",
                    "scopes": ["*bundle-*"],
                    "keyless": {"identity": TOOLKIT_IDENTITY, "issuer": TOOLKIT_ISSUER},
                },
            ],
        }
    }
    path.write_text(json.dumps(config))
    return path


@dataclass
class Stored:
    registry: dict[str, str] = field(default_factory=dict)  # case -> registry reference
    layout: dict[str, str] = field(default_factory=dict)  # case -> oci-layout reference
    images: dict[str, NativeImage] = field(default_factory=dict)


@pytest.fixture(scope="module")
def stored(registry: RunningRegistry, tmp_path_factory: pytest.TempPathFactory) -> Stored:
    out = Stored()
    run = uuid.uuid4().hex[:8]
    root = tmp_path_factory.mktemp("cosign-layouts")
    for case in CASES:
        image = case.build()
        out.images[case.name] = image
        repository = f"it/{run}/{case.name}"
        push_images(registry, repository, [image])
        out.registry[case.name] = f"{registry.host}/{repository}:{image.tag}"
        layout = write_layout(root / case.name, [image])
        out.layout[case.name] = f"oci-layout:{layout}:{image.tag}"
    return out


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    isolate_environment(monkeypatch, tmp_path)


def _only_node(report: dict[str, Any]) -> dict[str, Any]:
    (target,) = report["targets"]
    (node,) = target["nodes"]
    assert isinstance(node, dict)
    return node


@pytest.mark.parametrize("where", ["registry", "layout"])
@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_fixture_verdicts(stored: Stored, tmp_path: Path, case: Case, where: str) -> None:
    reference = (stored.registry if where == "registry" else stored.layout)[case.name]
    run = audit_json(reference, "--config", write_config(tmp_path / "auditor.yaml"))
    report = run.report
    node = _only_node(report)
    image = stored.images[case.name]
    assert node["digest"] == image.subject
    assert node["status"] == case.status, node
    assert sorted(s["digest"] for s in node["signatures"]) == sorted(image.signatures)
    assert {s["format"] for s in node["signatures"]} == set(case.formats)
    assert len(node["other_referrers"]) == case.other_referrers
    if case.reason:
        assert case.reason in node["reason"], node["reason"]
    if case.status == "signed":
        assert run.code == 0, run.stderr
        assert report["targets"][0]["status"] == "compliant"
        signers = [s["signer"] for s in node["signatures"] if s["status"] == "valid"]
        assert signers
        assert all(signers)
    else:
        assert run.code == 1, run.stderr
        assert report["targets"][0]["status"] == "noncompliant"
        assert [f["kind"] for f in report["targets"][0]["findings"]] == ["invalid-signature"]


def test_attestation_is_listed_not_counted(stored: Stored, tmp_path: Path) -> None:
    config = write_config(tmp_path / "c.yaml")
    node = _only_node(audit_json(stored.registry["bundle-1"], "--config", config).report)
    (other,) = node["other_referrers"]
    assert other["artifact_type"] == mt.SIGSTORE_BUNDLE_V03
    assert other["digest"] not in {s["digest"] for s in node["signatures"]}


def test_without_cosign_trust_signatures_are_listed_unverified(stored: Stored) -> None:
    run = audit_json(stored.registry["keyrekor"])
    node = _only_node(run.report)
    assert node["status"] == "unverified"
    assert [s["format"] for s in node["signatures"]] == ["cosign/legacy"]
    assert run.code == 3


def test_wrong_identity_on_a_real_bundle_is_invalid(stored: Stored, tmp_path: Path) -> None:
    config = tmp_path / "auditor.yaml"
    config.write_text(
        json.dumps(
            {
                "cosign": {
                    "trusted_root": str(TRUSTED_ROOT),
                    "rules": [
                        {
                            "scopes": ["*"],
                            "keyless": {
                                "identity_regexp": "^https://github\\.com/acme/",
                                "issuer": TOOLKIT_ISSUER,
                            },
                        }
                    ],
                }
            }
        )
    )
    run = audit_json(stored.layout["bundle-2"], "--config", config)
    node = _only_node(run.report)
    assert node["status"] == "invalid"
    assert "does not match" in node["reason"]
    assert run.code == 1
