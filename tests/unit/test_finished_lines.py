"""Off a terminal, ``audit now`` writes one stderr line per target as it finishes: the
orchestrator tells each result as :meth:`Auditor.stream` hands it out, in order, and
``finished_line`` (pure) words it. And the table's "covered by signed index" never sits next
to a node that fails a requirement itself."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import UTC, datetime

from auditor.audit import Auditor
from auditor.coverage import error_target
from auditor.formats.table import finished_line, render
from auditor.model import AuditReport, NodeStatus, TargetResult, TargetStatus, WaiverNote
from tests.unit.test_coverage import IX, P
from tests.unit.test_formats import sample_report


def _noncompliant() -> TargetResult:
    (target,) = [t for t in sample_report().targets if t.status is TargetStatus.NONCOMPLIANT]
    return target


def test_lines_name_position_verdict_reference_and_open_findings() -> None:
    compliant, error = (
        t for t in sample_report().targets if t.status is not TargetStatus.NONCOMPLIANT
    )
    assert finished_line(2, 3, compliant) == "[2/3] compliant 127.0.0.1:5000/team/tool:2"
    target = _noncompliant()
    count = len(target.findings)
    assert count > 1
    assert finished_line(1, 3, target) == (
        f"[1/3] noncompliant ghcr.io/acme/app:1.0 ({count} findings)"
    )
    # a waived finding is not an open one
    note = WaiverNote("ghcr.io/acme/app:*", "known", "team@example.com",
                      datetime(2099, 1, 1, tzinfo=UTC))
    waived = replace(target, findings=(replace(target.findings[0], waiver=note),
                                       *target.findings[1:]))
    assert finished_line(1, 3, waived).endswith(f"({count - 1} finding{'s' * (count > 2)})")
    # an error says why, naming the reference once
    assert finished_line(3, 3, error) == (
        "[3/3] error ghcr.io/acme/gone:3: registry ghcr.io answered 503 after 4 tries"
    )


def test_remote_text_cannot_drive_the_terminal() -> None:
    hostile = error_target("r.example/app:v1", "bad\x1b[2J\nline")
    line = finished_line(1, 1, hostile)
    assert "\x1b" not in line
    assert "\n" not in line
    assert line == "[1/1] error r.example/app:v1: bad\\x1b[2J\\x0aline"


def test_the_orchestrator_tells_each_result_in_order() -> None:
    told: list[tuple[int, int, str]] = []
    targets = [error_target(f"r.example/app:v{i}", "unreachable") for i in range(1, 4)]
    auditor = Auditor(
        rules=(), formats=(), finished=lambda i, n, r: told.append((i, n, r.reference))
    )
    report = asyncio.run(auditor.run(targets))
    assert told == [(i, 3, f"r.example/app:v{i}") for i in range(1, 4)]
    assert [t.reference for t in report.targets] == [r for _, _, r in told]


def test_covered_by_only_on_nodes_that_do_not_fail_a_requirement() -> None:
    """linux/ppc64le sits under the signed index (so it *is* covered_by it) but is required
    and unsigned: its row must not say "covered by". The same node made not required does."""
    target = _noncompliant()
    ppc = next(v for v in target.nodes if v.node.digest == P)
    assert ppc.covered_by == IX  # the condition the table must not echo
    assert ppc.required
    assert ppc.status is NodeStatus.UNSIGNED

    def ppc_row(t: TargetResult) -> str:
        text = render(AuditReport(datetime.now(UTC), (t,)))
        return next(line for line in text.splitlines() if "linux/ppc64le" in line)

    assert "covered by" not in ppc_row(target)
    optional = replace(
        target,
        nodes=tuple(replace(v, required=False) if v.node.digest == P else v
                    for v in target.nodes),
    )
    assert "(covered by signed index sha256:" in ppc_row(optional)
