"""SARIF for GitHub code scanning, end to end: the real ``auditor`` binary audits the real
registry and an OCI layout from a checkout-like workspace, and the file it writes meets every
GitHub requirement (tests/support/github_sarif.py), with no runner path in it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from tests.support import github_sarif
from tests.support.binary import run_auditor
from tests.support.registry_server import RunningRegistry
from tests.support.scenarios import Checkout as Workspace
from tests.support.scenarios import signed_checkout

SCHEMA = json.loads(
    (Path(__file__).parent.parent / "data" / "sarif-2.1.0-schema.json").read_text("utf-8")
)


@pytest.fixture(scope="module")
def workspace(registry: RunningRegistry, tmp_path_factory: pytest.TempPathFactory) -> Workspace:
    """A checkout with auditor.yaml, a trust policy and store, and a layout under build/."""
    return signed_checkout(registry.host, tmp_path_factory.mktemp("checkout"), "sarif")


def _audit_sarif(ws: Workspace, *extra: str) -> tuple[int, dict[str, Any], str]:
    out = ws.root / "audit.sarif"
    run = run_auditor(["audit", "now", "--format", "sarif", "-o", out, *extra], cwd=ws.root)
    assert "Traceback" not in run.stderr
    assert run.stdout == ""
    text = out.read_text(encoding="utf-8")
    return run.code, json.loads(text), text


def test_sarif_from_the_binary_meets_githubs_requirements(workspace: Workspace) -> None:
    code, doc, text = _audit_sarif(workspace, "--sarif-category", "registry-audit/prod")
    assert code == 1  # the sample has unsigned and untrusted platforms
    jsonschema.Draft4Validator(SCHEMA).validate(doc)
    assert github_sarif.github_problems(doc) == []
    assert github_sarif.no_absolute_paths(text, str(workspace.root)) == []
    (run,) = doc["runs"]
    assert run["automationDetails"]["id"].startswith("registry-audit/prod/")
    uris = {
        loc["physicalLocation"]["artifactLocation"]["uri"]
        for r in run["results"]
        for loc in r["locations"]
    }
    assert uris == {f"images/{workspace.registry}/{workspace.repository}", "build/layout"}
    kinds = {r["ruleId"] for r in run["results"]}
    assert {"unsigned-platform", "invalid-signature"} <= kinds
    assert run["invocations"][0]["executionSuccessful"] is True


def test_fingerprints_are_stable_across_runs(workspace: Workspace) -> None:
    """Two audits of unchanged images: the same alerts (uri, rule, fingerprint), not new ones."""

    def keys(doc: dict[str, Any]) -> list[tuple[str, str, str]]:
        return sorted(
            (
                r["ruleId"],
                r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"],
                r["partialFingerprints"]["primaryLocationLineHash"],
            )
            for r in doc["runs"][0]["results"]
        )

    _, first, _ = _audit_sarif(workspace)
    _, second, _ = _audit_sarif(workspace)
    assert keys(first) == keys(second)
    assert len(set(keys(first))) == len(first["runs"][0]["results"]) > 0


def test_unreachable_registry_is_a_notification_not_an_alert(
    workspace: Workspace, tmp_path: Path
) -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    out = tmp_path / "down.sarif"
    run = run_auditor(
        ["audit", "now", f"127.0.0.1:{port}/team/app:1", "--format", "sarif", "-o", out],
        cwd=tmp_path,
    )
    assert run.code == 3, run.stderr
    doc = json.loads(out.read_text(encoding="utf-8"))
    assert github_sarif.github_problems(doc) == []
    (sarif_run,) = doc["runs"]
    assert sarif_run["results"] == []
    (invocation,) = sarif_run["invocations"]
    assert invocation["executionSuccessful"] is False
    (note,) = invocation["toolExecutionNotifications"]
    assert note["level"] == "error"
    assert f"127.0.0.1:{port}/team/app:1" in note["message"]["text"]


README = Path(__file__).resolve().parents[2] / "README.md"


def _readme_workflow() -> dict[str, Any]:
    text = README.read_text(encoding="utf-8")
    blocks = text.split("```yaml\n")[1:]
    (block,) = [b.split("```", 1)[0] for b in blocks if "upload-sarif" in b]
    workflow: dict[str, Any] = yaml.safe_load(block)
    return workflow


def test_readme_github_actions_job_runs_as_written(workspace: Workspace) -> None:
    """The README's workflow is valid YAML, grants what upload-sarif needs, and its audit
    command, run as written in a checkout, writes a SARIF file GitHub accepts."""
    import shlex

    workflow = _readme_workflow()
    assert workflow["permissions"]["security-events"] == "write"
    steps = workflow["jobs"]["audit"]["steps"]
    (audit_step,) = [s for s in steps if s.get("id") == "audit"]
    (command,) = [ln for ln in audit_step["run"].splitlines() if ln.startswith("auditor ")]
    upload = next(s for s in steps if "upload-sarif" in s.get("uses", ""))
    argv = shlex.split(command)[1:]
    sarif_path = workspace.root / argv[argv.index("-o") + 1]
    assert upload["with"]["sarif_file"] == argv[argv.index("-o") + 1]
    run = run_auditor(argv, cwd=workspace.root)
    assert run.code == 1, run.stderr
    doc = json.loads(sarif_path.read_text(encoding="utf-8"))
    assert github_sarif.github_problems(doc) == []
    assert doc["runs"][0]["results"]
