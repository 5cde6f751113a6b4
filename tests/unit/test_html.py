"""The HTML page as text: structure, escaping, policy, filters and fix commands (no browser).

What Chromium makes of the page is tested in tests/integration/test_page_report.py; here the
pure renderer is held to what it promises whatever the report holds: balanced markup, no
element or attribute that came from registry text, one script (ours) allowed by hash, ids that
are hashes, and shell-safe commands.
"""

from __future__ import annotations

import base64
import hashlib
import re
import shlex
import zipfile
from dataclasses import replace
from datetime import UTC, datetime
from html.parser import HTMLParser
from pathlib import Path

import pytest
from hatchling.builders.wheel import WheelBuilder

from auditor.cli import build_parser
from auditor.coverage import CoverageRule, Require, error_target, evaluate_target
from auditor.formats import Format, render
from auditor.formats import html as page
from auditor.model import (
    AuditReport,
    Finding,
    GraphNode,
    NodeKind,
    NodeStatus,
    NodeVerdict,
    OtherReferrer,
    Platform,
    SignatureResult,
    SignatureStatus,
    TargetResult,
    TargetStatus,
    WaiverNote,
)
from tests.unit.test_coverage import INDEX_MT, MANIFEST_MT, A, B, dg, multi
from tests.unit.test_formats import WHEN, sample_report

HOSTILE = '"><script>alert(1)</script><img src=x onerror=alert(2)>{{ 7*7 }}\'`'
VOID = {"meta", "link", "input", "br", "img", "hr", "col", "source", "wbr"}


class _Elements(HTMLParser):
    """Every start tag with its attributes, and a check that non-void elements balance."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.starts: list[tuple[str, dict[str, str | None]]] = []
        self.stack: list[str] = []
        self.problems: list[str] = []
        self.text: list[str] = []
        self.raw: dict[str, list[str]] = {"script": [], "style": []}
        self._in: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.starts.append((tag, dict(attrs)))
        if tag not in VOID:
            self.stack.append(tag)
        if tag in self.raw:
            self._in = tag

    def handle_endtag(self, tag: str) -> None:
        if not self.stack or self.stack[-1] != tag:
            self.problems.append(f"</{tag}> closes {self.stack[-1:] or 'nothing'}")
            return
        self.stack.pop()
        self._in = None

    def handle_data(self, data: str) -> None:
        if self._in:
            self.raw[self._in].append(data)
        else:
            self.text.append(data)


def parse(text: str) -> _Elements:
    parser = _Elements()
    parser.feed(text)
    parser.close()
    assert parser.problems == []
    assert parser.stack == []
    return parser


def hostile_report() -> AuditReport:
    """Registry text in every field a report can carry it."""
    index, child = dg("hostile-index"), dg("hostile-child")
    signature = SignatureResult(
        digest=dg("sig"),
        format=f"notation/{HOSTILE}",
        status=SignatureStatus.INVALID,
        reason=f"reason {HOSTILE}",
        failed_validation=f"integrity {HOSTILE}",
        warnings=(f"warning {HOSTILE}",),
        signer=f"CN={HOSTILE}",
        signing_time=WHEN,
        expiry=WHEN,
    )
    nodes = (
        NodeVerdict(
            GraphNode(index, INDEX_MT, 10, NodeKind.INDEX,
                      other_referrers=(OtherReferrer(dg("r"), HOSTILE),)),
            NodeStatus.INVALID,
            f"node {HOSTILE}",
            signatures=(signature,),
        ),
        NodeVerdict(
            GraphNode(child, f"application/{HOSTILE}", 10, NodeKind.PLATFORM,
                      platform=Platform("linux", HOSTILE), parent=index),
            NodeStatus.UNSIGNED,
            HOSTILE,
        ),
    )
    findings = (
        Finding("invalid-signature", f"message {HOSTILE}", f"rule {HOSTILE}", index),
        Finding(HOSTILE, HOSTILE, HOSTILE, HOSTILE, HOSTILE),
    )
    return AuditReport(
        WHEN,
        (
            TargetResult(f"oci-layout:/tmp/{HOSTILE}:v1", index, f"application/{HOSTILE}",
                         TargetStatus.NONCOMPLIANT, nodes, findings, f"rule {HOSTILE}",
                         f"error {HOSTILE}"),
            error_target(f"registry.example/{HOSTILE}", HOSTILE),
        ),
    )


# --- escaping and policy --------------------------------------------------------------------


def test_registry_text_never_becomes_markup() -> None:
    text = page.render(hostile_report())
    elements = parse(text)
    tags = [tag for tag, _ in elements.starts]
    assert tags.count("script") == 1
    assert "img" not in tags
    assert not [(t, a) for t, attrs in elements.starts for a in attrs if a.startswith("on")]
    visible = "".join(elements.text)
    assert visible.count(HOSTILE) >= 10
    # ids and anchors are hashes, never registry text
    ids = [attrs["id"] for _, attrs in elements.starts if "id" in attrs]
    assert all(re.fullmatch(r"[a-z]+(-[a-z0-9]+)*", i or "") for i in ids), ids
    hrefs = [attrs["href"] for tag, attrs in elements.starts if tag == "a"]
    assert all(re.fullmatch(r"#[a-z]+(-[0-9a-f]+)?", h or "") for h in hrefs), hrefs


def test_the_policy_allows_exactly_the_page_own_style_and_script() -> None:
    text = render(sample_report(), Format.HTML)
    elements = parse(text)
    (meta,) = [a for t, a in elements.starts if t == "meta" and a.get("http-equiv")]
    policy = meta["content"] or ""
    assert policy == page.content_security_policy()
    directives = dict(d.strip().split(" ", 1) for d in policy.split(";"))
    assert directives["default-src"] == "'none'"

    def allowed(source: str) -> str:
        digest = hashlib.sha256(source.encode()).digest()
        return f"'sha256-{base64.b64encode(digest).decode()}'"

    (style,) = elements.raw["style"]
    (script,) = elements.raw["script"]
    assert directives["style-src"] == allowed(style)
    assert directives["script-src"] == allowed(script)
    # self-contained: nothing is loaded from anywhere
    assert not [a for t, a in elements.starts if (t in ("script", "link") and
                (a.get("src") or "").strip()) or (t == "link" and a.get("href") != "data:,")]
    assert "http://" not in text
    assert "https://" not in text


def test_no_inline_style_attributes_that_the_policy_would_block() -> None:
    elements = parse(page.render(sample_report()))
    assert not [t for t, a in elements.starts if "style" in a]


# --- content ----------------------------------------------------------------------------------


def test_tree_nests_children_under_their_index_and_names_every_node() -> None:
    graph, results = multi(signed=[A], invalid=[B], with_attestation=True)
    target = evaluate_target("ghcr.io/acme/app:1.0", graph, results, CoverageRule())
    views = page._node_views(target, page.target_id(target.reference))
    assert [(v.label, v.status) for v in views] == [
        ("index", "unsigned"),
        *[(str(v.node.platform) if v.node.kind is NodeKind.PLATFORM else
           f"attestation for {graph.node(v.node.attestation_for or '').platform}", v.status.value)
          for v in target.nodes[1:]],
    ]
    assert views[0].opens
    assert not any(v.opens for v in views[1:])
    assert views[-1].closes == 1
    assert sum(v.closes for v in views) == sum(v.opens for v in views)


def test_tree_order_survives_orphans_and_cycles() -> None:
    a, b, c = dg("a"), dg("b"), dg("c")
    nodes = (
        NodeVerdict(GraphNode(a, INDEX_MT, 1, NodeKind.INDEX, parent=b), NodeStatus.ERROR, "x"),
        NodeVerdict(GraphNode(b, INDEX_MT, 1, NodeKind.INDEX, parent=a), NodeStatus.ERROR, "x"),
        NodeVerdict(GraphNode(c, MANIFEST_MT, 1, NodeKind.PLATFORM, parent=dg("gone")),
                    NodeStatus.UNSIGNED, "x"),
    )
    order = page._tree_order(nodes)
    assert sorted(v.node.digest for v, _ in order) == sorted([a, b, c])
    target = TargetResult("ghcr.io/acme/app:1", a, INDEX_MT, TargetStatus.ERROR, nodes)
    parse(page.render(AuditReport(WHEN, (target,))))  # still balanced markup


def test_fix_commands_sign_the_gap_by_digest_and_are_shell_safe() -> None:
    graph, results = multi(signed=[], with_attestation=False)
    reference = "oci-layout:/tmp/my images/$(touch pwned)'x:v1"
    target = evaluate_target(reference, graph, results, CoverageRule(require=Require.PLATFORMS))
    view = page._target_view(target, page.PageContext())
    fixes = [f.fix for f in view.findings]
    assert fixes
    assert all(fixes)
    for finding, fix in zip(target.findings, fixes, strict=True):
        assert shlex.split(fix or "") == [
            "auditor", "sign", f"oci-layout:/tmp/my images/$(touch pwned)'x@{finding.node}",
            "--key", "KEY.pem", "--cert", "CHAIN.pem",
        ]
    assert shlex.split(view.fix_all or "")[:4] == ["auditor", "sign", "--missing", reference]
    # and they are what ``auditor sign`` itself accepts
    for command in [*fixes, view.fix_all]:
        args = build_parser().parse_args(shlex.split(command or "")[1:])
        assert (args.command, str(args.key), str(args.cert)) == ("sign", "KEY.pem", "CHAIN.pem")


def test_no_fix_command_where_signing_cannot_help() -> None:
    report = sample_report()
    gone = next(t for t in report.targets if t.status is TargetStatus.ERROR)
    view = page._target_view(gone, page.PageContext())
    assert view.fix_all is None
    assert [(f.fix, f.hint) for f in view.findings] == [
        (None, "fix what stopped the check, then audit again")
    ]
    bad_digest = replace(gone, findings=(Finding("unsigned-platform", "m", "r", "sha256:zz"),))
    assert page._target_view(bad_digest, page.PageContext()).findings[0].fix is None


def test_overview_counts_and_groups_by_repository() -> None:
    text = page.render(sample_report())
    visible = " ".join(" ".join(parse(text).text).split())
    assert "3 of 3 targets shown" in visible
    assert "ghcr.io/acme/app" in visible
    assert "127.0.0.1:5000/team/tool" in visible
    assert "one-off report" in visible


# --- filters (the server side of the rule page.js also implements) -------------------------


def _views() -> dict[str, page.TargetView]:
    report = sample_report()
    return {t.reference: page._target_view(t, page.PageContext()) for t in report.targets}


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({}, {"ghcr.io/acme/app:1.0", "127.0.0.1:5000/team/tool:2", "ghcr.io/acme/gone:3"}),
        ({"registry": "ghcr.io"}, {"ghcr.io/acme/app:1.0", "ghcr.io/acme/gone:3"}),
        ({"repository": "127.0.0.1:5000/team/tool"}, {"127.0.0.1:5000/team/tool:2"}),
        ({"status": "error"}, {"ghcr.io/acme/gone:3"}),
        ({"finding": "invalid-signature"}, {"ghcr.io/acme/app:1.0"}),
        ({"q": "  TOOL "}, {"127.0.0.1:5000/team/tool:2"}),
        ({"q": B[:20]}, {"ghcr.io/acme/app:1.0"}),
        ({"status": "compliant", "registry": "ghcr.io"}, set()),
        ({"status": "no-such-status"}, set()),
    ],
)
def test_overview_query(params: dict[str, str], expected: set[str]) -> None:
    query = page.OverviewQuery.from_params(params)
    assert {r for r, v in _views().items() if query.matches(v)} == expected


def test_waived_findings_are_shown_apart_and_filterable() -> None:
    report = sample_report()
    app = report.targets[0]
    note = WaiverNote("ghcr.io/acme/app:*", "signed <elsewhere>", "team@example.com", WHEN)
    waived = replace(app, findings=tuple(replace(f, waiver=note) for f in app.findings))
    report = AuditReport(WHEN, (waived, *report.targets[1:]))
    view = page._target_view(waived, page.PageContext())
    assert view.waived == len(app.findings)
    assert view.fix_all is None  # nothing left that signing must close now
    assert page.OverviewQuery(status="waived").matches(view)
    assert not page.OverviewQuery(status="waived").matches(_views()["ghcr.io/acme/gone:3"])
    visible = " ".join("".join(parse(page.render(report)).text).split())
    assert (
        "accepted by the waiver for ghcr.io/acme/app:*: signed <elsewhere> "
        "(owner team@example.com, until 2025-03-01T12:30:05Z)"
    ) in visible


def test_overview_query_cuts_long_values() -> None:
    query = page.OverviewQuery.from_params({"q": "a" * 10_000, "other": "ignored"})
    assert len(query.q) == page.MAX_QUERY_LENGTH


def test_daemon_overview_marks_filtered_rows_hidden_and_links_by_path() -> None:
    context = page.PageContext(
        next_audit=datetime(2026, 1, 1, tzinfo=UTC),
        query=page.OverviewQuery(status="compliant"),
    )
    elements = parse(page.render_overview(sample_report(), context))
    rows = [a for t, a in elements.starts if t == "tr" and "data-target" in a]
    assert [("hidden" in a, a["data-status"]) for a in rows] == [
        (False, "compliant"), (True, "noncompliant"), (True, "error")
    ]
    links = [a["href"] for t, a in elements.starts if t == "a" and a["href"] != "./"]
    tool = page.target_id("127.0.0.1:5000/team/tool:2")
    assert f"targets/{tool}" in links
    visible = " ".join(" ".join(elements.text).split())
    assert "1 of 3 targets shown" in visible
    assert "next audit 2026-01-01T00:00:00Z" in visible
    (form,) = [a for t, a in elements.starts if t == "form"]
    assert "hidden" not in form  # the daemon filters without JavaScript too


def test_daemon_target_page_with_history() -> None:
    report = sample_report()
    reference = "ghcr.io/acme/app:1.0"
    history = (
        page.HistoryEntry(B, "linux/arm64", "invalid", WHEN, "signature no longer valid"),
        page.HistoryEntry(B, "linux/arm64", "signed", datetime(2025, 1, 1, tzinfo=UTC), "signed"),
        page.HistoryEntry(A, "linux/amd64", "unsigned", WHEN, "signature deleted"),  # stale
    )
    context = page.PageContext(history={reference: history})
    text = page.render_target(report, page.target_id(reference), context)
    assert text is not None
    visible = " ".join(" ".join(parse(text).text).split())
    assert (
        "linux/arm64 \u2298 invalid since 2025-03-01T12:30:05Z (signature no longer valid)"
        in visible
    )
    assert "linux/arm64 \u2713 signed since 2025-01-01T00:00:00Z (signed)" in visible
    target = next(t for t in report.targets if t.reference == reference)
    nodes = {n.digest: n for n in page._node_views(target, "x", history)}
    assert (nodes[B].since, nodes[B].cause) == ("2025-03-01T12:30:05Z", "signature no longer valid")
    # the store's newest word on A (unsigned) disagrees with this report (signed): no claim
    assert (nodes[A].since, nodes[A].cause) == (None, None)
    assert page.render_target(report, "0" * 16, context) is None


@pytest.mark.parametrize(
    ("previous", "status", "cause"),
    [
        (None, "unsigned", "first audit"),
        ("signed", "unsigned", "signature deleted"),
        ("signed", "invalid", "signature no longer valid"),
        ("unsigned", "signed", "signed"),
        ("signed", "error", "could not be checked (was signed)"),
        ("error", "signed", "checked again (was error)"),
        ("skipped", "unsigned", "was skipped"),
        ("<b>", "signed", "was <b>"),
    ],
)
def test_change_cause(previous: str | None, status: str, cause: str) -> None:
    assert page.change_cause(previous, status) == cause


# --- packaging ---------------------------------------------------------------------------------


def test_templates_ship_in_the_wheel(tmp_path: Path) -> None:
    root = Path(__file__).resolve().parents[2]
    wheel = Path(next(WheelBuilder(str(root)).build(directory=str(tmp_path),
                                                     versions=["standard"])))
    names = set(zipfile.ZipFile(wheel).namelist())
    templates = root / "auditor" / "formats" / "templates"
    shipped = {f"auditor/formats/templates/{p.name}" for p in templates.iterdir()}
    assert len(shipped) >= 6
    assert shipped <= names
