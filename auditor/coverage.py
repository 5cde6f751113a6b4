"""Coverage policy: which nodes of an image must carry a verified signature, and the verdicts.

The question answered here is not "is this digest signed?" but "is this multi-platform image
covered?". Pure: graph and signature results in, verdicts out; no I/O.

Decisions (kept in one place so reports, metrics and alerts agree):

* A node's status says what is true of its signatures, independent of the policy: ``signed``
  (a signature passed the trust policy), ``unsigned`` (no signature artifact),
  ``invalid`` (signatures exist, none passed), ``error`` (the node or every signature could not
  be checked), ``unverified`` (signature artifacts exist but no trust policy was configured, so
  nothing verified them; never ``signed``), ``skipped`` (the trust policy's ``skip`` level
  opted this scope out of verification). Whether the policy needs a node is the separate
  ``required`` flag: an unselected platform or an ignored attestation keeps its real status
  with ``required=False`` and produces no finding.
* Each required node counts as yes (signed, skipped), no (unsigned, invalid) or unknown
  (error, unverified); the rule combines them with three-valued logic (``both`` = and,
  ``either`` = or). The target is ``compliant`` on yes, ``noncompliant`` on no and ``error``
  on unknown: so a required node that could not be checked (or was never verified, because no
  trust policy is configured) yields an ``unchecked`` finding and exit code 3, unless something
  is clearly noncompliant (an unsigned or invalid required node, a missing platform).
* ``either`` works per index level: an index is covered when it is signed, or when every
  selected child is (platforms, attestations under ``attestations: require``, and nested
  indexes, recursively). An index with no such children can only be covered by its own
  signature: an empty "all of" never passes. When an index is signed its subtree is not
  required; when only its children are, the index is not required; when neither, both the
  index and its children are required and each failing one is a finding.
* A trust policy that skips a scope (notation's ``skip`` level, an explicit opt-out) makes
  every loadable node ``skipped`` and not required, so the target is ``compliant``, as
  ``notation verify`` succeeds under ``skip``; nodes that failed to load stay ``error``.
* An index that failed to load is always required (its children are unknown), and
  missing-platform findings are held back while any index is unreadable.
* Platform selectors apply to indexes; a single-manifest target needs that manifest signed
  under every rule. A selector without a variant selects every variant of its os/arch. An index
  entry without a platform is always selected: runtimes judge it by its config, so it could be
  any platform.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from enum import Enum, StrEnum
from types import MappingProxyType

from auditor.errors import ErrorCategory
from auditor.model import (
    Finding,
    GraphNode,
    ImageGraph,
    NodeKind,
    NodeStatus,
    NodeVerdict,
    Platform,
    RuleData,
    SignatureResult,
    SignatureStatus,
    TargetResult,
    TargetStatus,
)


class Require(StrEnum):
    """Which levels of a multi-platform image must be signed."""

    INDEX = "index"
    PLATFORMS = "platforms"
    BOTH = "both"
    EITHER = "either"


class AttestationPolicy(StrEnum):
    IGNORE = "ignore"
    REQUIRE = "require"


class FindingKind(StrEnum):
    """Stable finding kinds: SARIF rule ids and alert keys."""

    UNSIGNED_INDEX = "unsigned-index"
    UNSIGNED_PLATFORM = "unsigned-platform"
    UNSIGNED_MANIFEST = "unsigned-manifest"
    UNSIGNED_ATTESTATION = "unsigned-attestation"
    INVALID_SIGNATURE = "invalid-signature"
    MISSING_PLATFORM = "missing-platform"
    UNCHECKED = "unchecked"


@dataclass(frozen=True)
class CoverageRule:
    """One coverage rule; ``scope`` is an fnmatch glob over ``host/repository``.

    ``platforms=None`` selects every platform present. ``name`` is an optional description
    shown next to the rule in messages.
    """

    scope: str = "*"
    require: Require = Require.BOTH
    platforms: tuple[Platform, ...] | None = None
    attestations: AttestationPolicy = AttestationPolicy.IGNORE
    name: str | None = None
    formats: tuple[str, ...] | None = None

    @property
    def label(self) -> str:
        """How findings name the rule, e.g. ``policy both for ghcr.io/acme/*``."""
        text = f"policy {self.require.value} for {self.scope}"
        if self.platforms is not None:
            text += f" on {', '.join(str(p) for p in self.platforms)}"
        if self.attestations is AttestationPolicy.REQUIRE:
            text += " with attestations"
        if self.formats is not None:
            text += f" by {' or '.join(self.formats)}"
        return f"{text} ({self.name})" if self.name else text

    @property
    def data(self) -> RuleData:
        """The rule as data, for reports (``label`` is the same rule as text)."""
        return RuleData(
            scope=self.scope,
            require=self.require.value,
            platforms=None if self.platforms is None else tuple(str(p) for p in self.platforms),
            attestations=self.attestations.value,
            formats=self.formats,
            name=self.name,
        )

    def matches(self, scope: str) -> bool:
        """Case-sensitive glob match; ``*`` also spans ``/`` (``acme/*`` covers ``acme/a/b``)."""
        return fnmatch.fnmatchcase(scope, self.scope)

    def with_require(self, require: Require) -> CoverageRule:
        return replace(self, require=require)


DEFAULT_RULE = CoverageRule(name="default")
"""Safe default: signing one level is not enough, so both levels, every platform."""


def select_rule(
    rules: Sequence[CoverageRule],
    scope: str | Sequence[str],
    *,
    require: Require | None = None,
    platforms: tuple[Platform, ...] | None = None,
) -> CoverageRule:
    """The first rule whose scope matches (any of ``scope`` when several names are given: an
    OCI layout matches by its policy scope ``local/NAME`` and by ``oci-layout:PATH``), else
    DEFAULT_RULE; ``require`` (``--require``) and ``platforms`` (``--platform``) win over the
    rule's own for this run."""
    names = (scope,) if isinstance(scope, str) else tuple(scope)
    rule = next((r for r in rules if any(r.matches(n) for n in names)), DEFAULT_RULE)
    if require is not None:
        rule = rule.with_require(require)
    return replace(rule, platforms=platforms) if platforms is not None else rule


def platform_matches(selector: Platform, platform: Platform | None) -> bool:
    """os/arch must agree after normalisation; a selector variant must agree too."""
    if platform is None:
        return False
    want, have = selector.normalized(), platform.normalized()
    if (want.os, want.architecture) != (have.os, have.architecture):
        return False
    return selector.variant is None or want.variant == have.variant


# --- parsing ------------------------------------------------------------------------------

# --- node status --------------------------------------------------------------------------


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def _why(result: SignatureResult) -> str:
    if result.failed_validation and not result.reason.startswith(result.failed_validation):
        return f"{result.failed_validation}: {result.reason}"
    return result.reason


def _reasons(results: Iterable[SignatureResult]) -> str:
    return "; ".join(dict.fromkeys(_why(r) for r in results))


def node_status(
    node: GraphNode, results: Sequence[SignatureResult], *, verified: bool = True
) -> tuple[NodeStatus, str]:
    """Decide a node's status from its signature results, with a reason a person can act on.

    ``verified=False`` means no trust policy is configured: signature artifacts are then
    ``unverified``, never ``signed``. A signature without a result counts as not checked.
    """
    if node.error:
        return NodeStatus.ERROR, node.error
    count = max(len(node.signatures), len(results))
    if count == 0:
        return NodeStatus.UNSIGNED, "no signature"
    sigs = _plural(count, "signature")
    if not verified:
        return NodeStatus.UNVERIFIED, f"{sigs} present, not verified: no trust policy configured"
    valid = [r for r in results if r.status is SignatureStatus.VALID]
    if valid:
        signers = ", ".join(dict.fromkeys(r.signer for r in valid if r.signer))
        reason = f"{len(valid)} of {sigs} valid"
        reason += f"; signer {signers}" if signers else ""
        warnings = [w for r in valid for w in r.warnings]
        return NodeStatus.SIGNED, reason + (f"; warning: {warnings[0]}" if warnings else "")
    checked = [r for r in results if r.status is not SignatureStatus.SKIPPED]
    missing = max(0, len(node.signatures) - len(results))
    if not checked and not missing:
        return NodeStatus.SKIPPED, f"{sigs}, verification skipped by the trust policy"
    invalid = [r for r in checked if r.status is SignatureStatus.INVALID]
    if invalid:
        return NodeStatus.INVALID, f"{sigs}, none valid: {_reasons(invalid)}"
    if checked and all(r.status is SignatureStatus.UNVERIFIED for r in checked) and not missing:
        return NodeStatus.UNVERIFIED, f"{sigs} present, not verified: {_reasons(checked)}"
    why = _reasons(checked) if checked else ""
    if missing:
        why = f"{why}; " if why else ""
        why += f"{_plural(missing, 'signature')} without a verification result"
    return NodeStatus.ERROR, f"{sigs}, none could be checked: {why}"


def format_family(fmt: str) -> str:
    """``notation/jws`` -> ``notation``: what a rule's ``formats`` names."""
    return fmt.split("/", 1)[0]


def counted_status(
    node: GraphNode,
    results: Sequence[SignatureResult],
    counted: frozenset[str] | None,
    *,
    verified: bool = True,
) -> tuple[NodeStatus, str]:
    """:func:`node_status` over the signatures of the ``counted`` formats only (None: all).

    Signatures of other formats stay in the report but decide nothing; the reason says how
    many were set aside, so an ``unsigned`` node that carries one is never a mystery.
    """
    if counted is None:
        return node_status(node, results, verified=verified)
    ignored = [r for r in results if format_family(r.format) not in counted]
    if not ignored:
        return node_status(node, results, verified=verified)
    dropped = {r.digest for r in ignored}
    kept_node = replace(
        node, signatures=tuple(s for s in node.signatures if s.digest not in dropped)
    )
    kept = [r for r in results if r.digest not in dropped]
    status, reason = node_status(kept_node, kept, verified=verified)
    families = "/".join(sorted({format_family(r.format) for r in ignored}))
    accepted = ", ".join(sorted(counted)) or "none"
    note = f"{_plural(len(ignored), families + ' signature')} not counted (formats: {accepted})"
    return status, f"{reason}; {note}"


# --- target evaluation --------------------------------------------------------------------


class _Tri(Enum):
    """Three-valued truth: unknown when something could not be checked."""

    YES = "yes"
    NO = "no"
    UNKNOWN = "unknown"


def _all(values: Iterable[_Tri]) -> _Tri:
    seen = set(values)
    if _Tri.NO in seen:
        return _Tri.NO
    return _Tri.UNKNOWN if _Tri.UNKNOWN in seen else _Tri.YES


def _any(values: Iterable[_Tri]) -> _Tri:
    seen = set(values)
    if _Tri.YES in seen:
        return _Tri.YES
    return _Tri.UNKNOWN if _Tri.UNKNOWN in seen else _Tri.NO


_TRUTH = {
    NodeStatus.SIGNED: _Tri.YES,
    NodeStatus.SKIPPED: _Tri.YES,
    NodeStatus.UNSIGNED: _Tri.NO,
    NodeStatus.INVALID: _Tri.NO,
    NodeStatus.ERROR: _Tri.UNKNOWN,
    NodeStatus.UNVERIFIED: _Tri.UNKNOWN,
}

_TARGET = {
    _Tri.YES: TargetStatus.COMPLIANT,
    _Tri.NO: TargetStatus.NONCOMPLIANT,
    _Tri.UNKNOWN: TargetStatus.ERROR,
}

_UNSIGNED_KIND = {
    NodeKind.INDEX: FindingKind.UNSIGNED_INDEX,
    NodeKind.PLATFORM: FindingKind.UNSIGNED_PLATFORM,
    NodeKind.ATTESTATION: FindingKind.UNSIGNED_ATTESTATION,
    NodeKind.MANIFEST: FindingKind.UNSIGNED_MANIFEST,
}


def describe_node(node: GraphNode, *, root: bool = True) -> str:
    """``linux/arm64/v8 manifest sha256:...``, ``nested index sha256:...`` and the like."""
    match node.kind:
        case NodeKind.INDEX:
            return f"{'index' if root else 'nested index'} {node.digest}"
        case NodeKind.PLATFORM:
            return f"{node.platform or 'platform'} manifest {node.digest}"
        case NodeKind.ATTESTATION:
            text = f"attestation manifest {node.digest}"
            return f"{text} for {node.attestation_for}" if node.attestation_for else text
        case NodeKind.MANIFEST:
            return f"manifest {node.digest}"


@dataclass
class _Evaluation:
    """Working state of one target's evaluation."""

    graph: ImageGraph
    rule: CoverageRule
    status: Mapping[str, tuple[NodeStatus, str]]
    required: set[str] = field(default_factory=set)
    covered_memo: dict[str, _Tri] = field(default_factory=dict)
    marked: set[str] = field(default_factory=set)

    def truth(self, node: GraphNode) -> _Tri:
        return _TRUTH[self.status[node.digest][0]]

    def selected(self, node: GraphNode) -> bool:
        """Whether the rule asks for this node as a platform or as an attestation.

        Every index entry counts on its own: a node is selected when one of its real-platform
        entries is (the first entry of its index with that platform, which a runtime would
        pick), or when it is listed as an attestation and attestations are required.
        """
        if node.kind is NodeKind.INDEX or node.digest == self.graph.root:
            return False
        wants_attestations = self.rule.attestations is AttestationPolicy.REQUIRE
        if node.kind is NodeKind.ATTESTATION:
            return wants_attestations
        if wants_attestations and any(e.attestation for e in node.entries):
            return True
        if not node.entries:  # a node built without its entries (tests, replays)
            return self.platform_selected(node.platform)
        return any(
            self.platform_selected(e.platform)
            for e in node.entries
            if not e.attestation and not e.shadowed
        )

    def platform_selected(self, platform: Platform | None) -> bool:
        if self.rule.platforms is None or platform is None:
            # No platform in the index: runtimes decide from the image config, so it could
            # be any selected platform; a selector cannot rule it out.
            return True
        return any(platform_matches(s, platform) for s in self.rule.platforms)

    def kids(self, index: GraphNode) -> list[GraphNode]:
        return [
            c
            for c in self.graph.children(index.digest)
            if c.kind is NodeKind.INDEX or self.selected(c)
        ]

    def covered(self, index: GraphNode) -> _Tri:
        """``either`` at one level: the index, or every selected child (recursively).

        Memoized: indexes may share children (a DAG), which must not cost one walk per path.
        """
        known = self.covered_memo.get(index.digest)
        if known is None:
            known = _any((self.truth(index), self.children_cover(index)))
            self.covered_memo[index.digest] = known
        return known

    def children_cover(self, index: GraphNode) -> _Tri:
        kids = self.kids(index)
        if not kids:
            return _Tri.NO
        return _all(self.covered(k) if k.kind is NodeKind.INDEX else self.truth(k) for k in kids)

    def mark_required(self, root: GraphNode) -> _Tri:
        """Fill ``required`` for the rule and return whether the rule is met."""
        if root.kind is not NodeKind.INDEX:
            self.required.add(root.digest)
            self.required.update(
                n.digest
                for n in self.graph.nodes
                if n.kind is NodeKind.ATTESTATION and self.selected(n)
            )
        elif self.rule.require is Require.EITHER:
            self.mark_either(root)
            return self.covered(root)
        else:
            self.mark_levels()
        return _all(self.truth(n) for n in self.graph.nodes if n.digest in self.required)

    def mark_either(self, index: GraphNode) -> None:
        if index.digest in self.marked:
            return
        self.marked.add(index.digest)
        if self.truth(index) is _Tri.YES:
            self.required.add(index.digest)
            return
        if self.children_cover(index) is not _Tri.YES:
            self.required.add(index.digest)
        for kid in self.kids(index):
            if kid.kind is NodeKind.INDEX:
                self.mark_either(kid)
            else:
                self.required.add(kid.digest)

    def mark_levels(self) -> None:
        """index / platforms / both: a fixed set of nodes, no alternatives."""
        want_index = self.rule.require in (Require.INDEX, Require.BOTH)
        want_platforms = self.rule.require in (Require.PLATFORMS, Require.BOTH)
        for node in self.graph.nodes:
            if node.kind is NodeKind.INDEX:
                if want_index or node.error:
                    self.required.add(node.digest)
            elif (node.kind is NodeKind.ATTESTATION or want_platforms) and self.selected(node):
                self.required.add(node.digest)


def _finding(ev: _Evaluation, node: GraphNode) -> Finding | None:
    status, reason = ev.status[node.digest]
    root = node.digest == ev.graph.root
    what = describe_node(node, root=root)
    if status is NodeStatus.UNSIGNED:
        kind, text = _UNSIGNED_KIND[node.kind], f"{what} has no signature"
    elif status is NodeStatus.INVALID:
        kind, text = FindingKind.INVALID_SIGNATURE, f"{what} has no valid signature: {reason}"
    elif status in (NodeStatus.ERROR, NodeStatus.UNVERIFIED):
        kind, text = FindingKind.UNCHECKED, f"{what} could not be checked: {reason}"
    else:
        return None
    if root and kind is FindingKind.UNSIGNED_PLATFORM:
        kind = FindingKind.UNSIGNED_MANIFEST  # a tag pointing straight at an image manifest
    label = ev.rule.label
    if ev.rule.require is Require.EITHER and ev.graph.node(ev.graph.root).kind is NodeKind.INDEX:
        label += " (sign the index, or every selected platform)"
    platform = str(node.platform) if node.platform and node.kind is NodeKind.PLATFORM else None
    return Finding(kind.value, f"{text}; {label}", ev.rule.label, node.digest, platform)


def _missing_platforms(ev: _Evaluation, root: GraphNode) -> tuple[_Tri, list[Finding]]:
    """Selected platforms absent from the index, and an index with no platform at all."""
    if root.kind is not NodeKind.INDEX:
        return _Tri.YES, []
    indexes = [n for n in ev.graph.nodes if n.kind is NodeKind.INDEX]
    if any(n.error for n in indexes):
        return _Tri.UNKNOWN, []  # the unreadable index is already an 'unchecked' finding
    present = [n for n in ev.graph.nodes if n.kind is NodeKind.PLATFORM]
    platforms = [p for n in present for p in n.platforms]
    label = ev.rule.label
    findings: list[Finding] = []
    if ev.rule.platforms is None:
        if not present and ev.rule.require is not Require.INDEX:
            text = f"index {root.digest} lists no platform manifests; {label}"
            findings.append(Finding(FindingKind.MISSING_PLATFORM.value, text, label, root.digest))
    else:
        for selector in dict.fromkeys(ev.rule.platforms):
            if not any(platform_matches(selector, p) for p in platforms):
                text = f"required platform {selector} not in index {root.digest}; {label}"
                findings.append(
                    Finding(FindingKind.MISSING_PLATFORM.value, text, label, None, str(selector))
                )
    return (_Tri.NO if findings else _Tri.YES), findings


def evaluate_target(
    reference: str,
    graph: ImageGraph,
    results: Mapping[str, Sequence[SignatureResult]],
    rule: CoverageRule,
    *,
    verified: bool = True,
    trust_skipped: bool = False,
    counted_formats: frozenset[str] | None = None,
) -> TargetResult:
    """Apply ``rule`` to one crawled image and its signature results (keyed by node digest).

    ``verified=False``: no trust policy is configured, so signatures are ``unverified``.
    ``trust_skipped=True``: the trust policy skips this scope (see the module docstring).
    ``counted_formats``: the signature formats that count when the rule names none (the
    formats with trust configured); None counts every format.
    """
    counted = frozenset(rule.formats) if rule.formats is not None else counted_formats
    try:
        root = graph.node(graph.root)
    except KeyError:
        return error_target(
            reference,
            f"graph has no root node {graph.root}",
            rule=rule,
            category=ErrorCategory.INVALID,
        )
    if trust_skipped:
        status = {
            n.digest: (NodeStatus.ERROR, n.error)
            if n.error
            else (NodeStatus.SKIPPED, "trust policy skips verification for this scope")
            for n in graph.nodes
        }
    else:
        status = {
            n.digest: counted_status(n, results.get(n.digest, ()), counted, verified=verified)
            for n in graph.nodes
        }
    ev = _Evaluation(graph, rule, status)
    if trust_skipped:
        ev.required = {d for d, (s, _) in status.items() if s is NodeStatus.ERROR}
        truth = _all(_TRUTH[status[d][0]] for d in ev.required)
        missing_truth, missing = _Tri.YES, list[Finding]()
    else:
        truth = ev.mark_required(root)
        missing_truth, missing = _missing_platforms(ev, root)
    findings = [f for n in graph.nodes if n.digest in ev.required if (f := _finding(ev, n))]
    verdicts = tuple(
        NodeVerdict(
            node=n,
            status=status[n.digest][0],
            reason=status[n.digest][1],
            signatures=tuple(results.get(n.digest, ())),
            required=n.digest in ev.required,
            covered_by=_covering_parent(n, status),
        )
        for n in graph.nodes
    )
    return TargetResult(
        reference=reference,
        digest=root.digest,
        media_type=root.media_type,
        status=_TARGET[_all((truth, missing_truth))],
        nodes=verdicts,
        findings=(*findings, *missing),
        rule=rule.label,
        error=root.error,
        policy=rule.data,
        # The root's own failure after it was read (its referrers, a guard): its kind.
        error_category=(root.error_category or ErrorCategory.OTHER) if root.error else None,
    )


def _covering_parent(node: GraphNode, status: Mapping[str, tuple[NodeStatus, str]]) -> str | None:
    """Informational: the signed index that pins this node (it does not make the node signed)."""
    if node.parent is not None and status.get(node.parent, (None, ""))[0] is NodeStatus.SIGNED:
        return node.parent
    return None


def error_target(
    reference: str,
    message: str,
    *,
    rule: CoverageRule | None = None,
    category: ErrorCategory = ErrorCategory.OTHER,
) -> TargetResult:
    """A target that could not be audited at all (registry failure, bad reference, ...);
    ``category`` is the failure's kind (an AuditorError's ``category``)."""
    label = rule.label if rule else None
    finding = Finding(
        FindingKind.UNCHECKED.value, f"{reference} could not be checked: {message}", label or ""
    )
    return TargetResult(
        reference=reference,
        digest=None,
        media_type=None,
        status=TargetStatus.ERROR,
        findings=(finding,),
        rule=label,
        error=message,
        policy=rule.data if rule else None,
        error_category=category,
    )


# --- summary ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Summary:
    """Counts for reports and metrics; every status is present, zero or not."""

    nodes: Mapping[NodeStatus, int]
    targets: Mapping[TargetStatus, int]
    findings: Mapping[str, int] = field(
        default_factory=lambda: MappingProxyType({"open": 0, "waived": 0})
    )


class Tally:
    """A run's counts, added target by target: all a streamed report keeps of what it wrote."""

    def __init__(self) -> None:
        self.nodes = dict.fromkeys(NodeStatus, 0)
        self.targets = dict.fromkeys(TargetStatus, 0)
        self.findings = {"open": 0, "waived": 0}

    def add(self, target: TargetResult) -> None:
        self.targets[target.status] += 1
        for verdict in target.nodes:
            self.nodes[verdict.status] += 1
        for finding in target.findings:
            self.findings["waived" if finding.waiver is not None else "open"] += 1

    def summary(self) -> Summary:
        return Summary(
            MappingProxyType(dict(self.nodes)),
            MappingProxyType(dict(self.targets)),
            MappingProxyType(dict(self.findings)),
        )


def summarize(targets: Iterable[TargetResult]) -> Summary:
    tally = Tally()
    for target in targets:
        tally.add(target)
    return tally.summary()


def summary_exit_code(summary: Summary) -> int:
    """:func:`exit_code` from the counts alone (a streamed report holds no targets)."""
    if summary.targets.get(TargetStatus.NONCOMPLIANT, 0):
        return 1
    return 3 if summary.targets.get(TargetStatus.ERROR, 0) else 0


def exit_code(targets: Iterable[TargetResult]) -> int:
    """0 all compliant, 1 any noncompliant, 3 none noncompliant but some error."""
    statuses = {t.status for t in targets}
    if TargetStatus.NONCOMPLIANT in statuses:
        return 1
    return 3 if TargetStatus.ERROR in statuses else 0
