"""Our verdicts must agree with every ``notation verify`` outcome notation's e2e suite asserts.

Source of truth: ../shared/fixtures/notation-e2e/EXPECTED_OUTCOMES.json (transcribed from
notation's e2e tests). For every asserted verify case we lay out the case's trust store the way
notation's tests do (``<store>/x509/ca/<name>/<cert>``), load the case's trust policy, read the
subject manifest and its signature manifests / envelopes straight from the OCI layout folder
(the registry path is covered by other tests), verify, and compare:

- pass -> node ``signed``, with notation's warning text where notation prints a warning;
- pass (skipped) -> node ``skipped``;
- fail naming a validation -> node ``invalid`` with that failed validation and notation's words;
- fail with a policy / trust-store message -> ConfigError carrying that message.

Scope: notation's e2e policies mostly use ``*``; where a policy also has an exact statement
(multi_statements_with_wildcard_registry_scope) the case ran against that statement's
repository, so we verify under that exact scope, otherwise under ``localhost:5000/<repo>``.
"""

from __future__ import annotations

import json
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from auditor.errors import ConfigError
from auditor.model import Descriptor, NodeStatus, SignatureResult
from auditor.notary.revocation import RevocationChecker
from auditor.notary.trustpolicy import load_trust_policy
from auditor.notary.verifier import Verifier, node_status
from auditor.oci.manifest import ImageManifest, parse_descriptor, parse_manifest
from auditor.oci.mediatypes import NOTARY_SIGNATURE, OCI_MANIFEST

E2E = Path(__file__).resolve().parents[3] / "shared" / "fixtures" / "notation-e2e"
EXPECTED = json.loads((E2E / "EXPECTED_OUTCOMES.json").read_text())
GENERIC = "signature verification failed"  # notation's summary line, not a reason
VALIDATION_FAILED = re.compile(r"^(\w+) validation failed")


@dataclass(frozen=True)
class Case:
    repo: str
    index: int
    raw: dict[str, Any]

    @property
    def id(self) -> str:
        policy = self.raw["trust_policy"].split()[0].rsplit("/", 1)[-1]
        return f"{self.repo}[{self.index}]-{policy}"


def _verify_cases() -> list[Case]:
    cases = []
    for repo, info in EXPECTED["repos"].items():
        for index, raw in enumerate(info["cases"]):
            if raw.get("expected") in ("pass", "fail", "pass (skipped)") and "trust_policy" in raw:
                cases.append(Case(repo, index, raw))
    return cases


CASES = _verify_cases()


def _lay_out_store(spec: str, root: Path) -> None:
    """``a.crt + b.crt`` -> both in store e2e; ``a.crt (store X)`` -> that cert in store X."""
    for part in spec.split(" + "):
        match = re.fullmatch(r"(\S+)(?: \(store ([\w.-]+)\))?", part.strip())
        assert match, f"unrecognised trust store spec {part!r}"
        cert, store = E2E / match.group(1), match.group(2) or "e2e"
        folder = root / "x509" / "ca" / store
        folder.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(cert, folder / cert.name)


def _blob(layout: Path, digest: str) -> bytes:
    algorithm, hexpart = digest.split(":", 1)
    return (layout / "blobs" / algorithm / hexpart).read_bytes()


def _read_layout(repo: str) -> tuple[Descriptor, list[tuple[str, ImageManifest, bytes]]]:
    layout = E2E / "registry" / "oci_layout" / repo
    index = json.loads((layout / "index.json").read_text())
    subject = next(
        parse_descriptor(m, "index.json")
        for m in index["manifests"]
        if m.get("annotations", {}).get("org.opencontainers.image.ref.name") == "v1"
    )
    signatures = []
    for path in sorted((layout / "blobs" / "sha256").iterdir()):
        raw = path.read_bytes()
        try:
            doc = json.loads(raw)
        except ValueError:
            continue
        if not isinstance(doc, dict) or doc.get("mediaType") != OCI_MANIFEST:
            continue
        manifest = parse_manifest(raw, OCI_MANIFEST)
        assert isinstance(manifest, ImageManifest)
        is_signature = NOTARY_SIGNATURE in (manifest.artifact_type, manifest.config.media_type)
        if is_signature and manifest.subject and manifest.subject.digest == subject.digest:
            envelope = _blob(layout, manifest.layers[0].digest) if manifest.layers else b""
            signatures.append((f"sha256:{path.name}", manifest, envelope))
    return subject, signatures


def _scope(case: Case, policy_path: Path) -> str:
    doc = json.loads(policy_path.read_text())
    exact = [
        scope
        for statement in doc.get("trustPolicies", [])
        for scope in statement.get("registryScopes", [])
        if scope != "*"
    ]
    has_wildcard = any(
        "*" in statement.get("registryScopes", []) for statement in doc.get("trustPolicies", [])
    )
    if len(exact) == 1 and has_wildcard:
        return str(exact[0])
    return f"localhost:5000/{case.repo}"


def _no_network(url: str) -> str:
    raise AssertionError(f"an e2e certificate unexpectedly asked for revocation data at {url}")


def _run(case: Case, tmp: Path) -> tuple[str, str, list[SignatureResult]]:
    """('config-error' | node status, message, signature results)."""
    store = tmp / "truststore"
    _lay_out_store(case.raw["ca_trust_store_e2e"], store)
    policy_path = E2E / case.raw["trust_policy"].split()[0]
    try:
        policy = load_trust_policy(policy_path)
        subject, signatures = _read_layout(case.repo)
        with RevocationChecker(url_rewrite=_no_network) as checker:
            verifier = Verifier(policy, store, revocation=checker)
            scope = _scope(case, policy_path)
            results = [verifier.verify(scope, subject, m, env, d) for d, m, env in signatures]
    except ConfigError as exc:
        return "config-error", str(exc), []
    status, reason = node_status(results)
    return status.value, reason, results


def _agrees(case: Case, outcome: str, message: str, results: list[SignatureResult]) -> str | None:
    """None if our outcome matches notation's, else what differs."""
    expected = case.raw["expected"]
    keywords = [k for k in case.raw["output_keywords"] if k != GENERIC]
    if expected == "pass (skipped)":
        if outcome != NodeStatus.SKIPPED.value:
            return f"expected skipped, got {outcome}: {message}"
        texts = [r.reason for r in results]
    elif expected == "pass":
        if outcome != NodeStatus.SIGNED.value:
            return f"expected signed, got {outcome}: {message}"
        texts = [w for r in results for w in r.warnings]
        keywords = [k.removeprefix("Warning: ") for k in keywords if k != "Successfully verified"]
        if not keywords and any(texts):
            return f"notation prints no warning, we warn: {texts}"
    else:
        failed = [m.group(1) for k in keywords if (m := VALIDATION_FAILED.match(k))]
        if any(k.startswith("Failure reason: signing certificate") for k in keywords):
            failed.append("authenticity")  # notation reports an identity mismatch there
        if failed:
            if outcome != NodeStatus.INVALID.value:
                return f"expected invalid ({failed[0]}), got {outcome}: {message}"
            got = {r.failed_validation for r in results}
            if got != {failed[0]}:
                return f"expected failed validation {failed[0]}, got {got}"
            texts = [r.reason for r in results]
            keywords = [
                k.removeprefix("Failure reason: ")
                for k in keywords
                if not VALIDATION_FAILED.match(k)
            ]
        else:
            if outcome != "config-error":
                return f"expected a configuration error, got {outcome}: {message}"
            texts = [message]
    for keyword in keywords:
        if not any(keyword in text for text in texts):
            return f"missing notation's wording {keyword!r} in {texts}"
    return None


def test_every_asserted_case_is_covered() -> None:
    assert len(CASES) >= 40
    assert {c.repo for c in CASES} == {
        "e2e-valid-signature",
        "e2e-expired-signature",
        "e2e-with-expired-cert",
        "e2e-invalid-signature",
    }


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_case_agrees_with_notation(case: Case, tmp_path: Path) -> None:
    outcome, message, results = _run(case, tmp_path)
    problem = _agrees(case, outcome, message, results)
    assert problem is None, f"{case.id} ({case.raw['source']}): {problem}"


def test_agreement_count(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    disagreements = []
    for number, case in enumerate(CASES):
        outcome, message, results = _run(case, tmp_path / str(number))
        if (problem := _agrees(case, outcome, message, results)) is not None:
            disagreements.append(f"{case.id}: {problem}")
    agreed = len(CASES) - len(disagreements)
    with capsys.disabled():
        print(f"\nnotation conformance: {agreed}/{len(CASES)} cases agree")
    assert not disagreements, "\n".join(disagreements)
