"""One verdict per node, whatever signed it: an index signed with notation and platforms signed
with cosign is covered under ``require: both``; the same image with only the index signed (by
cosign) is not. On an OCI layout and through the real registry.

The cosign signatures here are made by the test (``cosign sign --key`` shape, no Rekor entry,
so the rule says ``ignore_tlog: true``); the notation ones by the devkit's signer.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from auditor.oci import mediatypes as mt
from devkit.samples import SampleLayout, write_sample_layout
from devkit.signing import sign_in_layout
from devkit.testpki import make_pki
from tests.support.cosign_images import cosign_sign_in_layout
from tests.support.registry_server import RunningRegistry
from tests.support.scenarios import audit_json, isolate_environment, push

pytestmark = pytest.mark.registry

STORE = "mixed"


@dataclass(frozen=True)
class Mixed:
    both: SampleLayout  # index: notation; platforms: cosign
    index_only: SampleLayout  # index: cosign; platforms unsigned
    config: Path
    index_signature: str
    platform_signatures: dict[str, str]


def _policy(workdir: Path) -> Path:
    policy = {
        "version": "1.0",
        "trustPolicies": [
            {
                "name": "mixed",
                "registryScopes": ["*"],
                "signatureVerification": {"level": "strict"},
                "trustStores": [f"ca:{STORE}"],
                "trustedIdentities": ["*"],
            }
        ],
    }
    path = workdir / "trustpolicy.oci.json"
    path.write_text(json.dumps(policy))
    return path


@pytest.fixture(scope="module")
def mixed(tmp_path_factory: pytest.TempPathFactory) -> Mixed:
    workdir = tmp_path_factory.mktemp("mixed")
    pki = make_pki(name="mixed-release", validity=timedelta(days=30))
    pki.write_trust_store(workdir / "truststore", STORE)
    key = ec.generate_private_key(ec.SECP256R1())
    (workdir / "cosign.pub").write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    both = write_sample_layout(workdir / "both", name="mixed-both")
    index_signature = sign_in_layout(
        both.path,
        both.index,
        pki.leaf.key,
        pki.chain,
        signing_time=datetime.now(UTC).replace(microsecond=0),
    ).digest
    platform_signatures = {
        label: cosign_sign_in_layout(both.path, desc.digest, key)
        for label, desc in both.platforms.items()
    }
    index_only = write_sample_layout(workdir / "index-only", name="mixed-index-only")
    cosign_sign_in_layout(index_only.path, index_only.index.digest, key)
    config = workdir / "auditor.yaml"
    config.write_text(
        json.dumps(
            {
                "trust": {"policy": str(_policy(workdir)), "store": str(workdir / "truststore")},
                "cosign": {
                    "rules": [
                        {"scopes": ["*"], "key": str(workdir / "cosign.pub"), "ignore_tlog": True}
                    ]
                },
                "coverage": [{"scope": "*", "require": "both", "formats": ["notation", "cosign"]}],
            }
        )
    )
    return Mixed(both, index_only, config, index_signature, platform_signatures)


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    isolate_environment(monkeypatch, tmp_path)


def _references(
    mixed: Mixed, sample: SampleLayout, where: str, registry: RunningRegistry
) -> str:
    if where == "layout":
        return f"oci-layout:{sample.path}:v1"
    repository = f"it/mixed-{uuid.uuid4().hex[:8]}"
    push(registry.host, sample.path, repository, tags=["v1", *_sig_tags(sample)])
    return f"{registry.host}/{repository}:v1"


def _sig_tags(sample: SampleLayout) -> list[str]:
    index = json.loads((sample.path / "index.json").read_bytes())
    names = [m.get("annotations", {}).get(mt.ANNOTATION_REF_NAME) for m in index["manifests"]]
    return [n for n in names if isinstance(n, str) and n.endswith(".sig")]


def _by_digest(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    (target,) = report["targets"]
    return {n["digest"]: n for n in target["nodes"]}


@pytest.mark.parametrize("where", ["layout", "registry"])
def test_notation_index_and_cosign_platforms_are_compliant_under_both(
    mixed: Mixed, registry: RunningRegistry, where: str
) -> None:
    reference = _references(mixed, mixed.both, where, registry)
    run = audit_json(reference, "--config", mixed.config)
    assert run.code == 0, run.stdout
    report = run.report
    assert report["targets"][0]["status"] == "compliant"
    nodes = _by_digest(report)
    index = nodes[mixed.both.index.digest]
    assert index["status"] == "signed"
    assert [(s["digest"], s["format"]) for s in index["signatures"]] == [
        (mixed.index_signature, "notation/jws")
    ]
    for label, desc in mixed.both.platforms.items():
        node = nodes[desc.digest]
        assert node["status"] == "signed", (label, node)
        assert [(s["digest"], s["format"]) for s in node["signatures"]] == [
            (mixed.platform_signatures[label], "cosign/legacy")
        ]
        assert node["signatures"][0]["signer"].startswith("key cosign.pub")


@pytest.mark.parametrize("where", ["layout", "registry"])
def test_cosign_signed_index_alone_is_not_compliant_under_both(
    mixed: Mixed, registry: RunningRegistry, where: str
) -> None:
    reference = _references(mixed, mixed.index_only, where, registry)
    run = audit_json(reference, "--config", mixed.config)
    assert run.code == 1, run.stdout
    report = run.report
    assert report["targets"][0]["status"] == "noncompliant"
    nodes = _by_digest(report)
    assert nodes[mixed.index_only.index.digest]["status"] == "signed"
    kinds = sorted(f["kind"] for f in report["targets"][0]["findings"])
    assert kinds == ["unsigned-platform"] * len(mixed.index_only.platforms)
    for desc in mixed.index_only.platforms.values():
        assert nodes[desc.digest]["covered_by"] == mixed.index_only.index.digest


def test_formats_restrict_what_counts(mixed: Mixed, tmp_path: Path) -> None:
    """``formats: [notation]``: the cosign-signed platforms no longer count."""
    config = json.loads(mixed.config.read_text())
    config["coverage"][0]["formats"] = ["notation"]
    path = tmp_path / "notation-only.yaml"
    path.write_text(json.dumps(config))
    run = audit_json(f"oci-layout:{mixed.both.path}:v1", "--config", path)
    assert run.code == 1
    nodes = _by_digest(run.report)
    for desc in mixed.both.platforms.values():
        node = nodes[desc.digest]
        assert node["status"] == "unsigned"
        assert "cosign" in node["reason"]
        assert [s["status"] for s in node["signatures"]] == ["valid"]
