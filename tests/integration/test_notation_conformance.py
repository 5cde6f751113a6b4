"""Our verdicts must agree with every ``notation verify`` outcome notation's e2e suite asserts.

For every asserted verify case (tests/support/notation_cases.py) we lay out the case's trust
store the way notation's tests do, load the case's trust policy, read the subject manifest and
its signature manifests / envelopes straight from the OCI layout folder (the registry path is
tests/integration/test_conformance_registry.py), verify, and compare with notation's outcome.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from auditor.errors import ConfigError
from auditor.model import SignatureResult
from auditor.notary.revocation import RevocationChecker
from auditor.notary.trustpolicy import load_trust_policy
from auditor.notary.verifier import Verifier
from tests.support.nodes import status_of
from tests.support.notation_cases import (
    CASES,
    CONFIG_ERROR,
    Case,
    agrees,
    case_scope,
    lay_out_store,
    read_layout,
)


def _no_network(url: str) -> str:
    raise AssertionError(f"an e2e certificate unexpectedly asked for revocation data at {url}")


def _run(case: Case, tmp: Path) -> tuple[str, str, list[SignatureResult]]:
    """('config-error' | node status, message, signature results)."""
    store = lay_out_store(case, tmp / "truststore")
    try:
        policy = load_trust_policy(case.policy_path)
        subject, signatures = read_layout(case.layout)
        with RevocationChecker(url_rewrite=_no_network) as checker:
            verifier = Verifier(policy, store, revocation=checker)
            scope = case_scope(case)
            results = [verifier.verify(scope, subject, m, env, d) for d, m, env in signatures]
    except ConfigError as exc:
        return CONFIG_ERROR, str(exc), []
    status, reason = status_of(results)
    return status.value, reason, results


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
    problem = agrees(case, outcome, message, results)
    assert problem is None, f"{case.id} ({case.raw['source']}): {problem}"


def test_agreement_count(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    disagreements = []
    for number, case in enumerate(CASES):
        outcome, message, results = _run(case, tmp_path / str(number))
        if (problem := agrees(case, outcome, message, results)) is not None:
            disagreements.append(f"{case.id}: {problem}")
    agreed = len(CASES) - len(disagreements)
    with capsys.disabled():
        print(f"\nnotation conformance: {agreed}/{len(CASES)} cases agree")
    assert not disagreements, "\n".join(disagreements)
