"""notation's asserted verify outcomes, end to end through the real registry and the CLI.

The on-disk twin (test_notation_conformance.py) feeds the verifier straight from the layout
folders; here every notation e2e layout is pushed into a real docker-registry (one repository
per layout, once per module, fallback tags maintained like notation does so the timestamp
layouts' signatures are discoverable too), and each asserted case runs
``auditor audit now REF --format json --trust-policy P --trust-store S``. What the crawl found,
what the verifier concluded and what the CLI reports and exits with must all agree with
notation (tests/support/notation_cases.py):

- pass -> node ``signed`` (warning text where notation warns), target compliant, exit 0;
- pass (skipped) -> node ``skipped``, target compliant, exit 0;
- fail naming a validation -> node ``invalid`` with that failed validation, exit 1;
- fail with a policy / trust-store message -> exit 2 with that message on stderr.
"""

from __future__ import annotations

import asyncio
import io
import json
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from auditor.cli import main as cli_main
from auditor.model import SignatureResult, SignatureStatus
from auditor.registry.client import RegistryClient
from auditor.registry.push import push_layout
from tests.support.notation_cases import (
    CASES,
    CONFIG_ERROR,
    E2E,
    LAYOUTS,
    Case,
    agrees,
    lay_out_store,
    policy_for_scope,
    read_layout,
)
from tests.support.registry_server import RunningRegistry

pytestmark = pytest.mark.registry

NAMESPACE = "conformance"
ALL_LAYOUTS = sorted(p.name for p in LAYOUTS.iterdir() if (p / "index.json").is_file())


@dataclass(frozen=True)
class Pushed:
    """The registry the layouts went to, and the tag notation's tests verify."""

    host: str

    def scope(self, layout: str) -> str:
        return f"{self.host}/{NAMESPACE}/{layout}"

    def ref(self, layout: str) -> str:
        return f"{self.scope(layout)}:v1"


async def _push_all(host: str) -> None:
    async with httpx.AsyncClient(timeout=30) as http:
        client = RegistryClient(host, http)
        for layout in ALL_LAYOUTS:
            await push_layout(
                client, LAYOUTS / layout, f"{NAMESPACE}/{layout}", update_fallback_tags=True
            )


@pytest.fixture(scope="module")
def pushed(registry: RunningRegistry) -> Pushed:
    asyncio.run(_push_all(registry.host))
    return Pushed(registry.host)


@pytest.fixture(autouse=True)
def _no_stray_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Run from an empty folder: no ./auditor.yaml, and notation's config dir is not ours."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))


@dataclass(frozen=True)
class CliRun:
    code: int
    stdout: str
    stderr: str

    @property
    def report(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(self.stdout)
        return data


def _audit(ref: str, policy: Path, store: Path) -> CliRun:
    out, err = io.StringIO(), io.StringIO()
    argv = ["audit", "now", ref, "--format", "json", "--trust-policy", str(policy),
            "--trust-store", str(store)]
    code = cli_main(argv, stdout=out, stderr=err)
    return CliRun(code, out.getvalue(), err.getvalue())


def _result(doc: dict[str, Any]) -> SignatureResult:
    """A signature's JSON back into the model, so the shared agreement rules apply as is."""
    return SignatureResult(
        digest=doc["digest"],
        format=doc["format"],
        status=SignatureStatus(doc["status"]),
        reason=doc["reason"],
        failed_validation=doc["failed_validation"],
        warnings=tuple(doc["warnings"]),
        signer=doc["signer"],
        signing_time=datetime.fromisoformat(doc["signing_time"]) if doc["signing_time"] else None,
    )


def _stage(case: Case, pushed: Pushed, workdir: Path) -> tuple[Path, Path]:
    """The case's trust store, and its policy with the scope it ran under moved to our repo."""
    store = lay_out_store(case, workdir / "truststore")
    policy = workdir / case.policy_path.name
    policy.write_bytes(policy_for_scope(case, pushed.scope(case.repo)))
    return policy, store


def _check(case: Case, pushed: Pushed, workdir: Path) -> str | None:
    """None when the CLI's verdict, report and exit code agree with notation, else what differs."""
    policy, store = _stage(case, pushed, workdir)
    run = _audit(pushed.ref(case.repo), policy, store)
    if run.code == 2:
        lines = run.stderr.strip().splitlines()
        if run.stdout or len(lines) != 1 or not lines[0].startswith("error: "):
            return f"exit 2 must be one error line and no report: {run.stdout!r} {run.stderr!r}"
        return agrees(case, CONFIG_ERROR, lines[0].removeprefix("error: "), [])
    (target,) = run.report["targets"]
    finished = f"[1/1] {target['status']} {target['reference']}"
    lines = run.stderr.splitlines()
    if len(lines) != 1 or not (
        lines[0] == finished or lines[0].startswith((f"{finished} (", f"{finished}: "))
    ):
        return f"unexpected stderr {run.stderr!r}: only the target's finished line belongs there"
    root = next(n for n in target["nodes"] if n["digest"] == target["digest"])
    results = [_result(s) for s in root["signatures"]]
    if (problem := agrees(case, root["status"], root["reason"], results)) is not None:
        return problem
    passed = case.raw["expected"] != "fail"
    inconclusive = root["status"] == "error"  # a trust store that cannot be loaded
    want = (0, "compliant") if passed else (3, "error") if inconclusive else (1, "noncompliant")
    if (run.code, target["status"]) != want:
        return f"expected exit/status {want}, got {(run.code, target['status'])}"
    if not passed:
        kinds = [(f["kind"], f["node"]) for f in target["findings"]]
        kind = "unchecked" if inconclusive else "invalid-signature"
        if kinds != [(kind, root["digest"])]:
            return f"expected one invalid-signature finding on the image, got {kinds}"
    return None


def test_every_layout_was_pushed_with_its_signatures(pushed: Pushed, tmp_path: Path) -> None:
    """The crawl finds, through the registry's fallback tags, every signature the layout holds
    (the skip policy keeps it to discovery: nothing is verified, nothing goes to the network)."""
    store = tmp_path / "store"
    store.mkdir()
    found: dict[str, set[str]] = {}
    for layout in ALL_LAYOUTS:
        subject, signatures = read_layout(LAYOUTS / layout)
        policy = E2E / "config" / "trustpolicies" / "skip_trustpolicy.json"
        run = _audit(pushed.ref(layout), policy, store)
        assert run.code == 0, run.stderr
        (target,) = run.report["targets"]
        assert target["digest"] == subject.digest
        (node,) = target["nodes"]
        found[layout] = {s["digest"] for s in node["signatures"]}
        assert found[layout] == {digest for digest, _, _ in signatures}, layout
        assert all(s["status"] == "skipped" for s in node["signatures"])
    assert found["e2e"] == set()
    # The layout's own fallback index lists one of the two; the registry must show both.
    assert len(found["e2e-valid-multiple-signatures"]) == 2
    assert len(found["e2e-with-timestamped-signature"]) == 1  # found via subject only


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_case_agrees_with_notation_through_the_registry(
    case: Case, pushed: Pushed, tmp_path: Path
) -> None:
    problem = _check(case, pushed, tmp_path)
    assert problem is None, f"{case.id} ({case.raw['source']}): {problem}"


def test_registry_agreement_count(
    pushed: Pushed, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    disagreements = []
    for number, case in enumerate(CASES):
        if (problem := _check(case, pushed, tmp_path / str(number))) is not None:
            disagreements.append(f"{case.id}: {problem}")
    agreed = len(CASES) - len(disagreements)
    with capsys.disabled():
        print(f"\nregistry conformance: {agreed}/{len(CASES)} cases agree")
    assert len(CASES) >= 40
    assert not disagreements, "\n".join(disagreements)
