"""The pure alert diff: every transition, no repeats, errors that change nothing."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from auditor.daemon.alerts.diff import (
    AlertSettings,
    AlertState,
    Transition,
    decide,
    forget,
    state_from_json,
    state_to_json,
)
from auditor.model import (
    Finding,
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

T0 = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
REF = "127.0.0.1:5000/team/app:v1"
RULE = "policy both for *"
IX = "sha256:" + "1" * 64
AMD = "sha256:" + "a" * 64
ARM = "sha256:" + "b" * 64
SETTINGS = AlertSettings()


def _sig(valid_until: datetime | None) -> SignatureResult:
    return SignatureResult(
        "sha256:" + "5" * 64, "notation/jws", SignatureStatus.VALID, "ok", valid_until=valid_until
    )


def _node(
    digest: str, status: NodeStatus, platform: str | None = None, until: datetime | None = None
) -> NodeVerdict:
    kind = NodeKind.PLATFORM if platform else NodeKind.INDEX
    node = GraphNode(
        digest,
        "application/vnd.oci.image.manifest.v1+json",
        10,
        kind,
        platform=Platform.parse(platform) if platform else None,
        parent=None if kind is NodeKind.INDEX else IX,
    )
    sigs = (_sig(until),) if status is NodeStatus.SIGNED else ()
    return NodeVerdict(node, status, status.value, sigs)


def _result(*nodes: NodeVerdict, errors: tuple[str, ...] = ()) -> TargetResult:
    findings = [
        Finding(
            f"unsigned-{v.node.kind.value}",
            f"{v.node.digest} is unsigned",
            RULE,
            v.node.digest,
            str(v.node.platform) if v.node.platform else None,
        )
        for v in nodes
        if v.status is NodeStatus.UNSIGNED
    ]
    findings += [Finding("unchecked", f"{d} could not be checked: boom", RULE, d) for d in errors]
    if any(f.kind != "unchecked" for f in findings):
        status = TargetStatus.NONCOMPLIANT
    elif errors:
        status = TargetStatus.ERROR
    else:
        status = TargetStatus.COMPLIANT
    return TargetResult(
        REF,
        IX,
        "application/vnd.oci.image.index.v1+json",
        status,
        tuple(nodes),
        tuple(findings),
        RULE,
    )


def _down() -> TargetResult:
    return TargetResult(
        REF,
        None,
        None,
        TargetStatus.ERROR,
        findings=(Finding("unchecked", "registry down", RULE),),
        rule=RULE,
        error="connection refused",
    )


SIGNED_INDEX_ONLY = _result(
    _node(IX, NodeStatus.SIGNED),
    _node(AMD, NodeStatus.UNSIGNED, "linux/amd64"),
    _node(ARM, NodeStatus.UNSIGNED, "linux/arm64"),
)
ALL_SIGNED = _result(
    _node(IX, NodeStatus.SIGNED),
    _node(AMD, NodeStatus.SIGNED, "linux/amd64"),
    _node(ARM, NodeStatus.SIGNED, "linux/arm64"),
)


def test_opened_once_then_silent_then_resolved() -> None:
    alert, state = decide(REF, None, SIGNED_INDEX_ONLY, T0, SETTINGS)
    assert alert is not None
    assert alert.transition is Transition.OPENED
    assert {(p.platform, p.node) for p in alert.opened} == {
        ("linux/amd64", AMD),
        ("linux/arm64", ARM),
    }
    assert all(p.rule == RULE for p in alert.opened)
    for hour in range(1, 5):
        again, state = decide(REF, state, SIGNED_INDEX_ONLY, T0 + timedelta(hours=hour), SETTINGS)
        assert again is None
    fixed, state = decide(REF, state, ALL_SIGNED, T0 + timedelta(hours=6), SETTINGS)
    assert fixed is not None
    assert fixed.transition is Transition.RESOLVED
    assert len(fixed.resolved) == 2
    assert not fixed.still_open
    assert decide(REF, state, ALL_SIGNED, T0 + timedelta(hours=7), SETTINGS)[0] is None


def test_restart_reads_state_back_and_repeats_nothing() -> None:
    _, state = decide(REF, None, SIGNED_INDEX_ONLY, T0, SETTINGS)
    stored = json.loads(json.dumps(state_to_json(state)))
    restored = state_from_json(stored)
    assert restored == state
    assert decide(REF, restored, SIGNED_INDEX_ONLY, T0 + timedelta(hours=1), SETTINGS)[0] is None


def test_signature_deleted_is_a_new_alert_with_the_node_change() -> None:
    _, state = decide(REF, None, ALL_SIGNED, T0, SETTINGS)
    drifted = _result(
        _node(IX, NodeStatus.SIGNED),
        _node(AMD, NodeStatus.SIGNED, "linux/amd64"),
        _node(ARM, NodeStatus.UNSIGNED, "linux/arm64"),
    )
    alert, _ = decide(REF, state, drifted, T0 + timedelta(hours=1), SETTINGS)
    assert alert is not None
    assert alert.transition is Transition.OPENED
    assert [p.node for p in alert.opened] == [ARM]
    assert [(c.node, c.before, c.after) for c in alert.node_changes] == [
        (ARM, "signed", "unsigned")
    ]


def test_new_platform_added_unsigned_opens_and_keeps_the_old_ones_open() -> None:
    _, state = decide(
        REF,
        None,
        _result(_node(IX, NodeStatus.SIGNED), _node(AMD, NodeStatus.UNSIGNED, "linux/amd64")),
        T0,
        SETTINGS,
    )
    alert, _ = decide(REF, state, SIGNED_INDEX_ONLY, T0 + timedelta(hours=1), SETTINGS)
    assert alert is not None
    assert alert.transition is Transition.OPENED
    assert [p.node for p in alert.opened] == [ARM]
    assert [p.node for p in alert.still_open] == [AMD]


def test_partial_fix_is_updated_not_resolved() -> None:
    _, state = decide(REF, None, SIGNED_INDEX_ONLY, T0, SETTINGS)
    half = _result(
        _node(IX, NodeStatus.SIGNED),
        _node(AMD, NodeStatus.SIGNED, "linux/amd64"),
        _node(ARM, NodeStatus.UNSIGNED, "linux/arm64"),
    )
    alert, _ = decide(REF, state, half, T0 + timedelta(hours=1), SETTINGS)
    assert alert is not None
    assert alert.transition is Transition.UPDATED
    assert [p.node for p in alert.resolved] == [AMD]
    assert [p.node for p in alert.still_open] == [ARM]


def test_reminder_only_when_configured_and_due() -> None:
    settings = AlertSettings(remind_every=timedelta(hours=24))
    _, state = decide(REF, None, SIGNED_INDEX_ONLY, T0, settings)
    assert decide(REF, state, SIGNED_INDEX_ONLY, T0 + timedelta(hours=23), settings)[0] is None
    alert, state = decide(REF, state, SIGNED_INDEX_ONLY, T0 + timedelta(hours=24), settings)
    assert alert is not None
    assert alert.transition is Transition.REMINDER
    assert len(alert.still_open) == 2
    assert not alert.opened
    assert decide(REF, state, SIGNED_INDEX_ONLY, T0 + timedelta(hours=30), settings)[0] is None


def test_registry_down_changes_nothing_until_error_after() -> None:
    _, state = decide(REF, None, SIGNED_INDEX_ONLY, T0, SETTINGS)
    alert, state = decide(REF, state, _down(), T0 + timedelta(minutes=5), SETTINGS)
    assert alert is None
    alert, state = decide(REF, state, _down(), T0 + timedelta(minutes=30), SETTINGS)
    assert alert is None
    alert, state = decide(REF, state, _down(), T0 + timedelta(minutes=65), SETTINGS)
    assert alert is not None
    assert alert.transition is Transition.AUDIT_ERROR
    assert alert.error == "connection refused"
    assert alert.error_since == T0 + timedelta(minutes=5)
    assert len(alert.still_open) == 2  # the last known state stands
    assert decide(REF, state, _down(), T0 + timedelta(minutes=90), SETTINGS)[0] is None
    # Back up with the same problems: no "opened", no "resolved", one recovery note.
    alert, state = decide(REF, state, SIGNED_INDEX_ONLY, T0 + timedelta(hours=2), SETTINGS)
    assert alert is not None
    assert alert.transition is Transition.AUDIT_RECOVERED
    assert not alert.opened
    assert not alert.resolved
    assert decide(REF, state, SIGNED_INDEX_ONLY, T0 + timedelta(hours=3), SETTINGS)[0] is None


def test_short_outage_is_silent_both_ways() -> None:
    _, state = decide(REF, None, SIGNED_INDEX_ONLY, T0, SETTINGS)
    alert, state = decide(REF, state, _down(), T0 + timedelta(minutes=5), SETTINGS)
    assert alert is None
    alert, state = decide(REF, state, SIGNED_INDEX_ONLY, T0 + timedelta(minutes=10), SETTINGS)
    assert alert is None
    assert state.error_since is None


def test_unchecked_node_keeps_its_problem_open() -> None:
    _, state = decide(REF, None, SIGNED_INDEX_ONLY, T0, SETTINGS)
    partly = _result(
        _node(IX, NodeStatus.SIGNED),
        _node(AMD, NodeStatus.ERROR, "linux/amd64"),
        _node(ARM, NodeStatus.UNSIGNED, "linux/arm64"),
        errors=(AMD,),
    )
    alert, state = decide(REF, state, partly, T0 + timedelta(minutes=5), SETTINGS)
    assert alert is None
    assert {p.node for p in state.problems.values()} == {AMD, ARM}


def test_expiring_warns_once_per_signature_end() -> None:
    soon = T0 + timedelta(days=10)
    later = T0 + timedelta(days=40)
    near = _result(
        _node(IX, NodeStatus.SIGNED, until=later),
        _node(AMD, NodeStatus.SIGNED, "linux/amd64", until=soon),
    )
    alert, state = decide(REF, None, near, T0, SETTINGS)
    assert alert is not None
    assert alert.transition is Transition.EXPIRING
    assert [(e.node, e.valid_until) for e in alert.expiring] == [(AMD, soon)]
    assert decide(REF, state, near, T0 + timedelta(hours=1), SETTINGS)[0] is None
    # Re-signed with a later end: no warning; when that one nears its end, a new one.
    resigned = _result(
        _node(IX, NodeStatus.SIGNED, until=later),
        _node(AMD, NodeStatus.SIGNED, "linux/amd64", until=later),
    )
    assert decide(REF, state, resigned, T0 + timedelta(days=1), SETTINGS)[0] is None
    alert, _ = decide(REF, state, resigned, T0 + timedelta(days=30), SETTINGS)
    assert alert is not None
    assert alert.transition is Transition.EXPIRING
    assert {e.node for e in alert.expiring} == {IX, AMD}


def test_signature_that_never_expires_is_never_expiring() -> None:
    forever = _result(_node(IX, NodeStatus.SIGNED, until=None))
    assert decide(REF, None, forever, T0, SETTINGS)[0] is None


def test_expired_then_unsigned_is_a_finding() -> None:
    soon = T0 + timedelta(days=1)
    near = _result(_node(IX, NodeStatus.SIGNED, until=soon))
    alert, state = decide(REF, None, near, T0, SETTINGS)
    assert alert is not None
    assert alert.transition is Transition.EXPIRING
    expired = TargetResult(
        REF,
        IX,
        "x",
        TargetStatus.NONCOMPLIANT,
        (_node(IX, NodeStatus.INVALID),),
        (Finding("invalid-signature", "expired", RULE, IX),),
        RULE,
    )
    alert, _ = decide(REF, state, expired, T0 + timedelta(days=2), SETTINGS)
    assert alert is not None
    assert alert.transition is Transition.OPENED
    assert [p.kind for p in alert.opened] == ["invalid-signature"]


def test_forget_resolves_open_problems_of_a_deleted_target() -> None:
    _, state = decide(REF, None, SIGNED_INDEX_ONLY, T0, SETTINGS)
    alert = forget(REF, state, T0 + timedelta(hours=1))
    assert alert is not None
    assert alert.transition is Transition.RESOLVED
    assert len(alert.resolved) == 2
    assert forget(REF, AlertState(), T0) is None


def test_waived_findings_open_no_alert_until_the_waiver_expires() -> None:
    from auditor.waivers import Waiver, apply_waivers

    waiver = Waiver(REF, "arm64 signed by another team", "sec@example.com", T0 + timedelta(days=1))
    waived = apply_waivers(SIGNED_INDEX_ONLY, [waiver], T0)
    assert waived.status is TargetStatus.COMPLIANT
    alert, state = decide(REF, None, waived, T0, SETTINGS)
    assert alert is None
    later = T0 + timedelta(days=2)
    lapsed = apply_waivers(SIGNED_INDEX_ONLY, [waiver], later)
    opened, _ = decide(REF, state, lapsed, later, SETTINGS)
    assert opened is not None
    assert opened.transition is Transition.OPENED
    assert len(opened.opened) == 2
