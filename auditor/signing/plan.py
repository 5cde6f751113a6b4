"""Which nodes of an image to sign, and why each of the others is left alone. Pure: no I/O.

Two steps, so the I/O between them stays outside: :func:`select` decides from the graph and
the options (and, for ``--missing``, from the audit's verdicts) which nodes are wanted;
the command then looks for signatures this certificate already made on the wanted nodes, and
:func:`settle` turns "already signed" into a skip unless ``--force``. Every node of the graph
gets exactly one decision, so ``--dry-run`` can show the whole image, not just what changes.

Choices where the issue is silent:

* ``--platform``, ``--no-index`` and ``--include-attestations`` shape a recursive signing, so
  they need ``--recursive``; ``--missing`` takes its selection from the coverage policy and
  combines with none of them (it signs exactly what ``audit now`` reports).
* An index entry without a platform is selected under every ``--platform``, because the audit
  requires it under every platform selector (a runtime may pull it for any platform).
* A node the crawl could not read is a failure when it was wanted: nothing is signed over a
  descriptor we could not check, and the run must not look clean.
* Under ``--missing``, a required node the audit could not check (``error``, ``unverified``)
  fails too: signing it would hide the problem the audit found.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from enum import StrEnum

from auditor.coverage import platform_matches
from auditor.errors import UsageError
from auditor.model import GraphNode, ImageGraph, NodeKind, NodeStatus, NodeVerdict, Platform


class Action(StrEnum):
    """What happens to a node: the words of the output's action column."""

    SIGN = "sign"
    SKIP = "skip"
    FAIL = "fail"


@dataclass(frozen=True)
class Selection:
    """What the command line asked for."""

    recursive: bool = False
    platforms: tuple[Platform, ...] | None = None
    no_index: bool = False
    include_attestations: bool = False
    missing: bool = False
    force: bool = False

    def check(self) -> None:
        """Refuse combinations that have no single meaning."""
        shaping = [
            name
            for name, on in (
                ("--platform", self.platforms is not None),
                ("--no-index", self.no_index),
                ("--include-attestations", self.include_attestations),
            )
            if on
        ]
        if self.missing and (shaping or self.recursive):
            extra = ", ".join([*(["--recursive"] if self.recursive else []), *shaping])
            raise UsageError(
                f"--missing signs exactly what the coverage policy finds missing; it does not "
                f"combine with {extra}"
            )
        if shaping and not self.recursive and not self.missing:
            raise UsageError(f"{', '.join(shaping)} shape a recursive signing: add --recursive")


@dataclass(frozen=True)
class Decision:
    """One node and what to do with it."""

    node: GraphNode
    action: Action
    reason: str


def _describe_platform(node: GraphNode) -> str:
    return str(node.platform) if node.platform else "platform-less"


def _recursive(node: GraphNode, root: str, selection: Selection) -> Decision:
    if node.kind is NodeKind.INDEX:
        if selection.no_index:
            return Decision(node, Action.SKIP, "index not selected (--no-index)")
        what = "the reference's index" if node.digest == root else "nested index"
        return Decision(node, Action.SIGN, f"{what} (--recursive)")
    if node.kind is NodeKind.ATTESTATION:
        if selection.include_attestations:
            return Decision(node, Action.SIGN, "attestation manifest (--include-attestations)")
        return Decision(
            node, Action.SKIP, "attestation manifest not selected (add --include-attestations)"
        )
    if node.kind is NodeKind.MANIFEST:
        return Decision(node, Action.SIGN, "the reference's manifest")
    selectors = selection.platforms
    if selectors is None:
        return Decision(node, Action.SIGN, f"{_describe_platform(node)} platform (--recursive)")
    if node.platform is None:
        return Decision(
            node,
            Action.SIGN,
            "index entry without a platform: selected under every --platform, as the audit "
            "requires it",
        )
    if any(platform_matches(s, node.platform) for s in selectors):
        return Decision(node, Action.SIGN, f"{node.platform} selected by --platform")
    return Decision(node, Action.SKIP, f"{node.platform} not selected by --platform")


def _missing(node: GraphNode, verdict: NodeVerdict | None) -> Decision:
    if verdict is None:
        return Decision(node, Action.FAIL, "no audit verdict for this node")
    if not verdict.required:
        return Decision(node, Action.SKIP, f"{verdict.status.value}, not required by the policy")
    match verdict.status:
        case NodeStatus.UNSIGNED:
            return Decision(node, Action.SIGN, "required and unsigned")
        case NodeStatus.INVALID:
            return Decision(node, Action.SIGN, f"required, no valid signature: {verdict.reason}")
        case NodeStatus.SIGNED | NodeStatus.SKIPPED:
            return Decision(node, Action.SKIP, f"required and {verdict.status.value}")
        case NodeStatus.ERROR | NodeStatus.UNVERIFIED:
            return Decision(
                node,
                Action.FAIL,
                f"required, but the audit could not check it ({verdict.status.value}: "
                f"{verdict.reason}); not signed",
            )


def select(
    graph: ImageGraph,
    selection: Selection,
    verdicts: Mapping[str, NodeVerdict] | None = None,
) -> tuple[Decision, ...]:
    """A decision for every node of ``graph``, in graph order (parents first).

    ``verdicts`` (node digest -> the audit's verdict) is needed exactly when
    ``selection.missing`` is set.
    """
    selection.check()
    if selection.missing and verdicts is None:
        raise ValueError("--missing needs the audit's verdicts")
    decisions: list[Decision] = []
    for node in graph.nodes:
        if selection.missing:
            assert verdicts is not None
            decision = _missing(node, verdicts.get(node.digest))
        elif node.digest == graph.root:
            what = "index" if node.kind is NodeKind.INDEX else "manifest"
            decision = (
                _recursive(node, graph.root, selection)
                if selection.recursive
                else Decision(node, Action.SIGN, f"the reference's {what}")
            )
        elif selection.recursive:
            decision = _recursive(node, graph.root, selection)
        else:
            decision = Decision(node, Action.SKIP, "below the reference (add --recursive)")
        if decision.action is Action.SIGN and node.error:
            decision = Decision(node, Action.FAIL, f"could not be read: {node.error}")
        decisions.append(decision)
    _check_selectors(graph, selection)
    return tuple(decisions)


def _check_selectors(graph: ImageGraph, selection: Selection) -> None:
    """A ``--platform`` that matches nothing is a typo or a missing platform: say so."""
    if not selection.platforms:
        return
    present = [n.platform for n in graph.nodes if n.kind is NodeKind.PLATFORM and n.platform]
    unknown = [
        str(s) for s in selection.platforms if not any(platform_matches(s, p) for p in present)
    ]
    if unknown:
        have = ", ".join(sorted({str(p) for p in present})) or "none"
        raise UsageError(
            f"--platform {', '.join(unknown)}: not in {graph.reference} (its platforms: {have})"
        )


def wanted(decisions: Iterable[Decision]) -> list[GraphNode]:
    """The nodes :func:`select` wants signed."""
    return [d.node for d in decisions if d.action is Action.SIGN]


def settle(
    decisions: Sequence[Decision], existing: Mapping[str, str], *, force: bool
) -> tuple[Decision, ...]:
    """Skip wanted nodes that already carry a valid signature by this certificate.

    ``existing`` maps node digest -> a sentence naming that signature. With ``force`` they are
    signed again, and the decision says so.
    """
    out: list[Decision] = []
    for decision in decisions:
        found = existing.get(decision.node.digest)
        if decision.action is Action.SIGN and found is not None:
            if force:
                decision = replace(decision, reason=f"{decision.reason}; again (--force): {found}")
            else:
                decision = Decision(decision.node, Action.SKIP, f"{found} (use --force to re-sign)")
        out.append(decision)
    return tuple(out)
