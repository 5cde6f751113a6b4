"""The signing plan (auditor/signing/plan.py): which nodes are signed or skipped, and why."""

from __future__ import annotations

import pytest

from auditor.errors import UsageError
from auditor.model import (
    GraphNode,
    ImageGraph,
    NodeKind,
    NodeStatus,
    NodeVerdict,
    Platform,
)
from auditor.oci import mediatypes as mt
from auditor.signing.plan import Action, Selection, select, settle, wanted


def _d(c: str) -> str:
    return "sha256:" + c * 64


ROOT, NESTED, AMD, ARM, PPC, ATT, NOPLAT = (_d(c) for c in "1234567")


def LINUX(arch: str) -> Platform:
    return Platform("linux", arch)


def _graph() -> ImageGraph:
    """index -> [amd64, nested index -> [arm64/v8], ppc64le, attestation, platform-less]."""
    nodes = (
        GraphNode(ROOT, mt.OCI_INDEX, 100, NodeKind.INDEX),
        GraphNode(AMD, mt.OCI_MANIFEST, 10, NodeKind.PLATFORM, LINUX("amd64"), ROOT, 1),
        GraphNode(NESTED, mt.OCI_INDEX, 50, NodeKind.INDEX, None, ROOT, 1),
        GraphNode(PPC, mt.OCI_MANIFEST, 10, NodeKind.PLATFORM, LINUX("ppc64le"), ROOT, 1),
        GraphNode(ATT, mt.OCI_MANIFEST, 10, NodeKind.ATTESTATION, Platform("unknown", "unknown"),
                  ROOT, 1, attestation_for=AMD),
        GraphNode(NOPLAT, mt.OCI_MANIFEST, 10, NodeKind.PLATFORM, None, ROOT, 1),
        GraphNode(ARM, mt.OCI_MANIFEST, 10, NodeKind.PLATFORM, Platform("linux", "arm64", "v8"),
                  NESTED, 2),
    )
    return ImageGraph("r/app:v1", ROOT, nodes)


def _actions(selection: Selection, **kw: object) -> dict[str, Action]:
    return {d.node.digest: d.action for d in select(_graph(), selection, **kw)}  # type: ignore[arg-type]


def test_without_recursive_only_the_reference_is_signed() -> None:
    decisions = select(_graph(), Selection())
    assert [d.node.digest for d in decisions if d.action is Action.SIGN] == [ROOT]
    skipped = [d for d in decisions if d.node.digest != ROOT]
    assert all(d.action is Action.SKIP and "--recursive" in d.reason for d in skipped)


def test_recursive_signs_indexes_and_platforms_not_attestations() -> None:
    actions = _actions(Selection(recursive=True))
    assert actions == {
        ROOT: Action.SIGN, NESTED: Action.SIGN, AMD: Action.SIGN, ARM: Action.SIGN,
        PPC: Action.SIGN, NOPLAT: Action.SIGN, ATT: Action.SKIP,
    }
    with_att = _actions(Selection(recursive=True, include_attestations=True))
    assert with_att[ATT] is Action.SIGN


def test_platform_selects_by_normalised_platform_and_keeps_platformless_entries() -> None:
    sel = Selection(recursive=True, platforms=(Platform("linux", "arm64"),))
    decisions = {d.node.digest: d for d in select(_graph(), sel)}
    assert decisions[ARM].action is Action.SIGN  # arm64 selects arm64/v8
    assert decisions[AMD].action is Action.SKIP
    assert "not selected" in decisions[AMD].reason
    assert decisions[PPC].action is Action.SKIP
    assert decisions[NOPLAT].action is Action.SIGN
    assert "without a platform" in decisions[NOPLAT].reason
    assert decisions[ROOT].action is Action.SIGN
    assert decisions[NESTED].action is Action.SIGN


def test_no_index_signs_only_the_selected_platforms() -> None:
    sel = Selection(recursive=True, platforms=(Platform("linux", "amd64"),), no_index=True)
    signed = {n.digest for n in wanted(select(_graph(), sel))}
    assert signed == {AMD, NOPLAT}


def test_a_platform_that_is_not_there_is_a_usage_error() -> None:
    sel = Selection(recursive=True, platforms=(Platform("linux", "s390x"),))
    with pytest.raises(UsageError, match=r"linux/s390x: not in r/app:v1 .*linux/amd64"):
        select(_graph(), sel)


@pytest.mark.parametrize(
    ("selection", "message"),
    [
        (Selection(platforms=(Platform("linux", "amd64"),)), "add --recursive"),
        (Selection(no_index=True), "add --recursive"),
        (Selection(include_attestations=True), "add --recursive"),
        (Selection(missing=True, recursive=True), "does not combine with --recursive"),
        (Selection(missing=True, no_index=True), "--no-index"),
    ],
)
def test_meaningless_combinations_are_refused(selection: Selection, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        select(_graph(), selection)


def _verdict(node: GraphNode, status: NodeStatus, required: bool = True) -> NodeVerdict:
    return NodeVerdict(node, status, f"because {status.value}", required=required)


def test_missing_signs_exactly_the_required_unsigned_and_invalid_nodes() -> None:
    graph = _graph()
    by = {n.digest: n for n in graph.nodes}
    verdicts = {
        ROOT: _verdict(by[ROOT], NodeStatus.SIGNED),
        NESTED: _verdict(by[NESTED], NodeStatus.UNSIGNED),
        AMD: _verdict(by[AMD], NodeStatus.INVALID),
        PPC: _verdict(by[PPC], NodeStatus.UNSIGNED, required=False),
        ATT: _verdict(by[ATT], NodeStatus.UNSIGNED, required=False),
        NOPLAT: _verdict(by[NOPLAT], NodeStatus.ERROR),
        ARM: _verdict(by[ARM], NodeStatus.UNSIGNED),
    }
    decisions = {d.node.digest: d for d in select(graph, Selection(missing=True), verdicts)}
    assert {d: x.action for d, x in decisions.items()} == {
        ROOT: Action.SKIP, NESTED: Action.SIGN, AMD: Action.SIGN, PPC: Action.SKIP,
        ATT: Action.SKIP, NOPLAT: Action.FAIL, ARM: Action.SIGN,
    }
    assert "because invalid" in decisions[AMD].reason
    assert "could not check" in decisions[NOPLAT].reason


def test_an_unreadable_wanted_node_fails_instead_of_being_signed() -> None:
    graph = _graph()
    broken = tuple(
        GraphNode(n.digest, n.media_type, n.size, n.kind, n.platform, n.parent, n.depth,
                  error="manifest was not fetched") if n.digest == PPC else n
        for n in graph.nodes
    )
    decisions = {d.node.digest: d for d in select(
        ImageGraph(graph.reference, ROOT, broken), Selection(recursive=True)
    )}
    assert decisions[PPC].action is Action.FAIL
    assert "could not be read: manifest was not fetched" in decisions[PPC].reason


def test_settle_skips_what_this_certificate_already_signed_unless_forced() -> None:
    decisions = select(_graph(), Selection(recursive=True))
    existing = {AMD: "already signed by this certificate (sha256:aa...)"}
    settled = {d.node.digest: d for d in settle(decisions, existing, force=False)}
    assert settled[AMD].action is Action.SKIP
    assert "already signed" in settled[AMD].reason
    assert "--force" in settled[AMD].reason
    assert settled[ARM].action is Action.SIGN
    forced = {d.node.digest: d for d in settle(decisions, existing, force=True)}
    assert forced[AMD].action is Action.SIGN
    assert "again (--force)" in forced[AMD].reason
    # A skipped node stays skipped whatever it carries.
    assert {d.node.digest: d.action for d in settle(decisions, {ATT: "x"}, force=True)}[ATT] is (
        Action.SKIP
    )
