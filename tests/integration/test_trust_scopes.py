"""Which trust policy statement judges a target, and what a broken trust store costs.

Like notation: an OCI layout is verified under the scope ``--scope local/NAME`` names
(``notation verify --oci-layout --scope``; notation verifies ``SCOPE@DIGEST`` and picks the
statement whose registryScopes lists SCOPE over ``*``), or under a configured layout's
``scope:``; without one only a ``*`` statement applies. Trust stores are read for the statement
that applies only: a store named by a statement no audited target falls under does not stop
the run, and makes ``error`` exactly the signatures of the targets under its statement (the
message names the store). ``config check`` warns about such a store.

The real ``auditor`` binary on the signed sample layout (devkit) and on the real registry.
"""

from __future__ import annotations

import json
import shutil
import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.support.binary import run_auditor
from tests.support.registry_server import RunningRegistry
from tests.support.scenarios import TRUST_STORE_NAME, SignedSample, build_signed_sample, push

MISSING = 'the trust store "missing" of type "ca" does not exist'


@pytest.fixture(scope="module")
def signed(tmp_path_factory: pytest.TempPathFactory) -> SignedSample:
    return build_signed_sample(tmp_path_factory.mktemp("scoped-sample"))


def _statement(name: str, scopes: list[str], store: str) -> dict[str, Any]:
    return {
        "name": name,
        "registryScopes": scopes,
        "signatureVerification": {"level": "strict"},
        "trustStores": [f"ca:{store}"],
        "trustedIdentities": ["*"],
    }


def _policy(path: Path, *statements: dict[str, Any]) -> Path:
    path.write_text(json.dumps({"version": "1.0", "trustPolicies": list(statements)}))
    return path


def _single(report: dict[str, Any]) -> dict[str, Any]:
    (target,) = report["targets"]
    (node,) = target["nodes"]
    assert isinstance(node, dict)
    return node


def _reasons(node: dict[str, Any]) -> list[str]:
    return [s["reason"] for s in node["signatures"]]


def test_scope_flag_picks_the_local_statement_over_the_wildcard(
    signed: SignedSample, tmp_path: Path
) -> None:
    """``--scope local/NAME`` verifies under the statement listing local/NAME, even though the
    ``*`` statement names a trust store that does not exist; without --scope the ``*``
    statement applies and its missing store makes the signature an error (exit 3)."""
    policy = _policy(
        tmp_path / "policy.json",
        _statement("layout", ["local/integration"], TRUST_STORE_NAME),
        _statement("everything", ["*"], "missing"),
    )
    target = f"oci-layout:{signed.path}:v1-single"
    trust: list[str | Path] = [
        "--trust-policy", policy, "--trust-store", signed.trust_store, "--format", "json"
    ]

    scoped = run_auditor(["audit", "now", target, "--scope", "local/integration", *trust],
                         cwd=tmp_path)
    assert scoped.code == 0, scoped.stderr
    node = _single(scoped.report)
    assert node["status"] == "signed"
    assert any("statement 'layout'" in r for r in _reasons(node)), _reasons(node)

    unscoped = run_auditor(["audit", "now", target, *trust], cwd=tmp_path)
    assert unscoped.code == 3, unscoped.stderr
    node = _single(unscoped.report)
    assert node["status"] == "error"
    (reason,) = _reasons(node)
    assert "statement 'everything'" in reason
    assert MISSING in reason


def test_a_configured_layout_takes_its_scope_key(signed: SignedSample, tmp_path: Path) -> None:
    """``layouts[].scope`` is the layout's trust policy scope; with a policy that has no ``*``
    statement, the same layout without ``scope:`` has no applicable statement (exit 3)."""
    policy = _policy(
        tmp_path / "policy.json", _statement("layout", ["local/team-app"], TRUST_STORE_NAME)
    )

    def config(scope: str | None) -> Path:
        path = tmp_path / f"auditor-{scope is not None}.yaml"
        path.write_text(
            "layouts:\n"
            f"  - path: {signed.path}\n"
            "    tags: {include: [v1-single]}\n"
            + (f"    scope: {scope}\n" if scope else "")
            + f"trust:\n  policy: {policy}\n  store: {signed.trust_store}\n"
        )
        return path

    scoped = run_auditor(["audit", "now", "-c", config("local/team-app"), "--format", "json"],
                         cwd=tmp_path)
    assert scoped.code == 0, scoped.stderr
    assert _single(scoped.report)["status"] == "signed"
    # A TARGET naming the configured layout's path takes its scope too.
    by_path = run_auditor(
        ["audit", "now", "-c", config("local/team-app"), f"oci-layout:{signed.path}:v1-single",
         "--format", "json"],
        cwd=tmp_path,
    )
    assert by_path.code == 0, by_path.stderr
    assert _single(by_path.report)["status"] == "signed"

    plain = run_auditor(["audit", "now", "-c", config(None), "--format", "json"], cwd=tmp_path)
    assert plain.code == 3, plain.stderr
    (reason,) = _reasons(_single(plain.report))
    assert "no applicable trust policy statement" in reason


@pytest.mark.parametrize(
    ("args", "wording"),
    [
        (["--scope", "local/*"], "is not a valid trust policy scope"),
        (["--scope", "oci-layout:/tmp/x"], "is not a valid trust policy scope"),
        (["--scope", "local/app", "127.0.0.1:5/team/app:v1"], "oci-layout: TARGETs only"),
        (["--scope", "local/app"], "oci-layout: TARGETs only"),
    ],
)
def test_scope_flag_misuse_is_a_usage_error(
    tmp_path: Path, args: list[str], wording: str
) -> None:
    run = run_auditor(["audit", "now", *args], cwd=tmp_path)
    assert run.code == 2, run.stderr
    assert run.stderr.startswith("error: --scope"), run.stderr
    assert wording in run.stderr, run.stderr


def test_config_check_refuses_a_layout_scope_notation_would_refuse(tmp_path: Path) -> None:
    config = tmp_path / "auditor.yaml"
    config.write_text("layouts:\n  - path: ./layout\n    scope: 'oci-layout:./layout'\n")
    run = run_auditor(["config", "check", "-c", config], cwd=tmp_path)
    assert run.code == 2
    assert f"{config}: layouts[0].scope: " in run.stdout
    assert "local/myOCILayout" in run.stdout


def test_a_broken_store_of_another_statement_does_not_stop_the_run(
    registry: RunningRegistry, signed: SignedSample, tmp_path: Path
) -> None:
    """Two repositories on the real registry, each under its own statement; the second
    statement's store does not exist. The first repository is audited as if nothing were
    wrong; the second's signature is an error naming the store; config check warns (exit 0)."""
    good = f"it/scoped-{uuid.uuid4().hex[:8]}"
    broken = f"it/broken-{uuid.uuid4().hex[:8]}"
    for repository in (good, broken):
        push(registry.host, signed.path, repository, update_fallback_tags=True)
    policy = _policy(
        tmp_path / "policy.json",
        _statement("good", [f"{registry.host}/{good}"], TRUST_STORE_NAME),
        _statement("broken", [f"{registry.host}/{broken}"], "missing"),
    )
    trust: list[str | Path] = ["--trust-policy", policy, "--trust-store", signed.trust_store]

    ok = run_auditor(
        ["audit", "now", f"{registry.host}/{good}:v1-single", *trust, "--format", "json"],
        cwd=tmp_path,
    )
    assert ok.code == 0, ok.stderr
    assert _single(ok.report)["status"] == "signed"

    failed = run_auditor(
        ["audit", "now", f"{registry.host}/{broken}:v1-single", *trust, "--format", "json"],
        cwd=tmp_path,
    )
    assert failed.code == 3, failed.stderr
    node = _single(failed.report)
    assert node["status"] == "error"
    (reason,) = _reasons(node)
    assert "statement 'broken'" in reason
    assert MISSING in reason

    check = run_auditor(["config", "check", *trust], cwd=tmp_path)
    assert check.code == 0, check.stdout
    (warning,) = [line for line in check.stdout.splitlines() if line.startswith("warning: ")]
    assert "statement 'broken'" in warning
    assert MISSING in warning
    assert check.stdout.endswith("configuration valid, with 1 warning\n")


def test_sign_missing_on_a_layout_uses_the_scope_flag_or_the_layouts_scope_key(
    signed: SignedSample, tmp_path: Path
) -> None:
    """``auditor sign --missing`` audits an ``oci-layout:`` under the statement for
    ``--scope local/NAME`` (or a configured layout's ``scope:``), as ``audit now`` does. With a
    policy holding only that statement, the layout is unchecked without the scope (nothing is
    signed over it, exit 1) and, with it, every gap is signed and the audit is compliant."""
    keys = tmp_path / "notation"
    made = run_auditor(["keys", "generate-test", "fixer", "--dir", keys, "--scope",
                        "local/fixer"], cwd=tmp_path)
    assert made.code == 0, made.stderr
    policy = json.loads((keys / "trustpolicy.oci.json").read_text())
    assert [s["registryScopes"] for s in policy["trustPolicies"]] == [["local/fixer"]]
    layout = tmp_path / "layout"
    shutil.copytree(signed.path, layout)
    ref = f"oci-layout:{layout}:v1-single"
    trust: list[str | Path] = ["--trust-policy", keys / "trustpolicy.oci.json",
                               "--trust-store", keys / "truststore"]
    sign: list[str | Path] = ["sign", ref, "--key", keys / "localkeys" / "fixer.key",
                              "--cert", keys / "localkeys" / "fixer.crt", "--missing", *trust,
                              "--format", "json"]

    unscoped = run_auditor(sign, cwd=tmp_path)
    assert unscoped.code == 1, (unscoped.stdout, unscoped.stderr)
    assert {n["outcome"] for n in json.loads(unscoped.stdout)["nodes"]} <= {"failed", "skipped"}

    scoped = run_auditor([*sign, "--scope", "local/fixer"], cwd=tmp_path)
    assert scoped.code == 0, (scoped.stdout, scoped.stderr)
    assert [n["outcome"] for n in json.loads(scoped.stdout)["nodes"]] == ["signed"]
    audit = run_auditor(["audit", "now", ref, "--scope", "local/fixer", *trust,
                         "--format", "json"], cwd=tmp_path)
    assert audit.code == 0, audit.stderr
    assert _single(audit.report)["status"] == "signed"
    # Re-running signs nothing new: the signature just made counts under the scope.
    again = run_auditor([*sign, "--scope", "local/fixer"], cwd=tmp_path)
    assert again.code == 0, again.stderr
    assert [n["outcome"] for n in json.loads(again.stdout)["nodes"]] == ["skipped"]

    # A configured layout's scope: key does the same without the flag.
    config = tmp_path / "auditor.yaml"
    config.write_text(f"layouts:\n  - path: {layout}\n    scope: local/fixer\n")
    from_config = run_auditor([*sign, "-c", config], cwd=tmp_path)
    assert from_config.code == 0, from_config.stderr
    assert [n["outcome"] for n in json.loads(from_config.stdout)["nodes"]] == ["skipped"]

    misuse = run_auditor(["sign", "127.0.0.1:5/team/app:v1", "--key", "k", "--cert", "c",
                          "--scope", "local/fixer"], cwd=tmp_path)
    assert misuse.code == 2
    assert "--scope applies to oci-layout: TARGETs only" in misuse.stderr, misuse.stderr
