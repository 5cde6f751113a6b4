"""The page: an AuditReport as HTML, for a person on call (pure: report in, text out).

One module serves two callers. ``render`` makes the self-contained report file of
``audit now --format html``: the overview and every target's tree in one document, linked by
anchors. ``render_overview`` and ``render_target`` make the daemon's ``/`` and
``/targets/<id>`` pages, linked by relative paths and given what only the daemon knows (the
next audit, the nodes' status history). Both come from the same Jinja2 templates, shipped in
the package beside this module.

Everything in a report that came from a registry, a layout or a certificate (tags, reasons,
signer names, artifact types, even digests) is hostile. Jinja2's autoescape is on for every
template and nothing is marked safe except the page's own CSS and script; ids and anchors are
hashes, never registry text; fix commands are shell-quoted. On top of that the page carries a
Content-Security-Policy that allows only its own inline style and script, by hash, so even a
missed escape could neither run a script nor fetch anything.

The page works without JavaScript: every fact is in the HTML, status always in words (never
colour alone). The script only enhances: live filtering and copy buttons. The filter rule is
implemented twice, here (the daemon filters on the server) and in ``page.js``; the browser
tests check both against the same expectations.
"""

from __future__ import annotations

import base64
import hashlib
import shlex
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum
from functools import cache
from typing import TYPE_CHECKING

from markupsafe import Markup

from auditor.coverage import FindingKind
from auditor.errors import InvalidReference
from auditor.formats.common import rfc3339, short_digest
from auditor.model import (
    AuditReport,
    NodeKind,
    NodeStatus,
    NodeVerdict,
    SignatureResult,
    TargetResult,
    TargetStatus,
)
from auditor.oci.reference import ImageReference, LayoutReference, parse_reference

if TYPE_CHECKING:
    from jinja2 import Environment

WAIVED = "waived"
"""Not a target status: the overview's word for a target with findings a waiver accepted."""
MAX_QUERY_LENGTH = 200
"""Longest filter value taken from a query string; longer ones are cut (they match nothing)."""

_SIGN_OPTIONS = "--key KEY.pem --cert CHAIN.pem"
_SIGNABLE = frozenset(
    {
        FindingKind.UNSIGNED_INDEX,
        FindingKind.UNSIGNED_PLATFORM,
        FindingKind.UNSIGNED_MANIFEST,
        FindingKind.UNSIGNED_ATTESTATION,
        FindingKind.INVALID_SIGNATURE,
    }
)
_SYMBOLS = {
    NodeStatus.SIGNED.value: "\u2713",
    TargetStatus.COMPLIANT.value: "\u2713",
    "valid": "\u2713",
    NodeStatus.UNSIGNED.value: "\u2717",
    TargetStatus.NONCOMPLIANT.value: "\u2717",
    NodeStatus.INVALID.value: "\u2298",
    NodeStatus.ERROR.value: "!",
    NodeStatus.UNVERIFIED.value: "?",
    NodeStatus.SKIPPED.value: "\u2013",
    WAIVED: "\u2691",
}
_TONES = {
    NodeStatus.SIGNED.value: "ok",
    TargetStatus.COMPLIANT.value: "ok",
    "valid": "ok",
    NodeStatus.UNSIGNED.value: "bad",
    NodeStatus.INVALID.value: "bad",
    TargetStatus.NONCOMPLIANT.value: "bad",
    NodeStatus.ERROR.value: "warn",
    NodeStatus.UNVERIFIED.value: "warn",
    NodeStatus.SKIPPED.value: "info",
    WAIVED: "info",
}


class Links(StrEnum):
    """How views link to targets: anchors in one file, or the daemon's relative paths."""

    ANCHORS = "anchors"
    PATHS = "paths"


@dataclass(frozen=True)
class HistoryEntry:
    """One status change of a node, from the daemon's state store (history view only).

    ``label`` names the node for people (``linux/arm64``, ``index``); ``cause`` says what the
    change means, e.g. ``signature deleted`` (see ``change_cause``).
    """

    node: str
    label: str
    status: str
    since: datetime
    cause: str | None = None


_CAUSES = {
    (NodeStatus.SIGNED, NodeStatus.UNSIGNED): "signature deleted",
    (NodeStatus.SIGNED, NodeStatus.INVALID): "signature no longer valid",
    (NodeStatus.UNSIGNED, NodeStatus.SIGNED): "signed",
    (NodeStatus.INVALID, NodeStatus.SIGNED): "valid signature added",
    (NodeStatus.UNSIGNED, NodeStatus.INVALID): "signature added, not valid",
    (NodeStatus.INVALID, NodeStatus.UNSIGNED): "invalid signature deleted",
    (NodeStatus.UNVERIFIED, NodeStatus.SIGNED): "verified",
}


def change_cause(previous: str | None, status: str) -> str:
    """What a status change means to a person: ``signed -> unsigned`` is a deleted signature."""
    if previous is None:
        return "first audit"
    if status == NodeStatus.ERROR:
        return f"could not be checked (was {previous})"
    if previous == NodeStatus.ERROR:
        return f"checked again (was {previous})"
    try:
        return _CAUSES[(NodeStatus(previous), NodeStatus(status))]
    except (KeyError, ValueError):
        return f"was {previous}"


@dataclass(frozen=True)
class OverviewQuery:
    """The overview's filters (all optional; empty means any). Same rule as ``page.js``."""

    registry: str = ""
    repository: str = ""
    status: str = ""
    finding: str = ""
    q: str = ""

    @classmethod
    def from_params(cls, params: Mapping[str, str]) -> OverviewQuery:
        """From a query string's values; unknown keys are ignored, long values cut."""

        def value(key: str) -> str:
            return str(params.get(key, "")).strip()[:MAX_QUERY_LENGTH]

        return cls(value("registry"), value("repository"), value("status"), value("finding"),
                   value("q"))

    def matches(self, target: TargetView) -> bool:
        q = self.q.lower()
        return (
            (not self.registry or self.registry == target.registry)
            and (not self.repository or self.repository == target.scope)
            and (
                not self.status
                or self.status == target.status
                or (self.status == WAIVED and target.waived > 0)
            )
            and (not self.finding or self.finding in target.finding_kinds)
            and (not q or q in target.search)
        )


@dataclass(frozen=True)
class PageContext:
    """What the caller knows beyond the report. The file report needs none of it."""

    links: Links = Links.ANCHORS
    next_audit: datetime | None = None
    history: Mapping[str, Sequence[HistoryEntry]] = field(default_factory=dict)
    """Status changes per target reference, newest first."""
    query: OverviewQuery = field(default_factory=OverviewQuery)


# --- view model (plain data the templates only print) -----------------------------------------


@dataclass(frozen=True)
class SignatureView:
    digest: str
    short: str
    format: str
    status: str
    reason: str
    failed_validation: str | None
    warnings: tuple[str, ...]
    signer: str | None
    signing_time: str | None
    expiry: str | None
    timestamped: bool
    valid_until: str | None


@dataclass(frozen=True)
class NodeView:
    """A node in tree order; ``opens`` says a child list follows, ``closes`` how many end here."""

    anchor: str
    digest: str
    short: str
    kind: str
    label: str
    status: str
    reason: str
    required: bool
    covered_by: str | None
    covered_by_anchor: str | None
    signatures: tuple[SignatureView, ...]
    other_referrers: tuple[tuple[str, str], ...]
    fix: str | None
    since: str | None
    cause: str | None
    opens: bool
    closes: int


@dataclass(frozen=True)
class WaiverView:
    image: str
    reason: str
    owner: str
    expires: str


@dataclass(frozen=True)
class FindingView:
    kind: str
    message: str
    rule: str
    node_anchor: str | None
    node_label: str | None
    fix: str | None
    hint: str | None
    waiver: WaiverView | None


@dataclass(frozen=True)
class TargetView:
    id: str
    href: str
    reference: str
    registry: str
    repository: str
    scope: str
    name: str
    status: str
    digest: str | None
    short: str
    media_type: str | None
    rule: str | None
    error: str | None
    node_counts: tuple[tuple[str, int], ...]
    finding_counts: tuple[tuple[str, int], ...]
    finding_kinds: tuple[str, ...]
    waived: int
    search: str
    nodes: tuple[NodeView, ...]
    findings: tuple[FindingView, ...]
    fix_all: str | None
    history: tuple[HistoryEntry, ...]
    visible: bool = True


@dataclass(frozen=True)
class RepositoryGroup:
    registry: str
    repository: str
    scope: str
    targets: tuple[TargetView, ...]
    status_counts: tuple[tuple[str, int], ...]
    visible: bool


# --- building the view ----------------------------------------------------------------------


def _digest16(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:16]


def target_id(reference: str) -> str:
    """A stable, URL- and id-safe name for a target: never registry text itself."""
    return _digest16(reference)


def _node_anchor(tid: str, digest: str) -> str:
    return "n-" + _digest16(f"{tid}\n{digest}")


def _parsed(reference: str) -> ImageReference | LayoutReference | None:
    """The reference, if it parses back to exactly itself (a hostile layout tag does not)."""
    try:
        parsed = parse_reference(reference)
    except InvalidReference:
        return None
    return parsed if str(parsed) == reference else None


def _split(reference: str) -> tuple[str, str, str, str]:
    """(registry, repository, scope, name) for grouping; unparsable references stay whole."""
    parsed = _parsed(reference)
    if parsed is None:
        return "(unparsed)", reference, reference, reference
    if isinstance(parsed, LayoutReference):
        registry, repository = "oci-layout", parsed.path
    else:
        registry, repository = parsed.registry, parsed.repository
    name = parsed.tag or (short_digest(parsed.digest) if parsed.digest else "(every tag)")
    return registry, repository, parsed.scope, name


def _pinned(reference: str, digest: str) -> str | None:
    """``reference`` narrowed to ``digest`` (``repo@digest``), or None when it cannot be."""
    parsed = _parsed(reference)
    if parsed is None:
        return None
    if isinstance(parsed, ImageReference):
        text = str(ImageReference(parsed.registry, parsed.repository, None, digest))
    else:
        text = str(LayoutReference(parsed.path, None, digest))
    return text if _parsed(text) is not None else None  # the digest must be a valid one too


def _sign_command(reference: str, digest: str | None) -> str | None:
    pinned = _pinned(reference, digest) if digest else None
    return f"auditor sign {shlex.quote(pinned)} {_SIGN_OPTIONS}" if pinned else None


def _time(moment: datetime | None) -> str | None:
    return rfc3339(moment) if moment else None


def _signature(result: SignatureResult) -> SignatureView:
    return SignatureView(
        digest=result.digest,
        short=short_digest(result.digest),
        format=result.format,
        status=result.status.value,
        reason=result.reason,
        failed_validation=result.failed_validation,
        warnings=tuple(result.warnings),
        signer=result.signer,
        signing_time=_time(result.signing_time),
        expiry=_time(result.expiry),
        timestamped=result.timestamped,
        valid_until=_time(result.valid_until),
    )


def _label(verdict: NodeVerdict, by_digest: Mapping[str, NodeVerdict], root: str | None) -> str:
    node = verdict.node
    if node.kind is NodeKind.ATTESTATION:
        subject = by_digest.get(node.attestation_for or "")
        if subject is not None and subject.node.platform is not None:
            return f"attestation for {subject.node.platform}"
        return "attestation"
    if node.platform is not None and not node.platform.is_unknown:
        return str(node.platform)
    if node.kind is NodeKind.INDEX:
        return "index" if node.digest == root else "nested index"
    return node.kind.value


def _tree_order(nodes: Sequence[NodeVerdict]) -> list[tuple[NodeVerdict, int]]:
    """Pre-order (node, depth) without recursion; orphans and cycles end up at the top level."""
    known = {v.node.digest for v in nodes}
    children: dict[str | None, list[NodeVerdict]] = {}
    for verdict in nodes:
        parent = verdict.node.parent if verdict.node.parent in known else None
        children.setdefault(parent, []).append(verdict)
    out: list[tuple[NodeVerdict, int]] = []
    seen: set[int] = set()
    pending = [(v, 0) for v in reversed(children.get(None, []))]
    leftovers = list(nodes)
    while pending or leftovers:
        if not pending:
            orphan = leftovers.pop(0)
            if id(orphan) in seen:
                continue
            pending.append((orphan, 0))
        verdict, depth = pending.pop()
        if id(verdict) in seen:
            continue
        seen.add(id(verdict))
        out.append((verdict, depth))
        pending.extend((c, depth + 1) for c in reversed(children.get(verdict.node.digest, [])))
    return out


def _node_views(
    target: TargetResult, tid: str, history: Sequence[HistoryEntry] = ()
) -> tuple[NodeView, ...]:
    by_digest = {v.node.digest: v for v in target.nodes}
    latest: dict[str, HistoryEntry] = {}
    for entry in history:  # newest first: the first entry of a node is its current status
        latest.setdefault(entry.node, entry)
    ordered = _tree_order(target.nodes)
    views: list[NodeView] = []
    for i, (verdict, depth) in enumerate(ordered):
        next_depth = ordered[i + 1][1] if i + 1 < len(ordered) else 0
        node = verdict.node
        gap = verdict.required and verdict.status in (NodeStatus.UNSIGNED, NodeStatus.INVALID)
        covering = by_digest.get(verdict.covered_by or "")
        change = latest.get(node.digest)
        if change is not None and change.status != verdict.status.value:
            change = None  # the store lags behind this report: say nothing rather than wrong
        views.append(
            NodeView(
                anchor=_node_anchor(tid, node.digest),
                digest=node.digest,
                short=short_digest(node.digest),
                kind=node.kind.value,
                label=_label(verdict, by_digest, target.digest),
                status=verdict.status.value,
                reason=verdict.reason,
                required=verdict.required,
                # Next to a failing required node, "covered by a signed index" would read as
                # "this is fine": said only where the node itself does not fail (as the table).
                covered_by=short_digest(verdict.covered_by)
                if verdict.covered_by and not gap
                else None,
                covered_by_anchor=_node_anchor(tid, covering.node.digest)
                if covering and not gap
                else None,
                signatures=tuple(_signature(s) for s in verdict.signatures),
                other_referrers=tuple(
                    (r.artifact_type or "(no artifact type)", short_digest(r.digest))
                    for r in node.other_referrers
                ),
                fix=_sign_command(target.reference, node.digest) if gap else None,
                since=rfc3339(change.since) if change else None,
                cause=change.cause if change else None,
                opens=next_depth > depth,
                closes=max(depth - next_depth, 0),
            )
        )
    return tuple(views)


def _finding_views(target: TargetResult, nodes: Sequence[NodeView]) -> list[FindingView]:
    by_digest = {n.digest: n for n in nodes}
    views = []
    for finding in target.findings:
        node = by_digest.get(finding.node or "")
        fix = hint = None
        if finding.kind in _SIGNABLE and finding.node:
            fix = _sign_command(target.reference, finding.node)
        elif finding.kind == FindingKind.MISSING_PLATFORM:
            hint = "build the missing platform and push the index again"
        elif finding.kind == FindingKind.UNCHECKED:
            hint = "fix what stopped the check, then audit again"
        views.append(
            FindingView(
                kind=finding.kind,
                message=finding.message,
                rule=finding.rule,
                node_anchor=node.anchor if node else None,
                node_label=(node.label if node else finding.platform),
                fix=fix,
                hint=hint,
                waiver=(
                    WaiverView(w.image, w.reason, w.owner, rfc3339(w.expires))
                    if (w := finding.waiver)
                    else None
                ),
            )
        )
    return views


def _counts(values: Iterable[str], order: Iterable[str]) -> tuple[tuple[str, int], ...]:
    counted = Counter(values)
    known = list(order)
    extra = sorted(k for k in counted if k not in known)
    return tuple((k, counted[k]) for k in [*known, *extra] if counted[k])


def _target_view(target: TargetResult, context: PageContext) -> TargetView:
    tid = target_id(target.reference)
    registry, repository, scope, name = _split(target.reference)
    history = tuple(context.history.get(target.reference, ()))
    nodes = _node_views(target, tid, history)
    findings = _finding_views(target, nodes)
    kinds = tuple(sorted({f.kind for f in target.findings}))
    signable = any(f.kind in _SIGNABLE and f.waiver is None for f in target.findings)
    search = " ".join([target.reference, target.digest or "", *(n.digest for n in nodes)])
    view = TargetView(
        id=tid,
        href=f"#t-{tid}" if context.links is Links.ANCHORS else f"targets/{tid}",
        reference=target.reference,
        registry=registry,
        repository=repository,
        scope=scope,
        name=name,
        status=target.status.value,
        digest=target.digest,
        short=short_digest(target.digest),
        media_type=target.media_type,
        rule=target.rule,
        error=target.error,
        node_counts=_counts((v.status.value for v in target.nodes), (s.value for s in NodeStatus)),
        finding_counts=_counts((f.kind for f in target.findings), (k.value for k in FindingKind)),
        finding_kinds=kinds,
        waived=sum(f.waiver is not None for f in target.findings),
        search=search.lower(),
        nodes=nodes,
        findings=tuple(findings),
        fix_all=(
            f"auditor sign --missing {shlex.quote(target.reference)} {_SIGN_OPTIONS}"
            if signable
            else None
        ),
        history=history,
    )
    return replace(view, visible=context.query.matches(view))




@dataclass(frozen=True)
class Totals:
    """Counts across the whole report, in the verdict words' order, zeros left out."""

    targets: tuple[tuple[str, int], ...]
    nodes: tuple[tuple[str, int], ...]
    findings: tuple[tuple[str, int], ...]
    waived: int


@dataclass(frozen=True)
class _Page:
    report: AuditReport
    context: PageContext
    targets: tuple[TargetView, ...]
    groups: tuple[RepositoryGroup, ...]
    totals: Totals


def _page(report: AuditReport, context: PageContext) -> _Page:
    targets = sorted(
        (_target_view(t, context) for t in report.targets),
        key=lambda t: (t.registry, t.repository, t.name, t.reference),
    )
    groups: dict[str, list[TargetView]] = {}
    for view in targets:
        groups.setdefault(view.scope, []).append(view)
    totals = Totals(
        targets=_counts((t.status.value for t in report.targets), (s.value for s in TargetStatus)),
        nodes=_counts(
            (v.status.value for t in report.targets for v in t.nodes), (s.value for s in NodeStatus)
        ),
        findings=_counts(
            (f.kind for t in report.targets for f in t.findings), (k.value for k in FindingKind)
        ),
        waived=sum(f.waiver is not None for t in report.targets for f in t.findings),
    )
    return _Page(
        report,
        context,
        tuple(targets),
        tuple(
            RepositoryGroup(
                registry=members[0].registry,
                repository=members[0].repository,
                scope=scope,
                targets=tuple(members),
                status_counts=_counts((t.status for t in members), (s.value for s in TargetStatus)),
                visible=any(t.visible for t in members),
            )
            for scope, members in groups.items()
        ),
        totals,
    )


# --- templates ---------------------------------------------------------------------------------


@cache
def _environment() -> Environment:
    # Imported here: only an HTML report (or the daemon's pages) needs Jinja2, and every
    # `audit now` would otherwise pay for importing it.
    from jinja2 import Environment, PackageLoader, StrictUndefined

    env = Environment(
        loader=PackageLoader("auditor.formats", "templates"),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["symbol"] = lambda word: _SYMBOLS.get(str(word), "\u2022")
    env.filters["tone"] = lambda word: _TONES.get(str(word), "info")
    env.filters["short"] = short_digest
    env.filters["time"] = rfc3339
    return env


@cache
def _assets() -> tuple[Markup, Markup]:
    """The page's own CSS and script: the only text inserted without escaping."""
    env = _environment()
    assert env.loader is not None
    css, _, _ = env.loader.get_source(env, "page.css")
    script, _, _ = env.loader.get_source(env, "page.js")
    return Markup(css), Markup(script)  # noqa: S704 - our own files, never registry text


def _hash(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"


def content_security_policy() -> str:
    """Allows the page's own inline style and script (by hash) and nothing else at all.

    The report file carries it in a ``<meta>``; the daemon also sends it as a header.
    """
    css, script = _assets()
    return (
        f"default-src 'none'; style-src {_hash(css)}; script-src {_hash(script)}; "
        "img-src data:; form-action 'self'; base-uri 'none'"
    )


def _render(template: str, page: _Page, home: str, **extra: object) -> str:
    css, script = _assets()
    context = page.context
    return _environment().get_template(template).render(
        targets=page.targets,
        groups=page.groups,
        totals=page.totals,
        links=context.links.value,
        home=home,
        query=context.query,
        max_query=MAX_QUERY_LENGTH,
        generated_at=rfc3339(page.report.generated_at),
        next_audit=_time(context.next_audit),
        csp=content_security_policy(),
        css=css,
        script=script,
        registries=sorted({t.registry for t in page.targets}),
        scopes=sorted({t.scope for t in page.targets}),
        statuses=[*(s.value for s in TargetStatus), WAIVED],
        finding_kinds=[k.value for k in FindingKind],
        shown=sum(t.visible for t in page.targets),
        **extra,
    )


def render(report: AuditReport) -> str:
    """The self-contained report file: overview and every target, one document, no requests."""
    return _render("report.html.j2", _page(report, PageContext()), "#overview")


def render_overview(report: AuditReport, context: PageContext) -> str:
    """The daemon's ``/``: the overview, filtered on the server by ``context.query``."""
    return _render("overview.html.j2", _page(report, _by_path(context)), "./")


def render_target(report: AuditReport, tid: str, context: PageContext) -> str | None:
    """The daemon's ``/targets/<id>``; None when no target of the report has that id."""
    page = _page(report, _by_path(replace(context, query=OverviewQuery())))
    target = next((t for t in page.targets if t.id == tid), None)
    if target is None:
        return None
    return _render("target.html.j2", page, "../", target=target)


def _by_path(context: PageContext) -> PageContext:
    """The daemon's pages always link by path."""
    return replace(context, links=Links.PATHS)
