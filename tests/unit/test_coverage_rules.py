"""Coverage building blocks: node status and reasons, rule parsing and selection, summaries."""

from __future__ import annotations

import pytest

from auditor.config import parse_config
from auditor.coverage import (
    DEFAULT_RULE,
    AttestationPolicy,
    CoverageRule,
    Require,
    error_target,
    exit_code,
    node_status,
    platform_matches,
    select_rule,
    summarize,
)
from auditor.errors import ConfigError
from auditor.model import (
    GraphNode,
    NodeKind,
    NodeStatus,
    NodeVerdict,
    Platform,
    SignatureResult,
    SignatureStatus,
    TargetResult,
    TargetStatus,
)
from tests.unit.test_coverage import MANIFEST_MT, dg, sig_descriptor

D = dg("node")


def signed_node(sigs: int = 2, error: str | None = None) -> GraphNode:
    return GraphNode(
        D,
        MANIFEST_MT,
        10,
        NodeKind.PLATFORM,
        Platform("linux", "amd64"),
        signatures=tuple(sig_descriptor(D, i) for i in range(sigs)),
        error=error,
    )


def res(status: SignatureStatus, n: int = 0, reason: str = "r", **kw: object) -> SignatureResult:
    return SignatureResult(dg(f"sig-{n}-{D}"), "notation/cose", status, reason, **kw)  # type: ignore[arg-type]


AUTH = "certificate chain does not contain any trusted certificate"


@pytest.mark.parametrize(
    ("sigs", "results", "verified", "status", "reason"),
    [
        (0, [], True, NodeStatus.UNSIGNED, "no signature"),
        (0, [], False, NodeStatus.UNSIGNED, "no signature"),
        (
            1,
            [],
            False,
            NodeStatus.UNVERIFIED,
            "1 signature present, not verified: no trust policy configured",
        ),
        (
            2,
            [
                res(SignatureStatus.INVALID, 0, AUTH, failed_validation="authenticity"),
                res(SignatureStatus.VALID, 1, "ok", signer="CN=acme"),
            ],
            True,
            NodeStatus.SIGNED,
            "1 of 2 signatures valid; signer CN=acme",
        ),
        (
            2,
            [
                res(SignatureStatus.INVALID, 0, AUTH, failed_validation="authenticity"),
                res(SignatureStatus.INVALID, 1, AUTH, failed_validation="authenticity"),
            ],
            True,
            NodeStatus.INVALID,
            f"2 signatures, none valid: authenticity: {AUTH}",
        ),
        (
            2,
            [
                res(SignatureStatus.INVALID, 0, "expired", failed_validation="expiry"),
                res(SignatureStatus.ERROR, 1, "bad envelope"),
            ],
            True,
            NodeStatus.INVALID,
            "2 signatures, none valid: expiry: expired",
        ),
        (
            2,
            [
                res(SignatureStatus.ERROR, 0, "TSA unreachable"),
                res(SignatureStatus.ERROR, 1, "bad envelope"),
            ],
            True,
            NodeStatus.ERROR,
            "2 signatures, none could be checked: TSA unreachable; bad envelope",
        ),
        (
            2,
            [res(SignatureStatus.SKIPPED, 0), res(SignatureStatus.SKIPPED, 1)],
            True,
            NodeStatus.SKIPPED,
            "2 signatures, verification skipped by the trust policy",
        ),
        (
            2,
            [
                res(SignatureStatus.SKIPPED, 0),
                res(SignatureStatus.VALID, 1, warnings=("expires soon",)),
            ],
            True,
            NodeStatus.SIGNED,
            "1 of 2 signatures valid; warning: expires soon",
        ),
        (
            2,
            [res(SignatureStatus.INVALID, 0, "x", failed_validation="integrity")],
            True,
            NodeStatus.INVALID,
            "2 signatures, none valid: integrity: x",
        ),
        (
            2,
            [res(SignatureStatus.ERROR, 0, "timeout")],
            True,
            NodeStatus.ERROR,
            "2 signatures, none could be checked: timeout; "
            "1 signature without a verification result",
        ),
        (
            1,
            [],
            True,
            NodeStatus.ERROR,
            "1 signature, none could be checked: 1 signature without a verification result",
        ),
        (
            1,
            [res(SignatureStatus.UNVERIFIED, 0, "no trust policy applies")],
            True,
            NodeStatus.UNVERIFIED,
            "1 signature present, not verified: no trust policy applies",
        ),
    ],
)
def test_node_status(
    sigs: int,
    results: list[SignatureResult],
    verified: bool,
    status: NodeStatus,
    reason: str,
) -> None:
    assert node_status(signed_node(sigs), results, verified=verified) == (status, reason)


def test_node_error_wins_over_signatures() -> None:
    got = node_status(signed_node(1, error="digest mismatch"), [res(SignatureStatus.VALID)])
    assert got == (NodeStatus.ERROR, "digest mismatch")


def test_unverified_never_signed_even_with_valid_results() -> None:
    status, _ = node_status(signed_node(1), [res(SignatureStatus.VALID)], verified=False)
    assert status is NodeStatus.UNVERIFIED


@pytest.mark.parametrize(
    ("selector", "platform", "expected"),
    [
        ("linux/arm64", Platform("linux", "arm64", "v8"), True),
        ("linux/arm64/v8", Platform("linux", "arm64"), True),
        ("linux/arm64", Platform("linux", "aarch64"), True),
        ("linux/amd64/v1", Platform("linux", "amd64"), True),
        ("linux/amd64", Platform("linux", "amd64", "v3"), True),
        ("linux/amd64/v1", Platform("linux", "amd64", "v3"), False),
        ("linux/arm/v6", Platform("linux", "arm"), False),
        ("linux/arm", Platform("linux", "arm", "v6"), True),
        ("linux/amd64", Platform("windows", "amd64"), False),
        ("linux/amd64", None, False),
    ],
)
def test_platform_matches(selector: str, platform: Platform | None, expected: bool) -> None:
    assert platform_matches(Platform.parse(selector), platform) is expected


def _rules(data: object) -> tuple[CoverageRule, ...]:
    return tuple(rule.to_rule() for rule in parse_config({"coverage": data}, "cfg").coverage)


def test_rules_from_config_and_first_match_wins() -> None:
    rules = _rules(
        [
            {"scope": "ghcr.io/acme/legacy", "require": "index", "name": "legacy"},
            {
                "scope": "ghcr.io/acme/*",
                "require": "either",
                "platforms": ["linux/amd64", "linux/arm64"],
                "attestations": "require",
            },
        ]
    )
    assert rules[1] == CoverageRule(
        "ghcr.io/acme/*",
        Require.EITHER,
        (Platform("linux", "amd64"), Platform("linux", "arm64")),
        AttestationPolicy.REQUIRE,
    )
    assert select_rule(rules, "ghcr.io/acme/legacy") is rules[0]
    assert rules[0].label == "policy index for ghcr.io/acme/legacy (legacy)"
    assert select_rule(rules, "ghcr.io/acme/team/app") is rules[1]
    assert select_rule(rules, "docker.io/library/alpine") is DEFAULT_RULE
    assert select_rule(rules, "GHCR.io/acme/app") is DEFAULT_RULE  # case-sensitive
    overridden = select_rule(rules, "ghcr.io/acme/app", require=Require.PLATFORMS)
    assert overridden.require is Require.PLATFORMS
    assert overridden.platforms == rules[1].platforms
    assert select_rule((), "x/y", require=Require.INDEX) == DEFAULT_RULE.with_require(Require.INDEX)
    assert _rules([]) == ()
    assert _rules([{"scope": "*"}]) == (CoverageRule("*"),)


def test_rules_from_config_report_every_problem_with_its_path() -> None:
    with pytest.raises(ConfigError) as caught:
        _rules(
            [
                {"scope": "a/*", "require": "all", "platforms": ["linux", 3, "unknown/unknown"]},
                {"require": "both", "attestations": "maybe", "colour": "red"},
                "both",
                {"scope": "b/*", "platforms": []},
            ]
        )
    lines = str(caught.value).splitlines()
    for prefix in (
        "cfg: coverage[0].require:",
        "cfg: coverage[0].platforms[0]: platform 'linux' is not os/architecture[/variant]",
        "cfg: coverage[0].platforms[1]:",
        "cfg: coverage[0].platforms[2]: unknown/unknown is an attestation, not a platform",
        "cfg: coverage[1].colour:",
        "cfg: coverage[1].scope:",
        "cfg: coverage[1].attestations:",
        "cfg: coverage[2]:",
        "cfg: coverage[3].platforms:",
    ):
        assert any(line.startswith(prefix) for line in lines), (prefix, lines)
    with pytest.raises(ConfigError, match=r"cfg: coverage: "):
        _rules({"scope": "*"})


def _target(status: TargetStatus, *node_statuses: NodeStatus) -> TargetResult:
    node = GraphNode(D, MANIFEST_MT, 1, NodeKind.MANIFEST)
    verdicts = tuple(NodeVerdict(node, s, "r") for s in node_statuses)
    return TargetResult("r", D, MANIFEST_MT, status, verdicts)


def test_summary_counts_every_status() -> None:
    summary = summarize(
        [
            _target(TargetStatus.COMPLIANT, NodeStatus.SIGNED, NodeStatus.SIGNED),
            _target(TargetStatus.NONCOMPLIANT, NodeStatus.UNSIGNED, NodeStatus.INVALID),
            _target(TargetStatus.ERROR, NodeStatus.ERROR),
        ]
    )
    assert dict(summary.nodes) == {
        NodeStatus.SIGNED: 2,
        NodeStatus.UNSIGNED: 1,
        NodeStatus.INVALID: 1,
        NodeStatus.ERROR: 1,
        NodeStatus.SKIPPED: 0,
        NodeStatus.UNVERIFIED: 0,
    }
    assert dict(summary.targets) == {
        TargetStatus.COMPLIANT: 1,
        TargetStatus.NONCOMPLIANT: 1,
        TargetStatus.ERROR: 1,
    }


@pytest.mark.parametrize(
    ("statuses", "code"),
    [
        ([], 0),
        ([TargetStatus.COMPLIANT], 0),
        ([TargetStatus.COMPLIANT, TargetStatus.ERROR], 3),
        ([TargetStatus.ERROR, TargetStatus.NONCOMPLIANT], 1),
    ],
)
def test_exit_code(statuses: list[TargetStatus], code: int) -> None:
    assert exit_code(_target(s) for s in statuses) == code


def test_error_target_is_never_a_silent_pass() -> None:
    target = error_target(
        "ghcr.io/acme/app:1", "registry ghcr.io refused the token", rule=DEFAULT_RULE
    )
    assert target.status is TargetStatus.ERROR
    assert target.error == "registry ghcr.io refused the token"
    assert [(f.kind, f.node, f.message) for f in target.findings] == [
        (
            "unchecked",
            None,
            "ghcr.io/acme/app:1 could not be checked: registry ghcr.io refused the token",
        )
    ]
    assert target.rule == "policy both for * (default)"
