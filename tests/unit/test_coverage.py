"""Coverage policy over hand-built graphs: every require mode against the scenarios of issue 4."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence

import pytest

from auditor.coverage import (
    DEFAULT_RULE,
    AttestationPolicy,
    CoverageRule,
    Require,
    evaluate_target,
)
from auditor.model import (
    Descriptor,
    GraphNode,
    ImageGraph,
    NodeKind,
    NodeStatus,
    Platform,
    SignatureResult,
    SignatureStatus,
    TargetResult,
    TargetStatus,
)

INDEX_MT = "application/vnd.oci.image.index.v1+json"
MANIFEST_MT = "application/vnd.oci.image.manifest.v1+json"
SIG_AT = "application/vnd.cncf.notary.signature"
REF = "ghcr.io/acme/app:1.0"


def dg(name: str) -> str:
    return "sha256:" + hashlib.sha256(name.encode()).hexdigest()


IX, A, B, P, T = dg("index"), dg("amd64"), dg("arm64"), dg("ppc64le"), dg("attestation")
ALL_PLATFORMS = (A, B, P)


def sig_descriptor(of: str, n: int = 0) -> Descriptor:
    return Descriptor(MANIFEST_MT, dg(f"sig-{n}-{of}"), 700, artifact_type=SIG_AT)


def node(
    digest: str,
    kind: NodeKind,
    *,
    platform: str | None = None,
    parent: str | None = None,
    sigs: int = 0,
    error: str | None = None,
    attestation_for: str | None = None,
) -> GraphNode:
    return GraphNode(
        digest=digest,
        media_type=INDEX_MT if kind is NodeKind.INDEX else MANIFEST_MT,
        size=500,
        kind=kind,
        platform=Platform.parse(platform) if platform else None,
        parent=parent,
        signatures=tuple(sig_descriptor(digest, i) for i in range(sigs)),
        attestation_for=attestation_for,
        error=error,
    )


def result(of: str, status: SignatureStatus, n: int = 0, **kw: object) -> SignatureResult:
    reasons = {
        SignatureStatus.VALID: "signature verified",
        SignatureStatus.INVALID: "certificate chain does not contain any trusted certificate",
        SignatureStatus.ERROR: "envelope could not be parsed",
        SignatureStatus.SKIPPED: "verification level skip",
        SignatureStatus.UNVERIFIED: "not verified",
    }
    return SignatureResult(
        digest=dg(f"sig-{n}-{of}"),
        format="notation/jws",
        status=status,
        reason=str(kw.pop("reason", reasons[status])),
        **kw,  # type: ignore[arg-type]
    )


def multi(
    signed: Iterable[str] = (),
    invalid: Iterable[str] = (),
    *,
    with_attestation: bool = False,
    errors: Mapping[str, str] | None = None,
) -> tuple[ImageGraph, dict[str, list[SignatureResult]]]:
    """index IX -> linux/amd64 A, linux/arm64/v8 B, linux/ppc64le P (+ attestation T for A)."""
    signed, invalid, errors = set(signed), set(invalid), dict(errors or {})
    marked = signed | invalid

    def sigs(d: str) -> int:
        return 1 if d in marked else 0

    nodes = [
        node(IX, NodeKind.INDEX, sigs=sigs(IX), error=errors.get(IX)),
        node(
            A,
            NodeKind.PLATFORM,
            platform="linux/amd64",
            parent=IX,
            sigs=sigs(A),
            error=errors.get(A),
        ),
        node(
            B,
            NodeKind.PLATFORM,
            platform="linux/arm64/v8",
            parent=IX,
            sigs=sigs(B),
            error=errors.get(B),
        ),
        node(
            P,
            NodeKind.PLATFORM,
            platform="linux/ppc64le",
            parent=IX,
            sigs=sigs(P),
            error=errors.get(P),
        ),
    ]
    if with_attestation:
        nodes.append(
            node(
                T,
                NodeKind.ATTESTATION,
                platform="unknown/unknown",
                parent=IX,
                sigs=sigs(T),
                attestation_for=A,
            )
        )
    results = {d: [result(d, SignatureStatus.VALID)] for d in signed}
    results |= {
        d: [result(d, SignatureStatus.INVALID, failed_validation="authenticity")] for d in invalid
    }
    return ImageGraph(REF, IX, tuple(nodes)), results


def rule(require: Require, **kw: object) -> CoverageRule:
    return CoverageRule("ghcr.io/acme/*", require, **kw)  # type: ignore[arg-type]


def kinds(target: TargetResult) -> list[tuple[str, str | None]]:
    return [(f.kind, f.node) for f in target.findings]


def required(target: TargetResult) -> dict[str, bool]:
    return {v.node.digest: v.required for v in target.nodes}


def statuses(target: TargetResult) -> dict[str, NodeStatus]:
    return {v.node.digest: v.status for v in target.nodes}


def run(
    graph: ImageGraph,
    results: Mapping[str, Sequence[SignatureResult]],
    r: CoverageRule,
    *,
    verified: bool = True,
    trust_skipped: bool = False,
) -> TargetResult:
    return evaluate_target(REF, graph, results, r, verified=verified, trust_skipped=trust_skipped)


# --- the require modes against each scenario ---------------------------------------------

UP = "unsigned-platform"
UI = "unsigned-index"


@pytest.mark.parametrize(
    ("require", "status", "findings", "req"),
    [
        (Require.INDEX, TargetStatus.COMPLIANT, [], {IX}),
        (Require.PLATFORMS, TargetStatus.NONCOMPLIANT, [(UP, A), (UP, B), (UP, P)], {A, B, P}),
        (Require.BOTH, TargetStatus.NONCOMPLIANT, [(UP, A), (UP, B), (UP, P)], {IX, A, B, P}),
        (Require.EITHER, TargetStatus.COMPLIANT, [], {IX}),
    ],
)
def test_index_signed_only(
    require: Require, status: TargetStatus, findings: list[tuple[str, str]], req: set[str]
) -> None:
    """The ratify case: only the index carries a signature."""
    target = run(*multi(signed=[IX]), rule(require))
    assert target.status is status
    assert kinds(target) == findings
    assert required(target) == {d: d in req for d in (IX, *ALL_PLATFORMS)}
    # a signed index covers its platforms, for information only: they stay unsigned
    assert {v.node.digest: v.covered_by for v in target.nodes} == {IX: None, A: IX, B: IX, P: IX}
    assert statuses(target)[A] is NodeStatus.UNSIGNED


@pytest.mark.parametrize(
    ("require", "status", "findings", "req"),
    [
        (Require.INDEX, TargetStatus.NONCOMPLIANT, [(UI, IX)], {IX}),
        (Require.PLATFORMS, TargetStatus.COMPLIANT, [], {A, B, P}),
        (Require.BOTH, TargetStatus.NONCOMPLIANT, [(UI, IX)], {IX, A, B, P}),
        (Require.EITHER, TargetStatus.COMPLIANT, [], {A, B, P}),
    ],
)
def test_platforms_signed_only(
    require: Require, status: TargetStatus, findings: list[tuple[str, str]], req: set[str]
) -> None:
    target = run(*multi(signed=ALL_PLATFORMS), rule(require))
    assert target.status is status
    assert kinds(target) == findings
    assert required(target) == {d: d in req for d in (IX, *ALL_PLATFORMS)}
    assert all(v.covered_by is None for v in target.nodes)


@pytest.mark.parametrize("require", list(Require))
def test_everything_signed_is_compliant_under_every_mode(require: Require) -> None:
    target = run(*multi(signed=[IX, *ALL_PLATFORMS]), rule(require))
    assert target.status is TargetStatus.COMPLIANT
    assert target.findings == ()
    assert set(statuses(target).values()) == {NodeStatus.SIGNED}
    assert target.digest == IX
    assert target.media_type == INDEX_MT
    assert target.rule == f"policy {require.value} for ghcr.io/acme/*"


@pytest.mark.parametrize(
    ("require", "status", "findings"),
    [
        (Require.INDEX, TargetStatus.COMPLIANT, []),
        (Require.PLATFORMS, TargetStatus.NONCOMPLIANT, [("invalid-signature", B)]),
        (Require.BOTH, TargetStatus.NONCOMPLIANT, [("invalid-signature", B)]),
        (Require.EITHER, TargetStatus.COMPLIANT, []),
    ],
)
def test_one_platform_signature_invalid(
    require: Require, status: TargetStatus, findings: list[tuple[str, str]]
) -> None:
    target = run(*multi(signed=[IX, A, P], invalid=[B]), rule(require))
    assert target.status is status
    assert kinds(target) == findings
    assert statuses(target)[B] is NodeStatus.INVALID
    if findings:
        message = target.findings[0].message
        assert message.startswith(f"linux/arm64/v8 manifest {B} has no valid signature: ")
        assert "authenticity: certificate chain does not contain any trusted" in message
        assert target.findings[0].platform == "linux/arm64/v8"


def test_either_with_unsigned_index_and_an_invalid_platform_names_both_alternatives() -> None:
    target = run(*multi(signed=[A, P], invalid=[B]), rule(Require.EITHER))
    assert target.status is TargetStatus.NONCOMPLIANT
    assert kinds(target) == [(UI, IX), ("invalid-signature", B)]
    assert required(target) == {IX: True, A: True, B: True, P: True}
    assert "(sign the index, or every selected platform)" in target.findings[0].message


@pytest.mark.parametrize("require", list(Require))
def test_required_platform_missing_is_its_own_finding(require: Require) -> None:
    selectors = (Platform.parse("linux/amd64"), Platform.parse("linux/s390x"))
    target = run(*multi(signed=[IX, *ALL_PLATFORMS]), rule(require, platforms=selectors))
    assert target.status is TargetStatus.NONCOMPLIANT
    assert kinds(target) == [("missing-platform", None)]
    finding = target.findings[0]
    assert finding.platform == "linux/s390x"
    assert finding.message == (
        f"required platform linux/s390x not in index {IX}; "
        f"policy {require.value} for ghcr.io/acme/* on linux/amd64, linux/s390x"
    )


def test_platform_selectors_normalise_and_leave_others_unrequired() -> None:
    selectors = (Platform.parse("linux/amd64/v1"), Platform.parse("linux/arm64"))
    target = run(*multi(signed=[A, B]), rule(Require.PLATFORMS, platforms=selectors))
    assert target.status is TargetStatus.COMPLIANT
    assert required(target) == {IX: False, A: True, B: True, P: False}
    # the unselected platform keeps its real status; it is simply not a finding
    assert statuses(target)[P] is NodeStatus.UNSIGNED


def test_unselected_unsigned_platform_is_no_finding_under_both() -> None:
    selectors = (Platform.parse("linux/amd64"),)
    target = run(*multi(signed=[IX, A]), rule(Require.BOTH, platforms=selectors))
    assert target.status is TargetStatus.COMPLIANT
    assert required(target) == {IX: True, A: True, B: False, P: False}


@pytest.mark.parametrize(
    ("require", "policy", "status", "findings"),
    [
        (Require.BOTH, AttestationPolicy.IGNORE, TargetStatus.COMPLIANT, []),
        (
            Require.INDEX,
            AttestationPolicy.REQUIRE,
            TargetStatus.NONCOMPLIANT,
            [("unsigned-attestation", T)],
        ),
        (
            Require.PLATFORMS,
            AttestationPolicy.REQUIRE,
            TargetStatus.NONCOMPLIANT,
            [("unsigned-attestation", T)],
        ),
        (
            Require.BOTH,
            AttestationPolicy.REQUIRE,
            TargetStatus.NONCOMPLIANT,
            [("unsigned-attestation", T)],
        ),
        # the signed index pins the attestation's digest, which 'either' accepts
        (Require.EITHER, AttestationPolicy.REQUIRE, TargetStatus.COMPLIANT, []),
    ],
)
def test_attestation_ignore_or_require(
    require: Require,
    policy: AttestationPolicy,
    status: TargetStatus,
    findings: list[tuple[str, str]],
) -> None:
    graph, results = multi(signed=[IX, *ALL_PLATFORMS], with_attestation=True)
    target = run(graph, results, rule(require, attestations=policy))
    assert target.status is status
    assert kinds(target) == findings
    verdict = next(v for v in target.nodes if v.node.digest == T)
    assert verdict.status is NodeStatus.UNSIGNED
    assert verdict.required is (
        policy is AttestationPolicy.REQUIRE and require is not Require.EITHER
    )
    if findings:
        assert target.findings[0].message.startswith(
            f"attestation manifest {T} for {A} has no signature; policy"
        )


def test_attestation_is_never_counted_as_a_platform() -> None:
    graph, results = multi(signed=[IX, *ALL_PLATFORMS], with_attestation=True)
    unknown = (Platform.parse("linux/amd64"),)
    target = run(graph, results, rule(Require.PLATFORMS, platforms=unknown))
    assert required(target)[T] is False
    assert target.status is TargetStatus.COMPLIANT


def test_either_unsigned_index_needs_attestations_too_when_required() -> None:
    graph, results = multi(signed=ALL_PLATFORMS, with_attestation=True)
    target = run(graph, results, rule(Require.EITHER, attestations=AttestationPolicy.REQUIRE))
    assert target.status is TargetStatus.NONCOMPLIANT
    assert kinds(target) == [(UI, IX), ("unsigned-attestation", T)]


# --- nested indexes ------------------------------------------------------------------------

OX, I1, I2 = dg("outer"), dg("inner-linux"), dg("inner-windows")
A1, B1, W = dg("inner-amd64"), dg("inner-arm64"), dg("windows-amd64")


def nested(*signed: str) -> tuple[ImageGraph, dict[str, list[SignatureResult]]]:
    s = set(signed)
    nodes = (
        node(OX, NodeKind.INDEX, sigs=int(OX in s)),
        node(I1, NodeKind.INDEX, parent=OX, sigs=int(I1 in s)),
        node(A1, NodeKind.PLATFORM, platform="linux/amd64", parent=I1, sigs=int(A1 in s)),
        node(B1, NodeKind.PLATFORM, platform="linux/arm64", parent=I1, sigs=int(B1 in s)),
        node(I2, NodeKind.INDEX, parent=OX, sigs=int(I2 in s)),
        node(W, NodeKind.PLATFORM, platform="windows/amd64", parent=I2, sigs=int(W in s)),
    )
    return ImageGraph(REF, OX, nodes), {d: [result(d, SignatureStatus.VALID)] for d in s}


def test_nested_index_rule_applies_at_every_level() -> None:
    target = run(*nested(OX), rule(Require.INDEX))
    assert target.status is TargetStatus.NONCOMPLIANT
    assert kinds(target) == [(UI, I1), (UI, I2)]
    assert target.findings[0].message.startswith(f"nested index {I1} has no signature; ")
    assert required(target) == {OX: True, I1: True, A1: False, B1: False, I2: True, W: False}


def test_nested_either_signed_outer_index_covers_everything() -> None:
    target = run(*nested(OX), rule(Require.EITHER))
    assert target.status is TargetStatus.COMPLIANT
    assert required(target) == {OX: True, I1: False, A1: False, B1: False, I2: False, W: False}


def test_nested_either_is_decided_per_level() -> None:
    target = run(*nested(I1, W), rule(Require.EITHER))
    assert target.status is TargetStatus.COMPLIANT
    assert required(target) == {OX: False, I1: True, A1: False, B1: False, I2: False, W: True}
    # one level still uncovered: the inner index and its platform are the findings
    target = run(*nested(I1), rule(Require.EITHER))
    assert target.status is TargetStatus.NONCOMPLIANT
    assert kinds(target) == [(UI, OX), (UI, I2), (UP, W)]


def test_nested_platforms_and_both() -> None:
    leaves = nested(A1, B1, W)
    assert run(*leaves, rule(Require.PLATFORMS)).status is TargetStatus.COMPLIANT
    target = run(*leaves, rule(Require.BOTH))
    assert kinds(target) == [(UI, OX), (UI, I1), (UI, I2)]
    # selectors look across every level of the tree, not one inner index
    selectors = (Platform.parse("linux/arm64/v8"), Platform.parse("windows/amd64"))
    target = run(*leaves, rule(Require.PLATFORMS, platforms=selectors))
    assert target.status is TargetStatus.COMPLIANT
    assert required(target)[A1] is False


def test_either_index_with_no_selected_children_needs_its_own_signature() -> None:
    """An empty 'all of' never passes."""
    graph = ImageGraph(REF, IX, (node(IX, NodeKind.INDEX),))
    target = run(graph, {}, rule(Require.EITHER))
    assert target.status is TargetStatus.NONCOMPLIANT
    assert kinds(target) == [(UI, IX), ("missing-platform", IX)]
    target = run(graph, {}, rule(Require.PLATFORMS))
    assert target.status is TargetStatus.NONCOMPLIANT
    assert kinds(target) == [("missing-platform", IX)]
    assert target.findings[0].message.startswith(f"index {IX} lists no platform manifests; ")


# --- single manifest -----------------------------------------------------------------------

M = dg("single")


@pytest.mark.parametrize("require", list(Require))
def test_single_manifest_needs_its_signature_under_every_rule(require: Require) -> None:
    unsigned = ImageGraph(REF, M, (node(M, NodeKind.MANIFEST),))
    target = run(unsigned, {}, rule(require))
    assert target.status is TargetStatus.NONCOMPLIANT
    assert kinds(target) == [("unsigned-manifest", M)]
    assert target.findings[0].message == (
        f"manifest {M} has no signature; policy {require.value} for ghcr.io/acme/*"
    )
    signed = ImageGraph(REF, M, (node(M, NodeKind.MANIFEST, sigs=1),))
    target = run(signed, {M: [result(M, SignatureStatus.VALID)]}, rule(require))
    assert target.status is TargetStatus.COMPLIANT
    assert required(target) == {M: True}


def test_single_manifest_ignores_platform_selectors() -> None:
    graph = ImageGraph(REF, M, (node(M, NodeKind.MANIFEST, sigs=1),))
    selectors = (Platform.parse("linux/s390x"),)
    target = run(
        graph, {M: [result(M, SignatureStatus.VALID)]}, rule(Require.BOTH, platforms=selectors)
    )
    assert target.status is TargetStatus.COMPLIANT


# --- unverified, errors, trust-policy skip ---------------------------------------------------


def test_unverified_signatures_are_unchecked_not_signed() -> None:
    graph, _ = multi(signed=[IX, *ALL_PLATFORMS])
    target = run(graph, {}, rule(Require.BOTH), verified=False)
    assert target.status is TargetStatus.ERROR
    assert set(statuses(target).values()) == {NodeStatus.UNVERIFIED}
    assert kinds(target) == [("unchecked", d) for d in (IX, *ALL_PLATFORMS)]
    assert "not verified: no trust policy configured" in target.findings[0].message


def test_unverified_with_one_clearly_unsigned_node_is_noncompliant() -> None:
    graph, _ = multi(signed=[IX, A, B])
    target = run(graph, {}, rule(Require.BOTH), verified=False)
    assert target.status is TargetStatus.NONCOMPLIANT
    assert kinds(target) == [("unchecked", IX), ("unchecked", A), ("unchecked", B), (UP, P)]


def test_either_with_unverified_index_and_unsigned_platforms_is_error() -> None:
    """The unchecked index might cover the platforms: nothing is clearly noncompliant."""
    graph, _ = multi(signed=[IX])
    target = run(graph, {}, rule(Require.EITHER), verified=False)
    assert target.status is TargetStatus.ERROR
    assert kinds(target) == [("unchecked", IX), (UP, A), (UP, B), (UP, P)]


@pytest.mark.parametrize("require", list(Require))
def test_platform_that_failed_to_load(require: Require) -> None:
    graph, results = multi(signed=[IX, A, P], errors={B: "registry answered 500 for sha256:b"})
    target = run(graph, results, rule(require))
    expected = {
        Require.INDEX: (TargetStatus.COMPLIANT, []),
        Require.PLATFORMS: (TargetStatus.ERROR, [("unchecked", B)]),
        Require.BOTH: (TargetStatus.ERROR, [("unchecked", B)]),
        Require.EITHER: (TargetStatus.COMPLIANT, []),
    }
    assert (target.status, kinds(target)) == expected[require]
    assert statuses(target)[B] is NodeStatus.ERROR


def test_error_does_not_hide_a_clear_finding() -> None:
    graph, results = multi(signed=[IX, A], errors={B: "registry answered 500"})
    target = run(graph, results, rule(Require.BOTH))
    assert target.status is TargetStatus.NONCOMPLIANT
    assert kinds(target) == [("unchecked", B), (UP, P)]


@pytest.mark.parametrize("require", list(Require))
def test_root_index_that_failed_to_load_is_error_under_every_mode(require: Require) -> None:
    graph = ImageGraph(REF, IX, (node(IX, NodeKind.INDEX, error="index depth exceeds 8"),))
    selectors = (Platform.parse("linux/amd64"),)
    target = run(graph, {}, rule(require, platforms=selectors))
    assert target.status is TargetStatus.ERROR
    assert kinds(target) == [("unchecked", IX)]  # no missing-platform guess about unread children
    assert target.error == "index depth exceeds 8"
    assert target.findings[0].message.startswith(f"index {IX} could not be checked: index depth")


def test_trust_policy_skip_makes_nodes_skipped_and_target_compliant() -> None:
    graph, _ = multi(signed=[IX])
    target = run(graph, {}, rule(Require.BOTH), trust_skipped=True)
    assert target.status is TargetStatus.COMPLIANT
    assert set(statuses(target).values()) == {NodeStatus.SKIPPED}
    assert not any(required(target).values())
    assert target.findings == ()


def test_trust_policy_skip_keeps_load_errors() -> None:
    graph, _ = multi(errors={A: "manifest too large"})
    target = run(graph, {}, rule(Require.BOTH), trust_skipped=True)
    assert target.status is TargetStatus.ERROR
    assert kinds(target) == [("unchecked", A)]
    assert required(target) == {IX: False, A: True, B: False, P: False}


def test_missing_root_is_an_error_target() -> None:
    target = run(ImageGraph(REF, IX, ()), {}, DEFAULT_RULE)
    assert target.status is TargetStatus.ERROR
    assert target.error == f"graph has no root node {IX}"
    assert kinds(target) == [("unchecked", None)]


def test_default_rule_is_both_every_platform_attestations_ignored() -> None:
    assert DEFAULT_RULE.require is Require.BOTH
    assert DEFAULT_RULE.platforms is None
    assert DEFAULT_RULE.attestations is AttestationPolicy.IGNORE
    assert DEFAULT_RULE.label == "policy both for * (default)"
    graph, results = multi(signed=[IX, A, B], with_attestation=True)
    target = run(graph, results, DEFAULT_RULE)
    assert kinds(target) == [(UP, P)]
    assert target.findings[0].message == (
        f"linux/ppc64le manifest {P} has no signature; policy both for * (default)"
    )


def test_platform_less_entry_is_always_selected() -> None:
    """An index entry without a platform could be pulled as any platform: a selector must not
    exempt it."""
    graph, results = multi(signed=[IX, A])
    bare = node(dg("bare"), NodeKind.PLATFORM, parent=IX)
    graph = ImageGraph(REF, IX, (*graph.nodes, bare))
    target = run(graph, results, rule(Require.BOTH, platforms=(Platform.parse("linux/amd64"),)))
    assert target.status is TargetStatus.NONCOMPLIANT
    assert required(target)[bare.digest] is True
    assert (UP, bare.digest) in kinds(target)
