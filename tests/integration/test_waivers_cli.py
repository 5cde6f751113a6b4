"""Waivers end to end: the real ``auditor`` binary, the real registry, a config with waivers."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support import github_sarif
from tests.support.binary import run_auditor
from tests.support.registry_server import RunningRegistry
from tests.support.scenarios import SignedSample, build_signed_sample, push


@pytest.fixture(scope="module")
def signed(tmp_path_factory: pytest.TempPathFactory) -> SignedSample:
    return build_signed_sample(tmp_path_factory.mktemp("waivers"), name="waivers")


@pytest.fixture(scope="module")
def image(registry: RunningRegistry, signed: SignedSample) -> str:
    repository = f"waivers-{uuid.uuid4().hex[:8]}/app"
    push(registry.host, signed.path, repository)
    return f"{registry.host}/{repository}"


def write_config(path: Path, signed: SignedSample, waivers: list[dict[str, Any]]) -> Path:
    config = {
        "trust": {"policy": str(signed.trust_policy), "store": str(signed.trust_store)},
        "waivers": waivers,
    }
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


def both_platforms(image: str, expires: str) -> dict[str, Any]:
    """Waives the sample's two gaps at tag v1: arm64's untrusted signature, ppc64le unsigned."""
    return {
        "image": f"{image}:v1",
        "platforms": ["linux/arm64", "linux/ppc64le"],
        "findings": ["invalid-signature", "unsigned-platform"],
        "reason": "arm64 and ppc64le are re-signed by the platform team next sprint",
        "owner": "platform-security@example.com",
        "expires": expires,
    }


def test_waived_findings_pass_and_are_reported(
    image: str, signed: SignedSample, tmp_path: Path
) -> None:
    config = write_config(tmp_path / "auditor.yaml", signed, [both_platforms(image, "2099-12-31")])
    run = run_auditor(["audit", "now", f"{image}:v1", "-c", config, "--format", "json"],
                      cwd=tmp_path)
    assert run.code == 0, run.stderr
    report = json.loads(run.stdout)
    (target,) = report["targets"]
    assert target["status"] == "compliant"
    assert sorted((f["kind"], f["platform"]) for f in target["findings"]) == [
        ("invalid-signature", "linux/arm64/v8"),
        ("unsigned-platform", "linux/ppc64le"),
    ]
    assert all(f["waiver"]["owner"] == "platform-security@example.com"
               for f in target["findings"])
    assert report["summary"]["findings"] == {"open": 0, "waived": 2}

    table = run_auditor(["audit", "now", f"{image}:v1", "-c", config], cwd=tmp_path)
    assert table.code == 0
    assert table.stdout.count("    waived ") == 2
    assert "2 findings waived" in table.stdout
    quiet = run_auditor(["audit", "now", f"{image}:v1", "-c", config, "-q"], cwd=tmp_path)
    assert (quiet.code, quiet.stdout) == (0, "")

    sarif = run_auditor(["audit", "now", f"{image}:v1", "-c", config, "--format", "sarif"],
                        cwd=tmp_path)
    doc = json.loads(sarif.stdout)
    assert github_sarif.github_problems(doc) == []
    states = [s["state"] for r in doc["runs"][0]["results"] for s in r["suppressions"]]
    assert states == ["accepted", "accepted"]


def test_other_tags_are_not_waived(image: str, signed: SignedSample, tmp_path: Path) -> None:
    config = write_config(tmp_path / "auditor.yaml", signed, [both_platforms(image, "2099-12-31")])
    run = run_auditor(["audit", "now", image, "-c", config, "--format", "json"], cwd=tmp_path)
    assert run.code == 1
    statuses = {t["reference"]: t["status"] for t in json.loads(run.stdout)["targets"]}
    assert statuses[f"{image}:v1"] == "compliant"
    assert statuses[f"{image}:v1-nested"] == "noncompliant"


def test_expired_waiver_fails_again(image: str, signed: SignedSample, tmp_path: Path) -> None:
    config = write_config(tmp_path / "auditor.yaml", signed, [both_platforms(image, "2020-01-31")])
    run = run_auditor(["audit", "now", f"{image}:v1", "-c", config, "--format", "json"],
                      cwd=tmp_path)
    assert run.code == 1
    (target,) = json.loads(run.stdout)["targets"]
    assert target["status"] == "noncompliant"
    assert all(f["waiver"] is None for f in target["findings"])
    assert all("expired 2020-02-01" in f["message"] for f in target["findings"])


@pytest.mark.parametrize("missing", ["reason", "owner", "expires"])
def test_config_check_rejects_a_waiver_without(
    image: str, signed: SignedSample, tmp_path: Path, missing: str
) -> None:
    entry = {k: v for k, v in both_platforms(image, "2099-12-31").items() if k != missing}
    config = write_config(tmp_path / "auditor.yaml", signed, [entry])
    check = run_auditor(["config", "check", "-c", config], cwd=tmp_path)
    assert check.code == 2
    assert f"waivers[0].{missing}: Field required" in check.stdout
    audit = run_auditor(["audit", "now", f"{image}:v1", "-c", config], cwd=tmp_path)
    assert audit.code == 2
    assert f"waivers[0].{missing}: Field required" in audit.stderr
