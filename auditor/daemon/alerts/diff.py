"""What to tell people about one target this run: the pure alert diff.

Input: the state last alerted for a target (from the state store), the target's result now,
the time and the alert settings. Output: at most one :class:`Alert` and the state to store.
No I/O, so every transition is a unit test and a restart (state read back from the store)
cannot repeat a message.

Decisions, kept here so the sinks only deliver:

* A *problem* is a finding other than ``unchecked``, keyed by (kind, node digest, platform):
  its wording may change between runs (a new reason) without counting as a new problem.
* One message per target per run. ``opened`` when a problem appears (drift is a problem
  appearing: a signature deleted, a certificate expired or revoked, a trust store change, a
  new unsigned tag or platform); ``updated`` when some problems went away but others remain;
  ``resolved`` when the last one goes away; ``reminder`` every ``remind_every`` while problems
  stay open and nothing else changed; ``expiring`` when the signature that makes a required
  node signed stops counting within ``expiry_warning`` (once per node and end time).
* What could not be checked changes nothing: a target that failed as a whole keeps every
  problem it had; a node that could not be checked keeps its problems. Errors only raise an
  ``audit-error`` alert once they have lasted ``error_after``, and ``audit-recovered`` once
  after that when the target can be audited again.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from enum import StrEnum
from types import MappingProxyType
from typing import Any

from auditor.formats.json import finding_dict
from auditor.model import (
    Finding,
    NodeStatus,
    NodeVerdict,
    SignatureStatus,
    TargetResult,
    TargetStatus,
)

UNCHECKED = "unchecked"


class Transition(StrEnum):
    """What a message says happened; webhook receivers switch on it."""

    OPENED = "opened"
    UPDATED = "updated"
    RESOLVED = "resolved"
    REMINDER = "reminder"
    EXPIRING = "expiring"
    AUDIT_ERROR = "audit-error"
    AUDIT_RECOVERED = "audit-recovered"


@dataclass(frozen=True)
class AlertSettings:
    expiry_warning: timedelta = timedelta(days=14)
    remind_every: timedelta | None = None
    error_after: timedelta = timedelta(hours=1)


def problem_key(finding: Finding) -> str:
    """A problem's identity across runs: its wording may change, this may not."""
    return f"{finding.kind}|{finding.node or ''}|{finding.platform or ''}"


@dataclass(frozen=True)
class Expiring:
    """A required, signed node whose last counting signature ends soon."""

    node: str
    kind: str
    platform: str | None
    valid_until: datetime

    @property
    def key(self) -> str:
        return f"{self.node}|{self.valid_until.isoformat()}"


@dataclass(frozen=True)
class NodeChange:
    """A node whose status differs from the last run's (None: not there then / now)."""

    node: str
    platform: str | None
    before: str | None
    after: str | None


def _frozen(value: Mapping[str, Any] | None = None) -> Mapping[str, Any]:
    return MappingProxyType(dict(value or {}))


@dataclass(frozen=True)
class AlertState:
    """What was last alerted for one target; stored between runs (see to_json/from_json)."""

    problems: Mapping[str, Finding] = field(default_factory=_frozen)
    # Every node's status at the last run that could read the target (for node changes).
    nodes: Mapping[str, str] = field(default_factory=_frozen)
    warned: frozenset[str] = frozenset()
    last_sent: datetime | None = None
    error_since: datetime | None = None
    error_alerted: bool = False


@dataclass(frozen=True)
class Alert:
    """One message about one target."""

    target: str
    transition: Transition
    at: datetime
    digest: str | None = None
    rule: str | None = None
    opened: tuple[Finding, ...] = ()
    still_open: tuple[Finding, ...] = ()
    resolved: tuple[Finding, ...] = ()
    expiring: tuple[Expiring, ...] = ()
    node_changes: tuple[NodeChange, ...] = ()
    error: str | None = None
    error_since: datetime | None = None


def decide(
    target: str,
    previous: AlertState | None,
    result: TargetResult,
    now: datetime,
    settings: AlertSettings,
) -> tuple[Alert | None, AlertState]:
    """The message to send for ``target`` after this run (if any) and the state to keep."""
    state = previous or AlertState()
    error = _error_text(result)
    whole_target_failed = result.status is TargetStatus.ERROR and not result.nodes
    if whole_target_failed:
        return _errors_only(target, state, result, now, settings, error)

    unchecked = _unchecked_nodes(result)
    current = {problem_key(p): p for p in _problems(result)}
    # A problem on a node that could not be checked this time is still open: we do not know.
    carried = {k: p for k, p in state.problems.items() if k not in current and p.node in unchecked}
    current.update(carried)
    opened = tuple(p for k, p in current.items() if k not in state.problems)
    resolved = tuple(p for k, p in state.problems.items() if k not in current)
    still_open = tuple(p for k, p in current.items() if k in state.problems)
    expiring = tuple(e for e in _expiring(result, now, settings) if e.key not in state.warned)

    error_since, error_alerted, error_alert = _error_clock(state, error, now, settings)
    transition = _transition(state, opened, resolved, current, expiring, now, settings)
    nodes = {v.node.digest: v.status.value for v in result.nodes}
    new_state = replace(
        state,
        nodes=_frozen(nodes),
        error_since=error_since,
        error_alerted=error_alerted,
        warned=_live_warnings(state.warned, expiring, result),
    )
    if transition is None:
        if error_alert is None:
            return None, new_state
        transition = error_alert
    elif error_alert is Transition.AUDIT_ERROR:
        # This run's message is about findings; the error alert goes out on its own next run.
        new_state = replace(new_state, error_alerted=False)
    alert = Alert(
        target=target,
        transition=transition,
        at=now,
        digest=result.digest,
        rule=result.rule,
        opened=opened,
        still_open=still_open,
        resolved=resolved,
        expiring=expiring,
        node_changes=_node_changes(state.nodes, result.nodes),
        error=error if transition is Transition.AUDIT_ERROR else None,
        error_since=error_since if transition is Transition.AUDIT_ERROR else None,
    )
    return alert, replace(new_state, problems=_frozen(current), last_sent=now)


def forget(target: str, previous: AlertState | None, now: datetime) -> Alert | None:
    """A target that no longer exists (tag deleted): its open problems are resolved."""
    if previous is None or not previous.problems:
        return None
    return Alert(
        target=target,
        transition=Transition.RESOLVED,
        at=now,
        resolved=tuple(previous.problems.values()),
        error="the target no longer exists",
    )


# --- the parts --------------------------------------------------------------------------------


def _problems(result: TargetResult) -> Iterable[Finding]:
    """What alerts are about: policy findings nobody accepted (a waived finding is known and
    owned; when its waiver expires it is a problem again and opens)."""
    return (f for f in result.findings if f.kind != UNCHECKED and f.waiver is None)


def _unchecked_nodes(result: TargetResult) -> set[str | None]:
    nodes: set[str | None] = {f.node for f in result.findings if f.kind == UNCHECKED}
    nodes.update(v.node.digest for v in result.nodes if v.status is NodeStatus.ERROR)
    return nodes


def _error_text(result: TargetResult) -> str | None:
    if result.error:
        return result.error
    messages = [f.message for f in result.findings if f.kind == UNCHECKED]
    return "; ".join(messages) if messages else None


def _error_clock(
    state: AlertState, error: str | None, now: datetime, settings: AlertSettings
) -> tuple[datetime | None, bool, Transition | None]:
    """(error_since, error_alerted, the error transition due now, if any)."""
    if error is None:
        recovered = Transition.AUDIT_RECOVERED if state.error_alerted else None
        return None, False, recovered
    since = state.error_since or now
    if not state.error_alerted and now - since >= settings.error_after:
        return since, True, Transition.AUDIT_ERROR
    return since, state.error_alerted, None


def _errors_only(
    target: str,
    state: AlertState,
    result: TargetResult,
    now: datetime,
    settings: AlertSettings,
    error: str | None,
) -> tuple[Alert | None, AlertState]:
    since, alerted, due = _error_clock(state, error, now, settings)
    new_state = replace(state, error_since=since, error_alerted=alerted)
    if due is None:
        return None, new_state
    alert = Alert(
        target=target,
        transition=due,
        at=now,
        rule=result.rule,
        still_open=tuple(state.problems.values()),
        error=error,
        error_since=since,
    )
    return alert, replace(new_state, last_sent=now)


def _transition(
    state: AlertState,
    opened: tuple[Finding, ...],
    resolved: tuple[Finding, ...],
    current: Mapping[str, Finding],
    expiring: tuple[Expiring, ...],
    now: datetime,
    settings: AlertSettings,
) -> Transition | None:
    if opened:
        return Transition.OPENED
    if resolved:
        return Transition.UPDATED if current else Transition.RESOLVED
    if expiring:
        return Transition.EXPIRING
    due = settings.remind_every
    if current and due is not None and (state.last_sent is None or now - state.last_sent >= due):
        return Transition.REMINDER
    return None


def node_valid_until(verdict: NodeVerdict) -> datetime | None:
    """When a signed node stops being signed by itself: the last of its valid signatures' ends.

    None when it does not end (a valid signature without expiry) or the node is not signed.
    """
    if verdict.status is not NodeStatus.SIGNED:
        return None
    ends = [s.valid_until for s in verdict.signatures if s.status is SignatureStatus.VALID]
    if not ends or any(end is None for end in ends):
        return None
    return max(end for end in ends if end is not None)


def _expiring(result: TargetResult, now: datetime, settings: AlertSettings) -> Iterable[Expiring]:
    horizon = now + settings.expiry_warning
    for verdict in result.nodes:
        if not verdict.required:
            continue
        end = node_valid_until(verdict)
        if end is not None and end <= horizon:
            node = verdict.node
            platform = str(node.platform) if node.platform else None
            yield Expiring(node.digest, node.kind.value, platform, end)


def _live_warnings(
    warned: frozenset[str], expiring: tuple[Expiring, ...], result: TargetResult
) -> frozenset[str]:
    """Warnings already sent, less those of nodes gone from the target (bounded state)."""
    present = {v.node.digest for v in result.nodes}
    kept = {w for w in warned if w.split("|", 1)[0] in present}
    return frozenset(kept | {e.key for e in expiring})


def _node_changes(
    before: Mapping[str, str], verdicts: tuple[NodeVerdict, ...]
) -> tuple[NodeChange, ...]:
    after = {v.node.digest: v for v in verdicts}
    changes = [
        NodeChange(
            digest,
            str(v.node.platform) if v.node.platform else None,
            before.get(digest),
            v.status.value,
        )
        for digest, v in after.items()
        if before.get(digest) != v.status.value
    ]
    changes.extend(
        NodeChange(digest, None, status, None)
        for digest, status in before.items()
        if digest not in after
    )
    return tuple(changes)


# --- storage form -----------------------------------------------------------------------------


def state_to_json(state: AlertState) -> dict[str, Any]:
    """A JSON-ready dict for the state store."""

    def when(value: datetime | None) -> str | None:
        return value.isoformat() if value else None

    return {
        "version": 1,
        "problems": [finding_dict(p) for p in state.problems.values()],
        "nodes": dict(state.nodes),
        "warned": sorted(state.warned),
        "last_sent": when(state.last_sent),
        "error_since": when(state.error_since),
        "error_alerted": state.error_alerted,
    }


def state_from_json(data: Mapping[str, Any]) -> AlertState:
    """The inverse of :func:`state_to_json` (our own stored data, validated by shape)."""

    def when(value: object) -> datetime | None:
        return datetime.fromisoformat(value) if isinstance(value, str) else None

    fields = ("kind", "message", "rule", "node", "platform")
    problems = [Finding(**{k: p.get(k) for k in fields}) for p in data.get("problems", [])]
    return AlertState(
        problems=_frozen({problem_key(p): p for p in problems}),
        nodes=_frozen({str(k): str(v) for k, v in dict(data.get("nodes", {})).items()}),
        warned=frozenset(str(w) for w in data.get("warned", [])),
        last_sent=when(data.get("last_sent")),
        error_since=when(data.get("error_since")),
        error_alerted=bool(data.get("error_alerted", False)),
    )
